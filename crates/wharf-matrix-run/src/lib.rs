//! Runs the cells of a test matrix that [`wharf_matrix`] planned.
//!
//! Each cell is one cargo process (`cargo +TOOLCHAIN test ...` or `cargo +TOOLCHAIN
//! nextest run ...`) in its own process group, with stdout and stderr in one log file.
//! [`run`] takes cells from the list in order with [`Options::jobs`] workers and returns a
//! [`Report`]: per cell passed, flaky, failed or timed out, per test the same, and for each
//! failure the command that reproduces it ([`CellResult::reproduce`]).
//!
//! # Invariants
//! - No oversubscription: every cell's cargo gets its compiler slots from one jobserver
//!   (the GNU make protocol cargo reads from `CARGO_MAKEFLAGS`) holding as many tokens as
//!   [`Options::cpus`], and libtest (or nextest) runs `cpus / jobs` tests at once per cell.
//! - One target directory for all cells. Measured with cargo 1.95 and nightly: features
//!   and toolchains are part of every artifact's hash, so `stable`, `nightly`, `stable`
//!   in turn (or features `a`, `b`, `a`) rebuild nothing the third time; separate
//!   directories would only build every dependency again. cargo holds the directory's
//!   lock while it compiles and lets go before the tests run, so one cell's tests run
//!   while the next cell compiles. A cell never changes `RUSTFLAGS`, the one thing that
//!   would make cells invalidate each other.
//! - A cell that runs out of time is killed with its whole process group, tests and what
//!   they spawned included; so is every cell when [`Options::cancel`] is raised.
//! - A test counts as flaky only when it failed and then passed on a retry of the same
//!   build; a cell whose build fails or whose tests cannot be told apart is failed, never
//!   retried into a pass.
//!
//! This crate runs processes but reads no configuration; the caller (`cargo xtask matrix`)
//! turns `[matrix]` into [`Options`].

mod libtest;
mod nextest;
mod process;
mod report;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use wharf_matrix::{Cell, Command as CargoCommand, PackageInfo};

pub use report::Report;

/// What runs a cell's tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Harness {
    /// `cargo test` (or `check`/`build`/`clippy`); wharf retries failing tests by name.
    Cargo,
    /// `cargo nextest run`; nextest retries, wharf reads its JUnit report.
    Nextest,
}

impl Harness {
    /// `wharf_matrix::Runner` resolved: `auto` is nextest when `cargo nextest --version`
    /// works and the command is `test`.
    pub fn choose(runner: wharf_matrix::Runner, command: CargoCommand) -> Result<Harness, Error> {
        use wharf_matrix::Runner;
        let nextest_works = || {
            Command::new("cargo")
                .args(["nextest", "--version"])
                .output()
                .is_ok_and(|out| out.status.success())
        };
        match runner {
            Runner::Cargo => Ok(Harness::Cargo),
            Runner::Nextest if command != CargoCommand::Test => Err(Error::NextestCommand {
                command: command.to_string(),
            }),
            Runner::Nextest if !nextest_works() => Err(Error::NoNextest),
            Runner::Nextest => Ok(Harness::Nextest),
            Runner::Auto if command == CargoCommand::Test && nextest_works() => {
                Ok(Harness::Nextest)
            }
            Runner::Auto => Ok(Harness::Cargo),
        }
    }

    /// `cargo test` or `cargo nextest`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Harness::Cargo => "cargo test",
            Harness::Nextest => "cargo nextest",
        }
    }

    /// [`Harness::argv`], shell-quoted: what to paste into a terminal.
    pub fn command_line(self, cell: &Cell) -> String {
        quote(&self.argv(cell))
    }

    /// The command line that runs `cell` locally, as a person would type it.
    pub fn argv(self, cell: &Cell) -> Vec<String> {
        let mut argv = cell.argv();
        if self == Harness::Nextest {
            // cell.argv(): cargo +TC test -p P [features] --target T --profile PROFILE
            argv.splice(2..3, ["nextest".to_string(), "run".to_string()]);
            if let Some(flag) = argv.iter_mut().rev().find(|a| *a == "--profile") {
                // nextest's --profile is its own; cargo's is --cargo-profile.
                *flag = "--cargo-profile".into();
            }
        }
        argv
    }
}

