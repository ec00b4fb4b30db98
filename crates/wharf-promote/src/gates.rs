//! The gates other than approvals and benchmarks: each one a small function from the
//! evidence to a [`GateResult`].

use jiff::Timestamp;
use serde_json::json;
use wharf_ledger::Entry;
use wharf_oci::Digest;

use crate::config::{ProvenanceGate, SmokeGate};
use crate::evidence::{
    BuiltBy, GateResult, ProvenanceVerdict, ScanVerdict, SignatureVerdict, SmokeAttempt,
    VerificationEvidence,
};
use crate::state::verification_for;

fn result(gate: &str, passed: bool, message: String, evidence: serde_json::Value) -> GateResult {
    GateResult {
        gate: gate.to_owned(),
        passed,
        message: format!("{gate}: {message}"),
        evidence,
    }
}

/// The digest is still where the candidate said: current in the `from` stage (`current`),
/// or verified for a first stage (`verification`: the entry's seq). Re-checked at plan time because another writer may have
/// moved the `from` stage since the candidate was chosen.
pub(crate) fn source(
    digest: &Digest,
    from: Option<&str>,
    current: Option<(&Digest, u64)>,
    verification: Option<u64>,
) -> GateResult {
    let Some(from) = from else {
        let verified = verification.is_some();
        let message = match verification {
            Some(seq) => format!("{} was verified by CI (entry {seq})", digest.short()),
            None => format!(
                "{} has no verification entry (only digests the ci pipeline verified enter a first stage)",
                digest.short()
            ),
        };
        return result(
            "source",
            verified,
            message,
            json!({ "digest": digest, "seq": verification }),
        );
    };
    let evidence =
        json!({ "stage": from, "current": current.map(|c| c.0), "seq": current.map(|c| c.1) });
    match current {
        Some((c, _)) if c == digest => result(
            "source",
            true,
            format!("{} is current in {from}", digest.short()),
            evidence,
        ),
        Some((c, _)) => result(
            "source",
            false,
            format!(
                "{} is no longer current in {from}: {} is (plan again)",
                digest.short(),
                c.short()
            ),
            evidence,
        ),
        None => result(
            "source",
            false,
            format!("{from} has no digest (promote into {from} first)"),
            evidence,
        ),
    }
}

/// A verification entry for the digest (CI built and tested it).
pub(crate) fn tests(entries: &[Entry], digest: &Digest) -> GateResult {
    let Some(entry) = verification_for(entries, digest) else {
        return result(
            "tests",
            false,
            format!(
                "no verification entry for {} in the ledger (the ci pipeline records one for the digest it built and tested)",
                digest.short()
            ),
            json!({ "digest": digest }),
        );
    };
    let commit = VerificationEvidence::of(entry).commit;
    result(
        "tests",
        true,
        format!(
            "verified by CI at {} (entry {}, commit {})",
            entry.when,
            entry.seq,
            commit.as_deref().unwrap_or("unknown")
        ),
        json!({ "seq": entry.seq, "commit": commit, "when": entry.when }),
    )
}

/// The scan report's verdict under the policy in force.
pub(crate) fn signature(verdict: Option<&SignatureVerdict>, digest: &Digest) -> GateResult {
    let Some(verdict) = verdict else {
        return result(
            "signature",
            false,
            format!("the signatures of {} were not checked", digest.short()),
            json!({ "matched_keys": [] }),
        );
    };
    let evidence = json!({
        "location": verdict.location,
        "matched_keys": verdict.matched_keys,
        "keys": verdict.keys,
        "failures": verdict.failures,
    });
    if !verdict.matched_keys.is_empty() {
        let message = format!(
            "signed by key {} (cosign signature in {})",
            verdict.matched_keys.join(", "),
            verdict.location
        );
        return result("signature", true, message, evidence);
    }
    let why = if verdict.failures.is_empty() {
        format!(
            "{} has no signature in {} (sign it: cargo xtask sign IMAGE --key KEY)",
            digest.short(),
            verdict.location
        )
    } else {
        format!(
            "no signature of {} in {} verifies with key {}: {}",
            digest.short(),
            verdict.location,
            verdict.keys.join(", "),
            verdict.failures.join("; ")
        )
    };
    result("signature", false, why, evidence)
}

pub(crate) fn provenance(
    rule: &ProvenanceGate,
    verdict: Option<&ProvenanceVerdict>,
    digest: &Digest,
) -> GateResult {
    let Some(verdict) = verdict else {
        return result(
            "provenance",
            false,
            format!("the provenance of {} was not checked", digest.short()),
            json!({ "verified": [] }),
        );
    };
    let evidence = json!({
        "location": verdict.location,
        "keys": verdict.keys,
        "verified": verdict.verified,
        "failures": verdict.failures,
        "builder": rule.builder,
        "source": rule.source,
    });
    let fits = |b: &&BuiltBy| rule.builder_matches(&b.builder) && rule.source_matches(&b.source);
    if let Some(built) = verdict.verified.iter().find(fits) {
        let message = format!(
            "built by {} from {} at {} (signed by key {})",
            built.builder,
            built.source,
            built.commit,
            built.keys.join(", ")
        );
        return result("provenance", true, message, evidence);
    }
    let mut why = Vec::new();
    for built in &verdict.verified {
        if !rule.builder_matches(&built.builder) {
            why.push(format!(
                "built by {}, not {}",
                built.builder,
                rule.builder.as_deref().unwrap_or_default()
            ));
        } else {
            why.push(format!(
                "built from {}, not {}",
                built.source,
                rule.source.as_deref().unwrap_or_default()
            ));
        }
    }
    why.extend(verdict.failures.iter().cloned());
    let message = if why.is_empty() {
        format!(
            "{} has no provenance in {} (attach it: cargo xtask sign IMAGE --key KEY --provenance)",
            digest.short(),
            verdict.location
        )
    } else {
        format!(
            "no provenance of {} in {} fits: {}",
            digest.short(),
            verdict.location,
            why.join("; ")
        )
    };
    result("provenance", false, message, evidence)
}

