//! Advisories read from an advisory-db directory, one crate directory at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use rustsec::advisory::Parts;
use rustsec::{Advisory, Collection};

use crate::Error;

/// The advisories about a set of crates, read from an advisory-db directory
/// (`crates/<crate-name>/RUSTSEC-YYYY-NNNN.md`).
#[derive(Debug, Clone, Default)]
pub struct Advisories {
    /// Advisories by crate name, each list in file name order.
    by_package: BTreeMap<String, Vec<Advisory>>,
}

impl Advisories {
    /// Reads the advisories about `packages` from the advisory-db directory `db`.
    ///
    /// Only `crates/<name>/` is read for each name. `rustsec::Database::open` is not used
    /// because it parses every advisory in the database (about 1,200 files, most of the time
    /// of a scan) although a lockfile's few hundred crates have a few dozen directories
    /// between them. The result is the same: rustsec refuses an advisory about crate `x`
    /// anywhere but in `crates/x/`, and so does this function. One difference: a malformed
    /// advisory about a crate the lockfile does not use is not read, so it is not an error
    /// here, while `cargo audit` refuses the whole database.
    pub fn load<'a>(db: &Path, packages: impl IntoIterator<Item = &'a str>) -> Result<Self, Error> {
        let crates = db.join(Collection::Crates.as_str());
        // A wrong path must fail, not look like a database without advisories.
        std::fs::read_dir(&crates).map_err(|source| Error::Database {
            path: crates.clone(),
            source,
        })?;
        let mut by_package = BTreeMap::new();
        let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
        for name in packages.into_iter().collect::<BTreeSet<_>>() {
            // Lockfile names are not validated by cargo-lock; a name like `../x` must not
            // lead outside the database. Crate names are ASCII letters, digits, `-` and `_`.
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                continue;
            }
            let dir = crates.join(name);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::Database { path: dir, source }),
            };
            let mut paths = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| Error::Database {
                    path: dir.clone(),
                    source,
                })?;
                // Like rustsec: skip dotfiles such as .DS_Store.
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    paths.push(entry.path());
                }
            }
            paths.sort();
            let mut list = Vec::new();
            for path in paths {
                let Some(advisory) = load_file(&path, name)? else {
                    continue;
                };
                let id = advisory.id().as_str().to_owned();
                if let Some(first) = ids.insert(id.clone(), path.clone()) {
                    return Err(Error::Advisory {
                        line: line_of_key(
                            &std::fs::read_to_string(&path).unwrap_or_default(),
                            "id",
                        ),
                        path,
                        message: format!(
                            "duplicate advisory id {id} (also in {})",
                            first.display()
                        ),
                    });
                }
                list.push(advisory);
            }
            if !list.is_empty() {
                by_package.insert(name.to_owned(), list);
            }
        }
        Ok(Self { by_package })
    }

    /// The advisories about crate `name`, withdrawn and informational ones included.
    pub fn for_package(&self, name: &str) -> &[Advisory] {
        self.by_package.get(name).map_or(&[], Vec::as_slice)
    }

    /// How many advisories were read.
    pub fn len(&self) -> usize {
        self.by_package.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_package.is_empty()
    }
}

/// The advisory-db location cargo-audit uses: `$CARGO_HOME/advisory-db`, where `CARGO_HOME`
/// defaults to `~/.cargo`. `None` when neither `CARGO_HOME` nor `HOME` is set.
pub fn default_db() -> Option<PathBuf> {
    let cargo_home = match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cargo"),
    };
    Some(cargo_home.join("advisory-db"))
}

