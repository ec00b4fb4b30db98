//! Pushing a whole image: its blobs in parallel, then its manifest, so a tag never points
//! at an image whose blobs are not all in the registry.

use std::sync::Mutex;

use serde::Serialize;
use wharf_oci::{Digest, Image, Reference, image, parallel};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::events::BlobOutcome;

/// What a push did, for summaries and `--json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub digest: Option<Digest>,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
}

impl PushReport {
    /// Adds another push's counts (the manifests of an index), keeping this digest.
    pub fn absorb(&mut self, other: &PushReport) {
        self.blobs_uploaded += other.blobs_uploaded;
        self.blobs_mounted += other.blobs_mounted;
        self.blobs_skipped += other.blobs_skipped;
        self.bytes_uploaded += other.bytes_uploaded;
    }

    pub fn add(&mut self, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::Skipped => self.blobs_skipped += 1,
            BlobOutcome::Mounted => self.blobs_mounted += 1,
            BlobOutcome::Uploaded { bytes } => {
                self.blobs_uploaded += 1;
                self.bytes_uploaded += bytes;
            }
        }
    }
}

impl Client {
    /// Pushes `image` to `destination` (its tag, or only by digest if it has none).
    /// `mount_from` names a repository of the same registry that has the blobs, for
    /// cross-repository mounts.
    pub fn push<I: Image + Sync + ?Sized>(
        &self,
        image: &I,
        destination: &Reference,
        mount_from: Option<&str>,
    ) -> Result<PushReport> {
        let raw = image.raw_manifest()?;
        // Every check before anything is written: a destination pinned to another digest
        // must not get its tag moved (nor any blob sent) by a copy that then fails.
        if let Some(expected) = destination.digest() {
            Digest::sha256(&raw)
                .expect(expected)
                .map_err(|source| Error::Verify {
                    what: format!("pushing {destination}"),
                    source,
                })?;
        }
        let manifest = image::parse_manifest(&raw)?;
        let (registry, repository) = (destination.registry(), destination.repository());
        let blobs: Vec<_> = std::iter::once(manifest.config.clone())
            .chain(manifest.layers.iter().cloned())
            .collect();
        let report = Mutex::new(PushReport::default());
        parallel::try_for_each(&blobs, self.config.parallel, |blob| {
            let open = || image.blob(&blob.digest).map_err(Error::from);
            let outcome = self.push_blob(registry, repository, blob, mount_from, &open)?;
            report.lock().expect("no panics while locked").add(outcome);
            Ok::<_, Error>(())
        })?;
        let target = match (destination.tag(), destination.digest()) {
            (Some(tag), _) => tag.to_string(),
            (None, _) => Digest::sha256(&raw).to_string(),
        };
        let digest =
            self.put_manifest(registry, repository, &target, manifest.media_type(), &raw)?;
        let mut report = report.into_inner().expect("lock");
        report.digest = Some(digest);
        Ok(report)
    }

    /// Points `tag` at the manifest `source` names (by tag or digest), in the same
    /// repository: only the manifest moves, no blob.
    pub fn tag(&self, source: &Reference, tag: &str) -> Result<Digest> {
        let manifest = self.manifest(source)?;
        self.put_manifest(
            source.registry(),
            source.repository(),
            tag,
            &manifest.media_type,
            &manifest.bytes,
        )
    }
}
