//! The build context a Dockerfile build sends: a directory as a tar archive, without what
//! its `.dockerignore` excludes (the engine API takes the archive as it is; docker's CLI
//! applies `.dockerignore`, bollard does not).
//!
//! `.dockerignore` patterns are matched with ripgrep's gitignore matcher. Docker anchors
//! every pattern at the context's root (`target` excludes `./target`, not `a/target`;
//! `**/target` excludes both), so each pattern is given to the matcher with a leading `/`;
//! `!` exceptions, `*`, `?`, `[...]` and `**` mean the same in both.
//!
//! The archive is the same for the same files: entries sorted, owned by root, times zero,
//! modes kept (the builder's cache keys on content and mode).

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::{Error, Result};

/// The name docker reads the exclusions from, at the context's root.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// The context `dir` as a tar archive, `.dockerignore` applied. `dockerfile` must be inside
/// `dir`; it is sent even if `.dockerignore` excludes it, as docker's CLI does. Returns the
/// archive and the Dockerfile's path inside it.
pub fn context_tar(dir: &Path, dockerfile: &Path) -> Result<(Vec<u8>, String)> {
    let io = |context: String| move |source| Error::Io { context, source };
    let dir = dir
        .canonicalize()
        .map_err(io(format!("opening the build context {}", dir.display())))?;
    let dockerfile = dockerfile.canonicalize().map_err(io(format!(
        "opening the Dockerfile {}",
        dockerfile.display()
    )))?;
    let inside = dockerfile
        .strip_prefix(&dir)
        .map_err(|_| Error::Context {
            why: format!(
                "the Dockerfile {} is outside the build context {} (move it into the context, or make the context a directory that holds it)",
                dockerfile.display(),
                dir.display()
            ),
        })?
        .to_path_buf();
    let ignore = dockerignore(&dir)?;
    let mut paths = Vec::new();
    let walk = ignore::WalkBuilder::new(&dir)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .filter_entry({
            let ignore = ignore.clone();
            let prune = !has_exceptions(&ignore);
            // A directory the patterns exclude is not entered, unless an exception (`!`)
            // could bring back something below it.
            move |entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                !(prune && is_dir && ignore.matched(entry.path(), is_dir).is_ignore())
            }
        })
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| Error::Context {
            why: format!("reading the build context {}: {e}", dir.display()),
        })?;
        let relative = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
        if relative.as_os_str().is_empty() {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        let excluded = ignore
            .matched_path_or_any_parents(entry.path(), is_dir)
            .is_ignore();
        if !excluded || relative == inside || relative == Path::new(DOCKERIGNORE) {
            paths.push(relative.to_path_buf());
        }
    }
    if !paths.contains(&inside) {
        paths.push(inside.clone());
    }
    paths.sort();
    let archive = write_tar(&dir, &paths)?;
    Ok((archive, inside.to_string_lossy().into_owned()))
}

/// The context's `.dockerignore` as a matcher (empty when there is none).
fn dockerignore(dir: &Path) -> Result<Gitignore> {
    let path = dir.join(DOCKERIGNORE);
    let mut builder = GitignoreBuilder::new(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(Error::Io {
                context: format!("reading {}", path.display()),
                source,
            });
        }
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (exception, pattern) = match line.strip_prefix('!') {
            Some(rest) => ("!", rest.trim()),
            None => ("", line),
        };
        let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        builder
            .add_line(Some(path.clone()), &format!("{exception}/{pattern}"))
            .map_err(|e| Error::Context {
                why: format!("{}:{}: {e}", path.display(), number + 1),
            })?;
    }
    builder.build().map_err(|e| Error::Context {
        why: format!("{}: {e}", path.display()),
    })
}

fn has_exceptions(ignore: &Gitignore) -> bool {
    ignore.num_whitelists() > 0
}

/// The files at `paths` (relative to `dir`, sorted) as a tar archive.
fn write_tar(dir: &Path, paths: &[PathBuf]) -> Result<Vec<u8>> {
    let io = |path: &Path| {
        let context = format!("adding {} to the build context", path.display());
        move |source| Error::Io { context, source }
    };
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for relative in paths {
        let path = dir.join(relative);
        let metadata = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&metadata, tar::HeaderMode::Deterministic);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if metadata.is_dir() {
            archive
                .append_data(&mut header, relative, std::io::empty())
                .map_err(io(&path))?;
        } else if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io(&path))?;
            header.set_size(0);
            archive
                .append_link(&mut header, relative, target)
                .map_err(io(&path))?;
        } else if metadata.is_file() {
            let file = std::fs::File::open(&path).map_err(io(&path))?;
            archive
                .append_data(&mut header, relative, file)
                .map_err(io(&path))?;
        }
        // Sockets, fifos and devices have no place in a build context.
    }
    archive.into_inner().map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths in `archive`, in order.
    fn entries(archive: &[u8]) -> Vec<String> {
        tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_root_as_docker_reads_them() {
        let dir = tree(&[
            (
                ".dockerignore",
                "# build output\ntarget\n/secret.txt\n**/*.log\ndocs/\n!docs/keep.md\n",
            ),
            ("Dockerfile", "FROM scratch\n"),
            ("target/debug/app", "x"),
            ("src/target/kept.rs", "x"),
            ("src/main.rs", "x"),
            ("secret.txt", "x"),
            ("sub/secret.txt", "x"),
            ("a/b/c.log", "x"),
            ("docs/drop.md", "x"),
            ("docs/keep.md", "x"),
        ]);
        let (archive, dockerfile) =
            context_tar(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        assert_eq!(dockerfile, "Dockerfile");
        assert_eq!(
            entries(&archive),
            [
                ".dockerignore",
                "Dockerfile",
                "a",
                "a/b",
                "docs/keep.md",
                "src",
                "src/main.rs",
                "src/target",
                "src/target/kept.rs",
                "sub",
                "sub/secret.txt",
            ]
        );
    }

    #[test]
    fn an_excluded_dockerfile_is_still_sent_and_one_outside_the_context_is_refused() {
        let dir = tree(&[
            (".dockerignore", "build\n"),
            ("build/Dockerfile", "FROM scratch\n"),
            ("build/other", "x"),
        ]);
        let (archive, dockerfile) =
            context_tar(dir.path(), &dir.path().join("build/Dockerfile")).unwrap();
        assert_eq!(dockerfile, "build/Dockerfile");
        assert_eq!(entries(&archive), [".dockerignore", "build/Dockerfile"]);

        let elsewhere = tree(&[("Dockerfile", "FROM scratch\n")]);
        let error = context_tar(dir.path(), &elsewhere.path().join("Dockerfile"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is outside the build context"), "{error}");
    }

    #[test]
    fn the_same_files_give_the_same_archive_whatever_their_times() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("a.txt", "a")]);
        let first = context_tar(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let second = context_tar(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        assert_eq!(first, second);
    }
}
