//! The rendered workflows pass the validators GitHub's own tooling would apply: actionlint
//! (expressions, `needs` outputs, `steps` ids, action inputs) and the workflow JSON schema
//! through check-jsonschema. A deliberately broken rendering is refused by each, so a pass
//! means something. Missing validators skip the test, or fail it under `CI=true`
//! (`wharf_e2e::skip`); `bash pipelines/test.sh` installs both.

mod common;

use common::{example_spec, file, minimal_spec, three_stages};
use wharf_e2e::actions::{check_workflow_schema, lint, linter, require_check_jsonschema};
use wharf_workflow::*;

/// The spec variants whose every file is validated: the example (ci, release and promote
/// with a release to follow), the smallest, and the smallest with stages (promote without a
/// release, an OCI layout's stages: no secrets).
fn specs() -> [WorkflowSpec; 3] {
    let mut staged = minimal_spec();
    let mut promotion = three_stages();
    promotion.registry = None;
    staged.promotion = Some(promotion);
    [example_spec(), minimal_spec(), staged]
}

/// Every spec variant's files, written under a fresh directory: (directory, relative paths).
fn written(spec: &WorkflowSpec) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = write(dir.path(), spec).unwrap();
    let paths = paths
        .iter()
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    (dir, paths)
}

/// The example's ci.yml with `edit` applied, written as `name` in a fresh directory.
fn broken(name: &str, edit: impl Fn(&str) -> String) -> (tempfile::TempDir, String) {
    broken_file(CI_PATH, name, edit)
}

/// The example's file at `path` with `edit` applied, written as `name` in a fresh directory.
fn broken_file(
    path: &str,
    name: &str,
    edit: impl Fn(&str) -> String,
) -> (tempfile::TempDir, String) {
    let files = render(&example_spec()).unwrap();
    let original = file(&files, path);
    let text = edit(original);
    assert_ne!(&text, original, "the edit must change the file");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), &text).unwrap();
    (dir, text)
}

/// Removes the first job's `runs-on` line.
fn without_runs_on(text: &str) -> String {
    text.replacen("    runs-on: ubuntu-latest\n", "", 1)
}

#[test]
fn rendered_workflows_pass_actionlint() {
    let Some(linter) = linter() else { return };
    for spec in specs() {
        let (dir, paths) = written(&spec);
        for path in paths {
            if let Err(report) = lint(linter, dir.path(), &path) {
                let text = std::fs::read_to_string(dir.path().join(&path)).unwrap();
                panic!("{path} fails actionlint:\n{report}\n{text}");
            }
        }
    }
}

#[test]
fn actionlint_refuses_a_broken_rendering() {
    let Some(linter) = linter() else { return };
    let (dir, _) = broken("no-runs-on.yml", without_runs_on);
    let report = lint(linter, dir.path(), "no-runs-on.yml")
        .expect_err("actionlint must refuse a job without runs-on");
    assert!(
        report.contains("\"runs-on\" section is missing"),
        "{report}"
    );

    // A typo in an expression: an output the plan job does not have.
    let (dir, _) = broken("bad-expression.yml", |t| {
        t.replace("needs.plan.outputs.matrix", "needs.plan.outputs.matrx")
    });
    let report = lint(linter, dir.path(), "bad-expression.yml")
        .expect_err("actionlint must refuse an undefined job output");
    assert!(report.contains("matrx"), "{report}");

    // promote.yml's inputs are checked too: a stage input it does not declare.
    let (dir, _) = broken_file(PROMOTE_PATH, "bad-input.yml", |t| {
        t.replace("inputs.stage == 'staging'", "inputs.stgae == 'staging'")
    });
    let report = lint(linter, dir.path(), "bad-input.yml")
        .expect_err("actionlint must refuse an undefined input");
    assert!(report.contains("\"stgae\" is not defined"), "{report}");
}

#[test]
fn rendered_workflows_pass_the_workflow_schema() {
    if !require_check_jsonschema() {
        return;
    }
    for spec in specs() {
        let (dir, paths) = written(&spec);
        for path in paths {
            let file = dir.path().join(&path);
            if let Err(report) = check_workflow_schema(&file) {
                let text = std::fs::read_to_string(&file).unwrap();
                panic!("{path} fails the workflow schema:\n{report}\n{text}");
            }
        }
    }
}

