//! The one trait every step implements, and what it declares.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::context::Context;

/// What a step reads, for its cache key. A step's key changes when any of these changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Globs of files, relative to the workspace root (globset syntax, `**` allowed); the
    /// walk honours `.gitignore` and never enters `target/` or `.git/`.
    pub files: Vec<String>,
    /// Names of environment variables whose values change what the step does.
    pub env: Vec<String>,
    /// The git commit (and whether the tree is dirty) changes what the step makes: an
    /// image's revision label and tags do, a lint does not.
    #[serde(default)]
    pub git: bool,
}

/// One typed output of a step: what later steps and the reports read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Output {
    /// A content digest, `sha256:<hex>`.
    Digest(String),
    /// Image tags.
    Tags(Vec<String>),
    /// An image reference (`oci:DIR:TAG`, `docker://HOST/REPO@sha256:...`).
    Reference(String),
    /// A file the step wrote (a report, an SBOM), relative to the workspace root.
    Path(PathBuf),
    /// A count (findings, cells passed).
    Count(u64),
    /// Free text (a summary line).
    Text(String),
}

/// A step's outputs by name (`digest`, `tags`, `reference`, `report`).
pub type Outputs = BTreeMap<String, Output>;

/// Why a step failed: a message for people, already naming the object and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
        }
    }
}

/// One step of a pipeline.
///
/// Implementations hold what they need from the config (built when the pipeline is
/// composed); `run` gets the rest from the context (the workspace, facts, upstream outputs).
pub trait Step: Send + Sync {
    /// Unique within a pipeline: `fmt`, `image`.
    fn id(&self) -> &str;
    /// Bumped when what the step does changes, so that older cache entries stop matching.
    fn version(&self) -> u32 {
        1
    }
    /// Ids of the steps that must finish (successfully) first; their outputs are visible to
    /// this step and their keys are part of its key.
    fn needs(&self) -> Vec<String> {
        Vec::new()
    }
    /// The command line this step stands for (shown in plans, part of the key).
    fn argv(&self) -> Vec<String>;
    /// One line for people: what the step does.
    fn describe(&self) -> String;
    /// What the step reads; `None` means it reads the world (a registry) and is never cached.
    fn inputs(&self) -> Option<Inputs>;
    /// Runs compilers: the step takes a jobserver token and is started with the shared
    /// jobserver in its environment, so that all steps together never run more compilers than
    /// there are cores.
    fn uses_compiler(&self) -> bool {
        false
    }
    /// Steps naming the same lock (for example cargo's build directory) never run at the
    /// same time; the runner says which step a waiting step waits for.
    fn lock(&self) -> Option<String> {
        None
    }
    /// Whether outputs recorded in the cache still hold: an image's layout may have been
    /// deleted since. A cached entry whose outputs no longer hold is a miss.
    fn still_valid(&self, _outputs: &Outputs) -> bool {
        true
    }
    /// Does the work. What the step prints goes to its log (`cx.log()`, or the commands from
    /// `cx.command`), so that steps running at once do not interleave on the terminal.
    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError>;
}
