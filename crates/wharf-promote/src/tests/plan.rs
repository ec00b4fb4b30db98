//! Candidates, gates, tags and the promotion entry.

use super::*;

/// d(1) verified and in dev since minute 0; alice and bob approved it for staging.
fn staging_ready() -> Ledger {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    ledger.approve("staging", &d(1), "alice", false);
    ledger.approve("staging", &d(1), "bob", false);
    ledger
}

fn plan_with(ledger: &Ledger, stage: &str, evidence: &Evidence, minute: i64) -> PromotionPlan {
    let stages = stages();
    let candidate = candidate(&stages, stage, &ledger.entries, None).unwrap();
    plan(&stages, &candidate, &ledger.entries, evidence, at(minute)).unwrap()
}

fn gate<'a>(plan: &'a PromotionPlan, name: &str) -> &'a GateResult {
    plan.gates
        .iter()
        .find(|g| g.gate == name)
        .unwrap_or_else(|| panic!("no {name} gate in {plan}"))
}

/// Asserts that exactly `name` failed, and returns its message.
fn only_failure(plan: &PromotionPlan, name: &str) -> String {
    let failed: Vec<&str> = plan.failed().map(|g| g.gate.as_str()).collect();
    assert_eq!(failed, [name], "{plan}");
    assert!(!plan.allowed());
    gate(plan, name).message.clone()
}

#[test]
fn staging_plan_with_every_gate_passing_is_allowed() {
    let ledger = staging_ready();
    let plan = plan_with(&ledger, "staging", &good_evidence(), 120);
    assert!(plan.allowed(), "{plan}");
    let names: Vec<&str> = plan.gates.iter().map(|g| g.gate.as_str()).collect();
    assert_eq!(
        names,
        [
            "source",
            "scan",
            "size",
            "soak",
            "benchmark",
            "smoke",
            "approvals"
        ]
    );
    assert_eq!(plan.digest, d(1));
    assert_eq!(
        plan.source,
        Source {
            stage: Some("dev".into()),
            location: format!("{REG}/app-dev")
        }
    );
    assert_eq!(plan.target.location, format!("{REG}/app"));
    assert_eq!(plan.target.tags, ["staging"]);
    assert_eq!(plan.previous, None);
    assert_eq!(
        gate(&plan, "approvals").message,
        "approvals: 2 of 2 (alice, bob)"
    );
    assert!(plan.gates.iter().all(|g| !has_float(&g.evidence)));
}

#[test]
fn an_injected_critical_finding_blocks_with_the_finding_named() {
    let ledger = staging_ready();
    let mut evidence = good_evidence();
    evidence.scan = Some(ScanVerdict {
        report_digest: d(200),
        failures: vec!["RUSTSEC-0000-0000 (critical) in foo 1.0.0".into()],
    });
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert_eq!(
        only_failure(&plan, "scan"),
        "scan: 1 finding fails the policy: RUSTSEC-0000-0000 (critical) in foo 1.0.0"
    );
    let scan = &gate(&plan, "scan").evidence;
    assert_eq!(scan["report_digest"], d(200).to_string());

    evidence.scan = None;
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert!(only_failure(&plan, "scan").starts_with("scan: no scan report is attached to"));
}

/// d(1) in dev since minute 0, with these (approver, digest) approvals for staging: the
/// staging plan at minute 120, whose only failing gate must be approvals.
fn staging_approved_by(approvals: &[(&str, u8)]) -> PromotionPlan {
    let mut ledger = Ledger::default();
    ledger.release_to_dev(d(1), 0);
    for (who, n) in approvals {
        ledger.approve("staging", &d(*n), who, false);
    }
    let plan = plan_with(&ledger, "staging", &good_evidence(), 120);
    only_failure(&plan, "approvals");
    plan
}

#[test]
fn a_missing_approval_blocks() {
    // The same person twice is still one approval.
    let plan = staging_approved_by(&[("alice", 1), ("Alice", 1)]);
    let message = gate(&plan, "approvals").message.clone();
    assert!(
        message.starts_with("approvals: 1 of 2 (alice) (an allowed approver other than the author runs `cargo xtask approve staging sha256:"),
        "{message}"
    );
    let evidence = &gate(&plan, "approvals").evidence;
    assert_eq!(evidence["counted"].as_array().unwrap().len(), 1);
    assert_eq!(evidence["rejected"], json!([]));
}

