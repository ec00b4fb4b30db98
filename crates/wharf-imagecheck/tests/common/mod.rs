//! Hand-made layers and images: tar headers written field by field, so tests can say
//! exactly what a hostile layer contains.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use wharf_oci::image::BlobReader;
use wharf_oci::{ContainerConfig, Descriptor, Digest, Image, ImageConfig, MemoryImage, media_type};

/// A tar stream built entry by entry, with raw names.
#[derive(Default)]
pub struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends a header with `name` and `link` copied byte for byte (no validation), the
    /// given size field, and `data` (padded to a block).
    pub fn raw(
        mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: &[u8],
        mode: u32,
        size: u64,
        data: &[u8],
    ) -> Tar {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(size);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let rem = self.bytes.len() % 512;
        if rem != 0 {
            self.bytes.resize(self.bytes.len() + 512 - rem, 0);
        }
    }

    pub fn file(self, name: &str, mode: u32, data: &[u8]) -> Tar {
        self.raw(
            tar::EntryType::Regular,
            name.as_bytes(),
            b"",
            mode,
            data.len() as u64,
            data,
        )
    }

    pub fn dir(self, name: &str, mode: u32) -> Tar {
        self.raw(
            tar::EntryType::Directory,
            name.as_bytes(),
            b"",
            mode,
            0,
            b"",
        )
    }

    pub fn symlink(self, name: &str, target: &str) -> Tar {
        self.raw(
            tar::EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            0o777,
            0,
            b"",
        )
    }

    pub fn hardlink(self, name: &str, target: &str) -> Tar {
        self.raw(
            tar::EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            0o644,
            0,
            b"",
        )
    }

    /// An extension header (GNU long name `L`, pax `x`, ...) carrying `data`.
    pub fn extension(self, kind: tar::EntryType, data: &[u8]) -> Tar {
        self.raw(kind, b"././@LongLink", b"", 0o644, data.len() as u64, data)
    }

    /// Ends the archive with two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0; 1024]);
        self.bytes
    }

    /// The bytes so far, without the end-of-archive blocks.
    pub fn unfinished(self) -> Vec<u8> {
        self.bytes
    }
}

/// A pax record: `"<len> key=value\n"`, where len counts the whole record.
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A layer: its blob, media type and the diff id the config will list.
pub struct Layer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub diff_id: Digest,
}

impl Layer {
    /// A tar+gzip layer of `tar`.
    pub fn gz(tar: Vec<u8>) -> Layer {
        Layer {
            media_type: media_type::OCI_LAYER_GZIP,
            blob: gzip(&tar),
            diff_id: Digest::sha256(&tar),
        }
    }

    /// An uncompressed tar layer.
    pub fn tar(tar: Vec<u8>) -> Layer {
        Layer {
            media_type: media_type::OCI_LAYER_TAR,
            diff_id: Digest::sha256(&tar),
            blob: tar,
        }
    }

    /// Any bytes, under any media type; the diff id is the blob's digest.
    pub fn blob(media_type: &'static str, blob: Vec<u8>) -> Layer {
        Layer {
            media_type,
            diff_id: Digest::sha256(&blob),
            blob,
        }
    }

    pub fn digest(&self) -> Digest {
        Digest::sha256(&self.blob)
    }
}

/// How the image runs.
#[derive(Clone, Default)]
pub struct Run {
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Run {
    pub fn user(user: &str) -> Run {
        Run {
            user: Some(user.into()),
            ..Run::default()
        }
    }
}

pub fn image(run: Run, layers: Vec<Layer>) -> MemoryImage {
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            user: run.user,
            labels: run.labels,
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    let blobs = layers
        .into_iter()
        .map(|layer| {
            config.rootfs.diff_ids.push(layer.diff_id);
            let descriptor = Descriptor::for_bytes(layer.media_type, &layer.blob);
            (descriptor, layer.blob)
        })
        .collect();
    MemoryImage::new(&config, blobs)
}

/// An image running as uid 1000 with these layers.
pub fn image_of(layers: Vec<Layer>) -> MemoryImage {
    image(Run::user("1000:1000"), layers)
}

/// Serves different bytes for one blob than the manifest's digest promises, as a
/// compromised registry or a corrupted disk would.
pub struct Tampered {
    pub inner: MemoryImage,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Image for Tampered {
    fn raw_manifest(&self) -> wharf_oci::Result<Vec<u8>> {
        self.inner.raw_manifest()
    }

    fn raw_config(&self) -> wharf_oci::Result<Vec<u8>> {
        self.inner.raw_config()
    }

    fn blob(&self, digest: &Digest) -> wharf_oci::Result<BlobReader<'_>> {
        if *digest == self.digest {
            return Ok(Box::new(&self.bytes[..]));
        }
        self.inner.blob(digest)
    }
}
