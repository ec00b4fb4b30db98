//! The promotion ledger: every verification, approval, promotion, rollback and deploy
//! outcome, one entry each, append-only and hash-chained (each entry holds the sha256 of the
//! one before it), so that an edited, removed or reordered entry is found by [`verify`].

mod entry;
mod file;
mod git;
mod store;
mod verify;

pub use entry::{Draft, Entry, FloatInEvidence, Kind};
pub use file::FileLedger;
pub use git::{DEFAULT_REF, DEFAULT_TIMEOUT, FILE, GitLedger, redact};
pub use store::{AppendError, DEFAULT_ATTEMPTS, Error, Store};
pub use verify::{Problem, Tamper, verify};
