//! The OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as source and sink.
//!
//! Crash safety: blobs are written to a temporary file in the same directory, flushed, and
//! renamed to their digest only after the digest was checked; `index.json` is replaced the
//! same way, and only after every blob it references is in place. A crash at any point
//! therefore leaves a layout whose index references only complete, verified blobs (at worst
//! with a stray temporary file, which readers ignore).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::digest::{Digest, Hasher, VerifyingReader};
use crate::error::{Error, IoContext, Result, json};
use crate::image::{self, BlobReader, Image};
use crate::manifest::{ANNOTATION_REF_NAME, Descriptor, Index, Manifest, Platform, canonical_json};
use crate::media_type;
use crate::parallel;
use crate::reference::validate_tag;

const OCI_LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
/// Taken while `index.json` is read, changed and replaced, so concurrent writers do not
/// lose each other's tags.
const LOCK_FILE: &str = "index.json.lock";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutFile {
    image_layout_version: String,
}

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

/// Counts of what [`Layout::write_image`] did, for progress and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteStats {
    pub blobs_written: usize,
    pub blobs_skipped: usize,
    pub bytes_written: u64,
}

impl Layout {
    /// Opens an existing layout.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        let marker = root.join(OCI_LAYOUT_FILE);
        let bytes = fs::read(&marker).map_err(|e| Error::NotALayout {
            path: root.clone(),
            why: format!(
                "cannot read {}: {e} (create one with `cargo xtask image`, or check the path)",
                marker.display()
            ),
        })?;
        let file: OciLayoutFile = json(&bytes, || marker.display().to_string())?;
        if file.image_layout_version != "1.0.0" {
            return Err(Error::NotALayout {
                path: root,
                why: format!(
                    "imageLayoutVersion is {:?}, wharf reads 1.0.0",
                    file.image_layout_version
                ),
            });
        }
        Ok(Layout { root })
    }

    /// Opens the layout at `root`, creating an empty one if the directory has none.
    pub fn create(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        if root.join(OCI_LAYOUT_FILE).exists() {
            return Layout::open(root);
        }
        fs::create_dir_all(root.join("blobs").join("sha256"))
            .context(|| format!("creating OCI layout {}", root.display()))?;
        let layout = Layout { root };
        // index.json first: a directory with `oci-layout` must always have an index.
        if !layout.root.join(INDEX_FILE).exists() {
            layout.replace_file(INDEX_FILE, &canonical_json(&Index::new()))?;
        }
        let marker = OciLayoutFile {
            image_layout_version: "1.0.0".into(),
        };
        layout.replace_file(OCI_LAYOUT_FILE, &canonical_json(&marker))?;
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// True if the blob is present with the descriptor's size.
    pub fn has_blob(&self, descriptor: &Descriptor) -> bool {
        fs::metadata(self.blob_path(&descriptor.digest)).is_ok_and(|m| m.len() == descriptor.size)
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.root.join(INDEX_FILE);
        let bytes = fs::read(&path).context(|| format!("reading {}", path.display()))?;
        json(&bytes, || path.display().to_string())
    }

    /// Tags recorded in the index, in index order.
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|d| d.ref_name().map(str::to_string))
            .collect())
    }

    /// The descriptor tagged `tag`.
    pub fn resolve(&self, tag: &str) -> Result<Descriptor> {
        let index = self.index()?;
        if let Some(found) = index.manifests.iter().find(|d| d.ref_name() == Some(tag)) {
            return Ok(found.clone());
        }
        let available: Vec<_> = index
            .manifests
            .iter()
            .filter_map(|d| d.ref_name())
            .collect();
        Err(Error::TagNotFound {
            tag: tag.to_string(),
            layout: self.root.clone(),
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        })
    }

    /// Reads a blob, verifying digest and size as it streams.
    pub fn read_blob(&self, descriptor: &Descriptor) -> Result<BlobReader<'static>> {
        let file = self.open_blob(&descriptor.digest)?;
        Ok(Box::new(VerifyingReader::new(
            BufReader::new(file),
            descriptor.digest.clone(),
            Some(descriptor.size),
        )))
    }

    /// Reads a blob by digest alone, verifying the digest as it streams.
    pub fn blob(&self, digest: &Digest) -> Result<BlobReader<'static>> {
        let file = self.open_blob(digest)?;
        Ok(Box::new(VerifyingReader::new(
            BufReader::new(file),
            digest.clone(),
            None,
        )))
    }

    /// Reads a whole (small) blob into memory and verifies it.
    pub fn read_blob_bytes(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| self.missing_blob(digest, e))?;
        digest.verify(&bytes).map_err(|source| Error::Mismatch {
            what: format!("blob {}", path.display()),
            source,
        })?;
        Ok(bytes)
    }

    fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.blob_path(digest)).map_err(|e| self.missing_blob(digest, e))
    }

    fn missing_blob(&self, digest: &Digest, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::BlobNotFound {
                digest: digest.clone(),
                location: format!("OCI layout {}", self.root.display()),
            }
        } else {
            Error::Io {
                context: format!("reading blob {digest} from {}", self.root.display()),
                source: e,
            }
        }
    }

    /// The single-platform image that `descriptor` points at; an index is resolved to its
    /// manifest for `platform`.
    pub fn image(&self, descriptor: &Descriptor, platform: &Platform) -> Result<LayoutImage> {
        let raw = self.read_blob_bytes(&descriptor.digest)?;
        if media_type::is_index(&descriptor.media_type) {
            let index: Index = json(&raw, || format!("index {}", descriptor.digest))?;
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        p.os == platform.os
                            && p.architecture == platform.architecture
                            && (platform.variant.is_none() || p.variant == platform.variant)
                    })
                })
                .ok_or_else(|| Error::NoPlatform {
                    digest: descriptor.digest.clone(),
                    platform: format!("{}/{}", platform.os, platform.architecture),
                    available: index
                        .manifests
                        .iter()
                        .filter_map(|m| m.platform.as_ref())
                        .map(|p| format!("{}/{}", p.os, p.architecture))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            return self.image(&chosen.clone(), platform);
        }
        image::parse_manifest(&raw)?;
        Ok(LayoutImage {
            layout: self.clone(),
            manifest: raw,
        })
    }

    /// The image tagged `tag`, for `platform` if the tag names an index.
    pub fn image_by_tag(&self, tag: &str, platform: &Platform) -> Result<LayoutImage> {
        self.image(&self.resolve(tag)?, platform)
    }

    /// Writes `bytes` as a blob (if absent) and returns its descriptor.
    pub fn write_blob_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let descriptor = Descriptor::for_bytes(media_type, bytes);
        if !self.has_blob(&descriptor) {
            self.write_blob(&descriptor, bytes)?;
        }
        Ok(descriptor)
    }

    /// Streams `content` into the blob named by `descriptor`. The blob appears under its
    /// digest only if the content matches digest and size; otherwise nothing is left behind.
    pub fn write_blob(&self, descriptor: &Descriptor, content: impl Read) -> Result<u64> {
        let digest = &descriptor.digest;
        let mut verified = VerifyingReader::new(content, digest.clone(), Some(descriptor.size));
        let dir = self.blob_path(digest);
        let dir = dir.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        let mut tmp = NamedTempFile::with_prefix_in(".tmp-", dir)
            .context(|| format!("creating a temporary file in {}", dir.display()))?;
        let written = io::copy(&mut verified, tmp.as_file_mut()).map_err(|source| {
            if source.kind() == io::ErrorKind::InvalidData {
                Error::Io {
                    context: format!("refusing blob {digest} for {}", self.root.display()),
                    source,
                }
            } else {
                Error::Io {
                    context: format!("writing blob {digest} to {}", self.root.display()),
                    source,
                }
            }
        })?;
        self.persist(tmp, &self.blob_path(digest))?;
        Ok(written)
    }

    /// Streams content of unknown digest into the layout and returns its digest and size.
    pub fn import_blob(&self, mut content: impl Read) -> Result<(Digest, u64)> {
        let mut writer = self.blob_writer()?;
        io::copy(&mut content, &mut writer)
            .context(|| format!("importing a blob into {}", self.root.display()))?;
        writer.commit()
    }

    /// A writer for a blob whose digest is known only at the end (e.g. compressed output).
    /// Nothing is visible in the layout until [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        let tmp = NamedTempFile::with_prefix_in(".tmp-", &dir)
            .context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(BlobWriter {
            layout: self.clone(),
            tmp: io::BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Hasher::sha256(),
        })
    }

    /// Copies every blob of `image` that is missing here, then the manifest, then (if given)
    /// points `tag` at it. Returns the image's descriptor and what was copied.
    pub fn write_image<I: Image + ?Sized>(
        &self,
        image: &I,
        tag: Option<&str>,
    ) -> Result<(Descriptor, WriteStats)> {
        let (raw, manifest) = self.image_to_write(image, tag)?;
        let mut stats = WriteStats::default();
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if self.has_blob(blob) {
                stats.blobs_skipped += 1;
                continue;
            }
            stats.bytes_written += self.write_blob(blob, image.blob(&blob.digest)?)?;
            stats.blobs_written += 1;
        }
        self.finish_image(&raw, &manifest, tag, stats)
    }

    /// [`Layout::write_image`], reading up to `parallel` blobs at once: for sources where a
    /// blob takes a round trip (a registry), so a pull is not one blob at a time.
    pub fn write_image_parallel<I: Image + Sync + ?Sized>(
        &self,
        image: &I,
        tag: Option<&str>,
        parallel: usize,
    ) -> Result<(Descriptor, WriteStats)> {
        let (raw, manifest) = self.image_to_write(image, tag)?;
        let (present, missing): (Vec<&Descriptor>, Vec<&Descriptor>) =
            std::iter::once(&manifest.config)
                .chain(&manifest.layers)
                .partition(|blob| self.has_blob(blob));
        let bytes = std::sync::atomic::AtomicU64::new(0);
        parallel::try_for_each(&missing, parallel, |blob| {
            let written = self.write_blob(blob, image.blob(&blob.digest)?)?;
            bytes.fetch_add(written, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, Error>(())
        })?;
        let stats = WriteStats {
            blobs_written: missing.len(),
            blobs_skipped: present.len(),
            bytes_written: bytes.into_inner(),
        };
        self.finish_image(&raw, &manifest, tag, stats)
    }

    /// The manifest of an image about to be written, after checking the tag.
    fn image_to_write<I: Image + ?Sized>(
        &self,
        image: &I,
        tag: Option<&str>,
    ) -> Result<(Vec<u8>, Manifest)> {
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|source| Error::Tag {
                tag: tag.to_string(),
                source,
            })?;
        }
        let raw = image.raw_manifest()?;
        let manifest = image::parse_manifest(&raw)?;
        Ok((raw, manifest))
    }

    /// Writes the manifest after its blobs, then tags it.
    fn finish_image(
        &self,
        raw: &[u8],
        manifest: &Manifest,
        tag: Option<&str>,
        stats: WriteStats,
    ) -> Result<(Descriptor, WriteStats)> {
        let descriptor = self.write_blob_bytes(manifest.media_type(), raw)?;
        if let Some(tag) = tag {
            self.tag(&descriptor, tag)?;
        }
        Ok((descriptor, stats))
    }

    /// Points `tag` at `descriptor` (which must already be in the layout), replacing any
    /// previous entry with that tag.
    pub fn tag(&self, descriptor: &Descriptor, tag: &str) -> Result<()> {
        validate_tag(tag).map_err(|source| Error::Tag {
            tag: tag.to_string(),
            source,
        })?;
        if !self.has_blob(descriptor) {
            return Err(Error::BlobNotFound {
                digest: descriptor.digest.clone(),
                location: format!(
                    "OCI layout {} (write the image before tagging it)",
                    self.root.display()
                ),
            });
        }
        self.update_index(|index| {
            index.manifests.retain(|d| d.ref_name() != Some(tag));
            let mut entry = descriptor.clone();
            entry.platform.get_or_insert_with(Platform::linux_amd64);
            entry
                .annotations
                .insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
            index.manifests.push(entry);
        })
    }

    /// Reads, changes and atomically replaces `index.json` while holding the layout's lock.
    fn update_index(&self, change: impl FnOnce(&mut Index)) -> Result<()> {
        let lock_path = self.root.join(LOCK_FILE);
        let lock =
            File::create(&lock_path).context(|| format!("creating {}", lock_path.display()))?;
        lock.lock()
            .context(|| format!("locking {}", lock_path.display()))?;
        let mut index = self.index()?;
        change(&mut index);
        self.replace_file(INDEX_FILE, &canonical_json(&index))
    }

    /// Atomically replaces `name` in the layout root with `bytes`.
    fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut tmp = NamedTempFile::with_prefix_in(".tmp-", &self.root)
            .context(|| format!("creating a temporary file in {}", self.root.display()))?;
        tmp.write_all(bytes)
            .context(|| format!("writing {}", self.root.join(name).display()))?;
        self.persist(tmp, &self.root.join(name))
    }

    /// Flushes a finished temporary file to disk and renames it into place, then flushes the
    /// directory so the rename itself survives a crash.
    fn persist(&self, tmp: NamedTempFile, path: &Path) -> Result<()> {
        tmp.as_file()
            .sync_all()
            .context(|| format!("flushing {}", path.display()))?;
        tmp.persist(path).map_err(|e| Error::Io {
            context: format!("renaming into {}", path.display()),
            source: e.error,
        })?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .context(|| format!("flushing directory {}", dir.display()))?;
        }
        Ok(())
    }
}

/// A blob being written to a layout; see [`Layout::blob_writer`].
pub struct BlobWriter {
    layout: Layout,
    tmp: io::BufWriter<NamedTempFile>,
    hasher: Hasher,
}

impl BlobWriter {
    /// Flushes the blob and moves it into place under its digest.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let size = self.hasher.len();
        let digest = self.hasher.finish();
        let tmp = self.tmp.into_inner().map_err(|e| Error::Io {
            context: format!("writing a blob to {}", self.layout.root.display()),
            source: e.into_error(),
        })?;
        self.layout.persist(tmp, &self.layout.blob_path(&digest))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// An image stored in an OCI layout.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    layout: Layout,
    manifest: Vec<u8>,
}

impl LayoutImage {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl Image for LayoutImage {
    fn raw_manifest(&self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(&self, digest: &Digest) -> Result<BlobReader<'_>> {
        self.layout.blob(digest)
    }
}
