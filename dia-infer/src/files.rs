//! Output files written atomically (temp file + rename) and never over one of the run's inputs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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
    temp_beside(output).map(drop)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary file beside `path`, created with the permissions a plain file gets (0666
/// less the umask; a temporary file's own default is 0600).
pub fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".dia-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(&dir).with_context(|| {
        format!(
            "cannot write {}: directory {} is not writable",
            path.display(),
            dir.display()
        )
    })
}

/// Moves a finished temporary file into place at `path`, on disk first (fsync), so a crash
/// never leaves a half-written output under the final name.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes `path` through a temporary file in the same directory, renamed on success.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let mut tmp = temp_beside(path)?;
    write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    persist(tmp, path)
}
