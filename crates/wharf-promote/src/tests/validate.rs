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

#[test]
fn a_deploy_section_is_checked_field_by_field() {
    let mut dev = stage("dev", None);
    dev["deploy"] = json!({
        "docker": {
            "listen": "localhost:8080",
            "listen_env": "A=B",
            "memory": "2k",
            "cpus": "half",
            "restart": "sometimes",
            "env": ["NOEQUALS"],
            "health": {"path": "health", "interval_ms": 0}
        },
        "smoke": [{"path": "health"}],
        "url": "ftp://x"
    });
    let found = problems(json!([dev]));
    for needle in [
        "deploy.docker.listen = \"localhost:8080\" is not IP:PORT",
        "listen_env = \"A=B\" is not a variable name",
        "memory = \"2k\": expected a size of at least 6m",
        "cpus = \"half\": expected a number of CPUs",
        "restart = \"sometimes\"",
        "\"NOEQUALS\" is not NAME=VALUE",
        "health.path = \"health\" must start with /",
        "interval_ms and timeout_ms must be above 0",
        "deploy.smoke: path \"health\" must start with /",
        "deploy.url = \"ftp://x\"",
    ] {
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "{needle} not in {found:#?}"
        );
    }
    assert!(found.iter().all(|p| p.starts_with("stages[0] (dev): ")));
}

#[test]
fn docker_units_read_as_the_docker_cli_reads_them() {
    let docker = |memory: &str, cpus: &str| -> DockerDeploy {
        serde_json::from_value(json!({"listen": "0.0.0.0:80", "memory": memory, "cpus": cpus}))
            .unwrap()
    };
    let d = docker("256m", "0.5");
    assert_eq!(d.memory_bytes(), Ok(Some(256 << 20)));
    assert_eq!(d.nano_cpus(), Ok(Some(500_000_000)));
    assert_eq!(docker("1G", "2").memory_bytes(), Ok(Some(1 << 30)));
    assert_eq!(docker("1G", "2").nano_cpus(), Ok(Some(2_000_000_000)));
    assert_eq!(docker("64mb", "1.25").memory_bytes(), Ok(Some(64 << 20)));
    assert_eq!(docker("64mb", "1.25").nano_cpus(), Ok(Some(1_250_000_000)));
    assert!(
        docker("5m", "0").memory_bytes().is_err(),
        "below Docker's 6 MB minimum"
    );
    assert!(docker("64m", "0").nano_cpus().is_err());
    assert!(docker("64m", "0.0000000001").nano_cpus().is_err());
    let defaults: DockerDeploy = serde_json::from_value(json!({"listen": "0.0.0.0:80"})).unwrap();
    assert_eq!(
        (defaults.memory_bytes(), defaults.nano_cpus()),
        (Ok(None), Ok(None))
    );
    assert_eq!(defaults.listen_env, "LISTEN_ADDR");
    assert_eq!(defaults.restart, "unless-stopped");
    assert_eq!(defaults.health, HealthCheck::default());
}
