//! Acceptance: 20 separate processes append to one ledger at once, as 20 CI runners would;
//! none of their entries is lost and the ledger verifies.
//!
//! Each process is the test-only binary `wharf-ledger-append`. They are all started first,
//! blocked on reading stdin, then released together by closing their stdin.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{bare, ledger_at, repo};
use wharf_ledger::{Store, verify};

const WRITERS: usize = 20;

/// Starts one appending process per argument list, releases them together, and checks
/// each succeeded.
fn race(args: Vec<Vec<String>>) {
    let mut children: Vec<_> = args
        .iter()
        .map(|args| {
            Command::new(env!("CARGO_BIN_EXE_wharf-ledger-append"))
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting wharf-ledger-append")
        })
        .collect();
    for child in &mut children {
        child.stdin.take().unwrap().flush().unwrap();
    }
    // Each process bounds itself: every git command has a timeout and the retries a count.
    let mut most = 0;
    for (child, args) in children.into_iter().zip(&args) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        let tries = said.split_whitespace().nth(3).and_then(|t| t.parse().ok());
        most = most.max(tries.unwrap_or_else(|| panic!("unexpected output: {said}")));
    }
    // How close the race came to the bound on attempts (50), for whoever tunes it.
    eprintln!("the busiest writer drafted its entry {most} times");
}

fn check(bytes: &[u8], names: &[String]) {
    let entries = verify(bytes).unwrap_or_else(|t| panic!("the raced ledger does not verify: {t}"));
    assert_eq!(entries.len(), WRITERS);
    let who: BTreeSet<&str> = entries.iter().map(|e| e.who.as_str()).collect();
    let expected: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(who, expected, "each writer's entry is there exactly once");
}

fn names() -> Vec<String> {
    (1..=WRITERS).map(|n| format!("runner-{n:02}")).collect()
}

#[test]
fn twenty_processes_append_through_one_bare_git_remote() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "shared.git");
    let names = names();
    let args = names
        .iter()
        .map(|name| {
            let clone = repo(dir.path(), name, Some(&remote));
            vec![
                "git".into(),
                clone.to_str().unwrap().into(),
                "origin".into(),
                name.clone(),
            ]
        })
        .collect();
    race(args);
    check(&ledger_at(&remote, wharf_ledger::DEFAULT_REF), &names);
    let commits = common::git(&remote, &["rev-list", "--count", wharf_ledger::DEFAULT_REF]);
    assert_eq!(commits, WRITERS.to_string(), "one commit per entry");
}

/// The embedded default: one repository's own ref, no remote (the write is one `git
/// fast-import`, whose refusal of a non-fast-forward update is the compare-and-swap).
#[test]
fn twenty_processes_append_to_one_local_git_ref() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "local", None);
    let names = names();
    let args = names
        .iter()
        .map(|name| {
            vec![
                "git".into(),
                local.to_str().unwrap().into(),
                "-".into(),
                name.clone(),
            ]
        })
        .collect();
    race(args);
    check(&ledger_at(&local, wharf_ledger::DEFAULT_REF), &names);
    let commits = common::git(&local, &["rev-list", "--count", wharf_ledger::DEFAULT_REF]);
    assert_eq!(commits, WRITERS.to_string(), "one commit per entry");
}

#[test]
fn twenty_processes_append_to_one_locked_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let names = names();
    let args = names
        .iter()
        .map(|name| vec!["file".into(), path.to_str().unwrap().into(), name.clone()])
        .collect();
    race(args);
    check(&std::fs::read(&path).unwrap(), &names);
    assert_eq!(Store::file(&path).read().unwrap().len(), WRITERS);
}
