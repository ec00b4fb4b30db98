use super::*;

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn vuln(id: &str, severity: Option<Severity>) -> Finding {
    Finding {
        id: id.into(),
        aliases: vec![format!("CVE-{id}")],
        package: "smallvec".into(),
        version: "1.6.0".into(),
        severity,
        warning: false,
    }
}

fn warning(id: &str) -> Finding {
    Finding {
        warning: true,
        ..vuln(id, None)
    }
}

fn policy(text: &str) -> Policy {
    toml::from_str(text).unwrap()
}

const TODAY: &str = "2026-11-22";

fn ids(gate: &Gate) -> Vec<String> {
    gate.violations
        .iter()
        .map(|v| match v {
            Violation::Vulnerability { id, .. }
            | Violation::Warning { id, .. }
            | Violation::ExpiredIgnore { id, .. } => id.clone(),
            Violation::License { package, .. } => format!("license:{package}"),
        })
        .collect()
}

#[test]
fn fails_at_or_above_the_threshold_and_on_unknown_severity() {
    let findings = [
        vuln("low", Some(Severity::Low)),
        vuln("medium", Some(Severity::Medium)),
        vuln("high", Some(Severity::High)),
        vuln("critical", Some(Severity::Critical)),
        vuln("unscored", None),
        warning("unmaintained"),
    ];
    let today = date(TODAY);
    let gate = evaluate(&policy("fail_on = 'high'"), today, &findings, &[]);
    assert_eq!(ids(&gate), ["high", "critical", "unscored"]);
    let gate = evaluate(&policy(""), today, &findings, &[]);
    assert_eq!(
        ids(&gate),
        ["low", "medium", "high", "critical", "unscored"]
    );
    let gate = evaluate(&policy("fail_on = 'none'"), today, &findings, &[]);
    assert!(gate.passed(), "{gate:?}");
    let gate = evaluate(
        &policy("fail_on = 'none'\nfail_on_warnings = true"),
        today,
        &findings,
        &[],
    );
    assert_eq!(ids(&gate), ["unmaintained"]);
}

#[test]
fn ignore_entries_hold_until_their_date_then_fail_the_gate() {
    let findings = [vuln("RUSTSEC-2021-0003", Some(Severity::High))];
    let config = policy(
        r#"
        [[ignore]]
        id = "RUSTSEC-2021-0003"
        reason = "not reachable: we never call insert_many"
        expires = "2026-12-31"
        "#,
    );
    let gate = evaluate(&config, date(TODAY), &findings, &[]);
    assert!(gate.passed(), "{gate:?}");
    assert_eq!(gate.ignored.len(), 1);
    assert_eq!(
        gate.ignored[0].1.reason,
        "not reachable: we never call insert_many"
    );
    // The last day still holds; the day after, the entry itself is a violation and the
    // finding is back.
    assert!(evaluate(&config, date("2026-12-31"), &findings, &[]).passed());
    let gate = evaluate(&config, date("2027-01-01"), &findings, &[]);
    assert_eq!(ids(&gate), ["RUSTSEC-2021-0003", "RUSTSEC-2021-0003"]);
    let text = gate.violations[0].to_string();
    assert!(text.contains("expired on 2026-12-31"), "{text}");
    assert!(text.contains("renew its date or remove it"), "{text}");
    // An expired entry fails even when nothing matches it any more.
    assert!(!evaluate(&config, date("2027-01-01"), &[], &[]).passed());
}

#[test]
fn an_alias_matches_an_ignore_entry() {
    let config =
        policy("[[ignore]]\nid = 'CVE-x'\nreason = 'tracked upstream'\nexpires = '2027-01-01'");
    let gate = evaluate(
        &config,
        date(TODAY),
        &[vuln("x", Some(Severity::High))],
        &[],
    );
    assert!(gate.passed(), "{gate:?}");
}

#[test]
fn every_ignore_field_is_required_and_the_error_says_which_and_where() {
    for (text, missing) in [
        ("[[ignore]]\nid = 'A'\nexpires = '2027-01-01'\n", "reason"),
        ("[[ignore]]\nreason = 'r'\nexpires = '2027-01-01'\n", "id"),
        ("[[ignore]]\nid = 'A'\nreason = 'r'\n", "expires"),
    ] {
        let e = toml::from_str::<Policy>(text).unwrap_err().to_string();
        assert!(e.contains(&format!("missing field `{missing}`")), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }
    let e = toml::from_str::<Policy>("[[ignore]]\nid = 'A'\nreason = 'r'\nexpires = 'soon'\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 4"), "{e}");
    let e = toml::from_str::<Policy>("fail_on = 'severe'\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("critical"), "names the accepted values: {e}");
}

fn package(name: &str, license: Option<&str>) -> PackageLicense {
    PackageLicense {
        package: name.into(),
        version: "1.0.0".into(),
        license: license.map(str::to_string),
    }
}

#[cfg(not(feature = "licenses"))]
#[test]
fn without_the_licenses_feature_license_lists_fail_the_gate() {
    let packages = [
        package("dual", Some("MIT OR Apache-2.0")),
        package("none", None),
    ];
    let config = policy("[licenses]\nallow = ['MIT']");
    let gate = evaluate(&config, date(TODAY), &[], &packages);
    assert_eq!(ids(&gate), ["license:dual", "license:none"]);
    let text = gate.violations[0].to_string();
    assert!(text.contains("without its `licenses` feature"), "{text}");
    // No lists: nothing to check, with or without the feature.
    assert!(evaluate(&policy(""), date(TODAY), &[], &packages).passed());
}

#[cfg(feature = "licenses")]
#[test]
fn licenses_pass_when_some_choice_is_allowed_and_none_denied() {
    let packages = [
        package("dual", Some("MIT OR Apache-2.0")),
        package("slash", Some("MIT/Apache-2.0")),
        package("gpl-or-mit", Some("GPL-3.0-only OR MIT")),
        package("gpl", Some("GPL-3.0-only")),
        package("both", Some("MIT AND BSD-3-Clause")),
        package("nothing", None),
        package("garbage", Some("not a license ((")),
    ];
    let config = policy("[licenses]\nallow = ['MIT', 'Apache-2.0']\ndeny = ['GPL-3.0-only']");
    let gate = evaluate(&config, date(TODAY), &[], &packages);
    assert_eq!(
        ids(&gate),
        [
            "license:gpl",
            "license:both",
            "license:nothing",
            "license:garbage"
        ]
    );
    // A deny list alone: only packages with no way around the denied license fail.
    let config = policy("[licenses]\ndeny = ['GPL-3.0-only']");
    let gate = evaluate(&config, date(TODAY), &[], &packages);
    assert_eq!(ids(&gate), ["license:gpl", "license:garbage"]);
    let text = gate.violations[0].to_string();
    assert!(
        text.contains("gpl 1.0.0 is licensed GPL-3.0-only"),
        "{text}"
    );
    // No lists: nothing to check.
    assert!(evaluate(&policy(""), date(TODAY), &[], &packages).passed());
}

#[test]
fn violations_serialize_with_a_kind() {
    let gate = evaluate(
        &policy(""),
        date(TODAY),
        &[vuln("RUSTSEC-1", Some(Severity::Critical))],
        &[],
    );
    let json = serde_json::to_value(&gate).unwrap();
    assert_eq!(json["violations"][0]["kind"], "vulnerability");
    assert_eq!(json["violations"][0]["severity"], "critical");
}
