//! Software bills of materials for a Rust binary: the packages cargo compiles into it, for one
//! target and one set of features, as CycloneDX 1.5 JSON or SPDX 2.3 JSON.
//!
//! - [`from_metadata`] walks a `cargo metadata` resolve from the binary's package and redoes
//!   cargo's feature resolution for that package alone (see `walk.rs` for why), giving an
//!   [`Sbom`]: the subject, its packages, and who depends on whom.
//! - [`checksums_from_lockfile`] reads each registry package's sha256 from `Cargo.lock`
//!   (`cargo metadata` does not report checksums).
//! - [`cyclonedx_json`] and [`spdx_json`] write an [`Sbom`]: same `Sbom` and [`Meta`], same
//!   bytes (no clock, no randomness, no hash-map order).
//! - [`from_workspace`] is the one function with side effects: it runs `cargo metadata` and
//!   `rustc --print cfg`, and reads `Cargo.lock`.
//!
//! This crate never touches the network, images or the clock; everything but
//! [`from_workspace`] is pure.

mod cyclonedx;
mod license;
mod lockfile;
mod meta;
mod package;
mod spdx;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::cargo_platform::Cfg;
use cargo_metadata::{CargoOpt, Metadata, MetadataCommand, PackageId};
use serde::Serialize;

pub use cyclonedx::cyclonedx_json;
pub use license::License;
pub use lockfile::{Checksums, LockfileError, checksums_from_lockfile};
pub use meta::Meta;
pub use package::{Package, PackageRef, Source};
pub use spdx::spdx_json;

/// Why an SBOM could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("running cargo metadata for {manifest}: {source}")]
    Metadata {
        manifest: PathBuf,
        #[source]
        source: cargo_metadata::Error,
    },
    #[error(
        "the cargo metadata has no resolve (it was made with --no-deps; run it without, so the dependency graph is there)"
    )]
    NoResolve,
    #[error("no package {package:?} in the workspace (packages: {available})")]
    NoPackage { package: String, available: String },
    #[error("package id {id} is not in the cargo metadata (is it from another workspace?)")]
    NoPackageId { id: String },
    #[error(
        "package {package} has no feature {feature:?} (features: {available}; optional dependencies count as features)"
    )]
    UnknownFeature {
        package: String,
        feature: String,
        available: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed lockfile {path}:{line}:{column}: {message}")]
    Lockfile {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("running {command}: {message}")]
    Rustc { command: String, message: String },
    #[error(
        "timestamp {seconds} is outside the years 1970 to 9999 (pass SOURCE_DATE_EPOCH-style seconds since 1970)"
    )]
    Timestamp { seconds: i64 },
}

/// The features cargo was asked to enable on the root package, as on cargo's command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Features {
    /// `--all-features`.
    pub all: bool,
    /// False for `--no-default-features`.
    pub default: bool,
    /// `--features a,b` (a feature of the root, an optional dependency, or `dep/feature`).
    pub list: Vec<String>,
}

impl Default for Features {
    fn default() -> Features {
        Features {
            all: false,
            default: true,
            list: Vec::new(),
        }
    }
}

/// The platform the binary is built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// `rustc --print cfg --target <triple>`, when known. Without it a `cfg(...)` dependency
    /// is kept (the metadata should have been filtered by `--filter-platform` already); with
    /// it such dependencies are checked.
    pub cfg: Option<Vec<Cfg>>,
}

/// What goes into the SBOM besides the normal dependencies.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub features: Features,
    /// Add the root's dev-dependencies and what they pull in (a test binary's SBOM).
    pub dev: bool,
    /// Add build-dependencies (build scripts' own dependencies) and what they pull in.
    pub build: bool,
    /// Checked against target-specific dependencies; `None` trusts `--filter-platform`.
    pub target: Option<Target>,
}

/// The packages a binary is built from, and the dependency edges among them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sbom {
    /// The binary's own package: CycloneDX's `metadata.component`, SPDX's described package.
    pub subject: Package,
    /// Every other package compiled into the binary, sorted by name, version and source.
    pub packages: Vec<Package>,
    /// Who depends on whom, among the subject and `packages`; every package has an entry.
    pub edges: BTreeMap<PackageRef, BTreeSet<PackageRef>>,
}

impl Sbom {
    /// The subject, then the packages.
    pub fn all_packages(&self) -> impl Iterator<Item = &Package> {
        std::iter::once(&self.subject).chain(&self.packages)
    }
}

