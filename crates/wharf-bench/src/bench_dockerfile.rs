//! The Dockerfile path of `cargo xtask bench`: `cargo xtask image` building
//! examples/hello-service/Dockerfile through the Docker engine (bollard, then the export into
//! the OCI layout) against `docker build` of the same Dockerfile and context, both with the
//! classic builder, as whole processes. Cold: `--no-cache` on both sides, so the Rust stage
//! compiles; cached: built again at once, every step cached. The point is equal behaviour
//! (about 1x), not speed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{checked, timed};

/// The Rust build stage's image when none is given: made from this machine's toolchain by
/// the e2e tests' script (no image can be pulled here).
const DEFAULT_RUST_IMAGE: &str = "wharf-bench/rust-builder:latest";
const DOCKER_TAG: &str = "wharf-bench/hello-dockerfile:docker";
const REPOSITORY: &str = "wharf-bench/hello-dockerfile";

/// Median times of [wharf cold, wharf cached, docker cold, docker cached].
pub struct Measured {
    pub names: [&'static str; 4],
    pub times: [Vec<Duration>; 4],
}

pub fn measure(root: &Path, runs: usize, rust_image: Option<String>) -> Result<Measured> {
    let rust_image = match rust_image {
        Some(image) => image,
        None => default_rust_image(root)?,
    };
    let scratch = tempfile::tempdir()?;
    let config = scratch.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[image]\npackage = \"hello-service\"\nrepository = \"{REPOSITORY}\"\nlayout = \"{}\"\ndockerfile = \"examples/hello-service/Dockerfile\"\nbuild_args = {{ RUST_IMAGE = \"{rust_image}\" }}\n",
            scratch.path().join("layout").display()
        ),
    )?;
    let xtask = std::env::current_exe().context("finding this xtask binary")?;
    let wharf = |no_cache: bool| -> Result<String> {
        let mut command = Command::new(&xtask);
        command.args(["image", "--json", "--config"]).arg(&config);
        if no_cache {
            command.arg("--no-cache");
        }
        let out = checked(command.env("WHARF_WORKSPACE", root))?;
        let built: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(format!(
            "{REPOSITORY}:{}",
            built["tags"][0].as_str().unwrap_or_default()
        ))
    };
    let docker = |no_cache: bool| -> Result<()> {
        let mut command = Command::new("docker");
        command.arg("build");
        if no_cache {
            command.arg("--no-cache");
        }
        checked(
            command
                .args(["--quiet", "--file", "examples/hello-service/Dockerfile"])
                .args(["--build-arg", &format!("RUST_IMAGE={rust_image}")])
                .args(["--tag", DOCKER_TAG, "."])
                .current_dir(root)
                // The classic builder, as wharf's engine builds use.
                .env("DOCKER_BUILDKIT", "0"),
        )?;
        Ok(())
    };
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut engine_name = String::new();
    for _ in 0..runs {
        times[0].push(timed(|| wharf(true).map(|name| engine_name = name))?);
        times[1].push(timed(|| wharf(false).map(drop))?);
        times[2].push(timed(|| docker(true))?);
        times[3].push(timed(|| docker(false))?);
    }
    for name in [engine_name.as_str(), DOCKER_TAG] {
        let _ = Command::new("docker")
            .args(["rmi", "--force", name])
            .output();
    }
    Ok(Measured {
        names: [
            "wharf image, Dockerfile (cold)",
            "wharf image, Dockerfile (cached)",
            "docker build (cold)",
            "docker build (cached)",
        ],
        times,
    })
}

/// [`DEFAULT_RUST_IMAGE`], made by the e2e fixture script when the engine lacks it.
fn default_rust_image(root: &Path) -> Result<String> {
    let present = Command::new("docker")
        .args(["image", "inspect", DEFAULT_RUST_IMAGE])
        .output()
        .is_ok_and(|out| out.status.success());
    if !present {
        let script: PathBuf = root.join("crates/wharf-e2e/tests/fixtures/rust-builder.sh");
        eprintln!("making {DEFAULT_RUST_IMAGE} from this machine's toolchain (not timed)");
        checked(Command::new("bash").arg(&script).arg(DEFAULT_RUST_IMAGE))?;
    }
    Ok(DEFAULT_RUST_IMAGE.to_string())
}
