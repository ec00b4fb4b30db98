//! Copying images between locations (`oci:`, `docker://`): one source, one sink.

use serde::Serialize;
use wharf_oci::{Digest, Image, Layout, Location, Platform, Reference};
use wharf_registry::{Client, PushReport};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error(transparent)]
    Registry(#[from] wharf_registry::Error),
    #[error(
        "{0} is not supported yet (the Docker engine transport arrives with the engine crate; meanwhile: skopeo copy)"
    )]
    Unsupported(String),
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
}

/// Copies the image at `source` to `destination`, keeping its digest.
pub fn copy(
    client: &Client,
    source: &Location,
    destination: &Location,
) -> Result<CopyReport, CopyError> {
    let platform = Platform::linux_amd64();
    let mut report = CopyReport {
        source: source.to_string(),
        destination: destination.to_string(),
        ..CopyReport::default()
    };
    let push = |image: &dyn ImageSync, mount_from: Option<&str>| -> Result<PushReport, CopyError> {
        match destination {
            Location::Registry(reference) => Ok(client.push(image, reference, mount_from)?),
            Location::Layout { dir, tag } => {
                let layout = Layout::create(dir)?;
                let (descriptor, stats) = layout.write_image(image, tag.as_deref())?;
                Ok(PushReport {
                    digest: Some(descriptor.digest),
                    blobs_uploaded: stats.blobs_written,
                    blobs_mounted: 0,
                    blobs_skipped: stats.blobs_skipped,
                    bytes_uploaded: stats.bytes_written,
                })
            }
            Location::Daemon(_) => Err(CopyError::Unsupported(destination.to_string())),
        }
    };
    let pushed = match source {
        Location::Layout { dir, tag } => {
            let layout = Layout::open(dir)?;
            let descriptor = match tag {
                Some(tag) => layout.resolve(tag)?,
                None => {
                    let index = layout.index()?;
                    match index.manifests.as_slice() {
                        [only] => only.clone(),
                        many => {
                            return Err(CopyError::Ambiguous {
                                location: source.to_string(),
                                count: many.len(),
                                tags: layout.tags()?.join(", "),
                            });
                        }
                    }
                }
            };
            let image = layout.image(&descriptor, &platform)?;
            push(&image, None)?
        }
        Location::Registry(reference) => {
            let image = client.image(reference, &platform)?;
            // Same registry: let the destination mount the blobs instead of sending them.
            let mount_from = match destination {
                Location::Registry(to) if to.registry() == reference.registry() => {
                    Some(reference.repository())
                }
                _ => None,
            };
            push(&image, mount_from)?
        }
        Location::Daemon(_) => return Err(CopyError::Unsupported(source.to_string())),
    };
    report.digest = pushed.digest;
    report.blobs_uploaded = pushed.blobs_uploaded;
    report.blobs_mounted = pushed.blobs_mounted;
    report.blobs_skipped = pushed.blobs_skipped;
    report.bytes_uploaded = pushed.bytes_uploaded;
    Ok(report)
}

/// `Image` with `Sync`, as a trait object (parallel uploads share the source).
pub trait ImageSync: Image + Sync {}
impl<T: Image + Sync> ImageSync for T {}

/// Points `new_tag` at the manifest `reference` names, in the same repository.
pub fn tag(client: &Client, reference: &Reference, new_tag: &str) -> Result<Digest, CopyError> {
    Ok(client.tag(reference, new_tag)?)
}
