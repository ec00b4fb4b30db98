//! Checksums from `Cargo.lock`, which `cargo metadata` does not report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// sha256 (lowercase hex) of each registry package's `.crate`, by `(name, version)`.
pub type Checksums = BTreeMap<(String, String), String>;

/// What is wrong in a lockfile, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct LockfileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl LockfileError {
    /// The same error, naming the file it was read from.
    pub fn in_file(self, path: &Path) -> crate::Error {
        crate::Error::Lockfile {
            path: path.to_path_buf(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }
}

// Only the fields this crate reads: cargo adds fields over time, and unknown ones must not
// make an SBOM fail. (The cargo-lock crate would be a second dependency tree for four fields.)
#[derive(Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<LockedPackage>,
    /// Lockfile format 1 kept checksums here, as
    /// `"checksum <name> <version> (<source>)" = "<sha256>"`.
    #[serde(default)]
    metadata: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    checksum: Option<Spanned<String>>,
}

/// Reads the checksums in a `Cargo.lock` (formats 1 to 4).
///
/// A `(name, version)` locked twice with different checksums (the same crate from two
/// registries) is left out: a checksum that might belong to the other package is worse than
/// none.
pub fn checksums_from_lockfile(text: &str) -> Result<Checksums, LockfileError> {
    let lock: Lockfile = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        LockfileError {
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let mut found: Vec<((String, String), Spanned<String>)> = Vec::new();
    for p in lock.package {
        if let Some(checksum) = p.checksum {
            found.push(((p.name, p.version), checksum));
        }
    }
    for (key, checksum) in lock.metadata {
        let mut words = key.split_whitespace();
        if let (Some("checksum"), Some(name), Some(version)) =
            (words.next(), words.next(), words.next())
        {
            // Format 1 wrote `<none>` for packages without a checksum.
            if checksum.get_ref() != "<none>" {
                found.push(((name.to_string(), version.to_string()), checksum));
            }
        }
    }
    let mut checksums = Checksums::new();
    let mut ambiguous = BTreeSet::new();
    for (key, checksum) in found {
        let value = checksum.get_ref();
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            let (line, column) = line_column(text, checksum.span().start);
            return Err(LockfileError {
                line,
                column,
                message: format!(
                    "checksum {value:?} of {} {} is not a sha256 (64 hex characters)",
                    key.0, key.1
                ),
            });
        }
        let value = value.to_ascii_lowercase();
        match checksums.get(&key) {
            Some(existing) if *existing != value => {
                ambiguous.insert(key);
            }
            _ => {
                checksums.insert(key, value);
            }
        }
    }
    for key in ambiguous {
        checksums.remove(&key);
    }
    Ok(checksums)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}
