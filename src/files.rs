//! Files written atomically: a temporary file beside the target, synced and renamed into place,
//! so a reader never sees half a file and a failure never leaves one under the final name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory a file `path` lies in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
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
    builder.tempfile_in(&dir).map_err(|e| {
        Error::Write(format!(
            "cannot write {}: directory {} is not writable ({e})",
            path.display(),
            dir.display()
        ))
    })
}

/// Moves a finished temporary file into place at `path`, on disk first (fsync), so a crash
/// never leaves a half-written output under the final name.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Write(format!("cannot write {}: {e}", path.display()));
    tmp.as_file().sync_all().map_err(|e| failed(&e))?;
    tmp.persist(path).map_err(|e| failed(&e))?;
    Ok(())
}

/// Writes `path` through a temporary file in the same directory, renamed on success.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = temp_beside(path)?;
    write(tmp.as_file_mut())
        .and_then(|()| std::io::Write::flush(tmp.as_file_mut()))
        .map_err(|e| Error::Write(format!("cannot write {}: {e}", path.display())))?;
    persist(tmp, path)
}
