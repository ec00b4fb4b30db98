//! Deterministic layers: the same files give the same tar bytes and the same gzip bytes,
//! whatever the host, the file mtimes, the umask, or the order the files were created in.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use flate2::Compression;
use serde::Serialize;
use wharf_oci::{Descriptor, Digest, Hasher, Layout, media_type};

use crate::Error;

/// gzip level for layers. Part of the reproducibility contract: changing it changes digests.
/// Level 2 because, with zlib-rs on a 2.5 MB static binary (measured here), level 1 was 16%
/// faster but 20% larger (it switches to a quick algorithm), and level 6 was 45% slower for
/// 5% less. Pushes and pulls pay for size; every build pays for time.
const GZIP_LEVEL: u32 = 2;

/// Where a file's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A regular file to put in a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path inside the image, e.g. `/app/service`.
    pub path: String,
    pub content: Content,
    /// Permission bits. `None` normalizes the source's: 0755 if any execute bit is set,
    /// else 0644, so the umask of whoever created the file does not matter.
    pub mode: Option<u32>,
}

/// Owner and mtime applied to every entry of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (`SOURCE_DATE_EPOCH`), for every entry.
    pub mtime: u64,
}

/// The files of one layer, in any order: they are sorted by path when written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSpec {
    /// Shown in the image history, e.g. `binary hello-service`.
    pub description: String,
    pub files: Vec<FileEntry>,
}

impl LayerSpec {
    /// Adds a host file or directory (recursively) under `image_path`.
    pub fn with_path(mut self, host: &Path, image_path: &str) -> Result<LayerSpec, Error> {
        let meta = fs::metadata(host).map_err(|source| Error::Input {
            path: host.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let mut children: Vec<_> = fs::read_dir(host)
                .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
                .map_err(|source| Error::Input {
                    path: host.to_path_buf(),
                    source,
                })?;
            children.sort_by_key(|e| e.file_name());
            for child in children {
                let name = child.file_name();
                let name = name
                    .to_str()
                    .ok_or_else(|| Error::NonUtf8Path(child.path()))?;
                let image_child = format!("{}/{name}", image_path.trim_end_matches('/'));
                self = self.with_path(&child.path(), &image_child)?;
            }
        } else {
            self.files.push(FileEntry {
                path: image_path.to_string(),
                content: Content::File(host.to_path_buf()),
                mode: None,
            });
        }
        Ok(self)
    }
}

/// A layer as stored: its compressed descriptor and its uncompressed digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    /// True when an identical layer was already in the layout and was not compressed again.
    pub reused: bool,
}

/// Writes the layer's tar stream to `out`.
pub fn write_tar(spec: &LayerSpec, owner: Ownership, out: impl Write) -> Result<(), Error> {
    let mut files: BTreeMap<String, &FileEntry> = BTreeMap::new();
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    for file in &spec.files {
        let path = normalize(&file.path)?;
        let mut parent = Path::new(&path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(
                format!("{}/", dir.to_str().expect("utf-8 by construction")),
                (),
            );
            parent = dir.parent();
        }
        if files.insert(path.clone(), file).is_some() {
            return Err(Error::Duplicate(file.path.clone()));
        }
    }
    // Directories and files in one sorted sequence; a directory sorts before its content
    // because "a/" < "a/b".
    let mut entries: Vec<(String, Option<&FileEntry>)> =
        dirs.into_keys().map(|d| (d, None)).collect();
    entries.extend(files.into_iter().map(|(p, f)| (p, Some(f))));
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, file) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(owner.mtime);
        // Directories belong to root, like in any distribution image; files to the user the
        // image runs as, so the process can read its own files without being root.
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_uid(0);
                header.set_gid(0);
                header.set_size(0);
                tar.append_data(&mut header, &path, io::empty())
                    .map_err(Error::Tar)?;
            }
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_uid(owner.uid);
                header.set_gid(owner.gid);
                match &file.content {
                    Content::Bytes(bytes) => {
                        header.set_mode(file.mode.unwrap_or(0o644));
                        header.set_size(bytes.len() as u64);
                        tar.append_data(&mut header, &path, &bytes[..])
                            .map_err(Error::Tar)?;
                    }
                    Content::File(host) => {
                        let input = |source| Error::Input {
                            path: host.clone(),
                            source,
                        };
                        let f = File::open(host).map_err(input)?;
                        let meta = f.metadata().map_err(input)?;
                        let executable = meta.permissions().mode() & 0o111 != 0;
                        let mode = file.mode.unwrap_or(if executable { 0o755 } else { 0o644 });
                        header.set_mode(mode);
                        header.set_size(meta.len());
                        let exact = Exact {
                            inner: f.take(meta.len()),
                            remaining: meta.len(),
                            path: host,
                        };
                        tar.append_data(&mut header, &path, exact)
                            .map_err(Error::Tar)?;
                    }
                }
            }
        }
    }
    tar.into_inner()
        .map_err(Error::Tar)?
        .flush()
        .map_err(Error::Tar)?;
    Ok(())
}

