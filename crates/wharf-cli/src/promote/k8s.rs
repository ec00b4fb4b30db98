//! `cargo xtask render-k8s [--check]`: the Kubernetes manifests of every stage with
//! `[stages.deploy.kubernetes]`, each overlay pinned to the digest the ledger has in the
//! stage (a stage with none yet names its tag), written to `deploy/k8s` for a GitOps tool.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use wharf_deploy::KubernetesTarget;
use wharf_k8s::{App, Autoscale, Pin, Resources, StageManifest};
use wharf_promote::Stage;

use super::Ctx;
use crate::{Session, stdout};

#[derive(clap::Args)]
pub struct RenderArgs {
    /// Write nothing; fail (exit 1) naming every file that differs from what would be
    /// written: the drift check for CI.
    #[arg(long)]
    check: bool,
    #[arg(long)]
    json: bool,
}

pub fn render(args: RenderArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let entries = cx.entries()?;
    let (dir, app, stages) = manifests(&cx, &entries)?;
    let files = wharf_k8s::render(&app, &stages).map_err(crate::usage)?;
    if args.check {
        wharf_k8s::check(&dir, &files).map_err(|e| anyhow!("{e}"))?;
        return stdout(&format!(
            "{}: up to date ({} files)\n",
            dir.display(),
            files.len()
        ));
    }
    let written = wharf_k8s::write(&dir, &files).map_err(|e| anyhow!("{e}"))?;
    if args.json {
        return stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "dir": dir,
                "written": written.written,
                "unchanged": written.unchanged,
                "removed": written.removed,
            }))?
        ));
    }
    let mut text = String::new();
    for path in &written.written {
        text.push_str(&format!("wrote {}\n", dir.join(path).display()));
    }
    for path in &written.removed {
        text.push_str(&format!("removed {}\n", dir.join(path).display()));
    }
    text.push_str(&format!(
        "{}: {} written, {} unchanged\n",
        dir.display(),
        written.written.len(),
        written.unchanged.len()
    ));
    stdout(&text)
}

/// The Kubernetes target of `stage` (every stage's manifests, so the base stays shared).
pub(super) fn target(
    cx: &Ctx<'_>,
    stage: &Stage,
    entries: &[wharf_ledger::Entry],
) -> Result<KubernetesTarget> {
    let (dir, app, stages) = manifests(cx, entries)?;
    Ok(KubernetesTarget::new(dir, app, stages, &stage.name))
}

