//! Where the RustSec advisory database comes from: found, fetched when missing and updated
//! when old, with the git CLI, as cargo-audit does.
//!
//! [`ensure`] takes the directory the scan will read and a [`Fetch`] policy, and returns
//! what it did ([`Status`]) or why there is no database to read ([`Error`], with the
//! command that gets one). Reading and matching advisories is `wharf-audit`'s job, which
//! never touches the network; this crate is the only part of a scan that does.
//!
//! - A missing directory is cloned (`git clone --depth 1`) into a temporary directory
//!   beside it and renamed into place, so a killed clone never leaves half a database.
//! - A git checkout whose last update is older than [`Fetch::max_age`] is updated
//!   (`git fetch --depth 1` and `git reset --hard FETCH_HEAD`); the time of the last
//!   successful update is a stamp file in its `.git` directory, written after the reset,
//!   so an update killed half way is done again next time.
//! - When fetching fails (no network) and a copy exists, the copy is used and the status
//!   says why it could not be updated: the caller warns and goes on.
//! - A directory that is not a git checkout (a snapshot, a copy made by hand) is used as it
//!   is and never updated.
//! - [`Fetch::offline`] never runs git.
//!
//! Every git process has a deadline ([`Fetch::timeout`]) and no terminal prompt, so a dead
//! network costs bounded time.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// Where the RustSec advisory database is published.
pub const DEFAULT_URL: &str = "https://github.com/rustsec/advisory-db";

/// The stamp in `.git` whose modification time is the last successful update.
const STAMP: &str = "wharf-advisory-db-updated";

/// How a database may be fetched and kept up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The git remote to clone when the directory is missing.
    pub url: String,
    /// Update a git checkout whose last update is older than this.
    pub max_age: Duration,
    /// Never run git: use what is there, or fail.
    pub offline: bool,
    /// Deadline for each git process.
    pub timeout: Duration,
}

impl Default for Fetch {
    fn default() -> Self {
        Fetch {
            url: DEFAULT_URL.to_string(),
            max_age: Duration::from_secs(24 * 3600),
            offline: false,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What [`ensure`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// A git checkout updated less than `max_age` ago: used as it is.
    Fresh,
    /// Cloned from the remote just now.
    Cloned,
    /// Updated from the remote just now.
    Updated,
    /// A directory that is not a git checkout (a snapshot): used as it is.
    Snapshot,
    /// A git checkout older than `max_age` that was not updated: offline, or the fetch
    /// failed (`why`). Used as it is; the caller should warn.
    Stale { age: Duration, why: String },
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Fresh => f.write_str("up to date"),
            Status::Cloned => f.write_str("cloned"),
            Status::Updated => f.write_str("updated"),
            Status::Snapshot => f.write_str("a snapshot (not a git checkout; never updated)"),
            Status::Stale { age, why } => write!(
                f,
                "last updated {} ago and not updated now ({why}); using it as it is",
                human(*age)
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no database and it may not or could not be fetched.
    #[error(
        "no RustSec advisory database at {path} ({why}) (hint: `git clone {url} {path}`, or point --db or WHARF_ADVISORY_DB at a copy)",
        path = path.display()
    )]
    Missing {
        path: PathBuf,
        url: String,
        why: String,
    },
    /// The path exists but is not a directory of advisories.
    #[error(
        "{path} is not a RustSec advisory database (no crates/ directory in it) (hint: remove it and run again to clone {url}, or point --db at a copy)",
        path = path.display()
    )]
    NotADatabase { path: PathBuf, url: String },
    #[error("{what} {path}: {source}", path = path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes sure `path` holds an advisory database, fetching or updating it as `fetch` allows.
/// `now` is passed in so the age rule can be tested.
pub fn ensure(path: &Path, fetch: &Fetch, now: SystemTime) -> Result<Status, Error> {
    if !path.exists() {
        if fetch.offline {
            return Err(missing(
                path,
                fetch,
                "offline, so it was not fetched".into(),
            ));
        }
        return clone(path, fetch).map(|()| Status::Cloned);
    }
    if !path.join("crates").is_dir() {
        return Err(Error::NotADatabase {
            path: path.to_path_buf(),
            url: fetch.url.clone(),
        });
    }
    let Some(updated) = last_update(path) else {
        return Ok(Status::Snapshot);
    };
    let age = now.duration_since(updated).unwrap_or_default();
    if age < fetch.max_age {
        return Ok(Status::Fresh);
    }
    if fetch.offline {
        return Ok(Status::Stale {
            age,
            why: "offline".into(),
        });
    }
    match update(path, fetch) {
        Ok(()) => Ok(Status::Updated),
        Err(why) => Ok(Status::Stale { age, why }),
    }
}

fn missing(path: &Path, fetch: &Fetch, why: String) -> Error {
    Error::Missing {
        path: path.to_path_buf(),
        url: fetch.url.clone(),
        why,
    }
}

/// Clones into a temporary directory beside `path`, then renames it into place.
fn clone(path: &Path, fetch: &Fetch) -> Result<(), Error> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| Error::Io {
        what: "creating",
        path: parent.to_path_buf(),
        source,
    })?;
    let temp = tempfile::Builder::new()
        .prefix(".advisory-db-clone-")
        .tempdir_in(parent)
        .map_err(|source| Error::Io {
            what: "creating a temporary directory in",
            path: parent.to_path_buf(),
            source,
        })?;
    let checkout = temp.path().join("advisory-db");
    git(
        None,
        &[
            "clone".as_ref(),
            "--depth=1".as_ref(),
            "--quiet".as_ref(),
            fetch.url.as_ref(),
            checkout.as_os_str(),
        ],
        fetch.timeout,
    )
    .map_err(|why| missing(path, fetch, format!("cloning {} failed: {why}", fetch.url)))?;
    if !checkout.join("crates").is_dir() {
        return Err(missing(
            path,
            fetch,
            format!("{} has no crates/ directory", fetch.url),
        ));
    }
    stamp(&checkout)?;
    std::fs::rename(&checkout, path).map_err(|source| Error::Io {
        what: "moving the new clone to",
        path: path.to_path_buf(),
        source,
    })
}