#[test]
fn an_approval_by_the_author_does_not_count() {
    // The author's email in another case, and an allowed approver otherwise.
    let plan = staging_approved_by(&[("alice", 1), ("ERIN@example.com", 1)]);
    let message = gate(&plan, "approvals").message.clone();
    assert!(
        message.starts_with(
            "approvals: 1 of 2 (alice); not counted: ERIN@example.com (author of the change)"
        ),
        "{message}"
    );
    let rejected = &gate(&plan, "approvals").evidence["rejected"][0];
    assert_eq!(rejected["seq"], 4);
    assert_eq!(rejected["reason"], "author of the change");
}

#[test]
fn an_approval_for_another_digest_does_not_count() {
    let plan = staging_approved_by(&[("alice", 1), ("bob", 9)]);
    let message = gate(&plan, "approvals").message.clone();
    let expected = format!(
        "approvals: 1 of 2 (alice); not counted: bob (approved {} not this digest)",
        d(9).short()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn an_approval_from_outside_the_approvers_does_not_count() {
    let plan = staging_approved_by(&[("alice", 1), ("mallory", 1)]);
    let message = gate(&plan, "approvals").message.clone();
    assert!(
        message.contains("not counted: mallory (not an allowed approver)"),
        "{message}"
    );
}

/// d(1) in staging; production requires one signed approval.
fn production_ready() -> Ledger {
    let mut ledger = staging_ready();
    ledger.promote("staging", "alice", 120);
    ledger
}

#[test]
fn an_unsigned_approval_does_not_count_where_a_signed_one_is_required() {
    let mut ledger = production_ready();
    ledger.approve("production", &d(1), "carol", false);
    let plan = plan_with(&ledger, "production", &good_evidence(), 200);
    let message = only_failure(&plan, "approvals");
    assert!(
        message.starts_with("approvals: 0 of 1; not counted: carol (not signed)"),
        "{message}"
    );
}

#[test]
fn a_signed_approval_counts_only_when_its_signature_verified() {
    let mut ledger = production_ready();
    let seq = ledger.approve("production", &d(1), "carol", true);
    let stages = stages();
    let candidate = candidate(&stages, "production", &ledger.entries, None).unwrap();
    assert_eq!(candidate.needs.approvals_signed, [seq]);

    let mut evidence = good_evidence();
    let blocked = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    let message = only_failure(&blocked, "approvals");
    assert!(
        message.starts_with("approvals: 0 of 1; not counted: carol (signature not verified)"),
        "{message}"
    );

    evidence.verified_approvals.insert(seq);
    let plan = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    assert!(plan.allowed(), "{plan}");
    assert_eq!(
        gate(&plan, "approvals").message,
        "approvals: 1 of 1 (carol)"
    );
}

#[test]
fn soak_time_not_reached_blocks_and_is_counted_in_whole_minutes() {
    let ledger = staging_ready();
    let plan = plan_with(&ledger, "staging", &good_evidence(), 12);
    assert_eq!(
        only_failure(&plan, "soak"),
        format!(
            "soak: {} entered dev 12 min ago, 60 min needed",
            d(1).short()
        )
    );
    assert_eq!(gate(&plan, "soak").evidence["minutes"], 12);
    assert!(plan_with(&ledger, "staging", &good_evidence(), 60).allowed());
}

fn with_bench(baseline: &[(&str, u64)], current: &[(&str, u64)]) -> Evidence {
    Evidence {
        benchmark: Some(BenchmarkFiles {
            baseline: bench(baseline),
            current: bench(current),
        }),
        ..good_evidence()
    }
}

#[test]
fn a_p95_regression_of_11_percent_against_a_10_percent_limit_blocks() {
    let ledger = staging_ready();
    let evidence = with_bench(&[("http_get", 1_000_000)], &[("http_get", 1_110_000)]);
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert_eq!(
        only_failure(&plan, "benchmark"),
        "benchmark: http_get p95 11.0% slower than baseline (1110000 ns vs 1000000 ns), limit 10%"
    );
    let row = &gate(&plan, "benchmark").evidence["benchmarks"][0];
    assert_eq!(row["change_per_mille"], 110);
    assert_eq!(row["passed"], false);
}

#[test]
fn a_p95_exactly_at_the_limit_passes_and_a_new_benchmark_passes() {
    let ledger = staging_ready();
    let evidence = with_bench(
        &[("http_get", 1_000_000)],
        &[("http_get", 1_100_000), ("brand_new", 5)],
    );
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert!(plan.allowed(), "{plan}");
    assert_eq!(
        gate(&plan, "benchmark").evidence["new"],
        json!(["brand_new"])
    );
}

#[test]
fn a_benchmark_missing_from_the_current_results_blocks() {
    let ledger = staging_ready();
    let evidence = with_bench(&[("http_get", 1_000), ("parse", 10)], &[("http_get", 900)]);
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert_eq!(
        only_failure(&plan, "benchmark"),
        "benchmark: parse is in the baseline but not in the current results"
    );
}

#[test]
fn a_benchmark_file_in_another_format_blocks_with_the_format() {
    let ledger = staging_ready();
    let mut evidence = good_evidence();
    evidence.benchmark = Some(BenchmarkFiles {
        baseline: bench(&[("http_get", 1_000)]),
        current: br#"{"benchmarks": [{"name": "http_get", "p95": 3}]}"#.to_vec(),
    });
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    let message = only_failure(&plan, "benchmark");
    assert!(
        message.starts_with(
            "benchmark: the current file is not in the benchmark format: unknown field `p95`"
        ),
        "{message}"
    );
    evidence.benchmark = None;
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    only_failure(&plan, "benchmark");
}

#[test]
fn an_image_over_its_size_budget_blocks() {
    let ledger = staging_ready();
    let evidence = Evidence {
        image_bytes: Some(10_000_001),
        ..good_evidence()
    };
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert!(
        only_failure(&plan, "size")
            .starts_with("size: 10000001 bytes is over the budget of 10000000 bytes")
    );
    let evidence = Evidence {
        image_bytes: Some(10_000_000),
        ..good_evidence()
    };
    assert!(plan_with(&ledger, "staging", &evidence, 120).allowed());
}

#[test]
fn smoke_passes_when_any_attempt_got_the_expected_status() {
    let ledger = staging_ready();
    let attempt = |status: Option<u16>, error: Option<&str>, elapsed_ms| SmokeAttempt {
        status,
        error: error.map(str::to_owned),
        elapsed_ms,
    };
    let mut evidence = good_evidence();
    evidence.smoke = vec![
        attempt(Some(503), None, 10),
        attempt(None, Some("connection refused"), 3),
    ];
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert_eq!(
        only_failure(&plan, "smoke"),
        "smoke: no attempt of 2 got 200 from http://127.0.0.1:8080/health (last: error \"connection refused\" after 3 ms)"
    );
    assert_eq!(gate(&plan, "smoke").evidence["attempts"][0]["status"], 503);
    evidence.smoke.push(attempt(Some(200), None, 8));
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert!(plan.allowed(), "{plan}");
}

#[test]
fn the_tests_gate_reads_the_verification_entry() {
    let mut ledger = Ledger::default();
    let seq = ledger.verify(d(1), 5);
    let plan = plan_with(&ledger, "dev", &Evidence::default(), 6);
    assert!(plan.allowed(), "{plan}");
    let tests = gate(&plan, "tests");
    assert_eq!(tests.evidence["seq"], seq);
    assert_eq!(tests.evidence["commit"], "c0ffee");
    assert_eq!(plan.source.location, format!("{REG}/ci"));
    assert_eq!(plan.source.stage, None);
}

#[test]
fn a_first_stage_takes_the_latest_verified_digest_or_any_verified_one_named() {
    let stages = stages();
    let mut ledger = Ledger::default();
    let err = candidate(&stages, "dev", &ledger.entries, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the ledger holds no verification entry")
    );

    ledger.verify(d(1), 0);
    ledger.verify(d(2), 1);
    let latest = candidate(&stages, "dev", &ledger.entries, None).unwrap();
    assert_eq!(latest.digest, d(2));
    let named = candidate(&stages, "dev", &ledger.entries, Some(d(1))).unwrap();
    assert_eq!(named.digest, d(1));
    let err = candidate(&stages, "dev", &ledger.entries, Some(d(3))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no verification entry in the ledger, so it cannot enter dev (name a digest the ci pipeline verified, e.g. {})",
            d(3),
            d(2)
        )
    );

    ledger.push(verification_draft(d(4), "ci", at(2), &Default::default()));
    let err = candidate(&stages, "dev", &ledger.entries, None).unwrap_err();
    assert!(matches!(err, PlanError::NoLocation { seq: 3, .. }), "{err}");
}

#[test]
fn a_later_stage_takes_the_from_stages_current_digest_and_nothing_else() {
    let stages = stages();
    let mut ledger = Ledger::default();
    ledger.verify(d(1), 0);
    let err = candidate(&stages, "staging", &ledger.entries, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dev has no digest yet, so there is nothing to promote into staging (promote a digest into dev first)"
    );
    ledger.promote("dev", "ci", 0);
    ledger.release_to_dev(d(2), 1);

    let current = candidate(&stages, "staging", &ledger.entries, None).unwrap();
    assert_eq!(current.digest, d(2));
    let same = candidate(&stages, "staging", &ledger.entries, Some(d(2))).unwrap();
    assert_eq!(same, current);
    let err = candidate(&stages, "staging", &ledger.entries, Some(d(1))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not current in dev: {} is (promote {} into dev first, or name {})",
            d(1),
            d(2),
            d(1),
            d(2)
        )
    );
    let err = candidate(&stages, "qa", &ledger.entries, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no stage named \"qa\" in [[stages]] (stages: dev, staging, production)"
    );
}

