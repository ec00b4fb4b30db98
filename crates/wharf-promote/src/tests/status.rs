//! Status, history and the tags that must point where.

use super::*;

fn tags_of(desired: &[DesiredTag], stage: &str) -> Vec<(String, Digest)> {
    desired
        .iter()
        .filter(|t| t.stage == stage)
        .map(|t| (t.tag.to_string(), t.digest.clone()))
        .collect()
}

/// d(1) through dev, staging and production; d(2) in dev and staging; approvals waiting.
fn busy() -> Ledger {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    ledger.approve("staging", &d(1), "alice", false);
    ledger.promote("staging", "alice", 100);
    ledger.promote("production", "carol", 200);
    ledger.release_to_dev(d(2), 300);
    ledger.promote("staging", "bob", 400);
    ledger.approve("production", &d(2), "carol", true);
    ledger.approve("production", &d(2), "CAROL", true);
    ledger.approve("production", &d(2), "dave", false);
    ledger
}

#[test]
fn status_shows_each_stage_its_digest_since_by_tags_and_what_waits() {
    let ledger = busy();
    let status = status(&stages(), &ledger.entries);
    let names: Vec<&str> = status.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["dev", "staging", "production"]);

    let staging = &status[1];
    assert_eq!(staging.digest, Some(d(2)));
    assert_eq!(staging.since, Some(at(400)));
    assert_eq!(staging.by.as_deref(), Some("bob"));
    assert_eq!(staging.tags, ["staging"]);
    // alice's approval of d(1) was used by d(1)'s promotion: nothing waits.
    assert_eq!(staging.waiting, []);

    let production = &status[2];
    assert_eq!(production.digest, Some(d(1)));
    assert_eq!(production.location, format!("{REG}/app"));
    assert_eq!(production.tags, PRODUCTION_TAGS);
    assert_eq!(
        production.waiting,
        [Waiting {
            digest: d(2),
            approvals: vec!["carol".into(), "dave".into()],
        }]
    );
}

#[test]
fn status_of_an_empty_ledger_names_every_stage_with_nothing_in_it() {
    let status = status(&stages(), &[]);
    assert_eq!(status.len(), 3);
    assert!(
        status
            .iter()
            .all(|s| s.digest.is_none() && s.tags.is_empty())
    );
}

#[test]
fn history_lists_the_entries_into_or_out_of_a_stage() {
    let ledger = busy();
    let staging: Vec<u64> = history(&ledger.entries, "staging")
        .iter()
        .map(|e| e.seq)
        .collect();
    // approval (3), promotion into staging (4), promotion out to production (5), the second
    // promotion into staging (8).
    assert_eq!(staging, [3, 4, 5, 8]);
    assert!(history(&ledger.entries, "qa").is_empty());
}

#[test]
fn desired_tags_follow_the_last_promotion_or_rollback_entry() {
    let mut ledger = busy();
    ledger.promote("production", "carol", 500);
    let before = desired(&stages(), &ledger.entries);
    assert_eq!(tags_of(&before, "dev"), [("dev".to_owned(), d(2))]);
    let production = tags_of(&before, "production");
    assert_eq!(production.len(), 6);
    assert!(production.iter().all(|(_, digest)| digest == &d(2)));
    assert!(
        before
            .iter()
            .filter(|t| t.stage == "production")
            .all(|t| t.location == format!("{REG}/app"))
    );

    // After a rollback, the stage's own tags point back; version and date tags stay.
    ledger.rollback("production", "carol", 600).unwrap();
    let after = desired(&stages(), &ledger.entries);
    assert_eq!(
        tags_of(&after, "production"),
        [("production".to_owned(), d(1)), ("stable".to_owned(), d(1))]
    );
}