/// How to run the cells.
#[derive(Clone, Debug)]
pub struct Options {
    /// The workspace root: cargo runs there.
    pub workspace: PathBuf,
    pub harness: Harness,
    /// Cells at once (at least 1).
    pub jobs: usize,
    /// Compiler slots shared by all cells, and test threads split between them.
    pub cpus: usize,
    /// Runs of a failing test after the first.
    pub retries: u32,
    /// Per cell, retries included.
    pub timeout: Duration,
    /// Stop starting cells after the first failure; the rest are reported as not run.
    pub fail_fast: bool,
    /// Logs, nextest configs and reports of this run (`target/wharf/matrix`).
    pub out_dir: PathBuf,
    /// `CARGO_TARGET_DIR` for every cell; `None`: cargo's own choice (shared with plain
    /// `cargo test`, so a matrix after a normal build starts warm).
    pub target_dir: Option<PathBuf>,
    /// Raise to stop: running cells are killed, the rest not started.
    pub cancel: Arc<AtomicBool>,
    /// The jobserver the cells take their compiler slots from; `None`: one of their own
    /// with `cpus - 1` tokens. A pipeline passes its own, shared with its other steps.
    pub jobserver: Option<jobserver::Client>,
}

impl Options {
    /// Defaults for `workspace`: the harness chosen by `auto`, as many cells at once as
    /// cores, 2 retries, 30 minutes per cell, logs in `target/wharf/matrix`.
    pub fn new(workspace: &Path, harness: Harness) -> Options {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options {
            workspace: workspace.to_path_buf(),
            harness,
            jobs: cpus,
            cpus,
            retries: 2,
            timeout: Duration::from_secs(1800),
            fail_fast: false,
            out_dir: workspace.join("target/wharf/matrix"),
            target_dir: None,
            cancel: Arc::new(AtomicBool::new(false)),
            jobserver: None,
        }
    }
}

/// How a cell ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// Passed, but some test needed a retry.
    Flaky,
    /// A test failed every attempt, or the build failed.
    Failed,
    TimedOut,
    /// Not started: fail-fast stopped the run, or it was cancelled.
    NotRun,
}

impl Outcome {
    pub fn ok(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Flaky)
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Passed => "PASS",
            Outcome::Flaky => "FLAKY",
            Outcome::Failed => "FAIL",
            Outcome::TimedOut => "TIMEOUT",
            Outcome::NotRun => "NOT RUN",
        }
    }
}

/// One test's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Passed,
    /// Failed, then passed on a retry.
    Flaky,
    Failed,
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// The test binary: `src/lib.rs`, `tests/api.rs`, `doctests` (cargo); `crate`,
    /// `crate::api` (nextest).
    pub binary: String,
    pub name: String,
    pub status: TestStatus,
    /// Runs, the first included.
    pub attempts: u32,
}

/// What happened to one cell.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    pub id: String,
    pub cell: Cell,
    pub outcome: Outcome,
    pub seconds: f64,
    /// The command that ran, shell-quoted.
    pub command: String,
    /// For a failed or timed-out cell: the command that reproduces the failure locally
    /// (with the failing tests as `--exact` filters when they are known).
    pub reproduce: Option<String>,
    /// Why the cell failed when no test says so (build error, timeout), with the end of
    /// the log.
    pub message: Option<String>,
    pub log: PathBuf,
    pub tests: Vec<TestResult>,
}

impl CellResult {
    pub fn count(&self, status: TestStatus) -> usize {
        self.tests.iter().filter(|t| t.status == status).count()
    }
}

/// What a caller hears while the matrix runs.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        index: usize,
        total: usize,
        cell: &'a Cell,
    },
    Finished {
        index: usize,
        total: usize,
        result: &'a CellResult,
    },
}

/// Why the matrix could not run at all (a failing cell is not an error: it is in the
/// report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "toolchain {toolchain:?} does not work: `cargo +{toolchain} --version` said: {said} (hint: rustup toolchain install {toolchain}, or remove it from [matrix] toolchains)"
    )]
    Toolchain { toolchain: String, said: String },
    #[error(
        "runner = \"nextest\" but `cargo nextest --version` failed (hint: cargo install --locked cargo-nextest, or runner = \"auto\")"
    )]
    NoNextest,
    #[error(
        "runner = \"nextest\" runs tests, but [matrix] command is {command:?} (hint: runner = \"cargo\")"
    )]
    NextestCommand { command: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cargo metadata failed for {path}: {message}")]
    Metadata { path: PathBuf, message: String },
}

/// The workspace's packages as the planner needs them, from `cargo metadata`.
pub fn packages(manifest_path: &Path) -> Result<Vec<PackageInfo>, Error> {
    tracing::debug!(manifest = %manifest_path.display(), "starting process: cargo metadata --no-deps");
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest_path)
        .no_deps()
        .exec()
        .map_err(|e| Error::Metadata {
            path: manifest_path.to_path_buf(),
            message: e.to_string(),
        })?;
    let members: Vec<_> = metadata.workspace_members.iter().collect();
    Ok(metadata
        .packages
        .iter()
        .filter(|p| members.contains(&&p.id))
        .map(|p| PackageInfo {
            name: p.name.to_string(),
            features: p
                .features
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            rust_version: p.rust_version.as_ref().map(|v| v.to_string()),
        })
        .collect())
}

