//! `cargo xtask bench`: wharf's daemonless image build against `docker build` of the same
//! binary `FROM scratch`, side by side in one run. The binary is compiled once, before any
//! timing, so both sides time image assembly only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::timed;
use anyhow::{Result, bail};
use serde::Serialize;
use wharf::pipeline::{Mode, Progress, image};

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per contender (the median is compared).
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Runs of the Dockerfile comparison (each compiles the example twice in the engine:
    /// once for wharf, once for docker build); 0 skips it.
    #[arg(long, default_value_t = 3)]
    dockerfile_runs: usize,
    /// The Rust build stage's image for the Dockerfile comparison (default: one made from
    /// this machine's toolchain).
    #[arg(long, value_name = "IMAGE")]
    rust_image: Option<String>,
}

#[derive(Serialize)]
struct Figures {
    contender: String,
    runs: usize,
    median_ms: f64,
    min_ms: f64,
}

fn figures(contender: &str, times: &mut [Duration]) -> Figures {
    times.sort();
    Figures {
        contender: contender.to_string(),
        runs: times.len(),
        median_ms: times[times.len() / 2].as_secs_f64() * 1e3,
        min_ms: times[0].as_secs_f64() * 1e3,
    }
}

fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn docker_build(context: &Path, tag: &str, no_cache: bool) -> Result<()> {
    let mut cmd = Command::new("docker");
    cmd.args(["build", "--quiet", "--tag", tag]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    let out = cmd.arg(context).env("DOCKER_BUILDKIT", "0").output()?;
    if !out.status.success() {
        bail!(
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub fn run(args: Args, session: &wharf::cli::Session) -> Result<()> {
    let runs = args.runs.max(1);
    let (plan, workspace) = wharf::cli::image_plan(session)?;
    eprintln!("compiling {} once (not timed)", plan.binary);
    let binary = workspace.build_static(&plan.package, &plan.binary)?;
    let size = std::fs::metadata(&binary)?.len();
    let scratch = tempfile::tempdir()?;
    let quiet = Progress::new(Mode::Quiet);

    let docker = docker_available();
    let context = scratch.path().join("docker-context");
    if docker {
        std::fs::create_dir_all(&context)?;
        std::fs::copy(&binary, context.join(&plan.binary))?;
        let entry = plan.entrypoint.first().cloned().unwrap_or_default();
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM scratch\nCOPY {bin} {entry}\nUSER {uid}:{gid}\nEXPOSE {ports}\nENTRYPOINT [\"{entry}\"]\n",
                bin = plan.binary,
                uid = plan.uid,
                gid = plan.gid,
                ports = plan.ports.join(" "),
            ),
        )?;
    }
    let tag = "wharf-bench/hello-service:bench";
    // [wharf cold, wharf rebuild, docker --no-cache, docker cached]. The contenders take
    // turns within each run, so a noisy neighbour slows all of them alike.
    let mut times: [Vec<Duration>; 4] = Default::default();
    for run in 0..runs {
        // Cold: a fresh layout each run, so every layer is compressed.
        let mut plan = plan.clone();
        plan.layout = scratch.path().join(format!("layout-{run}"));
        times[0].push(timed(|| {
            image::assemble(&plan, std::slice::from_ref(&binary), &quiet).map(drop)
        })?);
        // Rebuild: the same layout again; the unchanged binary layer is reused.
        times[1].push(timed(|| {
            image::assemble(&plan, std::slice::from_ref(&binary), &quiet).map(drop)
        })?);
        if docker {
            times[2].push(timed(|| docker_build(&context, tag, true))?);
            times[3].push(timed(|| docker_build(&context, tag, false))?);
        }
    }
    if docker {
        let _ = Command::new("docker")
            .args(["rmi", "--force", tag])
            .output();
    }
    let names = [
        "wharf (cold layout)",
        "wharf (rebuild, layer reused)",
        "docker build --no-cache",
        "docker build (cached)",
    ];
    let mut results: Vec<Figures> = names
        .iter()
        .zip(times.iter_mut())
        .filter(|(_, t)| !t.is_empty())
        .map(|(name, t)| figures(name, t))
        .collect();
    // Multi-platform: wharf's index, and buildx's where it runs (its figures' place in
    // `results`, or why not).
    let dir = scratch.path().join("platforms");
    std::fs::create_dir_all(&dir)?;
    let mut multi = crate::bench_platforms::measure(&plan, &binary, &dir, runs)?;
    results.push(figures(
        "wharf, index of 2 platforms (cold)",
        &mut multi.wharf,
    ));
    let wharf_index = results.len() - 1;
    let buildx = multi.buildx.map(|mut times| {
        results.push(figures("docker buildx --platform (no cache)", &mut times));
        results.len() - 1
    });
    let dockerfile = if docker && args.dockerfile_runs > 0 {
        eprintln!(
            "Dockerfile path: {} runs of wharf and docker build, cold and cached",
            args.dockerfile_runs
        );
        let mut measured = crate::bench_dockerfile::measure(
            &session.root,
            args.dockerfile_runs,
            args.rust_image.clone(),
        )?;
        let first = results.len();
        for (name, times) in measured.names.iter().zip(measured.times.iter_mut()) {
            results.push(figures(name, times));
        }
        Some(first)
    } else {
        None
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!(
        "image build of {} ({:.1} MiB binary), {runs} runs each, median:",
        plan.binary,
        size as f64 / 1048576.0
    );
    for f in &results {
        println!(
            "  {:<32} {:>9.1} ms   (min {:.1} ms)",
            f.contender, f.median_ms, f.min_ms
        );
    }
    if docker {
        println!(
            "ratio docker build --no-cache / wharf cold: {:.1}x",
            results[2].median_ms / results[0].median_ms
        );
        println!(
            "ratio docker build (cached) / wharf rebuild: {:.1}x",
            results[3].median_ms / results[1].median_ms
        );
    } else {
        println!(
            "no Docker engine answered `docker info`: docker side skipped (start dockerd to compare)"
        );
    }
    if let Some(first) = dockerfile {
        let [wharf_cold, wharf_cached, docker_cold, docker_cached] =
            [0, 1, 2, 3].map(|i| results[first + i].median_ms);
        println!(
            "ratio docker build / wharf image of examples/hello-service/Dockerfile: {:.2}x cold, {:.2}x cached",
            docker_cold / wharf_cold,
            docker_cached / wharf_cached
        );
    }
    let wharf = results[wharf_index].median_ms;
    match buildx {
        Ok(index) => println!(
            "ratio docker buildx build --platform / wharf, index of linux/amd64 and linux/arm64: {:.1}x",
            results[index].median_ms / wharf
        ),
        Err(why) => {
            println!("multi-platform: wharf's index took {wharf:.1} ms; not compared: {why}")
        }
    }
    Ok(())
}
