//! Where a ledger lives, and the append protocol shared by both stores: read and verify,
//! let the caller make its entry from what it read, write with compare-and-swap, retry.

use std::path::PathBuf;
use std::time::Duration;

use crate::entry::{Draft, Entry, FloatInEvidence};
use crate::file::FileLedger;
use crate::git::{self, GitLedger};
use crate::verify::{Tamper, verify};

/// How many times [`Store::append`] tries before giving up on a contended ledger.
pub const DEFAULT_ATTEMPTS: u32 = 50;

/// The longest random pause between two attempts: long enough for a competing writer's
/// push to finish, short enough to be unnoticed by a person.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// A ledger: in a git ref (shared through a remote, or local) or in a locked file.
#[derive(Debug, Clone)]
pub enum Store {
    Git { ledger: GitLedger, attempts: u32 },
    File { ledger: FileLedger },
}

/// Reading, fetching or writing a ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` failed in {}: {reason}", repo.display())]
    Git {
        command: String,
        repo: PathBuf,
        reason: String,
    },
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        source: std::io::Error,
    },
    #[error(
        "the ledger in {store} does not verify: {tamper} (hint: nothing is appended to a \
         ledger that does not verify; restore it from a copy or its git history)"
    )]
    Tampered { store: String, tamper: Box<Tamper> },
    #[error(
        "the remote ledger lost entries this clone saw: {store} was at commit {seen}, but the \
         remote now has {now}, which does not contain it (someone force-pushed the ledger \
         ref; the local ref still holds the old entries: push them back, or delete the local \
         ref to accept the remote)"
    )]
    LostEntries {
        store: String,
        seen: String,
        now: String,
    },
}

/// [`Store::append`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError<E> {
    #[error(transparent)]
    Store(#[from] Error),
    /// The caller's `make` refused (e.g. a gate failed on the new tip); nothing was written.
    #[error("{0}")]
    Aborted(E),
    #[error(transparent)]
    Draft(#[from] FloatInEvidence),
    #[error(
        "gave up appending to {store} after {attempts} attempts: another writer won every \
         race (hint: retry the command)"
    )]
    Contended { store: String, attempts: u32 },
}

/// A verified read of a ledger: its entries, and the commit and bytes they were read from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    tip: Option<String>,
    bytes: Vec<u8>,
}

/// The outcome of one write attempt.
pub(crate) enum Written {
    Done,
    /// Another writer moved the ledger first; read again and retry.
    Conflict,
}

impl Store {
    /// The ledger in `ref_name` of the repository at `repo_dir`; with `remote` (a remote
    /// name or URL), that remote's ref is the truth, fetched before each read and pushed
    /// without force after each write.
    pub fn git(
        repo_dir: impl Into<PathBuf>,
        ref_name: impl Into<String>,
        remote: Option<String>,
    ) -> Store {
        Store::Git {
            ledger: GitLedger {
                repo: repo_dir.into(),
                ref_name: ref_name.into(),
                remote,
                timeout: git::DEFAULT_TIMEOUT,
            },
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// The ledger in the JSON Lines file at `path`, created on the first append.
    pub fn file(path: impl Into<PathBuf>) -> Store {
        Store::File {
            ledger: FileLedger { path: path.into() },
        }
    }

    /// Bounds each git command by `timeout` (default [`git::DEFAULT_TIMEOUT`]).
    pub fn with_git_timeout(mut self, timeout: Duration) -> Store {
        if let Store::Git { ledger, .. } = &mut self {
            ledger.timeout = timeout;
        }
        self
    }

    /// Tries an append at most `attempts` times (default [`DEFAULT_ATTEMPTS`]); the file
    /// store never needs more than one.
    pub fn with_attempts(mut self, attempts: u32) -> Store {
        if let Store::Git { attempts: a, .. } = &mut self {
            *a = attempts.max(1);
        }
        self
    }

    /// `git ref refs/wharf/ledger in /repo (remote origin)`, `ledger file /path`.
    pub fn describe(&self) -> String {
        match self {
            Store::Git { ledger, .. } => ledger.describe(),
            Store::File { ledger } => ledger.describe(),
        }
    }

    /// The ledger's bytes as stored (fetched first from a remote), unverified: for
    /// `ledger verify` to report on.
    pub fn raw(&self) -> Result<Vec<u8>, Error> {
        match self {
            Store::Git { ledger, .. } => Ok(ledger.read()?.1),
            Store::File { ledger } => ledger.read(),
        }
    }

    /// The ledger's entries, verified.
    pub fn read(&self) -> Result<Vec<Entry>, Error> {
        Ok(self.snapshot()?.entries)
    }

    /// The ledger's entries, verified, with what [`Store::append_on`] needs to build on
    /// exactly this read.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let (tip, bytes) = match self {
            Store::Git { ledger, .. } => ledger.read()?,
            Store::File { ledger } => (None, ledger.read()?),
        };
        Ok(Snapshot {
            entries: self.verified(&bytes)?,
            tip,
            bytes,
        })
    }