#[test]
fn the_candidate_says_which_evidence_to_gather() {
    let ledger = staging_ready();
    let needs = candidate(&stages(), "staging", &ledger.entries, None)
        .unwrap()
        .needs;
    assert!(needs.scan && needs.size && needs.authors && !needs.version);
    assert_eq!(needs.benchmark.unwrap().max_regression_percent, 10);
    assert_eq!(needs.smoke.unwrap().retries, 3);
    assert!(needs.approvals_signed.is_empty());
}

#[test]
fn a_plan_made_stale_by_another_writer_fails_its_source_gate() {
    let mut ledger = staging_ready();
    let stages = stages();
    let stale = candidate(&stages, "staging", &ledger.entries, None).unwrap();
    ledger.release_to_dev(d(2), 1);
    let plan = plan(&stages, &stale, &ledger.entries, &good_evidence(), at(120)).unwrap();
    let source = gate(&plan, "source");
    assert!(!source.passed);
    assert_eq!(
        source.message,
        format!(
            "source: {} is no longer current in dev: {} is (plan again)",
            d(1).short(),
            d(2).short()
        )
    );
}

#[test]
fn production_moves_its_tags_the_version_tags_and_the_days_tag() {
    let mut ledger = production_ready();
    let seq = ledger.approve("production", &d(1), "carol", true);
    let mut evidence = good_evidence();
    evidence.verified_approvals.insert(seq);
    let plan = plan_with(&ledger, "production", &evidence, 200);
    assert!(plan.allowed(), "{plan}");
    let tags: Vec<&str> = plan.target.tags.iter().map(|t| t.as_str()).collect();
    assert_eq!(tags, PRODUCTION_TAGS);

    // A release candidate gets only its full version; no version label blocks.
    evidence.version = Some("v2.0.0-rc.1".into());
    let plan = plan_with(&ledger, "production", &evidence, 200);
    assert!(plan.target.tags.iter().any(|t| t == "2.0.0-rc.1"));
    assert!(!plan.target.tags.iter().any(|t| t == "2"));
    evidence.version = None;
    let plan = plan_with(&ledger, "production", &evidence, 200);
    assert!(only_failure(&plan, "version").starts_with(
        "version: semver_tags is on but the image has no org.opencontainers.image.version label"
    ));
}

