//! The step cache: a directory of JSON entries, one per key, holding what a successful step
//! produced. A plain directory so that `actions/cache` can save and restore it.
//!
//! Entries are written atomically (a temporary file in the same directory, then renamed), so
//! a reader sees a whole entry or none; an entry that is still unreadable (a disk error, an
//! edited file, another wharf's format) is a miss, never a failure.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::step::Outputs;

/// What a step produced when it ran with this key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub step: String,
    pub key: String,
    pub outputs: Outputs,
    pub duration_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// `$WHARF_CACHE_DIR` if set (a CI job's restored cache), else `ROOT/target/wharf/cache`.
    pub fn dir_for(root: &Path) -> PathBuf {
        dir_from(root, std::env::var_os("WHARF_CACHE_DIR"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry recorded for `key`, or `None` for a miss (no entry, or one that cannot be
    /// used: it is logged and ignored, and the next `put` replaces it).
    pub fn get(&self, key: &str) -> Option<Entry> {
        let path = self.entry_path(key)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(
                    "ignoring the unreadable cache entry {}: {e}",
                    path.display()
                );
                return None;
            }
        };
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.key == key => Some(entry),
            Ok(entry) => {
                tracing::warn!(
                    "ignoring the cache entry {}: it holds the key {} (hint: delete it)",
                    path.display(),
                    entry.key
                );
                None
            }
            Err(e) => {
                tracing::warn!("ignoring the corrupt cache entry {}: {e}", path.display());
                None
            }
        }
    }

    /// Records `entry` under its key, atomically.
    pub fn put(&self, entry: &Entry) -> io::Result<()> {
        let path = self.entry_path(&entry.key).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cache key `{}` is not a sha256 hex digest", entry.key),
            )
        })?;
        let context = |action: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("{action} {}: {e}", self.dir.display()))
        };
        fs::create_dir_all(&self.dir).map_err(|e| context("creating the cache directory", e))?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| context("creating a temporary file in", e))?;
        let json = serde_json::to_vec(entry).map_err(io::Error::other)?;
        file.write_all(&json)
            .map_err(|e| context("writing a cache entry in", e))?;
        file.persist(&path)
            .map_err(|e| context("renaming a cache entry in", e.error))?;
        Ok(())
    }

    /// The file `key`'s entry lives in; `None` for a key that is not a hex digest (it could
    /// name a path outside the cache).
    pub fn entry_path(&self, key: &str) -> Option<PathBuf> {
        let hex = !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| self.dir.join(format!("{key}.json")))
    }
}

/// An empty `WHARF_CACHE_DIR` counts as unset (`WHARF_CACHE_DIR= cargo xtask ci`).
fn dir_from(root: &Path, env: Option<OsString>) -> PathBuf {
    match env {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("target").join("wharf").join("cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_is_the_variable_else_under_target() {
        let root = Path::new("/w");
        assert_eq!(dir_from(root, None), Path::new("/w/target/wharf/cache"));
        assert_eq!(
            dir_from(root, Some("".into())),
            Path::new("/w/target/wharf/cache")
        );
        assert_eq!(dir_from(root, Some("/c".into())), Path::new("/c"));
    }
}