/// Fetches the remote's default branch and checks it out. The error is git's, for a
/// warning: a failed update never fails the scan while a copy exists.
fn update(path: &Path, fetch: &Fetch) -> Result<(), String> {
    git(
        Some(path),
        &[
            "fetch".as_ref(),
            "--depth=1".as_ref(),
            "--quiet".as_ref(),
            "origin".as_ref(),
            "HEAD".as_ref(),
        ],
        fetch.timeout,
    )?;
    git(
        Some(path),
        &[
            "reset".as_ref(),
            "--hard".as_ref(),
            "--quiet".as_ref(),
            "FETCH_HEAD".as_ref(),
        ],
        fetch.timeout,
    )?;
    stamp(path).map_err(|e| e.to_string())
}

/// When a git checkout was last updated: wharf's stamp, else git's own traces of the last
/// fetch or clone (a copy cargo-audit cloned). `None` for a directory that is not a
/// checkout.
fn last_update(path: &Path) -> Option<SystemTime> {
    let git_dir = path.join(".git");
    if !git_dir.is_dir() {
        return None;
    }
    [STAMP, "FETCH_HEAD", "HEAD"]
        .iter()
        .find_map(|name| std::fs::metadata(git_dir.join(name)).ok()?.modified().ok())
}

fn stamp(checkout: &Path) -> Result<(), Error> {
    let path = checkout.join(".git").join(STAMP);
    std::fs::write(&path, b"").map_err(|source| Error::Io {
        what: "writing",
        path,
        source,
    })
}

/// Runs git with a deadline, no prompt and no pager; the error is the end of its stderr.
fn git(dir: Option<&Path>, args: &[&std::ffi::OsStr], timeout: Duration) -> Result<(), String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    // Give up on a transfer slower than 1 KB/s for 30 s, never ask for credentials.
    command
        .args([
            "-c",
            "http.lowSpeedLimit=1000",
            "-c",
            "http.lowSpeedTime=30",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // stderr goes to a file, not a pipe: a pipe that nobody reads while waiting could
    // block git, and a file is still readable after a kill.
    let log = tempfile::tempfile().map_err(|e| format!("creating a log file for git: {e}"))?;
    let log_reader = log
        .try_clone()
        .map_err(|e| format!("creating a log file for git: {e}"))?;
    command.stderr(log);
    tracing::debug!(?command, "starting process");
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting git: {e} (hint: install git)"))?;
    let status = wait_timeout::ChildExt::wait_timeout(&mut child, timeout)
        .map_err(|e| format!("waiting for git: {e}"))?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "git {} took longer than {}",
            first(args),
            human(timeout)
        ));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut reader = &log_reader;
    let _ = reader
        .seek(SeekFrom::Start(0))
        .and_then(|_| reader.read_to_string(&mut text));
    let tail = text
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string();
    Err(format!("git {} exited with {status}: {tail}", first(args)))
}

fn first(args: &[&std::ffi::OsStr]) -> String {
    args.first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `3 d`, `5 h`, `12 min`, `40 s`.
fn human(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests;
