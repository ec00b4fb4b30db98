//! The multi-platform part of `cargo xtask bench`: wharf's daemonless OCI index of
//! linux/amd64 and linux/arm64 against `docker buildx build --platform` of the same two
//! binaries `FROM scratch`, written as an OCI archive, where buildx is installed.
//!
//! Nothing is cross-compiled: the arm64 binary is the amd64 one with a byte appended. The
//! image work (two layers to compress, two manifests, the index) is the same as with a real
//! arm64 build, and each layer is new, so neither side reuses the other platform's.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use wharf::pipeline::image::{self, BinarySource, ImagePlan, PlatformPlan};
use wharf::pipeline::{Mode, Progress};

use crate::{checked, timed};

pub struct Measured {
    /// wharf, each run into a new layout.
    pub wharf: Vec<Duration>,
    /// `docker buildx build --no-cache`, or why it could not run.
    pub buildx: Result<Vec<Duration>, String>,
}

pub fn measure(plan: &ImagePlan, binary: &Path, dir: &Path, runs: usize) -> Result<Measured> {
    let amd64 = dir.join("hello-amd64");
    let arm64 = dir.join("hello-arm64");
    std::fs::copy(binary, &amd64)?;
    let mut bytes = std::fs::read(binary)?;
    bytes.push(0);
    std::fs::write(&arm64, bytes)?;
    let mut plan = plan.clone();
    plan.index = true;
    plan.platforms = [("linux/amd64", &amd64), ("linux/arm64", &arm64)]
        .map(|(platform, path)| PlatformPlan {
            platform: platform.into(),
            binary: BinarySource::File { path: path.clone() },
        })
        .to_vec();
    let binaries = [amd64.clone(), arm64.clone()];
    let entry = plan.entrypoint.first().cloned().unwrap_or_default();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nARG TARGETARCH\nCOPY hello-${{TARGETARCH}} {entry}\nUSER {}:{}\nENTRYPOINT [\"{entry}\"]\n",
            plan.uid, plan.gid
        ),
    )?;
    let buildx_installed = Command::new("docker")
        .args(["buildx", "version"])
        .output()
        .is_ok_and(|out| out.status.success());
    let buildx = |run: usize| -> Result<()> {
        checked(
            Command::new("docker")
                .args(["buildx", "build", "--quiet", "--no-cache"])
                .args(["--platform", "linux/amd64,linux/arm64", "--output"])
                .arg(format!(
                    "type=oci,dest={}",
                    dir.join(format!("buildx-{run}.tar")).display()
                ))
                .arg(dir),
        )?;
        Ok(())
    };
    let quiet = Progress::new(Mode::Quiet);
    let mut wharf = Vec::new();
    let mut buildx_times = Vec::new();
    let mut buildx_error =
        (!buildx_installed).then(|| "docker buildx is not installed".to_string());
    for run in 0..runs {
        plan.layout = dir.join(format!("layout-{run}"));
        wharf.push(timed(|| {
            image::assemble(&plan, &binaries, &quiet).map(drop)
        })?);
        if buildx_error.is_none() {
            match timed(|| buildx(run)) {
                Ok(time) => buildx_times.push(time),
                Err(e) => buildx_error = Some(format!("docker buildx build failed: {e:#}")),
            }
        }
    }
    Ok(Measured {
        wharf,
        buildx: match buildx_error {
            Some(why) => Err(why),
            None => Ok(buildx_times),
        },
    })
}
