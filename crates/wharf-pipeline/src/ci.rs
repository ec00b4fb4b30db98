//! `cargo xtask ci`: a plan of steps from the config, then running them in order.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::config::{Config, StepName};

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    /// Run a command in the workspace root.
    Command {
        name: String,
        argv: Vec<String>,
    },
    /// Build the configured image into its layout.
    Image {
        name: String,
    },
    /// Scan the built image and the lockfile, then apply the policy gate.
    Scan {
        name: String,
    },
    /// Push the built image to the configured registry.
    Push {
        name: String,
        destination: String,
    },
    Matrix {
        name: String,
    },
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::Command { name, .. }
            | Step::Image { name }
            | Step::Scan { name }
            | Step::Push { name, .. }
            | Step::Matrix { name } => name,
        }
    }
}

/// The steps `cargo xtask ci` will run, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// Turns the config into a plan. Pure: nothing runs.
pub fn plan(config: &Config) -> Plan {
    let cargo = |name: &str, args: &[&str]| Step::Command {
        name: name.to_string(),
        argv: std::iter::once("cargo")
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect(),
    };
    let steps = config
        .ci
        .steps
        .iter()
        .filter_map(|step| match step {
            StepName::Fmt => Some(cargo("fmt", &["fmt", "--all", "--check"])),
            StepName::Clippy => Some(cargo(
                "clippy",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
            )),
            StepName::Test => {
                let mut argv = vec!["cargo".to_string(), "test".to_string(), "--locked".into()];
                argv.extend(config.ci.test_args.iter().cloned());
                Some(Step::Command {
                    name: "test".into(),
                    argv,
                })
            }
            // No [image] section: nothing to build, so the step is left out of the plan.
            StepName::Image => config.image.as_ref().map(|_| Step::Image {
                name: "image".into(),
            }),
            // No [scan] section: no advisory database is known, so no scan step.
            StepName::Scan => config.scan.as_ref().map(|_| Step::Scan {
                name: "scan".into(),
            }),
            // No registry configured: the embedded layout is the end of the line.
            StepName::Matrix => config.matrix.as_ref().map(|_| Step::Matrix {
                name: "matrix".into(),
            }),
            StepName::Push => match (&config.image, &config.push) {
                (Some(_), Some(push)) => Some(Step::Push {
                    name: "push".into(),
                    destination: push.destination.clone(),
                }),
                _ => None,
            },
        })
        .collect();
    Plan { steps }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Command { name, argv } => {
                    writeln!(f, "{}. {name}: {}", i + 1, argv.join(" "))?
                }
                Step::Image { name } => writeln!(
                    f,
                    "{}. {name}: build the [image] of pipelines/wharf.toml into its OCI layout",
                    i + 1
                )?,
                Step::Scan { name } => writeln!(
                    f,
                    "{}. {name}: SBOM, RustSec advisories, image checks, then the [scan] policy gate",
                    i + 1
                )?,
                Step::Matrix { name } => writeln!(
                    f,
                    "{}. {name}: the [matrix] cells (cargo xtask matrix --dry-run lists them)",
                    i + 1
                )?,
                Step::Push { name, destination } => writeln!(
                    f,
                    "{}. {name}: push every tag of the image to {destination}",
                    i + 1
                )?,
            }
        }
        Ok(())
    }
}

/// Runs a command step with inherited stderr; its stdout goes to our stderr so that our
/// stdout carries only results.
pub fn run_command(root: &Path, argv: &[String]) -> Result<(), String> {
    let (program, args) = argv.split_first().expect("steps have a program");
    let program = if program == "cargo" {
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
    } else {
        program.clone()
    };
    let status = Command::new(&program)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", argv.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_without_image_has_three_steps() {
        let plan = plan(&Config::default());
        let names: Vec<_> = plan.steps.iter().map(Step::name).collect();
        assert_eq!(names, ["fmt", "clippy", "test"]);
        assert_eq!(
            plan.to_string().lines().next().unwrap(),
            "1. fmt: cargo fmt --all --check"
        );
    }

    #[test]
    fn test_args_come_from_config() {
        let config = Config::parse(
            "[image]\npackage = \"x\"\n[ci]\nsteps = [\"test\", \"image\"]\ntest_args = [\"--workspace\", \"--exclude\", \"e2e\"]\n",
            Path::new("x"),
        )
        .unwrap();
        let plan = plan(&config);
        assert_eq!(
            plan.steps[0],
            Step::Command {
                name: "test".into(),
                argv: [
                    "cargo",
                    "test",
                    "--locked",
                    "--workspace",
                    "--exclude",
                    "e2e"
                ]
                .map(String::from)
                .to_vec()
            }
        );
        assert_eq!(plan.steps[1].name(), "image");
    }

    #[test]
    fn push_step_only_when_a_registry_is_configured() {
        let without = Config::parse("[image]\npackage = \"x\"\n", Path::new("x")).unwrap();
        assert!(!plan(&without).steps.iter().any(|s| s.name() == "push"));
        let with = Config::parse(
            "[image]\npackage = \"x\"\n[push]\ndestination = \"docker://localhost:5000/x\"\n",
            Path::new("x"),
        )
        .unwrap();
        let plan = plan(&with);
        assert_eq!(plan.steps.last().unwrap().name(), "push");
        assert!(
            plan.to_string()
                .contains("5. push: push every tag of the image to docker://localhost:5000/x")
        );
    }

    #[test]
    fn scan_step_only_when_scan_is_configured_and_before_push() {
        let without = Config::parse("[image]\npackage = \"x\"\n", Path::new("x")).unwrap();
        assert!(!plan(&without).steps.iter().any(|s| s.name() == "scan"));
        let with = Config::parse(
            "[image]\npackage = \"x\"\n[scan]\n[push]\ndestination = \"docker://localhost:5000/x\"\n",
            Path::new("x"),
        )
        .unwrap();
        let names: Vec<_> = plan(&with)
            .steps
            .iter()
            .map(|s| s.name().to_string())
            .collect();
        assert_eq!(names, ["fmt", "clippy", "test", "image", "scan", "push"]);
    }
}
