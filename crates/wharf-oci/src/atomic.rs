//! Files that appear whole or not at all, with the permissions `cp` would give them.
//!
//! A file is written to a temporary file, flushed, and renamed over its destination; the
//! directory is flushed after, so the rename survives a crash too. Temporary files are
//! created with mode 0666 and the kernel takes the umask off at creation, as it does for
//! `cp` or skopeo: tempfile's default, 0600, would make an OCI layout or a scan report
//! unreadable by the other users and tools it is written for.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// Mode asked for at creation; the process umask is taken off by the kernel.
const FILE_MODE: u32 = 0o666;

/// Creates a temporary file in `dir` (named `PREFIX` and random characters) with the
/// umask's permissions, for [`persist`] to rename into place.
pub(crate) fn temp_file_in(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader sees the old
/// file or the new one, never half of it. The file gets the permissions `cp` would give
/// it (0644 under umask 022, 0600 under 077). The directory must exist: creating one a
/// user mistyped would hide the mistake.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map_or_else(
        || ".tmp-".to_string(),
        |n| format!(".{}.tmp-", n.to_string_lossy()),
    );
    let mut tmp = temp_file_in(dir, &name)
        .context(|| format!("creating a temporary file for {}", path.display()))?;
    tmp.write_all(bytes)
        .context(|| format!("writing {}", path.display()))?;
    persist(tmp, path)
}

/// Flushes a finished temporary file to disk and renames it to `path`, then flushes the
/// directory so the rename itself survives a crash.
pub(crate) fn persist(tmp: NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .context(|| format!("flushing {}", path.display()))?;
    tmp.persist(path).map_err(|e| Error::Io {
        context: format!("renaming into {}", path.display()),
        source: e.error,
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .context(|| format!("flushing directory {}", dir.display()))?;
    }
    Ok(())
}
