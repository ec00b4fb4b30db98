//! What the rendering holds: one xtask line per job, toolchains and cache from the spec,
//! secrets only in the release and promotion workflows, the promotion's stages, environments
//! and ledger, no expression inside a shell script, the same bytes every time, and names
//! that could break the YAML or a shell line refused. The full text is pinned in
//! `tests/snapshots/`.

mod common;

use std::path::Path;

use common::{example_spec, file, minimal_spec, run_scripts, three_stages};
use wharf_workflow::*;

#[test]
fn rendering_is_deterministic_and_every_file_has_the_header() {
    let spec = example_spec();
    let files = render(&spec).unwrap();
    assert_eq!(render(&spec).unwrap(), files);
    let paths: Vec<_> = files.iter().map(|(p, _)| p.to_str().unwrap()).collect();
    assert_eq!(paths, [CI_PATH, RELEASE_PATH, PROMOTE_PATH]);
    for (path, text) in &files {
        assert_eq!(text.lines().next(), Some(HEADER), "{}", path.display());
    }
}

/// The whole rendering of the example spec, as committed in `tests/snapshots/`: a change
/// shows up in review as a diff of the workflows. `WHARF_UPDATE_SNAPSHOTS=1` rewrites them.
#[test]
fn the_example_rendering_matches_the_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    if std::env::var_os("WHARF_UPDATE_SNAPSHOTS").is_some() {
        write(&root, &example_spec()).unwrap();
    }
    if let Err(e) = check(&root, &example_spec()) {
        panic!(
            "{e}\n(for this snapshot: WHARF_UPDATE_SNAPSHOTS=1 cargo test -p wharf-workflow --test render)"
        );
    }
}

#[test]
fn every_job_does_its_work_in_one_xtask_line() {
    let files = render(&example_spec()).unwrap();
    let ci = file(&files, CI_PATH);
    let release = file(&files, RELEASE_PATH);
    let xtask_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("cargo xtask") && !l.trim_start().starts_with(['#', '-']))
            .filter(|l| !l.trim_start().starts_with("name:"))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    assert_eq!(
        xtask_lines(ci),
        [
            "run: cargo xtask ci",
            r#"matrix="$(cargo xtask matrix --emit github-matrix)""#,
            r#"run: cargo xtask matrix --shard "$SHARD""#,
        ]
    );
    assert_eq!(xtask_lines(release), ["run: cargo xtask release"]);
    let promote = file(&files, PROMOTE_PATH);
    let per_stage = |stage: &str, deploy: Option<&str>| {
        let mut lines = vec![format!(
            r#"run: cargo xtask "$COMMAND" {stage} ${{DIGEST:+--digest "$DIGEST"}}"#
        )];
        lines.extend(deploy.map(str::to_owned));
        lines.push("cargo xtask status".to_owned());
        lines
    };
    // Staging runs on a target after each promotion; production's manifests are committed.
    assert_eq!(
        xtask_lines(promote),
        [
            per_stage("dev", None),
            per_stage("staging", Some("run: cargo xtask deploy staging")),
            per_stage("production", Some("cargo xtask deploy production --commit"))
        ]
        .concat()
    );
    // Every job (ci, plan, matrix; release; dev, staging, production) checks out the full
    // history first.
    for (text, jobs) in [(ci, 3), (release, 1), (promote, 3)] {
        assert_eq!(text.matches("- uses: actions/checkout@v4\n").count(), jobs);
        assert_eq!(text.matches("fetch-depth: 0\n").count(), jobs);
    }
}

#[test]
fn toolchains_come_from_the_spec() {
    let files = render(&example_spec()).unwrap();
    let ci = file(&files, CI_PATH);
    assert!(ci.contains(
        "rustup toolchain install stable --profile minimal --component rustfmt,clippy\n"
    ));
    assert!(ci.contains("rustup toolchain install nightly 1.95.0 --profile minimal\n"));
    // The shards install what their cells need, as the emitted matrix says.
    assert!(ci.contains("TOOLCHAINS: ${{ matrix.toolchains }}"));

    let mut spec = example_spec();
    spec.toolchains = vec!["1.90.0".into(), "beta".into()];
    let files = render(&spec).unwrap();
    let ci = file(&files, CI_PATH);
    assert!(ci.contains("rustup default 1.90.0\n"));
    assert!(ci.contains("rustup toolchain install beta --profile minimal\n"));
    assert!(!ci.contains("nightly"));
}

