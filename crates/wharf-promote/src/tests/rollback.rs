//! The rollback stack.

use super::*;

/// d(1), d(2), d(3) promoted into dev in turn, at minutes 0, 10, 20.
fn three_in_dev() -> Ledger {
    let mut ledger = Ledger::default();
    for (n, minute) in [(1, 0), (2, 10), (3, 20)] {
        ledger.release_to_dev(d(n), minute);
    }
    ledger
}

fn current(ledger: &Ledger, stage: &str) -> Pushed {
    states(&ledger.entries)[stage].current().unwrap().clone()
}

#[test]
fn rollbacks_walk_down_the_stack_then_stop_with_an_error() {
    let mut ledger = three_in_dev();
    assert_eq!(current(&ledger, "dev").digest, d(3));

    let first = ledger.rollback("dev", "bob", 30).unwrap();
    assert_eq!(
        (first.from_digest.clone(), first.digest.clone()),
        (d(3), d(2))
    );
    let now = current(&ledger, "dev");
    assert_eq!(now.digest, d(2));
    // Current since the rollback, by whoever rolled back, through the rollback entry.
    assert_eq!((now.since, now.by.as_str()), (at(30), "bob"));
    assert_eq!(now.seq, ledger.entries.last().unwrap().seq);

    let second = ledger.rollback("dev", "bob", 40).unwrap();
    assert_eq!((second.from_digest, second.digest), (d(2), d(1)));
    assert_eq!(current(&ledger, "dev").digest, d(1));

    let err = ledger.rollback("dev", "bob", 50).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "dev has nothing to roll back to: {} is the oldest digest left (earlier rollbacks went back past the others)",
            d(1)
        )
    );
}

#[test]
fn a_promotion_after_a_rollback_pushes_on_the_shorter_stack() {
    let mut ledger = three_in_dev();
    ledger.rollback("dev", "bob", 30).unwrap();
    ledger.release_to_dev(d(4), 40);
    let stack: Vec<Digest> = states(&ledger.entries)["dev"]
        .stack
        .iter()
        .map(|p| p.digest.clone())
        .collect();
    assert_eq!(stack, [d(1), d(2), d(4)]);
    assert_eq!(ledger.rollback("dev", "bob", 50).unwrap().digest, d(2));
}

#[test]
fn a_stage_with_one_promotion_or_none_has_nothing_to_roll_back_to() {
    let mut ledger = Ledger::default();
    let err = plan_rollback(&stages(), "dev", &ledger.entries).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dev has nothing to roll back to: nothing was ever promoted there"
    );
    ledger.release_to_dev(d(1), 0);
    let err = plan_rollback(&stages(), "dev", &ledger.entries).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "dev has nothing to roll back to: only {} was ever promoted there",
            d(1)
        )
    );
}

#[test]
fn a_rollback_moves_the_stage_tags_only_and_records_where() {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    ledger.promote("staging", "alice", 100);
    ledger.promote("production", "alice", 200);
    ledger.release_to_dev(d(2), 300);
    ledger.promote("staging", "alice", 400);
    ledger.promote("production", "alice", 500);

    let plan = plan_rollback(&stages(), "production", &ledger.entries).unwrap();
    assert_eq!(plan.tags, ["production", "stable"]);
    assert_eq!(plan.location, format!("{REG}/app"));
    assert_eq!(
        plan.to_string(),
        format!(
            "roll production back from {} to {}\n  at      {REG}/app tags production, stable\n",
            d(2),
            d(1)
        )
    );
    let draft = plan.draft("bob", at(600));
    assert_eq!(draft.kind, wharf_ledger::Kind::Rollback);
    assert_eq!(draft.digest, d(1));
    assert_eq!(draft.to.as_deref(), Some("production"));
    ledger.push(draft);
    let back = RollbackEvidence::of(ledger.entries.last().unwrap()).unwrap();
    assert_eq!(back.rolled_back, d(2));
    assert_eq!(back.tags, ["production", "stable"]);
    assert_eq!(back.location, format!("{REG}/app"));
}

#[test]
fn a_rollback_entry_naming_another_digest_wins_over_the_stack() {
    let mut ledger = three_in_dev();
    // Written by something else: back to d(9), which was never below d(3).
    let mut draft = plan_rollback(&stages(), "dev", &ledger.entries)
        .unwrap()
        .draft("ops", at(30));
    draft.digest = d(9);
    ledger.push(draft);
    let stack: Vec<Digest> = states(&ledger.entries)["dev"]
        .stack
        .iter()
        .map(|p| p.digest.clone())
        .collect();
    assert_eq!(stack, [d(1), d(9)]);
}
