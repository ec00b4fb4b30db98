//! wharf-audit against cargo-audit: both scan the same lockfile against the same advisory-db
//! snapshot (`../shared/advisory-db`, beside the repository), and must find the same
//! advisories, as vulnerabilities and, separately, as unmaintained, unsound and notice
//! warnings.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wharf_audit::{Finding, Kind};
use wharf_e2e::{require, workspace_root};

/// (advisory id, package, version)
type Key = (String, String, String);

/// What one tool found: vulnerabilities, and warnings by kind.
#[derive(Debug, Default)]
struct Found {
    vulnerabilities: BTreeSet<Key>,
    unmaintained: BTreeSet<Key>,
    unsound: BTreeSet<Key>,
    notice: BTreeSet<Key>,
}

fn prerequisites() -> Option<PathBuf> {
    let db = wharf_e2e::advisory_db()?;
    require(
        "cargo-audit",
        &["--version"],
        "cargo install --locked cargo-audit",
    )
    .then_some(db)
}

fn wharf(lockfile: &Path, db: &Path) -> Found {
    let report = wharf_audit::audit_lockfile(lockfile, db).unwrap();
    let keys = |findings: &[Finding], kind: Option<Kind>| -> BTreeSet<Key> {
        findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| (f.id.clone(), f.package.clone(), f.version.to_string()))
            .collect()
    };
    Found {
        vulnerabilities: keys(&report.vulnerabilities, None),
        unmaintained: keys(&report.warnings, Some(Kind::Unmaintained)),
        unsound: keys(&report.warnings, Some(Kind::Unsound)),
        notice: keys(&report.warnings, Some(Kind::Notice)),
    }
}

fn cargo_audit(lockfile: &Path, db: &Path) -> Found {
    // An empty project config: cargo-audit reads `./.cargo/audit.toml` before
    // `~/.cargo/audit.toml`, so no ignore list or target filter of the machine applies.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join(".cargo")).unwrap();
    std::fs::write(cwd.path().join(".cargo/audit.toml"), "").unwrap();
    // `cargo-audit audit` is what `cargo audit` runs, without cargo in between.
    let out = Command::new("cargo-audit")
        .current_dir(cwd.path())
        .args(["audit", "--db"])
        .arg(db)
        // --no-yanked: yanked crates are not compared, and the check would read (and wait
        // for the lock of) the local crates.io index.
        .args(["--no-fetch", "--stale", "--no-yanked", "--json", "--file"])
        .arg(lockfile)
        .stdin(Stdio::null())
        .output()
        .expect("running cargo-audit");
    // Exit status 1 means "vulnerabilities found"; anything else is a failure to scan.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "cargo audit failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cargo audit printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let keys = |list: &serde_json::Value| -> BTreeSet<Key> {
        list.as_array()
            .map(|list| {
                list.iter()
                    .map(|entry| {
                        let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
                        (
                            text(&entry["advisory"]["id"]),
                            text(&entry["package"]["name"]),
                            text(&entry["package"]["version"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Found {
        vulnerabilities: keys(&json["vulnerabilities"]["list"]),
        unmaintained: keys(&json["warnings"]["unmaintained"]),
        unsound: keys(&json["warnings"]["unsound"]),
        notice: keys(&json["warnings"]["notice"]),
    }
}

fn ids(keys: &BTreeSet<Key>) -> BTreeSet<&str> {
    keys.iter().map(|(id, _, _)| id.as_str()).collect()
}

/// Asserts both tools found the same advisories (ids first, as a readable diff, then the
/// packages and versions they apply to); returns what was found.
fn compare(lockfile: &Path, db: &Path) -> Found {
    let ours = wharf(lockfile, db);
    let theirs = cargo_audit(lockfile, db);
    for (what, ours, theirs) in [
        (
            "vulnerabilities",
            &ours.vulnerabilities,
            &theirs.vulnerabilities,
        ),
        (
            "unmaintained warnings",
            &ours.unmaintained,
            &theirs.unmaintained,
        ),
        ("unsound warnings", &ours.unsound, &theirs.unsound),
        ("notice warnings", &ours.notice, &theirs.notice),
    ] {
        assert_eq!(
            ids(ours),
            ids(theirs),
            "{what} in {}: wharf-audit (left) and cargo audit (right) differ",
            lockfile.display()
        );
        assert_eq!(ours, theirs, "{what} in {}", lockfile.display());
        eprintln!("{}: {} {what} agree", lockfile.display(), ours.len());
    }
    ours
}

#[test]
fn a_lockfile_of_known_vulnerable_versions_gets_the_same_findings_as_cargo_audit() {
    let Some(db) = prerequisites() else { return };
    let lockfile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vulnerable/Cargo.lock");
    let found = compare(&lockfile, &db);
    // The fixture was chosen to have each kind: an empty agreement would prove nothing.
    assert!(found.vulnerabilities.len() >= 10, "{found:#?}");
    assert!(!found.unmaintained.is_empty(), "{found:#?}");
    assert!(!found.unsound.is_empty(), "{found:#?}");
    // smallvec 0.6.14 is patched for every smallvec advisory, and time 0.1.44 comes from
    // git: neither is reported.
    let all = found
        .vulnerabilities
        .iter()
        .chain(&found.unmaintained)
        .chain(&found.unsound);
    for (_, package, version) in all {
        assert_ne!((package.as_str(), version.as_str()), ("smallvec", "0.6.14"));
        assert_ne!((package.as_str(), version.as_str()), ("time", "0.1.44"));
    }
}

#[test]
fn this_repositorys_lockfile_gets_the_same_findings_as_cargo_audit() {
    let Some(db) = prerequisites() else { return };
    compare(&workspace_root().join("Cargo.lock"), &db);
}
