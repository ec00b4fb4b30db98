//! `cargo xtask codegen`: the GitHub Actions workflows rendered from the pipelines and
//! `pipelines/wharf.toml` (wharf-workflow), written, or checked against the committed files:
//! ci.yml, release.yml and, with `[[stages]]`, promote.yml.

use std::path::PathBuf;

use anyhow::{Context, Result};
use wharf_pipeline::config::Config;
use wharf_workflow::{
    Deploy, Matrix, Pipeline, Promotion, RegistrySecrets, Report, Stage, Trigger, WorkflowSpec,
};

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
    let config = session.config()?;
    if let (Some(file), false) = (&config.ledger.file, config.stages.is_empty()) {
        eprintln!(
            "note: no promote.yml: the ledger file {} is not shared between CI runners (remove `file` from [ledger] to keep the ledger in a git ref the workflow can push)",
            file.display()
        );
    }
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
        // `write` also removes the generated files the spec no longer renders.
        let done = if out.join(path).exists() {
            "wrote"
        } else {
            "removed"
        };
        eprintln!("{done} {}", path.display());
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
            // The release signs what it pushes with the key in this repository secret.
            if trigger == Trigger::Release
                && let Some(name) = config
                    .push
                    .as_ref()
                    .and_then(|p| p.sign.as_ref())
                    .and_then(|s| s.key_variable())
            {
                pipeline.secrets.push(name.to_string());
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
        registry: config.push.as_ref().map(|_| registry_secrets()),
        promotion: promotion(config),
    })
}

/// The repository secrets that hold the registry credentials.
fn registry_secrets() -> RegistrySecrets {
    RegistrySecrets {
        username: "WHARF_REGISTRY_USERNAME".into(),
        password: "WHARF_REGISTRY_PASSWORD".into(),
        host: None,
    }
}

/// promote.yml's stages and ledger, from `[[stages]]` and `[ledger]`. None without stages,
/// and with a ledger file: a file on one runner is lost with it, so no other job would
/// see its entries.
fn promotion(config: &Config) -> Option<Promotion> {
    if config.stages.is_empty() || config.ledger.file.is_some() {
        return None;
    }
    let stages = config
        .stages
        .iter()
        .map(|s| {
            let stage = Stage::new(&s.name, s.from.as_deref(), s.gates.approvals.is_some());
            // A Docker target runs where the job runs; manifests alone go to git.
            match s.deploy.as_ref() {
                Some(d) if d.docker.is_some() => stage.deployed(Deploy::Run),
                Some(d) if d.kubernetes.is_some() => stage.deployed(Deploy::Commit),
                _ => stage,
            }
        })
        .collect();
    let mut promotion = Promotion::new(stages);
    if let Some(remote) = &config.ledger.remote {
        promotion.ledger_remote = remote.clone();
    }
    if let Some(git_ref) = &config.ledger.git_ref {
        promotion.ledger_ref = git_ref.clone();
    }
    // Only a registry needs credentials; an OCI layout is a directory in the checkout.
    let registry = config
        .stages
        .iter()
        .any(|s| s.location.starts_with("docker://"));
    promotion.registry = registry.then(registry_secrets);
    Some(promotion)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const STAGES: &str = r#"
[[stages]]
name = "dev"
location = "oci:target/wharf/stages/dev"

[[stages]]
name = "staging"
location = "docker://ghcr.io/wharf-rs/hello-service"
from = "dev"

[[stages]]
name = "production"
location = "docker://ghcr.io/wharf-rs/hello-service"
from = "staging"
gates = { approvals = { required = 2 } }
"#;

    fn promotion_of(toml: &str) -> Option<Promotion> {
        promotion(&Config::parse(toml, Path::new("pipelines/wharf.toml")).unwrap())
    }

    #[test]
    fn the_stages_and_the_ledger_come_from_the_config() {
        let promotion = promotion_of(STAGES).unwrap();
        let stages: Vec<_> = promotion
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.from.as_deref(),
                    s.approvals,
                    s.environment.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                ("dev", None, false, None),
                ("staging", Some("dev"), false, None),
                ("production", Some("staging"), true, Some("production")),
            ]
        );
        assert_eq!(promotion.ledger_remote, "origin");
        assert_eq!(promotion.ledger_ref, "refs/wharf/ledger");
        // A stage in a registry needs the credentials.
        assert_eq!(promotion.registry, Some(registry_secrets()));

        let configured =
            format!("{STAGES}\n[ledger]\nremote = \"upstream\"\ngit_ref = \"refs/ci/ledger\"\n");
        let promotion = promotion_of(&configured).unwrap();
        assert_eq!(promotion.ledger_remote, "upstream");
        assert_eq!(promotion.ledger_ref, "refs/ci/ledger");
    }

    #[test]
    fn stages_in_oci_layouts_need_no_registry_credentials() {
        let layouts = STAGES.replace("docker://ghcr.io/wharf-rs/hello-service", "oci:target/x");
        assert_eq!(promotion_of(&layouts).unwrap().registry, None);
    }

    /// No stages: no promote.yml. A ledger file: none either, since a file on one runner
    /// is gone with it.
    #[test]
    fn no_promotion_without_stages_or_with_a_ledger_file() {
        assert_eq!(promotion_of(""), None);
        let file = format!("{STAGES}\n[ledger]\nfile = \".wharf/ledger.jsonl\"\n");
        assert_eq!(promotion_of(&file), None);
    }
}
