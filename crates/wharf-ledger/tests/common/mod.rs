//! Git repositories for the store tests: a bare one standing in for the shared remote, and
//! clones of it as CI runners would have.

#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wharf_ledger::{Draft, Kind};
use wharf_oci::Digest;

/// Runs git in `dir` with no user configuration, feeding it `input`, and returns its
/// stdout; panics on failure.
pub fn git_bytes(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running git (install git)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`git_bytes`] with no input, its output as trimmed text.
pub fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_bytes(dir, args, b""))
        .trim()
        .to_owned()
}

/// `git init --bare` at `dir/name`.
pub fn bare(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    git(dir, &["init", "--quiet", "--bare", path.to_str().unwrap()]);
    path
}

/// A fresh repository at `dir/name` whose remote `origin` is `remote` (if any).
pub fn repo(dir: &Path, name: &str, remote: Option<&Path>) -> PathBuf {
    let path = dir.join(name);
    git(dir, &["init", "--quiet", path.to_str().unwrap()]);
    if let Some(remote) = remote {
        git(
            &path,
            &["remote", "add", "origin", remote.to_str().unwrap()],
        );
    }
    path
}

/// The ledger's bytes at `commit` (e.g. the ledger ref) in `repo`.
pub fn ledger_at(repo: &Path, commit: &str) -> Vec<u8> {
    git_bytes(
        repo,
        &["cat-file", "blob", &format!("{commit}:ledger.jsonl")],
        b"",
    )
}

pub fn draft(who: &str) -> Draft {
    Draft {
        kind: Kind::Promotion,
        who: who.into(),
        when: jiff::Timestamp::from_second(1_790_000_000).unwrap(),
        digest: Digest::sha256(who.as_bytes()),
        from: Some("dev".into()),
        to: Some("staging".into()),
        evidence: serde_json::json!({ "gates": [] }),
        signature: None,
    }
}
