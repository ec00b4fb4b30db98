//! What the caller gathers before planning ([`Evidence`]), what a gate reports
//! ([`GateResult`]), and the typed evidence of each ledger entry kind, which the CLI can read
//! back from entries.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Draft, Kind};
use wharf_oci::Digest;
use wharf_tag::Tag;

use crate::plan::{Source, Target};

/// Everything [`plan`](crate::plan) needs from the world, gathered by the caller as
/// [`Needs`](crate::Needs) asks. What a gate needs and did not get makes that gate fail.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The image's pushed size: manifest, config and layers, in bytes.
    #[serde(default)]
    pub image_bytes: Option<u64>,
    /// The attached scan report, re-checked by the caller against the policy in force.
    #[serde(default)]
    pub scan: Option<ScanVerdict>,
    /// The benchmark gate's two files, as read.
    #[serde(default)]
    pub benchmark: Option<BenchmarkFiles>,
    /// The smoke test's attempts, in order.
    #[serde(default)]
    pub smoke: Vec<SmokeAttempt>,
    /// Who wrote the change: the image revision commit's author email and name.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Seqs of the approval entries whose SSH signature `ssh-keygen -Y verify` accepted
    /// against the stage's allowed-signers file.
    #[serde(default)]
    pub verified_approvals: BTreeSet<u64>,
    /// The image's `org.opencontainers.image.version` label (for semver tags).
    #[serde(default)]
    pub version: Option<String>,
    /// The image's `org.opencontainers.image.revision` label (the commit).
    #[serde(default)]
    pub revision: Option<String>,
    /// The image's cosign signatures, checked against the signature gate's keys.
    #[serde(default)]
    pub signature: Option<SignatureVerdict>,
    /// The provenance attached to the image, checked against the provenance gate's keys.
    #[serde(default)]
    pub provenance: Option<ProvenanceVerdict>,
    /// Gates added by other features: counted like the others. Their evidence must hold no
    /// floating-point numbers.
    #[serde(default)]
    pub extra: Vec<GateResult>,
}

/// The image's signatures as the caller checked them (`wharf_sign::Verification`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureVerdict {
    /// Where the signatures were read (the source location).
    pub location: String,
    /// The ids of the gate's keys that verified a signature of the digest; empty: none.
    pub matched_keys: Vec<String>,
    /// The ids of the gate's keys.
    pub keys: Vec<String>,
    /// Why each signature failed, one line each (empty when the image has none or one
    /// verified).
    pub failures: Vec<String>,
}

/// The provenance attached to the image as the caller checked it
/// (`wharf_sign::provenance::check` on each envelope).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceVerdict {
    /// Where it was read (the source location).
    pub location: String,
    /// The ids of the gate's keys.
    pub keys: Vec<String>,
    /// Each envelope that verified with one of the keys and is about the image: who built
    /// it, from where.
    pub verified: Vec<BuiltBy>,
    /// Why each other envelope failed, one line each.
    pub failures: Vec<String>,
}

/// What a verified provenance says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltBy {
    pub builder: String,
    pub source: String,
    pub commit: String,
    /// The ids of the keys that signed it.
    pub keys: Vec<String>,
}

/// The scan report attached to the image, judged by the policy in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanVerdict {
    /// The report's digest (the referrer read).
    pub report_digest: Digest,
    /// Each finding that fails the policy, as the policy prints it, e.g.
    /// `RUSTSEC-0000-0000 (critical) in foo 1.0.0`. Empty: clean.
    pub failures: Vec<String>,
}

/// The benchmark gate's files, as bytes (the format is [`BenchmarkFile`](crate::BenchmarkFile)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkFiles {
    pub baseline: Vec<u8>,
    pub current: Vec<u8>,
}

/// One HTTP attempt of the smoke test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeAttempt {
    /// The response status; `None` when no response came.
    pub status: Option<u16>,
    /// Why no response came (connection refused, timeout).
    #[serde(default)]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// One gate's verdict. `evidence` holds no floating-point numbers (it goes into the ledger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateResult {
    /// `tests`, `scan`, `size`, `soak`, `benchmark`, `smoke`, `approvals`, ...
    pub gate: String,
    pub passed: bool,
    /// Starts with the gate's name; names the evidence that decided it.
    pub message: String,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

/// A promotion entry's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromotionEvidence {
    pub source: Source,
    pub target: Target,
    /// The stage's digest before this promotion.
    #[serde(default)]
    pub previous: Option<Digest>,
    #[serde(default)]
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// A rollback entry's evidence (the entry's `digest` is the one the stage went back to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackEvidence {
    /// The digest rolled back from.
    pub rolled_back: Digest,
    pub location: String,
    /// The tags moved back.
    pub tags: Vec<Tag>,
}