#[test]
fn the_promotion_entry_carries_the_gates_tags_and_locations_and_no_float() {
    let mut ledger = staging_ready();
    let mut evidence = good_evidence();
    evidence.extra.push(GateResult {
        gate: "signature".into(),
        passed: true,
        message: "signature: signed by key SHA256:abc".into(),
        evidence: json!({"score": 0.5, "keys": [1.25]}),
    });
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    assert_eq!(plan.gates.last().unwrap().gate, "signature");
    let draft = plan.draft("alice", at(121));
    assert_eq!(draft.kind, wharf_ledger::Kind::Promotion);
    assert_eq!(draft.from.as_deref(), Some("dev"));
    assert_eq!(draft.to.as_deref(), Some("staging"));
    assert_eq!(draft.digest, d(1));
    assert!(!has_float(&draft.evidence), "{}", draft.evidence);
    assert_eq!(draft.evidence["gates"][7]["evidence"]["score"], "0.5");

    ledger.push(draft);
    let entry = ledger.entries.last().unwrap();
    // Canonical JSON (what the ledger hashes) accepts it.
    let _ = entry.hash();
    let back = PromotionEvidence::of(entry).unwrap();
    assert_eq!(back.source.location, format!("{REG}/app-dev"));
    assert_eq!(back.target.tags, ["staging"]);
    assert_eq!(back.previous, None);
    assert_eq!(back.gates.len(), 8);
}