/// The host triple, as the default target.
pub fn host() -> Result<String, Error> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|source| Error::Io {
            action: "running",
            path: "rustc -vV".into(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("x86_64-unknown-linux-gnu")
        .to_string())
}

/// Checks that every toolchain the cells use is installed, before any cell starts: a
/// missing nightly should be one clear error, not a failed cell per package.
pub fn check_toolchains(cells: &[Cell]) -> Result<(), Error> {
    let mut seen: Vec<&str> = Vec::new();
    for cell in cells {
        if seen.contains(&cell.toolchain.as_str()) {
            continue;
        }
        seen.push(&cell.toolchain);
        let out = Command::new("cargo")
            .arg(format!("+{}", cell.toolchain))
            .arg("--version")
            .env_remove("RUSTUP_TOOLCHAIN")
            .output();
        let said = match out {
            Ok(out) if out.status.success() => continue,
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        return Err(Error::Toolchain {
            toolchain: cell.toolchain.clone(),
            said,
        });
    }
    Ok(())
}

/// Runs `cells` and reports on each, in the order given.
pub fn run(
    cells: &[Cell],
    options: &Options,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Report, Error> {
    let started = Instant::now();
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let logs = options.out_dir.join("logs");
    fs::create_dir_all(&logs).map_err(io("creating", &logs))?;
    let jobs = options.jobs.clamp(1, cells.len().max(1));
    // cargo counts the token it holds implicitly as one job, so n - 1 tokens let one
    // compiling cell use n cores, and two use n + 1 between them at worst. A cell killed
    // while its rustc processes hold tokens loses them for the rest of the run; the
    // implicit token keeps every later cell building, only with less parallelism.
    let jobserver = match &options.jobserver {
        Some(shared) => shared.clone(),
        None => jobserver::Client::new(options.cpus.saturating_sub(1).max(1))
            .map_err(io("creating a jobserver in", &options.out_dir))?,
    };
    let test_threads = (options.cpus / jobs).max(1);

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<CellResult>>> = Mutex::new(vec![None; cells.len()]);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(cell) = cells.get(index) else { break };
                    let total = cells.len();
                    let result =
                        if stop.load(Ordering::SeqCst) || options.cancel.load(Ordering::SeqCst) {
                            not_run(cell, options.harness)
                        } else {
                            on_event(Event::Started { index, total, cell });
                            let context = CellContext {
                                options,
                                jobserver: &jobserver,
                                test_threads,
                                log: logs.join(log_name(index, cell)),
                            };
                            match run_cell(cell, &context) {
                                Ok(result) => result,
                                Err(e) => {
                                    failure.lock().unwrap().get_or_insert(e);
                                    stop.store(true, Ordering::SeqCst);
                                    break;
                                }
                            }
                        };
                    if options.fail_fast && !result.outcome.ok() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if result.outcome != Outcome::NotRun {
                        on_event(Event::Finished {
                            index,
                            total,
                            result: &result,
                        });
                    }
                    results.lock().unwrap()[index] = Some(result);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let cells = results
        .into_inner()
        .unwrap()
        .into_iter()
        .zip(cells)
        .map(|(result, cell)| result.unwrap_or_else(|| not_run(cell, options.harness)))
        .collect();
    Ok(Report {
        harness: options.harness,
        cells,
        seconds: started.elapsed().as_secs_f64(),
    })
}

struct CellContext<'a> {
    options: &'a Options,
    jobserver: &'a jobserver::Client,
    test_threads: usize,
    log: PathBuf,
}

/// `07-wharf-tag-a+b-stable-x86_64-unknown-linux-gnu-dev.log`: sorted like the plan,
/// readable, and a valid file name whatever the id holds.
fn log_name(index: usize, cell: &Cell) -> String {
    let id: String = cell
        .id()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{:02}-{id}.log", index + 1)
}

fn quote(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

fn not_run(cell: &Cell, harness: Harness) -> CellResult {
    CellResult {
        id: cell.id(),
        cell: cell.clone(),
        outcome: Outcome::NotRun,
        seconds: 0.0,
        command: harness.command_line(cell),
        reproduce: None,
        message: None,
        log: PathBuf::new(),
        tests: Vec::new(),
    }
}

/// Runs one cell: the first attempt, then (cargo harness) retries of the failing tests.
fn run_cell(cell: &Cell, context: &CellContext<'_>) -> Result<CellResult, Error> {
    let options = context.options;
    let started = Instant::now();
    let deadline = started + options.timeout;
    let argv = options.harness.argv(cell);
    let mut log = File::create(&context.log).map_err(|source| Error::Io {
        action: "creating",
        path: context.log.clone(),
        source,
    })?;
    let log_io = |source| Error::Io {
        action: "writing",
        path: context.log.clone(),
        source,
    };
    let mut result = CellResult {
        id: cell.id(),
        cell: cell.clone(),
        outcome: Outcome::Passed,
        seconds: 0.0,
        command: quote(&argv),
        reproduce: None,
        message: None,
        log: context.log.clone(),
        tests: Vec::new(),
    };

    let mut first = argv.clone();
    let store = options.out_dir.join("nextest").join(
        context
            .log
            .file_stem()
            .map(PathBuf::from)
            .unwrap_or_default(),
    );
    if options.harness == Harness::Nextest {
        let config = store.join("wharf.toml");
        fs::create_dir_all(&store)
            .and_then(|()| fs::write(&config, nextest::tool_config(&store)))
            .map_err(|source| Error::Io {
                action: "writing",
                path: config.clone(),
                source,
            })?;
        // A stale report from an earlier run must not be read as this run's.
        let _ = fs::remove_file(nextest::junit_path(&store));
        first.extend([
            "--no-fail-fast".into(),
            "--retries".into(),
            options.retries.to_string(),
            "--test-threads".into(),
            context.test_threads.to_string(),
            "--profile".into(),
            nextest::PROFILE.into(),
            "--tool-config-file".into(),
            format!("wharf:{}", config.display()),
        ]);
    } else if cell.command == CargoCommand::Test {
        first.push("--no-fail-fast".into());
    }
    writeln!(log, "==> {}", quote(&first)).map_err(log_io)?;
    let exit = process::run(command(&first, context), &log, deadline, &options.cancel).map_err(
        |source| Error::Io {
            action: "running cargo for",
            path: context.log.clone(),
            source,
        },
    )?;
    let mut read_from = 0;
    let succeeded = match exit {
        process::Exit::Exited(status) => status.success(),
        process::Exit::TimedOut | process::Exit::Cancelled => {
            return Ok(stopped(result, &exit, started, &argv, &context.log));
        }
    };

    match options.harness {
        Harness::Nextest => {
            let junit = nextest::junit_path(&store);
            result.tests = match fs::read_to_string(&junit) {
                Ok(text) => nextest::results(&text).map_err(|message| Error::Io {
                    action: "reading nextest's JUnit report",
                    path: junit.clone(),
                    source: std::io::Error::other(message),
                })?,
                Err(_) => Vec::new(),
            };
        }
        Harness::Cargo => {
            let (tests, end) = read_results(&context.log, read_from)?;
            read_from = end;
            result.tests = tests
                .into_iter()
                .map(|line| TestResult {
                    binary: line.binary,
                    name: line.name,
                    status: line.status,
                    attempts: 1,
                })
                .collect();
            let mut attempt = 1;
            while !succeeded
                && attempt <= options.retries
                && result.count(TestStatus::Failed) > 0
                && !options.cancel.load(Ordering::SeqCst)
            {
                attempt += 1;
                let failing: Vec<String> = failing_names(&result.tests);
                let mut retry = argv.clone();
                retry.extend(["--".into(), "--exact".into()]);
                retry.extend(failing.iter().cloned());
                writeln!(
                    log,
                    "\n==> retry {} of {}: {}",
                    attempt - 1,
                    options.retries,
                    quote(&retry)
                )
                .map_err(log_io)?;
                let exit = process::run(command(&retry, context), &log, deadline, &options.cancel)
                    .map_err(|source| Error::Io {
                        action: "running cargo for",
                        path: context.log.clone(),
                        source,
                    })?;
                let (lines, end) = read_results(&context.log, read_from)?;
                read_from = end;
                for test in result
                    .tests
                    .iter_mut()
                    .filter(|t| t.status == TestStatus::Failed)
                {
                    test.attempts += 1;
                    let passed = lines.iter().any(|l| {
                        l.binary == test.binary
                            && l.name == test.name
                            && l.status == TestStatus::Passed
                    });
                    if passed {
                        test.status = TestStatus::Flaky;
                    }
                }
                if !matches!(exit, process::Exit::Exited(_)) {
                    return Ok(stopped(result, &exit, started, &retry, &context.log));
                }
            }
        }
    }

    let failed = failing_names(&result.tests);
    let flaky = result.count(TestStatus::Flaky) > 0;
    result.outcome = if !failed.is_empty() {
        Outcome::Failed
    } else if succeeded || (flaky && options.harness == Harness::Cargo) {
        // cargo exits non-zero for the first attempt's failures even when every one of
        // them passed on a retry; nextest exits zero after flaky tests, so a non-zero
        // exit with no failing test there is a build failure.
        if flaky {
            Outcome::Flaky
        } else {
            Outcome::Passed
        }
    } else {
        // Non-zero with no failing test: the build failed (or a test binary crashed
        // before libtest printed a result).
        Outcome::Failed
    };
    if result.outcome == Outcome::Failed {
        let mut reproduce = argv.clone();
        if !failed.is_empty() {
            reproduce.extend(["--".into(), "--exact".into()]);
            reproduce.extend(failed);
        } else {
            result.message = Some(format!(
                "cargo failed before any test did (a build error?)\n{}",
                log_tail(&context.log)
            ));
        }
        result.reproduce = Some(quote(&reproduce));
    }
    result.seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

/// `result` of a cell whose deadline passed, or that was cancelled, while `argv` ran.
fn stopped(
    mut result: CellResult,
    exit: &process::Exit,
    started: Instant,
    argv: &[String],
    log: &Path,
) -> CellResult {
    let (outcome, what) = match exit {
        process::Exit::TimedOut => (Outcome::TimedOut, "timed out"),
        _ => (Outcome::NotRun, "cancelled"),
    };
    result.outcome = outcome;
    result.seconds = started.elapsed().as_secs_f64();
    result.message = Some(format!(
        "{what} after {:.0} s; the cell's processes were killed\n{}",
        result.seconds,
        log_tail(log)
    ));
    result.reproduce = Some(quote(argv));
    result
}

/// Names of the tests that failed (deduplicated: one name may fail in two binaries).
fn failing_names(tests: &[TestResult]) -> Vec<String> {
    let mut names: Vec<String> = tests
        .iter()
        .filter(|t| t.status == TestStatus::Failed)
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The cargo process for `argv`, sharing the jobserver and the test threads.
fn command(argv: &[String], context: &CellContext<'_>) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(&context.options.workspace)
        // `+toolchain` picks the toolchain; an inherited override would fight it, and
        // CARGO points at the toolchain that runs wharf, not the cell's.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env("RUST_TEST_THREADS", context.test_threads.to_string())
        .env("CARGO_TERM_COLOR", "never");
    if let Some(dir) = &context.options.target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    context.jobserver.configure(&mut command);
    command
}

/// The test lines of the log after byte `from`, and where the log ends now.
fn read_results(path: &Path, from: u64) -> Result<(Vec<libtest::Line>, u64), Error> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]);
    Ok((libtest::parse(&text), bytes.len() as u64))
}

/// The last lines of a log, for messages: enough to show a compiler error.
fn log_tail(path: &Path) -> String {
    const LINES: usize = 15;
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LINES);
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell() -> Cell {
        Cell {
            package: "fixture".into(),
            features: vec!["a".into(), "b".into()],
            no_default_features: true,
            toolchain: "nightly".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            target_flag: true,
            profile: "dev".into(),
            command: CargoCommand::Test,
        }
    }

    #[test]
    fn nextest_argv_uses_nextest_run_and_cargo_profile() {
        assert_eq!(
            Harness::Nextest.argv(&cell()).join(" "),
            "cargo +nightly nextest run -p fixture --no-default-features --features a,b \
             --target x86_64-unknown-linux-gnu --cargo-profile dev"
        );
        assert_eq!(Harness::Cargo.argv(&cell()), cell().argv());
    }

    #[test]
    fn log_names_are_file_names() {
        let mut cell = cell();
        cell.package = "a/b c".into();
        assert_eq!(
            log_name(6, &cell),
            "07-a-b-c-a+b-nightly-x86_64-unknown-linux-gnu-dev.log"
        );
    }

    #[test]
    fn failing_names_are_deduplicated() {
        let test = |binary: &str, name: &str, status| TestResult {
            binary: binary.into(),
            name: name.into(),
            status,
            attempts: 1,
        };
        let tests = [
            test("src/lib.rs", "b", TestStatus::Failed),
            test("tests/x.rs", "b", TestStatus::Failed),
            test("src/lib.rs", "a", TestStatus::Failed),
            test("src/lib.rs", "c", TestStatus::Passed),
        ];
        assert_eq!(failing_names(&tests), ["a", "b"]);
    }
}
