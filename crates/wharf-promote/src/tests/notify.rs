//! Webhook messages.

use super::*;

fn staging_plan(minute: i64) -> PromotionPlan {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    let stages = stages();
    let candidate = candidate(&stages, "staging", &ledger.entries, None).unwrap();
    plan(
        &stages,
        &candidate,
        &ledger.entries,
        &good_evidence(),
        at(minute),
    )
    .unwrap()
}

#[test]
fn a_promotion_is_announced_in_wharfs_format_and_slacks() {
    let note = Notification::promoted(&staging_plan(120), "alice", at(121));
    let text = format!("promoted {} into staging from dev (by alice)", d(1).short());
    assert_eq!(
        note.to_json(),
        json!({
            "kind": "wharf-notification",
            "version": 1,
            "event": "promotion",
            "stage": "staging",
            "digest": d(1).to_string(),
            "who": "alice",
            "when": "2026-03-02T12:01:00Z",
            "message": text,
            "failed_gates": [],
        })
    );
    assert_eq!(note.to_slack(), json!({ "text": format!("wharf: {text}") }));
}

#[test]
fn failed_gates_are_announced_one_per_line() {
    // At minute 12: soak not reached; no approvals.
    let note = Notification::gate_failed(&staging_plan(12), "alice", at(12));
    assert_eq!(note.event, Event::GateFailed);
    let gates: Vec<&str> = note.failed_gates.iter().map(|g| g.gate.as_str()).collect();
    assert_eq!(gates, ["soak", "approvals"]);
    assert_eq!(
        note.message,
        format!(
            "promotion of {} into staging blocked by soak, approvals (asked by alice)",
            d(1).short()
        )
    );
    let json = note.to_json();
    assert_eq!(json["event"], "gate_failed");
    assert_eq!(json["failed_gates"][0]["gate"], "soak");
    let slack = note.to_slack()["text"].as_str().unwrap().to_owned();
    assert_eq!(slack.lines().count(), 3, "{slack}");
    assert!(slack.lines().nth(1).unwrap().starts_with("• soak: "));
}

#[test]
fn a_rollback_is_announced_with_both_digests() {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    ledger.release_to_dev(d(2), 5);
    let plan = plan_rollback(&stages(), "dev", &ledger.entries).unwrap();
    let note = Notification::rolled_back(&plan, "bob", at(6));
    assert_eq!(note.to_json()["event"], "rollback");
    assert_eq!(note.digest, d(1));
    assert_eq!(
        note.message,
        format!(
            "rolled dev back from {} to {} (by bob)",
            d(2).short(),
            d(1).short()
        )
    );
}
