//! `cargo xtask ci`: a plan of steps from the config, then running them in order.

use std::fmt;

use serde::Serialize;

use crate::config::{CONFIG_PATH, Config, StepName};

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

/// The steps `cargo xtask ci` will run, in order, and those of `[ci] steps` it leaves out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Steps listed in `[ci] steps` that will not run, each with why.
    pub skipped: Vec<Skipped>,
}

/// A step of `[ci] steps` left out of the plan, and why (the section it needs is missing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// `step` when the section it needs is configured; else why it is left out, and how to
/// bring it in.
fn needs(configured: bool, step: Step, section: &str, hint: &str) -> Result<Step, Skipped> {
    if configured {
        return Ok(step);
    }
    Err(Skipped {
        name: step.name().into(),
        reason: format!("no [{section}] section in {CONFIG_PATH} ({hint})"),
    })
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
    let mut plan = Plan {
        steps: Vec::new(),
        skipped: Vec::new(),
    };
    for step in &config.ci.steps {
        let step = match step {
            // Not `--all`: that also checks path dependencies outside the workspace (a
            // repository using wharf by path would be checking wharf's formatting).
            StepName::Fmt => Ok(cargo("fmt", &["fmt", "--check"])),
            StepName::Clippy => Ok(cargo(
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
                Ok(Step::Command {
                    name: "test".into(),
                    argv,
                })
            }
            StepName::Image => needs(
                config.image.is_some(),
                Step::Image {
                    name: "image".into(),
                },
                "image",
                "add one naming the package to build",
            ),
            StepName::Scan => needs(
                config.scan.is_some(),
                Step::Scan {
                    name: "scan".into(),
                },
                "scan",
                "add one, even empty, to scan the lockfile and the image",
            ),
            StepName::Matrix => needs(
                config.matrix.is_some(),
                Step::Matrix {
                    name: "matrix".into(),
                },
                "matrix",
                "add one to run the test matrix",
            ),
            StepName::Push => {
                let push = Step::Push {
                    name: "push".into(),
                    destination: config
                        .push
                        .as_ref()
                        .map(|p| p.destination.clone())
                        .unwrap_or_default(),
                };
                needs(
                    config.image.is_some(),
                    push,
                    "image",
                    "there is no image to push",
                )
                .and_then(|push| {
                    needs(
                        config.push.is_some(),
                        push,
                        "push",
                        "add [push] destination = \"docker://HOST/REPO\" to push the image",
                    )
                })
            }
        };
        match step {
            Ok(step) => plan.steps.push(step),
            Err(skipped) => plan.skipped.push(skipped),
        }
    }
    plan
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
        for skipped in &self.skipped {
            writeln!(f, "skipped {}: {}", skipped.name, skipped.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn default_plan_without_image_has_three_steps() {
        let plan = plan(&Config::default());
        let names: Vec<_> = plan.steps.iter().map(Step::name).collect();
        assert_eq!(names, ["fmt", "clippy", "test"]);
        // Every step of the default list that needs a missing section says so.
        let skipped: Vec<_> = plan.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(skipped, ["matrix", "image", "scan", "push"]);
        assert!(
            plan.skipped[3].reason.contains("no [image] section"),
            "{:?}",
            plan.skipped[3]
        );
        assert_eq!(
            plan.to_string().lines().next().unwrap(),
            "1. fmt: cargo fmt --check"
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
        let skipped = plan(&without);
        assert!(!skipped.steps.iter().any(|s| s.name() == "push"));
        assert_eq!(
            skipped.skipped.last().unwrap(),
            &Skipped {
                name: "push".into(),
                reason: "no [push] section in pipelines/wharf.toml (add [push] destination = \"docker://HOST/REPO\" to push the image)".into(),
            }
        );
        assert!(
            skipped
                .to_string()
                .contains("skipped push: no [push] section in pipelines/wharf.toml")
        );
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
