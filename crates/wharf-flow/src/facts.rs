//! Facts: everything planning reads from the world, gathered once into a value.
//!
//! [`Facts::gather`] is the only place of planning that does I/O (it runs `rustc -vV` and
//! `git`, reads the environment and hashes the workspace's files); [`crate::plan()`] is a pure
//! function of the facts, so tests build facts by hand.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// What planning knows about the workspace and its surroundings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The workspace root; steps run there.
    pub root: PathBuf,
    /// `rustc -vV`, whole: a new toolchain changes every compiling step's key.
    pub toolchain: String,
    /// `None` outside a git checkout (or without git).
    pub git: Option<Git>,
    /// The environment variables steps declare: unset (`None`) is distinct from empty.
    pub env: BTreeMap<String, Option<String>>,
    /// The workspace's files by path relative to the root, `/`-separated.
    pub files: BTreeMap<String, FileFact>,
    /// Cores available to this process.
    pub cpus: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Git {
    pub commit: String,
    /// Uncommitted changes to tracked or untracked (not ignored) files.
    pub dirty: bool,
}

/// One file, as much as a cache key needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub executable: bool,
    /// Of the content, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("running `{command}` in {dir}: {source} (hint: is it installed and on PATH?)")]
    Spawn {
        command: String,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("`{command}` failed in {dir}: {stderr}")]
    Command {
        command: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error("walking the workspace {root}: {message}")]
    Walk { root: PathBuf, message: String },
    #[error("hashing {path}: {source}")]
    Hash { path: PathBuf, source: io::Error },
}

impl Facts {
    /// Gathers the facts about the workspace at `root`: the toolchain, git, the values of
    /// `env_names` and every file the walk finds (honouring `.gitignore`, never `target/` or
    /// `.git/`).
    pub fn gather<I, S>(root: &Path, env_names: I) -> Result<Facts, FactsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let env = env_names
            .into_iter()
            .map(|name| {
                let name = name.as_ref().to_string();
                let value = std::env::var_os(&name).map(|v| v.to_string_lossy().into_owned());
                (name, value)
            })
            .collect();
        // The processes and the walk are independent; at once they take the time of the
        // slowest (the facts are gathered on every run, cache hits or not).
        let (toolchain, git, files) = std::thread::scope(|scope| {
            let toolchain = scope.spawn(|| output(root, "rustc", &["-vV"]));
            let git = scope.spawn(|| git(root));
            let files = files(root);
            (join(toolchain), join(git), files)
        });
        Ok(Facts {
            root: root.to_path_buf(),
            toolchain: toolchain?,
            git: git?,
            env,
            files: files?,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The stdout of a command that must succeed.
fn output(dir: &Path, program: &str, args: &[&str]) -> Result<String, FactsError> {
    let command = || format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FactsError::Spawn {
            command: command(),
            dir: dir.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(FactsError::Command {
            command: command(),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The commit and dirty flag, `None` when `root` is not in a git checkout with a commit or
/// git is not installed: a missing fact, not an error.
fn git(root: &Path) -> Result<Option<Git>, FactsError> {
    let Ok(commit) = output(root, "git", &["rev-parse", "--verify", "HEAD"]) else {
        return Ok(None);
    };
    let status = output(root, "git", &["status", "--porcelain"])?;
    Ok(Some(Git {
        commit: commit.trim().to_string(),
        dirty: !status.trim().is_empty(),
    }))
}

/// Every regular file under `root` that the walk keeps, hashed.
fn files(root: &Path) -> Result<BTreeMap<String, FileFact>, FactsError> {
    let walk_error = |e: ignore::Error| FactsError::Walk {
        root: root.to_path_buf(),
        message: e.to_string(),
    };
    let walk = ignore::WalkBuilder::new(root)
        // Dot files (.github, .cargo/config.toml) are inputs too.
        .hidden(false)
        // The same files on every machine: only the workspace's own ignore files count, not
        // a user's global excludes or directories above the root, and they count outside
        // git too (a source tarball).
        .git_global(false)
        .parents(false)
        .require_git(false)
        // cargo's build directories (at any depth: nested workspaces have their own) and git's
        // database are outputs and history, never inputs.
        .filter_entry(|entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && (entry.file_name() == "target" || entry.file_name() == ".git"))
        })
        .build();
    let mut files = BTreeMap::new();
    for entry in walk {
        let entry = entry.map_err(walk_error)?;
        // Symlinks are not followed: a link out of the workspace would make the key depend on
        // files nobody declared.
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let relative: Vec<_> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        files.insert(relative.join("/"), file_fact(entry.path())?);
    }
    Ok(files)
}

fn file_fact(path: &Path) -> Result<FileFact, FactsError> {
    let hash_error = |source| FactsError::Hash {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(hash_error)?;
    let executable = is_executable(&file.metadata().map_err(hash_error)?);
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(hash_error)?;
        if n == 0 {
            break;
        }
        context.update(&buffer[..n]);
    }
    Ok(FileFact {
        executable,
        sha256: hex::encode(context.finish()),
    })
}

#[cfg(unix)]
fn is_executable(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}
