//! Copying images between locations (`oci:`, `docker://`, `docker-daemon:`): one source,
//! one sink.

use serde::Serialize;
use wharf_engine::Engine;
use wharf_oci::{
    Descriptor, Digest, Image, Index, Layout, Location, Manifest, Platform, Reference, media_type,
};
use wharf_registry::{Client, PushReport};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error(transparent)]
    Registry(#[from] wharf_registry::Error),
    #[error(transparent)]
    Engine(#[from] wharf_engine::Error),
    #[error("{0}")]
    Unsupported(String),
    #[error("{location} has an index that is not valid JSON: {why}")]
    Index { location: String, why: String },
    #[error(
        "{location} names no tag and the layout holds {count} images (add :TAG; tags there: {tags})"
    )]
    Ambiguous {
        location: String,
        count: usize,
        tags: String,
    },
}

/// What a copy did (the `--json` output of `cargo xtask copy` and `push`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    pub digest: Option<Digest>,
    pub source: String,
    pub destination: String,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    /// Signature layers (cosign's `.sig`) the destination gained ([`copy_attachments`]).
    pub signatures: usize,
    /// Referrers (SBOMs, scan reports, provenance) copied ([`copy_attachments`]).
    pub referrers: usize,
}

impl CopyReport {
    fn absorb(&mut self, push: &PushReport) {
        self.blobs_uploaded += push.blobs_uploaded;
        self.blobs_mounted += push.blobs_mounted;
        self.blobs_skipped += push.blobs_skipped;
        self.bytes_uploaded += push.bytes_uploaded;
    }
}

/// Copies the image or index at `source` to `destination`, keeping its digest. An index is
/// copied whole: every manifest it lists (by digest), then the index under the tag.
pub fn copy(
    client: &Client,
    source: &Location,
    destination: &Location,
) -> Result<CopyReport, CopyError> {
    copy_root(client, source, None, destination)
}

/// [`copy`] of the image or index `root` in the layout `source` names, chosen by digest
/// (a layout location names images by tag only; promotion copies by digest).
pub fn copy_from_layout(
    client: &Client,
    source: &Location,
    root: &Descriptor,
    destination: &Location,
) -> Result<CopyReport, CopyError> {
    copy_root(client, source, Some(root), destination)
}

fn copy_root(
    client: &Client,
    source: &Location,
    root: Option<&Descriptor>,
    destination: &Location,
) -> Result<CopyReport, CopyError> {
    let platform = Platform::linux_amd64();
    // Same registry: let the destination mount the blobs instead of sending them.
    let mount_from = match (source, destination) {
        (Location::Registry(from), Location::Registry(to)) if to.registry() == from.registry() => {
            Some(from.repository())
        }
        _ => None,
    };
    let engine = match destination {
        Location::Daemon(_) => Some(Engine::connect()?),
        _ => None,
    };
    let sink = Sink {
        client,
        destination,
        mount_from,
        engine: engine.as_ref(),
    };
    let report = |totals: PushReport| CopyReport {
        digest: totals.digest,
        source: source.to_string(),
        destination: destination.to_string(),
        blobs_uploaded: totals.blobs_uploaded,
        blobs_mounted: totals.blobs_mounted,
        blobs_skipped: totals.blobs_skipped,
        bytes_uploaded: totals.bytes_uploaded,
        ..CopyReport::default()
    };
    let (media_type, bytes) = match source {
        Location::Layout { dir, tag } => {
            let layout = Layout::open(dir)?;
            let descriptor = match root {
                Some(root) => root.clone(),
                None => layout_root(&layout, tag.as_deref(), source)?,
            };
            (
                descriptor.media_type.clone(),
                layout.read_blob_bytes(&descriptor.digest)?,
            )
        }
        Location::Registry(reference) => {
            let manifest = client.manifest(reference)?;
            (manifest.media_type, manifest.bytes)
        }
        Location::Daemon(name) => {
            // The engine keeps single-platform images and no manifests: export to a
            // temporary layout (see wharf_engine) and copy that image.
            let exported = Engine::connect()?.export(name)?;
            return Ok(report(sink.image(exported.image(), true)?));
        }
    };
    // Opens the single-platform image a manifest descriptor names, wherever the source is.
    let open = |descriptor: &Descriptor| -> Result<Box<dyn ImageSync + '_>, CopyError> {
        match source {
            Location::Layout { dir, .. } => {
                Ok(Box::new(Layout::open(dir)?.image(descriptor, &platform)?))
            }
            Location::Registry(reference) => Ok(Box::new(
                client.image(&reference.with_digest(descriptor.digest.clone()), &platform)?,
            )),
            Location::Daemon(_) => unreachable!("engine sources returned above"),
        }
    };
    let root = Descriptor::for_bytes(&media_type, &bytes);
    // Before anything is written: a destination pinned to another digest must not get its
    // tag moved by a copy that then fails.
    if let Location::Registry(reference) = destination
        && let Some(expected) = reference.digest()
    {
        root.digest
            .expect(expected)
            .map_err(|mismatch| wharf_registry::Error::Verify {
                what: format!("copying {source} to {destination}"),
                source: mismatch,
            })?;
    }
    let mut totals = PushReport::default();
    // The engine holds single-platform images: an index goes in as its linux/amd64 image.
    if media_type::is_index(&media_type) && engine.is_none() {
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| CopyError::Index {
            location: source.to_string(),
            why: e.to_string(),
        })?;
        for child in &index.manifests {
            if !media_type::is_manifest(&child.media_type) {
                return Err(CopyError::Unsupported(format!(
                    "{source}: index entry {} is a {}; wharf copies indexes of image manifests only",
                    child.digest, child.media_type
                )));
            }
            totals.absorb(&sink.image(open(child)?.as_ref(), false)?);
        }
        sink.manifest(&media_type, &bytes)?;
        totals.digest = Some(root.digest);
    } else {
        totals = sink.image(open(&root)?.as_ref(), true)?;
    }
    Ok(report(totals))
}

