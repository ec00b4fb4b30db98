//! Approvals: what an approver signs, the approval entry, and the N-of-M gate.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use wharf_ledger::{Draft, Entry, Kind};
use wharf_oci::Digest;

use crate::config::ApprovalGate;
use crate::evidence::{Evidence, GateResult};
use crate::state::{approvals_for, consumed};

/// The `kind` inside an approval message, so a signature made for something else never
/// passes for an approval.
pub const APPROVAL_KIND: &str = "wharf-approval";

/// The exact bytes an approver signs (`ssh-keygen -Y sign -n wharf-approval`) and the CLI
/// verifies: canonical JSON (sorted keys, no spaces)
/// `{"digest":"sha256:…","kind":"wharf-approval","stage":"production","who":"alice"}`.
/// Binding the stage, the digest and the approver means a signature cannot be replayed for
/// another digest, stage or person.
pub fn approval_message(stage: &str, digest: &Digest, who: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Message<'a> {
        digest: &'a Digest,
        kind: &'static str,
        stage: &'a str,
        who: &'a str,
    }
    wharf_oci::manifest::canonical_json(&Message {
        digest,
        kind: APPROVAL_KIND,
        stage,
        who,
    })
}

/// The ledger entry recording that `who` approved `digest` for `stage`, with the armored
/// SSH signature over [`approval_message`] when signed.
pub fn approval_draft(
    stage: &str,
    digest: Digest,
    who: &str,
    now: Timestamp,
    signature: Option<String>,
) -> Draft {
    Draft {
        kind: Kind::Approval,
        who: who.to_owned(),
        when: now,
        digest,
        from: None,
        to: Some(stage.to_owned()),
        evidence: json!({ "signed": signature.is_some() }),
        signature,
    }
}

/// Identities compare without case: emails are case-insensitive in practice and so are
/// GitHub logins, and treating `Bob` and `bob` as two approvers would let one person count
/// twice.
fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Why an approval does not count, or `None` when it does.
fn rejection(
    entry: &Entry,
    rules: &ApprovalGate,
    evidence: &Evidence,
    verified: &BTreeSet<u64>,
) -> Option<String> {
    if evidence.authors.iter().any(|a| same(a, &entry.who)) {
        return Some("author of the change".to_owned());
    }
    if !rules.approvers.is_empty() && !rules.approvers.iter().any(|a| same(a, &entry.who)) {
        return Some("not an allowed approver".to_owned());
    }
    if rules.signed && !verified.contains(&entry.seq) {
        let why = match entry.signature {
            None => "not signed",
            Some(_) => "signature not verified",
        };
        return Some(why.to_owned());
    }
    None
}

/// The approvals gate for `digest` entering `stage`.
///
/// Counts distinct approvers (case-insensitive) among the stage's approval entries for this
/// digest, leaving out the change's author, anyone outside `approvers` (when given), and,
/// when `signed`, anyone whose entry's seq is not in [`Evidence::verified_approvals`]. The
/// evidence lists who counted and every approval that did not, with why, including
/// approvals for another digest of this stage that was not promoted since ("approved
/// sha256:… not this digest").
pub(crate) fn gate(
    rules: &ApprovalGate,
    stage: &str,
    digest: &Digest,
    entries: &[Entry],
    evidence: &Evidence,
) -> GateResult {
    let mut counted: Vec<&Entry> = Vec::new();
    let mut rejected: Vec<(&Entry, String)> = Vec::new();
    for entry in approvals_for(entries, stage) {
        let reason = if &entry.digest == digest {
            rejection(entry, rules, evidence, &evidence.verified_approvals)
        } else if consumed(entries, entry) {
            continue;
        } else {
            Some(format!("approved {} not this digest", entry.digest.short()))
        };
        match reason {
            None if !counted.iter().any(|c| same(&c.who, &entry.who)) => counted.push(entry),
            None => {}
            Some(reason) => rejected.push((entry, reason)),
        }
    }
    // One person approving twice counts once, and an approval that did not count says
    // nothing about someone who is counted through another one.
    rejected.retain(|(e, _)| !counted.iter().any(|c| same(&c.who, &e.who)));
    let mut seen: Vec<(String, String)> = Vec::new();
    rejected.retain(|(e, why)| {
        let key = (e.who.trim().to_ascii_lowercase(), why.clone());
        let first = !seen.contains(&key);
        seen.push(key);
        first
    });

    let required = rules.required;
    let passed = counted.len() as u64 >= u64::from(required);
    let names: Vec<&str> = counted.iter().map(|e| e.who.as_str()).collect();
    let mut message = format!("approvals: {} of {required}", counted.len());
    if !names.is_empty() {
        message.push_str(&format!(" ({})", names.join(", ")));
    }
    if !rejected.is_empty() {
        let list: Vec<String> = rejected
            .iter()
            .map(|(e, why)| format!("{} ({why})", e.who))
            .collect();
        message.push_str(&format!("; not counted: {}", list.join(", ")));
    }
    if !passed {
        message.push_str(&format!(
            " (an allowed approver other than the author runs `cargo xtask approve {stage} {digest}`)"
        ));
    }
    GateResult {
        gate: "approvals".to_owned(),
        passed,
        message,
        evidence: json!({
            "required": required,
            "signed": rules.signed,
            "authors": evidence.authors,
            "counted": counted.iter().map(|e| json!({"who": e.who, "seq": e.seq})).collect::<Vec<_>>(),
            "rejected": rejected.iter().map(|(e, why)| json!({
                "who": e.who, "seq": e.seq, "digest": e.digest, "reason": why,
            })).collect::<Vec<_>>(),
        }),
    }
}
