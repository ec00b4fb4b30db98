//! What a check found, as plain data: serializable to JSON and printable as text.

use std::fmt;

use serde::Serialize;
use wharf_oci::Digest;

/// The result of [`check`](crate::check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The image checked: the sha256 of its manifest.
    pub image: Digest,
    pub size: Size,
    /// The budget `size.compressed` was compared with, if any.
    pub max_size: Option<u64>,
    /// The config's `User`, as written.
    pub user: Option<String>,
    /// The uid the image runs as, when it could be told (numeric, or found in /etc/passwd).
    pub uid: Option<u64>,
    pub layers: Vec<LayerSummary>,
    /// Sorted by check, then layer (in manifest order), then path.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when no finding is an error (warnings do not fail a check).
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Error)
    }

    pub fn errors(&self) -> usize {
        self.count(Level::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Level::Warning)
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// Findings of one kind, for callers and tests that look for one check.
    pub fn of(&self, check: CheckKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.check == check)
    }
}

/// Sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Size {
    /// Config and layers as pushed (from their descriptors).
    pub compressed: u64,
    /// The layers' tar streams; `None` when a layer could not be read to its end.
    pub uncompressed: Option<u64>,
}

/// One layer as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerSummary {
    pub digest: Digest,
    pub media_type: String,
    pub compressed: u64,
    /// Length of the tar stream; `None` when the layer was not read to its end.
    pub uncompressed: Option<u64>,
    /// Tar entries read (extension headers not counted).
    pub entries: u64,
}

/// Which check a finding comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The image runs as root.
    User,
    /// Over the size budget.
    Size,
    /// Required labels missing.
    Labels,
    /// A regular file or a non-sticky directory that anyone may write.
    WorldWritable,
    /// A file that looks like a secret, by name or content.
    Secret,
    /// An entry name or link target that leaves the root (`..`, absolute).
    PathTraversal,
    /// An entry that claims more bytes than the layer can hold or the limits allow.
    EntrySize,
    /// A layer that expands past `Limits::max_layer_bytes`.
    DecompressionBomb,
    /// A symlink whose resolution never ends.
    SymlinkLoop,
    /// A layer that is not a valid (compressed) tar stream: truncated, corrupt, not gzip.
    CorruptLayer,
    /// A layer whose media type this crate cannot read (zstd, unknown).
    UnsupportedMediaType,
    /// A tar entry this crate does not read (sparse files, sizes only in pax records).
    UnsupportedEntry,
    /// More entries than `Limits::max_entries`.
    TooManyEntries,
    /// A blob that does not match its digest or size, a diff id that does not match, or a
    /// blob that could not be read.
    Integrity,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::User => "user",
            CheckKind::Size => "size",
            CheckKind::Labels => "labels",
            CheckKind::WorldWritable => "world_writable",
            CheckKind::Secret => "secret",
            CheckKind::PathTraversal => "path_traversal",
            CheckKind::EntrySize => "entry_size",
            CheckKind::DecompressionBomb => "decompression_bomb",
            CheckKind::SymlinkLoop => "symlink_loop",
            CheckKind::CorruptLayer => "corrupt_layer",
            CheckKind::UnsupportedMediaType => "unsupported_media_type",
            CheckKind::UnsupportedEntry => "unsupported_entry",
            CheckKind::TooManyEntries => "too_many_entries",
            CheckKind::Integrity => "integrity",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is: errors fail [`Report::passed`], warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
        })
    }
}

/// One problem. Messages name paths, layers and rules, never the content of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: CheckKind,
    pub level: Level,
    /// The layer the problem is in, when it is in one.
    pub layer: Option<Digest>,
    /// The path in the image (absolute, as the container sees it), or the raw entry name of
    /// a hostile entry.
    pub path: Option<String>,
    /// For secrets: the rule that matched, e.g. `private-key`.
    pub rule: Option<&'static str>,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(check: CheckKind, level: Level, message: String) -> Finding {
        Finding {
            check,
            level,
            layer: None,
            path: None,
            rule: None,
            message,
        }
    }

    pub(crate) fn error(check: CheckKind, message: String) -> Finding {
        Finding::new(check, Level::Error, message)
    }

    pub(crate) fn warning(check: CheckKind, message: String) -> Finding {
        Finding::new(check, Level::Warning, message)
    }

    pub(crate) fn in_layer(mut self, layer: &Digest) -> Finding {
        self.layer = Some(layer.clone());
        self
    }

    pub(crate) fn at(mut self, path: impl Into<String>) -> Finding {
        self.path = Some(path.into());
        self
    }

    pub(crate) fn rule(mut self, rule: &'static str) -> Finding {
        self.rule = Some(rule);
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.level, self.check)?;
        if let Some(path) = &self.path {
            write!(f, " {path:?}")?;
        }
        if let Some(layer) = &self.layer {
            write!(f, " in layer {}", layer.short())?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(rule) = self.rule {
            write!(f, " (rule {rule})")?;
        }
        Ok(())
    }
}

/// The plain text rendering: a summary, then one line per finding.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "passed" } else { "failed" };
        writeln!(
            f,
            "image {}: {verdict} ({} errors, {} warnings)",
            self.image,
            self.errors(),
            self.warnings()
        )?;
        write!(f, "  size: {} bytes compressed", self.size.compressed)?;
        if let Some(budget) = self.max_size {
            write!(f, " (budget {budget})")?;
        }
        match self.size.uncompressed {
            Some(bytes) => writeln!(f, ", {bytes} bytes uncompressed")?,
            None => writeln!(
                f,
                ", uncompressed unknown (a layer was not read to its end)"
            )?,
        }
        match (&self.user, self.uid) {
            (Some(user), Some(uid)) if !user.is_empty() => {
                writeln!(f, "  user: {user:?} (uid {uid})")?
            }
            (Some(user), None) if !user.is_empty() => writeln!(f, "  user: {user:?}")?,
            _ => writeln!(f, "  user: not set (root)")?,
        }
        writeln!(f, "  layers: {}", self.layers.len())?;
        for finding in &self.findings {
            writeln!(f, "  {finding}")?;
        }
        Ok(())
    }
}

/// Sorts findings into their documented order and drops duplicates (a layer listed twice
/// in a manifest is read twice).
pub(crate) fn sort(findings: &mut Vec<Finding>, layers: &[&Digest]) {
    let position = |f: &Finding| {
        f.layer
            .as_ref()
            .and_then(|d| layers.iter().position(|l| *l == d))
    };
    findings.sort_by(|a, b| {
        (a.check, position(a), &a.path, a.level, a.rule, &a.message).cmp(&(
            b.check,
            position(b),
            &b.path,
            b.level,
            b.rule,
            &b.message,
        ))
    });
    findings.dedup();
}