/// The directory, the app and one manifest per stage with `[stages.deploy.kubernetes]`.
fn manifests(
    cx: &Ctx<'_>,
    entries: &[wharf_ledger::Entry],
) -> Result<(PathBuf, App, Vec<StageManifest>)> {
    let config = cx.config;
    let k8s = config.kubernetes.clone().unwrap_or_default();
    let image = config.image.as_ref();
    let path = cx.session.config_path.display();
    let name = k8s
        .name
        .clone()
        .or_else(|| image.map(|i| i.package.clone()))
        .ok_or_else(|| {
            crate::usage(format!(
                "{path}: set [kubernetes] name (or [image] package)"
            ))
        })?;
    let port = match k8s.port {
        Some(port) => port,
        None => image
            .and_then(|i| i.ports.first())
            .and_then(|p| p.split('/').next()?.parse().ok())
            .ok_or_else(|| {
                crate::usage(format!(
                    "{path}: set [kubernetes] port (or [image] ports, e.g. [\"8080/tcp\"])"
                ))
            })?,
    };
    let user = match image.map(|i| i.user.as_str()).filter(|u| !u.is_empty()) {
        Some(user) => {
            let (uid, gid) = wharf_pipeline::config::parse_user(user).map_err(crate::usage)?;
            Some((uid as u32, gid as u32))
        }
        None => None,
    };
    let env = k8s
        .env
        .iter()
        .map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    crate::usage(format!("{path}: kubernetes.env {e:?} is not NAME=VALUE"))
                })
        })
        .collect::<Result<_>>()?;
    let app = App {
        name,
        port,
        health_path: k8s.health_path.clone().unwrap_or_else(|| "/health".into()),
        user,
        env,
    };
    let states = wharf_promote::states(entries);
    let mut stages = Vec::new();
    for stage in &config.stages {
        let Some(kube) = stage.deploy.as_ref().and_then(|d| d.kubernetes.as_ref()) else {
            continue;
        };
        let image = match (&kube.image, stage.location.strip_prefix("docker://")) {
            (Some(image), _) => image.clone(),
            (None, Some(repository)) => repository.to_string(),
            (None, None) => {
                return Err(crate::usage(format!(
                    "stage {} lives in {}, which no cluster pulls from: set \
                     [stages.deploy.kubernetes] image = \"REGISTRY/REPO\"",
                    stage.name, stage.location
                )));
            }
        };
        let pin = match states.get(&stage.name).and_then(|s| s.current()) {
            Some(current) => Pin::Digest(current.digest.to_string()),
            None => Pin::Tag(
                stage
                    .tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| stage.name.clone()),
            ),
        };
        let resources = |r: &wharf_promote::Resources| Resources {
            cpu: r.cpu.clone(),
            memory: r.memory.clone(),
        };
        stages.push(StageManifest {
            name: stage.name.clone(),
            image,
            pin,
            replicas: kube.replicas,
            requests: resources(&kube.requests),
            limits: resources(&kube.limits),
            min_available: kube.min_available,
            autoscale: kube.autoscale.as_ref().map(|a| Autoscale {
                min: a.min,
                max: a.max,
                cpu_percent: a.cpu_percent,
            }),
        });
    }
    if stages.is_empty() {
        return Err(crate::usage(format!(
            "no stage of {path} has [stages.deploy.kubernetes]: add one, e.g.\n\
             [stages.deploy.kubernetes]\nreplicas = 3\nrequests = {{ cpu = \"100m\", memory = \"64Mi\" }}\n\
             limits = {{ cpu = \"500m\", memory = \"128Mi\" }}"
        )));
    }
    Ok((dir(cx), app, stages))
}

/// Where the manifests go: `[kubernetes] dir`, default `deploy/k8s` under the root.
pub(super) fn dir(cx: &Ctx<'_>) -> PathBuf {
    let configured = cx.config.kubernetes.as_ref().and_then(|k| k.dir.clone());
    cx.session
        .root
        .join(configured.unwrap_or_else(|| PathBuf::from("deploy/k8s")))
}

/// Commits what changed under `dir` (only that: other staged changes stay staged), as
/// `who` when git has no identity configured. Returns the new commit, if there is one.
pub(super) fn commit(
    root: &std::path::Path,
    dir: &std::path::Path,
    message: &str,
    who: &str,
) -> Result<Option<String>> {
    let git = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| anyhow!("running git: {e}"))
    };
    let path = dir.to_string_lossy().to_string();
    let added = git(&["add", "--", &path])?;
    if !added.status.success() {
        return Err(anyhow!(
            "git add {path}: {}",
            String::from_utf8_lossy(&added.stderr).trim()
        ));
    }
    if git(&["diff", "--cached", "--quiet", "--", &path])?
        .status
        .success()
    {
        return Ok(None);
    }
    let mut args: Vec<String> = Vec::new();
    let configured = git(&["config", "user.email"])?;
    if !configured.status.success() || configured.stdout.trim_ascii().is_empty() {
        args.extend([
            "-c".into(),
            format!("user.name={who}"),
            "-c".into(),
            format!("user.email={who}@users.noreply.github.com"),
        ]);
    }
    args.extend(["commit", "--quiet", "-m", message, "--", &path].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let committed = git(&args)?;
    if !committed.status.success() {
        return Err(anyhow!(
            "git commit {path}: {}",
            String::from_utf8_lossy(&committed.stderr).trim()
        ));
    }
    let head = git(&["rev-parse", "HEAD"])?;
    Ok(Some(
        String::from_utf8_lossy(&head.stdout).trim().to_string(),
    ))
}
