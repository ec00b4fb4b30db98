//! `cargo xtask deploy STAGE` (`--rollback`, `--down`, `--dry-run`), `deploy status` and
//! `smoke STAGE`: the stage's digest from the ledger, run by a `wharf_deploy::Target`, the
//! outcome appended to the ledger as a deploy entry (what the DORA figures count).

use std::ffi::OsString;
use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use serde_json::json;
use wharf_deploy::{DockerTarget, Outcome, Report, Target};
use wharf_oci::Digest;
use wharf_promote::{DeployEvidence, DeployOutcome, Stage};

use super::{Ctx, identity, parse_digest};
use crate::{Session, UsageError, stdout};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeployArgs {
    #[command(subcommand)]
    command: Option<DeployCommand>,
    /// The stage whose current digest (from the ledger) to run, e.g. `staging`.
    stage: Option<String>,
    /// Go back to the last digest that deployed healthy to the stage before the one
    /// serving now (the ledger's deploy entries).
    #[arg(long, conflicts_with_all = ["digest", "down"])]
    rollback: bool,
    /// Run this digest instead of the stage's current one.
    #[arg(long)]
    digest: Option<String>,
    /// Stop the stage: its proxy and every container (nothing is recorded).
    #[arg(long, conflicts_with = "dry_run")]
    down: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum DeployCommand {
    /// What runs for each stage with [stages.deploy]: containers, digests, health, and
    /// whether it is the digest the ledger has in the stage.
    Status {
        /// Only this stage.
        stage: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct SmokeArgs {
    /// The stage whose [[stages.deploy.smoke]] checks to run.
    stage: String,
    /// Check this base URL instead of the stage's (deploy.url, or the Docker proxy's).
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    json: bool,
}

/// The hidden command the Docker target starts as the stage's proxy.
#[derive(clap::Args)]
pub struct ProxyArgs {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    control: std::path::PathBuf,
    #[arg(long)]
    backend: SocketAddr,
}

pub fn proxy(args: ProxyArgs) -> Result<()> {
    wharf_deploy::proxy::serve(args.listen, &args.control, args.backend).context("the deploy proxy")
}

pub fn deploy(args: DeployArgs, session: &Session) -> Result<()> {
    if let Some(DeployCommand::Status { stage, json }) = args.command {
        return status(stage.as_deref(), json, session);
    }
    let stage_name = args.stage.as_deref().ok_or_else(|| {
        crate::usage("name a stage (`cargo xtask deploy staging`) or `cargo xtask deploy status`")
    })?;
    let cx = Ctx::new(session)?;
    let stage = cx.stage(stage_name)?.clone();
    let target = docker_target(&cx, &stage)?;
    if args.down {
        let removed = target.down()?;
        return stdout(&format!(
            "{}: proxy stopped, removed {}\n",
            stage.name,
            if removed.is_empty() {
                "no container".to_string()
            } else {
                removed.join(", ")
            }
        ));
    }
    let entries = cx.entries()?;
    let digest = if args.rollback {
        let serving = target.status()?.serving;
        let healthy = wharf_promote::healthy_deploys(&entries, &stage.name);
        healthy
            .into_iter()
            .find(|d| Some(d) != serving.as_ref())
            .ok_or_else(|| {
                UsageError(anyhow!(
                    "no earlier healthy deploy of {} to go back to (the ledger's deploy entries: \
                     `cargo xtask history {}`)",
                    stage.name,
                    stage.name
                ))
            })?
    } else if let Some(digest) = &args.digest {
        parse_digest(digest)?
    } else {
        wharf_promote::states(&entries)
            .get(&stage.name)
            .and_then(|s| s.current())
            .map(|p| p.digest.clone())
            .ok_or_else(|| {
                UsageError(anyhow!(
                    "nothing was promoted into {} yet: `cargo xtask promote {}` first (or pass \
                     --digest)",
                    stage.name,
                    stage.name
                ))
            })?
    };
    let plan = target.plan(&digest)?;
    if args.dry_run {
        return if args.json {
            stdout(&format!("{}\n", serde_json::to_string_pretty(&plan)?))
        } else {
            stdout(&plan.to_string())
        };
    }
    let place = cx.place(&stage.location)?;
    let image = || {
        place
            .image(&cx.client, &digest)
            .map_err(|e| format!("{e:#}"))
    };
    let mut progress = |line: &str| eprintln!("  {}: {line}", stage.name);
    let who = identity::who(&session.root)?;
    let applied = target.apply(&plan, &image, &mut progress);
    let report = match applied {
        Ok(report) => report,
        Err(e) => {
            // The deploy did not finish: recorded as failed, so the DORA figures count it.
            let evidence = DeployEvidence {
                outcome: DeployOutcome::Failed,
                detail: format!("{e}"),
                target: Some("docker".into()),
                previous: plan.previous.clone(),
                rollback: args.rollback,
            };
            let _ = record(&cx, &stage.name, &digest, &who, &evidence);
            return Err(anyhow!(e).context(format!("deploying {digest} to {}", stage.name)));
        }
    };
    let entry = match report.outcome {
        Outcome::Unchanged => None,
        _ => {
            let evidence = DeployEvidence {
                outcome: if report.succeeded() {
                    DeployOutcome::Succeeded
                } else {
                    DeployOutcome::Failed
                },
                detail: report.detail(),
                target: Some("docker".into()),
                previous: report.previous.clone(),
                rollback: args.rollback,
            };
            Some(record(&cx, &stage.name, &digest, &who, &evidence)?)
        }
    };
    print_report(&report, entry.as_ref(), args.json)?;
    if report.succeeded() {
        Ok(())
    } else {
        Err(anyhow!(
            "the deploy of {digest} to {} failed: {}{}",
            stage.name,
            report.detail(),
            match report.logs.trim() {
                "" => String::new(),
                logs => format!("; its last log lines: {}", logs.replace('\n', " | ")),
            }
        ))
    }
}

fn record(
    cx: &Ctx<'_>,
    stage: &str,
    digest: &Digest,
    who: &str,
    evidence: &DeployEvidence,
) -> Result<wharf_ledger::Entry> {
    cx.append(|_| {
        Ok(wharf_promote::deploy_draft(
            stage,
            digest.clone(),
            who,
            Timestamp::now(),
            evidence,
        ))
    })
}

fn print_report(report: &Report, entry: Option<&wharf_ledger::Entry>, json: bool) -> Result<()> {
    if json {
        return stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "report": report,
                "entry": entry.map(|e| e.seq),
            }))?
        ));
    }
    let recorded = entry.map_or_else(String::new, |e| format!(" (ledger entry {})", e.seq));
    let mut text = format!("{}: {}{recorded}\n", report.stage, report.detail());
    for smoke in &report.smoke {
        text.push_str(&format!(
            "  smoke {} {} ({} ms){}\n",
            smoke.url,
            if smoke.passed { "passed" } else { "FAILED" },
            smoke.latency_ms,
            if smoke.passed {
                String::new()
            } else {
                format!(": {}", smoke.problem)
            }
        ));
    }
    stdout(&text)
}

