//! The git and file stores: reading, appending, retrying after a lost race, aborting,
//! refusing tampered or rewritten ledgers.

mod common;

use std::cell::Cell;
use std::convert::Infallible;

use common::{bare, draft, git, git_bytes, ledger_at, repo};
use wharf_ledger::{AppendError, DEFAULT_REF, Error, Store, verify};

fn ok(
    who: &str,
) -> impl FnMut(&[wharf_ledger::Entry]) -> Result<wharf_ledger::Draft, Infallible> + '_ {
    move |_| Ok(draft(who))
}

#[test]
fn a_git_ledger_with_no_remote_reads_empty_then_holds_one_commit_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "local", None);
    let store = Store::git(&local, DEFAULT_REF, None);
    assert_eq!(store.read().unwrap(), vec![]);
    assert_eq!(store.raw().unwrap(), b"");
    for who in ["alice", "bob", "carol"] {
        store.append(ok(who)).unwrap();
    }
    let entries = store.read().unwrap();
    let who: Vec<&str> = entries.iter().map(|e| e.who.as_str()).collect();
    assert_eq!(who, ["alice", "bob", "carol"]);
    assert_eq!(git(&local, &["rev-list", "--count", DEFAULT_REF]), "3");
    // Each commit holds the cumulative ledger up to its entry, and names it.
    let second = ledger_at(&local, &format!("{DEFAULT_REF}~1"));
    assert_eq!(verify(&second).unwrap(), entries[..2]);
    let subject = git(
        &local,
        &["log", "-1", "--format=%s|%an|%cn|%at", DEFAULT_REF],
    );
    assert!(subject.starts_with("promotion sha256:"), "{subject}");
    assert!(
        subject.ends_with(" to staging by carol|carol|carol|1790000000"),
        "{subject}"
    );
    assert_eq!(
        store.describe(),
        format!("git ref {DEFAULT_REF} in {}", local.display())
    );
}

#[test]
fn a_missing_remote_ref_is_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "shared.git");
    let local = repo(dir.path(), "runner", Some(&remote));
    let store = Store::git(&local, DEFAULT_REF, Some("origin".into()));
    assert_eq!(store.read().unwrap(), vec![]);
    store.append(ok("alice")).unwrap();
    assert_eq!(verify(&ledger_at(&remote, DEFAULT_REF)).unwrap().len(), 1);
    assert_eq!(
        store.describe(),
        format!(
            "git ref {DEFAULT_REF} in {} (remote origin)",
            local.display()
        )
    );
}

/// Runner A drafts its entry; meanwhile runner B appends and pushes. A's push is rejected
/// (not forced), A reads B's entry, drafts again on the new tip, and lands after it.
#[test]
fn a_rejected_push_is_retried_on_the_new_tip_and_lands_after_the_other_writer() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "shared.git");
    let a = Store::git(
        repo(dir.path(), "a", Some(&remote)),
        DEFAULT_REF,
        Some("origin".into()),
    );
    let b = Store::git(
        repo(dir.path(), "b", Some(&remote)),
        DEFAULT_REF,
        Some("origin".into()),
    );
    let calls = Cell::new(0);
    let seen = std::cell::RefCell::new(Vec::new());
    let entry = a
        .append(|entries| {
            calls.set(calls.get() + 1);
            seen.borrow_mut()
                .push(entries.iter().map(|e| e.who.clone()).collect::<Vec<_>>());
            if calls.get() == 1 {
                b.append(ok("bob")).unwrap();
            }
            Ok::<_, Infallible>(draft("alice"))
        })
        .unwrap();
    assert_eq!(calls.get(), 2, "make runs again after the rejected push");
    assert_eq!(*seen.borrow(), [vec![], vec!["bob".to_owned()]]);
    assert_eq!(entry.seq, 2);
    let shared = verify(&ledger_at(&remote, DEFAULT_REF)).unwrap();
    let who: Vec<&str> = shared.iter().map(|e| e.who.as_str()).collect();
    assert_eq!(who, ["bob", "alice"]);
    assert_eq!(git(&remote, &["rev-list", "--count", DEFAULT_REF]), "2");
}

