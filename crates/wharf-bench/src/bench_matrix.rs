//! `cargo xtask bench-matrix`: the matrix runner against running the same cells one after
//! another, and against `cargo hack --each-feature test` when cargo-hack is installed.
//!
//! The fixture is `crates/wharf-e2e/tests/fixtures/matrix`: one crate, four feature sets
//! (`a`, `b`, `c`, `a+b+c`), tests that compute for a second or two. Every run starts from
//! an empty target directory, so each contender compiles what it runs. The contenders
//! alternate within each round; the medians are compared.
//!
//! - wharf: `wharf_matrix_run::run` with the cargo runner (what cargo-hack and the serial
//!   loop run too: `cargo test`), all cells at once up to the core count, one jobserver.
//! - serial: each cell's own command (`Cell::argv`), one after another.
//! - cargo-hack: `cargo hack test --each-feature` without the fixture's `flaky`, `broken`,
//!   `hang` and `uncompilable` features, against wharf with `mode = "each"` and the same skipped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::median;
use anyhow::{Context, Result, bail};
use wharf::matrix::{self as plan, Cell};
use wharf::matrix_run::{self as runner, Harness, Options};

#[derive(clap::Args)]
pub struct Args {
    /// Timed rounds (each contender once per round; medians compared).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

pub fn run(args: Args, session: &wharf::cli::Session) -> Result<()> {
    let fixture = session.root.join("crates/wharf-e2e/tests/fixtures/matrix");
    let packages = runner::packages(&fixture.join("Cargo.toml"))?;
    let host = runner::host()?;
    let four_sets = plan_of(&fixture, &packages, &host, "")?;
    let runs = args.runs.max(1);
    println!(
        "fixture: {} ({} cells: {})",
        fixture.display(),
        four_sets.len(),
        four_sets
            .iter()
            .map(|c| c.feature_set().label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scratch = tempfile::tempdir()?;
    let fresh = |name: &str, round: usize| scratch.path().join(format!("{name}-{round}"));

    let mut wharf = Vec::new();
    let mut serial = Vec::new();
    for round in 0..runs {
        wharf.push(time_wharf(&fixture, &four_sets, &fresh("wharf", round))?);
        serial.push(time_serial(&fixture, &four_sets, &fresh("serial", round))?);
    }
    let (w, s) = (median(&mut wharf), median(&mut serial));
    println!("\n4 feature sets, {runs} rounds, cold target directory each run (median wall time):");
    println!("  wharf matrix (parallel)  {:>7.2} s", w.as_secs_f64());
    println!("  same cells one by one    {:>7.2} s", s.as_secs_f64());
    println!("  ratio wharf / serial     {:>7.2}", ratio(w, s));

    let hack_works = Command::new("cargo")
        .args(["hack", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !hack_works {
        println!("\ncargo-hack is not installed (cargo install --locked cargo-hack): skipped");
        return Ok(());
    }
    let each = plan_of(
        &fixture,
        &packages,
        &host,
        "features = { mode = \"each\", skip = [\"flaky\", \"broken\", \"hang\", \"uncompilable\"] }",
    )?;
    let mut wharf_each = Vec::new();
    let mut hack = Vec::new();
    for round in 0..runs {
        wharf_each.push(time_wharf(&fixture, &each, &fresh("wharf-each", round))?);
        hack.push(time_hack(&fixture, &fresh("hack", round))?);
    }
    let (w, h) = (median(&mut wharf_each), median(&mut hack));
    println!(
        "\neach feature ({} cells: {}), vs cargo hack test --each-feature \
         --exclude-features flaky,broken,hang,uncompilable:",
        each.len(),
        each.iter()
            .map(|c| c.feature_set().label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  wharf matrix (parallel)  {:>7.2} s", w.as_secs_f64());
    println!("  cargo hack --each-feature{:>7.2} s", h.as_secs_f64());
    println!("  ratio wharf / cargo-hack {:>7.2}", ratio(w, h));
    Ok(())
}

/// The fixture's own `[matrix]` (four sets), or one with `features` for its package.
fn plan_of(
    fixture: &Path,
    packages: &[plan::PackageInfo],
    host: &str,
    features: &str,
) -> Result<Vec<Cell>> {
    let path = fixture.join("pipelines/wharf.toml");
    let config = if features.is_empty() {
        wharf::pipeline::Config::load_file(&path)?
    } else {
        let text = format!(
            "[matrix]\nrunner = \"cargo\"\n[[matrix.packages]]\nname = \"matrix-fixture\"\n{features}\n"
        );
        wharf::pipeline::Config::parse(&text, Path::new("bench-matrix"))?
    }
    .matrix
    .context("a [matrix] section")?;
    Ok(plan::plan(&config, packages, host)?.cells)
}

fn time_wharf(fixture: &Path, cells: &[Cell], target: &Path) -> Result<Duration> {
    let mut options = Options::new(fixture, Harness::Cargo);
    options.target_dir = Some(target.to_path_buf());
    options.out_dir = target.join("wharf");
    options.retries = 0;
    let started = Instant::now();
    let report = runner::run(cells, &options, &|_| {})?;
    let took = started.elapsed();
    if !report.passed() {
        bail!("a cell failed in the benchmark:\n{}", report.problems());
    }
    Ok(took)
}

fn time_serial(fixture: &Path, cells: &[Cell], target: &Path) -> Result<Duration> {
    let started = Instant::now();
    for cell in cells {
        let argv = cell.argv();
        quiet(Command::new(&argv[0]).args(&argv[1..]), fixture, target)?;
    }
    Ok(started.elapsed())
}

fn time_hack(fixture: &Path, target: &Path) -> Result<Duration> {
    let started = Instant::now();
    quiet(
        Command::new("cargo").args([
            "hack",
            "test",
            "--each-feature",
            "--exclude-features",
            "flaky,broken,hang,uncompilable",
        ]),
        fixture,
        target,
    )?;
    Ok(started.elapsed())
}

fn quiet(command: &mut Command, dir: &Path, target: &Path) -> Result<()> {
    crate::checked(
        command
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO"),
    )
    .map(drop)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