/// Reads one advisory file, with the checks rustsec's `Database::open` makes (file named
/// after the id, directory named after the package, `crates` collection). `None` for the
/// placeholder `RUSTSEC-0000-0000`, which rustsec parses but never reports.
fn load_file(path: &Path, dir_name: &str) -> Result<Option<Advisory>, Error> {
    let invalid = |line: Option<usize>, message: String| Error::Advisory {
        path: path.to_path_buf(),
        line,
        message,
    };
    if path.extension() != Some(OsStr::new("md")) {
        return Err(invalid(
            None,
            "unexpected file extension (advisories are RUSTSEC-YYYY-NNNN.md files)".into(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // `FromStr`, not `Advisory::load_file`: that reads the file itself, and the text is
    // needed here to turn an error's byte offset into a line.
    let mut advisory: Advisory = text
        .parse()
        .map_err(|e| invalid(error_line(&text, &e), error_message(&e)))?;
    let id = advisory.id().as_str().to_owned();
    let is_draft = Advisory::is_draft(path);
    if path.file_name() != Some(OsStr::new(&format!("{id}.md"))) && !is_draft {
        return Err(invalid(
            line_of_key(&text, "id"),
            format!("the file of advisory {id} must be named {id}.md"),
        ));
    }
    if advisory.metadata.package.as_str() != dir_name {
        return Err(invalid(
            line_of_key(&text, "package"),
            format!(
                "advisory {id} is about package {:?} but is in directory crates/{dir_name}",
                advisory.metadata.package.as_str()
            ),
        ));
    }
    match advisory.metadata.collection {
        None => advisory.metadata.collection = Some(Collection::Crates),
        Some(Collection::Crates) => {}
        Some(other) => {
            return Err(invalid(
                line_of_key(&text, "collection"),
                format!("advisory {id} is in collection {other:?} but in the crates/ directory"),
            ));
        }
    }
    if advisory.id().is_placeholder() {
        return Ok(None);
    }
    Ok(Some(advisory))
}

/// rustsec's message without its "parse error: " kind prefix.
fn error_message(error: &rustsec::Error) -> String {
    use std::error::Error as _;
    if let Some(toml) = error
        .source()
        .and_then(|s| s.downcast_ref::<toml::de::Error>())
    {
        return toml.message().trim().to_owned();
    }
    let message = error.to_string();
    match message.split_once(": ") {
        Some((_, rest)) if error.kind() == rustsec::ErrorKind::Parse => rest.to_owned(),
        _ => message,
    }
}

/// The line of `text` (1-based) that a parse error of rustsec's is about, when it can be
/// told: from the TOML parser's span, or from the shape rustsec expects (a ```toml fence
/// first, then a `# title`).
fn error_line(text: &str, error: &rustsec::Error) -> Option<usize> {
    use std::error::Error as _;
    let Ok(parts) = Parts::parse(text) else {
        // The fence must open the file; if it does, it is never closed, or the `# title`
        // after it is missing.
        if !text.starts_with("```toml") {
            return Some(1);
        }
        return Some(match text.find("\n```") {
            Some(end) => {
                let after = &text[end + 4..];
                line_at(text, text.len() - after.trim_start().len())
            }
            None => 1,
        });
    };
    if let Some(toml) = error
        .source()
        .and_then(|s| s.downcast_ref::<toml::de::Error>())
    {
        let span = toml.span()?;
        // The front matter is a slice of `text`, so its offset is the pointer difference.
        let start = (parts.front_matter.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        // rustsec prepends this header to front matter without it (advisory format v4), so
        // the parser's offsets are that much too large.
        let shift = if parts.front_matter.starts_with("[advisory]") {
            0
        } else {
            "[advisory]\n".len()
        };
        return Some(line_at(text, start + span.start.saturating_sub(shift)));
    }
    // The remaining errors are about a key that must not be in the TOML.
    ["title", "description"]
        .into_iter()
        .find(|key| error.to_string().contains(&format!("`{key}`")))
        .and_then(|key| line_of_key(text, key))
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The first line of the form `key = ...` in `text`.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_at_counts_newlines_before_the_offset() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a\nb\nc", 400), 3);
    }

    #[test]
    fn line_of_key_needs_an_equals_sign() {
        let text = "```toml\n[advisory]\nidentity = 1\nid = \"X\"\n";
        assert_eq!(line_of_key(text, "id"), Some(4));
        assert_eq!(line_of_key(text, "package"), None);
    }
}
