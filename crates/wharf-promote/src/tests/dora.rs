//! DORA figures on a hand-made ledger with known answers.

use super::*;

/// Verifies `n` at `minute` (commit an hour before), then promotes it through dev and
/// staging to production at `production`.
fn release(ledger: &mut Ledger, n: u8, minute: i64, production: i64) {
    ledger.release_to_dev(d(n), minute);
    ledger.promote("staging", "alice", minute + 10);
    ledger.promote("production", "carol", production);
}

fn failed_deploy(ledger: &mut Ledger, n: u8, minute: i64) {
    let evidence = DeployEvidence {
        outcome: DeployOutcome::Failed,
        detail: "health check failed".into(),
        target: None,
        previous: None,
        rollback: false,
    };
    ledger.push(deploy_draft(
        "production",
        d(n),
        "ci",
        at(minute),
        &evidence,
    ));
}

#[test]
fn dora_figures_from_a_known_ledger() {
    let mut ledger = Ledger::default();
    // Before the window: d1 reaches production at 100.
    release(&mut ledger, 1, 0, 100);
    // d2: 260 min from commit to production; rolled back 30 min later.
    release(&mut ledger, 2, 1000, 1200);
    ledger.rollback("production", "carol", 1230).unwrap();
    // d3: 160 min lead; its deploy fails; d4 (160 min lead) restores production 200 min
    // after d3 entered it.
    release(&mut ledger, 3, 2000, 2100);
    failed_deploy(&mut ledger, 3, 2110);
    release(&mut ledger, 4, 2200, 2300);
    // d5: no commit time recorded; its deploy fails and nothing restores it yet.
    let no_commit_time = VerificationEvidence {
        location: Some(format!("{REG}/ci")),
        ..Default::default()
    };
    ledger.push(verification_draft(d(5), "ci", at(3000), &no_commit_time));
    ledger.promote("dev", "ci", 3000);
    ledger.promote("staging", "alice", 3010);
    ledger.promote("production", "carol", 3100);
    failed_deploy(&mut ledger, 5, 3110);

    let week = 7 * 24 * 60;
    let dora = dora(
        &stages(),
        &ledger.entries,
        "production",
        at(150),
        at(150 + week),
    )
    .unwrap();
    assert_eq!(dora.deployments, 4);
    let per_week = dora.deployments_per_week.unwrap();
    assert!((per_week - 4.0).abs() < 1e-9, "{per_week}");
    let per_day = dora.deployments_per_day.unwrap();
    assert!((per_day - 4.0 / 7.0).abs() < 1e-9, "{per_day}");
    assert_eq!(
        dora.lead_time,
        Some(Median {
            median_secs: 9600.0,
            samples: 3
        })
    );
    assert_eq!(dora.lead_time_unknown, 1);
    assert_eq!(dora.failed_deployments, 3);
    assert_eq!(dora.change_failure_rate, Some(0.75));
    // 30 min and 200 min: the median of two is their mean, 115 min.
    assert_eq!(
        dora.recovery_time,
        Some(Median {
            median_secs: 6900.0,
            samples: 2
        })
    );
    assert_eq!(dora.unrecovered, 1);

    // The whole history: d1 counts too (lead 160 min, not failed).
    let all = dora_of(&ledger, at(0), at(150 + week));
    assert_eq!(all.deployments, 5);
    assert_eq!(all.lead_time.unwrap().samples, 4);
    assert_eq!(all.change_failure_rate, Some(0.6));
}

fn dora_of(ledger: &Ledger, since: Timestamp, now: Timestamp) -> Dora {
    dora(&stages(), &ledger.entries, "production", since, now).unwrap()
}

#[test]
fn dora_of_a_stage_with_no_deployment_has_no_rates() {
    let empty = dora_of(&Ledger::default(), at(0), at(60));
    assert_eq!(empty.deployments, 0);
    assert_eq!(empty.deployments_per_day, Some(0.0));
    assert_eq!(empty.change_failure_rate, None);
    assert_eq!(empty.lead_time, None);
    assert_eq!(empty.recovery_time, None);
    let err = dora(&stages(), &[], "prod", at(0), at(1)).unwrap_err();
    assert!(err.to_string().starts_with("no stage named \"prod\""));
}

#[test]
fn a_successful_deploy_is_no_failure() {
    let mut ledger = Ledger::default();
    release(&mut ledger, 1, 0, 100);
    let ok = DeployEvidence {
        outcome: DeployOutcome::Succeeded,
        detail: String::new(),
        target: None,
        previous: None,
        rollback: false,
    };
    ledger.push(deploy_draft("production", d(1), "ci", at(110), &ok));
    assert_eq!(
        dora_of(&ledger, at(0), at(200)).change_failure_rate,
        Some(0.0)
    );
}

#[test]
fn healthy_deploys_are_newest_first_once_each_and_skip_failures_and_other_stages() {
    let mut ledger = Ledger::default();
    let deploy = |ledger: &mut Ledger, stage: &str, n: u8, minute: i64, outcome| {
        let evidence = DeployEvidence {
            outcome,
            detail: String::new(),
            target: None,
            previous: None,
            rollback: false,
        };
        ledger.push(deploy_draft(stage, d(n), "ci", at(minute), &evidence));
    };
    deploy(&mut ledger, "production", 1, 1, DeployOutcome::Succeeded);
    deploy(&mut ledger, "production", 2, 2, DeployOutcome::Succeeded);
    deploy(&mut ledger, "production", 1, 3, DeployOutcome::Succeeded);
    deploy(&mut ledger, "production", 3, 4, DeployOutcome::Failed);
    deploy(&mut ledger, "staging", 4, 5, DeployOutcome::Succeeded);
    assert_eq!(
        crate::healthy_deploys(&ledger.entries, "production"),
        [d(1), d(2)]
    );
}
