use anyhow::{Context, Result};
use wharf_pipeline::{Mode, Progress, image};
use wharf_source::{self as source, Workspace};

use crate::{Session, UsageError};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object (digest, reference, layout, tags, ...) on stdout.
    #[arg(long)]
    json: bool,
    /// Print the plan (tags, labels, layout) without building.
    #[arg(long)]
    dry_run: bool,
    /// With `[image] dockerfile`: build every step again instead of using the engine's
    /// cache, as `docker build --no-cache` does.
    #[arg(long)]
    no_cache: bool,
}

/// Loads the workspace and git facts, and plans the image of the session's config.
pub fn plan(session: &Session) -> Result<(image::ImagePlan, Workspace)> {
    let root = &session.root;
    let config = session.config()?;
    let workspace = Workspace::load(root)?;
    let git = source::git_facts(root)?;
    let plan = image::plan(
        &workspace,
        &git,
        config.image.as_ref(),
        &session.config_path,
    )
    .map_err(|e| UsageError(e.into()))?;
    Ok((plan, workspace))
}

pub fn run(args: Args, session: &Session) -> Result<()> {
    let (mut plan, workspace) = plan(session)?;
    if let Some(docker) = &mut plan.dockerfile {
        docker.no_cache = args.no_cache;
    }
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
            for platform in &plan.platforms {
                let binary = match &platform.binary {
                    image::BinarySource::Compile { target } => {
                        format!("cargo build --target {target}")
                    }
                    image::BinarySource::File { path } => path.display().to_string(),
                };
                println!("  {}: {binary}", platform.platform);
            }
            if let Some(docker) = &plan.dockerfile {
                println!(
                    "  built by the Docker engine from {} (context {})",
                    docker.dockerfile.display(),
                    docker.context.display()
                );
                for (name, value) in &docker.build_args {
                    println!("  build arg {name}={value}");
                }
                if let Some(target) = &docker.target {
                    println!("  target stage {target}");
                }
            }
            if plan.index {
                println!("  the tags name an OCI image index of these platforms");
            }
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
