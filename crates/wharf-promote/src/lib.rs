//! Promotion by digest: stages, gates, approvals, plans, rollback, status and DORA figures.
//!
//! Pure: no I/O, no clock, no environment. The caller reads the ledger (a list of verified
//! [`Entry`](wharf_ledger::Entry)s) and gathers the [`Evidence`] (registry, files, `ssh-keygen`, HTTP), passes
//! `now` in, and applies what comes back. Promotion has two phases: [`candidate`] says which
//! digest moves and what evidence to gather; [`plan`] turns that evidence into a
//! [`PromotionPlan`] whose [`PromotionPlan::draft`] is the ledger entry to append before the
//! tags move.
//!
//! Invariants:
//! - the digest promoted into a stage is the one current in its `from` stage (for a first
//!   stage: one the ledger records a verification for); nothing here rebuilds or retags;
//! - every [`Draft`](wharf_ledger::Draft) built here holds no floating-point number in its
//!   evidence (the ledger hashes canonical JSON, which has none): sizes in bytes, times in
//!   ns, ms, seconds or minutes, ratios in per-mille, instants as RFC 3339 strings.

mod approvals;
mod benchmark;
pub mod config;
mod dora;
mod evidence;
mod gates;
mod notify;
mod plan;
mod rollback;
mod state;
mod status;
mod validate;

pub use approvals::{APPROVAL_KIND, approval_draft, approval_message};
pub use benchmark::{Benchmark, BenchmarkFile};
pub use config::{
    ApprovalGate, Autoscale, BenchmarkGate, Deploy, DockerDeploy, Gates, HealthCheck,
    KubernetesDeploy, LedgerConfig, ProvenanceGate, Resources, SignatureGate, SmokeCheck,
    SmokeGate, Stage, Webhook, WebhookFormat,
};
pub use dora::{Dora, Median, dora};
pub use evidence::{
    BenchmarkFiles, BuiltBy, DeployEvidence, DeployOutcome, Evidence, GateResult,
    PromotionEvidence, ProvenanceVerdict, RecordedFile, RollbackEvidence, ScanVerdict,
    SignatureVerdict, SmokeAttempt, VerificationEvidence, deploy_draft, healthy_deploys,
    verification_draft,
};
pub use notify::{Event, FailedGate, Notification};
pub use plan::{Candidate, Needs, PromotionPlan, Source, Target, candidate, plan};
pub use rollback::{RollbackPlan, plan_rollback};
pub use state::{Pushed, StageState, states};
pub use status::{DesiredTag, StageStatus, Waiting, desired, history, status};
pub use validate::{Problem, validate};

use wharf_oci::Digest;

/// Why a promotion or a rollback cannot be planned at all (a failing gate is not an error:
/// it is in the plan).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("no stage named {stage:?} in [[stages]] (stages: {known})")]
    UnknownStage { stage: String, known: String },
    #[error(
        "{from} has no digest yet, so there is nothing to promote into {stage} (promote a digest into {from} first)"
    )]
    SourceEmpty { stage: String, from: String },
    #[error(
        "{digest} is not current in {from}: {current} is (promote {digest} into {from} first, or name {current})"
    )]
    NotCurrent {
        from: String,
        digest: Digest,
        current: Digest,
    },
    #[error(
        "the ledger holds no verification entry, so there is nothing to promote into {stage} (run the ci pipeline: it records one for the digest it built and tested)"
    )]
    NothingVerified { stage: String },
    #[error(
        "{digest} has no verification entry in the ledger, so it cannot enter {stage} (name a digest the ci pipeline verified, e.g. {latest})"
    )]
    NotVerified {
        stage: String,
        digest: Digest,
        latest: Digest,
    },
    #[error(
        "verification entry {seq} for {digest} records no location (the ci pipeline writes where it pushed the image in the evidence key \"location\"; verify the digest again)"
    )]
    NoLocation { seq: u64, digest: Digest },
    #[error("{stage} has nothing to roll back to: nothing was ever promoted there")]
    NeverPromoted { stage: String },
    #[error("{stage} has nothing to roll back to: only {only} was ever promoted there")]
    OnlyOne { stage: String, only: Digest },
    #[error(
        "{stage} has nothing to roll back to: {only} is the oldest digest left (earlier rollbacks went back past the others)"
    )]
    RolledBackToOldest { stage: String, only: Digest },
}

/// The stage named `name`, or the error that lists the stages.
fn find_stage<'a>(stages: &'a [Stage], name: &str) -> Result<&'a Stage, PlanError> {
    stages
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| PlanError::UnknownStage {
            stage: name.to_owned(),
            known: stage_names(stages),
        })
}

fn stage_names(stages: &[Stage]) -> String {
    if stages.is_empty() {
        return "none; add [[stages]] to the config".to_owned();
    }
    stages
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