pub(crate) fn scan(verdict: Option<&ScanVerdict>, digest: &Digest) -> GateResult {
    let Some(verdict) = verdict else {
        return result(
            "scan",
            false,
            format!(
                "no scan report is attached to {} (run the scan step on the image before promoting it)",
                digest.short()
            ),
            json!({ "report_digest": null }),
        );
    };
    let evidence = json!({ "report_digest": verdict.report_digest, "failures": verdict.failures });
    let n = verdict.failures.len();
    if n == 0 {
        let message = format!("report {} passes the policy", verdict.report_digest.short());
        return result("scan", true, message, evidence);
    }
    let findings = if n == 1 {
        "1 finding fails"
    } else {
        "findings fail"
    };
    let count = if n == 1 {
        String::new()
    } else {
        format!("{n} ")
    };
    let message = format!(
        "{count}{findings} the policy: {}",
        verdict.failures.join("; ")
    );
    result("scan", false, message, evidence)
}

/// The image's size against the budget.
pub(crate) fn size(bytes: Option<u64>, budget: u64) -> GateResult {
    let evidence = json!({ "bytes": bytes, "budget_bytes": budget });
    match bytes {
        None => result(
            "size",
            false,
            "the image's size was not read".to_owned(),
            evidence,
        ),
        Some(b) if b <= budget => result(
            "size",
            true,
            format!("{b} bytes, budget {budget} bytes"),
            evidence,
        ),
        Some(b) => result(
            "size",
            false,
            format!(
                "{b} bytes is over the budget of {budget} bytes (make the image smaller or raise max_image_bytes)"
            ),
            evidence,
        ),
    }
}

/// Minutes since the digest entered the `from` stage (`from`), or since CI verified it for
/// a first stage (`None`), against the minutes needed.
pub(crate) fn soak(
    digest: &Digest,
    from: Option<&str>,
    entered: Option<Timestamp>,
    needed: u64,
    now: Timestamp,
) -> GateResult {
    let (event, missing) = match from {
        Some(stage) => (format!("entered {stage}"), format!("is not in {stage}")),
        None => (
            "was verified by CI".to_owned(),
            "has no verification entry".to_owned(),
        ),
    };
    let Some(entered) = entered else {
        return result(
            "soak",
            false,
            format!("{} {missing}, {needed} min needed", digest.short()),
            json!({ "entered": null, "needed_minutes": needed }),
        );
    };
    let minutes = u64::try_from(now.duration_since(entered).as_secs()).unwrap_or(0) / 60;
    let evidence = json!({ "entered": entered, "minutes": minutes, "needed_minutes": needed });
    let message = format!(
        "{} {event} {minutes} min ago, {needed} min needed",
        digest.short()
    );
    result("soak", minutes >= needed, message, evidence)
}

/// HTTP checks against the stage's endpoint: passes when an attempt got the expected status.
pub(crate) fn smoke(rules: &SmokeGate, attempts: &[SmokeAttempt]) -> GateResult {
    let evidence = json!({
        "url": rules.url,
        "expect_status": rules.expect_status,
        "attempts": attempts,
    });
    let expect = rules.expect_status;
    if let Some(ok) = attempts.iter().position(|a| a.status == Some(expect)) {
        let message = format!(
            "{} answered {expect} on attempt {} of {}",
            rules.url,
            ok + 1,
            attempts.len()
        );
        return result("smoke", true, message, evidence);
    }
    let Some(last) = attempts.last() else {
        let message = format!("no attempt was made against {}", rules.url);
        return result("smoke", false, message, evidence);
    };
    let got = match (last.status, &last.error) {
        (Some(status), _) => format!("{status}"),
        (None, Some(error)) => format!("error {error:?}"),
        (None, None) => "no response".to_owned(),
    };
    let message = format!(
        "no attempt of {} got {expect} from {} (last: {got} after {} ms)",
        attempts.len(),
        rules.url,
        last.elapsed_ms
    );
    result("smoke", false, message, evidence)
}

/// `semver_tags` needs the image's version label; without one the tags cannot be made.
pub(crate) fn version(version: Option<&str>, problem: Option<String>) -> GateResult {
    let evidence = json!({ "version": version });
    match problem {
        None => result(
            "version",
            true,
            format!("version {} gives the semver tags", version.unwrap_or("")),
            evidence,
        ),
        Some(problem) => result("version", false, problem, evidence),
    }
}
