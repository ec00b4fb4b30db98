//! Daemonless, reproducible image builds.
//!
//! [`build`] turns a [`BuildSpec`] (a base image, layers of files, and how to run the
//! container) into an image in an OCI layout. Given the same spec it writes the same bytes:
//! tar entries are sorted, owners numeric, modes normalized, mtimes fixed to
//! `SOURCE_DATE_EPOCH`, gzip settings pinned, and all JSON canonical. A layer whose content
//! is already in the layout is reused without compressing it again.
//!
//! This crate never starts processes or opens network connections: the binary comes in
//! already built, and the base image comes in as any [`wharf_oci::Image`].

mod layer;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use serde::Serialize;
use wharf_oci::{
    ContainerConfig, Descriptor, Digest, History, Image, ImageConfig, Layout, Manifest, Platform,
    canonical_json, image, media_type,
};

pub use layer::{
    Content, FileEntry, Layer, LayerSpec, Ownership, compress_tar, diff_id, write_layer,
    write_layer_cached, write_tar,
};

/// The user images run as unless told otherwise: the "nonroot" user of distroless images.
pub const DEFAULT_USER: u64 = 65532;

/// Label keys from the OCI image spec's pre-defined annotations.
pub mod label {
    pub const TITLE: &str = "org.opencontainers.image.title";
    pub const VERSION: &str = "org.opencontainers.image.version";
    pub const REVISION: &str = "org.opencontainers.image.revision";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const SOURCE: &str = "org.opencontainers.image.source";
    pub const LICENSES: &str = "org.opencontainers.image.licenses";
    pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
    pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading build input {path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("path {0} is not valid UTF-8 (rename it; image paths must be UTF-8)")]
    NonUtf8Path(PathBuf),
    #[error(
        "image path {0:?} is not a clean absolute file path (no '.', '..', '//' or trailing '/')"
    )]
    BadImagePath(String),
    #[error("image path {0:?} is added twice to the same layer")]
    Duplicate(String),
    #[error(
        "layer {description:?} changed while it was being built (is something still writing its files?)"
    )]
    Changed { description: String },
    #[error("writing layer: {0}")]
    Tar(#[source] io::Error),
    #[error(
        "layer {description:?} changed while it was being built (is something still writing its files?)"
    )]
    Unstable { description: String },
    #[error(
        "base image {base} is for {actual}, not {platform} (build on a base made for {platform}, or on scratch)"
    )]
    BasePlatform {
        base: String,
        platform: String,
        actual: String,
    },
    #[error("SOURCE_DATE_EPOCH {0} is out of range for a timestamp")]
    Epoch(i64),
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
}

/// The base image to build on.
pub struct Base<'a> {
    /// Shown in the `org.opencontainers.image.base.name` annotation, e.g. `oci:base:v1`.
    pub name: String,
    pub image: &'a dyn Image,
}

/// Everything a build needs, as plain data.
pub struct BuildSpec<'a> {
    /// `None` builds on `scratch`, an empty root file system.
    pub base: Option<Base<'a>>,
    pub layers: Vec<LayerSpec>,
    /// Seconds since the epoch, from `SOURCE_DATE_EPOCH` or the commit time.
    pub created: i64,
    pub uid: u64,
    pub gid: u64,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// e.g. `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub working_dir: Option<String>,
    /// OCI labels, also written as manifest annotations.
    pub labels: BTreeMap<String, String>,
    /// The platform the layers' binaries are for; a base must be for the same one.
    pub platform: Platform,
    /// Where else to look for compressed layers before compressing one.
    pub cache: Option<&'a LayerCache>,
}

impl BuildSpec<'_> {
    /// A spec with wharf's defaults: scratch, user 65532, no layers.
    pub fn new(created: i64) -> BuildSpec<'static> {
        BuildSpec {
            base: None,
            layers: Vec::new(),
            created,
            uid: DEFAULT_USER,
            gid: DEFAULT_USER,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            exposed_ports: Vec::new(),
            working_dir: None,
            labels: BTreeMap::new(),
            platform: Platform::linux_amd64(),
            cache: None,
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug, Serialize)]
pub struct Built {
    pub descriptor: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Layer>,
}

