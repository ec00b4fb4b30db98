//! wharf's benchmarks, as `cargo xtask` commands of this repository: each times wharf and the
//! tool a user would pick instead, side by side in one run, and prints the ratio.

mod bench;
mod bench_deploy;
mod bench_dockerfile;
mod bench_matrix;
mod bench_pipeline;
mod bench_platforms;
mod bench_promote;
mod bench_registry;
mod bench_scan;
mod loopback;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use wharf::cli::{Extension, Session};

/// How long `f` took.
fn timed<E>(f: impl FnOnce() -> Result<(), E>) -> Result<Duration, E> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// Runs `command` (stdin closed) to its end; when it fails, its stderr is the error.
fn checked(command: &mut Command) -> anyhow::Result<Output> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The median of `times` (sorted in place).
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Time wharf's image build against `docker build` of the same binary.
    Bench(bench::Args),
    /// Time wharf against skopeo on a local registry: 1 GiB push, and copy between repos.
    BenchRegistry(bench_registry::Args),
    /// Time wharf's advisory scan against `cargo audit` on this repository's Cargo.lock.
    BenchScan(bench_scan::Args),
    /// Time the matrix runner against the same cells one by one (and cargo-hack).
    BenchMatrix(bench_matrix::Args),
    /// Time the pipeline engine on a no-op `cargo xtask ci` (all cached) against the cold
    /// run and plain cargo.
    BenchPipeline(bench_pipeline::Args),
    /// Time `promote` (gates included) and `rollback` against `skopeo copy` of the same
    /// image on a local registry.
    BenchPromote(bench_promote::Args),
    /// Time `deploy` (blue-green behind the proxy) against docker CLI scripts on the local
    /// engine, counting the requests each one fails.
    BenchDeploy(bench_deploy::Args),
}

impl Extension for Bench {
    fn run(self, session: &Session) -> anyhow::Result<()> {
        match self {
            Bench::Bench(args) => bench::run(args, session),
            Bench::BenchRegistry(args) => bench_registry::run(args),
            Bench::BenchScan(args) => args.run(session),
            Bench::BenchMatrix(args) => bench_matrix::run(args, session),
            Bench::BenchPipeline(args) => bench_pipeline::run_bench(args),
            Bench::BenchPromote(args) => bench_promote::run(args),
            Bench::BenchDeploy(args) => bench_deploy::run(args, session),
        }
    }
}