#[test]
fn the_step_cache_is_restored_before_and_saved_after_the_work() {
    let files = render(&minimal_spec()).unwrap();
    let ci = file(&files, CI_PATH);
    let restore = ci.find("uses: actions/cache/restore@v4").unwrap();
    let work = ci.find("run: cargo xtask ci").unwrap();
    let save = ci.find("uses: actions/cache/save@v4").unwrap();
    assert!(restore < work && work < save, "{ci}");
    let key = "wharf-ci-${{ runner.os }}-${{ hashFiles('**/Cargo.lock', 'pipelines/**') }}";
    assert!(
        ci.contains(&format!("key: {key}-${{{{ github.sha }}}}\n")),
        "{ci}"
    );
    assert!(
        ci.contains(&format!("restore-keys: |\n            {key}-\n")),
        "{ci}"
    );
    assert!(ci.contains("path: target/wharf/cache\n"));
    assert!(ci.contains("if: always() && steps.step-cache.outputs.cache-hit != 'true'"));
}

#[test]
fn the_release_workflow_runs_on_version_tags_with_the_registry_secrets() {
    let mut spec = example_spec();
    spec.registry.as_mut().unwrap().host = Some("ghcr.io".into());
    let files = render(&spec).unwrap();
    let release = file(&files, RELEASE_PATH);
    assert!(
        release.contains("on:\n  push:\n    tags:\n      - v*\n"),
        "{release}"
    );
    for line in [
        "WHARF_REGISTRY_USERNAME: ${{ secrets.WHARF_REGISTRY_USERNAME }}",
        "WHARF_REGISTRY_PASSWORD: ${{ secrets.WHARF_REGISTRY_PASSWORD }}",
        "WHARF_REGISTRY_HOST: ghcr.io",
        "WHARF_SIGNING_KEY: ${{ secrets.WHARF_SIGNING_KEY }}",
    ] {
        assert!(release.contains(line), "{line}\n{release}");
    }
    assert!(release.contains("permissions:\n  contents: read\n"));
    // With stages, the release job records its image in the ledger: it fetches the ledger
    // ref and may push it, and only that job may write.
    assert_eq!(release.matches("contents: write").count(), 1, "{release}");
    assert!(release.contains("git fetch origin +refs/wharf/ledger:refs/wharf/ledger || true"));
    assert!(release.contains("WHARF_LEDGER_REMOTE: origin"), "{release}");
    spec.promotion = None;
    let files = render(&spec).unwrap();
    let release = file(&files, RELEASE_PATH);
    assert!(!release.contains("contents: write"), "{release}");
    assert!(!release.contains("ledger"), "{release}");
    // Pull requests never see the credentials.
    let ci = file(&files, CI_PATH);
    assert!(!ci.contains("secrets."), "{ci}");
    assert!(ci.contains("on:\n  push:\n    branches:\n      - main\n  pull_request:\n"));
    // Only the job that uploads SARIF may write security events.
    assert_eq!(ci.matches("security-events: write").count(), 1);
}

#[test]
fn a_workflow_without_jobs_is_not_rendered() {
    let files = render(&minimal_spec()).unwrap();
    let paths: Vec<_> = files.iter().map(|(p, _)| p.to_str().unwrap()).collect();
    assert_eq!(paths, [CI_PATH]);
}

/// The last stage and the stages with approvals run in a GitHub environment of their name;
/// with two branches (`staging -> production` and `staging -> canary`) both ends are last.
#[test]
fn the_last_stages_and_those_with_approvals_get_an_environment() {
    let environments = |promotion: &Promotion| -> Vec<(String, Option<String>)> {
        promotion
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.environment.clone()))
            .collect()
    };
    let named = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(n, e)| (n.to_string(), e.map(str::to_owned)))
            .collect()
    };
    assert_eq!(
        environments(&three_stages()),
        named(&[
            ("dev", None),
            ("staging", None),
            ("production", Some("production"))
        ])
    );
    let branched = Promotion::new(vec![
        Stage::new("dev", None, false),
        Stage::new("staging", Some("dev"), true),
        Stage::new("production", Some("staging"), false),
        Stage::new("canary", Some("staging"), false),
    ]);
    assert_eq!(
        environments(&branched),
        named(&[
            ("dev", None),
            ("staging", Some("staging")),
            ("production", Some("production")),
            ("canary", Some("canary")),
        ])
    );
    assert_eq!(branched.ledger_remote, "origin");
    assert_eq!(branched.ledger_ref, "refs/wharf/ledger");

    let files = render(&example_spec()).unwrap();
    let promote = file(&files, PROMOTE_PATH);
    assert_eq!(promote.matches("    environment: ").count(), 1, "{promote}");
    assert!(
        promote.contains("  production:\n    name: production (from staging)\n    if: inputs.stage == 'production'\n    runs-on: ubuntu-latest\n    # GitHub's"),
        "{promote}"
    );
}

