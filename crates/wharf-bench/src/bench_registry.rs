//! `cargo xtask bench-registry`: wharf against skopeo on a real registry (started here on
//! loopback): pushing a 1 GiB image of 4 layers from an OCI layout, and copying it between
//! two repositories of the same registry. Both run as processes under `/usr/bin/time`, which
//! reports their peak RSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::loopback::{make_image, start_registry};

#[derive(clap::Args)]
pub struct Args {
    /// Size of each of the 4 layers, in MiB.
    #[arg(long, default_value_t = 256)]
    layer_mib: u64,
    /// Runs per contender.
    #[arg(long, default_value_t = 2)]
    runs: usize,
}

struct Measured {
    seconds: f64,
    peak_rss_mib: f64,
    stdout: String,
}

/// Runs a command under `/usr/bin/time` for wall time and peak RSS.
fn measure(program: &Path, args: &[String]) -> Result<Measured> {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("WHARF_BENCH_RSS_KB=%M")
        .arg(program)
        .args(args)
        .output()
        .context("running /usr/bin/time (Debian package `time`)")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{} {} failed: {stderr}", program.display(), args.join(" "));
    }
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("WHARF_BENCH_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    Ok(Measured {
        seconds,
        peak_rss_mib: kb / 1024.0,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(args: Args) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let layout: PathBuf = scratch.path().join("layout");
    eprintln!(
        "writing a {} MiB image of 4 layers (not timed)",
        4 * args.layer_mib
    );
    make_image(&layout, args.layer_mib, 0)?;
    let wharf = std::env::current_exe()?;
    let skopeo = PathBuf::from("skopeo");
    let source = format!("oci:{}:bench", layout.display());
    let (mut push_w, mut push_s, mut rss_w, mut rss_s) = (vec![], vec![], vec![], vec![]);
    let (mut copy_w, mut copy_s) = (vec![], vec![]);
    let mut copied_bytes = 0u64;
    for _ in 0..args.runs.max(1) {
        // A fresh registry per contender and run: no blob is anywhere yet, so nothing can
        // be skipped or mounted (skopeo remembers where it pushed blobs and would mount
        // them from an earlier run's repository).
        for contender in ["wharf", "skopeo"] {
            let registry = start_registry()?;
            let host = registry.host.clone();
            let pushed = format!("docker://{host}/{contender}/app:v1");
            let copied = format!("docker://{host}/{contender}-copy/app:v1");
            if contender == "wharf" {
                let w = measure(
                    &wharf,
                    &[
                        "copy".into(),
                        source.clone(),
                        pushed.clone(),
                        "--json".into(),
                    ],
                )?;
                push_w.push(w.seconds);
                rss_w.push(w.peak_rss_mib);
                let w = measure(&wharf, &["copy".into(), pushed, copied, "--json".into()])?;
                copy_w.push(w.seconds);
                let report: serde_json::Value = serde_json::from_str(&w.stdout)?;
                copied_bytes += report["bytes_uploaded"].as_u64().unwrap_or(u64::MAX);
            } else {
                let tls = [
                    "--src-tls-verify=false".to_string(),
                    "--dest-tls-verify=false".to_string(),
                ];
                let s = measure(
                    &skopeo,
                    &[
                        "copy".into(),
                        "--quiet".into(),
                        tls[1].clone(),
                        source.clone(),
                        pushed.clone(),
                    ],
                )?;
                push_s.push(s.seconds);
                rss_s.push(s.peak_rss_mib);
                let s = measure(
                    &skopeo,
                    &[
                        "copy".into(),
                        "--quiet".into(),
                        tls[0].clone(),
                        tls[1].clone(),
                        pushed,
                        copied,
                    ],
                )?;
                copy_s.push(s.seconds);
            }
        }
    }
    let (pw, ps, cw, cs) = (
        median(push_w),
        median(push_s),
        median(copy_w),
        median(copy_s),
    );
    println!(
        "image of 4 x {} MiB, {} runs, medians, a fresh loopback registry per run:",
        args.layer_mib, args.runs
    );
    println!(
        "  push from layout: wharf {pw:.2} s (peak RSS {:.0} MiB), skopeo {ps:.2} s (peak RSS {:.0} MiB): wharf/skopeo = {:.2}x",
        median(rss_w),
        median(rss_s),
        pw / ps
    );
    println!(
        "  copy between repositories: wharf {cw:.2} s, skopeo {cs:.2} s: wharf/skopeo = {:.2}x; wharf uploaded {copied_bytes} blob bytes",
        cw / cs
    );
    Ok(())
}
