//! Reading one layer as a stream: blob (digest and size checked at its end) -> gunzip ->
//! uncompressed byte limit (and diff id hash) -> tar entries. Entries are looked at and
//! skipped; nothing is unpacked.
//!
//! The tar crate reads entries in raw mode, so GNU long names and pax headers reach this
//! module as entries and are read here with a size cap: in its default mode the crate would
//! read one of any size into memory.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::EntryType;
use wharf_oci::image::BlobReader;
use wharf_oci::{Descriptor, Digest, Hasher, Image, VerifyingReader, media_type};

use crate::Limits;
use crate::report::{CheckKind, Finding, LayerSummary};
use crate::secret;
use crate::tree::{Change, Kind, Node};

/// Longest GNU long name, long link or pax header read, the cap Go's archive/tar (which
/// docker and containerd use) puts on them.
const MAX_EXTENSION: u64 = 1 << 20;
/// DEFLATE expands at most about 1032 times, so a gzip layer of n bytes holds at most
/// 1032 n bytes of tar.
const MAX_DEFLATE_RATIO: u64 = 1032;

const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const OCI_NONDISTRIBUTABLE_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const OCI_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
}

fn compression(media_type: &str) -> Result<Compression, String> {
    match media_type {
        media_type::OCI_LAYER_TAR | DOCKER_LAYER_TAR | OCI_NONDISTRIBUTABLE_TAR => {
            Ok(Compression::None)
        }
        t if media_type::is_gzip_layer(t)
            || t == DOCKER_FOREIGN_GZIP
            || t == OCI_NONDISTRIBUTABLE_GZIP =>
        {
            Ok(Compression::Gzip)
        }
        t if t.ends_with("+zstd") || t.ends_with(".zstd") => Err(format!(
            "unsupported layer media type {t:?}: zstd layers cannot be read, so this layer \
             was not checked (push tar+gzip layers)"
        )),
        t => Err(format!(
            "unsupported layer media type {t:?}, so this layer was not checked \
             (supported: tar, tar+gzip)"
        )),
    }
}

/// One layer to read.
pub(crate) struct Scan<'a> {
    pub descriptor: &'a Descriptor,
    /// The config's uncompressed digest for this layer.
    pub diff_id: Option<&'a Digest>,
    pub limits: &'a Limits,
}

