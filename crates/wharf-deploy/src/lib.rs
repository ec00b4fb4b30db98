//! Runs a stage's digest somewhere and says how that went: the [`Target`] trait (plan,
//! apply, status, rollback) and its Docker engine implementation, [`DockerTarget`]:
//! blue-green behind a small TCP [`proxy`], health checks before any traffic moves, smoke
//! checks after, and the old container stopped only once the new one has proved itself.
//!
//! What the ledger records about a deploy (and which digest a `--rollback` goes back to) is
//! the caller's business: a [`Report`] says everything needed for it.

pub mod docker;
pub mod http;
pub mod kubernetes;
pub mod proxy;

use std::fmt;

use serde::{Deserialize, Serialize};
use wharf_oci::{Digest, Image};

pub use docker::{DockerPlan, DockerTarget};
pub use http::{Health, SmokeResult};
pub use kubernetes::{KubernetesPlan, KubernetesTarget};

/// What went wrong running a deploy (a failed health check is not an error: it is a
/// [`Report`] with [`Outcome::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] wharf_engine::Error),
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error("{0}")]
    Image(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Busy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Opens the image to run when the target needs its bytes (it may already have them).
pub type ImageSource<'a> = dyn Fn() -> Result<Box<dyn Image + Sync + 'a>, String> + 'a;

/// A runtime a stage's digest runs on.
pub trait Target {
    /// What [`Target::apply`] would do, as data (`--dry-run` prints it).
    type Plan: Serialize + fmt::Display;

    /// Plans running `digest`, from what runs now. Reads the target; changes nothing.
    fn plan(&self, digest: &Digest) -> Result<Self::Plan>;

    /// Carries the plan out. A deploy that fails its checks is `Ok` with a failed
    /// [`Report`], the previous version still serving; `Err` is for a target that could
    /// not be driven at all.
    fn apply(
        &self,
        plan: &Self::Plan,
        image: &ImageSource<'_>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report>;

    /// What runs now.
    fn status(&self) -> Result<Status>;

    /// Goes back to `digest` (a previous healthy one): a deploy like any other, through the
    /// same checks, so a rollback never replaces a working version with a broken one.
    fn rollback(
        &self,
        digest: &Digest,
        image: &ImageSource<'_>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report> {
        let plan = self.plan(digest)?;
        self.apply(&plan, image, progress)
    }
}

/// How a deploy ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The new version serves; the old one is stopped.
    Healthy,
    /// The digest was already serving and healthy: nothing changed.
    Unchanged,
    /// The new version never became healthy; it was removed and the old one kept serving.
    Failed,
    /// The new version was healthy but failed its smoke checks once it had the traffic:
    /// the traffic went back to the old one and the new one was removed.
    RolledBack,
    /// The manifests were written for a GitOps tool to apply; nothing ran yet.
    Rendered,
}

/// What a deploy did, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub outcome: Outcome,
    pub stage: String,
    pub digest: Digest,
    /// What served before (and still does, unless the outcome is healthy).
    pub previous: Option<Digest>,
    /// The container (or object) that runs the new version, or ran it.
    pub instance: String,
    /// Where clients reach the stage.
    pub address: String,
    pub health: Option<Health>,
    #[serde(default)]
    pub smoke: Vec<SmokeResult>,
    /// The new instance's last log lines when it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub logs: String,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Healthy | Outcome::Unchanged | Outcome::Rendered
        )
    }

    /// One line for the ledger and the terminal.
    pub fn detail(&self) -> String {
        let health = self.health.as_ref().map(Health::summary);
        let smoke: Vec<String> = self
            .smoke
            .iter()
            .filter(|s| !s.passed)
            .map(|s| format!("smoke {}: {}", s.url, s.problem))
            .collect();
        let mut parts = vec![match self.outcome {
            Outcome::Healthy => format!(
                "{} serves {} at {}",
                self.instance, self.digest, self.address
            ),
            Outcome::Unchanged => format!("{} already serves {}", self.instance, self.digest),
            Outcome::Failed => match &self.previous {
                Some(previous) => format!(
                    "{} did not become healthy; {previous} keeps serving",
                    self.instance
                ),
                None => format!("{} did not become healthy", self.instance),
            },
            Outcome::Rendered => format!(
                "{} pins {} (written for GitOps to apply)",
                self.address, self.digest
            ),
            Outcome::RolledBack => format!(
                "{} failed its smoke checks; traffic went back and it was removed",
                self.instance
            ),
        }];
        parts.extend(health);
        parts.extend(smoke);
        parts.join("; ")
    }
}

/// What runs on a target now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub stage: String,
    pub target: String,
    /// The digest that gets the traffic.
    pub serving: Option<Digest>,
    /// Where clients reach the stage.
    pub address: String,
    /// Whether the stage's entry point (the proxy) is up.
    pub entry_up: bool,
    pub instances: Vec<Instance>,
}

/// One container (or pod set) of a stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    pub digest: Option<Digest>,
    /// Its own address (a loopback port, for the Docker target).
    pub address: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// The engine's HEALTHCHECK verdict, when the image has one.
    pub health: Option<String>,
    /// Whether the traffic goes to it.
    pub live: bool,
}
