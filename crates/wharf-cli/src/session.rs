//! What every command works on: the workspace root, found at run time, and the pipeline
//! config, read at most once per run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use wharf_pipeline::Config;
use wharf_pipeline::config::CONFIG_PATH;

use crate::UsageError;

/// The workspace and config one `cargo xtask` run works on.
pub struct Session {
    /// The cargo workspace's root directory.
    pub root: PathBuf,
    /// The pipeline config: `--config`, else `pipelines/wharf.toml` in the root.
    pub config_path: PathBuf,
    config: OnceLock<Config>,
}

impl Session {
    /// `workspace`: `--workspace` (or `WHARF_WORKSPACE`), else the cargo workspace around the
    /// current directory. `config`: `--config`, relative to the current directory.
    pub fn new(workspace: Option<&Path>, config: Option<&Path>) -> Result<Session> {
        let root = match workspace {
            Some(dir) => dir
                .canonicalize()
                .with_context(|| format!("--workspace {}", dir.display()))
                .map_err(UsageError)?,
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                find_workspace_root(&cwd).map_err(UsageError)?
            }
        };
        let config_path = match config {
            Some(path) => path.to_path_buf(),
            None => root.join(CONFIG_PATH),
        };
        Ok(Session {
            root,
            config_path,
            config: OnceLock::new(),
        })
    }

    /// The pipeline config, read and checked on first use; a missing file gives the defaults.
    pub fn config(&self) -> Result<&Config> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config = Config::load_file(&self.config_path).map_err(|e| UsageError(e.into()))?;
        Ok(self.config.get_or_init(|| config))
    }
}

/// The root of the cargo workspace that holds `dir`: the nearest directory, from `dir` up,
/// whose `Cargo.toml` has a `[workspace]` table; failing that, the nearest `Cargo.toml`
/// (a single-package repository). Found at run time, never from the directory xtask was
/// compiled in: two checkouts that share a `CARGO_TARGET_DIR` share the xtask binary too.
pub fn find_workspace_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut nearest_package = None;
    for candidate in dir.ancestors() {
        let manifest = candidate.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("reading {}", manifest.display()))?;
        if table.contains_key("workspace") {
            return Ok(candidate.to_path_buf());
        }
        nearest_package.get_or_insert_with(|| candidate.to_path_buf());
    }
    nearest_package.ok_or_else(|| {
        anyhow::anyhow!(
            "no Cargo.toml in {} or any directory above it: run cargo xtask inside a cargo workspace, or pass --workspace DIR",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_workspace_is_the_nearest_manifest_with_a_workspace_table() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"app\"]\n",
        );
        write(&root.join("app/Cargo.toml"), "[package]\nname = \"app\"\n");
        std::fs::create_dir_all(root.join("app/src/bin")).unwrap();
        assert_eq!(
            find_workspace_root(&root.join("app/src/bin")).unwrap(),
            root
        );
        assert_eq!(find_workspace_root(root).unwrap(), root);
    }

    #[test]
    fn a_lone_package_is_its_own_root_and_no_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("one/Cargo.toml"),
            "[package]\nname = \"one\"\n",
        );
        std::fs::create_dir_all(dir.path().join("one/src")).unwrap();
        assert_eq!(
            find_workspace_root(&dir.path().join("one/src")).unwrap(),
            dir.path().join("one")
        );
        let bare = tempfile::tempdir().unwrap();
        if find_workspace_root(bare.path()).is_ok() {
            // A Cargo.toml above the temp directory (unusual, but possible): nothing to check.
            return;
        }
        let message = find_workspace_root(bare.path()).unwrap_err().to_string();
        assert!(message.contains("pass --workspace DIR"), "{message}");
    }

    #[test]
    fn a_broken_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("Cargo.toml"), "[workspace\n");
        let message = format!("{:#}", find_workspace_root(dir.path()).unwrap_err());
        assert!(message.contains("Cargo.toml"), "{message}");
    }
}
