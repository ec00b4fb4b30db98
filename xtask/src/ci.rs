use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use wharf::pipeline::{Config, Mode, Progress, ci, image};

use crate::{UsageError, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Print the steps without running them.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object with each step's result (and the image) on stdout.
    #[arg(long)]
    json: bool,
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
    image: Option<image::ImageOutcome>,
    push: Option<wharf::pipeline::copy::CopyReport>,
    scan: Option<wharf::pipeline::scan::ScanOutcome>,
}

pub fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let config = Config::load(&root).map_err(|e| UsageError(e.into()))?;
    let plan = ci::plan(&config);
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
    let mut report = Report {
        ok: true,
        steps: Vec::new(),
        image: None,
        push: None,
        scan: None,
    };
    let mut failure = None;
    for step in &plan.steps {
        let started = Instant::now();
        let result = match step {
            ci::Step::Command { name, argv } => {
                // Cargo shows its own progress, so no spinner over it.
                eprintln!("==> {name}: {}", argv.join(" "));
                ci::run_command(&root, argv).map_err(anyhow::Error::msg)
            }
            ci::Step::Image { .. } => crate::image::plan().and_then(|(plan, workspace)| {
                let outcome = image::build(&plan, &workspace, &progress)?;
                report.image = Some(outcome);
                Ok(())
            }),
            ci::Step::Scan { .. } => crate::scan::ci_step().map(|outcome| {
                report.scan = Some(outcome);
            }),
            ci::Step::Push { destination, .. } => {
                eprintln!("==> push: {destination}");
                crate::push::push_to(destination, args.json, Vec::new()).map(|pushed| {
                    report.push = Some(pushed);
                })
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
