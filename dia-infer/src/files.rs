//! A run's output paths, checked before any work: never one of the run's inputs, never named
//! twice, each writable (the files themselves are written atomically, `dia_burn::files`).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use dia_burn::files::{parent_dir, temp_beside};

/// Checks a run's output paths before any work: none empty or a directory, none an input,
/// none named twice, each creatable.
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    let mut seen: Vec<PathBuf> = Vec::with_capacity(outputs.len());
    for &out in outputs {
        if out.as_os_str().is_empty() {
            bail!("an output path is empty");
        }
        if out.is_dir() {
            bail!("output {} is a directory; name a file", out.display());
        }
        ensure_not_input(out, inputs)?;
        ensure_writable(out)?;
        let resolved = resolved(out);
        if seen.contains(&resolved) {
            bail!(
                "{} is named as two outputs of this run; each needs its own path",
                out.display()
            );
        }
        seen.push(resolved);
    }
    Ok(())
}

/// `path` with its directory resolved (symbolic links, `..`), for comparing paths that may not
/// exist yet.
fn resolved(path: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(parent_dir(path)).unwrap_or_else(|_| parent_dir(path));
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// The files a model or codec path stands for: the file, or every file of the directory.
pub fn files_at(path: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => vec![path.to_path_buf()],
    }
}

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
    Ok(temp_beside(output).map(drop)?)
}