impl Scan<'_> {
    /// Reads the layer, adding its findings to `findings`, and returns what it does to the
    /// file tree. Never fails: whatever goes wrong is a finding.
    pub(crate) fn run<I: Image + ?Sized>(
        &self,
        image: &I,
        findings: &mut Vec<Finding>,
        entries_left: &mut u64,
    ) -> (LayerSummary, Vec<Change>) {
        let descriptor = self.descriptor;
        let digest = &descriptor.digest;
        let mut summary = LayerSummary {
            digest: digest.clone(),
            media_type: descriptor.media_type.clone(),
            compressed: descriptor.size,
            uncompressed: None,
            entries: 0,
        };
        let compression = match compression(&descriptor.media_type) {
            Ok(compression) => compression,
            Err(message) => {
                let finding = Finding::error(CheckKind::UnsupportedMediaType, message);
                findings.push(finding.in_layer(digest));
                return (summary, Vec::new());
            }
        };
        let blob = match image.blob(digest) {
            Ok(blob) => blob,
            Err(e) => {
                let finding =
                    Finding::error(CheckKind::Integrity, format!("reading the layer blob: {e}"));
                findings.push(finding.in_layer(digest));
                return (summary, Vec::new());
            }
        };
        let blob = Blob {
            inner: VerifyingReader::new(blob, digest.clone(), Some(descriptor.size)),
            failure: None,
        };
        let (decoder, capacity, format) = match compression {
            Compression::None => (Decoder::Plain(blob), descriptor.size, "tar"),
            Compression::Gzip => (
                Decoder::Gzip(Box::new(MultiGzDecoder::new(blob))),
                descriptor.size.saturating_mul(MAX_DEFLATE_RATIO),
                "tar+gzip",
            ),
        };
        let stream = Uncompressed {
            inner: decoder,
            read: 0,
            limit: self.limits.max_layer_bytes,
            exceeded: false,
            hasher: Hasher::sha256(),
        };
        let mut archive = tar::Archive::new(stream);
        let mut reader = Entries {
            layer: digest,
            limits: self.limits,
            capacity,
            findings,
            changes: Vec::new(),
            entries_left,
            entries: 0,
        };
        let outcome = reader.read(&mut archive);
        let Entries {
            findings,
            changes,
            entries,
            ..
        } = reader;
        summary.entries = entries;

        let mut stream = archive.into_inner();
        // Read what follows the end of the archive too: the diff id covers it, and the
        // digest is checked only at the end of the blob.
        let ended = matches!(outcome, Outcome::End);
        let error = match outcome {
            Outcome::End => io::copy(&mut stream, &mut io::sink()).err(),
            Outcome::Failed(e) => Some(e),
            Outcome::Stopped => None,
        };
        let complete = ended && error.is_none();
        let Uncompressed {
            inner: decoder,
            read,
            exceeded,
            hasher,
            ..
        } = stream;
        let mut blob = decoder.into_inner();
        let blob_failed_first = blob.failure.is_some();
        if !blob_failed_first {
            if exceeded {
                findings.push(
                    Finding::error(
                        CheckKind::DecompressionBomb,
                        format!(
                            "the layer expands past the limit of {} bytes uncompressed; \
                             reading stopped there",
                            self.limits.max_layer_bytes
                        ),
                    )
                    .in_layer(digest),
                );
            } else if let Some(e) = error {
                findings.push(
                    Finding::error(
                        CheckKind::CorruptLayer,
                        format!("the layer is not a valid {format} stream: {e}"),
                    )
                    .in_layer(digest),
                );
            }
        }
        if complete {
            summary.uncompressed = Some(read);
            let actual = hasher.finish();
            if let Some(expected) = self.diff_id.filter(|expected| **expected != actual) {
                findings.push(
                    Finding::error(
                        CheckKind::Integrity,
                        format!(
                            "the layer's tar stream is {actual}, but the config's diff id is \
                             {expected}"
                        ),
                    )
                    .in_layer(digest),
                );
            }
        } else if !blob_failed_first {
            // Stopped early: still read the rest of the blob (bounded by its descriptor's
            // size), so that a blob which does not match its digest is reported as such.
            let _ = io::copy(&mut blob, &mut io::sink());
        }
        if let Some((kind, message)) = blob.failure {
            let message = if kind == io::ErrorKind::InvalidData {
                format!("the layer blob does not match its descriptor: {message}")
            } else {
                format!("reading the layer blob failed: {message}")
            };
            findings.push(Finding::error(CheckKind::Integrity, message).in_layer(digest));
        }
        (summary, changes)
    }
}

/// The blob as fetched, checked against its digest and size. It remembers its first
/// failure, so that a gzip or tar error caused by a bad blob is reported as what it is.
struct Blob<'a> {
    inner: VerifyingReader<BlobReader<'a>>,
    failure: Option<(io::ErrorKind, String)>,
}

impl Read for Blob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.failure
                .get_or_insert_with(|| (e.kind(), e.to_string()));
        })
    }
}

enum Decoder<R> {
    Plain(R),
    // Boxed: the decoder's state is a few hundred bytes, the plain reader a pointer or two.
    Gzip(Box<MultiGzDecoder<R>>),
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
        }
    }
}

impl<R> Decoder<R> {
    fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
        }
    }
}

/// The tar stream: counted, hashed (for the diff id) and cut off past `limit` bytes.
struct Uncompressed<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: bool,
    hasher: Hasher,
}

impl<R: Read> Read for Uncompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.exceeded {
            // One byte past the limit is enough to know it is exceeded.
            let room = (self.limit - self.read).saturating_add(1);
            let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let n = self.inner.read(&mut buf[..want])?;
            if self.read + n as u64 <= self.limit {
                self.read += n as u64;
                self.hasher.update(&buf[..n]);
                return Ok(n);
            }
            self.exceeded = true;
        }
        Err(io::Error::other(format!(
            "more than {} bytes uncompressed",
            self.limit
        )))
    }
}

