//! The promotion ledger: every verification, approval, promotion, rollback and deploy
//! outcome, one entry each, append-only and hash-chained (each entry holds the sha256 of the
//! one before it), so that an edited, removed or reordered entry is found by [`verify`].

mod entry;

pub use entry::{Draft, Entry, Kind};
