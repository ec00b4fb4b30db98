//! `cargo xtask ci`, `cargo xtask release`: a pipeline of steps (wharf-flow), planned from
//! facts gathered once, run in parallel within the cores, cached, and reported to the
//! terminal, as JSON lines, or to GitHub Actions.

use std::sync::Arc;

use anyhow::{Result, bail};
use serde::Serialize;
use wharf_flow::report::{self, GitHubFiles};
use wharf_flow::{Cache, Facts, Pipeline, RunOptions};
use wharf_pipeline::ci::Skipped;

use crate::{Session, UsageError};

#[derive(clap::Args)]
pub struct Args {
    /// Print the plan (steps, needs, cache keys) without running anything.
    #[arg(long)]
    dry_run: bool,
    /// One JSON object per line on stdout: each step planned, started and finished (outcome,
    /// duration, cache hit, outputs); with --dry-run, the plan.
    #[arg(long)]
    json: bool,
    /// Never fetch or update the advisory database (also: CARGO_NET_OFFLINE=true).
    #[arg(long)]
    offline: bool,
    /// Run every step, even those whose inputs are unchanged since a recorded run.
    #[arg(long)]
    no_cache: bool,
    /// Leave this step out (and out of the needs of the others), e.g. the matrix when CI
    /// runs its shards in jobs of their own. Repeatable.
    #[arg(long, value_name = "STEP")]
    skip: Vec<String>,
    /// Steps running at once (default: the cores).
    #[arg(long, value_name = "N")]
    parallel: Option<usize>,
}

/// A pipeline and the steps of `[ci] steps` it leaves out (with why).
pub type Composed = (Pipeline, Vec<Skipped>);

/// A pipeline this command line runs: its name (the subcommand) and how it is composed
/// from the session's config.
pub struct PipelineDef {
    pub name: &'static str,
    pub about: &'static str,
    pub compose: fn(&Arc<Session>) -> Result<Composed>,
}

/// wharf's own pipelines: `ci` from `[ci] steps`, `release` that and the push.
pub fn builtin() -> Vec<PipelineDef> {
    vec![
        PipelineDef {
            name: "ci",
            about: "Run the CI pipeline: the [ci] steps of pipelines/wharf.toml (fmt, clippy, test, matrix, image, scan, push), in parallel, cached",
            compose: crate::steps::ci,
        },
        PipelineDef {
            name: "release",
            about: "Run the release pipeline: the CI steps, then push the image to [push] destination",
            compose: crate::steps::release,
        },
    ]
}

#[derive(Serialize)]
struct DryRun<'a> {
    #[serde(flatten)]
    plan: &'a wharf_flow::Plan,
    skipped: &'a [Skipped],
}

pub fn run(def: &PipelineDef, args: Args, session: &Arc<Session>) -> Result<()> {
    let (pipeline, skipped) = (def.compose)(session)?;
    for id in &args.skip {
        if !pipeline.steps.iter().any(|s| s.id() == id) {
            return Err(crate::usage(format!(
                "--skip {id}: pipeline {} has no step {id} (its steps: {})",
                def.name,
                pipeline
                    .steps
                    .iter()
                    .map(|s| s.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let pipeline = pipeline.without(&args.skip);
    // The image plan checks what the config names (package, binary, base) before any step
    // runs, so a typo fails in seconds, in --dry-run too, not after the tests.
    if pipeline.steps.iter().any(|s| s.id() == "image") {
        crate::image::plan(session)?;
    }
    let facts = Facts::gather(&session.root, pipeline.env_names())?;
    let plan = wharf_flow::plan(&pipeline, &facts).map_err(|e| UsageError(e.into()))?;
    if args.dry_run {
        if args.json {
            let dry = DryRun {
                plan: &plan,
                skipped: &skipped,
            };
            crate::stdout(&format!("{}\n", serde_json::to_string_pretty(&dry)?))?;
        } else {
            let mut text = plan.to_string();
            for s in &skipped {
                text.push_str(&format!("skipped {}: {}\n", s.name, s.reason));
            }
            crate::stdout(&text)?;
        }
        return Ok(());
    }
    for s in &skipped {
        eprintln!("==> skipped {}: {}", s.name, s.reason);
    }
    if pipeline.steps.iter().any(|s| s.id() == "scan") {
        crate::scan::prepare_db_for_ci(session, args.offline)?;
    }
    // The signing key is read now, not after the push: a missing secret or a wrong password
    // then fails the run before anything is built or pushed.
    if pipeline.steps.iter().any(|s| s.id() == "sign")
        && let Some(sign) = session
            .config()?
            .push
            .as_ref()
            .and_then(|p| p.sign.as_ref())
    {
        crate::sign::signing_key(session, sign)?;
    }
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let reporter = report::choose(args.json, github, &session.root, GitHubFiles::from_env());
    let mut options = RunOptions::new(&facts);
    options.cache = (!args.no_cache).then(|| Cache::new(Cache::dir_for(&session.root)));
    if let Some(parallel) = args.parallel {
        options.parallel = parallel.max(1);
    }
    let summary = wharf_flow::run(&pipeline, &plan, &facts, options, &*reporter)?;
    if !summary.ok {
        let failed: Vec<&str> = summary
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, wharf_flow::Outcome::Failed { .. }))
            .map(|s| s.id.as_str())
            .collect();
        bail!(
            "pipeline {} failed: {} (logs in target/wharf/logs)",
            def.name,
            failed.join(", ")
        );
    }
    Ok(())
}