/// Copies what travels with the image `digest` from the repository `from` to `to`: its
/// cosign signatures (the `.sig` manifest; merged with any the destination has, so neither
/// side loses one) and its referrers (SBOMs, scan reports, provenance). Blobs are mounted
/// within one registry, so nothing is sent; manifests keep their digests (a `.sig` the
/// destination lacks is copied byte for byte). Adds to `report`.
pub fn copy_attachments(
    client: &Client,
    from: &Reference,
    to: &Reference,
    digest: &Digest,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    if from.registry() == to.registry() && from.repository() == to.repository() {
        return Ok(()); // They are already there.
    }
    let (from_image, to_image) = (
        from.with_digest(digest.clone()),
        to.with_digest(digest.clone()),
    );
    for descriptor in client.referrers(&from_image, None)? {
        let suffix = referrer_suffix(descriptor.artifact_type.as_deref());
        let pushed = client.copy_referrer(&from_image, &to_image, &descriptor, suffix)?;
        report.absorb(&pushed);
        report.referrers += 1;
    }
    let tag = wharf_sign::signature_tag(digest);
    let tagged = |repo: &Reference| {
        repo.with_tag(&tag)
            .map_err(|e| CopyError::Unsupported(format!("naming the tag {tag}: {e}")))
    };
    let Some(source) = client.manifest_if_present(&tagged(from)?)? else {
        return Ok(());
    };
    let signatures: Manifest = serde_json::from_slice(&source.bytes).map_err(|e| {
        CopyError::Unsupported(format!("{from}:{tag} is not an image manifest: {e}"))
    })?;
    let pushed = client.copy_blobs(
        from,
        to,
        std::iter::once(&signatures.config).chain(&signatures.layers),
    )?;
    report.absorb(&pushed);
    let (media_type, bytes, added) = match client.manifest_if_present(&tagged(to)?)? {
        None => (source.media_type, source.bytes, signatures.layers.len()),
        Some(existing) => {
            let existing: Manifest = serde_json::from_slice(&existing.bytes).map_err(|e| {
                CopyError::Unsupported(format!("{to}:{tag} is not an image manifest: {e}"))
            })?;
            let mut merged = wharf_sign::SignatureManifest::from_existing(Some(existing));
            let added = merged.merge(&signatures);
            if added == 0 {
                return Ok(());
            }
            let config = &merged.manifest.config;
            let open =
                || Ok(Box::new(merged.config.as_slice()) as wharf_oci::image::BlobReader<'_>);
            let mut config_push = PushReport::default();
            config_push.add(client.push_blob(
                to.registry(),
                to.repository(),
                config,
                None,
                &open,
            )?);
            report.absorb(&config_push);
            (
                media_type::OCI_MANIFEST.to_string(),
                merged.manifest_bytes(),
                added,
            )
        }
    };
    client.put_manifest(to.registry(), to.repository(), &tag, &media_type, &bytes)?;
    report.signatures += added;
    Ok(())
}

/// The tag suffix (`sha256-<hex>.<suffix>`) under which a referrer of this artifact type is
/// found on registries without the referrers API.
pub fn referrer_suffix(artifact_type: Option<&str>) -> &'static str {
    match artifact_type {
        Some(media_type::CYCLONEDX_JSON) => "sbom",
        Some(media_type::WHARF_SCAN) => "scan",
        Some(wharf_sign::provenance::IN_TOTO) => "provenance",
        _ => "att",
    }
}

