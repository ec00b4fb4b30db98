//! The Kubernetes target: a deploy re-renders the stage's kustomize overlay with the new
//! digest (wharf-k8s) and writes it, for a GitOps tool (Argo CD, Flux) to apply from git.
//! Where a kubeconfig is present (`KUBECONFIG`, or `~/.kube/config`) and `kubectl` is on
//! the PATH, it also runs `kubectl apply -k` on the overlay and waits for `kubectl rollout
//! status`, whose verdict is the deploy's.
//!
//! No cluster exists where wharf is tested: the rendering is checked with `kubectl
//! kustomize` and `kubernetes-validate`, the apply is not (docs/guide/deploy.md).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use wharf_k8s::{App, File, Pin, StageManifest};
use wharf_oci::Digest;

use crate::{Error, ImageSource, Outcome, Report, Result, Status, Target};

/// How long `kubectl rollout status` waits for the new pods.
const ROLLOUT_TIMEOUT: &str = "300s";

/// One stage's overlay, rendered among all the stages' (the base is shared).
pub struct KubernetesTarget {
    dir: PathBuf,
    app: App,
    stages: Vec<StageManifest>,
    stage: String,
}

/// What a deploy writes, and whether it applies it.
#[derive(Clone, Debug, Serialize)]
pub struct KubernetesPlan {
    pub stage: String,
    pub digest: Digest,
    /// The digest the overlay pins now.
    pub previous: Option<Digest>,
    /// The overlay directory (`kubectl apply -k` takes it).
    pub overlay: PathBuf,
    /// Files that change, relative to the manifests' directory.
    pub changed: Vec<PathBuf>,
    /// `kubectl apply -k OVERLAY` runs (a kubeconfig is present).
    pub apply: bool,
    #[serde(skip)]
    files: Vec<File>,
}

impl fmt::Display for KubernetesPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "deploy {} to {} (kubernetes)", self.digest, self.stage)?;
        if self.changed.is_empty() {
            writeln!(f, "  the manifests are already current")?;
        }
        for path in &self.changed {
            writeln!(f, "  write {}", path.display())?;
        }
        match self.apply {
            true => writeln!(
                f,
                "  kubectl apply -k {}, then kubectl rollout status",
                self.overlay.display()
            ),
            false => writeln!(
                f,
                "  no kubeconfig: commit them for your GitOps tool to apply"
            ),
        }
    }
}

impl KubernetesTarget {
    /// `stages` are every stage's manifests as they stand (the others are rendered too, so
    /// the shared base stays consistent); `stage` is the one deployed.
    pub fn new(dir: PathBuf, app: App, stages: Vec<StageManifest>, stage: &str) -> Self {
        KubernetesTarget {
            dir,
            app,
            stages,
            stage: stage.to_string(),
        }
    }

    fn overlay(&self) -> PathBuf {
        self.dir.join("overlays").join(&self.stage)
    }

    /// The digest the stage's overlay pins now, read from its kustomization.
    fn pinned(&self) -> Option<Digest> {
        let text = std::fs::read_to_string(self.overlay().join("kustomization.yaml")).ok()?;
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("digest:"))
            .find_map(|d| d.trim().trim_matches(['"', '\'']).parse().ok())
    }

    fn kubectl(&self, args: &[&str]) -> Result<(bool, String)> {
        let out = Command::new("kubectl")
            .args(args)
            .output()
            .map_err(|source| Error::Io {
                context: "running kubectl".into(),
                source,
            })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text.trim().to_string()))
    }
}

/// Whether `kubectl` has a cluster to talk to: a kubeconfig file it would read.
pub fn has_kubeconfig() -> bool {
    let named = std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .map(|v| std::env::split_paths(&v).any(|p| p.is_file()));
    named.unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".kube/config").is_file())
            .unwrap_or(false)
    })
}

impl Target for KubernetesTarget {
    type Plan = KubernetesPlan;

    fn plan(&self, digest: &Digest) -> Result<KubernetesPlan> {
        let mut stages = self.stages.clone();
        let Some(this) = stages.iter_mut().find(|s| s.name == self.stage) else {
            return Err(Error::Image(format!(
                "stage {} has no [stages.deploy.kubernetes]",
                self.stage
            )));
        };
        this.pin = Pin::Digest(digest.to_string());
        let files = wharf_k8s::render(&self.app, &stages)
            .map_err(|e| Error::Image(format!("rendering the manifests: {e}")))?;
        // What writing would change: files with other contents, files not there yet, and
        // stale generated files the write removes (wharf-k8s's own comparison).
        let changed = match wharf_k8s::check(&self.dir, &files) {
            Ok(()) => Vec::new(),
            Err(wharf_k8s::CheckError::Drift(drift)) => {
                let mut paths = drift.changed;
                paths.extend(drift.missing);
                paths.extend(drift.extra);
                paths.sort();
                paths
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("reading the manifests in {}", self.dir.display()),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        };
        Ok(KubernetesPlan {
            stage: self.stage.clone(),
            digest: digest.clone(),
            previous: self.pinned(),
            overlay: self.overlay(),
            changed,
            apply: has_kubeconfig(),
            files,
        })
    }

    fn apply(
        &self,
        plan: &KubernetesPlan,
        _image: &ImageSource<'_>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report> {
        progress(&format!("writing {}", self.dir.display()));
        wharf_k8s::write(&self.dir, &plan.files).map_err(|e| Error::Io {
            context: "writing the manifests".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut report = Report {
            outcome: Outcome::Rendered,
            stage: self.stage.clone(),
            digest: plan.digest.clone(),
            previous: plan.previous.clone(),
            instance: format!("deployment/{}", self.app.name),
            address: plan.overlay.display().to_string(),
            health: None,
            smoke: Vec::new(),
            logs: String::new(),
        };
        if !plan.apply {
            return Ok(report);
        }
        let overlay = plan.overlay.to_string_lossy().to_string();
        progress(&format!("kubectl apply -k {overlay}"));
        let (applied, output) = self.kubectl(&["apply", "-k", &overlay])?;
        if !applied {
            report.outcome = Outcome::Failed;
            report.logs = output;
            return Ok(report);
        }
        progress("kubectl rollout status");
        let deployment = format!("deployment/{}", self.app.name);
        let (rolled, output) = self.kubectl(&[
            "rollout",
            "status",
            &deployment,
            &format!("--timeout={ROLLOUT_TIMEOUT}"),
        ])?;
        report.outcome = if rolled {
            Outcome::Healthy
        } else {
            Outcome::Failed
        };
        report.logs = output;
        Ok(report)
    }

    fn status(&self) -> Result<Status> {
        Ok(Status {
            stage: self.stage.clone(),
            target: "kubernetes".into(),
            serving: self.pinned(),
            address: self.overlay().display().to_string(),
            entry_up: has_kubeconfig(),
            instances: Vec::new(),
        })
    }
}