/// Dispatched with a command, a stage and a digest, or after a successful release; may push
/// the ledger's ref; one move per stage at a time.
#[test]
fn the_promotion_workflow_is_dispatched_or_follows_a_release() {
    let files = render(&example_spec()).unwrap();
    let promote = file(&files, PROMOTE_PATH);
    for part in [
        "        options:\n          - promote\n          - approve\n          - rollback\n",
        "        options:\n          - dev\n          - staging\n          - production\n",
        "      digest:\n        description: ",
        "  workflow_run:\n    workflows:\n      - release\n    types:\n      - completed\n",
        "permissions:\n  contents: write\n",
        "concurrency:\n  group: ${{ inputs.command == 'approve' && format('approve-{0}', github.run_id) || format('promote-{0}', inputs.stage || 'dev') }}\n  cancel-in-progress: false\n",
        "    if: (github.event_name == 'workflow_run' && github.event.workflow_run.conclusion == 'success') || inputs.stage == 'dev'\n",
        "    if: inputs.stage == 'staging'\n",
        "      WHARF_LEDGER_REMOTE: origin\n",
        "          DIGEST: ${{ inputs.digest }}\n",
        "          WHARF_REGISTRY_PASSWORD: ${{ secrets.WHARF_REGISTRY_PASSWORD }}\n",
    ] {
        assert!(promote.contains(part), "{part}\n{promote}");
    }
    // The ledger's ref is fetched after the checkout and before the work, in every job.
    let fetch = "run: git fetch origin +refs/wharf/ledger:refs/wharf/ledger || true\n";
    assert_eq!(promote.matches(fetch).count(), 3, "{promote}");
    let jobs = jobs(promote);
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        let checkout = job.find("uses: actions/checkout@v4").unwrap();
        let fetched = job.find(fetch).unwrap();
        let work = job.find("run: cargo xtask \"$COMMAND\"").unwrap();
        assert!(checkout < fetched && fetched < work, "{job}");
    }

    // Without a release pipeline nothing follows a release, and the remote and ref come from
    // the spec.
    let mut spec = minimal_spec();
    let mut promotion = three_stages();
    promotion.ledger_remote = "upstream".into();
    promotion.ledger_ref = "refs/ci/ledger".into();
    promotion.registry = None;
    spec.promotion = Some(promotion);
    let files = render(&spec).unwrap();
    let promote = file(&files, PROMOTE_PATH);
    assert!(!promote.contains("workflow_run"), "{promote}");
    assert!(
        promote.contains("    if: inputs.stage == 'dev'\n"),
        "{promote}"
    );
    assert!(promote.contains("git fetch upstream +refs/ci/ledger:refs/ci/ledger || true\n"));
    assert!(promote.contains("WHARF_LEDGER_REMOTE: upstream\n"));
    assert!(!promote.contains("secrets."), "{promote}");
}

/// Script injection: an expression inside a `run:` script is pasted into the shell's text
/// before the shell reads it, so an input such as `$(curl ...)` would run. Inputs reach the
/// scripts as environment variables only.
#[test]
fn no_shell_script_holds_an_expression() {
    let files = render(&example_spec()).unwrap();
    let mut scripts = 0;
    for (path, text) in &files {
        for script in run_scripts(text) {
            scripts += 1;
            assert!(
                !script.contains("${{"),
                "{}: a run script holds an expression: {script}",
                path.display()
            );
        }
    }
    // ci (1 + plan + matrix + 3 toolchains), release (2 + the ledger fetch), promote (3 x 4
    // and two deploys).
    assert_eq!(scripts, 23);
}