/// One identifier per package (subject first), from `make`. Identifiers are meant to be
/// unique already (purls, names with versions); should two packages still share one, the
/// later in sort order gets `<separator>2`, `<separator>3`, ..., so the result is unique and
/// the same on every run.
pub(crate) fn unique_ids(
    sbom: &Sbom,
    make: impl Fn(&Package) -> String,
    separator: &str,
) -> BTreeMap<PackageRef, String> {
    let mut taken = BTreeSet::new();
    let mut ids = BTreeMap::new();
    for package in sbom.all_packages() {
        let base = make(package);
        let mut id = base.clone();
        let mut n = 1;
        while !taken.insert(id.clone()) {
            n += 1;
            id = format!("{base}{separator}{n}");
        }
        ids.insert(package.id(), id);
    }
    ids
}

/// Builds the SBOM of `root` from `cargo metadata` output.
///
/// `metadata` must have a resolve (no `--no-deps`) made with at least the features in
/// `options` (more is fine: the walk redoes feature resolution from `root`), ideally with
/// `--filter-platform <target>`. `checksums` come from [`checksums_from_lockfile`].
pub fn from_metadata(
    metadata: &Metadata,
    root: &PackageId,
    options: &Options,
    checksums: &Checksums,
) -> Result<Sbom, Error> {
    let resolve = metadata.resolve.as_ref().ok_or(Error::NoResolve)?;
    let walked = walk::walk(metadata, resolve, root, options)?;
    let package = |i: usize| Package::from_cargo(&metadata.packages[i], checksums);
    let subject = package(walked.root);
    let mut packages: Vec<Package> = walked
        .packages
        .iter()
        .filter(|&&i| i != walked.root)
        .map(|&i| package(i))
        .collect();
    packages.sort_by_key(Package::id);
    let mut edges: BTreeMap<PackageRef, BTreeSet<PackageRef>> = walked
        .packages
        .iter()
        .map(|&i| (package(i).id(), BTreeSet::new()))
        .collect();
    for (from, to) in walked.edges {
        edges
            .entry(package(from).id())
            .or_default()
            .insert(package(to).id());
    }
    Ok(Sbom {
        subject,
        packages,
        edges,
    })
}

/// Runs `cargo metadata` on the workspace of `manifest_path` for `target` and `features`,
/// reads its `Cargo.lock`, and builds the SBOM of the workspace package `package` (normal
/// dependencies only; see [`from_metadata`] for more).
pub fn from_workspace(
    manifest_path: &Path,
    package: &str,
    target: &str,
    features: &Features,
) -> Result<Sbom, Error> {
    let mut command = MetadataCommand::new();
    command
        .manifest_path(manifest_path)
        .other_options(vec!["--filter-platform".to_string(), target.to_string()]);
    if features.all {
        command.features(CargoOpt::AllFeatures);
    }
    if !features.default {
        command.features(CargoOpt::NoDefaultFeatures);
    }
    if !features.list.is_empty() {
        // `package/feature`: in a virtual workspace cargo refuses unqualified features.
        let list = features
            .list
            .iter()
            .map(|f| match f.contains('/') {
                true => f.clone(),
                false => format!("{package}/{f}"),
            })
            .collect();
        command.features(CargoOpt::SomeFeatures(list));
    }
    tracing::debug!(command = ?command.cargo_command(), "starting process");
    let metadata = command.exec().map_err(|source| Error::Metadata {
        manifest: manifest_path.to_path_buf(),
        source,
    })?;
    let root = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == package)
        .map(|p| p.id.clone())
        .ok_or_else(|| Error::NoPackage {
            package: package.to_string(),
            available: metadata
                .workspace_packages()
                .iter()
                .map(|p| p.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let lock_path = metadata
        .workspace_root
        .join("Cargo.lock")
        .into_std_path_buf();
    let text = std::fs::read_to_string(&lock_path).map_err(|source| Error::Read {
        path: lock_path.clone(),
        source,
    })?;
    let checksums = checksums_from_lockfile(&text).map_err(|e| e.in_file(&lock_path))?;
    let options = Options {
        features: features.clone(),
        target: Some(Target {
            triple: target.to_string(),
            cfg: Some(target_cfg(target)?),
        }),
        ..Options::default()
    };
    from_metadata(&metadata, &root, &options, &checksums)
}

/// `rustc --print cfg --target <triple>`, parsed.
fn target_cfg(triple: &str) -> Result<Vec<Cfg>, Error> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let command = format!("rustc --print cfg --target {triple}");
    tracing::debug!(command, "starting process");
    let out = Command::new(rustc)
        .args(["--print", "cfg", "--target", triple])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Rustc {
            command: command.clone(),
            message: format!("{e} (is rustc installed and on PATH?)"),
        })?;
    if !out.status.success() {
        return Err(Error::Rustc {
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.parse().map_err(|e| Error::Rustc {
                command: command.clone(),
                message: format!("unparsable cfg line {l:?}: {e}"),
            })
        })
        .collect()
}