/// Reads exactly the size the tar header promised: a file that grows is cut at that size
/// by `take`, and one that shrinks while being read is an error rather than a corrupt tar.
struct Exact<'a, R> {
    inner: R,
    remaining: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} shrank while it was being read (is something still writing it?)",
                    self.path.display()
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Strips the leading `/` and rejects paths that could escape the root.
fn normalize(path: &str) -> Result<String, Error> {
    let trimmed = path.trim_start_matches('/');
    let bad = trimmed.is_empty()
        || trimmed.ends_with('/')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::BadImagePath(path.to_string()));
    }
    Ok(trimmed.to_string())
}

/// The layer's uncompressed digest, computed without compressing.
pub fn diff_id(spec: &LayerSpec, owner: Ownership) -> Result<Digest, Error> {
    let mut hasher = Hasher::sha256();
    write_tar(spec, owner, &mut hasher)?;
    Ok(hasher.finish())
}

/// Writes the layer into `layout` as tar+gzip, unless `known` already has a compressed
/// layer with the same uncompressed content (same diff id) whose blob is intact in the
/// layout, which is then reused as is. A damaged blob is never reused: the layer is
/// compressed again, and the same bytes replace it under the same digest.
///
/// Two passes over the files when `known` is not empty: the first only hashes the tar
/// stream (cheap, and all a rebuild with unchanged files needs); the second compresses it on
/// every core while hashing it again, so a file that changed in between is an error, not a
/// layer whose content disagrees with its diff id. With nothing known (a first build, as in
/// every fresh CI clone) no layer can be reused, so the first pass is skipped.
pub fn write_layer(
    spec: &LayerSpec,
    owner: Ownership,
    layout: &Layout,
    known: &BTreeMap<Digest, Descriptor>,
) -> Result<Layer, Error> {
    let expected = if known.is_empty() {
        None
    } else {
        let diff_id = diff_id(spec, owner)?;
        if let Some(descriptor) = known.get(&diff_id).filter(|d| layout.has_intact_blob(d)) {
            return Ok(Layer {
                descriptor: descriptor.clone(),
                diff_id,
                reused: true,
            });
        }
        Some(diff_id)
    };
    let (written, diff_id) = compress_into(layout, |out| write_tar(spec, owner, out))?;
    if expected.is_some_and(|expected| expected != diff_id) {
        return Err(Error::Changed {
            description: spec.description.clone(),
        });
    }
    let (digest, size) = written;
    Ok(Layer {
        descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, digest, size),
        diff_id,
        reused: false,
    })
}

/// [`write_layer`], looking first in the layout and then in `cache` (a layer cache another
/// machine filled, see [`crate::LayerCache`]) for a compressed layer with this layer's diff
/// id. A cached one is copied into the layout (its digest checked as it is written), so an
/// unchanged binary is never compressed again; a damaged one is ignored.
pub fn write_layer_cached(
    spec: &LayerSpec,
    owner: Ownership,
    layout: &Layout,
    known: &BTreeMap<Digest, Descriptor>,
    cache: &crate::LayerCache,
) -> Result<Layer, Error> {
    let diff_id = diff_id(spec, owner)?;
    let reused = |descriptor: &Descriptor| Layer {
        descriptor: descriptor.clone(),
        diff_id: diff_id.clone(),
        reused: true,
    };
    if let Some(descriptor) = known.get(&diff_id).filter(|d| layout.has_intact_blob(d)) {
        return Ok(reused(descriptor));
    }
    // A cached blob that is gone (another build's `keep` pruned it) or does not match its
    // digest costs a compression, never the build.
    if let Some(descriptor) = cache.find(&diff_id)
        && let Ok(blob) = cache.layout().read_blob(descriptor)
        && layout.write_blob(descriptor, blob).is_ok()
    {
        return Ok(reused(descriptor));
    }
    let layer = write_layer(spec, owner, layout, &BTreeMap::new())?;
    if layer.diff_id != diff_id {
        return Err(Error::Changed {
            description: spec.description.clone(),
        });
    }
    Ok(layer)
}

