//! The rendered files on disk: [`write()`] them, or [`check`] that they are current.
//!
//! Both see the same set of *owned* files: `*.yaml` directly in `base/` and in
//! `overlays/<any>/` whose first line is [`HEADER`]. A rendered file that is absent is
//! missing; an owned file that is not rendered any more (a removed stage, say) is stale:
//! `write` deletes it and `check` reports it as extra, so a file written by hand beside them
//! is never deleted and never reported.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};

use crate::{File, HEADER};

/// What [`write()`] did, as paths relative to its directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Created or replaced (contents differed).
    pub written: Vec<PathBuf>,
    /// Already equal, not touched (their modification times stay).
    pub unchanged: Vec<PathBuf>,
    /// Stale owned files deleted.
    pub removed: Vec<PathBuf>,
}

/// Why [`write()`] failed; files already replaced stay replaced, and none is half-written.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct WriteError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// The files on disk are not what [`crate::render`] produced (paths relative to the
/// directory).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Drift {
    pub dir: PathBuf,
    /// Present with other contents.
    pub changed: Vec<PathBuf>,
    /// Rendered but absent.
    pub missing: Vec<PathBuf>,
    /// Generated earlier, not rendered any more.
    pub extra: Vec<PathBuf>,
}

impl Drift {
    fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kubernetes manifests in {} are out of date:",
            self.dir.display()
        )?;
        let mut sep = " ";
        for (what, paths) in [
            ("changed", &self.changed),
            ("missing", &self.missing),
            ("extra", &self.extra),
        ] {
            if paths.is_empty() {
                continue;
            }
            let list: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
            write!(f, "{sep}{what} {}", list.join(", "))?;
            sep = "; ";
        }
        write!(
            f,
            " (hint: run `cargo xtask render-k8s` and commit the result)"
        )
    }
}

impl std::error::Error for Drift {}

/// Why [`check`] failed: drift, or a file it could not read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Drift(Drift),
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `files` under `dir` and deletes stale owned files.
///
/// Each file is written to a temporary file in its own directory, flushed to disk and renamed
/// over the old one, so a reader (or a crash) sees the old or the new file, never part of
/// one. A file whose contents are already equal is not touched.
///
/// # Errors
///
/// A path that is absolute or leaves `dir`, or the first I/O error, naming the file.
pub fn write(dir: &Path, files: &[File]) -> Result<Written, WriteError> {
    let err = |action, path: &Path| {
        let path = path.to_owned();
        move |source| WriteError {
            action,
            path,
            source,
        }
    };
    let mut done = Written::default();
    for file in files {
        let target = dir.join(relative(&file.path).map_err(err("writing", &file.path))?);
        match fs::read(&target) {
            Ok(old) if old == file.contents.as_bytes() => {
                done.unchanged.push(file.path.clone());
                continue;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err("reading", &target)(e)),
        }
        let parent = target.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(err("creating", parent))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".wharf-")
            .suffix(".tmp")
            .tempfile_in(parent)
            .map_err(err("creating a temporary file in", parent))?;
        temp.write_all(file.contents.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(err("writing", &target))?;
        temp.persist(&target)
            .map_err(|e| err("replacing", &target)(e.error))?;
        done.written.push(file.path.clone());
    }

    let rendered: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    for path in owned(dir).map_err(err("listing", dir))? {
        if rendered.contains(path.as_path()) {
            continue;
        }
        let full = dir.join(&path);
        fs::remove_file(&full).map_err(err("removing", &full))?;
        // A removed stage's directory goes too, unless something else is left in it.
        if let Some(parent) = full.parent()
            && parent != dir.join("base")
        {
            let _ = fs::remove_dir(parent);
        }
        done.removed.push(path);
    }
    Ok(done)
}

/// Checks that `dir` holds exactly `files` (and no stale owned file).
///
/// # Errors
///
/// [`CheckError::Drift`] listing every changed, missing and extra file with the command that
/// fixes them, or [`CheckError::Read`].
pub fn check(dir: &Path, files: &[File]) -> Result<(), CheckError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CheckError::Read { path, source }
    };
    let mut drift = Drift {
        dir: dir.to_owned(),
        ..Drift::default()
    };
    for file in files {
        let full = dir.join(relative(&file.path).map_err(read_err(&file.path))?);
        match fs::read(&full) {
            Ok(bytes) if bytes == file.contents.as_bytes() => {}
            Ok(_) => drift.changed.push(file.path.clone()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => drift.missing.push(file.path.clone()),
            Err(e) => return Err(read_err(&full)(e)),
        }
    }
    let rendered: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    drift.extra = owned(dir)
        .map_err(read_err(dir))?
        .into_iter()
        .filter(|path| !rendered.contains(path.as_path()))
        .collect();
    if drift.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Drift(drift))
    }
}

/// `path` if it stays inside the output directory.
fn relative(path: &Path) -> io::Result<&Path> {
    if path.components().all(|c| matches!(c, Component::Normal(_))) && !path.as_os_str().is_empty()
    {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a relative path inside the output directory",
        ))
    }
}

/// The owned files under `dir` (see the module docs), relative to it and sorted.
fn owned(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = vec![PathBuf::from("base")];
    match fs::read_dir(dir.join("overlays")) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    dirs.push(Path::new("overlays").join(entry.file_name()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut owned = Vec::new();
    for sub in dirs {
        let entries = match fs::read_dir(dir.join(&sub)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !entry.file_type()?.is_file()
                || Path::new(&name).extension().is_none_or(|ext| ext != "yaml")
            {
                continue;
            }
            if starts_with_header(&entry.path())? {
                owned.push(sub.join(name));
            }
        }
    }
    owned.sort();
    Ok(owned)
}

fn starts_with_header(path: &Path) -> io::Result<bool> {
    use std::io::Read as _;
    let mut head = vec![0; HEADER.len() + 1];
    let mut file = fs::File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let head = &head[..filled];
    Ok(head.starts_with(HEADER.as_bytes()) && head.get(HEADER.len()).is_none_or(|b| *b == b'\n'))
}
