//! Where `cargo xtask scan` gets its advisory database when none is given: cargo-audit's
//! `$CARGO_HOME/advisory-db`, cloned with the git CLI when missing. The remote here is a
//! real git repository made from the advisory-db snapshot beside the repository, reached
//! over `file://` (the same git clone and fetch code paths as GitHub, minus the network).

use std::path::Path;
use std::process::{Command, Output};

use wharf_e2e::{run, workspace_root, xtask_binary};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com"));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `cargo xtask scan --lockfile Cargo.lock` with no database named anywhere: only
/// `CARGO_HOME` and the remote's URL.
fn scan(cargo_home: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(xtask_binary())
        .args(["scan", "--lockfile", "Cargo.lock", "--json"])
        .args(extra)
        .env_remove("WHARF_ADVISORY_DB")
        .env_remove("CARGO_NET_OFFLINE")
        .env("CARGO_HOME", cargo_home)
        .env("WHARF_ADVISORY_DB_URL", url)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

#[test]
fn scan_clones_the_database_into_cargo_home_and_then_works_offline() {
    let Some(snapshot) = wharf_e2e::advisory_db() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    run(Command::new("cp").arg("-a").arg(&snapshot).arg(&remote));
    let _ = std::fs::remove_dir_all(remote.join(".git"));
    git(&remote, &["init", "--quiet", "--initial-branch=main"]);
    git(&remote, &["add", "-A"]);
    git(&remote, &["commit", "--quiet", "-m", "snapshot"]);
    let url = format!("file://{}", remote.display());
    let home = tmp.path().join("cargo-home");

    let out = scan(&home, &url, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("advisory database: cloned"), "{stderr}");
    let db = home.join("advisory-db");
    assert_eq!(
        git(&db, &["rev-parse", "HEAD"]),
        git(&remote, &["rev-parse", "HEAD"])
    );
    // The clone is a complete database: the same advisories as the snapshot, file for
    // file (compared by git, not by wharf).
    git(&db, &["diff", "--quiet", "HEAD"]);
    let count = |dir: &Path| git(dir, &["ls-files", "crates"]).lines().count();
    assert!(count(&db) > 1000, "{}", count(&db));
    assert_eq!(count(&db), count(&remote));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true, "{report}");

    // Offline, with the copy and without the remote: the scan still runs.
    std::fs::remove_dir_all(&remote).unwrap();
    let out = scan(&home, &url, &["--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cloned"), "{stderr}");

    // Offline with no copy at all: a usage error that says how to get one.
    let empty_home = tmp.path().join("empty-home");
    let out = scan(&empty_home, &url, &["--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "git clone {url} {}",
            empty_home.join("advisory-db").display()
        )),
        "{stderr}"
    );
    assert!(!empty_home.join("advisory-db").exists());
}
