//! Facts about the source tree, and reproducible builds of its binaries.
//!
//! - [`git_facts`] reads commit, branch, tags and commit time from git (CI variables win
//!   where CI checks out a detached HEAD).
//! - [`Workspace`] reads the Cargo workspace (`cargo metadata`).
//! - [`Workspace::build_static`] compiles a binary that runs in an empty image, with every
//!   machine-specific path remapped so two clones in different directories give the same
//!   bytes.
//!
//! This crate runs `git` and `cargo`; it never touches images or the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// Why reading the source tree or building failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running {command}: {source} (is it installed and on PATH?)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}){stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "{dir} is not in a git repository: wharf takes the commit and its time from git (run `git init` and commit, or build from a clone)"
    )]
    NotGit { dir: PathBuf },
    #[error(
        "SOURCE_DATE_EPOCH={0:?} is not a number of seconds since 1970 (unset it, or set e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct))"
    )]
    SourceDateEpoch(String),
    #[error("reading the Cargo workspace at {dir}: {source}")]
    Metadata {
        dir: PathBuf,
        #[source]
        source: cargo_metadata::Error,
    },
    #[error("no package {name:?} in the workspace at {root} (packages: {available})")]
    NoPackage {
        name: String,
        root: PathBuf,
        available: String,
    },
    #[error("package {package:?} has no binary {bin:?} (binaries: {available})")]
    NoBinary {
        package: String,
        bin: String,
        available: String,
    },
    #[error("cargo built {bin} but {path} is missing")]
    MissingArtifact { bin: String, path: PathBuf },
    #[error(
        "no Rust target for {platform} (wharf compiles linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x and linux/riscv64); give a binary built elsewhere: [image] binaries = {{ \"{platform}\" = \"path/to/binary\" }}"
    )]
    NoRustTarget { platform: String },
    #[error(
        "the Rust target {target} (for {platform}) is not installed: run `rustup target add {target}`, or give a binary built elsewhere: [image] binaries = {{ \"{platform}\" = \"path/to/binary\" }}"
    )]
    TargetNotInstalled { platform: String, target: String },
}

/// What git (or CI) says about the commit being built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitFacts {
    /// Full 40-hex commit id.
    pub sha: String,
    /// The branch, if on one (from CI variables first: CI often checks out a detached HEAD).
    pub branch: Option<String>,
    /// The repository's default branch (`main` if git cannot tell).
    pub default_branch: String,
    /// Tags that point at HEAD.
    pub tags_at_head: Vec<String>,
    /// Committer time of HEAD, seconds since the epoch.
    pub commit_time: i64,
    /// True when tracked files differ from HEAD.
    pub dirty: bool,
}

