//! `--emit github-matrix`: the value a GitHub Actions `strategy.matrix` takes through
//! `fromJSON`, one job per shard.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{Plan, Shard};

/// GitHub runs at most 256 jobs from one matrix; a larger matrix fails the workflow.
pub const MAX_JOBS: usize = 256;

/// Cells one runner takes when the number of shards is chosen automatically: a runner's
/// setup (checkout, toolchain, cache restore) costs about as much as a few cells, so fewer,
/// fuller runners waste less than one runner per cell.
pub const CELLS_PER_RUNNER: usize = 8;

/// The number of shards for `cells` cells: `requested`, or when it is 0
/// `ceil(cells / CELLS_PER_RUNNER)`; never more than the cells (no idle runner) or
/// [`MAX_JOBS`], never less than 1 (GitHub rejects an empty matrix).
pub fn shard_count(cells: usize, requested: usize) -> usize {
    let wanted = if requested == 0 {
        cells.div_ceil(CELLS_PER_RUNNER)
    } else {
        requested
    };
    wanted.min(cells).clamp(1, MAX_JOBS)
}

/// `{"include": [{"shard": "1/4", "name": ..., ...}, ...]}`, for
/// `strategy.matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}`. Each entry carries:
/// - `shard`: the argument of `cargo xtask matrix --shard`;
/// - `name`: a readable job name (shard, packages, cell count);
/// - `cells`: how many cells the shard runs (a runner can check it planned the same);
/// - `toolchains`, `targets`: space-separated, what the job installs before it runs.
///
/// `shards == 0` picks the number with [`shard_count`]. Serialize it with
/// `serde_json::to_string` (one line) for `$GITHUB_OUTPUT`.
pub fn github_matrix(plan: &Plan, shards: usize) -> Value {
    let count = shard_count(plan.cells.len(), shards);
    let include: Vec<Value> = (1..=count)
        .map(|index| {
            let shard = Shard::new(index, count).expect("1 <= index <= count");
            let cells = &plan.cells[shard.range(plan.cells.len())];
            let packages = unique(cells.iter().map(|c| c.package.as_str()));
            let toolchains = unique(cells.iter().map(|c| c.toolchain.as_str()));
            let targets = unique(cells.iter().map(|c| c.target.as_str()));
            json!({
                "shard": shard.to_string(),
                "name": format!("matrix {shard}: {} ({} cells)", summary(&packages), cells.len()),
                "cells": cells.len(),
                "toolchains": toolchains.join(" "),
                "targets": targets.join(" "),
            })
        })
        .collect();
    json!({ "include": include })
}

/// Distinct values, sorted.
fn unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    values.collect::<BTreeSet<_>>().into_iter().collect()
}

/// Up to three package names, then how many more: job names show in a narrow sidebar.
fn summary(packages: &[&str]) -> String {
    match packages.len() {
        0 => "nothing to run".into(),
        1..=3 => packages.join(", "),
        n => format!("{} and {} more", packages[..2].join(", "), n - 2),
    }
}
