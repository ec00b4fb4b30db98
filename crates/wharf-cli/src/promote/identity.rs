//! Who is running the command: asserted by the environment, not proven (see the guide).

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

/// `GITHUB_ACTOR` in GitHub Actions, else `git config user.email`.
pub fn who(root: &Path) -> Result<String> {
    if let Ok(actor) = std::env::var("GITHUB_ACTOR")
        && !actor.trim().is_empty()
    {
        return Ok(actor.trim().to_string());
    }
    let output = Command::new("git")
        .args(["config", "user.email"])
        .current_dir(root)
        .output();
    if let Ok(output) = output
        && output.status.success()
    {
        let email = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !email.is_empty() {
            return Ok(email);
        }
    }
    bail!(
        "cannot tell who you are: set GITHUB_ACTOR, or `git config user.email YOU@EXAMPLE.COM` \
         (the ledger records who promoted and approved)"
    )
}

/// The author of `commit` in the repository at `root`: email and name, for the rule that
/// the author of a change cannot approve it. `None` when the commit is not there.
pub fn author(root: &Path, commit: &str) -> Option<Vec<String>> {
    let output = Command::new("git")
        .args(["log", "-1", "--format=%ae%n%an", commit, "--"])
        .current_dir(root)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    (!ids.is_empty()).then_some(ids)
}
