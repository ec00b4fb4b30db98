//! `cargo xtask matrix` running real cells with real toolchains (stable, nightly, 1.95.0)
//! and both runners (cargo, cargo-nextest) on the fixture crate in
//! `tests/fixtures/matrix`: a failing cell reports the command that reproduces it (which
//! is then run, and fails the same way), a flaky test is reported as flaky, a hung cell
//! is killed with the process its test started, the JUnit XML is read by Python's XML
//! parser, and cells of two toolchains share one target directory without rebuilding.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wharf_e2e::{require, run, workspace_root, xtask_binary};

fn fixture() -> PathBuf {
    workspace_root().join("crates/wharf-e2e/tests/fixtures/matrix")
}

/// Toolchains and nextest the tests need; under CI a missing one fails the test.
fn require_toolchains() -> bool {
    ["stable", "nightly", "1.95.0"].iter().all(|toolchain| {
        require(
            "cargo",
            &[&format!("+{toolchain}"), "--version"],
            &format!("rustup toolchain install {toolchain}"),
        )
    })
}

fn require_nextest() -> bool {
    require(
        "cargo",
        &["nextest", "--version"],
        "cargo install --locked cargo-nextest",
    )
}

/// Runs `cargo xtask matrix --workspace FIXTURE --config CONFIG --json` with its own
/// target and output directories under `dir`, plus `args`.
fn matrix(dir: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(xtask_binary());
    command
        .arg("matrix")
        .arg("--workspace")
        .arg(fixture())
        .arg("--config")
        .arg(config)
        .arg("--target-dir")
        .arg(dir.join("target"))
        .arg("--out-dir")
        .arg(dir.join("out"))
        .args(["--json"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command.output().expect("running cargo xtask matrix")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the JSON report ({e})\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn features(cell: &Value) -> Vec<&str> {
    cell["cell"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

fn failing_and_flaky(runner: &str) {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let config = fixture().join("pipelines/failing.toml");
    let out = matrix(
        dir.path(),
        &config,
        &["--runner", runner, "--junit", junit.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("3 of 9 matrix cells failed"),
        "stderr: {stderr}"
    );
    let report = report(&out);
    assert_eq!(report["harness"], runner);
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 9);
    let toolchains: BTreeSet<&str> = cells
        .iter()
        .map(|c| c["cell"]["toolchain"].as_str().unwrap())
        .collect();
    assert_eq!(
        toolchains,
        BTreeSet::from(["1.95.0", "nightly", "stable"]),
        "msrv is the fixture's rust-version"
    );

    for cell in cells {
        let id = cell["id"].as_str().unwrap();
        let tests = cell["tests"].as_array().unwrap();
        let status_of = |name: &str| {
            tests
                .iter()
                .find(|t| t["name"] == name)
                .unwrap_or_else(|| panic!("{id}: no test {name} in {tests:?}"))
        };
        let features = features(cell);
        if features.contains(&"broken") {
            assert_eq!(cell["outcome"], "failed", "{id}");
            let broken = status_of("tests::broken");
            assert_eq!(broken["status"], "failed", "{id}");
            assert_eq!(broken["attempts"], 3, "{id}: first run and two retries");
            assert_eq!(status_of("b::tests::large")["status"], "passed", "{id}");
            let reproduce = cell["reproduce"].as_str().unwrap();
            assert!(
                reproduce.ends_with("-- --exact tests::broken"),
                "{id}: {reproduce}"
            );
            assert!(stderr.contains(reproduce), "the summary shows {reproduce}");
        } else if features.contains(&"flaky") {
            assert_eq!(cell["outcome"], "flaky", "{id}");
            let flaky = status_of("tests::flaky");
            assert_eq!(flaky["status"], "flaky", "{id}");
            assert_eq!(
                flaky["attempts"], 2,
                "{id}: failed once, passed on the retry"
            );
            assert!(cell["reproduce"].is_null(), "{id}");
        } else {
            assert_eq!(cell["outcome"], "passed", "{id}");
            assert_eq!(status_of("a::tests::large")["status"], "passed", "{id}");
        }
    }

    // The reproduce command, run as a person would (sh, in the fixture), fails on the
    // same test and runs nothing else.
    let broken = cells
        .iter()
        .find(|c| features(c).contains(&"broken") && c["cell"]["toolchain"] == "nightly")
        .unwrap();
    let reproduce = broken["reproduce"].as_str().unwrap();
    let again = Command::new("sh")
        .arg("-c")
        .arg(reproduce)
        .current_dir(fixture())
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(!again.status.success(), "{reproduce} passed:\n{text}");
    let failed_line = if runner == "cargo" {
        "test tests::broken ... FAILED"
    } else {
        "FAIL"
    };
    assert!(text.contains(failed_line), "{reproduce}:\n{text}");
    assert!(text.contains("tests::broken"), "{reproduce}:\n{text}");
    assert!(
        !text.contains("b::tests::large"),
        "only the failing test ran:\n{text}"
    );

    // The JUnit XML, read by another parser: three flaky tests with one flaky run each,
    // three failures with two reruns each.
    let summary = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
         root = ET.parse(sys.argv[1]).getroot()\n\
         cases = root.iter('testcase')\n\
         out = []\n\
         for c in cases:\n\
         \x20   kids = [k.tag for k in c]\n\
         \x20   if kids: out.append(c.get('name') + ':' + ','.join(kids))\n\
         print(root.get('tests'), root.get('failures'), len(list(root.iter('testsuite'))))\n\
         print('\\n'.join(sorted(out)))\n",
        )
        .arg(&junit));
    let summary = String::from_utf8(summary.stdout).unwrap();
    let mut lines = summary.lines();
    let totals: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(totals[1], "3", "three failures: {summary}");
    assert_eq!(totals[2], "9", "one suite per cell: {summary}");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        rest,
        [
            "tests::broken:failure,rerunFailure,rerunFailure",
            "tests::broken:failure,rerunFailure,rerunFailure",
            "tests::broken:failure,rerunFailure,rerunFailure",
            "tests::flaky:flakyFailure",
            "tests::flaky:flakyFailure",
            "tests::flaky:flakyFailure",
        ],
        "{summary}"
    );
}

#[test]
fn cargo_runner_reports_the_failing_cell_and_the_flaky_test() {
    if !require_toolchains() {
        return;
    }
    failing_and_flaky("cargo");
}

#[test]
fn nextest_runner_reports_the_failing_cell_and_the_flaky_test() {
    if !require_toolchains() || !require_nextest() {
        return;
    }
    failing_and_flaky("nextest");
}

fn alive(pid: u32) -> bool {
    // A killed orphan may stay a zombie until init reaps it: that is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn hung_cell_is_killed(runner: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let out = matrix(
        dir.path(),
        &fixture().join("pipelines/hang.toml"),
        &["--runner", runner, "--timeout", "15"],
        &[("MATRIX_FIXTURE_PID_FILE", pid_file.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = report(&out);
    let cell = &report["cells"][0];
    assert_eq!(cell["outcome"], "timed_out", "{cell}");
    assert!(
        cell["message"].as_str().unwrap().contains("timed out"),
        "{cell}"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the hanging test started its child before the timeout")
        .trim()
        .parse()
        .unwrap();
    // Killed before the command returned; give the kernel a moment to finish.
    let gone = (0..100).any(|_| {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(gone, "the test's child process {pid} outlived the cell");
}

#[test]
fn a_hung_cell_is_killed_with_its_process_tree_cargo() {
    if !require_toolchains() {
        return;
    }
    hung_cell_is_killed("cargo");
}

#[test]
fn a_hung_cell_is_killed_with_its_process_tree_nextest() {
    if !require_toolchains() || !require_nextest() {
        return;
    }
    hung_cell_is_killed("nextest");
}

/// The runner shares one target directory between cells of different toolchains and
/// features because they do not invalidate each other: a second run compiles nothing.
#[test]
fn cells_of_two_toolchains_share_a_target_dir_without_rebuilding() {
    if !require_toolchains() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[matrix]\ntoolchains = [\"stable\", \"nightly\"]\nrunner = \"cargo\"\n\
         [[matrix.packages]]\nname = \"matrix-fixture\"\n\
         features = { mode = \"sets\", sets = [[\"a\"], [\"b\"]] }\n",
    )
    .unwrap();
    let first = matrix(dir.path(), &config, &["--jobs", "2"], &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let logs = |report: &Value| -> Vec<String> {
        report["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| std::fs::read_to_string(c["log"].as_str().unwrap()).unwrap())
            .collect()
    };
    let compiled = logs(&report(&first))
        .iter()
        .filter(|log| log.contains("Compiling matrix-fixture"))
        .count();
    assert_eq!(
        compiled, 4,
        "each of the 4 cells builds once the first time"
    );
    let second = matrix(dir.path(), &config, &["--jobs", "2"], &[]);
    assert!(second.status.success());
    for log in logs(&report(&second)) {
        assert!(!log.contains("Compiling"), "a cell rebuilt:\n{log}");
    }
}

/// A cell whose build fails is failed, shows the compiler's error, and is not retried.
#[test]
fn a_build_failure_fails_the_cell_with_the_compiler_error() {
    if !require_toolchains() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[matrix]\nrunner = \"cargo\"\n[[matrix.packages]]\nname = \"matrix-fixture\"\n\
         features = { mode = \"sets\", sets = [[\"a\", \"uncompilable\"]] }\n",
    )
    .unwrap();
    let out = matrix(dir.path(), &config, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report = report(&out);
    let cell = &report["cells"][0];
    assert_eq!(cell["outcome"], "failed", "{cell}");
    assert_eq!(cell["tests"].as_array().unwrap().len(), 0, "{cell}");
    let message = cell["message"].as_str().unwrap();
    assert!(message.contains("fails on purpose"), "{message}");
    let reproduce = cell["reproduce"].as_str().unwrap();
    assert!(!reproduce.contains("--exact"), "{reproduce}");
    let log = std::fs::read_to_string(cell["log"].as_str().unwrap()).unwrap();
    assert_eq!(log.matches("==> ").count(), 1, "never retried:\n{log}");
}

/// `--dry-run --json` lists each cell with package, features, toolchain and target, and
/// the shards of `--shard K/N` together are the whole plan, each cell once.
#[test]
fn dry_run_json_and_shards_cover_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture().join("pipelines/failing.toml");
    let ids = |args: &[&str]| -> Vec<String> {
        let out = matrix(dir.path(), &config, args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan = report(&out);
        plan["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                for key in ["package", "features", "toolchain", "target"] {
                    assert!(!c[key].is_null(), "{key} missing in {c}");
                }
                let line = c["command_line"].as_str().unwrap();
                assert!(line.starts_with("cargo +"), "{line}");
                assert!(line.contains(&format!("-p {}", c["package"].as_str().unwrap())));
                c["id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let all = ids(&["--dry-run"]);
    assert_eq!(all.len(), 9);
    let mut union = Vec::new();
    for k in 1..=4 {
        let shard = ids(&["--dry-run", "--shard", &format!("{k}/4")]);
        assert!((2..=3).contains(&shard.len()), "shard {k}/4: {shard:?}");
        union.extend(shard);
    }
    assert_eq!(union, all, "shards in order are the plan");
    assert!(
        !dir.path().join("target").exists(),
        "a dry run builds nothing"
    );
}

/// `cargo xtask matrix --dry-run | head -1`: the reader goes away early, and the listing
/// ends quietly instead of with a panic.
#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let mut child = Command::new(xtask_binary())
        .args(["matrix", "--dry-run", "--workspace"])
        .arg(fixture())
        .arg("--config")
        .arg(fixture().join("pipelines/failing.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before xtask has planned (that runs cargo metadata), so its first write
    // meets a pipe with no reader.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
