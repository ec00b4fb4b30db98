//! `cargo xtask bench-scan`: wharf-audit against cargo-audit, scanning this repository's
//! `Cargo.lock` against the advisory-db snapshot (`../shared/advisory-db`).
//!
//! wharf-audit runs in-process; its time covers reading and parsing the lockfile, reading the
//! advisories, matching and rendering the table, i.e. everything but starting a process.
//! cargo-audit runs as a process (`cargo-audit audit`, without cargo's wrapper process) with
//! `--no-yanked` unless `--with-yanked`: the yanked check reads the local crates.io index,
//! work wharf-audit does not do. The contenders alternate, after one untimed run each that
//! warms the page cache and checks that both find the same vulnerabilities.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::median;
use anyhow::{Context, Result, bail};
use wharf::audit;

#[derive(clap::Args)]
pub struct Args {
    /// The advisory-db directory [default: ../shared/advisory-db beside the repository].
    #[arg(long)]
    db: Option<PathBuf>,
    /// The lockfile to scan [default: this repository's Cargo.lock].
    #[arg(long)]
    lockfile: Option<PathBuf>,
    /// Timed runs per contender (the medians are compared).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Let cargo-audit check for yanked crates too (its default; wharf-audit never does).
    #[arg(long)]
    with_yanked: bool,
}

impl Args {
    pub fn run(&self, session: &wharf::cli::Session) -> Result<()> {
        let root = &session.root;
        let db = self
            .db
            .clone()
            .unwrap_or_else(|| root.join("../shared/advisory-db"));
        let lockfile = self
            .lockfile
            .clone()
            .unwrap_or_else(|| root.join("Cargo.lock"));
        bench(&db, &lockfile, self.runs, self.with_yanked)
    }
}

/// Times `runs` scans of `lockfile` against the advisory-db `db` by each contender and
/// prints the medians and their ratio.
fn bench(db: &Path, lockfile: &Path, runs: usize, with_yanked: bool) -> Result<()> {
    let runs = runs.max(1);
    // Untimed: warms the page cache for both, and checks that they do the same work.
    let ours: BTreeSet<String> = wharf_scan(db, lockfile)?
        .vulnerabilities
        .into_iter()
        .map(|f| f.id)
        .collect();
    let theirs = cargo_audit_ids(db, lockfile, with_yanked)?;
    if ours != theirs {
        bail!("wharf-audit found {ours:?} but cargo-audit {theirs:?}: not the same work");
    }
    eprintln!(
        "{} vulnerabilities in {} by both; {runs} runs each, alternating",
        ours.len(),
        lockfile.display()
    );
    let (mut wharf, mut cargo_audit) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let report = wharf_scan(db, lockfile)?;
        std::hint::black_box(audit::render::table(&report));
        wharf.push(started.elapsed());

        let started = Instant::now();
        let status = cargo_audit_command(db, lockfile, with_yanked)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        cargo_audit.push(started.elapsed());
        check_status(status.code())?;
    }
    let (w, c) = (median(&mut wharf), median(&mut cargo_audit));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "wharf-audit  median {:8.2} ms  min {:8.2} ms  (in-process: lockfile + advisories + match + table)",
        ms(w),
        ms(wharf[0])
    );
    println!(
        "cargo-audit  median {:8.2} ms  min {:8.2} ms  (process{})",
        ms(c),
        ms(cargo_audit[0]),
        if with_yanked {
            ", yanked check on"
        } else {
            ", --no-yanked"
        }
    );
    let ratio = w.as_secs_f64() / c.as_secs_f64();
    println!("ratio wharf/cargo-audit {ratio:.3} (goal <= 0.5)");
    Ok(())
}

fn wharf_scan(db: &Path, lockfile: &Path) -> Result<audit::Report> {
    Ok(audit::audit_lockfile(lockfile, db)?)
}

fn cargo_audit_command(db: &Path, lockfile: &Path, with_yanked: bool) -> Command {
    let mut cmd = Command::new("cargo-audit");
    cmd.arg("audit")
        .arg("--db")
        .arg(db)
        .args(["--no-fetch", "--stale", "--file"])
        .arg(lockfile)
        .stdin(Stdio::null());
    if !with_yanked {
        cmd.arg("--no-yanked");
    }
    cmd
}

fn cargo_audit_ids(db: &Path, lockfile: &Path, with_yanked: bool) -> Result<BTreeSet<String>> {
    let out = cargo_audit_command(db, lockfile, with_yanked)
        .arg("--json")
        .output()
        .context("running cargo-audit (cargo install --locked cargo-audit)")?;
    check_status(out.status.code()).with_context(|| {
        format!(
            "cargo-audit: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo-audit's JSON")?;
    Ok(json["vulnerabilities"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["advisory"]["id"].as_str().map(str::to_owned))
        .collect())
}

/// cargo-audit exits with 1 when it finds vulnerabilities; other codes are failures.
fn check_status(code: Option<i32>) -> Result<()> {
    match code {
        Some(0 | 1) => Ok(()),
        other => bail!("cargo-audit exited with {other:?}"),
    }
}
