//! Where a stage's image lives: a registry repository or an OCI layout, and the few things
//! promotion does there (read an image by digest, copy one in by digest, read and move tags).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use wharf_oci::{Descriptor, Digest, Layout, Location, Reference, media_type};
use wharf_pipeline::copy;
use wharf_registry::Client;

/// A stage's location, parsed once.
#[derive(Clone, Debug)]
pub enum Place {
    /// An OCI layout (the embedded default): the directory, relative paths already joined
    /// to the workspace root.
    Layout(std::path::PathBuf),
    /// A registry repository (any tag or digest in the config is dropped).
    Registry(Reference),
}

/// What promotion reads from an image: the size its gate checks and the labels that name
/// its version and commit.
#[derive(Clone, Debug, Default)]
pub struct ImageFacts {
    /// Config plus layers as stored (compressed): what a pull transfers.
    pub bytes: u64,
    pub labels: BTreeMap<String, String>,
}

impl Place {
    /// `oci:DIR` (relative to `root`) or `docker://HOST/REPO`.
    pub fn parse(location: &str, root: &Path) -> Result<Place> {
        match crate::copy::parse(location)? {
            Location::Layout { dir, .. } => Ok(Place::Layout(root.join(dir))),
            Location::Registry(reference) => {
                // The repository alone: tags are what promotion moves.
                let bare = format!("{}/{}", reference.registry(), reference.repository());
                Ok(Place::Registry(bare.parse().map_err(|e| {
                    anyhow!("{location}: not a repository: {e}")
                })?))
            }
            Location::Daemon(_) => Err(crate::usage(format!(
                "{location}: a stage lives in a registry (docker://HOST/REPO) or an OCI layout \
                 (oci:DIR), not in a Docker engine"
            ))),
        }
    }

    /// The location of the image `digest` here, for copies and messages.
    pub fn at(&self, digest: &Digest) -> Location {
        match self {
            Place::Layout(dir) => Location::Layout {
                dir: dir.clone(),
                tag: None,
            },
            Place::Registry(repo) => Location::Registry(repo.with_digest(digest.clone())),
        }
    }

    /// The manifest `digest` names here, or `None` when it is not here.
    pub fn manifest(&self, client: &Client, digest: &Digest) -> Result<Option<(String, Vec<u8>)>> {
        match self {
            Place::Layout(dir) => {
                if !dir.join("index.json").exists() {
                    return Ok(None);
                }
                let layout = Layout::open(dir)?;
                match layout.read_blob_bytes(digest) {
                    Ok(bytes) => {
                        digest.verify(&bytes).map_err(|e| {
                            anyhow!("{}: manifest {digest} is damaged: {e}", dir.display())
                        })?;
                        Ok(Some((media_type::of_manifest(&bytes), bytes)))
                    }
                    Err(_) => Ok(None),
                }
            }
            Place::Registry(repo) => Ok(client
                .manifest_if_present(&repo.with_digest(digest.clone()))?
                .map(|raw| (raw.media_type, raw.bytes))),
        }
    }