/// An append on a snapshot taken before another writer appended loses the swap and lands
/// after the other entry, for the first entry (the ref did not exist yet) and a later one.
#[test]
fn an_append_on_a_stale_snapshot_is_retried_on_the_new_tip() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "local", None);
    let store = Store::git(&local, DEFAULT_REF, None);
    for (round, other) in ["bob", "dave"].into_iter().enumerate() {
        let stale = store.snapshot().unwrap();
        store.append(ok(other)).unwrap();
        let mut seen = Vec::new();
        let entry = store
            .append_on(Some(stale), |entries| {
                seen.push(entries.len());
                Ok::<_, Infallible>(draft("alice"))
            })
            .unwrap();
        assert_eq!(
            seen,
            [2 * round, 2 * round + 1],
            "the stale try, then the fresh one"
        );
        assert_eq!(entry.seq, 2 * round as u64 + 2);
    }
    let who: Vec<String> = store.read().unwrap().into_iter().map(|e| e.who).collect();
    assert_eq!(who, ["bob", "alice", "dave", "alice"]);
    assert_eq!(git(&local, &["rev-list", "--count", DEFAULT_REF]), "4");
    // A fresh snapshot is used as it is: one try.
    let mut tries = 0;
    store
        .append_on(Some(store.snapshot().unwrap()), |_| {
            tries += 1;
            Ok::<_, Infallible>(draft("erin"))
        })
        .unwrap();
    assert_eq!(tries, 1);
}

#[test]
fn an_aborted_append_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "shared.git");
    let local = repo(dir.path(), "runner", Some(&remote));
    let file = dir.path().join("ledger.jsonl");
    for store in [
        Store::git(&local, DEFAULT_REF, Some("origin".into())),
        Store::git(repo(dir.path(), "alone", None), DEFAULT_REF, None),
        Store::file(&file),
    ] {
        store.append(ok("alice")).unwrap();
        let before = store.raw().unwrap();
        let error = store
            .append(|entries| {
                Err::<wharf_ledger::Draft, _>(format!("gate failed on {} entries", entries.len()))
            })
            .unwrap_err();
        assert!(
            matches!(error, AppendError::Aborted(ref why) if why == "gate failed on 1 entries"),
            "{error}"
        );
        assert_eq!(store.raw().unwrap(), before, "{}", store.describe());
    }
    assert_eq!(git(&remote, &["rev-list", "--count", DEFAULT_REF]), "1");
}

#[test]
fn a_draft_with_a_float_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::file(dir.path().join("ledger.jsonl"));
    let error = store
        .append(|_| {
            let mut d = draft("alice");
            d.evidence = serde_json::json!({ "p95": 1.5 });
            Ok::<_, Infallible>(d)
        })
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("evidence.p95 is a floating-point number"),
        "{error}"
    );
    assert_eq!(store.raw().unwrap(), b"");
}

