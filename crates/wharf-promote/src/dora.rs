//! The four DORA figures, from the ledger, after the DORA team's definitions (the Four Keys
//! project's `METRICS.md` and the State of DevOps reports), for the final stage (production)
//! over a window `[since, now]`.
//!
//! - **Deployment frequency**: how often changes reach production: the number of
//!   promotion entries into the final stage whose time is in the window, and that number
//!   per day and per week of the window. (Rollbacks are not deployments of a change.)
//! - **Lead time for changes**: how long a commit takes to reach production: for each of
//!   those promotions, its time minus the commit time recorded in the digest's verification
//!   entry (evidence key `commit_time`, RFC 3339); the median over the promotions that have
//!   one. Promotions whose verification records no commit time are counted in
//!   `lead_time_unknown`.
//! - **Change failure rate**: the share of those promotions that failed in production: the
//!   stage was later rolled back from the promoted digest, or a deploy entry for it reported
//!   `"outcome": "failed"` while it was current. Failed promotions divided by all promotions
//!   in the window (`None` when there were none).
//! - **Failed deployment recovery time** (formerly "time to restore service"): for each
//!   failed promotion in the window, the time from when its digest became current in the
//!   stage to the entry that restored the stage (the rollback, or the next promotion into
//!   the stage after a failed deploy); the median over those restored so far. Failures not
//!   yet restored are counted in `unrecovered`.
//!
//! Figures are floats: they are printed, never written to the ledger.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Entry, Kind};

use crate::config::Stage;
use crate::evidence::{DeployEvidence, DeployOutcome, VerificationEvidence};
use crate::state::{StageState, verification_for};
use crate::{PlanError, find_stage};

/// The DORA figures for one stage over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dora {
    pub stage: String,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Promotions into the stage in the window.
    pub deployments: u64,
    /// `None` for an empty window.
    pub deployments_per_day: Option<f64>,
    pub deployments_per_week: Option<f64>,
    /// Commit to production, in seconds.
    pub lead_time: Option<Median>,
    /// Promotions whose verification entry records no commit time.
    pub lead_time_unknown: u64,
    /// Failed promotions in the window.
    pub failed_deployments: u64,
    /// `failed_deployments / deployments`; `None` with no deployments.
    pub change_failure_rate: Option<f64>,
    /// Failure to restoring entry, in seconds.
    pub recovery_time: Option<Median>,
    /// Failed promotions not yet restored.
    pub unrecovered: u64,
}

/// A median and how many values it is the median of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Median {
    pub median_secs: f64,
    pub samples: u64,
}

/// A promotion that failed: when its digest became current and when the stage was restored.
struct Failure {
    since: Timestamp,
    restored: Option<Timestamp>,
}

/// The DORA figures of `final_stage` between `since` and `now` (see the module docs for
/// each definition).
pub fn dora(
    stages: &[Stage],
    entries: &[Entry],
    final_stage: &str,
    since: Timestamp,
    now: Timestamp,
) -> Result<Dora, PlanError> {
    let stage = &find_stage(stages, final_stage)?.name;
    let deployments: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.kind == Kind::Promotion && e.to.as_ref() == Some(stage))
        .filter(|e| since <= e.when && e.when <= now)
        .collect();
    let count = deployments.len() as u64;
    let days = now.duration_since(since).as_secs_f64() / 86_400.0;
    let per_day = (days > 0.0).then(|| count as f64 / days);

    let mut lead = Vec::new();
    for promotion in &deployments {
        let commit_time = verification_for(entries, &promotion.digest)
            .and_then(|v| VerificationEvidence::of(v).commit_time);
        if let Some(t) = commit_time {
            lead.push(promotion.when.duration_since(t).as_secs());
        }
    }

    let failures = failures(entries, stage);
    let failed: Vec<&Failure> = deployments
        .iter()
        .filter_map(|p| failures.get(&p.seq))
        .collect();
    let recovery: Vec<i64> = failed
        .iter()
        .filter_map(|f| f.restored.map(|r| r.duration_since(f.since).as_secs()))
        .collect();

    Ok(Dora {
        stage: stage.clone(),
        since,
        until: now,
        deployments: count,
        deployments_per_day: per_day,
        deployments_per_week: per_day.map(|d| d * 7.0),
        lead_time_unknown: count - lead.len() as u64,
        lead_time: median(lead),
        failed_deployments: failed.len() as u64,
        change_failure_rate: (count > 0).then(|| failed.len() as f64 / count as f64),
        unrecovered: (failed.len() - recovery.len()) as u64,
        recovery_time: median(recovery),
    })
}

/// Failed promotions into `stage`, by the promotion's seq, replaying the stage's stack.
fn failures(entries: &[Entry], stage: &str) -> BTreeMap<u64, Failure> {
    let mut state = StageState::default();
    let mut failed: BTreeMap<u64, Failure> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.to.as_deref() == Some(stage)) {
        match entry.kind {
            Kind::Promotion | Kind::Rollback => {
                // Whatever entry next changes the stage restores a failed deploy.
                for f in failed.values_mut().filter(|f| f.restored.is_none()) {
                    f.restored = Some(entry.when);
                }
                if let Some(popped) = state.apply(entry) {
                    failed.entry(popped.promoted_seq).or_insert(Failure {
                        since: popped.since,
                        restored: Some(entry.when),
                    });
                }
            }
            Kind::Deploy => {
                let deploy_failed =
                    DeployEvidence::of(entry).is_some_and(|d| d.outcome == DeployOutcome::Failed);
                if let Some(top) = state.current().filter(|t| t.digest == entry.digest)
                    && deploy_failed
                {
                    failed.entry(top.promoted_seq).or_insert(Failure {
                        since: top.since,
                        restored: None,
                    });
                }
            }
            _ => {}
        }
    }
    failed
}

fn median(mut values: Vec<i64>) -> Option<Median> {
    values.sort_unstable();
    let n = values.len();
    let median_secs = match n {
        0 => return None,
        _ if n % 2 == 1 => values[n / 2] as f64,
        _ => (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0,
    };
    Some(Median {
        median_secs,
        samples: n as u64,
    })
}
