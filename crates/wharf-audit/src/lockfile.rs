//! A `Cargo.lock`, parsed by cargo-lock (through rustsec), with its text kept for lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustsec::package::Package;

use crate::Error;

/// A parsed `Cargo.lock`, and where it came from.
#[derive(Debug, Clone)]
pub struct Lockfile {
    path: PathBuf,
    text: String,
    parsed: rustsec::Lockfile,
}

impl Lockfile {
    /// Reads and parses the lockfile at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parses lockfile `text`; `path` is only used to name it in errors and findings.
    pub fn parse(path: impl Into<PathBuf>, text: String) -> Result<Self, Error> {
        let path = path.into();
        match text.parse::<rustsec::Lockfile>() {
            Ok(parsed) => Ok(Self { path, text, parsed }),
            Err(error) => {
                let (line, message) = describe(&error);
                Err(Error::Lockfile {
                    path,
                    line,
                    message,
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The packages, in lockfile order.
    pub fn packages(&self) -> &[Package] {
        &self.parsed.packages
    }

    /// The package names, each once per entry (a crate locked at two versions is listed
    /// twice).
    pub fn package_names(&self) -> impl Iterator<Item = &str> {
        self.parsed.packages.iter().map(|p| p.name.as_str())
    }

    /// The line of each `name = "<name>"` entry that is followed by `version = "<version>"`,
    /// the form cargo writes, keyed by (name, version). Entries written otherwise are missing.
    pub(crate) fn package_lines(&self) -> HashMap<(&str, &str), usize> {
        let mut lines = HashMap::new();
        let mut previous: Option<(usize, &str)> = None;
        for (index, line) in self.text.lines().enumerate() {
            if let (Some((name_line, name)), Some(version)) = (previous, quoted(line, "version")) {
                lines.entry((name, version)).or_insert(name_line);
            }
            previous = quoted(line, "name").map(|name| (index + 1, name));
        }
        lines
    }
}

/// The value of a line `key = "value"`.
fn quoted<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')
}

/// The line and message of a cargo-lock error. cargo-lock keeps only the TOML parser's
/// rendered message, which starts "TOML parse error at line N, column M", shows the line
/// and a caret, and ends with the message.
fn describe(error: &rustsec::cargo_lock::Error) -> (Option<usize>, String) {
    let rendered = error.to_string();
    let Some((_, located)) = rendered.split_once("TOML parse error at line ") else {
        return (None, rendered);
    };
    let line = located
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok());
    // Drop the location line and the snippet (lines of the form `  |` and `12 | ...`).
    let message: Vec<&str> = located
        .lines()
        .skip(1)
        .filter(|l| {
            let t = l
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !t.trim_start().starts_with('|')
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = if message.is_empty() {
        rendered.clone()
    } else {
        message.join("; ")
    };
    (line, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_lines_pair_name_and_version_lines() {
        let text = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"a\"\nversion = \"2.0.0\"\n";
        let lock = Lockfile::parse("Cargo.lock", text.into()).unwrap();
        let lines = lock.package_lines();
        assert_eq!(lines.get(&("a", "1.0.0")), Some(&4));
        assert_eq!(lines.get(&("a", "2.0.0")), Some(&8));
        // The lockfile's own `version = 4` is not preceded by a name.
        assert_eq!(lines.len(), 2);
    }
}