/// Compresses an uncompressed tar stream (e.g. a layer exported by a Docker engine) into a
/// new gzip blob of `layout`, the same way [`write_layer`] does: the same tar gives the same
/// blob on every machine.
pub fn compress_tar(tar: &mut impl io::Read, layout: &Layout) -> Result<Layer, Error> {
    let (written, diff_id) = compress_into(layout, |out| {
        io::copy(tar, out).map(drop).map_err(Error::Tar)
    })?;
    let (digest, size) = written;
    Ok(Layer {
        descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, digest, size),
        diff_id,
        reused: false,
    })
}

/// Runs `produce` (which writes a tar stream) on this thread while other threads compress
/// what it writes into a new blob of `layout`. Returns the blob's digest and size, and the
/// digest of the uncompressed stream (the diff id).
fn compress_into(
    layout: &Layout,
    produce: impl FnOnce(&mut ChunkWriter) -> Result<(), Error>,
) -> Result<((Digest, u64), Digest), Error> {
    let (chunks, received) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let compressor = scope.spawn(|| compress(received, layout));
        let mut producer = ChunkWriter {
            chunk: Vec::with_capacity(CHUNK),
            chunks,
            hasher: Hasher::sha256(),
        };
        let produced =
            produce(&mut producer).and_then(|()| producer.send_chunk().map_err(Error::Tar));
        let ChunkWriter { chunks, hasher, .. } = producer;
        // Dropping the sender ends the compressor's input.
        drop(chunks);
        let compressed = compressor.join().expect("compressor thread panicked");
        // If the compressor failed (e.g. disk full), that is the cause of any send error.
        let (digest, size) = compressed?;
        produced?;
        Ok(((digest, size), hasher.finish()))
    })
}

/// Uncompressed bytes per gzip member. Fixed, never derived from the number of cores, so
/// the compressed bytes are the same on every machine.
const CHUNK: usize = 1 << 20;
/// How many chunks may wait for a compressor: bounds memory to a few MiB per layer.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Compresses chunks, in parallel, into a new blob of the layout.
///
/// Each chunk becomes one gzip member and the members are written in order: a multi-member
/// gzip file (RFC 1952, section 2.2; the layout of bgzip and pigz-style tools), which every
/// gzip reader decompresses as one stream (Go's `compress/gzip`, used by docker, containerd,
/// skopeo and umoci, reads all members by default; in Rust use `MultiGzDecoder`).
fn compress(chunks: mpsc::Receiver<Vec<u8>>, layout: &Layout) -> Result<(Digest, u64), Error> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let jobs = Mutex::new(chunks.into_iter().enumerate());
    let (done, members) = mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(workers * 2);
    let mut blob = layout.blob_writer()?;
    let written = std::thread::scope(|scope| -> Result<usize, Error> {
        for _ in 0..workers {
            let done = done.clone();
            let jobs = &jobs;
            scope.spawn(move || {
                loop {
                    let next = jobs.lock().expect("no panics while locked").next();
                    let Some((index, chunk)) = next else { break };
                    if done.send((index, gzip_member(&chunk))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Members finish out of order; write them in order.
        let mut pending = BTreeMap::new();
        let mut next = 0;
        for (index, member) in members {
            pending.insert(index, member);
            while let Some(member) = pending.remove(&next) {
                blob.write_all(&member.map_err(Error::Tar)?)
                    .map_err(Error::Tar)?;
                next += 1;
            }
        }
        Ok(next)
    })?;
    if written == 0 {
        // An empty tar stream still needs one (empty) member to be a gzip file.
        blob.write_all(&gzip_member(&[]).map_err(Error::Tar)?)
            .map_err(Error::Tar)?;
    }
    Ok(blob.commit()?)
}

/// One gzip member, with the header fields fixed (mtime 0, no file name, OS "unknown") so
/// nothing of the host gets in.
fn gzip_member(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2),
            Compression::new(GZIP_LEVEL),
        );
    gz.write_all(data)?;
    gz.finish()
}

/// Hashes the tar stream and passes it on to the compressor in chunks.
struct ChunkWriter {
    chunk: Vec<u8>,
    chunks: mpsc::SyncSender<Vec<u8>>,
    hasher: Hasher,
}

impl ChunkWriter {
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.hasher.update(&full);
        self.chunks
            .send(full)
            .map_err(|_| io::Error::other("the compressor stopped"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.send_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
