//! `cargo xtask codegen`: the GitHub Actions workflows rendered from the pipelines and
//! `pipelines/wharf.toml` (wharf-workflow), written, or checked against the committed files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use wharf_workflow::{Matrix, Pipeline, RegistrySecrets, Report, Trigger, WorkflowSpec};

use crate::{PipelineDef, Session, UsageError};

#[derive(clap::Args)]
pub struct Args {
    /// Fail (exit 1) when the committed workflows differ from the rendering, naming each
    /// file; write nothing.
    #[arg(long)]
    check: bool,
    /// Where `.github/workflows` is written or checked (default: the workspace root).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args, session: &Session, pipelines: &[PipelineDef]) -> Result<()> {
    let spec = spec(session, pipelines)?;
    let out = args.out.as_deref().unwrap_or(&session.root);
    if args.check {
        wharf_workflow::check(out, &spec).map_err(|e| match e {
            wharf_workflow::CheckError::Spec(e) => UsageError(e.into()).into(),
            drift => anyhow::Error::from(drift),
        })?;
        eprintln!("workflows in {} are up to date", out.display());
        return Ok(());
    }
    let written = wharf_workflow::write(out, &spec).context("writing the workflows")?;
    for path in &written {
        eprintln!("wrote {}", path.display());
    }
    if written.is_empty() {
        eprintln!("workflows in {} were up to date", out.display());
    }
    Ok(())
}

/// What the workflows are made of: the pipelines (a `release` pipeline runs on version
/// tags, the others on every change), the toolchains the `[matrix]` cells need, and the
/// reports the steps write.
pub fn spec(session: &Session, pipelines: &[PipelineDef]) -> Result<WorkflowSpec> {
    let config = session.config()?;
    let matrix = config.matrix.as_ref();
    let mut toolchains = vec!["stable".to_string()];
    if let Some(matrix_config) = matrix {
        for cell in crate::matrix::planned(&session.root, matrix_config)? {
            if !toolchains.contains(&cell.toolchain) {
                toolchains.push(cell.toolchain);
            }
        }
    }
    let scan_reports = || {
        vec![
            Report::Sarif {
                file: "target/wharf/scan/advisories.sarif".into(),
                category: "rustsec".into(),
            },
            Report::Artifact {
                name: "scan".into(),
                paths: vec!["target/wharf/scan/".into()],
            },
        ]
    };
    let specs = pipelines
        .iter()
        .map(|def| {
            let trigger = if def.name == "release" {
                Trigger::Release
            } else {
                Trigger::Change
            };
            let mut pipeline = Pipeline::new(def.name, trigger);
            // The matrix runs sharded in jobs of its own.
            if matrix.is_some() && trigger == Trigger::Change {
                pipeline.args = vec!["--skip".into(), "matrix".into()];
            }
            if config.scan.is_some() {
                pipeline.reports = scan_reports();
            }
            pipeline
        })
        .collect();
    Ok(WorkflowSpec {
        pipelines: specs,
        toolchains,
        components: vec!["rustfmt".into(), "clippy".into()],
        matrix: matrix.map(|_| Matrix {
            shards: 0,
            reports: vec![
                "target/wharf/matrix/junit.xml".into(),
                "target/wharf/matrix/report.json".into(),
                "target/wharf/matrix/logs/".into(),
            ],
        }),
        cache_dir: "target/wharf/cache".into(),
        registry: config.push.as_ref().map(|_| RegistrySecrets {
            username: "WHARF_REGISTRY_USERNAME".into(),
            password: "WHARF_REGISTRY_PASSWORD".into(),
            host: None,
        }),
    })
}