enum Outcome {
    /// The archive ended normally.
    End,
    /// The stream is broken: the error says how.
    Failed(io::Error),
    /// A finding made reading further pointless or unsafe; it is already reported.
    Stopped,
}

/// GNU long name/link and pax headers waiting for the entry they describe.
#[derive(Default)]
struct Extensions {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

struct Entries<'a> {
    layer: &'a Digest,
    limits: &'a Limits,
    /// The most uncompressed bytes this layer can hold.
    capacity: u64,
    findings: &'a mut Vec<Finding>,
    changes: Vec<Change>,
    entries_left: &'a mut u64,
    entries: u64,
}

/// The facts of one entry the checks need, taken from its headers.
struct Header {
    kind: EntryType,
    mode: u32,
    size: u64,
    name: String,
    link: Option<String>,
}

impl Entries<'_> {
    fn read<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Outcome {
        let entries = match archive.entries() {
            Ok(entries) => entries.raw(true),
            Err(e) => return Outcome::Failed(e),
        };
        let mut pending = Extensions::default();
        for entry in entries {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => return Outcome::Failed(e),
            };
            let kind = entry.header().entry_type();
            let size = entry.size();
            if matches!(
                kind,
                EntryType::GNULongName
                    | EntryType::GNULongLink
                    | EntryType::XHeader
                    | EntryType::XGlobalHeader
            ) {
                if size > MAX_EXTENSION {
                    self.push(Finding::error(
                        CheckKind::EntrySize,
                        format!(
                            "an extension header (type {:?}) claims {size} bytes, over the \
                             limit of {MAX_EXTENSION}; the rest of the layer was not read",
                            kind.as_byte() as char
                        ),
                    ));
                    return Outcome::Stopped;
                }
                let mut data = Vec::new();
                if let Err(e) = entry.read_to_end(&mut data) {
                    return Outcome::Failed(e);
                }
                match kind {
                    EntryType::GNULongName => pending.name = Some(trim_nul(data)),
                    EntryType::GNULongLink => pending.link = Some(trim_nul(data)),
                    EntryType::XHeader => pending.pax = Some(data),
                    _ => {}
                }
                continue;
            }

            let (mut pax_path, mut pax_link, mut pax_size) = (None, None, None);
            if let Some(pax) = pending.pax.take() {
                for record in tar::PaxExtensions::new(&pax).flatten() {
                    let value = || record.value_bytes().to_vec();
                    match record.key_bytes() {
                        b"path" => pax_path = Some(value()),
                        b"linkpath" => pax_link = Some(value()),
                        b"size" => pax_size = Some(value()),
                        _ => {}
                    }
                }
            }
            let name = pending
                .name
                .take()
                .or(pax_path)
                .unwrap_or_else(|| entry.header().path_bytes().into_owned());
            let link = pending
                .link
                .take()
                .or(pax_link)
                .or_else(|| entry.header().link_name_bytes().map(|l| l.into_owned()));
            let header = Header {
                kind,
                mode: entry.header().mode().unwrap_or(0) & 0o7777,
                size,
                name: String::from_utf8_lossy(&name).into_owned(),
                link: link.map(|l| String::from_utf8_lossy(&l).into_owned()),
            };

            if let Some(pax_size) = pax_size {
                let parsed = std::str::from_utf8(&pax_size)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if parsed != Some(size) {
                    self.push(
                        Finding::error(
                            CheckKind::UnsupportedEntry,
                            format!(
                                "a pax record gives the entry's size as {:?} and its tar \
                                 header as {size}: readers disagree on where the next entry \
                                 starts, so the rest of the layer was not read",
                                String::from_utf8_lossy(&pax_size)
                            ),
                        )
                        .at(&header.name),
                    );
                    return Outcome::Stopped;
                }
            }
            let most = self.capacity.min(self.limits.max_layer_bytes);
            if size > most {
                let why = if self.capacity < self.limits.max_layer_bytes {
                    "the layer can hold"
                } else {
                    "the limit for a layer"
                };
                self.push(
                    Finding::error(
                        CheckKind::EntrySize,
                        format!(
                            "the entry claims {size} bytes, more than {why} ({most}); the \
                             rest of the layer was not read"
                        ),
                    )
                    .at(&header.name),
                );
                return Outcome::Stopped;
            }
            if *self.entries_left == 0 {
                self.push(Finding::error(
                    CheckKind::TooManyEntries,
                    format!(
                        "the image has more than {} entries; the rest of this layer was not \
                         read",
                        self.limits.max_entries
                    ),
                ));
                return Outcome::Stopped;
            }
            *self.entries_left -= 1;
            self.entries += 1;

            if kind.is_gnu_sparse() {
                // Extended sparse maps follow the header, and raw mode does not skip them.
                let extended = entry
                    .header()
                    .as_gnu()
                    .is_some_and(|gnu| gnu.isextended[0] != 0);
                let finding = if extended {
                    Finding::error(
                        CheckKind::UnsupportedEntry,
                        "sparse file with an extended map; the rest of the layer was not read"
                            .into(),
                    )
                } else {
                    Finding::warning(
                        CheckKind::UnsupportedEntry,
                        "sparse file: its content was not scanned".into(),
                    )
                };
                self.push(finding.at(&header.name));
                if extended {
                    return Outcome::Stopped;
                }
                continue;
            }
            if let Err(e) = self.entry(&header, &mut entry) {
                return Outcome::Failed(e);
            }
        }
        Outcome::End
    }

    fn push(&mut self, finding: Finding) {
        self.findings.push(finding.in_layer(self.layer));
    }

    fn entry(&mut self, header: &Header, content: &mut dyn Read) -> io::Result<()> {
        let name = Name::parse(&header.name);
        if name.absolute {
            self.push(
                Finding::error(
                    CheckKind::PathTraversal,
                    "absolute entry name: an extractor that keeps the leading '/' writes \
                     outside its target directory"
                        .into(),
                )
                .at(&header.name),
            );
        }
        if name.climbs {
            self.push(
                Finding::error(
                    CheckKind::PathTraversal,
                    "entry name has a '..' component: extracting it writes outside the \
                     target directory; the entry was left out of the file tree"
                        .into(),
                )
                .at(&header.name),
            );
        }
        // Entries that climb out of the root stay out of the tree, but their content is in
        // the blob all the same, so they are still searched for secrets.
        let path = (!name.climbs).then(|| name.components.join("/"));
        let shown = match &path {
            Some(path) => format!("/{path}"),
            None => header.name.clone(),
        };
        let file_name = name.components.last().copied().unwrap_or("");
        let parent = match name.components.len() {
            0 | 1 => String::new(),
            n => name.components[..n - 1].join("/"),
        };

        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            let Some(_) = &path else { return Ok(()) };
            if hidden == ".wh..opq" {
                self.changes.push(Change::Opaque(parent));
            } else if matches!(hidden, "" | "." | "..") {
                self.push(
                    Finding::error(
                        CheckKind::PathTraversal,
                        format!("whiteout of {hidden:?} would delete outside its directory"),
                    )
                    .at(&header.name),
                );
            } else {
                self.changes.push(Change::Whiteout(join(&parent, hidden)));
            }
            return Ok(());
        }

        let node = |kind| Node {
            kind,
            mode: header.mode,
            layer: 0,
            content: None,
        };
        match header.kind {
            EntryType::Regular | EntryType::Continuous => {
                let content = self.file(header, path.as_deref(), &shown, content)?;
                if let Some(path) = path {
                    let node = Node {
                        content,
                        ..node(Kind::File { size: header.size })
                    };
                    self.changes.push(Change::Add(path, node));
                }
            }
            EntryType::Directory => {
                if let Some(path) = path.filter(|p| !p.is_empty()) {
                    self.changes.push(Change::Add(path, node(Kind::Dir)));
                }
            }
            EntryType::Symlink => {
                let target = header.link.clone().unwrap_or_default();
                if escapes(&parent, &target) {
                    self.push(
                        Finding::error(
                            CheckKind::PathTraversal,
                            format!(
                                "symlink target {target:?} climbs out of the root: an \
                                 extractor that follows it writes outside its target"
                            ),
                        )
                        .at(&shown),
                    );
                }
                if let Some(path) = path.filter(|p| !p.is_empty()) {
                    self.changes
                        .push(Change::Add(path, node(Kind::Symlink { target })));
                }
            }
            EntryType::Link => {
                let target = header.link.clone().unwrap_or_default();
                let parsed = Name::parse(&target);
                if parsed.absolute || parsed.climbs {
                    self.push(
                        Finding::error(
                            CheckKind::PathTraversal,
                            format!(
                                "hard link target {target:?} is outside the layer's root: \
                                 an extractor links to a host file"
                            ),
                        )
                        .at(&shown),
                    );
                } else if let Some(path) = path.filter(|p| !p.is_empty()) {
                    self.changes.push(Change::Hardlink {
                        path,
                        target: parsed.components.join("/"),
                        mode: header.mode,
                    });
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if let Some(path) = path.filter(|p| !p.is_empty()) {
                    self.changes.push(Change::Add(path, node(Kind::Other)));
                }
            }
            // Volume labels, multi-volume continuations, unknown types: nothing to check.
            _ => {}
        }
        Ok(())
    }

    /// Secret rules on a regular file; returns the content when the tree keeps it.
    fn file(
        &mut self,
        header: &Header,
        path: Option<&str>,
        shown: &str,
        content: &mut dyn Read,
    ) -> io::Result<Option<Vec<u8>>> {
        let name_path = path.unwrap_or(&header.name);
        if header.size > 0
            && let Some(rule) = secret::by_name(name_path)
        {
            self.push(
                Finding::error(
                    CheckKind::Secret,
                    format!("file is named like {}", rule.description),
                )
                .at(shown)
                .rule(rule.name),
            );
        }
        if header.size == 0 || header.size > secret::MAX_SCANNED_FILE {
            return Ok(None);
        }
        let keep = path == Some("etc/passwd");
        let want = if keep {
            header.size
        } else {
            secret::SCAN_PREFIX as u64
        };
        let mut bytes = Vec::new();
        content.take(want).read_to_end(&mut bytes)?;
        let prefix = &bytes[..bytes.len().min(secret::SCAN_PREFIX)];
        for rule in secret::by_content(prefix) {
            self.push(
                Finding::error(
                    CheckKind::Secret,
                    format!("file contains {}", rule.description),
                )
                .at(shown)
                .rule(rule.name),
            );
        }
        Ok(keep.then_some(bytes))
    }
}

