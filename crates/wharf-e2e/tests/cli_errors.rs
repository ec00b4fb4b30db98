//! The errors a user meets (issue 10, item 11), through the built `cargo xtask` binary on
//! fixture workspaces: exit code 2 for what the user must fix, before anything is compiled,
//! with a message that names the key, the file or the directory.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use wharf_e2e::{fixture_workspace, xtask_in};

const IMAGE: &str = "[image]\npackage = \"app\"\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code, showing the output when it is another.
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// An advisory database with no advisory: enough for the scan to run offline.
fn empty_db(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("db/crates")).unwrap();
    dir.join("db").display().to_string()
}

#[test]
fn a_package_that_does_not_exist_fails_ci_dry_run_naming_the_key_and_file() {
    let ws = fixture_workspace("[image]\npackage = \"nope\"\n");
    for args in [&["ci", "--dry-run"][..], &["image", "--dry-run"]] {
        let out = xtask_in(ws.path(), args, &[]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains("pipelines/wharf.toml: image.package: no package \"nope\"")
                && err.contains("(packages: app)"),
            "{args:?}: {err}"
        );
    }
    let ws = fixture_workspace("[image]\npackage = \"app\"\nbinary = \"server\"\n");
    let out = xtask_in(ws.path(), &["ci", "--dry-run"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("image.binary: package \"app\" has no binary \"server\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_base_layout_is_a_config_error_before_anything_is_compiled() {
    let base = format!("oci:/nonexistent/base:v1@sha256:{}", "a".repeat(64));
    let ws = fixture_workspace(&format!("{IMAGE}base = \"{base}\"\n"));
    let out = xtask_in(ws.path(), &["image"], &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("pipelines/wharf.toml: image.base:") && err.contains("/nonexistent/base"),
        "{err}"
    );
    assert!(
        !ws.path().join("target").exists(),
        "cargo ran before the config error: {err}"
    );
    let out = xtask_in(ws.path(), &["ci", "--dry-run"], &[]);
    assert_exit(&out, 2);
}

#[test]
fn a_platform_without_its_rust_target_names_rustup_target_add_before_anything_is_compiled() {
    // s390x: a target no machine here (or a usual laptop) has installed.
    let ws = fixture_workspace(&format!(
        "{IMAGE}platforms = [\"linux/amd64\", \"linux/s390x\"]\n"
    ));
    for args in [
        &["image", "--dry-run"][..],
        &["image"],
        &["ci", "--dry-run"],
    ] {
        let out = xtask_in(ws.path(), args, &[]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        for words in [
            "image.platforms:",
            "the Rust target s390x-unknown-linux-gnu (for linux/s390x) is not installed",
            "run `rustup target add s390x-unknown-linux-gnu`",
            "[image] binaries = { \"linux/s390x\" = \"path/to/binary\" }",
        ] {
            assert!(err.contains(words), "{args:?}: {words:?} not in {err}");
        }
    }
    assert!(
        !ws.path().join("target").exists(),
        "cargo ran before the config error"
    );

    // A binary given for that platform is used instead, and must be there.
    let ws = fixture_workspace(&format!(
        "{IMAGE}platforms = [\"linux/amd64\", \"linux/s390x\"]\nbinaries = {{ \"linux/s390x\" = \"dist/app-s390x\" }}\n"
    ));
    let out = xtask_in(ws.path(), &["image", "--dry-run"], &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("image.binaries: the binary for linux/s390x")
            && err.contains("dist/app-s390x, is not a file"),
        "{err}"
    );
    std::fs::create_dir_all(ws.path().join("dist")).unwrap();
    std::fs::write(ws.path().join("dist/app-s390x"), "binary").unwrap();
    let out = xtask_in(ws.path(), &["image", "--dry-run", "--json"], &[]);
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["index"], true);
    assert_eq!(plan["platforms"][0]["platform"], "linux/amd64");
    assert_eq!(
        plan["platforms"][0]["binary"]["compile"]["target"],
        "x86_64-unknown-linux-gnu"
    );
    assert_eq!(plan["platforms"][1]["platform"], "linux/s390x");
    assert!(
        plan["platforms"][1]["binary"]["file"]["path"]
            .as_str()
            .unwrap()
            .ends_with("dist/app-s390x")
    );

    // A platform wharf has no Rust target for says to give the binary.
    let ws = fixture_workspace(&format!("{IMAGE}platforms = [\"linux/mips64le\"]\n"));
    let out = xtask_in(ws.path(), &["image", "--dry-run"], &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("no Rust target for linux/mips64le")
            && err.contains("[image] binaries = { \"linux/mips64le\""),
        "{err}"
    );
}

#[test]
fn a_lockfile_that_is_not_a_cargo_lock_exits_2() {
    let ws = fixture_workspace("");
    let db = empty_db(ws.path());
    let out = xtask_in(
        ws.path(),
        &["scan", "--lockfile", "/etc/passwd", "--db", &db],
        &[],
    );
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "/etc/passwd is not a Cargo.lock (pass a workspace's Cargo.lock to --lockfile)"
        ),
        "{err}"
    );
}

#[test]
fn scan_output_never_creates_directories_and_a_json_name_gets_json() {
    let ws = fixture_workspace("");
    let db = empty_db(ws.path());
    let lockfile = ws.path().join("Cargo.lock").display().to_string();
    let scan = |output: &Path, extra: &[&str]| {
        let output = output.display().to_string();
        let mut args = vec![
            "scan",
            "--lockfile",
            &lockfile,
            "--db",
            &db,
            "--output",
            &output,
        ];
        args.extend_from_slice(extra);
        xtask_in(ws.path(), &args, &[])
    };

    let missing = ws.path().join("missing/dir");
    let out = scan(&missing.join("x.json"), &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!(
            "directory {} does not exist (create it first",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!ws.path().join("missing").exists(), "a directory was made");

    // No --format: the name says which.
    let json = ws.path().join("report.json");
    assert_exit(&scan(&json, &[]), 0);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap())
        .unwrap_or_else(|e| panic!("report.json is not JSON: {e}"));
    assert_eq!(report["passed"], true);
    let sarif = ws.path().join("advisories.sarif");
    assert_exit(&scan(&sarif, &[]), 0);
    let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let text = ws.path().join("report.txt");
    assert_exit(&scan(&text, &[]), 0);
    assert!(
        std::fs::read_to_string(&text)
            .unwrap()
            .contains("scan passed")
    );

    // The table asked for by name, into a JSON name: refused, nothing written.
    let table = ws.path().join("table.json");
    let out = scan(&table, &["--format", "table"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the name says JSON, but --format table writes text"),
        "{}",
        stderr(&out)
    );
    assert!(!table.exists());
}

#[test]
fn tag_on_a_layout_says_tagging_is_for_registries_and_how_to_copy_instead() {
    let ws = fixture_workspace("");
    let out = xtask_in(ws.path(), &["tag", "oci:/tmp/layout:v1", "v2"], &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("cannot tag oci:/tmp/layout:v1: tagging works on images in a registry only")
            && err.contains("cargo xtask copy oci:/tmp/layout:v1 oci:/tmp/layout:v2"),
        "{err}"
    );
}

#[test]
fn a_tag_that_is_too_long_is_reported_once() {
    let ws = fixture_workspace("");
    let long = "t".repeat(200);
    let cases = [
        vec![
            "tag".to_string(),
            format!("docker://127.0.0.1:9/x:{long}"),
            "v2".into(),
        ],
        vec![
            "tag".into(),
            "docker://127.0.0.1:9/x:v1".into(),
            long.clone(),
        ],
        vec![
            "copy".into(),
            format!("oci:/tmp/layout:{long}"),
            "oci:/tmp/other:v1".into(),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = xtask_in(ws.path(), &args, &[]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert_eq!(
            err.matches("is 200 characters").count(),
            1,
            "{:?}: {err}",
            args[0]
        );
    }
}

#[test]
fn an_empty_shard_succeeds_with_a_note_in_the_dry_run_and_the_run() {
    // One package, default features, stable: one cell, so shards 2 to 20 are empty.
    let ws = fixture_workspace("[matrix]\n");
    let root = ws.path().display().to_string();
    let out_dir = ws.path().join("out");
    let out_dir_arg = out_dir.display().to_string();
    let matrix = |extra: &[&str]| {
        let mut args = vec![
            "matrix",
            "--workspace",
            &root,
            "--out-dir",
            &out_dir_arg,
            "--shard",
            "15/20",
        ];
        args.extend_from_slice(extra);
        xtask_in(ws.path(), &args, &[])
    };
    let note = "shard 15/20 is empty: the plan has 1 cell for 20 shards";

    let dry = matrix(&["--dry-run"]);
    assert_exit(&dry, 0);
    assert!(stdout(&dry).starts_with("0 cells"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains(note), "{}", stdout(&dry));
    let dry_json = matrix(&["--dry-run", "--json"]);
    assert_exit(&dry_json, 0);
    let plan: Value = serde_json::from_slice(&dry_json.stdout).unwrap();
    assert!(plan["note"].as_str().unwrap().starts_with(note));

    let run = matrix(&["--json"]);
    assert_exit(&run, 0);
    assert!(stderr(&run).contains(note), "{}", stderr(&run));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["cells"], Value::Array(Vec::new()));
    assert!(out_dir.join("junit.xml").is_file(), "no JUnit file for CI");
}

#[test]
fn ci_dry_run_says_why_each_step_is_left_out() {
    let ws = fixture_workspace(IMAGE);
    let out = xtask_in(ws.path(), &["ci", "--dry-run"], &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for line in [
        "wharf-image app pipelines/wharf.toml",
        "skipped matrix: no [matrix] section in pipelines/wharf.toml",
        "skipped scan: no [scan] section in pipelines/wharf.toml",
        "skipped push: no [push] section in pipelines/wharf.toml (add [push] destination = \"docker://HOST/REPO\" to push the image)",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let out = xtask_in(ws.path(), &["ci", "--dry-run", "--json"], &[]);
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped: Vec<(&str, &str)> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["matrix", "scan", "push"]
    );
    assert!(skipped[2].1.starts_with("no [push] section"), "{skipped:?}");
}

/// `cargo xtask` works on the workspace around the current directory, found when it runs:
/// the binary built in this repository (as two checkouts sharing a `CARGO_TARGET_DIR` share
/// it) plans the fixture's image when started inside the fixture, and `--config` picks
/// another pipeline file.
#[test]
fn the_workspace_is_found_at_run_time_from_the_current_directory() {
    let ws = fixture_workspace(&format!("{IMAGE}repository = \"first/app\"\n"));
    std::fs::write(
        ws.path().join("other.toml"),
        format!("{IMAGE}repository = \"second/app\"\n"),
    )
    .unwrap();
    let plan = |args: &[&str]| -> Value {
        let mut command = std::process::Command::new(wharf_e2e::xtask_binary());
        for name in wharf_e2e::CI_VARIABLES {
            command.env_remove(name);
        }
        let out = command
            .args(args)
            .env_remove("WHARF_WORKSPACE")
            .current_dir(ws.path().join("src"))
            .output()
            .unwrap();
        assert_exit(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = plan(&["image", "--dry-run", "--json"]);
    assert_eq!(first["repository"], "first/app");
    let layout = first["layout"].as_str().unwrap();
    let root = ws.path().canonicalize().unwrap();
    assert!(
        Path::new(layout).starts_with(&root),
        "layout {layout} is outside the fixture {}",
        root.display()
    );
    let second = plan(&["image", "--dry-run", "--json", "--config", "../other.toml"]);
    assert_eq!(second["repository"], "second/app");
}
