//! Which ledger a workspace uses: `[ledger]`, `WHARF_LEDGER_REMOTE`, and the defaults (the
//! git ref `refs/wharf/ledger` in the workspace's repository, or a file outside git).

use std::path::Path;

use anyhow::Result;
use wharf_ledger::Store;
use wharf_promote::LedgerConfig;

/// The ref every runner shares when nothing else is configured.
pub const DEFAULT_REF: &str = "refs/wharf/ledger";
/// The file used where the workspace is not in a git repository.
pub const DEFAULT_FILE: &str = ".wharf/ledger.jsonl";
/// Overrides `[ledger] remote` (the generated promotion workflow sets it to `origin`).
pub const REMOTE_ENV: &str = "WHARF_LEDGER_REMOTE";

pub fn open(root: &Path, config: &LedgerConfig) -> Result<Store> {
    if let Some(file) = &config.file {
        return Ok(Store::file(root.join(file)));
    }
    let remote = std::env::var(REMOTE_ENV)
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| config.remote.clone());
    if !in_git(root) {
        if remote.is_some() {
            return Err(crate::usage(format!(
                "the ledger is shared through a git remote, but {} is not in a git repository \
                 (run `git init`, or set [ledger] file = \"{DEFAULT_FILE}\")",
                root.display()
            )));
        }
        return Ok(Store::file(root.join(DEFAULT_FILE)));
    }
    let git_ref = config.git_ref.as_deref().unwrap_or(DEFAULT_REF);
    Ok(Store::git(root.to_path_buf(), git_ref.to_string(), remote))
}

/// Whether `root` is inside a git work tree, as git finds one: `GIT_DIR`, or a `.git`
/// (a directory, or a worktree's file) in `root` or a directory above it. Looked up here
/// rather than by `git rev-parse --git-dir`: that process was 4 to 5 ms of every
/// promotion command, and a rollback is under 100 ms in all (docs/BENCHMARKS.md).
fn in_git(root: &Path) -> bool {
    std::env::var_os("GIT_DIR").is_some_and(|dir| !dir.is_empty())
        || std::path::absolute(root)
            .unwrap_or_else(|_| root.to_path_buf())
            .ancestors()
            .any(|dir| dir.join(".git").exists())
}
