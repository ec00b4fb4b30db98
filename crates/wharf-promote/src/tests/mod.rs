//! Unit tests: one file per rule, sharing a hand-built ledger and this repository's three
//! stages.

mod dora;
mod notify;
mod plan;
mod rollback;
mod status;
mod validate;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use wharf_ledger::{Draft, Entry};
use wharf_oci::Digest;

use crate::*;

/// A distinct digest per number.
pub(crate) fn d(n: u8) -> Digest {
    Digest::sha256(&[n])
}

/// The tests' clock: minutes after 2026-03-02T10:00:00Z.
pub(crate) fn at(minutes: i64) -> Timestamp {
    let start: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap();
    start + SignedDuration::from_mins(minutes)
}

pub(crate) const REG: &str = "docker://127.0.0.1:5000";

/// What production moves for version 1.2.3 on 2026-03-02.
pub(crate) const PRODUCTION_TAGS: [&str; 6] = [
    "production",
    "stable",
    "1.2.3",
    "1.2",
    "1",
    "production-2026-03-02",
];

/// dev (tests gate) -> staging (every gate but tests, 2 of 4 approvers) -> production
/// (1 signed approval, semver and date tags), staging and production in one repository.
pub(crate) fn stages() -> Vec<Stage> {
    serde_json::from_value(json!([
        {"name": "dev", "location": format!("{REG}/app-dev"), "gates": {"tests": true}},
        {
            "name": "staging", "from": "dev", "location": format!("{REG}/app"),
            "gates": {
                "scan": true, "max_image_bytes": 10_000_000, "soak_minutes": 60,
                "benchmark": {"baseline": "base.json", "current": "cur.json", "max_regression_percent": 10},
                "smoke": {"url": "http://127.0.0.1:8080/health"},
                "approvals": {"required": 2, "approvers": ["alice", "bob", "carol", "erin@example.com"]},
            },
        },
        {
            "name": "production", "from": "staging", "location": format!("{REG}/app"),
            "tags": ["production", "stable"], "semver_tags": true, "date_tag": true,
            "gates": {"approvals": {"required": 1, "signed": true, "allowed_signers": "signers"}},
        },
    ]))
    .unwrap()
}

/// Benchmark results in the documented format.
pub(crate) fn bench(rows: &[(&str, u64)]) -> Vec<u8> {
    let rows: Vec<_> = rows
        .iter()
        .map(|(name, ns)| json!({"name": name, "p95_ns": ns}))
        .collect();
    serde_json::to_vec(&json!({ "benchmarks": rows })).unwrap()
}

/// Evidence on which every staging gate passes (approvals come from the ledger).
pub(crate) fn good_evidence() -> Evidence {
    Evidence {
        image_bytes: Some(5_000_000),
        scan: Some(ScanVerdict {
            report_digest: d(200),
            failures: vec![],
        }),
        benchmark: Some(BenchmarkFiles {
            baseline: bench(&[("http_get", 1_000_000)]),
            current: bench(&[("http_get", 1_050_000)]),
        }),
        smoke: vec![SmokeAttempt {
            status: Some(200),
            error: None,
            elapsed_ms: 12,
        }],
        authors: vec!["erin@example.com".to_owned(), "Erin Author".to_owned()],
        verified_approvals: Default::default(),
        version: Some("1.2.3".to_owned()),
        revision: Some("c0ffee".to_owned()),
        signature: None,
        provenance: None,
        extra: vec![],
    }
}

/// A ledger built entry by entry, as the CLI would append them.
#[derive(Default)]
pub(crate) struct Ledger {
    pub entries: Vec<Entry>,
}

impl Ledger {
    pub fn push(&mut self, draft: Draft) -> u64 {
        let entry = Entry::after(self.entries.last(), draft);
        let seq = entry.seq;
        self.entries.push(entry);
        seq
    }

    /// CI verified `digest` at `minute`, for a commit made an hour before.
    pub fn verify(&mut self, digest: Digest, minute: i64) -> u64 {
        let evidence = VerificationEvidence {
            location: Some(format!("{REG}/ci")),
            commit: Some("c0ffee".to_owned()),
            commit_time: Some(at(minute - 60)),
            ..VerificationEvidence::default()
        };
        self.push(verification_draft(digest, "ci", at(minute), &evidence))
    }

    /// Promotes the current candidate of `stage` (ignoring gates) and returns the plan.
    pub fn promote(&mut self, stage: &str, who: &str, minute: i64) -> PromotionPlan {
        let stages = stages();
        let candidate = candidate(&stages, stage, &self.entries, None).unwrap();
        let plan = plan(
            &stages,
            &candidate,
            &self.entries,
            &good_evidence(),
            at(minute),
        )
        .unwrap();
        self.push(plan.draft(who, at(minute)));
        plan
    }

    /// Verifies `digest` and promotes it into dev.
    pub fn release_to_dev(&mut self, digest: Digest, minute: i64) -> PromotionPlan {
        self.verify(digest, minute);
        self.promote("dev", "ci", minute)
    }

    pub fn rollback(
        &mut self,
        stage: &str,
        who: &str,
        minute: i64,
    ) -> Result<RollbackPlan, PlanError> {
        let plan = plan_rollback(&stages(), stage, &self.entries)?;
        self.push(plan.draft(who, at(minute)));
        Ok(plan)
    }

    pub fn approve(&mut self, stage: &str, digest: &Digest, who: &str, signed: bool) -> u64 {
        let when = self.entries.last().map_or(at(0), |e| e.when);
        let signature = signed.then(|| "-----BEGIN SSH SIGNATURE-----".to_owned());
        self.push(approval_draft(stage, digest.clone(), who, when, signature))
    }
}

/// True when the JSON value holds a floating-point number anywhere.
pub(crate) fn has_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_float),
        serde_json::Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

/// The crate's invariant, checked like a tidy test: no module reaches the file system, the
/// environment, processes, the network or the clock.
#[test]
fn the_crate_stays_pure() {
    let sources = [
        ("lib.rs", include_str!("../lib.rs")),
        ("approvals.rs", include_str!("../approvals.rs")),
        ("benchmark.rs", include_str!("../benchmark.rs")),
        ("config.rs", include_str!("../config.rs")),
        ("dora.rs", include_str!("../dora.rs")),
        ("evidence.rs", include_str!("../evidence.rs")),
        ("gates.rs", include_str!("../gates.rs")),
        ("notify.rs", include_str!("../notify.rs")),
        ("plan.rs", include_str!("../plan.rs")),
        ("rollback.rs", include_str!("../rollback.rs")),
        ("state.rs", include_str!("../state.rs")),
        ("status.rs", include_str!("../status.rs")),
        ("validate.rs", include_str!("../validate.rs")),
    ];
    let banned = [
        "std::fs",
        "std::env",
        "std::process",
        "std::net",
        "std::io",
        "Timestamp::now",
        "SystemTime",
        "Instant",
        "Zoned::now",
    ];
    for (file, source) in sources {
        for word in banned {
            assert!(
                !source.contains(word),
                "src/{file} uses {word}: wharf-promote is pure"
            );
        }
    }
}
