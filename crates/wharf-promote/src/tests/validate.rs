//! `validate`: every problem names the stage and the fix.

use super::*;

fn problems(stages: serde_json::Value) -> Vec<String> {
    let stages: Vec<Stage> = serde_json::from_value(stages).unwrap();
    match validate(&stages) {
        Ok(()) => vec![],
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn stage(name: &str, from: Option<&str>) -> serde_json::Value {
    json!({"name": name, "from": from, "location": format!("{REG}/{name}")})
}

#[test]
fn this_repositorys_stages_and_no_stages_are_valid() {
    assert_eq!(validate(&stages()), Ok(()));
    assert_eq!(validate(&[]), Ok(()));
}

#[test]
fn names_are_unique_and_from_names_another_stage() {
    assert_eq!(
        problems(json!([
            stage("dev", None),
            {"name": "dev", "from": "qa", "location": "oci:dev"},
        ])),
        [
            "stages[1] (dev): the name dev is taken by stages[0] too (give each stage its own name)",
            "stages[1] (dev): from = \"qa\" names no stage (stages: dev, dev)",
        ]
    );
    assert_eq!(
        problems(json!([
            stage("dev", None),
            stage("staging", Some("staging"))
        ])),
        [
            "stages[1] (staging): from = \"staging\" names the stage itself (name the stage it promotes from, or leave `from` out for a first stage)"
        ]
    );
}

#[test]
fn a_cycle_is_one_problem_and_a_list_without_a_first_stage_is_another() {
    assert_eq!(
        problems(json!([
            stage("a", Some("c")),
            stage("b", Some("a")),
            stage("c", Some("b")),
        ])),
        [
            "stages[0] (a): `from` makes a cycle a <- c <- b <- a (a chain of stages must start at a stage without `from`)",
            "stages: every stage has `from`, so no digest can ever enter (leave `from` out of the first stage: it takes the digests CI verified)",
        ]
    );
    // A cycle beside a valid chain.
    assert_eq!(
        problems(json!([
            stage("dev", None),
            stage("x", Some("y")),
            stage("y", Some("x")),
        ])),
        [
            "stages[1] (x): `from` makes a cycle x <- y <- x (a chain of stages must start at a stage without `from`)"
        ]
    );
}

#[test]
fn locations_are_registry_repositories_or_oci_layouts() {
    let bad = json!([
        {"name": "dev", "location": "127.0.0.1:5000/app"},
        {"name": "qa", "location": "oci:"},
        {"name": "ok", "location": "oci:target/stages/ok"},
    ]);
    assert_eq!(
        problems(bad),
        [
            "stages[0] (dev): location \"127.0.0.1:5000/app\" is neither a registry repository nor an OCI layout (write docker://HOST/REPO or oci:DIR)",
            "stages[1] (qa): location \"oci:\" is neither a registry repository nor an OCI layout (write docker://HOST/REPO or oci:DIR)",
        ]
    );
}

#[test]
fn tags_are_valid_and_distinct_where_stages_share_a_location() {
    let loc = format!("{REG}/app");
    let got = problems(json!([
        {"name": "dev", "location": loc, "tags": ["latest", "-bad"]},
        {"name": "latest", "from": "dev", "location": loc, "semver_tags": true},
        {"name": "prod", "from": "latest", "location": loc, "tags": ["prod"], "semver_tags": true},
        {"name": "b@d", "from": "prod", "location": format!("{REG}/other"), "date_tag": true},
    ]));
    assert_eq!(
        got,
        [
            "stages[0] (dev): invalid tag \"-bad\": a tag must start with a letter, digit or underscore (fix the tag)",
            format!("stages[1] (latest): tag latest is also moved by stages[0] (dev), which shares the location {loc} (give one of them another tag)").as_str(),
            format!("stages[2] (prod): semver_tags is also on in stages[1] (latest), which shares the location {loc} (keep version tags on one stage per location)").as_str(),
            "stages[3] (b@d): invalid tag \"b@d\": character '@' is not allowed in a tag (use ASCII letters, digits, '_', '.' or '-') (the stage's name is its tag: rename the stage or give it `tags`)",
            "stages[3] (b@d): date_tag makes an invalid tag b@d-YYYY-MM-DD: invalid tag \"b@d-2000-01-01\": character '@' is not allowed in a tag (use ASCII letters, digits, '_', '.' or '-') (rename the stage or turn date_tag off)",
        ]
    );
}

#[test]
fn approval_counts_must_be_possible_and_signed_approvals_need_signers() {
    let with = |approvals: serde_json::Value| {
        problems(json!([{"name": "dev", "location": "oci:dev", "gates": {"approvals": approvals}}]))
    };
    assert_eq!(
        with(json!({"required": 0})),
        [
            "stages[0] (dev): approvals required = 0 asks for no approval (require at least 1, or remove the approvals gate)"
        ]
    );
    assert_eq!(
        with(json!({"required": 3, "approvers": ["alice", "bob"]})),
        [
            "stages[0] (dev): approvals required = 3 but only 2 approvers are allowed (lower required or add approvers)"
        ]
    );
    assert_eq!(
        with(json!({"required": 1, "signed": true})),
        [
            "stages[0] (dev): approvals signed = true needs allowed_signers, the ssh-keygen allowed-signers file the signatures are checked against (add allowed_signers = \"FILE\")"
        ]
    );
    assert_eq!(with(json!({"required": 2})), Vec::<String>::new());
}

#[test]
fn the_benchmark_limit_and_the_smoke_url_must_make_sense() {
    let got = problems(json!([{
        "name": "dev", "location": "oci:dev",
        "gates": {
            "benchmark": {"baseline": "b", "current": "c", "max_regression_percent": 5000},
            "smoke": {"url": "127.0.0.1:8080", "within_secs": 0},
        },
    }]));
    assert_eq!(
        got,
        [
            "stages[0] (dev): benchmark max_regression_percent = 5000 lets a benchmark get 51x slower (give a percentage, e.g. 10, at most 1000)",
            "stages[0] (dev): smoke url \"127.0.0.1:8080\" is not an HTTP URL (write http://HOST/PATH or https://HOST/PATH)",
            "stages[0] (dev): smoke within_secs = 0 leaves no time for an attempt (give the seconds all attempts may take, e.g. 30)",
        ]
    );
}