#[test]
fn arguments_and_environment_are_quoted() {
    let mut spec = minimal_spec();
    spec.pipelines[0].args = vec!["--skip".into(), "matrix step".into()];
    spec.pipelines[0].env.insert(
        "WHARF_ADVISORY_DB".into(),
        "${{ runner.temp }}/advisory-db".into(),
    );
    spec.pipelines[0].env.insert("FLAG".into(), "true".into());
    let files = render(&spec).unwrap();
    let ci = file(&files, CI_PATH);
    assert!(
        ci.contains("run: cargo xtask ci --skip 'matrix step'\n"),
        "{ci}"
    );
    assert!(
        ci.contains("WHARF_ADVISORY_DB: ${{ runner.temp }}/advisory-db\n"),
        "{ci}"
    );
    assert!(ci.contains("FLAG: \"true\"\n"), "{ci}");
}

#[test]
fn names_that_could_break_the_yaml_or_a_shell_line_are_refused() {
    /// A change that makes the spec invalid.
    type Edit = fn(&mut WorkflowSpec);
    let cases: Vec<(Edit, &str)> = vec![
        (
            |s| s.pipelines[0].name = "ci; rm -rf /".into(),
            r#"pipeline "ci; rm -rf /" is not a valid name"#,
        ),
        (
            |s| s.pipelines.push(Pipeline::new("ci", Trigger::Release)),
            r#"pipeline "ci" is defined twice"#,
        ),
        (
            |s| s.pipelines[0].name = "matrix".into(),
            r#"pipeline "matrix" is defined twice or takes a job id the matrix uses"#,
        ),
        (|s| s.toolchains.clear(), "no toolchain to install"),
        (
            |s| s.toolchains.push("nightly $(id)".into()),
            r#"toolchain "nightly $(id)" is not a valid name"#,
        ),
        (
            |s| s.cache_dir = "../cache".into(),
            r#"step cache directory path "../cache" is not a plain relative path"#,
        ),
        (
            |s| s.registry.as_mut().unwrap().password = "PASS-WORD".into(),
            r#"secret "PASS-WORD" is not a valid name"#,
        ),
        (
            |s| s.pipelines[1].secrets = vec!["KEY; id".into()],
            r#"secret "KEY; id" is not a valid name"#,
        ),
        (
            |s| {
                s.pipelines[0].env.insert("A B".into(), "x".into());
            },
            r#"environment variable "A B" is not a valid name"#,
        ),
        (
            |s| promotion(s).stages[0].name = "dev' || true || '".into(),
            r#"stage "dev' || true || '" is not a valid name"#,
        ),
        (
            |s| promotion(s).stages[2].name = "staging".into(),
            r#"stage "staging" is defined twice"#,
        ),
        (|s| promotion(s).stages.clear(), "no stage to promote to"),
        (
            |s| promotion(s).stages[2].environment = Some("prod env".into()),
            r#"GitHub environment "prod env" is not a valid name"#,
        ),
        (
            |s| promotion(s).ledger_remote = "origin; id".into(),
            r#"ledger remote "origin; id" is not a valid name"#,
        ),
        (
            |s| promotion(s).ledger_ref = "refs/wharf/../heads/main".into(),
            r#"ledger ref "refs/wharf/../heads/main" is not a plain git ref"#,
        ),
        (
            |s| promotion(s).ledger_ref = "wharf/ledger".into(),
            r#"ledger ref "wharf/ledger" is not a plain git ref"#,
        ),
        (
            |s| promotion(s).registry.as_mut().unwrap().username = "${{ github.token }}".into(),
            r#"secret "${{ github.token }}" is not a valid name"#,
        ),
    ];
    for (change, expected) in cases {
        let mut spec = example_spec();
        change(&mut spec);
        let message = render(&spec).unwrap_err().to_string();
        assert!(message.starts_with(expected), "{message}");
        assert!(message.contains("(hint: "), "{message}");
    }
}

fn promotion(spec: &mut WorkflowSpec) -> &mut Promotion {
    spec.promotion.as_mut().unwrap()
}

/// The text of each job of a rendered workflow, in order.
fn jobs(text: &str) -> Vec<String> {
    let (_, jobs) = text.split_once("\njobs:\n").expect("a workflow has jobs");
    let mut found: Vec<String> = Vec::new();
    for line in jobs.lines() {
        if !line.starts_with("   ") {
            found.push(String::new());
        }
        let job = found.last_mut().expect("the first line starts a job");
        job.push_str(line);
        job.push('\n');
    }
    found
}