#[test]
fn the_workflow_schema_refuses_a_broken_rendering() {
    if !require_check_jsonschema() {
        return;
    }
    let (dir, _) = broken("no-runs-on.yml", without_runs_on);
    let report = check_workflow_schema(&dir.path().join("no-runs-on.yml"))
        .expect_err("the schema must refuse a job without runs-on");
    assert!(
        report.contains("'runs-on' is a required property"),
        "{report}"
    );

    let (dir, _) = broken("bad-trigger.yml", |t| {
        t.replace("  pull_request:\n", "  pull-request:\n")
    });
    let report = check_workflow_schema(&dir.path().join("bad-trigger.yml"))
        .expect_err("the schema must refuse an unknown event");
    assert!(report.contains("$.on"), "{report}");
}

/// The schema check reads nothing from the network: it passes with no route anywhere.
/// Only where the test may create a network namespace (`unshare -n`, as root).
#[test]
fn the_workflow_schema_check_works_offline() {
    if !require_check_jsonschema() {
        return;
    }
    let isolated = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !isolated {
        eprintln!("not checked: `unshare -n` is not allowed here");
        return;
    }
    let (dir, paths) = written(&example_spec());
    let out = std::process::Command::new("unshare")
        .args([
            "-n",
            "check-jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
        ])
        .args(paths.iter().map(|p| dir.path().join(p)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads the environment of the `cargo xtask ci` step with a YAML 1.2 reader (ruamel.yaml,
/// check-jsonschema's) and a YAML 1.1 one (PyYAML); prints both as JSON.
const READ_ENV: &str = r#"
import json, sys, yaml
from ruamel.yaml import YAML
text = open(sys.argv[1]).read()
def env(doc):
    step = next(s for s in doc["jobs"]["ci"]["steps"] if s.get("run") == sys.argv[2])
    return step["env"]
print(json.dumps([env(YAML(typ="safe").load(text)), env(yaml.safe_load(text))]))
"#;

/// Strings YAML would retype or misread unquoted come back as the same strings from both
/// YAML versions' readers: the emitter's plain-or-quoted choice, checked by real parsers.
#[test]
fn environment_values_read_back_as_the_same_strings() {
    let python_yaml = wharf_e2e::require(
        "python3",
        &["-c", "import ruamel.yaml, yaml"],
        "python3 -m pip install check-jsonschema pyyaml",
    );
    if !python_yaml {
        return;
    }
    let values = [
        "true",
        "off",
        "Yes",
        "~",
        "null",
        "",
        "1.95",
        "0o17",
        "1e3",
        ".inf",
        "12:30",
        "a: b",
        "a #b",
        "#x",
        "*x",
        "&x",
        "!x",
        "|x",
        ">x",
        "%x",
        "@x",
        "`x`",
        "'x'",
        "\"x\"",
        "-x",
        "? x",
        "[x]",
        "{x}",
        " x",
        "x ",
        "x:",
        "a\nb",
        "tab\there",
        "${{ runner.temp }}/db",
        "ünïcödé",
    ];
    let mut spec = minimal_spec();
    spec.pipelines[0].env = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i:02}"), v.to_string()))
        .collect();
    let (dir, paths) = written(&spec);
    let out = std::process::Command::new("python3")
        .args(["-c", READ_ENV])
        .arg(dir.path().join(&paths[0]))
        .arg("cargo xtask ci")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: [std::collections::BTreeMap<String, serde_json::Value>; 2] =
        serde_json::from_str(&stdout).unwrap();
    for (reader, env) in ["ruamel.yaml (YAML 1.2)", "PyYAML (YAML 1.1)"]
        .iter()
        .zip(read)
    {
        for (name, value) in &spec.pipelines[0].env {
            assert_eq!(
                env.get(name),
                Some(&serde_json::Value::String(value.clone())),
                "{reader} reads {name} differently"
            );
        }
    }
}
