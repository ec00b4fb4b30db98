//! The `[matrix]` section of `pipelines/wharf.toml`, as serde types.
//!
//! Every key is optional; unknown keys are rejected, so a typo is an error rather than a
//! silently smaller matrix. Semantic checks (unknown packages and features, a missing
//! `rust-version`) happen in [`crate::plan`], which has the packages to check against.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `[matrix]`: the axes of the test matrix and the cells to add or drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Toolchains, as rustup names them (`stable`, `nightly`, `1.85.0`), or `msrv` for each
    /// package's own `rust-version`. Default: `["stable"]`.
    #[serde(default = "default_toolchains")]
    pub toolchains: Vec<String>,
    /// Target triples. Default (empty): the host triple that [`crate::plan`] is given.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Cargo profiles. Default: `["dev"]`.
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    /// The cargo subcommand every cell runs. Default: `test`.
    #[serde(default)]
    pub command: Command,
    /// The packages to test and how to vary their features. Default (empty): every package
    /// given to [`crate::plan`], with its default features.
    #[serde(default)]
    pub packages: Vec<Package>,
    /// Extra cells, added after `exclude` has run (as GitHub Actions does).
    #[serde(default)]
    pub include: Vec<Include>,
    /// Drops every generated cell that matches all the keys an entry gives.
    #[serde(default)]
    pub exclude: Vec<Exclude>,
    /// How many times a failing test is run again; one that passes on a retry is reported
    /// as flaky. Default: 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds one cell may take (build and tests, retries included) before its whole
    /// process tree is killed. Default: 1800.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Cells run at once. Default (absent): the number of cores. Every cell's cargo takes
    /// compiler slots from one shared pool of that size, so more cells never means more
    /// compilers than cores.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// What runs the tests of a cell. Default: `auto`.
    #[serde(default)]
    pub runner: Runner,
}

/// What runs a cell's tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// `cargo nextest run` when `cargo nextest --version` works and the command is `test`,
    /// else cargo.
    #[default]
    Auto,
    /// `cargo test` (or the configured command); doctests included.
    Cargo,
    /// `cargo nextest run`: each test in its own process; no doctests.
    Nextest,
}

fn default_retries() -> u32 {
    2
}

fn default_timeout_secs() -> u64 {
    1800
}

fn default_toolchains() -> Vec<String> {
    vec!["stable".into()]
}

fn default_profiles() -> Vec<String> {
    vec!["dev".into()]
}

impl Default for Config {
    /// One cell per package: default features, `stable`, the host, `dev`, `cargo test`.
    fn default() -> Config {
        Config {
            toolchains: default_toolchains(),
            targets: Vec::new(),
            profiles: default_profiles(),
            command: Command::default(),
            packages: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            retries: default_retries(),
            timeout_secs: default_timeout_secs(),
            jobs: None,
            runner: Runner::default(),
        }
    }
}

/// The cargo subcommand a cell runs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    #[default]
    Test,
    Check,
    Build,
    Clippy,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Test => "test",
            Command::Check => "check",
            Command::Build => "build",
            Command::Clippy => "clippy",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[matrix.packages]]`: one package and its feature axis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    /// Default: `{ mode = "default" }`, the package's default features only.
    #[serde(default)]
    pub features: Features,
}

/// How a package's features vary, chosen by `mode`. Each mode accepts only its own keys,
/// so `depth` on an `each` entry is an error, not a no-op.
///
/// In every mode a feature list means exactly those features: cells run with
/// `--no-default-features`, and `"default"` in a list turns the default features back on.
///
/// The keys of `each` and `powerset` are repeated rather than flattened from a shared
/// struct: serde ignores `deny_unknown_fields` across `flatten`, and typos must fail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum Features {
    /// The default features only: one cell, no feature flags.
    #[default]
    Default,
    /// No features, each feature (or group) alone, and so the default features too when the
    /// package has a `default` feature: `cargo hack --each-feature`.
    Each {
        /// Features that always go together; a group is varied as one.
        #[serde(default)]
        groups: Vec<Vec<String>>,
        /// Features never varied (still on when another feature enables them).
        #[serde(default)]
        skip: Vec<String>,
        /// Features on in every cell (and so never varied).
        #[serde(default)]
        always: Vec<String>,
        /// Vary the implicit features of optional dependencies (`name = ["dep:name"]` in
        /// `cargo metadata`). Default: true; `cargo hack` needs `--optional-deps` for this.
        #[serde(default = "yes")]
        optional_deps: bool,
    },
    /// Every combination of up to `depth` features (a group counts as one), skipping
    /// combinations with two features of one `exclusive` set and combinations where one
    /// member already enables another: `cargo hack --feature-powerset`.
    Powerset {
        /// Largest number of features (or groups) in one combination; none: no limit.
        #[serde(default)]
        depth: Option<usize>,
        /// Features that always go together; a group counts as one feature.
        #[serde(default)]
        groups: Vec<Vec<String>>,
        /// Sets of mutually exclusive features: no combination holds two of one set.
        #[serde(default)]
        exclusive: Vec<Vec<String>>,
        /// Features never varied (still on when another feature enables them).
        #[serde(default)]
        skip: Vec<String>,
        /// Features on in every cell (and so never varied).
        #[serde(default)]
        always: Vec<String>,
        /// As for `each`.
        #[serde(default = "yes")]
        optional_deps: bool,
    },
    /// Exactly these feature lists, in this order.
    Sets {
        sets: Vec<Vec<String>>,
        /// Added to every set.
        #[serde(default)]
        always: Vec<String>,
    },
}

fn yes() -> bool {
    true
}

/// `[[matrix.include]]`: one extra cell. Missing keys take the first value of their axis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub package: String,
    /// Exactly these features (`"default"` turns the default ones on); missing: the default
    /// features.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// A toolchain or `msrv`.
    #[serde(default)]
    pub toolchain: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
}

/// `[[matrix.exclude]]`: drops the generated cells that match every key given. `features`
/// matches cells that have all of the listed features (`"default"`: the default features
/// are on); `toolchain` matches the name in `toolchains` (`msrv`) or the resolved one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclude {
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub toolchain: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
}
