//! Output files written atomically (temp file + rename) and never over one of the run's inputs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Fails if `output` is the same file as any of `inputs`.
pub fn ensure_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    if let Some(out) = canonical(output)
        && inputs.iter().any(|i| canonical(i).as_ref() == Some(&out))
    {
        bail!(
            "output {} is also an input of this run; refusing to overwrite it",
            output.display()
        );
    }
    Ok(())
}

/// Checks early that a file can be created next to `output` (before hours of generation).
pub fn ensure_writable(output: &Path) -> Result<()> {
    let dir = parent_dir(output);
    tempfile::NamedTempFile::new_in(&dir).with_context(|| {
        format!(
            "cannot write {}: directory {} is not writable",
            output.display(),
            dir.display()
        )
    })?;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` through a temporary file in the same directory, renamed on success.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).with_context(|| {
        format!(
            "cannot write {}: directory {} is not writable",
            path.display(),
            dir.display()
        )
    })?;
    write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
