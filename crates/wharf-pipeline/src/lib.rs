//! Pipelines: the config in `pipelines/wharf.toml`, plans made from it, and running them.
//!
//! Every command is plan, then apply: [`ci::plan`] and [`image::plan`] return plain data
//! that `--dry-run` prints and tests compare; only [`image::build`] and the step runner touch
//! the world. The xtask binary is a thin layer of argument parsing over this crate.

pub mod ci;
pub mod config;
pub mod copy;
pub mod image;
pub mod progress;
pub mod scan;
pub mod sign;
pub mod steps;

pub use config::{CONFIG_PATH, Config, ConfigError};
pub use progress::{Mode, Progress};
