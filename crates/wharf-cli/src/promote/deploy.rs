//! `cargo xtask deploy STAGE` (`--rollback`, `--down`, `--dry-run`), `deploy status` and
//! `smoke STAGE`: the stage's digest from the ledger, run by a `wharf_deploy::Target`, the
//! outcome appended to the ledger as a deploy entry (what the DORA figures count).

use std::ffi::OsString;
use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use serde_json::json;
use wharf_deploy::{DockerTarget, Outcome, Report, SmokeResult, Target};
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
    /// Commit the Kubernetes manifests the deploy writes (only those files), for a GitOps
    /// tool to apply from git.
    #[arg(long, conflicts_with_all = ["down", "dry_run"])]
    commit: bool,
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
    if args.down {
        let removed = docker_target(&cx, &stage)?.down()?;
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
    let choice = match (&args.digest, args.rollback) {
        (Some(digest), _) => Choice::Digest(parse_digest(digest)?),
        (None, true) => Choice::Rollback,
        (None, false) => Choice::Current,
    };
    if args.commit && stage.deploy.as_ref().is_none_or(|d| d.kubernetes.is_none()) {
        return Err(crate::usage(format!(
            "--commit commits Kubernetes manifests, and stage {} has no [stages.deploy.kubernetes]",
            stage.name
        )));
    }
    let mut progress = |line: &str| eprintln!("  {}: {line}", stage.name);
    match deploy_stage(session, &stage.name, choice, args.dry_run, &mut progress)? {
        Deployed::Planned { text, json } => {
            if args.json {
                stdout(&format!("{}\n", serde_json::to_string_pretty(&json)?))
            } else {
                stdout(&text)
            }
        }
        Deployed::Done { report, entry } => {
            print_report(&report, entry.as_ref(), args.json)?;
            if let Some(e) = failure(&report) {
                return Err(e);
            }
            if args.commit {
                let dir = super::k8s::dir(&cx);
                let message = format!("deploy: {} runs {}", stage.name, report.digest);
                let who = identity::who(&session.root)?;
                match super::k8s::commit(&session.root, &dir, &message, &who)? {
                    Some(commit) => eprintln!("committed {} ({commit})", dir.display()),
                    None => eprintln!("{} unchanged: nothing to commit", dir.display()),
                }
            }
            Ok(())
        }
    }
}

/// Which digest a deploy runs.
pub(crate) enum Choice {
    /// The one the ledger has in the stage.
    Current,
    Digest(Digest),
    /// The last one that deployed healthy before the one serving now.
    Rollback,
}

/// What [`deploy_stage`] did.
pub(crate) enum Deployed {
    /// A dry run: the plan, for people and as JSON.
    Planned {
        text: String,
        json: serde_json::Value,
    },
    /// The deploy ran (it may have failed: see [`Report::succeeded`]) and its ledger entry,
    /// if it was one to record.
    Done {
        report: Box<Report>,
        entry: Option<wharf_ledger::Entry>,
    },
}

/// The error a failed deploy ends the command (or the step) with: the report's evidence
/// and the new instance's last log lines.
pub fn failure(report: &Report) -> Option<anyhow::Error> {
    (!report.succeeded()).then(|| {
        anyhow!(
            "the deploy of {} to {} failed: {}{}",
            report.digest,
            report.stage,
            report.detail(),
            match report.logs.trim() {
                "" => String::new(),
                logs => format!("; its last log lines: {}", logs.replace('\n', " | ")),
            }
        )
    })
}