/// A verification entry's evidence, written by the ci pipeline for the digest it built and
/// tested. Unknown keys are allowed (CI may record more).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationEvidence {
    /// Where CI pushed the image (`docker://HOST/REPO` or `oci:DIR`): the first stage's source.
    #[serde(default)]
    pub location: Option<String>,
    /// The commit built.
    #[serde(default)]
    pub commit: Option<String>,
    /// The commit's time, RFC 3339 (lead time for changes counts from it).
    #[serde(default)]
    pub commit_time: Option<Timestamp>,
    /// The image's tags as built.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The steps that passed before the record.
    #[serde(default)]
    pub steps: Vec<String>,
    /// The scan report the run wrote (for a layout, where nothing is attached): what the scan
    /// gate reads, trusted only while the file still has this digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_report: Option<RecordedFile>,
}

/// A file a verification recorded, by path (relative to the workspace) and digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    pub path: String,
    pub digest: Digest,
}

/// How a deploy ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployOutcome {
    Succeeded,
    Failed,
}

/// A deploy entry's evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployEvidence {
    pub outcome: DeployOutcome,
    /// What happened, for people.
    #[serde(default)]
    pub detail: String,
    /// Where it ran (`docker`, `kubernetes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What served before the deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
    /// A `deploy --rollback`: back to the last digest that deployed healthy before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// The ledger entry CI writes for a digest it built and tested.
pub fn verification_draft(
    digest: Digest,
    who: &str,
    now: Timestamp,
    evidence: &VerificationEvidence,
) -> Draft {
    Draft {
        kind: Kind::Verification,
        who: who.to_owned(),
        when: now,
        digest,
        from: None,
        to: None,
        evidence: to_value(evidence),
        signature: None,
    }
}

/// The ledger entry for the end of a deploy of `digest` to `stage`.
pub fn deploy_draft(
    stage: &str,
    digest: Digest,
    who: &str,
    now: Timestamp,
    evidence: &DeployEvidence,
) -> Draft {
    Draft {
        kind: Kind::Deploy,
        who: who.to_owned(),
        when: now,
        digest,
        from: None,
        to: Some(stage.to_owned()),
        evidence: to_value(evidence),
        signature: None,
    }
}

/// Serializes typed evidence with every float turned into its decimal string, so that a
/// float from an `extra` gate can never make the ledger's canonical JSON fail.
pub(crate) fn to_value<T: Serialize>(evidence: &T) -> serde_json::Value {
    let mut value =
        serde_json::to_value(evidence).expect("evidence types serialize to JSON without fail");
    without_floats(&mut value);
    value
}

pub(crate) fn without_floats(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => *value = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(without_floats),
        Value::Object(map) => map.values_mut().for_each(without_floats),
        _ => {}
    }
}

/// Reads typed evidence back from an entry; `None` when it has another shape.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(value: &serde_json::Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}

impl PromotionEvidence {
    /// This promotion entry's evidence, if it has that shape.
    pub fn of(entry: &wharf_ledger::Entry) -> Option<PromotionEvidence> {
        (entry.kind == Kind::Promotion)
            .then(|| read(&entry.evidence))
            .flatten()
    }
}

impl RollbackEvidence {
    /// This rollback entry's evidence, if it has that shape.
    pub fn of(entry: &wharf_ledger::Entry) -> Option<RollbackEvidence> {
        (entry.kind == Kind::Rollback)
            .then(|| read(&entry.evidence))
            .flatten()
    }
}

impl VerificationEvidence {
    /// This verification entry's evidence (empty when it has another shape).
    pub fn of(entry: &wharf_ledger::Entry) -> VerificationEvidence {
        read(&entry.evidence).unwrap_or_default()
    }
}

impl DeployEvidence {
    /// This deploy entry's evidence, if it has that shape.
    pub fn of(entry: &wharf_ledger::Entry) -> Option<DeployEvidence> {
        (entry.kind == Kind::Deploy)
            .then(|| read(&entry.evidence))
            .flatten()
    }
}

/// The digests that deployed healthy to `stage`, newest first, each once: what `deploy
/// --rollback` chooses from (the first that is not the one serving).
pub fn healthy_deploys(entries: &[wharf_ledger::Entry], stage: &str) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for entry in entries.iter().rev() {
        let healthy = entry.to.as_deref() == Some(stage)
            && DeployEvidence::of(entry).is_some_and(|e| e.outcome == DeployOutcome::Succeeded);
        if healthy && !out.contains(&entry.digest) {
            out.push(entry.digest.clone());
        }
    }
    out
}