/// An entry name taken apart: `./a//b/` is `a`, `b`.
struct Name<'a> {
    components: Vec<&'a str>,
    absolute: bool,
    climbs: bool,
}

impl<'a> Name<'a> {
    fn parse(raw: &'a str) -> Name<'a> {
        let components: Vec<&str> = raw
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        Name {
            climbs: components.contains(&".."),
            absolute: raw.starts_with('/'),
            components,
        }
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Does a relative symlink target, taken from the link's directory, climb above the root?
fn escapes(parent: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = parent.split('/').filter(|c| !c.is_empty()).count();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_escapes() {
        assert!(!escapes("usr/lib", "../../etc/passwd"));
        assert!(escapes("usr/lib", "../../../etc/passwd"));
        assert!(escapes("", ".."));
        assert!(!escapes("", "/etc/passwd"));
        assert!(!escapes("a", "b/../../c"), "a/b/../../c is c");
        assert!(escapes("a", "../b/../../c"));
    }

    #[test]
    fn names() {
        let n = Name::parse("./usr//bin/./x/");
        assert_eq!(n.components, ["usr", "bin", "x"]);
        assert!(!n.absolute && !n.climbs);
        let n = Name::parse("/etc/../../passwd");
        assert!(n.absolute && n.climbs);
    }
}
