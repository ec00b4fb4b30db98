//! `cargo xtask bench-pipeline`: what the pipeline engine costs when nothing changed.
//!
//! On a small fixture workspace (one binary, a test, `[image]`, steps fmt, clippy, test and
//! image), in one run:
//! - cold: `cargo xtask ci` with an empty target directory and cache, as a whole process;
//! - no-op: the same command again, nothing changed (every step from the cache), whole process;
//! - plain cargo: what a user runs without wharf on the unchanged tree,
//!   `cargo fmt --check && cargo clippy -- -D warnings && cargo test` (cargo's own no-op, which
//!   still runs the tests), whole processes;
//! - engine: the library calls inside the no-op run, in process: gathering the facts, planning
//!   (the keys) and one cache lookup per step. Goal: under 100 ms.
//!
//! The no-op runs and the plain cargo runs take turns; medians are compared.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{checked, median, timed};
use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Timed rounds (medians compared).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const MAIN: &str = "fn main() {\n    println!(\"{}\", greeting());\n}\n\nfn greeting() -> &'static str {\n    \"hello\"\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn greets() {\n        assert_eq!(super::greeting(), \"hello\");\n    }\n}\n";

/// A one-package workspace in a new git repository.
fn fixture(dir: &Path) -> Result<()> {
    let write = |path: &str, text: &str| -> Result<()> {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().context("a parent")?)?;
        std::fs::write(path, text)?;
        Ok(())
    };
    write(
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    write("src/main.rs", MAIN)?;
    write(".gitignore", "/target\n")?;
    write(
        "pipelines/wharf.toml",
        "[image]\npackage = \"app\"\n[ci]\nsteps = [\"fmt\", \"clippy\", \"test\", \"image\"]\n",
    )?;
    run(Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(dir))?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "commit",
            "-qm",
            "fixture",
        ],
    ] {
        run(Command::new("git").args(args).current_dir(dir))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    checked(command).map(drop)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run_bench(args: Args) -> Result<()> {
    let runs = args.runs.max(1);
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    fixture(root)?;
    let xtask = std::env::current_exe()?;
    let ci = || {
        run(Command::new(&xtask)
            .args(["ci", "--json", "--workspace"])
            .arg(root)
            .env_remove("WHARF_CACHE_DIR")
            .env_remove("CARGO_TARGET_DIR"))
    };
    let cargo = |args: &[&str]| run(Command::new("cargo").args(args).current_dir(root));
    let plain = || {
        cargo(&["fmt", "--check"])?;
        cargo(&["clippy", "--", "-D", "warnings"])?;
        cargo(&["test"])
    };
    eprintln!("fixture: {}", root.display());
    let cold = timed(ci)?;
    // Warm plain cargo once too: from here on, both sides compile nothing.
    plain()?;
    let (mut noop, mut peer, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        noop.push(timed(ci)?);
        peer.push(timed(plain)?);
        engine.push(timed(|| engine_only(root))?);
    }
    let (noop, peer, engine) = (median(&mut noop), median(&mut peer), median(&mut engine));
    println!("{runs} rounds, medians (whole processes unless noted):");
    println!(
        "  cold `cargo xtask ci`                       {:>9.1} ms",
        ms(cold)
    );
    println!(
        "  no-op `cargo xtask ci` (all cached)         {:>9.1} ms",
        ms(noop)
    );
    println!(
        "  plain cargo fmt && clippy && test, no-op    {:>9.1} ms",
        ms(peer)
    );
    println!(
        "  engine in process: facts + plan + cache     {:>9.1} ms (goal < 100 ms)",
        ms(engine)
    );
    println!(
        "ratios: no-op / cold {:.3}; no-op / plain cargo {:.2}; engine / no-op {:.2}",
        noop.as_secs_f64() / cold.as_secs_f64(),
        noop.as_secs_f64() / peer.as_secs_f64(),
        engine.as_secs_f64() / noop.as_secs_f64()
    );
    Ok(())
}

/// What the engine does in a no-op run before any step would run: the facts, the plan and
/// a cache lookup for each step.
fn engine_only(root: &Path) -> Result<()> {
    let session = std::sync::Arc::new(wharf::cli::Session::new(Some(root), None)?);
    let (pipeline, _) = wharf::cli::steps::ci(&session)?;
    let facts = wharf::flow::Facts::gather(root, pipeline.env_names())?;
    let plan = wharf::flow::plan(&pipeline, &facts)?;
    let cache = wharf::flow::Cache::new(wharf::flow::Cache::dir_for(root));
    let hits = plan
        .steps
        .iter()
        .filter_map(|s| s.key.as_deref())
        .filter(|key| cache.get(key).is_some())
        .count();
    if hits != plan.steps.len() {
        bail!("only {hits} of {} steps are cached", plan.steps.len());
    }
    Ok(())
}