/// The descriptor `tag` names in a layout, or its only entry when no tag is given.
fn layout_root(
    layout: &Layout,
    tag: Option<&str>,
    source: &Location,
) -> Result<Descriptor, CopyError> {
    if let Some(tag) = tag {
        return Ok(layout.resolve(tag)?);
    }
    let index = layout.index()?;
    match index.manifests.as_slice() {
        [only] => Ok(only.clone()),
        many => Err(CopyError::Ambiguous {
            location: source.to_string(),
            count: many.len(),
            tags: layout.tags()?.join(", "),
        }),
    }
}

/// Where images and manifests go.
struct Sink<'a> {
    client: &'a Client,
    destination: &'a Location,
    mount_from: Option<&'a str>,
    /// Connected when the destination is the engine.
    engine: Option<&'a Engine>,
}

impl Sink<'_> {
    /// Writes an image; `tagged` puts it under the destination's tag (a layout with no tag
    /// lists it by digest, as skopeo does), else by digest only (the manifests of an index).
    fn image(&self, image: &dyn ImageSync, tagged: bool) -> Result<PushReport, CopyError> {
        match self.destination {
            Location::Registry(reference) => {
                let target = if tagged {
                    reference.clone()
                } else {
                    let digest = wharf_oci::image::digest(image)?;
                    untagged(reference, digest)
                };
                Ok(self.client.push(image, &target, self.mount_from)?)
            }
            Location::Layout { dir, tag } => {
                let layout = Layout::create(dir)?;
                let tag = if tagged { tag.as_deref() } else { None };
                let (descriptor, stats) =
                    layout.write_image_parallel(image, tag, self.client.parallel())?;
                if tagged && tag.is_none() {
                    layout.add_untagged(&descriptor)?;
                }
                Ok(PushReport {
                    digest: Some(descriptor.digest),
                    blobs_uploaded: stats.blobs_written,
                    blobs_mounted: 0,
                    blobs_skipped: stats.blobs_skipped,
                    bytes_uploaded: stats.bytes_written,
                })
            }
            Location::Daemon(name) => {
                let engine = self.engine.expect("connected for engine destinations");
                let loaded = engine.load(image, name)?;
                Ok(PushReport {
                    digest: Some(loaded.digest),
                    blobs_uploaded: loaded.blobs,
                    blobs_mounted: 0,
                    blobs_skipped: 0,
                    bytes_uploaded: loaded.bytes,
                })
            }
        }
    }

    /// Writes a manifest (an index) under the destination's tag, after what it references.
    fn manifest(&self, media_type: &str, bytes: &[u8]) -> Result<(), CopyError> {
        match self.destination {
            Location::Registry(reference) => {
                let target = match (reference.tag(), reference.digest()) {
                    (Some(tag), _) => tag.to_string(),
                    (None, _) => Digest::sha256(bytes).to_string(),
                };
                self.client.put_manifest(
                    reference.registry(),
                    reference.repository(),
                    &target,
                    media_type,
                    bytes,
                )?;
                Ok(())
            }
            Location::Layout { dir, tag } => {
                let layout = Layout::create(dir)?;
                let descriptor = layout.write_blob_bytes(media_type, bytes)?;
                match tag {
                    Some(tag) => layout.tag(&descriptor, tag)?,
                    None => layout.add_untagged(&descriptor)?,
                }
                Ok(())
            }
            Location::Daemon(_) => unreachable!("indexes go to the engine as one image"),
        }
    }
}

/// `registry/repository@digest`, without a tag.
fn untagged(reference: &Reference, digest: Digest) -> Reference {
    Reference::new(
        reference.registry(),
        reference.repository(),
        None,
        Some(digest),
    )
    .expect("the parts come from a valid reference")
}

/// `Image` with `Sync`, as a trait object (parallel uploads share the source).
pub trait ImageSync: Image + Sync {}
impl<T: Image + Sync> ImageSync for T {}
