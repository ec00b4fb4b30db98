//! `cargo xtask`: a thin command line over the wharf crates. Each subcommand parses its
//! arguments and calls the library; no logic lives here that a test would want.
//!
//! Exit codes: 0 success, 1 a step or build failed, 2 bad usage or config, 3 the scan's
//! policy gate failed.

mod bench;
mod bench_matrix;
mod bench_registry;
mod bench_scan;
mod ci;
mod copy;
mod image;
mod matrix;
mod push;
mod referrers;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "wharf's pipeline for this repository",
    version
)]
struct Cli {
    /// Show debug logs on stderr: each registry request and each process started (-vv:
    /// trace). RUST_LOG (tracing's env-filter syntax) overrides it. Never shows credentials.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the CI pipeline: fmt, clippy, tests, image (steps from pipelines/wharf.toml).
    Ci(ci::Args),
    /// Build the image of pipelines/wharf.toml into its OCI layout (no Docker needed).
    Image(image::Args),
    /// Time wharf's image build against `docker build` of the same binary.
    Bench(bench::Args),
    /// Time wharf against skopeo on a local registry: 1 GiB push, and copy between repos.
    BenchRegistry(bench_registry::Args),
    /// Time wharf's advisory scan against `cargo audit` on this repository's Cargo.lock.
    BenchScan(bench_scan::Args),
    /// Time the matrix runner against the same cells one by one (and cargo-hack).
    BenchMatrix(bench_matrix::Args),
    /// Copy an image between locations (oci:DIR:TAG, docker://HOST/REPO:TAG), digest kept.
    Copy(copy::Args),
    /// Push the image `cargo xtask image` built, under all its tags.
    Push(push::Args),
    /// Point a new tag at an image in a registry (only the manifest moves).
    Tag(push::TagArgs),
    /// SBOM, RustSec advisories, image checks and the policy gate ([scan]).
    Scan(scan::Args),
    /// Plan and run the test matrix of [matrix]: features x toolchains x targets, retries,
    /// JUnit; or print the plan (--dry-run) or the GitHub Actions matrix (--emit).
    Matrix(matrix::Args),
    /// List (or read) what is attached to an image in a registry: SBOMs and scan reports.
    Referrers(referrers::Args),
}

/// An error that is the user's to fix (usage, config): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl std::error::Error for UsageError {}

/// A message as a usage error (exit code 2).
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    UsageError(anyhow::anyhow!("{message}")).into()
}

/// An error and its causes on one line, each once: wharf's errors often name their cause
/// in their own message (`invalid tag "...": tag is 200 characters ...`), which anyhow's
/// `{:#}` would then print a second time.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Ci(args) => ci::run(args),
        Command::Image(args) => image::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchRegistry(args) => bench_registry::run(args),
        Command::BenchScan(args) => args.run(),
        Command::BenchMatrix(args) => bench_matrix::run(args),
        Command::Copy(args) => copy::run(args),
        Command::Push(args) => push::run(args),
        Command::Tag(args) => push::tag(args),
        Command::Scan(args) => scan::run(args),
        Command::Referrers(args) => referrers::run(args),
        Command::Matrix(args) => matrix::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else if e.downcast_ref::<scan::GateFailed>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Debug logs to stderr, off unless asked for: `RUST_LOG` (env-filter syntax) wins, else
/// `-v` shows wharf's debug events and `-vv` its trace events.
fn init_logging(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => directives,
        _ => match verbose {
            0 => "warn",
            1 => "warn,wharf=debug",
            _ => "warn,wharf=trace",
        }
        .to_string(),
    };
    // A bad RUST_LOG is the user's to fix, but not worth failing the command for.
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: ignoring RUST_LOG={filter:?}: {e}");
        tracing_subscriber::EnvFilter::new("warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The workspace root: `WHARF_WORKSPACE` when set (the end-to-end tests point it at
/// fixture workspaces), else the workspace xtask lives in, one level above it.
pub fn workspace_root() -> PathBuf {
    match std::env::var_os("WHARF_WORKSPACE").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is inside the workspace")
            .to_path_buf(),
    }
}
