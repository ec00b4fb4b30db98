//! The test matrix as plain data: which `cargo test` runs (cells) a workspace needs, how
//! they split across CI runners, and the GitHub Actions matrix that runs the split.
//!
//! [`plan`] turns a [`Config`] (the `[matrix]` section of `pipelines/wharf.toml`), the
//! packages' features and `rust-version` (as `cargo metadata` gives them) and the host
//! triple into a [`Plan`]: packages x feature sets x toolchains x targets x profiles, minus
//! `exclude`, plus `include`, deduplicated, in a fixed order. [`shard`] picks the cells of
//! `--shard K/N`; [`github_matrix`] writes the `strategy.matrix` with one job per shard.
//!
//! This crate is pure: it never runs cargo or rustup, reads a file or the environment, or
//! looks at the clock. Running the cells is the caller's job; every [`Cell`] says how
//! ([`Cell::argv`]).
//!
//! # The `[matrix]` section
//!
//! ```toml
//! [matrix]
//! toolchains = ["stable", "nightly", "msrv"]  # default ["stable"]; msrv = rust-version
//! targets = ["x86_64-unknown-linux-gnu"]      # default: the host
//! profiles = ["dev"]                          # default ["dev"]
//! command = "test"                            # test | check | build | clippy
//! retries = 2                                 # a test passing on a retry is flaky
//! timeout_secs = 1800                         # per cell; then its process tree is killed
//! jobs = 2                                    # cells at once; default: the cores
//! runner = "auto"                             # auto | cargo | nextest
//!
//! [[matrix.packages]]                         # default: every package, default features
//! name = "wharf-tag"
//! features = { mode = "powerset", depth = 2, groups = [["a", "b"]], exclusive = [["x", "y"]], skip = ["nightly-only"], always = ["std"] }
//!
//! [[matrix.packages]]
//! name = "wharf-policy"
//! features = { mode = "each" }                # optional: groups, skip, always, optional_deps
//!
//! [[matrix.packages]]
//! name = "wharf-oci"
//! features = { mode = "sets", sets = [[], ["default"], ["a", "b"]] }  # optional: always
//!
//! [[matrix.exclude]]                          # drop cells matching every key given
//! package = "wharf-policy"
//! toolchain = "nightly"
//! features = ["x"]                            # cells having all of these features
//!
//! [[matrix.include]]                          # one more cell; missing keys: first of axis
//! package = "wharf-tag"
//! features = ["a"]
//! toolchain = "beta"
//! ```
//!
//! A feature list always means exactly those features: the cell runs with
//! `--no-default-features`, and `"default"` in the list turns the default features back on.
//! `[]` is "no features", `["default"]` is plain `cargo test`. `mode = "default"` (or no
//! `features` key) is one cell with the default features.
//!
//! # Features, compared with cargo-hack
//!
//! `each` and `powerset` follow `cargo hack --each-feature` and `--feature-powerset`
//! (`--depth N`, `--group-features a,b`, `--mutually-exclusive-features x,y`, `--skip f`,
//! `--features f` for `always`):
//! - every cell runs with `--no-default-features`; `default` is a feature like the others,
//!   so `{default}` is the run with default features, and the empty set (no features) is
//!   always a cell;
//! - a group counts as one feature towards `depth`; its members are all on or all off;
//! - a combination is skipped when it turns on two features of one exclusive set, counting
//!   what each feature enables (`rt = ["tokio"]` is as exclusive with `async-std` as
//!   `tokio` is);
//! - a combination is skipped when one member already turns on all of another (it builds
//!   the same as the smaller one), and so is a feature that the `always` ones turn on;
//! - features come from `cargo metadata`: `dep:x` entries are dependencies, not features;
//!   `x/f` turns on feature `x` only when `x` is an optional dependency's implicit feature.
//!
//! Where it differs: optional dependencies' implicit features (`x = ["dep:x"]`, listed only
//! when no feature says `dep:x`) are varied by default, as cargo lets users turn them on
//! (`optional_deps = false` leaves them out, like cargo-hack without `--optional-deps`);
//! there is no extra `--all-features` cell (add it with `sets` or `include`, since all
//! features at once is often not buildable with exclusive features); unknown features in
//! `skip`, `groups`, `exclusive` or `always` are errors, not warnings; a group or `always`
//! holding two features of one exclusive set is an error; a package producing more than
//! [`MAX_SETS`] feature sets is an error rather than an afternoon of CI.
//!
//! # Order
//!
//! Packages in config order (all packages: by name), then toolchains, targets and profiles
//! in config order, then feature sets (no features first, then by size and name; `sets`
//! as written); then `include` entries. Neighbouring cells differ only in features, so a
//! shard (a contiguous run of cells) compiles each dependency set once. The order of the
//! packages passed in does not matter.

