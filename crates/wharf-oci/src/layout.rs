//! The OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as source and sink.
//!
//! Crash safety: blobs are written to a temporary file, flushed, and renamed to their digest
//! only after the digest was checked; `index.json` is replaced the same way, and only after
//! every blob it references is in place. A crash at any point therefore leaves a layout
//! whose index references only complete, verified blobs.
//!
//! Temporary files live in the layout's own `.wharf-tmp/` directory, never in
//! `blobs/<alg>/`, where every name must be a digest (`umoci gc` refuses anything else).
//! It is on the same file system, so the rename stays atomic. A writer holds an exclusive
//! lock on its temporary file until the rename, so the files nobody holds are the ones a
//! killed writer left, and opening the layout removes exactly those.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::atomic;
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
/// The layout's temporary files: beside `blobs/`, on the same file system.
pub const TEMP_DIR: &str = ".wharf-tmp";
/// Where wharf before `.wharf-tmp/` left its temporary files: `.tmp-*` in the root and in
/// `blobs/sha256/`.
const LEGACY_TEMP_PREFIX: &str = ".tmp-";
/// Those writers took no lock, so a legacy temporary file counts as abandoned only once
/// nothing has written to it for this long (a live writer touches it with every write).
const LEGACY_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Attempts at a temporary file that a concurrent cleaner did not remove between its
/// creation and its lock (each attempt loses only to another process opening the layout).
const TEMP_ATTEMPTS: usize = 8;

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
    /// Opens an existing layout, and removes the temporary files killed writers left there.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        refuse_file(&root)?;
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
        let layout = Layout { root };
        layout.remove_abandoned_temp_files();
        Ok(layout)
    }

    /// Opens the layout at `root`, creating an empty one if the directory has none.
    pub fn create(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        refuse_file(&root)?;
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

    /// True if the blob is present with the descriptor's size. Cheap, and enough to know a
    /// blob was written; before reusing one, [`Layout::has_intact_blob`] checks the content.
    pub fn has_blob(&self, descriptor: &Descriptor) -> bool {
        fs::metadata(self.blob_path(&descriptor.digest)).is_ok_and(|m| m.len() == descriptor.size)
    }

    /// True if the blob is present and its content matches the descriptor's digest and
    /// size: what a writer checks before skipping (reusing) a blob, so a blob altered on
    /// disk is written again instead of trusted. Costs one hashing pass (about 1 ms a MB).
    pub fn has_intact_blob(&self, descriptor: &Descriptor) -> bool {
        let Ok(file) = File::open(self.blob_path(&descriptor.digest)) else {
            return false;
        };
        let mut verified = VerifyingReader::new(
            BufReader::with_capacity(256 * 1024, file),
            descriptor.digest.clone(),
            Some(descriptor.size),
        );
        io::copy(&mut verified, &mut io::sink()).is_ok()
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

    /// Writes `bytes` as a blob (unless it is there intact) and returns its descriptor.
    pub fn write_blob_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let descriptor = Descriptor::for_bytes(media_type, bytes);
        if !self.has_intact_blob(&descriptor) {
            self.write_blob(&descriptor, bytes)?;
        }
        Ok(descriptor)
    }

    /// Streams `content` into the blob named by `descriptor`, replacing whatever is there
    /// under that name. The blob appears under its digest only if the content matches
    /// digest and size; otherwise nothing is left behind.
    pub fn write_blob(&self, descriptor: &Descriptor, content: impl Read) -> Result<u64> {
        let digest = &descriptor.digest;
        let mut verified = VerifyingReader::new(content, digest.clone(), Some(descriptor.size));
        let dir = self.blob_path(digest);
        let dir = dir.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        let mut tmp = self.temp_file()?;
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
        atomic::persist(tmp, &self.blob_path(digest))?;
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
        let tmp = self.temp_file()?;
        Ok(BlobWriter {
            layout: self.clone(),
            tmp: io::BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Hasher::sha256(),
        })
    }

    /// Copies every blob of `image` that is missing here (or damaged: a blob is skipped only
    /// if its content matches its digest), then the manifest, then (if given) points `tag`
    /// at it. Returns the image's descriptor and what was copied.
    pub fn write_image<I: Image + ?Sized>(
        &self,
        image: &I,
        tag: Option<&str>,
    ) -> Result<(Descriptor, WriteStats)> {
        let (raw, manifest) = self.image_to_write(image, tag)?;
        let mut stats = WriteStats::default();
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if self.has_intact_blob(blob) {
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
                .partition(|blob| self.has_intact_blob(blob));
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
    /// previous entry with that tag, and any untagged entry for the same manifest (the tag
    /// now references it).
    pub fn tag(&self, descriptor: &Descriptor, tag: &str) -> Result<()> {
        validate_tag(tag).map_err(|source| Error::Tag {
            tag: tag.to_string(),
            source,
        })?;
        self.require_blob(descriptor, "tagging")?;
        self.update_index(|index| {
            index.manifests.retain(|d| match d.ref_name() {
                Some(name) => name != tag,
                None => d.digest != descriptor.digest,
            });
            let mut entry = index_entry(descriptor);
            entry
                .annotations
                .insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
            index.manifests.push(entry);
        })
    }

    /// Lists `descriptor` (which must already be in the layout) in the index without a tag,
    /// as skopeo does for a destination `oci:DIR`, unless an entry already references it:
    /// the image is then reachable (`umoci gc` keeps its blobs, `oci:DIR` names it when it
    /// is the only entry, `oci:DIR@DIGEST` tools find it). Later tags keep the entry.
    pub fn add_untagged(&self, descriptor: &Descriptor) -> Result<()> {
        self.require_blob(descriptor, "listing")?;
        self.update_index(|index| {
            if !index
                .manifests
                .iter()
                .any(|d| d.digest == descriptor.digest)
            {
                index.manifests.push(index_entry(descriptor));
            }
        })
    }

    /// Refuses to reference a manifest that is not in the layout.
    fn require_blob(&self, descriptor: &Descriptor, doing: &str) -> Result<()> {
        if self.has_blob(descriptor) {
            return Ok(());
        }
        Err(Error::BlobNotFound {
            digest: descriptor.digest.clone(),
            location: format!(
                "OCI layout {} (write the image before {doing} it)",
                self.root.display()
            ),
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
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes)
            .context(|| format!("writing {}", self.root.join(name).display()))?;
        atomic::persist(tmp, &self.root.join(name))
    }

    /// A new temporary file in the layout's temporary directory, locked by this process
    /// until it is renamed into place or dropped (see the module docs).
    fn temp_file(&self) -> Result<NamedTempFile> {
        let dir = self.root.join(TEMP_DIR);
        let failed = |e| Error::Io {
            context: format!("creating a temporary file in {}", dir.display()),
            source: e,
        };
        for _ in 0..TEMP_ATTEMPTS {
            fs::create_dir_all(&dir).map_err(failed)?;
            let tmp = atomic::temp_file_in(&dir, "").map_err(failed)?;
            tmp.as_file().lock().map_err(failed)?;
            // A cleaner that opened the file before the lock was taken may have removed it;
            // a file with no name left cannot be renamed into place, so take another.
            if tmp.as_file().metadata().map_err(failed)?.nlink() > 0 {
                return Ok(tmp);
            }
        }
        Err(failed(io::Error::other(format!(
            "{TEMP_ATTEMPTS} new files were removed as soon as they were made (is something deleting files there?)"
        ))))
    }

    /// Removes the temporary files no live writer holds (a killed writer's lock went with
    /// it), and those older wharf versions left beside the blobs. Best effort: a reader
    /// without write access to the layout reads it all the same.
    fn remove_abandoned_temp_files(&self) {
        if let Ok(entries) = fs::read_dir(self.root.join(TEMP_DIR)) {
            for path in entries.flatten().map(|e| e.path()) {
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                // Removed while locked: a writer that created this file a moment ago and
                // has not locked it yet finds it nameless once it has, and takes another.
                if file.try_lock().is_ok() {
                    let _ = fs::remove_file(&path);
                }
                drop(file);
            }
        }
        self.remove_legacy_temp_files();
    }

    /// Removes the `.tmp-*` files older wharf versions left in the root and beside the
    /// blobs, once nothing has written to them for [`LEGACY_TEMP_AGE`].
    fn remove_legacy_temp_files(&self) {
        let now = SystemTime::now();
        for dir in [self.root.clone(), self.root.join("blobs").join("sha256")] {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let legacy = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(LEGACY_TEMP_PREFIX));
                // Blobs are not even looked at: one stat per blob per open would add up.
                if !legacy {
                    continue;
                }
                let untouched = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > LEGACY_TEMP_AGE);
                if untouched {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// `descriptor` as `index.json` lists it: a manifest with its platform (linux/amd64 unless
/// it says otherwise), an index with none (it has one per manifest inside it).
fn index_entry(descriptor: &Descriptor) -> Descriptor {
    let mut entry = descriptor.clone();
    if !media_type::is_index(&entry.media_type) {
        entry.platform.get_or_insert_with(Platform::linux_amd64);
    }
    entry
}

/// A file where a layout directory should be is named as such, not reported as whatever
/// the first file operation inside it happens to fail with.
fn refuse_file(root: &Path) -> Result<()> {
    match fs::metadata(root) {
        Ok(meta) if !meta.is_dir() => Err(Error::NotADirectory {
            path: root.to_path_buf(),
        }),
        _ => Ok(()),
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
        atomic::persist(tmp, &self.layout.blob_path(&digest))?;
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
