//! The ledger in one JSON Lines file, written under an exclusive lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::store::Error;

/// Where a file ledger lives; see [`crate::Store::file`].
#[derive(Debug, Clone)]
pub struct FileLedger {
    pub path: PathBuf,
}

/// The open, locked ledger file and its bytes; the lock holds until it is dropped.
pub(crate) struct Locked {
    file: File,
    pub(crate) bytes: Vec<u8>,
}

impl FileLedger {
    pub fn describe(&self) -> String {
        format!("ledger file {}", self.path.display())
    }

    /// The bytes under a shared lock (a missing file is an empty ledger).
    pub(crate) fn read(&self) -> Result<Vec<u8>, Error> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("opening", e)),
        };
        file.lock_shared().map_err(|e| self.io("locking", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io("reading", e))?;
        Ok(bytes)
    }

    /// Opens (creating it and its directory) and exclusively locks the file, and reads it.
    pub(crate) fn lock(&self) -> Result<Locked, Error> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.io("creating the directory of", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io("opening", e))?;
        // Blocks while another writer holds it: each holds it for one read and one append.
        file.lock().map_err(|e| self.io("locking", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io("reading", e))?;
        Ok(Locked { file, bytes })
    }

    /// Appends `line` to the locked file and syncs it; on failure the file is cut back to
    /// its old length so no torn line is left behind where that is possible.
    pub(crate) fn append(&self, locked: &mut Locked, line: &[u8]) -> Result<(), Error> {
        let old_len = locked.bytes.len() as u64;
        let result = locked
            .file
            .seek(SeekFrom::Start(old_len))
            .and_then(|_| locked.file.write_all(line))
            .and_then(|()| locked.file.sync_data());
        if let Err(e) = result {
            let _ = locked.file.set_len(old_len);
            return Err(self.io("appending to", e));
        }
        Ok(())
    }

    fn io(&self, doing: &str, source: std::io::Error) -> Error {
        Error::Io {
            doing: format!("{doing} {}", self.path.display()),
            source,
        }
    }
}