mod config;
mod features;
mod github;
mod shard;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::{Command, Config, Exclude, Features, Include, Package, Runner};
pub use features::{FeatureSet, MAX_SETS};
pub use github::{CELLS_PER_RUNNER, MAX_JOBS, github_matrix, shard_count};
pub use shard::{Shard, ShardError, shard};

use features::Catalog;

fn yes() -> bool {
    true
}

/// The toolchain name that stands for each package's `rust-version`.
pub const MSRV: &str = "msrv";

/// What the plan needs to know about a package, as `cargo metadata` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub name: String,
    /// Feature -> what it enables (`other-feature`, `dep:name`, `dep/feature`,
    /// `dep?/feature`), including the implicit features of optional dependencies.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// `package.rust-version`, e.g. `"1.85"`.
    #[serde(default)]
    pub rust_version: Option<String>,
}

/// Why a matrix cannot be planned. Every message names the package, feature or key at
/// fault and the valid choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("unknown package {name:?} in [matrix] {key} ({known})")]
    UnknownPackage {
        name: String,
        key: &'static str,
        known: String,
    },
    #[error("unknown feature {feature:?} of package {package:?} in [matrix] ({known})")]
    UnknownFeature {
        package: String,
        feature: String,
        known: String,
    },
    #[error("unknown feature {feature:?} in [[matrix.exclude]]: no planned package has it")]
    UnknownExcludeFeature { feature: String },
    #[error(
        "package {package:?} has no rust-version, so toolchain \"msrv\" means nothing for it (hint: set package.rust-version in its Cargo.toml, or exclude it with [[matrix.exclude]] toolchain = \"msrv\", package = {package:?})"
    )]
    NoRustVersion { package: String },
    #[error(
        "package {package:?} has rust-version {version:?}, which is not MAJOR.MINOR or MAJOR.MINOR.PATCH"
    )]
    InvalidRustVersion { package: String, version: String },
    #[error(
        "feature {feature:?} of package {package:?} is in both {first} and {second} in [matrix]"
    )]
    Overlap {
        package: String,
        feature: String,
        first: &'static str,
        second: &'static str,
    },
    #[error(
        "features {features:?} of package {package:?} are mutually exclusive, but {what} turns them on together"
    )]
    ExclusiveTogether {
        package: String,
        what: &'static str,
        features: Vec<String>,
    },
    #[error("package {package:?} would have {} feature sets ({elements} features, depth {depth}; at most {max}) (hint: lower depth, or add groups or skip)", count.map_or("more than 2^128".into(), |c| c.to_string()), max = MAX_SETS)]
    TooManySets {
        package: String,
        elements: usize,
        depth: usize,
        /// `None`: more than `u128` holds.
        count: Option<u128>,
    },
    #[error(
        "[matrix] {key} is empty, so the matrix has no cells (hint: remove the key for its default)"
    )]
    EmptyAxis { key: &'static str },
    #[error("[[matrix.exclude]] entry {index} gives no keys, so it would drop every cell")]
    EmptyExclude { index: usize },
    #[error("package {name:?} is given twice")]
    DuplicatePackage { name: String },
}

/// One run: a package, its features, a toolchain, a target and a profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub package: String,
    /// Sorted; never contains `"default"` (that is `no_default_features: false`).
    pub features: Vec<String>,
    pub no_default_features: bool,
    /// Resolved: `msrv` is already the version, e.g. `1.85.0`.
    pub toolchain: String,
    pub target: String,
    /// Whether [`Cell::argv`] passes `--target`: true when the target came from
    /// `[matrix] targets` or an include, false for the default (the host). Without
    /// `--target` cargo builds into its usual directories, so the cell shares artifacts
    /// with plain `cargo test` instead of building every dependency again under
    /// `target/<triple>/`.
    #[serde(default = "yes")]
    pub target_flag: bool,
    pub profile: String,
    pub command: Command,
}