#[test]
fn a_failing_extra_gate_blocks_like_any_other() {
    let ledger = staging_ready();
    let mut evidence = good_evidence();
    evidence.extra.push(GateResult {
        gate: "signature".into(),
        passed: false,
        message: "signature: no signature for the digest".into(),
        evidence: json!({}),
    });
    let plan = plan_with(&ledger, "staging", &evidence, 120);
    only_failure(&plan, "signature");
}

#[test]
fn the_approval_message_is_canonical_json_binding_stage_digest_and_approver() {
    let message = approval_message("production", &d(1), "carol");
    assert_eq!(
        String::from_utf8(message).unwrap(),
        format!(
            r#"{{"digest":"{}","kind":"wharf-approval","stage":"production","who":"carol"}}"#,
            d(1)
        )
    );
    let draft = approval_draft("production", d(1), "carol", at(3), Some("SIG".into()));
    assert_eq!(draft.kind, wharf_ledger::Kind::Approval);
    assert_eq!(draft.to.as_deref(), Some("production"));
    assert_eq!(draft.from, None);
    assert_eq!(draft.signature.as_deref(), Some("SIG"));
}

#[test]
fn the_plan_prints_as_text_with_each_gate() {
    let ledger = staging_ready();
    let text = plan_with(&ledger, "staging", &good_evidence(), 12).to_string();
    assert!(text.starts_with(&format!("promote {} into staging: blocked\n", d(1))));
    assert!(text.contains("  [FAIL] soak: "), "{text}");
    assert!(text.contains("  [pass] scan: "), "{text}");
}

#[test]
fn a_first_stage_soaks_from_the_verification() {
    let mut stages = stages();
    stages[0].gates.soak_minutes = Some(30);
    let mut ledger = Ledger::default();
    ledger.verify(d(1), 0);
    let candidate = candidate(&stages, "dev", &ledger.entries, None).unwrap();
    let early = plan(
        &stages,
        &candidate,
        &ledger.entries,
        &good_evidence(),
        at(29),
    )
    .unwrap();
    assert_eq!(
        only_failure(&early, "soak"),
        format!(
            "soak: {} was verified by CI 29 min ago, 30 min needed",
            d(1).short()
        )
    );
    let late = plan(
        &stages,
        &candidate,
        &ledger.entries,
        &good_evidence(),
        at(30),
    )
    .unwrap();
    assert!(late.allowed(), "{late}");
}

#[test]
fn a_first_stage_candidate_for_an_unverified_digest_fails_its_source_gate() {
    let stages = stages();
    let mut ledger = Ledger::default();
    ledger.verify(d(1), 0);
    let mut forged = candidate(&stages, "dev", &ledger.entries, None).unwrap();
    forged.digest = d(7);
    let plan = plan(&stages, &forged, &ledger.entries, &good_evidence(), at(1)).unwrap();
    let failed: Vec<&str> = plan.failed().map(|g| g.gate.as_str()).collect();
    assert_eq!(failed, ["source", "tests"], "{plan}");
}