    /// The single-platform image `digest` names here (linux/amd64 from an index), to read.
    pub fn image<'c>(
        &self,
        client: &'c Client,
        digest: &Digest,
    ) -> Result<Box<dyn wharf_oci::Image + Sync + 'c>> {
        let platform = wharf_oci::Platform::linux_amd64();
        match self {
            Place::Layout(dir) => {
                let (media_type, bytes) = self
                    .manifest(client, digest)?
                    .ok_or_else(|| anyhow!("{self} holds no image {digest}"))?;
                let descriptor = Descriptor::new(&media_type, digest.clone(), bytes.len() as u64);
                Ok(Box::new(Layout::open(dir)?.image(&descriptor, &platform)?))
            }
            Place::Registry(repo) => Ok(Box::new(
                client.image(&repo.with_digest(digest.clone()), &platform)?,
            )),
        }
    }

    /// The image's size (config and compressed layers) and labels; an index's linux/amd64 image.
    pub fn facts(&self, client: &Client, digest: &Digest) -> Result<ImageFacts> {
        let image = self.image(client, digest)?;
        let manifest = wharf_oci::image::manifest(image.as_ref())
            .with_context(|| format!("{self}: reading the image {digest}"))?;
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        let labels = wharf_oci::image::config(image.as_ref())
            .ok()
            .and_then(|c| c.config)
            .map(|c| c.labels)
            .unwrap_or_default();
        Ok(ImageFacts {
            bytes: size,
            labels,
        })
    }

    /// The digest `tag` points at here, or `None`.
    pub fn tag_digest(&self, client: &Client, tag: &str) -> Result<Option<Digest>> {
        match self {
            Place::Layout(dir) => {
                if !dir.join("index.json").exists() {
                    return Ok(None);
                }
                let layout = Layout::open(dir)?;
                Ok(layout.resolve(tag).ok().map(|d| d.digest))
            }
            Place::Registry(repo) => {
                let reference = repo.with_tag(tag)?;
                Ok(client
                    .manifest_if_present(&reference)?
                    .map(|raw| raw.digest))
            }
        }
    }

    /// Points `tag` at `digest`, which must already be here (only the manifest moves).
    pub fn move_tag(&self, client: &Client, tag: &str, digest: &Digest) -> Result<()> {
        match self {
            Place::Layout(dir) => {
                let (media_type, bytes) = self
                    .manifest(client, digest)?
                    .ok_or_else(|| anyhow!("{self} holds no image {digest}"))?;
                Layout::open(dir)?.tag(&Descriptor::for_bytes(&media_type, &bytes), tag)?;
            }
            Place::Registry(repo) => {
                client.tag(&repo.with_digest(digest.clone()), tag)?;
            }
        }
        Ok(())
    }

    /// Copies the image `digest` from `source` to here, by digest (no tag moves), with
    /// what is attached to it in a registry (SBOM, scan report, signatures). Within one
    /// registry the blobs are mounted, not sent.
    pub fn copy_in(
        &self,
        client: &Client,
        source: &Place,
        digest: &Digest,
    ) -> Result<copy::CopyReport> {
        let (from, to) = (source.at(digest), self.at(digest));
        let mut report = copy::CopyReport {
            digest: Some(digest.clone()),
            source: from.to_string(),
            destination: to.to_string(),
            ..Default::default()
        };
        match source {
            _ if self.same_as(source) => {}
            // A layout names images by tag only; promotion copies by digest.
            Place::Layout(dir) => {
                let (media_type, bytes) = source
                    .manifest(client, digest)?
                    .ok_or_else(|| anyhow!("{source} holds no image {digest}"))?;
                if media_type::is_index(&media_type) {
                    // An index goes whole: every platform's image, then the index itself.
                    let root = Descriptor::for_bytes(&media_type, &bytes);
                    return copy::copy_from_layout(client, &from, &root, &to)
                        .with_context(|| format!("copying {from} to {to}"));
                }
                let image = Layout::open(dir)?.image(
                    &Descriptor::for_bytes(&media_type, &bytes),
                    &wharf_oci::Platform::linux_amd64(),
                )?;
                let pushed = match self {
                    Place::Registry(repo) => {
                        client.push(&image, &repo.with_digest(digest.clone()), None)?
                    }
                    Place::Layout(to_dir) => {
                        let target = Layout::create(to_dir)?;
                        let (descriptor, stats) =
                            target.write_image_parallel(&image, None, client.parallel())?;
                        target.add_untagged(&descriptor)?;
                        wharf_registry::PushReport {
                            digest: Some(descriptor.digest),
                            blobs_uploaded: stats.blobs_written,
                            blobs_skipped: stats.blobs_skipped,
                            bytes_uploaded: stats.bytes_written,
                            ..Default::default()
                        }
                    }
                };
                report.blobs_uploaded = pushed.blobs_uploaded;
                report.blobs_mounted = pushed.blobs_mounted;
                report.blobs_skipped = pushed.blobs_skipped;
                report.bytes_uploaded = pushed.bytes_uploaded;
            }
            Place::Registry(_) => {
                report = copy::copy(client, &from, &to)
                    .with_context(|| format!("copying {from} to {to}"))?;
            }
        }
        if let (Place::Registry(src), Place::Registry(dst)) = (source, self)
            && !self.same_as(source)
        {
            copy::copy_attachments(client, src, dst, digest, &mut report)
                .with_context(|| format!("copying what travels with {from} to {to}"))?;
        }
        Ok(report)
    }

    fn same_as(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Layout(a), Place::Layout(b)) => a == b,
            (Place::Registry(a), Place::Registry(b)) => {
                a.registry() == b.registry() && a.repository() == b.repository()
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Layout(dir) => write!(f, "oci:{}", dir.display()),
            Place::Registry(repo) => write!(f, "docker://{repo}"),
        }
    }
}
