//! `cargo xtask ci` as a pipeline (issue 11): the events it prints with `--json`, the step
//! cache across runs, steps that overlap, and what it tells GitHub Actions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use wharf_e2e::{fixture_workspace, xtask_in};

const CONFIG: &str =
    "[image]\npackage = \"app\"\n[ci]\nsteps = [\"fmt\", \"clippy\", \"test\", \"image\"]\n";

/// The JSON events of a run, one per line.
fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"))
        })
        .collect()
}

/// Each finished step's id and whether it came from the cache.
fn cache_hits(events: &[Value]) -> BTreeMap<String, bool> {
    events
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            assert_eq!(e["status"], "succeeded", "{e}");
            (
                e["step"].as_str().unwrap().to_string(),
                e["cache_hit"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn ci(root: &Path, extra_env: &[(&str, &str)]) -> Output {
    let out = xtask_in(root, &["ci", "--json", "--parallel", "2"], extra_env);
    assert!(
        out.status.success(),
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn expect(hits: &BTreeMap<String, bool>, cached: &[&str], ran: &[&str]) {
    for step in cached {
        assert_eq!(
            hits.get(*step),
            Some(&true),
            "{step} should be cached: {hits:?}"
        );
    }
    for step in ran {
        assert_eq!(
            hits.get(*step),
            Some(&false),
            "{step} should have run: {hits:?}"
        );
    }
}

#[test]
fn a_second_run_is_cached_and_a_change_reruns_exactly_the_steps_that_read_it() {
    let ws = fixture_workspace(CONFIG);
    let root = ws.path();
    let first = events(&ci(root, &[]));
    expect(
        &cache_hits(&first),
        &[],
        &["fmt", "clippy", "test", "image"],
    );
    // Independent steps overlap: the first two start before anything finishes.
    let kinds: Vec<&str> = first.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let first_finish = kinds.iter().position(|k| *k == "finished").unwrap();
    assert!(
        kinds[..first_finish]
            .iter()
            .filter(|k| **k == "started")
            .count()
            >= 2,
        "no two steps overlapped: {kinds:?}"
    );
    let digest = |events: &[Value]| {
        events
            .iter()
            .find(|e| e["event"] == "finished" && e["step"] == "image")
            .map(|e| e["outputs"]["digest"]["value"].clone())
            .unwrap()
    };

    let second = events(&ci(root, &[]));
    expect(
        &cache_hits(&second),
        &["fmt", "clippy", "test", "image"],
        &[],
    );
    assert_eq!(
        digest(&second),
        digest(&first),
        "a cache hit replays the outputs"
    );

    // A file no Rust tool reads: the tests and the image may read any file; fmt and clippy
    // read Rust sources and manifests only.
    std::fs::write(root.join("NOTES.md"), "notes\n").unwrap();
    let third = events(&ci(root, &[]));
    expect(&cache_hits(&third), &["fmt", "clippy"], &["test", "image"]);

    // A Rust source: everything.
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"app, changed\");\n}\n",
    )
    .unwrap();
    let fourth = events(&ci(root, &[]));
    expect(
        &cache_hits(&fourth),
        &[],
        &["fmt", "clippy", "test", "image"],
    );

    // A deleted image is not trusted from the cache: the step runs again.
    std::fs::remove_dir_all(root.join("target/wharf/oci")).unwrap();
    let fifth = events(&ci(root, &[]));
    expect(&cache_hits(&fifth), &["fmt", "clippy", "test"], &["image"]);

    // --no-cache runs everything.
    let out = xtask_in(root, &["ci", "--json", "--no-cache"], &[]);
    assert!(out.status.success());
    expect(
        &cache_hits(&events(&out)),
        &[],
        &["fmt", "clippy", "test", "image"],
    );
}

#[test]
fn the_plan_is_the_same_under_github_actions() {
    let ws = fixture_workspace(CONFIG);
    let plan = |env: &[(&str, &str)]| {
        let out = xtask_in(ws.path(), &["ci", "--dry-run", "--json"], env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let local = plan(&[]);
    assert_eq!(local, plan(&[("GITHUB_ACTIONS", "true")]));
    let keys: Vec<&Value> = local["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["key"])
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(
        keys.iter()
            .all(|k| k.as_str().is_some_and(|k| k.len() == 64)),
        "{keys:?}"
    );
}

/// GitHub's rules for `$GITHUB_OUTPUT`: `name=value` lines and `name<<DELIMITER` blocks.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            values.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            values.insert(name.to_string(), value.to_string());
        }
    }
    values
}

#[test]
fn under_github_actions_diagnostics_point_at_files_and_the_summary_and_outputs_are_written() {
    let ws = fixture_workspace(CONFIG);
    let root = ws.path();
    let source = "fn main() {\n    println!(\"app\");\n}\n\nfn double(x: u32) -> u32 {\n    return x * 2;\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn doubles() {\n        assert_eq!(super::double(2), 5);\n    }\n}\n";
    std::fs::write(root.join("src/main.rs"), source).unwrap();
    let files = tempfile::tempdir().unwrap();
    let summary = files.path().join("summary.md");
    let output = files.path().join("output.txt");
    let out = xtask_in(
        root,
        &["ci"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // clippy: `return x * 2;` is line 6, column 5 (needless_return).
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=src/main.rs,line=6,col=5")),
        "no clippy annotation at src/main.rs:6:5 in:\n{stdout}"
    );
    // The failing assertion is line 13.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=src/main.rs,line=13") && l.contains("doubles")),
        "no test annotation at src/main.rs:13 in:\n{stdout}"
    );
    assert!(stdout.contains("::group::clippy"), "{stdout}");

    let summary = std::fs::read_to_string(&summary).unwrap();
    for row in ["| fmt |", "| clippy |", "| test |", "| image |"] {
        assert!(
            summary.contains(row),
            "{row} not in the summary:\n{summary}"
        );
    }
    let outputs = parse_github_output(&std::fs::read_to_string(&output).unwrap());
    let digest = &outputs["digest"];
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{outputs:?}"
    );
    assert!(summary.contains(digest.as_str()), "{summary}");
    assert!(outputs["reference"].starts_with("oci:"), "{outputs:?}");
    let head = String::from_utf8(
        std::process::Command::new("git")
            .args([
                "-C",
                root.to_str().unwrap(),
                "rev-parse",
                "--short=7",
                "HEAD",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(outputs["tags"], format!("sha-{}-dirty", head.trim()));
}

/// The committed workflows are what `cargo xtask codegen` renders from this repository's
/// pipelines and config, and they pass actionlint and GitHub's workflow schema; an edited
/// copy is drift, named with the fix.
#[test]
fn the_committed_workflows_are_the_rendering_and_pass_the_validators() {
    let root = wharf_e2e::workspace_root();
    let check = |out_dir: &Path| {
        let out = xtask_in(
            &root,
            &["codegen", "--check", "--out", out_dir.to_str().unwrap()],
            &[],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&root);
    assert_eq!(code, Some(0), "{stderr}");

    let copy = tempfile::tempdir().unwrap();
    let workflows = copy.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for name in ["ci.yml", "release.yml", "promote.yml"] {
        std::fs::copy(
            root.join(".github/workflows").join(name),
            workflows.join(name),
        )
        .unwrap();
    }
    assert_eq!(check(copy.path()).0, Some(0));
    let ci = workflows.join("ci.yml");
    let edited = std::fs::read_to_string(&ci)
        .unwrap()
        .replace("cargo xtask ci", "cargo xtask ci --no-cache");
    std::fs::write(&ci, edited).unwrap();
    let (code, stderr) = check(copy.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ci.yml") && stderr.contains("cargo xtask codegen"),
        "the drift names neither the file nor the fix: {stderr}"
    );

    let Some(linter) = wharf_e2e::actions::linter() else {
        return;
    };
    if !wharf_e2e::actions::require_check_jsonschema() {
        return;
    }
    for name in ["ci.yml", "release.yml", "promote.yml"] {
        let dir = root.join(".github/workflows");
        wharf_e2e::actions::lint(linter, &dir, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        wharf_e2e::actions::check_workflow_schema(&dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// `cargo xtask release`: the ci steps, then the push step, which pushes the image the
/// image step built (from its recorded outputs) to a real registry and attaches the scan's
/// report and SBOM; skopeo reads the manifest back at the digest the image step printed.
#[test]
fn release_pushes_the_built_image_and_attaches_the_scan() {
    if !wharf_e2e::require_skopeo() {
        return;
    }
    let Some(registry) = wharf_e2e::registry::Registry::try_start(wharf_e2e::registry::Auth::None)
    else {
        return;
    };
    let destination = format!("docker://{}/team/app", registry.host());
    let ws = fixture_workspace(&format!(
        "[image]\npackage = \"app\"\n[scan]\n[push]\ndestination = \"{destination}\"\n[ci]\nsteps = [\"image\", \"scan\"]\n"
    ));
    let db = ws.path().join("target/empty-advisory-db");
    std::fs::create_dir_all(db.join("crates")).unwrap();
    let out = xtask_in(
        ws.path(),
        &["release", "--json"],
        &[("WHARF_ADVISORY_DB", db.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let finished: BTreeMap<String, Value> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["step"].as_str().unwrap().to_string(), e))
        .collect();
    assert_eq!(
        finished.keys().map(String::as_str).collect::<Vec<_>>(),
        ["image", "push", "scan"]
    );
    let built = finished["image"]["outputs"]["digest"]["value"]
        .as_str()
        .unwrap();
    assert_eq!(finished["push"]["outputs"]["digest"]["value"], built);
    let tag = finished["image"]["outputs"]["tags"]["value"][0]
        .as_str()
        .unwrap();

    let raw = wharf_e2e::run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("{destination}:{tag}"),
    ]))
    .stdout;
    assert_eq!(wharf::oci::Digest::sha256(&raw).to_string(), built);

    let listed = xtask_in(
        ws.path(),
        &["referrers", &format!("{destination}@{built}"), "--json"],
        &[],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let attached: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let mut kinds: Vec<&str> = attached
        .iter()
        .map(|d| d["artifactType"].as_str().unwrap_or_default())
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 2, "{attached:?}");
    assert!(kinds.iter().any(|k| k.contains("cyclonedx")), "{kinds:?}");
}