#[test]
fn an_unsigned_image_is_blocked_by_the_signature_gate_and_a_signed_one_passes() {
    let mut ledger = production_ready();
    let seq = ledger.approve("production", &d(1), "carol", true);
    let mut stages = stages();
    let gate_config = SignatureGate {
        keys: vec!["pipelines/cosign.pub".into()],
        check_reference: false,
    };
    stages[2].gates.signature = Some(gate_config.clone());
    let candidate = candidate(&stages, "production", &ledger.entries, None).unwrap();
    assert_eq!(candidate.needs.signature, Some(gate_config));
    let mut evidence = good_evidence();
    evidence.verified_approvals.insert(seq);
    let location = format!("{REG}/app");

    // Not checked at all (the caller gathered nothing): blocked.
    let blocked = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    assert!(only_failure(&blocked, "signature").contains("not checked"));

    // No signature in the source: blocked, with the command that fixes it.
    evidence.signature = Some(SignatureVerdict {
        location: location.clone(),
        matched_keys: vec![],
        keys: vec!["0123456789abcdef".into()],
        failures: vec![],
    });
    let blocked = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    let message = only_failure(&blocked, "signature");
    assert!(message.contains("has no signature in"), "{message}");
    assert!(message.contains("cargo xtask sign"), "{message}");

    // Signed by another key: blocked, naming the check that failed.
    evidence.signature.as_mut().unwrap().failures =
        vec!["signature 1 (layer sha256:...): signature: no given key verifies it".into()];
    let blocked = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    let message = only_failure(&blocked, "signature");
    assert!(message.contains("no given key verifies it"), "{message}");
    assert_eq!(
        gate(&blocked, "signature").evidence["keys"][0],
        "0123456789abcdef"
    );

    // Signed by the gate's key: allowed, the key named.
    evidence.signature.as_mut().unwrap().matched_keys = vec!["0123456789abcdef".into()];
    let allowed = plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap();
    assert!(allowed.allowed(), "{allowed}");
    assert_eq!(
        gate(&allowed, "signature").message,
        format!("signature: signed by key 0123456789abcdef (cosign signature in {location})")
    );
}

#[test]
fn the_provenance_gate_wants_a_verified_statement_from_the_named_builder_and_source() {
    let mut ledger = production_ready();
    let seq = ledger.approve("production", &d(1), "carol", true);
    let mut stages = stages();
    let workflow = "https://github.com/o/r/.github/workflows/release.yml";
    stages[2].gates.provenance = Some(ProvenanceGate {
        keys: vec!["cosign.pub".into()],
        builder: Some(workflow.into()),
        source: Some("https://github.com/o/r".into()),
    });
    let candidate = candidate(&stages, "production", &ledger.entries, None).unwrap();
    assert!(candidate.needs.provenance.is_some());
    let mut evidence = good_evidence();
    evidence.verified_approvals.insert(seq);
    let built = |builder: &str, source: &str| BuiltBy {
        builder: builder.into(),
        source: source.into(),
        commit: "c0ffee".into(),
        keys: vec!["0123456789abcdef".into()],
    };
    let mut verdict = ProvenanceVerdict {
        location: format!("{REG}/app"),
        keys: vec!["0123456789abcdef".into()],
        verified: vec![],
        failures: vec![],
    };
    let judge = |verdict: &ProvenanceVerdict| {
        let mut evidence = evidence.clone();
        evidence.provenance = Some(verdict.clone());
        plan(&stages, &candidate, &ledger.entries, &evidence, at(200)).unwrap()
    };

    let message = only_failure(&judge(&verdict), "provenance");
    assert!(message.contains("has no provenance"), "{message}");
    assert!(message.contains("--provenance"), "{message}");

    verdict.failures = vec!["provenance sha256:...: signature: no given key verifies".into()];
    let message = only_failure(&judge(&verdict), "provenance");
    assert!(message.contains("no given key verifies"), "{message}");

    verdict.verified = vec![built(
        "https://evil.example/builder",
        "git+https://github.com/o/r",
    )];
    let message = only_failure(&judge(&verdict), "provenance");
    assert!(
        message.contains("built by https://evil.example/builder, not"),
        "{message}"
    );

    verdict.verified = vec![built(
        &format!("{workflow}@refs/tags/v1.2.3"),
        "git+https://github.com/o/fork",
    )];
    let message = only_failure(&judge(&verdict), "provenance");
    assert!(
        message.contains("built from git+https://github.com/o/fork, not"),
        "{message}"
    );

    // The workflow at any ref, the repository with or without git+ and .git.
    verdict.verified.push(built(
        &format!("{workflow}@refs/tags/v1.2.3"),
        "git+https://github.com/o/r.git",
    ));
    let allowed = judge(&verdict);
    assert!(allowed.allowed(), "{allowed}");
    assert!(
        gate(&allowed, "provenance")
            .message
            .starts_with(&format!("provenance: built by {workflow}@refs/tags/v1.2.3")),
        "{allowed}"
    );
    // A builder that only starts like the named one is another builder.
    verdict.verified = vec![built(&format!("{workflow}2"), "https://github.com/o/r")];
    only_failure(&judge(&verdict), "provenance");
}
