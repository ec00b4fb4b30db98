//! A RustSec vulnerability report for a `Cargo.lock`, read offline from a directory copy of
//! the [advisory-db](https://github.com/rustsec/advisory-db).
//!
//! [`Lockfile::load`] and [`Advisories::load`] are the sources, [`audit`] is pure and turns
//! them into a [`Report`], and [`render`] turns a report into text (a table, JSON, or SARIF
//! 2.1.0 for GitHub code scanning). [`audit_lockfile`] does all three steps but rendering.
//!
//! Findings are the ones `cargo audit --db DIR --no-fetch --stale` (cargo-audit 0.22) gives,
//! because the parsing and matching rules are rustsec's, the library cargo-audit is built on:
//! only crates.io packages are checked, withdrawn advisories are ignored, no os/arch filter
//! applies, and informational advisories (`unmaintained`, `unsound`, `notice`) are warnings,
//! not vulnerabilities. Yanked crates are not reported (that needs the crates.io index).
//!
//! This crate never touches the network, runs a process or writes a file; reading the
//! advisory directories of the crates in the lockfile, and the lockfile, is all its I/O.

mod advisories;
mod lockfile;
pub mod render;
mod report;

use std::path::{Path, PathBuf};

pub use advisories::{Advisories, default_db};
pub use lockfile::Lockfile;
pub use report::{Finding, Kind, Report, Severity, audit};

/// Why an advisory database or a lockfile could not be read.
///
/// Every variant names the file, and the line when one is known, so a malformed advisory
/// in a database of a thousand can be found at once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The advisory database directory (or one of its crate directories) cannot be listed.
    #[error(
        "reading advisory database {}: {source} (hint: clone https://github.com/rustsec/advisory-db there, or pass its path)",
        path.display()
    )]
    Database {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An advisory file does not parse, or is not where its id and package say it should be.
    #[error("{}: invalid advisory: {message}", at(path, *line))]
    Advisory {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// The lockfile does not parse.
    #[error("{}: invalid lockfile: {message}", at(path, *line))]
    Lockfile {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Database { path, .. }
            | Error::Read { path, .. }
            | Error::Advisory { path, .. }
            | Error::Lockfile { path, .. } => path,
        }
    }

    /// The line (1-based) the error is about, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Advisory { line, .. } | Error::Lockfile { line, .. } => *line,
            Error::Database { .. } | Error::Read { .. } => None,
        }
    }
}

/// `path:line`, the form editors and terminals turn into a link.
fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// Reads the lockfile at `lockfile`, the advisories of its crates from the advisory-db
/// directory `db`, and reports what applies.
pub fn audit_lockfile(lockfile: &Path, db: &Path) -> Result<Report, Error> {
    let lockfile = Lockfile::load(lockfile)?;
    let advisories = Advisories::load(db, lockfile.package_names())?;
    Ok(audit(&lockfile, &advisories))
}