/// The Docker target of `stage`, or a usage error naming the table to add.
fn docker_target(cx: &Ctx<'_>, stage: &Stage) -> Result<DockerTarget> {
    let docker = stage
        .deploy
        .as_ref()
        .and_then(|d| d.docker.clone())
        .ok_or_else(|| {
            crate::usage(format!(
                "stage {} has no [stages.deploy.docker] in {}: add one, e.g.\n\
                 [stages.deploy.docker]\nlisten = \"0.0.0.0:8080\"\nlisten_env = \"LISTEN_ADDR\"",
                stage.name,
                cx.session.config_path.display()
            ))
        })?;
    let smoke = stage
        .deploy
        .as_ref()
        .map(|d| d.smoke.clone())
        .unwrap_or_default();
    let engine = wharf_engine::Engine::connect()?;
    let exe = std::env::current_exe().context("finding this program, to start the proxy")?;
    DockerTarget::new(
        engine,
        &app_name(cx, stage),
        &stage.name,
        docker,
        smoke,
        wharf_deploy::docker::state_dir(&cx.session.root, &stage.name),
        vec![OsString::from(exe), OsString::from("deploy-proxy")],
    )
    .map_err(Into::into)
}

/// What the containers are named after: the image's package, else the location's last
/// path segment; lower case, as the engine's image names must be.
fn app_name(cx: &Ctx<'_>, stage: &Stage) -> String {
    let name = cx
        .config
        .image
        .as_ref()
        .map(|i| i.package.clone())
        .unwrap_or_else(|| {
            stage
                .location
                .trim_end_matches('/')
                .rsplit(['/', ':'])
                .next()
                .unwrap_or("app")
                .to_string()
        });
    name.to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn status(only: Option<&str>, json: bool, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    if let Some(name) = only {
        cx.stage(name)?;
    }
    let entries = cx.entries()?;
    let states = wharf_promote::states(&entries);
    let mut all = Vec::new();
    for stage in cx.stages() {
        if only.is_some_and(|o| o != stage.name)
            || stage
                .deploy
                .as_ref()
                .and_then(|d| d.docker.as_ref())
                .is_none()
        {
            continue;
        }
        let status = docker_target(&cx, stage)?.status()?;
        let promoted = states
            .get(&stage.name)
            .and_then(|s| s.current())
            .map(|p| p.digest.clone());
        all.push((status, promoted));
    }
    if all.is_empty() {
        return Err(crate::usage(
            "no stage has [stages.deploy.docker]: nothing is deployed by wharf",
        ));
    }
    if json {
        let value: Vec<_> = all
            .iter()
            .map(|(status, promoted)| json!({ "status": status, "promoted": promoted }))
            .collect();
        return stdout(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    }
    let mut text = String::new();
    for (status, promoted) in &all {
        let serving = status
            .serving
            .as_ref()
            .map_or_else(|| "nothing".to_string(), Digest::to_string);
        text.push_str(&format!(
            "{:<12} {} serves {serving}; proxy {}\n",
            status.stage,
            status.address,
            if status.entry_up {
                "up"
            } else {
                "DOWN (`cargo xtask deploy STAGE` starts it)"
            }
        ));
        if promoted.is_some() && promoted != &status.serving {
            text.push_str(&format!(
                "{:<12} the ledger's current digest is {}: `cargo xtask deploy {}` runs it\n",
                "",
                promoted.as_ref().map(Digest::to_string).unwrap_or_default(),
                status.stage
            ));
        }
        for i in &status.instances {
            text.push_str(&format!(
                "  {}{:<28} {:<8} {:<10} {} {}\n",
                if i.live { "* " } else { "  " },
                i.name,
                i.state,
                i.health.as_deref().unwrap_or("-"),
                i.address,
                i.digest.as_ref().map(Digest::to_string).unwrap_or_default()
            ));
        }
    }
    stdout(&text)
}

pub fn smoke(args: SmokeArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(&args.stage)?;
    let deploy = stage
        .deploy
        .as_ref()
        .filter(|d| !d.smoke.is_empty())
        .ok_or_else(|| {
            crate::usage(format!(
                "stage {} has no [[stages.deploy.smoke]] checks: add one, e.g.\n\
             [[stages.deploy.smoke]]\npath = \"/health\"\nstatus = 200\nbody_contains = \"ok\"",
                stage.name
            ))
        })?;
    let base = match (&args.url, &deploy.url, &deploy.docker) {
        (Some(url), _, _) | (None, Some(url), _) => url.clone(),
        (None, None, Some(_)) => docker_target(&cx, stage)?.url(),
        (None, None, None) => {
            return Err(crate::usage(format!(
                "stage {}: where does it answer? set deploy.url or pass --url",
                stage.name
            )));
        }
    };
    let results = wharf_deploy::http::smoke(&base, &deploy.smoke);
    let failed = results.iter().filter(|r| !r.passed).count();
    if args.json {
        stdout(&format!("{}\n", serde_json::to_string_pretty(&results)?))?;
    } else {
        let mut text = String::new();
        for r in &results {
            text.push_str(&format!(
                "{} {} ({} ms){}\n",
                if r.passed { "passed" } else { "FAILED" },
                r.url,
                r.latency_ms,
                if r.passed {
                    String::new()
                } else {
                    format!(": {}", r.problem)
                }
            ));
        }
        stdout(&text)?;
    }
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} smoke check(s) of {} failed",
            results.len(),
            stage.name
        ));
    }
    Ok(())
}