impl Cell {
    /// `package/features/toolchain/target/profile`, e.g.
    /// `wharf-tag/a+b/stable/x86_64-unknown-linux-gnu/dev`; the feature part is
    /// [`FeatureSet::label`] (`no-default`, `default`, `a+b`, `default+a`).
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.package,
            self.feature_set().label(),
            self.toolchain,
            self.target,
            self.profile
        )
    }

    pub fn feature_set(&self) -> FeatureSet {
        FeatureSet {
            no_default_features: self.no_default_features,
            features: self.features.clone(),
        }
    }

    /// The cargo command line that runs this cell locally, e.g. `cargo +nightly test -p
    /// wharf-tag --no-default-features --features a,b --target ... --profile dev`.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![
            "cargo".to_string(),
            format!("+{}", self.toolchain),
            self.command.to_string(),
            "-p".into(),
            self.package.clone(),
        ];
        if self.no_default_features {
            argv.push("--no-default-features".into());
        }
        if !self.features.is_empty() {
            argv.push("--features".into());
            argv.push(self.features.join(","));
        }
        // --target and --profile last; --target is dropped below for the default host.
        argv.extend([
            "--target".into(),
            self.target.clone(),
            "--profile".into(),
            self.profile.clone(),
        ]);
        if !self.target_flag {
            let at = argv.len() - 4;
            argv.drain(at..at + 2);
        }
        argv
    }
}

