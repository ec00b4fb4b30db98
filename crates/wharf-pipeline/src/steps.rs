//! wharf's built-in steps for cargo and the image, each a [`wharf_flow::Step`]; the scan,
//! matrix and push steps are in `wharf-cli` beside their reports.
//!
//! Each step declares what its cache key reads. The globs say which files can change the
//! step's result: rustfmt reads only Rust sources, clippy also the manifests and the
//! lockfile, and tests and the image may read any file of the workspace (fixtures,
//! `include_str!`, files copied into the image).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use wharf_flow::diagnostics::{cargo_message, test_panics};
use wharf_flow::{Context, Inputs, Output, Outputs, Step, StepError};

use crate::config::{Config, ImageConfig};
use crate::image;
use crate::progress::{Mode, Progress};

/// What a cargo step's output is read for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Diagnostics {
    None,
    /// `--message-format=json` on stdout: compiler messages become annotations, and their
    /// rendered text goes to the log.
    Compiler,
    /// Panics in the test output become annotations.
    Tests,
}

/// A cargo command as a step: fmt, clippy, test.
pub struct Cargo {
    id: String,
    args: Vec<String>,
    inputs: Inputs,
    compiles: bool,
    diagnostics: Diagnostics,
}

/// Rust sources and rustfmt's settings.
const RUST_SOURCES: &[&str] = &["**/*.rs", "**/rustfmt.toml", "**/.rustfmt.toml"];
/// What compiling reads besides the sources.
const BUILD_FILES: &[&str] = &[
    "**/Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
    "**/clippy.toml",
    "**/.clippy.toml",
    "rust-toolchain.toml",
    "rust-toolchain",
];
/// Environment that changes what cargo builds.
const BUILD_ENV: &[&str] = &["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WRAPPER"];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Cargo {
    /// `cargo fmt --check`: the workspace's members (not `--all`, which also checks path
    /// dependencies outside the workspace).
    pub fn fmt() -> Cargo {
        Cargo {
            id: "fmt".into(),
            args: strings(&["fmt", "--check"]),
            inputs: Inputs {
                files: strings(RUST_SOURCES),
                env: Vec::new(),
                git: false,
            },
            compiles: false,
            diagnostics: Diagnostics::None,
        }
    }

    /// `cargo clippy` on every target, warnings denied; its diagnostics are annotations.
    pub fn clippy() -> Cargo {
        Cargo {
            id: "clippy".into(),
            args: strings(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--message-format=json-diagnostic-rendered-ansi",
                "--",
                "-D",
                "warnings",
            ]),
            inputs: Inputs {
                files: [RUST_SOURCES, BUILD_FILES]
                    .concat()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                env: strings(BUILD_ENV),
                git: false,
            },
            compiles: true,
            diagnostics: Diagnostics::Compiler,
        }
    }

    /// `cargo test --locked ARGS`; tests may read any file, so every file is an input.
    pub fn test(args: &[String]) -> Cargo {
        let mut all = strings(&["test", "--locked"]);
        all.extend(args.iter().cloned());
        Cargo {
            id: "test".into(),
            args: all,
            inputs: Inputs {
                files: strings(&["**"]),
                env: strings(BUILD_ENV),
                git: false,
            },
            compiles: true,
            diagnostics: Diagnostics::Tests,
        }
    }

    fn program() -> String {
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
    }

    fn command_line(&self) -> String {
        format!("cargo {}", self.args.join(" "))
    }
}

impl Cargo {
    /// Runs the command with its JSON messages piped back (duct): each message's rendered
    /// text goes to the log and its place becomes an annotation; stderr goes to the log.
    fn compiler_messages(&self, cx: &mut Context<'_>) -> std::io::Result<std::process::ExitStatus> {
        let jobserver = cx.jobserver().cloned();
        let reader = duct::cmd(Self::program(), &self.args)
            .dir(cx.root())
            .stdin_null()
            .stderr_file(cx.log().try_clone()?)
            .before_spawn(move |command| {
                if let Some(jobserver) = &jobserver {
                    jobserver.configure(command);
                }
                Ok(())
            })
            .unchecked()
            .reader()?;
        let root = cx.root().to_path_buf();
        for line in BufReader::new(&reader).lines() {
            let line = line?;
            match cargo_message(&line, &root) {
                Some(message) => {
                    if let Some(rendered) = &message.rendered {
                        cx.log().write_all(rendered.as_bytes())?;
                    }
                    cx.annotate(message.annotation);
                }
                // Other JSON (artifacts, build-finished) is for machines only.
                None if line.starts_with('{') => {}
                None => writeln!(cx.log(), "{line}")?,
            }
        }
        let output = reader.try_wait()?.expect("the output was read to its end");
        Ok(output.status)
    }
}

impl Step for Cargo {
    fn id(&self) -> &str {
        &self.id
    }