    fn verified(&self, bytes: &[u8]) -> Result<Vec<Entry>, Error> {
        verify(bytes).map_err(|tamper| Error::Tampered {
            store: self.describe(),
            tamper: Box::new(tamper),
        })
    }

    /// Appends the entry `make` drafts from the current entries, and returns it.
    ///
    /// `make` may run more than once: after losing a race to another writer, the ledger is
    /// read again and `make` sees the new entries, so the caller re-checks its gates there;
    /// an `Err` from it aborts with nothing written.
    pub fn append<E>(
        &self,
        make: impl FnMut(&[Entry]) -> Result<Draft, E>,
    ) -> Result<Entry, AppendError<E>> {
        self.append_on(None, make)
    }

    /// [`Store::append`], trying first on `read` (a snapshot this process took moments ago)
    /// instead of reading again: the write is a compare-and-swap against the snapshot's tip,
    /// so a ledger that moved since makes the attempt lose, and the next one reads afresh.
    /// Saves a read when nothing else writes. The file store ignores it: it reads under its
    /// lock.
    pub fn append_on<E>(
        &self,
        read: Option<Snapshot>,
        mut make: impl FnMut(&[Entry]) -> Result<Draft, E>,
    ) -> Result<Entry, AppendError<E>> {
        let mut read = read;
        match self {
            Store::File { ledger } => {
                let mut locked = ledger.lock()?;
                let entries = self.verified(&locked.bytes)?;
                let entry = next(&entries, &mut make)?;
                ledger.append(&mut locked, &entry.line())?;
                Ok(entry)
            }
            Store::Git { ledger, attempts } => {
                for attempt in 0..*attempts {
                    if attempt > 0 {
                        backoff(attempt);
                    }
                    let Snapshot {
                        entries,
                        tip,
                        mut bytes,
                    } = match read.take() {
                        Some(snapshot) => snapshot,
                        None => self.snapshot()?,
                    };
                    let entry = next(&entries, &mut make)?;
                    bytes.extend_from_slice(&entry.line());
                    if let Written::Done = ledger.write(tip.as_deref(), &bytes, &entry)? {
                        return Ok(entry);
                    }
                }
                Err(AppendError::Contended {
                    store: self.describe(),
                    attempts: *attempts,
                })
            }
        }
    }
}

fn next<E>(
    entries: &[Entry],
    make: &mut impl FnMut(&[Entry]) -> Result<Draft, E>,
) -> Result<Entry, AppendError<E>> {
    let draft = make(entries).map_err(AppendError::Aborted)?;
    Ok(Entry::try_after(entries.last(), draft)?)
}

/// A random pause that grows with the attempt, so writers that collided spread out.
fn backoff(attempt: u32) {
    let ceiling = (10u64 << attempt.min(5)).min(MAX_BACKOFF.as_millis() as u64);
    std::thread::sleep(Duration::from_millis(fastrand::u64(1..=ceiling)));
}
