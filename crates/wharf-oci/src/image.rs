//! The [`Image`] trait and what is derived from it.
//!
//! An image is three things: the manifest's bytes, the config's bytes, and blobs by digest.
//! Everything else (digest, layers, size, parsed config) is a free function over the trait,
//! so every source (layout, registry, engine, test fakes) gets it for free.

use std::collections::BTreeMap;
use std::io::Read;

use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, Result, json};
use crate::manifest::{Descriptor, ImageConfig, Manifest, canonical_json};
use crate::media_type;

/// A blob's content, streamed.
pub type BlobReader<'a> = Box<dyn Read + Send + 'a>;

/// A read-only, single-platform container image.
pub trait Image {
    /// The manifest exactly as stored: its sha256 is the image's digest.
    fn raw_manifest(&self) -> Result<Vec<u8>>;

    /// A blob (layer or config) by digest. Implementations that read from outside the
    /// process return a reader that verifies the digest at end of stream.
    fn blob(&self, digest: &Digest) -> Result<BlobReader<'_>>;

    /// The config's bytes. The default reads the config blob and checks its digest.
    fn raw_config(&self) -> Result<Vec<u8>> {
        let config = manifest(self)?.config;
        let mut reader = VerifyingReader::new(
            self.blob(&config.digest)?,
            config.digest.clone(),
            Some(config.size),
        );
        let mut bytes = Vec::with_capacity(config.size as usize);
        reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
            context: format!("reading config {}", config.digest),
            source,
        })?;
        Ok(bytes)
    }
}

/// The image's digest: the sha256 of its manifest.
pub fn digest<I: Image + ?Sized>(image: &I) -> Result<Digest> {
    Ok(Digest::sha256(&image.raw_manifest()?))
}

/// The parsed manifest. Fails for an index, which is not a single image.
pub fn manifest<I: Image + ?Sized>(image: &I) -> Result<Manifest> {
    parse_manifest(&image.raw_manifest()?)
}

/// Parses manifest bytes, checking that they are an image manifest and not an index.
pub fn parse_manifest(raw: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = json(raw, || format!("manifest {}", Digest::sha256(raw)))?;
    if !media_type::is_manifest(manifest.media_type()) {
        return Err(Error::MediaType {
            what: format!("manifest {}", Digest::sha256(raw)),
            media_type: manifest.media_type().to_string(),
            expected: media_type::OCI_MANIFEST,
        });
    }
    Ok(manifest)
}

/// The parsed image config.
pub fn config<I: Image + ?Sized>(image: &I) -> Result<ImageConfig> {
    parse_config(&image.raw_config()?)
}

/// Parses config bytes (read from anywhere: a layout, a registry, a `docker save` archive).
pub fn parse_config(raw: &[u8]) -> Result<ImageConfig> {
    json(raw, || format!("config {}", Digest::sha256(raw)))
}

/// A descriptor that points at this image (media type, digest, size).
pub fn descriptor<I: Image + ?Sized>(image: &I) -> Result<Descriptor> {
    let raw = image.raw_manifest()?;
    let manifest = parse_manifest(&raw)?;
    Ok(Descriptor::for_bytes(manifest.media_type(), &raw))
}

/// Total size of manifest, config and layers, in bytes (as stored, compressed).
pub fn size<I: Image + ?Sized>(image: &I) -> Result<u64> {
    let raw = image.raw_manifest()?;
    let manifest = parse_manifest(&raw)?;
    Ok(raw.len() as u64
        + manifest.config.size
        + manifest.layers.iter().map(|l| l.size).sum::<u64>())
}

/// An image held in memory: the result of a transform, or a test fixture.
#[derive(Clone, Debug)]
pub struct MemoryImage {
    manifest: Vec<u8>,
    config: Vec<u8>,
    blobs: BTreeMap<Digest, Vec<u8>>,
}

impl MemoryImage {
    /// Assembles an image from a config and gzip layers (compressed bytes, uncompressed digest).
    pub fn new(config: &ImageConfig, layers: Vec<(Descriptor, Vec<u8>)>) -> MemoryImage {
        let config = canonical_json(config);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::for_bytes(media_type::OCI_CONFIG, &config),
            layers: layers.iter().map(|(d, _)| d.clone()).collect(),
            subject: None,
            annotations: BTreeMap::new(),
        };
        let blobs = layers
            .into_iter()
            .map(|(d, bytes)| (d.digest, bytes))
            .collect();
        MemoryImage {
            manifest: canonical_json(&manifest),
            config,
            blobs,
        }
    }
}

impl Image for MemoryImage {
    fn raw_manifest(&self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn raw_config(&self) -> Result<Vec<u8>> {
        Ok(self.config.clone())
    }

    fn blob(&self, digest: &Digest) -> Result<BlobReader<'_>> {
        if *digest == Digest::sha256(&self.config) {
            return Ok(Box::new(&self.config[..]));
        }
        match self.blobs.get(digest) {
            Some(bytes) => Ok(Box::new(&bytes[..])),
            None => Err(Error::BlobNotFound {
                digest: digest.clone(),
                location: "the in-memory image".into(),
            }),
        }
    }
}

/// A seeded, reproducible fake image of `layers` uncompressed-tar layers of `layer_size`
/// random bytes each, for tests of sinks and transports.
pub fn random_image(seed: u64, layers: usize, layer_size: usize) -> MemoryImage {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: good enough to make distinct, incompressible bytes.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let blobs: Vec<(Descriptor, Vec<u8>)> = (0..layers)
        .map(|_| {
            let bytes: Vec<u8> = (0..layer_size).map(|_| next() as u8).collect();
            let desc = Descriptor::for_bytes(media_type::OCI_LAYER_TAR, &bytes);
            config.rootfs.diff_ids.push(desc.digest.clone());
            (desc, bytes)
        })
        .collect();
    MemoryImage::new(&config, blobs)
}
