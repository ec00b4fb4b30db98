//! What is in each stage, what is waiting, the tags that must point where, and a stage's
//! history.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Entry, Kind};
use wharf_oci::Digest;
use wharf_tag::Tag;

use crate::config::Stage;
use crate::evidence::{PromotionEvidence, RollbackEvidence};
use crate::plan::stage_tags;
use crate::state::{approvals_for, consumed, states};

/// One stage now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageStatus {
    pub stage: String,
    pub location: String,
    /// `None` until something is promoted there.
    pub digest: Option<Digest>,
    pub since: Option<Timestamp>,
    /// Who promoted (or rolled back to) it.
    pub by: Option<String>,
    /// The ledger entry that made it current.
    pub seq: Option<u64>,
    /// The tags that point at it.
    pub tags: Vec<Tag>,
    /// Digests approved for the stage and not in it, newest approval last.
    pub waiting: Vec<Waiting>,
}

/// A digest with approvals for a stage it is not in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub digest: Digest,
    /// Who approved it so far (distinct, in order).
    pub approvals: Vec<String>,
}

/// A tag that must point at a digest: [`desired`] gives every one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredTag {
    pub stage: String,
    pub location: String,
    pub tag: Tag,
    pub digest: Digest,
}

/// Every configured stage, in config order.
pub fn status(stages: &[Stage], entries: &[Entry]) -> Vec<StageStatus> {
    let states = states(entries);
    let desired = desired(stages, entries);
    stages
        .iter()
        .map(|stage| {
            let current = states.get(&stage.name).and_then(|s| s.current());
            StageStatus {
                stage: stage.name.clone(),
                location: stage.location.clone(),
                digest: current.map(|c| c.digest.clone()),
                since: current.map(|c| c.since),
                by: current.map(|c| c.by.clone()),
                seq: current.map(|c| c.seq),
                tags: desired
                    .iter()
                    .filter(|d| d.stage == stage.name)
                    .map(|d| d.tag.clone())
                    .collect(),
                waiting: waiting(entries, &stage.name, current.map(|c| &c.digest)),
            }
        })
        .collect()
}

/// Approvals for `stage` not used up by a promotion and not for its current digest.
fn waiting(entries: &[Entry], stage: &str, current: Option<&Digest>) -> Vec<Waiting> {
    let mut out: Vec<Waiting> = Vec::new();
    for approval in approvals_for(entries, stage) {
        if Some(&approval.digest) == current || consumed(entries, approval) {
            continue;
        }
        let at = match out.iter().position(|w| w.digest == approval.digest) {
            Some(i) => i,
            None => {
                out.push(Waiting {
                    digest: approval.digest.clone(),
                    approvals: Vec::new(),
                });
                out.len() - 1
            }
        };
        let names = &mut out[at].approvals;
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&approval.who)) {
            names.push(approval.who.clone());
        }
    }
    out
}

/// The entries about `stage`: those whose `to` or `from` is the stage, oldest first.
pub fn history(entries: &[Entry], stage: &str) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.to.as_deref() == Some(stage) || e.from.as_deref() == Some(stage))
        .cloned()
        .collect()
}

/// For each stage with a current digest, every tag that must point at it: the tags the
/// stage's last promotion or rollback entry records (so semver and date tags of a
/// promotion too), at the location it records. The CLI compares these with the registry
/// and moves any tag that differs: that repairs a crash between writing the ledger entry and
/// moving the tags.
pub fn desired(stages: &[Stage], entries: &[Entry]) -> Vec<DesiredTag> {
    let mut out = Vec::new();
    for stage in stages {
        let Some(last) = entries.iter().rev().find(|e| {
            e.to.as_deref() == Some(stage.name.as_str())
                && matches!(e.kind, Kind::Promotion | Kind::Rollback)
        }) else {
            continue;
        };
        let (location, tags) =
            recorded_tags(last).unwrap_or_else(|| (stage.location.clone(), stage_tags(stage)));
        out.extend(tags.into_iter().map(|tag| DesiredTag {
            stage: stage.name.clone(),
            location: location.clone(),
            tag,
            digest: last.digest.clone(),
        }));
    }
    out
}

fn recorded_tags(entry: &Entry) -> Option<(String, Vec<Tag>)> {
    if let Some(p) = PromotionEvidence::of(entry) {
        return Some((p.target.location, p.target.tags));
    }
    RollbackEvidence::of(entry).map(|r| (r.location, r.tags))
}
