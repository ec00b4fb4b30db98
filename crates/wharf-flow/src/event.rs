//! What a run tells its reporters: one value per thing that happened, serialisable as one
//! JSON object per line (`--json`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::step::Outputs;

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed {
        message: String,
    },
    /// Not run because a step it needs failed.
    Skipped {
        reason: String,
    },
}

/// A diagnostic that points at a place in the workspace (a clippy warning, a failing test, a
/// scan finding's line in `Cargo.lock`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub level: Level,
    /// Relative to the workspace root.
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub title: Option<String>,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// One thing that happened during a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Sent once per step, in plan order, before anything runs.
    Planned {
        step: String,
        needs: Vec<String>,
        argv: Vec<String>,
        description: String,
        /// The cache key (hex), `None` for a step that is never cached.
        key: Option<String>,
    },
    Started {
        step: String,
    },
    /// A step waits for a lock another step holds (cargo's build directory).
    Waiting {
        step: String,
        lock: String,
        holder: String,
    },
    /// A place in the workspace worth pointing at.
    Annotated {
        step: String,
        annotation: Annotation,
    },
    Finished {
        step: String,
        #[serde(flatten)]
        outcome: Outcome,
        duration_ms: u64,
        cache_hit: bool,
        outputs: Outputs,
        /// What the step printed (captured so parallel steps do not interleave), relative to
        /// the workspace root.
        log: Option<PathBuf>,
    },
    /// The whole run.
    Done {
        ok: bool,
        duration_ms: u64,
    },
}

/// Where a run's events go: the terminal, JSON lines, GitHub Actions. Events arrive from one
/// thread, in order; a reporter never fails the run (it logs its own trouble).
pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);
}
