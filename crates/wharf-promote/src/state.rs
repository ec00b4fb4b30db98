//! Each stage's state, replayed from the ledger: a stack of digests, current on top.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Entry, Kind};
use wharf_oci::Digest;

/// One digest on a stage's stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    pub digest: Digest,
    /// The promotion entry that pushed it.
    pub promoted_seq: u64,
    /// The entry that last made it current: its promotion, or the rollback that came back
    /// to it.
    pub seq: u64,
    /// When it last became current (what soak time counts from).
    pub since: Timestamp,
    /// Who made it current.
    pub by: String,
}

/// A stage's history as a stack: promotions push, rollbacks pop. Never empty once built by
/// [`states`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    /// Bottom first; the last one is current.
    pub stack: Vec<Pushed>,
}

impl StageState {
    /// The digest in the stage now.
    pub fn current(&self) -> Option<&Pushed> {
        self.stack.last()
    }

    /// The digest a rollback would go back to.
    pub fn previous(&self) -> Option<&Pushed> {
        self.stack.len().checked_sub(2).map(|i| &self.stack[i])
    }

    /// Applies a promotion or rollback entry for this stage; returns what a rollback popped.
    pub(crate) fn apply(&mut self, entry: &Entry) -> Option<Pushed> {
        let current = |promoted_seq| Pushed {
            digest: entry.digest.clone(),
            promoted_seq,
            seq: entry.seq,
            since: entry.when,
            by: entry.who.clone(),
        };
        match entry.kind {
            Kind::Promotion => {
                self.stack.push(current(entry.seq));
                None
            }
            Kind::Rollback => {
                let popped = self.stack.pop();
                // The rollback entry names the digest the stage went back to, which is the
                // one below on the stack unless the ledger was written by something else:
                // the entry wins, so the state always matches the last entry.
                match self.stack.last_mut() {
                    Some(top) if top.digest == entry.digest => {
                        top.seq = entry.seq;
                        top.since = entry.when;
                        top.by = entry.who.clone();
                    }
                    _ => {
                        self.stack.pop();
                        self.stack.push(current(entry.seq));
                    }
                }
                popped
            }
            _ => None,
        }
    }
}

/// Every stage that a promotion or rollback entry names in `to`, with its stack.
pub fn states(entries: &[Entry]) -> BTreeMap<String, StageState> {
    let mut out: BTreeMap<String, StageState> = BTreeMap::new();
    for entry in entries {
        if let (Some(stage), Kind::Promotion | Kind::Rollback) = (&entry.to, entry.kind) {
            out.entry(stage.clone()).or_default().apply(entry);
        }
    }
    out
}

/// The state of one stage (empty when nothing was promoted there).
pub(crate) fn state_of(entries: &[Entry], stage: &str) -> StageState {
    states(entries).remove(stage).unwrap_or_default()
}

/// Verification entries (CI built and tested a digest), oldest first.
pub(crate) fn verifications(entries: &[Entry]) -> impl DoubleEndedIterator<Item = &Entry> {
    entries
        .iter()
        .filter(|e| e.kind == Kind::Verification && e.to.is_none())
}

/// The latest verification entry for `digest`.
pub(crate) fn verification_for<'a>(entries: &'a [Entry], digest: &Digest) -> Option<&'a Entry> {
    verifications(entries).rev().find(|e| &e.digest == digest)
}

/// Approval entries for `stage`, oldest first.
pub(crate) fn approvals_for<'a>(
    entries: &'a [Entry],
    stage: &'a str,
) -> impl Iterator<Item = &'a Entry> {
    entries
        .iter()
        .filter(move |e| e.kind == Kind::Approval && e.to.as_deref() == Some(stage))
}

/// Whether an approval was used up: its digest was promoted into its stage after it.
pub(crate) fn consumed(entries: &[Entry], approval: &Entry) -> bool {
    entries.iter().any(|e| {
        e.kind == Kind::Promotion
            && e.seq > approval.seq
            && e.to == approval.to
            && e.digest == approval.digest
    })
}
