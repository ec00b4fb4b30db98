//! Against real git repositories made in temporary directories (`file://` remotes): the
//! same git CLI and protocol code a clone from GitHub goes through, minus the network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A remote repository holding one advisory; returns its `file://` URL.
fn remote(root: &Path) -> (PathBuf, String) {
    let dir = root.join("remote");
    std::fs::create_dir_all(dir.join("crates/foo")).unwrap();
    std::fs::write(dir.join("crates/foo/RUSTSEC-2020-0001.md"), "first\n").unwrap();
    run_git(&dir, &["init", "--quiet", "--initial-branch=main"]);
    commit(&dir, "first");
    let url = format!("file://{}", dir.display());
    (dir, url)
}

fn commit(dir: &Path, message: &str) -> String {
    run_git(dir, &["add", "-A"]);
    run_git(dir, &["commit", "--quiet", "-m", message]);
    run_git(dir, &["rev-parse", "HEAD"])
}

fn fetch(url: &str) -> Fetch {
    Fetch {
        url: url.to_string(),
        ..Fetch::default()
    }
}

#[test]
fn a_missing_database_is_cloned_whole_and_leaves_no_temporary_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote_dir, url) = remote(tmp.path());
    let home = tmp.path().join("cargo-home");
    let db = home.join("advisory-db");
    assert_eq!(
        ensure(&db, &fetch(&url), SystemTime::now()).unwrap(),
        Status::Cloned
    );
    assert_eq!(
        std::fs::read_to_string(db.join("crates/foo/RUSTSEC-2020-0001.md")).unwrap(),
        "first\n"
    );
    assert_eq!(
        run_git(&db, &["rev-parse", "HEAD"]),
        run_git(&remote_dir, &["rev-parse", "HEAD"])
    );
    let names: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["advisory-db"]);
    // Just cloned: fresh for a day.
    assert_eq!(
        ensure(&db, &fetch(&url), SystemTime::now() + DAY / 2).unwrap(),
        Status::Fresh
    );
}

#[test]
fn an_old_checkout_is_updated_to_the_remote_head() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote_dir, url) = remote(tmp.path());
    let db = tmp.path().join("advisory-db");
    ensure(&db, &fetch(&url), SystemTime::now()).unwrap();
    std::fs::write(
        remote_dir.join("crates/foo/RUSTSEC-2020-0002.md"),
        "second\n",
    )
    .unwrap();
    let head = commit(&remote_dir, "second");
    assert_eq!(
        ensure(&db, &fetch(&url), SystemTime::now() + 2 * DAY).unwrap(),
        Status::Updated
    );
    assert_eq!(run_git(&db, &["rev-parse", "HEAD"]), head);
    assert!(db.join("crates/foo/RUSTSEC-2020-0002.md").is_file());
    // The update reset the age.
    assert_eq!(
        ensure(&db, &fetch(&url), SystemTime::now() + DAY / 2).unwrap(),
        Status::Fresh
    );
}

#[test]
fn an_unreachable_remote_with_a_copy_warns_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote_dir, url) = remote(tmp.path());
    let db = tmp.path().join("advisory-db");
    ensure(&db, &fetch(&url), SystemTime::now()).unwrap();
    std::fs::remove_dir_all(&remote_dir).unwrap();
    let status = ensure(&db, &fetch(&url), SystemTime::now() + 3 * DAY).unwrap();
    let Status::Stale { age, why } = &status else {
        panic!("expected a stale copy, got {status:?}");
    };
    assert!(*age >= 3 * DAY - Duration::from_secs(600), "{age:?}");
    assert!(why.contains("git fetch exited"), "{why}");
    assert!(status.to_string().contains("3 days ago"), "{status}");
    assert!(db.join("crates/foo/RUSTSEC-2020-0001.md").is_file());
}

#[test]
fn offline_never_runs_git() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote_dir, url) = remote(tmp.path());
    let db = tmp.path().join("advisory-db");
    let offline = Fetch {
        offline: true,
        ..fetch(&url)
    };
    let err = ensure(&db, &offline, SystemTime::now()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("offline"), "{text}");
    assert!(
        text.contains(&format!("git clone {url} {}", db.display())),
        "{text}"
    );
    assert!(!db.exists());

    ensure(&db, &fetch(&url), SystemTime::now()).unwrap();
    std::fs::write(remote_dir.join("crates/foo/RUSTSEC-2020-0002.md"), "x\n").unwrap();
    commit(&remote_dir, "second");
    let before = run_git(&db, &["rev-parse", "HEAD"]);
    let status = ensure(&db, &offline, SystemTime::now() + 2 * DAY).unwrap();
    assert!(
        matches!(&status, Status::Stale { why, .. } if why == "offline"),
        "{status:?}"
    );
    assert_eq!(run_git(&db, &["rev-parse", "HEAD"]), before);
}

#[test]
fn a_failed_clone_says_how_to_get_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}/no-such-remote", tmp.path().display());
    let db = tmp.path().join("advisory-db");
    let text = ensure(&db, &fetch(&url), SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(text.contains("cloning file://"), "{text}");
    assert!(text.contains("git clone"), "{text}");
    assert!(text.contains("WHARF_ADVISORY_DB"), "{text}");
    assert!(!db.exists());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_plain_directory_is_a_snapshot_and_never_updated() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("snapshot");
    std::fs::create_dir_all(db.join("crates")).unwrap();
    let url = "file:///nonexistent";
    assert_eq!(
        ensure(&db, &fetch(url), SystemTime::now() + 100 * DAY).unwrap(),
        Status::Snapshot
    );
}

#[test]
fn a_directory_without_advisories_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let text = ensure(tmp.path(), &fetch(DEFAULT_URL), SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(text.contains(&tmp.path().display().to_string()), "{text}");
    assert!(text.contains("no crates/ directory"), "{text}");
}