/// Formats seconds since the epoch as RFC 3339 in UTC, as the OCI spec wants `created`.
pub fn rfc3339(seconds: i64) -> Result<String, Error> {
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| Error::Epoch(seconds))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Builds the image into `layout` and tags it `tag` there (when given).
pub fn build(spec: &BuildSpec<'_>, layout: &Layout, tag: Option<&str>) -> Result<Built, Error> {
    let created = rfc3339(spec.created)?;
    let owner = Ownership {
        uid: spec.uid,
        gid: spec.gid,
        mtime: u64::try_from(spec.created).map_err(|_| Error::Epoch(spec.created))?,
    };
    let known = known_layers(layout)?;
    let layers = spec
        .layers
        .iter()
        .map(|l| match spec.cache {
            Some(cache) => write_layer_cached(l, owner, layout, &known, cache),
            None => write_layer(l, owner, layout, &known),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (mut config, mut manifest_layers) = match &spec.base {
        Some(base) => {
            let config = image::config(base.image)?;
            let platform = &spec.platform;
            if config.os != platform.os
                || config.architecture != platform.architecture
                || (platform.variant.is_some() && config.variant != platform.variant)
            {
                return Err(Error::BasePlatform {
                    base: base.name.clone(),
                    platform: platform.to_string(),
                    actual: format!("{}/{}", config.os, config.architecture),
                });
            }
            (config, image::manifest(base.image)?.layers)
        }
        None => (
            ImageConfig {
                architecture: spec.platform.architecture.clone(),
                os: spec.platform.os.clone(),
                variant: spec.platform.variant.clone(),
                ..ImageConfig::default()
            },
            Vec::new(),
        ),
    };
    config.created = Some(created.clone());
    config.author = None;
    let run = config.config.get_or_insert_with(ContainerConfig::default);
    run.user = Some(format!("{}:{}", spec.uid, spec.gid));
    if !spec.entrypoint.is_empty() {
        run.entrypoint = Some(spec.entrypoint.clone());
        // A base image's Cmd was written for its own entrypoint, so it goes too.
        run.cmd = None;
    }
    if !spec.cmd.is_empty() {
        run.cmd = Some(spec.cmd.clone());
    }
    for var in &spec.env {
        let name = var.split('=').next().unwrap_or(var);
        run.env.retain(|e| e.split('=').next() != Some(name));
        run.env.push(var.clone());
    }
    for port in &spec.exposed_ports {
        run.exposed_ports.insert(port.clone(), Default::default());
    }
    if spec.working_dir.is_some() {
        run.working_dir = spec.working_dir.clone();
    }
    let mut labels = spec.labels.clone();
    labels.insert(label::CREATED.into(), created.clone());
    run.labels.extend(labels.clone());

    let base_layers: BTreeSet<Digest> = manifest_layers.iter().map(|l| l.digest.clone()).collect();
    for (layer, layer_spec) in layers.iter().zip(&spec.layers) {
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(format!("wharf: {}", layer_spec.description)),
            comment: Some("built by wharf".into()),
            ..History::default()
        });
        manifest_layers.push(layer.descriptor.clone());
    }

    let mut annotations = labels;
    if let Some(base) = &spec.base {
        annotations.insert(label::BASE_NAME.into(), base.name.clone());
        annotations.insert(
            label::BASE_DIGEST.into(),
            image::digest(base.image)?.to_string(),
        );
    }
    let config_bytes = canonical_json(&config);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::for_bytes(media_type::OCI_CONFIG, &config_bytes),
        layers: manifest_layers,
        subject: None,
        annotations,
    };
    let built = BuiltImage {
        manifest: canonical_json(&manifest),
        config: config_bytes,
        layout,
        base: spec.base.as_ref().map(|b| b.image),
        base_layers,
    };
    let (descriptor, _) = layout.write_image(&built, tag)?;
    Ok(Built {
        descriptor,
        config: manifest.config,
        layers,
    })
}

/// Compressed layers kept across machines: CI saves the directory after a build and
/// restores it on a fresh runner, where a layer whose diff id (the hash of its uncompressed
/// tar, so of the binary in it) is cached is copied instead of compressed again.
///
/// The cache is an OCI layout holding the last image built under each name ([`keep`]):
/// its blobs are written and checked like any layout's, and its index of diff ids is derived
/// from the images' configs ([`known_layers`]), so it cannot disagree with its blobs.
///
/// [`keep`]: LayerCache::keep
pub struct LayerCache {
    layout: Layout,
    known: BTreeMap<Digest, Descriptor>,
}