#[test]
fn a_remote_rewritten_to_drop_entries_is_refused_and_the_local_ref_kept() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "shared.git");
    let local = repo(dir.path(), "runner", Some(&remote));
    let store = Store::git(&local, DEFAULT_REF, Some("origin".into()));
    store.append(ok("alice")).unwrap();
    store.append(ok("bob")).unwrap();
    let seen = git(&local, &["rev-parse", DEFAULT_REF]);
    git(
        &remote,
        &["update-ref", DEFAULT_REF, &format!("{DEFAULT_REF}~1")],
    );
    let error = store.read().unwrap_err();
    assert!(matches!(error, Error::LostEntries { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("the remote ledger lost entries this clone saw: "),
        "{error}"
    );
    assert_eq!(
        git(&local, &["rev-parse", DEFAULT_REF]),
        seen,
        "the evidence stays"
    );
    assert!(
        store.append(ok("carol")).is_err(),
        "nothing is appended on a rewritten remote"
    );

    git(&remote, &["update-ref", "-d", DEFAULT_REF]);
    let error = store.read().unwrap_err();
    assert!(
        error.to_string().contains("nothing (the ref is gone)"),
        "{error}"
    );
}

#[test]
fn a_tampered_git_ledger_is_read_as_an_error_and_not_extended() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "local", None);
    let store = Store::git(&local, DEFAULT_REF, None);
    store.append(ok("alice")).unwrap();
    store.append(ok("bob")).unwrap();
    let edited = String::from_utf8(ledger_at(&local, DEFAULT_REF))
        .unwrap()
        .replacen("alice", "alicf", 1);
    let object = |args: &[&str], input: &[u8]| {
        String::from_utf8_lossy(&git_bytes(&local, args, input))
            .trim()
            .to_owned()
    };
    let blob = object(&["hash-object", "-w", "--stdin"], edited.as_bytes());
    let tree = object(
        &["mktree"],
        format!("100644 blob {blob}\tledger.jsonl\n").as_bytes(),
    );
    let commit = git(
        &local,
        &[
            "-c",
            "user.name=m",
            "-c",
            "user.email=m@x",
            "commit-tree",
            &tree,
            "-p",
            DEFAULT_REF,
            "-m",
            "edit",
        ],
    );
    git(&local, &["update-ref", DEFAULT_REF, &commit]);
    let error = store.read().unwrap_err();
    let Error::Tampered { tamper, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(tamper.line, 1);
    assert!(
        error
            .to_string()
            .contains("entry 1 (line 1, promotion sha256:"),
        "{error}"
    );
    assert!(store.append(ok("carol")).is_err());
    assert_eq!(git(&local, &["rev-parse", DEFAULT_REF]), commit);
}

/// A crash mid-write leaves a line with no newline: the next append refuses to extend it.
#[test]
fn a_torn_file_ledger_is_not_extended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/ledger.jsonl");
    let store = Store::file(&path);
    store.append(ok("alice")).unwrap();
    store.append(ok("bob")).unwrap();
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() - 10]).unwrap();
    let error = store.append(ok("carol")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("entry 2 (line 2, promotion sha256:"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("a write to the ledger was cut off"),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), whole[..whole.len() - 10]);
}

#[test]
fn credentials_in_a_remote_url_never_reach_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "runner", None);
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "http://alice:s3cret-token@127.0.0.1:1/ledger.git";
    let store = Store::git(&local, DEFAULT_REF, Some(url.into()));
    assert!(!store.describe().contains("s3cret"), "{}", store.describe());
    let error = store.read().unwrap_err().to_string();
    assert!(error.contains("git fetch"), "{error}");
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(
        !error.contains("s3cret") && !error.contains("alice"),
        "{error}"
    );
}

/// A remote that never answers: the fetch is killed at the time bound with everything it
/// started (here the "ssh" command, which would otherwise sleep on).
#[test]
fn a_hung_git_command_is_killed_at_its_time_bound_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let local = repo(dir.path(), "runner", None);
    let marker = format!("120.{}", std::process::id());
    git(
        &local,
        &[
            "config",
            "core.sshCommand",
            &format!("sleep {marker}; true"),
        ],
    );
    let store = Store::git(
        &local,
        DEFAULT_REF,
        Some("ssh://127.0.0.1/ledger.git".into()),
    )
    .with_git_timeout(std::time::Duration::from_millis(300));
    let error = store.read().unwrap_err().to_string();
    assert!(error.starts_with("`git fetch"), "{error}");
    assert!(
        error.contains("took longer than 300ms and was killed"),
        "{error}"
    );
    let ours = [marker.as_str(), dir.path().to_str().unwrap()];
    // The kill is sent before read() returns; give the kernel a bounded number of looks.
    let gone = (0..200).any(|_| {
        let gone = leftovers(&ours).is_empty();
        if !gone {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        gone
    });
    let left = leftovers(&ours);
    // Survivors would hold whatever this test inherited (a build lock, say): end them.
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    assert!(
        gone,
        "git or its ssh stand-in still ran after the timeout: {left:?}"
    );
}

/// Processes whose command line holds one of `marks`: the ones this test started.
fn leftovers(marks: &[&str]) -> Vec<String> {
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok() && n != own)
        })
        .filter(|p| {
            std::fs::read(p.path().join("cmdline")).is_ok_and(|c| {
                let line = String::from_utf8_lossy(&c);
                marks.iter().any(|m| line.contains(m))
            })
        })
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect()
}