/// The cells to run, in order. `Display` is the `--dry-run` listing; the JSON (serde) is
/// `{"cells": [{"id", "package", "features", "no_default_features", "toolchain", "target",
/// "profile", "command", "argv"}, ...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub cells: Vec<Cell>,
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // id and argv are derived, but a reader of the JSON (a dashboard, a person) wants
        // them without reimplementing them.
        #[derive(Serialize)]
        struct Row<'a> {
            id: String,
            #[serde(flatten)]
            cell: &'a Cell,
            argv: Vec<String>,
        }
        #[derive(Serialize)]
        struct Rows<'a> {
            cells: Vec<Row<'a>>,
        }
        Rows {
            cells: self
                .cells
                .iter()
                .map(|cell| Row {
                    id: cell.id(),
                    cell,
                    argv: cell.argv(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.cells.len();
        writeln!(f, "{n} cell{}", if n == 1 { "" } else { "s" })?;
        for cell in &self.cells {
            writeln!(f, "  {}", cell.id())?;
            writeln!(f, "      {}", cell.argv().join(" "))?;
        }
        Ok(())
    }
}

/// Plans the matrix. `packages` are the workspace's packages (any order); `host` is the
/// default target.
pub fn plan(config: &Config, packages: &[PackageInfo], host: &str) -> Result<Plan, Error> {
    let mut by_name = BTreeMap::new();
    for package in packages {
        if by_name.insert(package.name.as_str(), package).is_some() {
            return Err(Error::DuplicatePackage {
                name: package.name.clone(),
            });
        }
    }
    let lookup = |name: &str, key: &'static str| {
        by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownPackage {
                name: name.to_string(),
                key,
                known: known_packages(&by_name),
            })
    };

    let host_only = [host.to_string()];
    let targets: &[String] = if config.targets.is_empty() {
        &host_only
    } else {
        &config.targets
    };
    for (key, axis) in [
        ("toolchains", &config.toolchains[..]),
        ("profiles", &config.profiles[..]),
    ] {
        if axis.is_empty() {
            return Err(Error::EmptyAxis { key });
        }
    }

    // What to vary, per package: explicit entries in config order, else every package.
    let defaults: Vec<Package> = by_name
        .keys()
        .map(|name| Package {
            name: name.to_string(),
            features: Features::Default,
        })
        .collect();
    let entries = if config.packages.is_empty() {
        &defaults
    } else {
        &config.packages
    };
    let mut planned = Vec::new();
    for entry in entries {
        let info = lookup(&entry.name, "packages")?;
        let sets = Catalog::new(info).sets(&entry.features)?;
        planned.push((info, sets));
    }

    check_excludes(config, &planned, &lookup)?;

    let mut cells = Vec::new();
    let mut seen = HashSet::new();
    for (info, sets) in &planned {
        for toolchain in &config.toolchains {
            // An msrv without rust-version is an error only if a cell survives `exclude`:
            // excluding those cells is how a config says "no msrv for this package".
            let resolved = resolve_toolchain(toolchain, info);
            for target in targets {
                for profile in &config.profiles {
                    for set in sets {
                        let cell = Cell {
                            package: info.name.clone(),
                            features: set.features.clone(),
                            no_default_features: set.no_default_features,
                            toolchain: resolved.clone().unwrap_or_else(|_| toolchain.clone()),
                            target: target.clone(),
                            target_flag: !config.targets.is_empty(),
                            profile: profile.clone(),
                            command: config.command,
                        };
                        if config.exclude.iter().any(|e| excludes(e, &cell, toolchain)) {
                            continue;
                        }
                        if let Err(e) = &resolved {
                            return Err(e.clone());
                        }
                        if seen.insert(cell.clone()) {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
    }

    for include in &config.include {
        let info = lookup(&include.package, "include")?;
        let set = match &include.features {
            Some(list) => {
                Catalog::new(info).check(list)?;
                FeatureSet::exactly(list)
            }
            None => FeatureSet::default_features(),
        };
        let toolchain = include.toolchain.as_ref().unwrap_or(&config.toolchains[0]);
        let cell = Cell {
            package: info.name.clone(),
            features: set.features,
            no_default_features: set.no_default_features,
            toolchain: resolve_toolchain(toolchain, info)?,
            target: include.target.clone().unwrap_or_else(|| targets[0].clone()),
            target_flag: include.target.is_some() || !config.targets.is_empty(),
            profile: include
                .profile
                .clone()
                .unwrap_or_else(|| config.profiles[0].clone()),
            command: config.command,
        };
        if seen.insert(cell.clone()) {
            cells.push(cell);
        }
    }
    Ok(Plan { cells })
}

/// Exclude entries that could never match are typos: refuse them.
fn check_excludes<'a>(
    config: &Config,
    planned: &[(&PackageInfo, Vec<FeatureSet>)],
    lookup: &impl Fn(&str, &'static str) -> Result<&'a PackageInfo, Error>,
) -> Result<(), Error> {
    for (i, exclude) in config.exclude.iter().enumerate() {
        if *exclude == Exclude::default() {
            return Err(Error::EmptyExclude { index: i + 1 });
        }
        let features = exclude.features.as_deref().unwrap_or_default();
        match &exclude.package {
            Some(name) => Catalog::new(lookup(name, "exclude")?).check(features)?,
            None => {
                for feature in features {
                    let known = feature == "default"
                        || planned
                            .iter()
                            .any(|(info, _)| info.features.contains_key(feature));
                    if !known {
                        return Err(Error::UnknownExcludeFeature {
                            feature: feature.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// `axis_toolchain` is the name in `toolchains` (`msrv`), `cell.toolchain` the resolved one.
fn excludes(exclude: &Exclude, cell: &Cell, axis_toolchain: &str) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
    eq(&exclude.package, &cell.package)
        && exclude
            .toolchain
            .as_ref()
            .is_none_or(|t| t == axis_toolchain || *t == cell.toolchain)
        && eq(&exclude.target, &cell.target)
        && eq(&exclude.profile, &cell.profile)
        && exclude
            .features
            .as_ref()
            .is_none_or(|list| cell.feature_set().contains_all(list))
}

/// `msrv` -> the package's rust-version with the patch filled in (`1.85` -> `1.85.0`,
/// what rustup installs for `1.85`); any other name as it is.
fn resolve_toolchain(toolchain: &str, package: &PackageInfo) -> Result<String, Error> {
    if toolchain != MSRV {
        return Ok(toolchain.to_string());
    }
    let version = package
        .rust_version
        .as_deref()
        .ok_or_else(|| Error::NoRustVersion {
            package: package.name.clone(),
        })?;
    let invalid = || Error::InvalidRustVersion {
        package: package.name.clone(),
        version: version.to_string(),
    };
    let parts: Vec<&str> = version.trim().split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) {
        return Err(invalid());
    }
    let patch = parts.get(2).copied().unwrap_or("0");
    Ok(format!("{}.{}.{patch}", parts[0], parts[1]))
}

fn known_packages(by_name: &BTreeMap<&str, &PackageInfo>) -> String {
    if by_name.is_empty() {
        "no packages were given".into()
    } else {
        let names: Vec<&str> = by_name.keys().copied().collect();
        format!("known: {}", names.join(", "))
    }
}
