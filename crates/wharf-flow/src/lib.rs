//! Pipelines as graphs of steps.
//!
//! A [`Step`] has an id, the steps it needs, declared [`Inputs`] and typed [`Outputs`], and
//! runs through one trait, so a capability adds a step without touching a central list.
//! A pipeline is a set of steps; running one is plan, then apply:
//!
//! 1. [`Facts`] are gathered once (git, toolchain, environment, input files' hashes);
//! 2. planning is pure: facts and steps in, a [`Plan`] out (the order, each step's cache key);
//! 3. the runner starts every step whose needs are met, within a bound, skips those whose key
//!    is in the cache (replaying their outputs), and sends [`Event`]s to a [`Reporter`].
//!
//! It never reads a config file or parses a command line: steps are built by whoever composes
//! the pipeline, and the CLI lives above this crate.

pub mod cache;
pub mod context;
pub mod diagnostics;
pub mod event;
pub mod facts;
pub mod plan;
pub mod report;
pub mod run;
pub mod step;

pub use cache::{Cache, Entry};
pub use context::Context;
pub use event::{Annotation, Event, Level, Outcome, Reporter};
pub use facts::{Facts, FactsError, FileFact, Git};
pub use plan::{Pipeline, Plan, PlanError, PlannedStep, plan};
pub use run::{RunError, RunOptions, RunSummary, StepSummary, run};
pub use step::{Inputs, Output, Outputs, Step, StepError};