/// Deploys `choice` to `stage` on its target (Docker first, else Kubernetes): what `cargo
/// xtask deploy` and the deploy step share.
pub(crate) fn deploy_stage(
    session: &Session,
    stage: &str,
    choice: Choice,
    dry_run: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Deployed> {
    let cx = &Ctx::new(session)?;
    let stage = &cx.stage(stage)?.clone();
    let entries = cx.entries()?;
    let deploy = stage.deploy.as_ref();
    if deploy.is_some_and(|d| d.docker.is_some()) {
        let target = docker_target(cx, stage)?;
        execute(
            cx, stage, &target, "docker", choice, dry_run, &entries, progress,
        )
    } else if deploy.is_some_and(|d| d.kubernetes.is_some()) {
        let target = super::k8s::target(cx, stage, &entries)?;
        execute(
            cx,
            stage,
            &target,
            "kubernetes",
            choice,
            dry_run,
            &entries,
            progress,
        )
    } else {
        Err(no_deploy(cx, stage))
    }
}

fn no_deploy(cx: &Ctx<'_>, stage: &Stage) -> anyhow::Error {
    crate::usage(format!(
        "stage {} has no deploy target in {}: add [stages.deploy.docker] (blue-green on a \
         Docker engine), e.g.\n[stages.deploy.docker]\nlisten = \"0.0.0.0:8080\"\n\
         listen_env = \"LISTEN_ADDR\"\nor [stages.deploy.kubernetes] (manifests for GitOps)",
        stage.name,
        cx.session.config_path.display()
    ))
}

/// Picks the digest, plans, applies and records: the same for every target.
#[allow(clippy::too_many_arguments)]
fn execute<T: Target>(
    cx: &Ctx<'_>,
    stage: &Stage,
    target: &T,
    kind: &str,
    choice: Choice,
    dry_run: bool,
    entries: &[wharf_ledger::Entry],
    progress: &mut dyn FnMut(&str),
) -> Result<Deployed> {
    let rollback = matches!(choice, Choice::Rollback);
    let digest = match choice {
        Choice::Digest(digest) => digest,
        Choice::Current => current(entries, stage)?,
        Choice::Rollback => {
            let serving = target.status()?.serving;
            wharf_promote::healthy_deploys(entries, &stage.name)
                .into_iter()
                .find(|d| Some(d) != serving.as_ref())
                .ok_or_else(|| {
                    UsageError(anyhow!(
                        "no earlier healthy deploy of {} to go back to (the ledger's deploy \
                         entries: `cargo xtask history {}`)",
                        stage.name,
                        stage.name
                    ))
                })?
        }
    };
    let plan = target.plan(&digest)?;
    if dry_run {
        return Ok(Deployed::Planned {
            text: plan.to_string(),
            json: serde_json::to_value(&plan)?,
        });
    }
    let place = cx.place(&stage.location)?;
    let image = || {
        place
            .image(&cx.client, &digest)
            .map_err(|e| format!("{e:#}"))
    };
    let who = identity::who(&cx.session.root)?;
    let evidence = |outcome, detail, previous| DeployEvidence {
        outcome,
        detail,
        target: Some(kind.to_string()),
        previous,
        rollback,
    };
    let report = match target.apply(&plan, &image, progress) {
        Ok(report) => report,
        // Another deploy of the stage ran: this one never started, there is nothing to count.
        Err(e @ wharf_deploy::Error::Busy(_)) => return Err(e.into()),
        Err(e) => {
            // The deploy did not finish: recorded as failed, so the DORA figures count it.
            let failed = evidence(DeployOutcome::Failed, e.to_string(), None);
            let _ = record(cx, &stage.name, &digest, &who, &failed);
            return Err(anyhow!(e).context(format!("deploying {digest} to {}", stage.name)));
        }
    };
    // Nothing ran (already serving), or a GitOps tool runs it: no deploy to record.
    let entry = match report.outcome {
        Outcome::Unchanged | Outcome::Rendered => None,
        _ => {
            let outcome = match report.succeeded() {
                true => DeployOutcome::Succeeded,
                false => DeployOutcome::Failed,
            };
            let recorded = evidence(outcome, report.detail(), report.previous.clone());
            Some(record(cx, &stage.name, &digest, &who, &recorded)?)
        }
    };
    Ok(Deployed::Done {
        report: Box::new(report),
        entry,
    })
}

/// The digest the ledger has in `stage`.
fn current(entries: &[wharf_ledger::Entry], stage: &Stage) -> Result<Digest> {
    wharf_promote::states(entries)
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
            .into()
        })
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
        let deploy = stage.deploy.as_ref();
        if only.is_some_and(|o| o != stage.name) {
            continue;
        }
        let status = if deploy.is_some_and(|d| d.docker.is_some()) {
            docker_target(&cx, stage)?.status()?
        } else if deploy.is_some_and(|d| d.kubernetes.is_some()) {
            super::k8s::target(&cx, stage, &entries)?.status()?
        } else {
            continue;
        };
        let promoted = states
            .get(&stage.name)
            .and_then(|s| s.current())
            .map(|p| p.digest.clone());
        all.push((status, promoted));
    }
    if all.is_empty() {
        return Err(crate::usage(
            "no stage has [stages.deploy]: nothing is deployed by wharf",
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
        let entry = match (status.target.as_str(), status.entry_up) {
            ("docker", true) => "proxy up",
            ("docker", false) => "proxy DOWN (`cargo xtask deploy STAGE` starts it)",
            (_, true) => "kubeconfig present: deploy applies it",
            (_, false) => "no kubeconfig: a GitOps tool applies it",
        };
        text.push_str(&format!(
            "{:<12} {} ({}) serves {serving}; {entry}\n",
            status.stage, status.address, status.target
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
    let results = smoke_stage(session, &args.stage, args.url.as_deref())?;
    if args.json {
        stdout(&format!("{}\n", serde_json::to_string_pretty(&results)?))?;
    } else {
        stdout(&smoke_lines(&results))?;
    }
    smoke_failure(&args.stage, &results).map_or(Ok(()), Err)
}

/// One line per check: passed or FAILED, the URL, the latency and what failed.
pub(crate) fn smoke_lines(results: &[SmokeResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!(
                "{} {} ({} ms){}\n",
                if r.passed { "passed" } else { "FAILED" },
                r.url,
                r.latency_ms,
                if r.passed {
                    String::new()
                } else {
                    format!(": {}", r.problem)
                }
            )
        })
        .collect()
}

pub(crate) fn smoke_failure(stage: &str, results: &[SmokeResult]) -> Option<anyhow::Error> {
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.url, r.problem))
        .collect();
    (!failed.is_empty()).then(|| {
        anyhow!(
            "{} of {} smoke check(s) of {stage} failed: {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        )
    })
}

/// Runs `stage`'s smoke checks against `url`, else its deploy.url, else its Docker proxy.
pub(crate) fn smoke_stage(
    session: &Session,
    stage: &str,
    url: Option<&str>,
) -> Result<Vec<SmokeResult>> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(stage)?;
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
    let base = match (url, &deploy.url, &deploy.docker) {
        (Some(url), _, _) => url.to_string(),
        (None, Some(url), _) => url.clone(),
        (None, None, Some(docker)) => wharf_deploy::docker::url_of(&docker.listen),
        (None, None, None) => {
            return Err(crate::usage(format!(
                "stage {}: where does it answer? set deploy.url or pass --url",
                stage.name
            )));
        }
    };
    Ok(wharf_deploy::http::smoke(&base, &deploy.smoke))
}
