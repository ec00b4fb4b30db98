//! This repository's pipelines, composed in Rust: wharf's `ci` and `release` (the steps of
//! `[ci] steps` in `pipelines/wharf.toml`), each with one step of this repository's own: the
//! generated GitHub workflows are up to date. `xtask/src/main.rs` hands them to the command
//! line, where they are `cargo xtask ci` and `cargo xtask release`.

use std::sync::Arc;

use wharf::cli::{Composed, PipelineDef, Session};
use wharf::flow::{Context, Inputs, Outputs, Step, StepError};

/// The pipelines of this repository.
pub fn all() -> Vec<PipelineDef> {
    vec![
        PipelineDef {
            name: "ci",
            about: "Run the CI pipeline: the [ci] steps of pipelines/wharf.toml and the workflows check, in parallel, cached",
            compose: |session| with_workflows(wharf::cli::steps::ci(session)?, session),
        },
        PipelineDef {
            name: "release",
            about: "Run the release pipeline: the CI steps, then push the image to [push] destination",
            compose: |session| with_workflows(wharf::cli::steps::release(session)?, session),
        },
    ]
}

/// Adds the workflows check where there are workflows to check: this repository's pipelines
/// also run on other workspaces (`--workspace`, the tests' fixtures), which have none.
fn with_workflows(
    (pipeline, skipped): Composed,
    session: &Arc<Session>,
) -> anyhow::Result<Composed> {
    if !session.root.join(wharf::workflow::WORKFLOWS_DIR).is_dir() {
        return Ok((pipeline, skipped));
    }
    let step = WorkflowsUpToDate {
        session: session.clone(),
    };
    let mut pipeline = pipeline.step(step);
    // The ledger's verification entry still comes last, after this check too.
    wharf::cli::steps::add_record(session, session.config()?, &mut pipeline);
    Ok((pipeline, skipped))
}

/// `.github/workflows` is what `cargo xtask codegen` renders from these pipelines and the
/// config: a workflow edited by hand, or a config change without a new rendering, fails CI.
struct WorkflowsUpToDate {
    session: Arc<Session>,
}

impl Step for WorkflowsUpToDate {
    fn id(&self) -> &str {
        "workflows"
    }

    fn argv(&self) -> Vec<String> {
        ["cargo", "xtask", "codegen", "--check"]
            .map(String::from)
            .to_vec()
    }

    fn describe(&self) -> String {
        "the generated GitHub workflows are up to date".into()
    }

    fn inputs(&self) -> Option<Inputs> {
        Some(Inputs {
            files: vec![
                ".github/workflows/**".into(),
                "pipelines/**".into(),
                "**/Cargo.toml".into(),
            ],
            env: Vec::new(),
            git: false,
        })
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let spec = wharf::cli::codegen::spec(&self.session, &all())
            .map_err(|e| StepError::new(format!("{e:#}")))?;
        wharf::workflow::check(cx.root(), &spec).map_err(|e| StepError::new(e.to_string()))?;
        Ok(Outputs::new())
    }
}