/// Runs a command and returns its trimmed stdout.
fn run(cmd: &mut Command) -> Result<String, Error> {
    tracing::debug!(command = ?cmd, "starting process");
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Failed {
            command,
            status: out.status.to_string(),
            stderr: if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    run(Command::new("git").arg("-C").arg(dir).args(args))
}

/// Reads the facts of HEAD in the repository containing `dir`.
///
/// Environment, for CI, which often checks out a detached HEAD: see [`ci_branch`].
pub fn git_facts(dir: &Path) -> Result<GitFacts, Error> {
    git_facts_in(dir, &|name| std::env::var(name).ok())
}

/// The branch CI says it builds, from the variables `env` returns (empty counts as unset):
/// `WHARF_BRANCH`; GitHub's `GITHUB_HEAD_REF` (a pull request's branch), else
/// `GITHUB_REF_NAME` when `GITHUB_REF_TYPE=branch`; GitLab's `CI_COMMIT_REF_NAME` unless
/// `CI_COMMIT_TAG` says this is a tag pipeline (where the ref name is the tag).
pub fn ci_branch(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let github = || {
        env("GITHUB_HEAD_REF").or_else(|| {
            (env("GITHUB_REF_TYPE").as_deref() == Some("branch"))
                .then(|| env("GITHUB_REF_NAME"))
                .flatten()
        })
    };
    let gitlab = || {
        env("CI_COMMIT_TAG")
            .is_none()
            .then(|| env("CI_COMMIT_REF_NAME"))
            .flatten()
    };
    env("WHARF_BRANCH").or_else(github).or_else(gitlab)
}

/// [`git_facts`] with the environment read through `env`.
fn git_facts_in(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<GitFacts, Error> {
    let sha = match git(dir, &["rev-parse", "--verify", "HEAD"]) {
        Ok(sha) => sha,
        Err(Error::Failed { .. }) => {
            return Err(Error::NotGit {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(e),
    };
    let branch = match ci_branch(env) {
        Some(branch) => Some(branch),
        None => git(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"]).ok(),
    };
    let default_branch = git(
        dir,
        &[
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ],
    )
    .ok()
    .and_then(|r| r.strip_prefix("origin/").map(str::to_string))
    .unwrap_or_else(|| "main".to_string());
    let tags_at_head = git(dir, &["tag", "--points-at", "HEAD"])?
        .lines()
        .map(str::to_string)
        .collect();
    let commit_time = git(dir, &["log", "-1", "--format=%ct", "HEAD"])?
        .parse()
        .map_err(|_| Error::Failed {
            command: "git log -1 --format=%ct".into(),
            status: "unparsable output".into(),
            stderr: String::new(),
        })?;
    let dirty = !git(dir, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Ok(GitFacts {
        sha,
        branch,
        default_branch,
        tags_at_head,
        commit_time,
        dirty,
    })
}

/// The build time every timestamp in an image uses: `SOURCE_DATE_EPOCH` when set (the
/// reproducible-builds.org convention), else the commit time, never the clock.
pub fn source_date_epoch(git: &GitFacts) -> Result<i64, Error> {
    source_date_epoch_of(std::env::var("SOURCE_DATE_EPOCH").ok(), git)
}

/// [`source_date_epoch`] with the variable's value given.
fn source_date_epoch_of(value: Option<String>, git: &GitFacts) -> Result<i64, Error> {
    match value {
        Some(value) if !value.is_empty() => value
            .trim()
            .parse()
            .map_err(|_| Error::SourceDateEpoch(value)),
        _ => Ok(git.commit_time),
    }
}

/// A Cargo workspace, as `cargo metadata` describes it.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    metadata: cargo_metadata::Metadata,
}

/// The package facts an image's labels need.
#[derive(Clone, Debug, Serialize)]
pub struct PackageFacts {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub description: Option<String>,
}

impl Workspace {
    /// Reads the workspace that contains `dir`.
    pub fn load(dir: &Path) -> Result<Workspace, Error> {
        tracing::debug!(dir = %dir.display(), "starting process: cargo metadata --no-deps");
        let metadata = cargo_metadata::MetadataCommand::new()
            .current_dir(dir)
            .no_deps()
            .exec()
            .map_err(|source| Error::Metadata {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(Workspace {
            root: metadata.workspace_root.clone().into_std_path_buf(),
            target_dir: metadata.target_directory.clone().into_std_path_buf(),
            metadata,
        })
    }

    fn package(&self, name: &str) -> Result<&cargo_metadata::Package, Error> {
        self.metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| Error::NoPackage {
                name: name.to_string(),
                root: self.root.clone(),
                available: self
                    .metadata
                    .workspace_packages()
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Name, version, license and repository of a workspace package.
    pub fn package_facts(&self, name: &str) -> Result<PackageFacts, Error> {
        let p = self.package(name)?;
        Ok(PackageFacts {
            name: p.name.to_string(),
            version: p.version.to_string(),
            license: p.license.clone(),
            repository: p.repository.clone(),
            description: p.description.clone(),
        })
    }

    /// Checks that workspace package `package` has a binary target `bin`, without
    /// compiling anything (so a plan can fail before the build starts).
    pub fn check_binary(&self, package: &str, bin: &str) -> Result<(), Error> {
        let bins: Vec<_> = self
            .package(package)?
            .targets
            .iter()
            .filter(|t| t.is_bin())
            .map(|t| t.name.clone())
            .collect();
        if bins.iter().any(|b| b == bin) {
            return Ok(());
        }
        Err(Error::NoBinary {
            package: package.to_string(),
            bin: bin.to_string(),
            available: bins.join(", "),
        })
    }

    /// Compiles `bin` of `package` in release mode as a static executable for the host
    /// target, and returns its path.
    ///
    /// Reproducibility: the workspace root, the target directory and `CARGO_HOME` are
    /// remapped to fixed names (like Go's `-trimpath`), so the binary does not depend on
    /// where the repository was cloned or who built it. `--target` is always passed so the
    /// static flags reach only the binary, not build scripts and proc macros, and so these
    /// builds live in their own directory and never invalidate the normal debug build.
    pub fn build_static(&self, package: &str, bin: &str) -> Result<PathBuf, Error> {
        self.build_static_with(package, bin, |cmd| {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        })
    }

    /// [`Workspace::build_static`], with `configure` applied to the cargo command before it
    /// starts (a pipeline step sends its output to the step's log and hands it the shared
    /// jobserver).
    pub fn build_static_with(
        &self,
        package: &str,
        bin: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Result<PathBuf, Error> {
        self.build_static_for(package, bin, &host_triple()?, configure)
    }

    /// Whether a linker for `target` is set: `CARGO_TARGET_<TRIPLE>_LINKER`, or a
    /// `[target.<triple>]` table in the workspace's `.cargo/config.toml`.
    fn linker_configured(&self, target: &str) -> bool {
        let variable = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_uppercase().replace('-', "_")
        );
        std::env::var_os(variable).is_some()
            || std::fs::read_to_string(self.root.join(".cargo/config.toml"))
                .is_ok_and(|text| text.contains(&format!("[target.{target}]")))
    }

    /// [`Workspace::build_static_with`] for the Rust target `target` (which needs its
    /// standard library installed, [`installed_rust_target`], and, when it is not the
    /// host's, a linker for it: cargo's `CARGO_TARGET_<TRIPLE>_LINKER`).
    pub fn build_static_for(
        &self,
        package: &str,
        bin: &str,
        target: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Result<PathBuf, Error> {
        self.check_binary(package, bin)?;
        let target = target.to_string();
        let flags = [
            "-C".to_string(),
            "target-feature=+crt-static".to_string(),
            remap(&cargo_home(), "/cargo"),
            remap(&self.root, "/src"),
            remap(&self.target_dir, "/target"),
        ];
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let host = host_triple()?;
        let subcommand = cargo_subcommand(&target, &host, self.linker_configured(&target), || {
            Command::new(&cargo)
                .args(["zigbuild", "--version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let mut args = static_build_args(package, bin);
        args[0] = subcommand.to_string();
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&self.root)
            .args(&args)
            .arg(&target)
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
            .env_remove("RUSTFLAGS");
        configure(&mut cmd);
        let command = format!(
            "cargo {subcommand} --release --package {package} --bin {bin} --target {target}"
        );
        tracing::debug!(command = ?cmd, "starting process");
        let status = cmd.status().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        if !status.success() {
            let hint = if host == target || subcommand == "zigbuild" {
                String::new()
            } else {
                let variable = target.to_uppercase().replace('-', "_");
                format!(
                    "; a cross build needs a linker for {target}: set CARGO_TARGET_{variable}_LINKER, install cargo-zigbuild (wharf uses it when no linker is set), or give the binary in [image] binaries"
                )
            };
            return Err(Error::Failed {
                command,
                status: status.to_string(),
                stderr: format!(" (cargo's messages are above{hint})"),
            });
        }
        let path = self.target_dir.join(&target).join("release").join(bin);
        if !path.is_file() {
            return Err(Error::MissingArtifact {
                bin: bin.to_string(),
                path,
            });
        }
        Ok(path)
    }
}

/// cargo's arguments for the static release build of `bin`, up to the target triple.
pub fn static_build_args(package: &str, bin: &str) -> [String; 7] {
    [
        "build",
        "--release",
        "--package",
        package,
        "--bin",
        bin,
        "--target",
    ]
    .map(String::from)
}

fn remap(from: &Path, to: &str) -> String {
    format!("--remap-path-prefix={}={to}", from.display())
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// The cargo subcommand that builds for `target` on `host`: `build`, or `zigbuild` for a
/// cross target with no linker configured when cargo-zigbuild is installed (it links with
/// zig, so no cross C toolchain is needed). `zigbuild_installed` is asked only then.
pub fn cargo_subcommand(
    target: &str,
    host: &str,
    linker_configured: bool,
    zigbuild_installed: impl FnOnce() -> bool,
) -> &'static str {
    if target != host && !linker_configured && zigbuild_installed() {
        "zigbuild"
    } else {
        "build"
    }
}

/// The Rust target whose static binaries run on the platform `os`/`arch`[/`variant`]
/// (glibc targets, like the host build), or `None` if wharf knows none.
pub fn rust_target(os: &str, arch: &str, variant: Option<&str>) -> Option<&'static str> {
    Some(match (os, arch, variant) {
        ("linux", "amd64", None) => "x86_64-unknown-linux-gnu",
        ("linux", "arm64", None | Some("v8")) => "aarch64-unknown-linux-gnu",
        ("linux", "arm", Some("v7")) => "armv7-unknown-linux-gnueabihf",
        ("linux", "386", None) => "i686-unknown-linux-gnu",
        ("linux", "ppc64le", None) => "powerpc64le-unknown-linux-gnu",
        ("linux", "s390x", None) => "s390x-unknown-linux-gnu",
        ("linux", "riscv64", None) => "riscv64gc-unknown-linux-gnu",
        _ => return None,
    })
}

/// The Rust target for the platform `os`/`arch`[/`variant`], checked to be installed: its
/// standard library is in the sysroot (`rustup target add` puts it there).
pub fn installed_rust_target(
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> Result<&'static str, Error> {
    let platform = match variant {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    };
    let target = rust_target(os, arch, variant).ok_or_else(|| Error::NoRustTarget {
        platform: platform.clone(),
    })?;
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = run(Command::new(rustc).args(["--print", "target-libdir", "--target", target]))?;
    let has_std = std::fs::read_dir(libdir.trim()).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    });
    if !has_std {
        return Err(Error::TargetNotInstalled {
            platform,
            target: target.to_string(),
        });
    }
    Ok(target)
}

/// The host's target triple, from `rustc -vV`, asked once per process.
pub fn host_triple() -> Result<String, Error> {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(host) = HOST.get() {
        return Ok(host.clone());
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = run(Command::new(rustc).arg("-vV"))?;
    let host = out
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| Error::Failed {
            command: "rustc -vV".into(),
            status: "no host line".into(),
            stderr: String::new(),
        })?;
    Ok(HOST.get_or_init(|| host).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_builds_use_cargo_zigbuild_only_without_a_linker_and_when_it_is_installed() {
        let host = "x86_64-unknown-linux-gnu";
        let arm = "aarch64-unknown-linux-gnu";
        let never = || -> bool { panic!("zigbuild looked up for a build that needs none") };
        assert_eq!(cargo_subcommand(host, host, false, never), "build");
        assert_eq!(cargo_subcommand(arm, host, true, never), "build");
        assert_eq!(cargo_subcommand(arm, host, false, || true), "zigbuild");
        assert_eq!(cargo_subcommand(arm, host, false, || false), "build");
    }

    #[test]
    fn git_facts_of_a_fresh_repository() {
        let dir = tempfile::tempdir().unwrap();
        let g = |args: &[&str]| git(dir.path(), args).unwrap();
        g(&["init", "--quiet", "--initial-branch=trunk"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        g(&["add", "f"]);
        run(Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "--quiet",
                "-m",
                "x",
            ])
            .env("GIT_COMMITTER_DATE", "1700000000 +0000"))
        .unwrap();
        g(&["tag", "v1.2.3"]);
        let facts = git_facts(dir.path()).unwrap();
        assert_eq!(facts.sha.len(), 40);
        assert_eq!(facts.commit_time, 1_700_000_000);
        assert_eq!(facts.tags_at_head, vec!["v1.2.3"]);
        assert!(!facts.dirty);
        std::fs::write(dir.path().join("f"), "y").unwrap();
        assert!(git_facts(dir.path()).unwrap().dirty);
    }

    /// A repository made with the git CLI: one commit at `time` on branch `trunk`, then
    /// HEAD detached at it, as CI checks out.
    fn detached_repository(time: i64) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let g = |args: &[&str]| {
            run(Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .env("GIT_COMMITTER_DATE", format!("{time} +0000")))
            .unwrap()
        };
        g(&["init", "--quiet", "--initial-branch=trunk"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        g(&["add", "f"]);
        g(&["commit", "--quiet", "-m", "x"]);
        g(&["checkout", "--quiet", "--detach"]);
        let sha = g(&["rev-parse", "HEAD"]);
        (dir, sha)
    }

    /// The branch git_facts reports with exactly `vars` set.
    fn branch_with(dir: &Path, vars: &[(&str, &str)]) -> Option<String> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        git_facts_in(dir, &env).unwrap().branch
    }

    #[test]
    fn the_branch_of_a_detached_head_comes_from_ci_variables() {
        let (dir, sha) = detached_repository(1_700_000_000);
        let dir = dir.path();
        let check = |vars: &[(&str, &str)], expected: Option<&str>| {
            assert_eq!(branch_with(dir, vars).as_deref(), expected, "with {vars:?}");
        };
        // Nothing set: git has no branch to tell.
        check(&[], None);
        check(
            &[("GITHUB_REF_NAME", "main"), ("GITHUB_REF_TYPE", "branch")],
            Some("main"),
        );
        // A tag push: GITHUB_REF_NAME is the tag, not a branch.
        check(
            &[("GITHUB_REF_NAME", "v1.2.3"), ("GITHUB_REF_TYPE", "tag")],
            None,
        );
        // A pull request: the head branch wins over the merge ref's name.
        check(
            &[
                ("GITHUB_HEAD_REF", "feature/x"),
                ("GITHUB_REF_NAME", "7/merge"),
                ("GITHUB_REF_TYPE", "branch"),
            ],
            Some("feature/x"),
        );
        check(&[("CI_COMMIT_REF_NAME", "release/2")], Some("release/2"));
        // A GitLab tag pipeline: CI_COMMIT_REF_NAME is the tag.
        check(
            &[
                ("CI_COMMIT_REF_NAME", "v2.0.0"),
                ("CI_COMMIT_TAG", "v2.0.0"),
            ],
            None,
        );
        check(&[("CI_COMMIT_REF_NAME", ""), ("GITHUB_HEAD_REF", "")], None);
        check(
            &[
                ("WHARF_BRANCH", "override"),
                ("GITHUB_HEAD_REF", "feature/x"),
            ],
            Some("override"),
        );
        let facts = git_facts_in(dir, &|_| None).unwrap();
        assert_eq!(facts.sha, sha);
        assert!(!facts.dirty);
    }

    #[test]
    fn source_date_epoch_overrides_the_commit_time() {
        let (dir, _) = detached_repository(1_650_000_000);
        let facts = git_facts_in(dir.path(), &|_| None).unwrap();
        let epoch = |value: Option<&str>| source_date_epoch_of(value.map(String::from), &facts);
        assert_eq!(epoch(None).unwrap(), 1_650_000_000);
        assert_eq!(epoch(Some("")).unwrap(), 1_650_000_000);
        assert_eq!(epoch(Some("1700000000")).unwrap(), 1_700_000_000);
        assert_eq!(epoch(Some(" 1700000000\n")).unwrap(), 1_700_000_000);
        let err = epoch(Some("yesterday")).unwrap_err().to_string();
        assert!(
            err.starts_with("SOURCE_DATE_EPOCH=\"yesterday\" is not a number"),
            "{err}"
        );
    }

    #[test]
    fn outside_git_the_error_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = git_facts(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not in a git repository"), "{err}");
    }
}
