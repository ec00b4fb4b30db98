//! `cargo xtask scan` as a user runs it: exit codes, the JSON report, SARIF, SBOM formats,
//! and clear errors, against the advisory-db snapshot beside the repository.

use std::path::PathBuf;
use std::process::{Command, Output};

use wharf_e2e::{example_image, workspace_root, xtask_binary};

fn scan(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(xtask_binary())
        .arg("scan")
        .args(args)
        .env("WHARF_ADVISORY_DB", db)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

fn fixture_lockfile() -> PathBuf {
    workspace_root().join("crates/wharf-e2e/tests/fixtures/vulnerable/Cargo.lock")
}

#[test]
fn a_vulnerable_lockfile_fails_the_gate_with_exit_code_3_and_a_json_report() {
    let Some(db) = wharf_e2e::advisory_db() else {
        return;
    };
    let lockfile = fixture_lockfile();
    let out = scan(&db, &["--lockfile", lockfile.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("scan FAILED the policy gate"), "{stderr}");
    assert!(
        stderr.contains("gate: RUSTSEC-2021-0003: smallvec 1.6.0"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    let vulnerabilities = report["vulnerabilities"].as_array().unwrap();
    assert!(!vulnerabilities.is_empty());
    for v in vulnerabilities {
        for key in ["id", "package", "version"] {
            assert!(v[key].is_string(), "{key} in {v}");
        }
    }
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["kind"] == "unmaintained"),
        "{warnings:?}"
    );
    for w in warnings {
        for key in ["id", "package", "version", "kind"] {
            assert!(w[key].is_string(), "{key} in {w}");
        }
    }
    // Every vulnerability is a violation of the default gate (fail_on = "low").
    assert_eq!(
        report["gate"]["violations"].as_array().unwrap().len(),
        vulnerabilities.len()
    );

    // SARIF for GitHub code scanning, pointing into the lockfile.
    let out = scan(
        &db,
        &[
            "--lockfile",
            lockfile.to_str().unwrap(),
            "--format",
            "sarif",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() >= vulnerabilities.len());
}

#[test]
fn the_built_image_passes_and_writes_its_sbom_formats_atomically() {
    let Some(db) = wharf_e2e::advisory_db() else {
        return;
    };
    let example = example_image();
    let image = format!("oci:{}:{}", example.layout.display(), example.tag);
    let dir = tempfile::tempdir().unwrap();
    for (format, key) in [("cyclonedx", "bomFormat"), ("spdx", "spdxVersion")] {
        let path = dir.path().join(format!("sbom.{format}.json"));
        let out = scan(
            &db,
            &[
                "--image",
                &image,
                "--format",
                format,
                "--output",
                path.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("scan passed"), "{stderr}");
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(document[key].is_string(), "{format}: {document}");
    }
    // No temporary files left beside the outputs.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // The table names the image's user and size.
    let out = scan(&db, &["--image", &image]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("uid 65532"), "{stdout}");
}

#[test]
fn missing_database_and_malformed_lockfile_are_clear_errors() {
    let Some(db) = wharf_e2e::advisory_db() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lockfile = fixture_lockfile();
    // Missing, and not to be fetched: how to get one.
    let missing = dir.path().join("advisory-db");
    let out = scan(
        &missing,
        &["--lockfile", lockfile.to_str().unwrap(), "--offline"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no RustSec advisory database at {}",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("git clone"), "{stderr}");
    assert!(stderr.contains("WHARF_ADVISORY_DB"), "{stderr}");
    // A directory that holds no advisories is named, never read as an empty database.
    let out = scan(dir.path(), &["--lockfile", lockfile.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is not a RustSec advisory database",
            dir.path().display()
        )),
        "{stderr}"
    );

    let bad = dir.path().join("Cargo.lock");
    std::fs::write(
        &bad,
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"not-a-version\"\n",
    )
    .unwrap();
    let out = scan(&db, &["--lockfile", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains(":5"), "names the line: {stderr}");
}

#[test]
fn scan_results_attach_to_the_pushed_image_and_read_back_through_the_cli() {
    let Some(db) = wharf_e2e::advisory_db() else {
        return;
    };
    let Some(registry) = wharf_e2e::registry::Registry::try_start(wharf_e2e::registry::Auth::None)
    else {
        return;
    };
    let example = example_image();
    let image = format!("oci:{}:{}", example.layout.display(), example.tag);
    let target = format!("docker://{}/scanned/app:v1", registry.host());
    let out = Command::new(xtask_binary())
        .args(["copy", &image, &target])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = scan(&db, &["--image", &image, "--attach", &target]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("attached sbom"), "{stderr}");
    assert!(stderr.contains("attached scan"), "{stderr}");

    let referrers = |args: &[&str]| {
        let out = Command::new(xtask_binary())
            .arg("referrers")
            .arg(&target)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let listed: serde_json::Value = serde_json::from_slice(&referrers(&["--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // The SBOM read back is byte for byte the one the scan writes.
    let expected = scan(&db, &["--image", &image, "--format", "cyclonedx"]).stdout;
    assert_eq!(referrers(&["--type", "sbom", "--get"]), expected);
    let report: serde_json::Value =
        serde_json::from_slice(&referrers(&["--type", "scan", "--get"])).unwrap();
    assert_eq!(report["passed"], true);
    assert!(report["vulnerabilities"].is_array());
}
