//! The promotion ledger: every verification, approval, promotion, rollback and deploy
//! outcome, one entry each, append-only and hash-chained (each entry holds the sha256 of the
//! one before it), so that an edited, removed or reordered entry is found by [`verify`].
//!
//! It never decides anything: gates, plans and tags belong to `wharf-promote`. It records
//! what they decided, and hands every writer the latest entries to decide on.
//!
//! # Format
//!
//! A ledger is JSON Lines. Line *i* is entry `seq = i`, written as canonical JSON (sorted
//! keys, no white space: [`wharf_oci::manifest::canonical_json`]) with one more field,
//! `hash`: the sha256 of the canonical JSON of the entry without `hash` ([`Entry::hash`]).
//! Each entry's `prev` is the `hash` of the line before (`null` on line 1). Every line ends
//! with a newline. Evidence holds no floats: canonical JSON cannot write them, so a draft
//! with one is refused ([`FloatInEvidence`], naming its JSON path).
//!
//! [`verify`] trusts nothing and reports the first line that is wrong, naming it by line,
//! seq, kind and digest as far as they can be read ([`Tamper`]):
//! a line that is not an entry; a last line with no newline (a torn write); a line that is
//! not byte for byte its canonical form; a `hash` that is not the content's (an edit); a
//! `seq` that is not the line number (a removed, repeated or reordered entry); a `prev` that
//! is not the previous line's hash (an edit that rewrote its own hash). Changing any byte
//! of a ledger therefore fails on the line that holds it. Removing the *last* entries leaves
//! a shorter valid chain; the git store catches that by ancestry (below).
//!
//! # Stores and the write protocol
//!
//! [`Store::append`] is the only writer. Each attempt reads the ledger, verifies it
//! (nothing is ever appended to a ledger that does not verify), calls the caller's `make`
//! with the entries so it can re-check its gates on that tip (an `Err` aborts with nothing
//! written), builds the next entry and writes it with compare-and-swap.
//!
//! - **Git** ([`Store::git`], default ref [`DEFAULT_REF`]): one commit per entry, whose
//!   tree holds the whole ledger as [`FILE`], so a read is one `git cat-file`. Objects are
//!   made with `hash-object`, `mktree` and `commit-tree` under an explicit identity (the
//!   entry's `who` and `when`). With no remote the ref moves with
//!   `git update-ref REF NEW OLD`. With a remote, every attempt first runs
//!   `git fetch REMOTE +REF:REF` (a missing remote ref is an empty ledger), then pushes the
//!   new commit with `git push REMOTE NEW:REF`, never forced: a writer that lost the race is
//!   rejected as not a fast-forward, waits a short random time and tries again on the new
//!   tip (at most [`DEFAULT_ATTEMPTS`] times). The local ref follows the remote only after
//!   a fetch or a successful push, so if a fetch finds the remote no longer contains the
//!   local tip (someone force-pushed entries away), it is refused
//!   ([`Error::LostEntries`]) and the local ref kept as evidence. Every git command has a
//!   time bound ([`DEFAULT_TIMEOUT`]); on expiry its process group is killed. Credentials
//!   in remote URLs are removed from every message ([`redact`]).
//! - **File** ([`Store::file`]): one JSON Lines file under an exclusive `flock`
//!   (`File::lock`) for the read and the append, written and `fsync`ed; a failed write is
//!   cut back. A crash mid-write leaves a last line without a newline, which `verify`
//!   reports and `append` refuses to extend.
//!
//! Entries are appended to the ledger *before* the world is changed (a tag moved), so the
//! ledger is the truth and a crash between the two leaves a tag behind its stage's last
//! entry, which the next command repairs.

mod entry;
mod file;
mod git;
mod store;
mod verify;

pub use entry::{Draft, Entry, FloatInEvidence, Kind};
pub use file::FileLedger;
pub use git::{DEFAULT_REF, DEFAULT_TIMEOUT, FILE, GitLedger, redact};
pub use store::{AppendError, DEFAULT_ATTEMPTS, Error, Snapshot, Store};
pub use verify::{Problem, Tamper, verify};