impl LayerCache {
    /// Opens the cache at `dir`, creating it if it is not there.
    pub fn open(dir: &std::path::Path) -> Result<LayerCache, Error> {
        let layout = Layout::create(dir)?;
        let known = known_layers(&layout)?;
        Ok(LayerCache { layout, known })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The cached compressed layer with this diff id, if its blob is intact.
    pub fn find(&self, diff_id: &Digest) -> Option<&Descriptor> {
        self.known
            .get(diff_id)
            .filter(|d| self.layout.has_intact_blob(d))
    }

    /// Keeps `image`'s layers under `name` (a tag), replacing what that name kept before,
    /// and removes the blobs no name keeps any more, so the cache holds the last image of
    /// each name, not every build's. Returns how many blobs were removed.
    ///
    /// A build keeping into the same cache at that moment may lose a blob it has just
    /// written: its entry is then damaged, which [`LayerCache::find`] skips (the layer is
    /// compressed again), never trusts.
    pub fn keep(&self, image: &dyn Image, name: &str) -> Result<usize, Error> {
        self.layout.write_image(image, Some(name))?;
        let mut kept = BTreeSet::new();
        for entry in self.layout.index()?.manifests {
            if let Ok(raw) = self.layout.read_blob_bytes(&entry.digest)
                && let Ok(manifest) = serde_json::from_slice::<Manifest>(&raw)
            {
                kept.insert(manifest.config.digest.hex().to_string());
                kept.extend(manifest.layers.iter().map(|l| l.digest.hex().to_string()));
            }
            kept.insert(entry.digest.hex().to_string());
        }
        let blobs = self.layout.root().join("blobs/sha256");
        let mut removed = 0;
        for file in std::fs::read_dir(&blobs).map_err(Error::Tar)?.flatten() {
            if !kept.contains(file.file_name().to_string_lossy().as_ref())
                && std::fs::remove_file(file.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Compressed layers already in the layout, by uncompressed digest, derived from the
/// configs of the images its index references. This is the build cache: nothing else is
/// stored, so it can never disagree with the layout.
pub fn known_layers(layout: &Layout) -> Result<BTreeMap<Digest, Descriptor>, Error> {
    let mut known = BTreeMap::new();
    let mut manifests = Vec::new();
    for entry in layout.index()?.manifests {
        if media_type::is_manifest(&entry.media_type) {
            manifests.push(entry);
        } else if media_type::is_index(&entry.media_type) {
            // A multi-platform image: its per-platform manifests hold the layers.
            let Ok(raw) = layout.read_blob_bytes(&entry.digest) else {
                continue;
            };
            if let Ok(index) = serde_json::from_slice::<wharf_oci::Index>(&raw) {
                manifests.extend(index.manifests);
            }
        }
    }
    for entry in manifests {
        if !media_type::is_manifest(&entry.media_type) {
            continue;
        }
        let Ok(img) = layout.image(&entry, &Platform::linux_amd64()) else {
            continue;
        };
        let (Ok(manifest), Ok(config)) = (image::manifest(&img), image::config(&img)) else {
            continue;
        };
        for (diff_id, layer) in config.rootfs.diff_ids.into_iter().zip(manifest.layers) {
            known.entry(diff_id).or_insert(layer);
        }
    }
    Ok(known)
}

/// The image being written: our layers are already in the layout, base layers come from
/// the base image.
struct BuiltImage<'a> {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layout: &'a Layout,
    base: Option<&'a dyn Image>,
    base_layers: BTreeSet<Digest>,
}

impl Image for BuiltImage<'_> {
    fn raw_manifest(&self) -> wharf_oci::Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn raw_config(&self) -> wharf_oci::Result<Vec<u8>> {
        Ok(self.config.clone())
    }

    fn blob(&self, digest: &Digest) -> wharf_oci::Result<image::BlobReader<'_>> {
        if *digest == Digest::sha256(&self.config) {
            return Ok(Box::new(io::Cursor::new(self.config.clone())));
        }
        // The layout asks only for blobs it lacks or holds damaged: a base layer then comes
        // from the base (a damaged copy in the layout is not read again), ours from the
        // layout, where the build has just written them.
        match self.base {
            Some(base) if self.base_layers.contains(digest) => base.blob(digest),
            _ => self.layout.blob(digest),
        }
    }
}
