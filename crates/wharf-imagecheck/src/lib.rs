//! Checks on a built container image, before it is pushed or promoted.
//!
//! [`check`] reads any [`Image`] once, layer by layer, and returns a [`Report`]: the image
//! runs as a non-root user, fits its size budget, carries the required labels, has no
//! world-writable files, and no layer holds anything that looks like a secret (a file deleted
//! by a later layer is still in the pushed blob, so every layer is searched).
//!
//! Layers come from registries and are untrusted. Everything wrong with one (a `..` entry, an
//! absolute path, a link out of the root, a header claiming a terabyte, a decompression bomb,
//! a symlink loop, a truncated or corrupt stream, a digest that does not match) is a
//! [`Finding`] in the report, never a panic, and never an [`Error`] that would hide the other
//! findings. [`Error`] is only for an image without a readable manifest or config.
//!
//! This crate never writes to the file system, never unpacks a layer, never follows a link on
//! the host (symlinks are resolved in an in-memory tree of the image), and never puts a
//! secret's value in a finding: findings name the path, the layer and the rule.

mod layer;
mod report;
mod secret;
mod tree;
mod user;

use std::collections::BTreeMap;

use wharf_oci::{Digest, Image, ImageConfig, image};

pub use report::{CheckKind, Finding, LayerSummary, Level, Report, Size};

/// What an image must satisfy. The default allows no root, requires no labels and has no
/// size budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Budget for what is pushed: the compressed config and layers, in bytes.
    pub max_size: Option<u64>,
    /// Label keys the config must carry with a non-empty value.
    pub required_labels: Vec<String>,
    /// Accept an image that runs as root.
    pub allow_root: bool,
    pub limits: Limits,
}

/// Bounds on the work one hostile image can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes read from one layer before it is reported as a decompression bomb;
    /// also the largest entry a layer may declare.
    pub max_layer_bytes: u64,
    /// Tar entries kept for the whole image (each costs memory in the file tree).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: 8 << 30,
            max_entries: 4 << 20,
        }
    }
}

/// Why an image could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the image manifest: {0}")]
    Manifest(#[source] wharf_oci::Error),
    #[error("reading config {digest}: {source}")]
    Config {
        digest: Digest,
        #[source]
        source: wharf_oci::Error,
    },
    #[error(
        "config {expected} does not match its digest (computed {actual}, {size} bytes); \
         an altered config cannot be checked"
    )]
    ConfigMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("parsing the config: {0}")]
    ConfigJson(#[source] wharf_oci::Error),
}

/// Checks `image` against `policy`, reading every layer once.
pub fn check<I: Image + ?Sized>(image: &I, policy: &Policy) -> Result<Report, Error> {
    let raw_manifest = image.raw_manifest().map_err(Error::Manifest)?;
    let manifest = image::parse_manifest(&raw_manifest).map_err(Error::Manifest)?;
    let config_digest = manifest.config.digest.clone();
    let raw_config = image.raw_config().map_err(|source| Error::Config {
        digest: config_digest.clone(),
        source,
    })?;
    // `Image::raw_config` verifies only for sources outside the process; check it here so a
    // fake or a new source cannot slip an altered config past the user and label checks.
    let actual = Digest::sha256(&raw_config);
    if actual != config_digest || raw_config.len() as u64 != manifest.config.size {
        return Err(Error::ConfigMismatch {
            expected: config_digest,
            actual,
            size: raw_config.len() as u64,
        });
    }
    let config: ImageConfig = image::parse_config(&raw_config).map_err(Error::ConfigJson)?;

    let mut findings = Vec::new();
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        findings.push(Finding::error(
            CheckKind::Integrity,
            format!(
                "the config lists {} diff ids for {} layers",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }

    let mut tree = tree::Tree::default();
    let mut entries_left = policy.limits.max_entries;
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (index, descriptor) in manifest.layers.iter().enumerate() {
        let scan = layer::Scan {
            descriptor,
            diff_id: diff_ids.get(index),
            limits: &policy.limits,
        };
        let (summary, changes) = scan.run(image, &mut findings, &mut entries_left);
        tree.apply(index, changes);
        layers.push(summary);
    }

    let layer_digests: Vec<&Digest> = manifest.layers.iter().map(|d| &d.digest).collect();
    findings.extend(tree.world_writable(&layer_digests));
    findings.extend(tree.symlink_findings(&layer_digests));

    let run = config.config.as_ref();
    let user = run.and_then(|r| r.user.clone());
    let (uid, user_finding) = user::check(user.as_deref(), &tree, &layer_digests);
    if let Some(finding) = user_finding.filter(|_| !policy.allow_root) {
        findings.push(finding);
    }

    let size = Size {
        compressed: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        uncompressed: layers
            .iter()
            .map(|l: &LayerSummary| l.uncompressed)
            .sum::<Option<u64>>(),
    };
    if let Some(budget) = policy.max_size.filter(|budget| size.compressed > *budget) {
        findings.push(Finding::error(
            CheckKind::Size,
            format!(
                "the image is {} bytes compressed (config and layers), over the budget of {budget}",
                size.compressed
            ),
        ));
    }

    let empty = BTreeMap::new();
    let labels = run.map_or(&empty, |r| &r.labels);
    let missing: Vec<&str> = policy
        .required_labels
        .iter()
        .filter(|key| labels.get(*key).is_none_or(|v| v.trim().is_empty()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        findings.push(Finding::error(
            CheckKind::Labels,
            format!("required labels missing or empty: {}", missing.join(", ")),
        ));
    }

    report::sort(&mut findings, &layer_digests);
    Ok(Report {
        image: Digest::sha256(&raw_manifest),
        size,
        max_size: policy.max_size,
        user,
        uid,
        layers,
        findings,
    })
}
