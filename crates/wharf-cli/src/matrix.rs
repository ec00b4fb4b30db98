//! `cargo xtask matrix`: plan the `[matrix]` cells (wharf-matrix), pick a shard, and run
//! them (wharf-matrix-run), or print the plan or the GitHub Actions matrix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wharf_matrix::{self as plan, Shard};
use wharf_matrix_run::{self as runner, Event, Harness, Options, Outcome, Report};

use crate::scan::write_atomically;
use crate::{Session, UsageError, stdout};

#[derive(clap::Args)]
pub struct Args {
    /// Print the cells (and the command each runs) without running them.
    #[arg(long)]
    dry_run: bool,
    /// JSON on stdout: the plan with --dry-run, else the run's report.
    #[arg(long)]
    json: bool,
    /// Run (or list) only shard K of N, e.g. `2/4`: cells split in order, evenly.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Print the GitHub Actions `strategy.matrix` (one job per shard) as one JSON line.
    #[arg(long, value_enum, value_name = "FORMAT")]
    emit: Option<Emit>,
    /// Shards for --emit: 0 picks ceil(cells / 8).
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Cells at once (default: [matrix] jobs, else the cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Runs of a failing test after the first (default: [matrix] retries, 2).
    #[arg(long)]
    retries: Option<u32>,
    /// Seconds per cell before its processes are killed (default: [matrix] timeout_secs).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// What runs the tests (default: [matrix] runner, auto = nextest when installed).
    #[arg(long, value_enum)]
    runner: Option<RunnerArg>,
    /// Stop starting cells after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// CARGO_TARGET_DIR for every cell (default: cargo's, shared with plain cargo test).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Cell logs, report.json and nextest's files (default: DIR/target/wharf/matrix).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Where the JUnit XML goes (default: OUT_DIR/junit.xml).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Emit {
    GithubMatrix,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RunnerArg {
    Auto,
    Cargo,
    Nextest,
}

pub fn run(args: Args, session: &Session) -> Result<()> {
    let root = session.root.clone();
    let config = matrix_config(session)?;
    let mut cells = planned(&root, &config)?;

    if let Some(Emit::GithubMatrix) = args.emit {
        let matrix = plan::github_matrix(&plan::Plan { cells }, args.shards);
        return stdout(&format!("{}\n", serde_json::to_string(&matrix)?));
    }
    let mut note = None;
    if let Some(shard) = &args.shard {
        let shard = Shard::parse(shard).map_err(|e| UsageError(e.into()))?;
        let total = cells.len();
        cells = plan::shard(&plan::Plan { cells }, shard);
        note = empty_shard_note(shard, total, cells.len());
    }
    if note.is_none() {
        not_empty(&cells)?;
    }
    let plan = plan::Plan { cells };
    let runner = match args.runner {
        None => config.runner,
        Some(RunnerArg::Auto) => plan::Runner::Auto,
        Some(RunnerArg::Cargo) => plan::Runner::Cargo,
        Some(RunnerArg::Nextest) => plan::Runner::Nextest,
    };
    let harness = Harness::choose(runner, config.command).map_err(|e| UsageError(e.into()))?;
    if args.dry_run {
        if args.json {
            // The plan's JSON (`argv` is cargo's form of each cell), plus the runner and
            // the command line each cell will actually run with it.
            let mut value = serde_json::to_value(&plan)?;
            if let Some(cells) = value["cells"].as_array_mut() {
                for (json, cell) in cells.iter_mut().zip(&plan.cells) {
                    json["command_line"] = harness.command_line(cell).into();
                }
            }
            value["runner"] = harness.name().into();
            if let Some(note) = &note {
                value["note"] = note.as_str().into();
            }
            return stdout(&format!("{}\n", serde_json::to_string_pretty(&value)?));
        }
        // What will run, with the runner that will run it.
        let n = plan.cells.len();
        let mut text = format!(
            "{n} cell{}, run by {}\n",
            if n == 1 { "" } else { "s" },
            harness.name()
        );
        for cell in &plan.cells {
            text += &format!("  {}\n      {}\n", cell.id(), harness.command_line(cell));
        }
        if let Some(note) = &note {
            text += &format!("note: {note}\n");
        }
        return stdout(&text);
    }
    if let Some(note) = &note {
        // Still run: the empty report and JUnit file are there for CI to upload.
        eprintln!("note: {note}");
    }

    let mut options = options(&root, harness, &config);
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.max(1);
    }
    if let Some(retries) = args.retries {
        options.retries = retries;
    }
    if let Some(secs) = args.timeout {
        options.timeout = Duration::from_secs(secs);
    }
    options.fail_fast = args.fail_fast;
    options.target_dir = args.target_dir.clone();
    if let Some(dir) = &args.out_dir {
        options.out_dir = dir.clone();
    }
    let junit = args
        .junit
        .clone()
        .unwrap_or_else(|| options.out_dir.join("junit.xml"));
    let report = execute(&plan, options, &junit, &|line| eprintln!("{line}"))?;
    if args.json {
        eprint!("{}", summary(&report));
        stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        stdout(&summary(&report))?;
    }
    verdict(&report)
}

/// The `matrix` step of `cargo xtask ci`: this repository's `[matrix]`, every cell. The
/// summary goes to stderr (stdout is `ci --json`'s).
pub fn ci_step(session: &Session, cx: &mut wharf_flow::Context<'_>) -> Result<Report> {
    use std::io::Write as _;
    let root = &session.root;
    let config = matrix_config(session)?;
    let cells = planned(root, &config)?;
    not_empty(&cells)?;
    let harness = Harness::choose(config.runner, config.command)?;
    let mut options = options(root, harness, &config);
    // The pipeline's compiler slots, shared with its other steps.
    options.jobserver = cx.jobserver().cloned();
    let junit = options.out_dir.join("junit.xml");
    // Progress goes to the step's log: steps running beside this one share the terminal.
    let log = std::sync::Mutex::new(cx.log().try_clone()?);
    let say = |line: &str| {
        if let Ok(mut log) = log.lock() {
            let _ = writeln!(log, "{line}");
        }
    };
    let report = execute(&plan::Plan { cells }, options, &junit, &say)?;
    let _ = write!(cx.log(), "{}", summary(&report));
    verdict(&report)?;
    Ok(report)
}

/// `[matrix]` of the pipeline config; a config without one gets the defaults (every
/// package, default features, stable).
fn matrix_config(session: &Session) -> Result<plan::Config> {
    Ok(session.config()?.matrix.clone().unwrap_or_default())
}

/// Run options from `[matrix]`, before any command-line override.
fn options(root: &Path, harness: Harness, config: &plan::Config) -> Options {
    let mut options = Options::new(root, harness);
    options.jobs = config.jobs.unwrap_or(options.jobs).max(1);
    options.retries = config.retries;
    options.timeout = Duration::from_secs(config.timeout_secs);
    options
}

/// The cells of `config` for the workspace at `root` (packages from `cargo metadata`).
pub fn planned(root: &Path, config: &plan::Config) -> Result<Vec<plan::Cell>> {
    let packages = runner::packages(&root.join("Cargo.toml")).map_err(|e| UsageError(e.into()))?;
    let host = runner::host()?;
    let plan = plan::plan(config, &packages, &host)
        .map_err(|e| UsageError(anyhow::Error::new(e).context("[matrix]")))?;
    Ok(plan.cells)
}

/// A plan with no cell at all is a config mistake (every cell excluded), in a dry run as
/// in a run.
fn not_empty(cells: &[plan::Cell]) -> Result<()> {
    if cells.is_empty() {
        return Err(UsageError(anyhow::anyhow!(
            "the matrix has no cells: [[matrix.exclude]] drops every cell of [matrix]"
        ))
        .into());
    }
    Ok(())
}

/// Why shard `shard` got no cell of `total`, when it got none: more shards than cells.
/// CI runs every shard a matrix names, so an empty one succeeds (with this note), in a
/// dry run as in a run.
fn empty_shard_note(shard: Shard, total: usize, got: usize) -> Option<String> {
    (got == 0 && total > 0).then(|| {
        format!(
            "shard {shard} is empty: the plan has {total} cell{} for {} shards, so shards past {total} have nothing to run (this is not an error)",
            if total == 1 { "" } else { "s" },
            shard.count()
        )
    })
}

/// Runs the cells with progress on stderr, writes `junit.xml` and `report.json`, and
/// returns the report; an interrupted run is an error.
/// `say` prints a line of progress.
fn execute(
    plan: &plan::Plan,
    mut options: Options,
    junit: &Path,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    runner::check_toolchains(&plan.cells).map_err(|e| UsageError(e.into()))?;
    // Ctrl-C and SIGTERM (a CI job cancelled) stop the run cleanly: the cells are in
    // their own process groups, so the terminal's SIGINT does not reach them; the runner
    // kills them when this flag goes up.
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, cancel.clone())
            .context("installing a signal handler")?;
    }
    options.cancel = cancel.clone();
    say(&format!(
        "==> matrix: {} cells, {} at once, {} ({}), logs in {}",
        plan.cells.len(),
        options.jobs.min(plan.cells.len()),
        options.harness.name(),
        if options.retries == 0 {
            "no retries".to_string()
        } else {
            format!("{} retries", options.retries)
        },
        options.out_dir.join("logs").display()
    ));
    let report = runner::run(&plan.cells, &options, &|event| match event {
        Event::Started { index, total, cell } => {
            say(&format!("[{:>2}/{total}] start   {}", index + 1, cell.id()));
        }
        Event::Finished {
            index,
            total,
            result,
        } => {
            say(&format!(
                "[{:>2}/{total}] {:<7} {} ({:.1} s)",
                index + 1,
                result.outcome.label(),
                result.id,
                result.seconds
            ));
        }
    })?;

    let xml = report.junit().to_string().context("writing JUnit XML")?;
    write_atomically(junit, xml.as_bytes())?;
    let json_path = options.out_dir.join("report.json");
    write_atomically(
        &json_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    say(&format!(
        "JUnit: {}; JSON: {}",
        junit.display(),
        json_path.display()
    ));
    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
        say(&summary(&report));
        bail!("interrupted; the cells that were running were killed");
    }
    Ok(report)
}

/// The table, then each problem with its reproduce command.
fn summary(report: &Report) -> String {
    format!("{}{}", report.table(), report.problems())
}

/// Exit status of a finished run: an error when a cell failed or timed out.
fn verdict(report: &Report) -> Result<()> {
    if !report.passed() {
        let failed = report.count(Outcome::Failed) + report.count(Outcome::TimedOut);
        bail!(
            "{failed} of {} matrix cells failed (reproduce commands above)",
            report.cells.len()
        );
    }
    Ok(())
}
