//! Rollback: a stage goes back to the digest below its current one on the ledger's stack.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Draft, Entry, Kind};
use wharf_oci::Digest;
use wharf_tag::Tag;

use crate::config::Stage;
use crate::evidence::{RollbackEvidence, to_value};
use crate::plan::stage_tags;
use crate::state::state_of;
use crate::{PlanError, find_stage};

/// What a rollback would do. No gates: a rollback is the way out of a bad promotion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPlan {
    pub stage: String,
    pub location: String,
    /// The digest in the stage now.
    pub from_digest: Digest,
    /// The digest the stage goes back to.
    pub digest: Digest,
    /// The stage's own tags (semver and date tags are not moved back: they name a release
    /// and a day, not "what is in the stage").
    pub tags: Vec<Tag>,
}

/// Plans rolling `stage` back to its previous digest.
pub fn plan_rollback(
    stages: &[Stage],
    stage: &str,
    entries: &[Entry],
) -> Result<RollbackPlan, PlanError> {
    let config = find_stage(stages, stage)?;
    let state = state_of(entries, stage);
    let current = state.current().ok_or_else(|| PlanError::NeverPromoted {
        stage: stage.to_owned(),
    })?;
    let Some(previous) = state.previous() else {
        let only = current.digest.clone();
        let ever_rolled_back = entries
            .iter()
            .any(|e| e.kind == Kind::Rollback && e.to.as_deref() == Some(stage));
        return Err(if ever_rolled_back {
            PlanError::RolledBackToOldest {
                stage: stage.to_owned(),
                only,
            }
        } else {
            PlanError::OnlyOne {
                stage: stage.to_owned(),
                only,
            }
        });
    };
    Ok(RollbackPlan {
        stage: stage.to_owned(),
        location: config.location.clone(),
        from_digest: current.digest.clone(),
        digest: previous.digest.clone(),
        tags: stage_tags(config),
    })
}

impl RollbackPlan {
    /// The typed evidence the rollback entry carries.
    pub fn evidence(&self) -> RollbackEvidence {
        RollbackEvidence {
            rolled_back: self.from_digest.clone(),
            location: self.location.clone(),
            tags: self.tags.clone(),
        }
    }

    /// The ledger entry recording this rollback (append it before moving the tags).
    pub fn draft(&self, who: &str, now: Timestamp) -> Draft {
        Draft {
            kind: Kind::Rollback,
            who: who.to_owned(),
            when: now,
            digest: self.digest.clone(),
            from: None,
            to: Some(self.stage.clone()),
            evidence: to_value(&self.evidence()),
            signature: None,
        }
    }
}

impl fmt::Display for RollbackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<&str> = self.tags.iter().map(Tag::as_str).collect();
        writeln!(
            f,
            "roll {} back from {} to {}",
            self.stage, self.from_digest, self.digest
        )?;
        writeln!(f, "  at      {} tags {}", self.location, tags.join(", "))
    }
}
