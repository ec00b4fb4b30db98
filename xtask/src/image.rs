use anyhow::{Context, Result};
use wharf::pipeline::{Config, Mode, Progress, config::CONFIG_PATH, image};
use wharf::source::{self, Workspace};

use crate::{UsageError, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object (digest, reference, layout, tags, ...) on stdout.
    #[arg(long)]
    json: bool,
    /// Print the plan (tags, labels, layout) without building.
    #[arg(long)]
    dry_run: bool,
}

/// The pipeline config of this repository.
pub fn config() -> Result<Config> {
    Ok(Config::load(&workspace_root()).map_err(|e| UsageError(e.into()))?)
}

/// Loads config, workspace and git facts, and plans the image.
pub fn plan() -> Result<(image::ImagePlan, Workspace)> {
    let root = workspace_root();
    let config = Config::load(&root).map_err(|e| UsageError(e.into()))?;
    let workspace = Workspace::load(&root)?;
    let git = source::git_facts(&root)?;
    let plan = image::plan(
        &workspace,
        &git,
        config.image.as_ref(),
        &root.join(CONFIG_PATH),
    )
    .map_err(|e| UsageError(e.into()))?;
    Ok((plan, workspace))
}

pub fn run(args: Args) -> Result<()> {
    let (plan, workspace) = plan()?;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!(
                "would build {} into {}",
                plan.repository,
                plan.layout.display()
            );
            println!("  tags: {}", plan.tags.join(", "));
            for (key, value) in &plan.labels {
                println!("  label {key}={value}");
            }
        }
        return Ok(());
    }
    let progress = Progress::new(if args.json {
        Mode::Plain
    } else {
        Mode::detect()
    });
    let outcome = image::build(&plan, &workspace, &progress).context("building the image")?;
    print_outcome(&outcome, args.json)
}

pub fn print_outcome(outcome: &image::ImageOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
    } else {
        println!("{}", outcome.reference);
        println!("{}", outcome.digest);
    }
    Ok(())
}
