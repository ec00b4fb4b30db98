use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use wharf_pipeline::{Mode, Progress, ci, image};

use crate::Session;

#[derive(clap::Args)]
pub struct Args {
    /// Print the steps without running them.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object with each step's result (and the image) on stdout.
    #[arg(long)]
    json: bool,
    /// Never fetch or update the advisory database (also: CARGO_NET_OFFLINE=true).
    #[arg(long)]
    offline: bool,
}

#[derive(Serialize)]
struct StepReport {
    name: String,
    ok: bool,
    seconds: f64,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    steps: Vec<StepReport>,
    skipped: Vec<ci::Skipped>,
    image: Option<image::ImageOutcome>,
    push: Option<wharf_pipeline::copy::CopyReport>,
    scan: Option<wharf_pipeline::scan::ScanOutcome>,
    matrix: Option<wharf_matrix_run::Report>,
}

pub fn run(args: Args, session: &Session) -> Result<()> {
    let root = &session.root;
    let config = session.config()?;
    let plan = ci::plan(config);
    // The image plan checks what the config names (package, binary, base) before any
    // step runs, so a typo fails in seconds, and in --dry-run too, not after the tests.
    let image_plan = plan
        .steps
        .iter()
        .any(|s| matches!(s, ci::Step::Image { .. }))
        .then(|| crate::image::plan(session))
        .transpose()?;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{plan}");
        }
        return Ok(());
    }
    let progress = Progress::new(if args.json {
        Mode::Plain
    } else {
        Mode::detect()
    });
    for skipped in &plan.skipped {
        eprintln!("==> skipped {}: {}", skipped.name, skipped.reason);
    }
    let mut report = Report {
        ok: true,
        steps: Vec::new(),
        skipped: plan.skipped.clone(),
        image: None,
        push: None,
        scan: None,
        matrix: None,
    };
    if plan
        .steps
        .iter()
        .any(|step| matches!(step, ci::Step::Scan { .. }))
    {
        crate::scan::prepare_db_for_ci(session, args.offline)?;
    }
    let mut failure = None;
    let mut scanned = None;
    for step in &plan.steps {
        let started = Instant::now();
        let result = match step {
            ci::Step::Command { name, argv } => {
                // Cargo shows its own progress, so no spinner over it.
                eprintln!("==> {name}: {}", argv.join(" "));
                ci::run_command(root, argv).map_err(anyhow::Error::msg)
            }
            ci::Step::Image { .. } => {
                let (plan, workspace) = image_plan.as_ref().expect("planned above");
                image::build(plan, workspace, &progress)
                    .map(|outcome| report.image = Some(outcome))
                    .map_err(anyhow::Error::from)
            }
            ci::Step::Matrix { .. } => crate::matrix::ci_step(session).map(|matrix| {
                report.matrix = Some(matrix);
            }),
            ci::Step::Scan { .. } => crate::scan::ci_step(session).map(|(outcome, plan)| {
                report.scan = Some(outcome);
                scanned = Some(plan);
            }),
            ci::Step::Push { destination, .. } => {
                eprintln!("==> push: {destination}");
                crate::push::push_to(session, destination, args.json, Vec::new()).and_then(
                    |pushed| {
                        // The scan results travel with the image they describe.
                        if let (Some(outcome), Some(plan), Some(digest)) =
                            (&report.scan, &scanned, &pushed.digest)
                        {
                            push_attachments(
                                session,
                                destination,
                                digest,
                                outcome,
                                plan,
                                args.json,
                            )?;
                        }
                        report.push = Some(pushed);
                        Ok(())
                    },
                )
            }
        };
        report.steps.push(StepReport {
            name: step.name().to_string(),
            ok: result.is_ok(),
            seconds: started.elapsed().as_secs_f64(),
        });
        if let Err(e) = result {
            report.ok = false;
            failure = Some(format!("step {} failed: {e:#}", step.name()));
            break;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for step in &report.steps {
            eprintln!(
                "{:>6} {} ({:.1}s)",
                if step.ok { "ok" } else { "FAILED" },
                step.name,
                step.seconds
            );
        }
        if let Some(outcome) = &report.image {
            crate::image::print_outcome(outcome, false)?;
        }
    }
    match failure {
        Some(message) => bail!(message),
        None => Ok(()),
    }
}

/// Attaches the scan's SBOM and report to the image just pushed to `destination`.
fn push_attachments(
    session: &Session,
    destination: &str,
    digest: &wharf_oci::Digest,
    outcome: &wharf_pipeline::scan::ScanOutcome,
    plan: &wharf_pipeline::scan::ScanPlan,
    json: bool,
) -> Result<()> {
    let wharf_oci::Location::Registry(repository) = crate::copy::parse(destination)? else {
        bail!("push destination {destination} is not a registry");
    };
    let insecure = session
        .config()?
        .push
        .as_ref()
        .map(|p| p.insecure.clone())
        .unwrap_or_default();
    let client = crate::copy::client(json, insecure)?;
    crate::referrers::attach(
        &session.root,
        &client,
        &repository.with_digest(digest.clone()),
        outcome,
        plan,
    )?;
    Ok(())
}
