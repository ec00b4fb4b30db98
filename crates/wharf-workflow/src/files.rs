//! The rendering against the files on disk: [`check`] compares, [`write()`] replaces.

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::{FIX, Files, HEADER, SpecError, WORKFLOWS_DIR, WorkflowSpec, render};

/// Committed workflows that are not the rendering, each with how it differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Paths relative to the root, in the rendering's order.
    pub files: Vec<(PathBuf, DriftKind)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftKind {
    /// No such file.
    Missing,
    /// The first line (1-based) that differs, as committed and as rendered (`None` past the
    /// end of the file).
    Differs {
        line: usize,
        committed: Option<String>,
        rendered: Option<String>,
    },
    /// The file exists but could not be read; the message says why.
    Unreadable(String),
    /// A generated file (its first line is [`HEADER`]) that the spec no longer renders,
    /// such as release.yml after the last release pipeline went; hand-written workflows
    /// beside the generated ones are never reported.
    NotRendered,
}

impl std::error::Error for Drift {}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the committed workflows are not what the pipelines render (hint: run `{FIX}` and commit the result):"
        )?;
        for (path, kind) in &self.files {
            write!(f, "\n  {}: ", path.display())?;
            match kind {
                DriftKind::Missing => write!(f, "missing")?,
                DriftKind::Unreadable(why) => write!(f, "unreadable ({why})")?,
                DriftKind::NotRendered => write!(f, "generated, but no pipeline renders it now")?,
                DriftKind::Differs {
                    line,
                    committed,
                    rendered,
                } => {
                    let show = |l: &Option<String>| match l {
                        Some(text) => format!("{text:?}"),
                        None => "the end of the file".to_owned(),
                    };
                    write!(
                        f,
                        "differs from line {line}: committed {}, rendered {}",
                        show(committed),
                        show(rendered)
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Why [`check`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Drift(#[from] Drift),
}

/// Why [`write()`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("writing {path}: {source} (hint: check that the directory is writable)", path = .path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Compares the workflows under `root` with the rendering of `spec`. Line endings are
/// compared as LF: a checkout with `core.autocrlf` is not drift.
pub fn check(root: &Path, spec: &WorkflowSpec) -> Result<(), CheckError> {
    let rendered = render(spec)?;
    let orphans = orphans(root, &rendered);
    let mut files: Vec<_> = rendered
        .into_iter()
        .filter_map(|(path, rendered)| {
            let kind = match std::fs::read_to_string(root.join(&path)) {
                Ok(committed) => differs(&committed.replace("\r\n", "\n"), &rendered)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => DriftKind::Missing,
                Err(e) => DriftKind::Unreadable(e.to_string()),
            };
            Some((path, kind))
        })
        .collect();
    files.extend(orphans.into_iter().map(|p| (p, DriftKind::NotRendered)));
    if files.is_empty() {
        Ok(())
    } else {
        Err(Drift { files }.into())
    }
}

/// `None` when equal, else where they part.
fn differs(committed: &str, rendered: &str) -> Option<DriftKind> {
    if committed == rendered {
        return None;
    }
    let (mut old, mut new) = (committed.split('\n'), rendered.split('\n'));
    let mut line = 1;
    loop {
        match (old.next(), new.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                return Some(DriftKind::Differs {
                    line,
                    committed: a.map(str::to_owned),
                    rendered: b.map(str::to_owned),
                });
            }
        }
    }
}

/// Writes the rendering of `spec` under `root`, each file replaced atomically (a temporary
/// file in the same directory, then a rename), so a reader never sees half a workflow.
/// Files that already hold the rendering are left alone; generated files no pipeline
/// renders any more are removed. Returns the paths written or removed, relative to `root`.
pub fn write(root: &Path, spec: &WorkflowSpec) -> Result<Vec<PathBuf>, WriteError> {
    let rendered = render(spec)?;
    let mut changed = Vec::new();
    for (path, text) in &rendered {
        let full = root.join(path);
        if std::fs::read_to_string(&full).is_ok_and(|old| old == *text) {
            continue;
        }
        replace(&full, text).map_err(|source| WriteError::Io { path: full, source })?;
        changed.push(path.clone());
    }
    for path in orphans(root, &rendered) {
        let full = root.join(&path);
        std::fs::remove_file(&full).map_err(|source| WriteError::Io { path: full, source })?;
        changed.push(path);
    }
    Ok(changed)
}

/// Generated workflows under `root` that are not in `rendered`, sorted. Only files that
/// start with [`HEADER`] count: a hand-written workflow is none of wharf's business.
fn orphans(root: &Path, rendered: &Files) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(WORKFLOWS_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| Path::new(WORKFLOWS_DIR).join(entry.file_name()))
        .filter(|path| !rendered.iter().any(|(r, _)| r == path))
        .filter(|path| {
            std::fs::read_to_string(root.join(path))
                .is_ok_and(|text| text.lines().next() == Some(HEADER))
        })
        .collect();
    found.sort();
    found
}

fn replace(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().expect("a workflow path has a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    // The temporary file is created 0600; a workflow is an ordinary checked-in file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