    fn argv(&self) -> Vec<String> {
        std::iter::once("cargo".to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    fn describe(&self) -> String {
        self.command_line()
    }

    fn inputs(&self) -> Option<Inputs> {
        Some(self.inputs.clone())
    }

    fn uses_compiler(&self) -> bool {
        self.compiles
    }

    /// cargo's build directory for dev builds: clippy and the tests would only wait for
    /// each other on it, silently.
    fn lock(&self) -> Option<String> {
        self.compiles
            .then(|| "cargo build directory (dev)".to_string())
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let mut command = cx.command(Self::program());
        command.args(&self.args);
        let failed =
            |e: std::io::Error| StepError::new(format!("starting `{}`: {e}", self.command_line()));
        let status = match self.diagnostics {
            Diagnostics::Compiler => self.compiler_messages(cx).map_err(failed)?,
            Diagnostics::Tests | Diagnostics::None => command.status().map_err(failed)?,
        };
        if self.diagnostics == Diagnostics::Tests {
            let log = std::fs::read_to_string(cx.log_path()).unwrap_or_default();
            for annotation in test_panics(&log, cx.root()) {
                cx.annotate(annotation);
            }
        }
        if !status.success() {
            return Err(StepError::new(format!(
                "`{}` exited with {status}",
                self.command_line()
            )));
        }
        Ok(Outputs::new())
    }
}

/// Builds the `[image]` into its OCI layout: outputs `digest`, `reference`, `tags`,
/// `layout` and `created` (the image's timestamp, for the SBOM).
pub struct ImageStep {
    config: ImageConfig,
    config_path: PathBuf,
    /// The config's path as shown (and keyed): relative to the workspace root when inside
    /// it, so that the key does not depend on where the repository is checked out.
    shown: String,
}

impl ImageStep {
    /// The step for the config's `[image]`; `None` without one.
    pub fn new(config: &Config, config_path: &Path, root: &Path) -> Option<ImageStep> {
        let shown = config_path
            .strip_prefix(root)
            .unwrap_or(config_path)
            .display()
            .to_string();
        Some(ImageStep {
            config: config.image.clone()?,
            config_path: config_path.to_path_buf(),
            shown,
        })
    }
}

/// What decides the image's tags and timestamps besides git (see wharf-tag).
pub const IMAGE_ENV: &[&str] = &[
    "SOURCE_DATE_EPOCH",
    "WHARF_BRANCH",
    "WHARF_BUILD_NUMBER",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "GITHUB_REF_TYPE",
    "GITHUB_RUN_NUMBER",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_TAG",
];

impl Step for ImageStep {
    fn id(&self) -> &str {
        "image"
    }

    fn argv(&self) -> Vec<String> {
        vec![
            "wharf-image".into(),
            self.config.package.clone(),
            self.shown.clone(),
        ]
    }

    fn describe(&self) -> String {
        format!("build the [image] of {} into its OCI layout", self.shown)
    }

    fn inputs(&self) -> Option<Inputs> {
        Some(Inputs {
            files: strings(&["**"]),
            env: [IMAGE_ENV, BUILD_ENV]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            git: true,
        })
    }

    fn uses_compiler(&self) -> bool {
        true
    }

    fn lock(&self) -> Option<String> {
        Some("cargo build directory (release)".into())
    }

    /// A cached image counts only while its layout still holds the tag, at the digest.
    fn still_valid(&self, outputs: &Outputs) -> bool {
        let (Some(Output::Path(layout)), Some(Output::Tags(tags)), Some(Output::Digest(digest))) = (
            outputs.get("layout"),
            outputs.get("tags"),
            outputs.get("digest"),
        ) else {
            return false;
        };
        let Some(tag) = tags.first() else {
            return false;
        };
        wharf_oci::Layout::open(layout)
            .and_then(|layout| layout.resolve(tag))
            .is_ok_and(|descriptor| descriptor.digest.to_string() == *digest)
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let error = |e: &dyn std::fmt::Display| StepError::new(e.to_string());
        let root = cx.root().to_path_buf();
        let workspace = wharf_source::Workspace::load(&root).map_err(|e| error(&e))?;
        let git = wharf_source::git_facts(&root).map_err(|e| error(&e))?;
        let plan = image::plan(&workspace, &git, Some(&self.config), &self.config_path)
            .map_err(|e| error(&e))?;
        let quiet = Progress::new(Mode::Quiet);
        let outcome = match plan.dockerfile {
            // The builder's lines go to the step's log, as cargo's do.
            Some(_) => image::build_dockerfile(&plan, &quiet, |line| {
                let _ = writeln!(cx.log(), "{line}");
            }),
            None => image::build_with(&plan, &workspace, &quiet, |cmd| cx.attach(cmd)),
        }
        .map_err(|e| error(&e))?;
        let _ = writeln!(cx.log(), "{}\n{}", outcome.reference, outcome.digest);
        Ok(Outputs::from([
            (
                "digest".to_string(),
                Output::Digest(outcome.digest.to_string()),
            ),
            (
                "reference".to_string(),
                Output::Reference(outcome.reference.clone()),
            ),
            ("tags".to_string(), Output::Tags(outcome.tags.clone())),
            ("layout".to_string(), Output::Path(outcome.layout.clone())),
            (
                "created".to_string(),
                Output::Count(plan.created.max(0) as u64),
            ),
        ]))
    }
}
