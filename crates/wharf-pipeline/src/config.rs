//! The pipeline config file (`pipelines/wharf.toml`): what to build and which CI steps run.
//!
//! Every field has a default, so a repository without the file still gets a working
//! `cargo xtask ci`; unknown keys are errors that name the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the config lives, relative to the workspace root.
pub const CONFIG_PATH: &str = "pipelines/wharf.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub image: Option<ImageConfig>,
    #[serde(default)]
    pub ci: CiConfig,
    /// `[push]`: where `cargo xtask push` (and the `push` step of ci) sends the image.
    #[serde(default)]
    pub push: Option<PushConfig>,
    /// `[scan]`: what `cargo xtask scan` checks, and the gate; the `scan` step of ci runs
    /// only when the section is there (it needs an advisory database).
    #[serde(default)]
    pub scan: Option<ScanConfig>,
    /// `[matrix]`: the test matrix of `cargo xtask matrix` (and the `matrix` step of ci,
    /// which runs only when the section is there). See the `wharf_matrix` crate docs.
    #[serde(default)]
    pub matrix: Option<wharf_matrix::Config>,
    /// `[[stages]]`: where a digest goes after CI, in order (`cargo xtask promote`).
    #[serde(default)]
    pub stages: Vec<wharf_promote::Stage>,
    /// `[ledger]`: where promotions, approvals and rollbacks are recorded.
    #[serde(default)]
    pub ledger: wharf_promote::LedgerConfig,
    /// `[[webhooks]]`: who hears about promotions, rollbacks and failed gates.
    #[serde(default)]
    pub webhooks: Vec<wharf_promote::Webhook>,
    /// `[kubernetes]`: the manifests `cargo xtask render-k8s` writes for the stages with
    /// `[stages.deploy.kubernetes]`.
    #[serde(default)]
    pub kubernetes: Option<KubernetesConfig>,
}

/// `[kubernetes]`: what the service is in every stage's manifests. Every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Where the kustomize base and overlays go, relative to the workspace root; default
    /// `deploy/k8s`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The objects' name; default `[image] package`.
    #[serde(default)]
    pub name: Option<String>,
    /// The container port; default the first of `[image] ports`.
    #[serde(default)]
    pub port: Option<u16>,
    /// The liveness and readiness probes' path; default `/health`.
    #[serde(default)]
    pub health_path: Option<String>,
    /// `NAME=VALUE` set in every stage's container.
    #[serde(default)]
    pub env: Vec<String>,
}

/// `[scan]`: the advisory database, the image checks and the policy gate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// The RustSec advisory database (a directory, read offline), relative to the
    /// workspace root. `WHARF_ADVISORY_DB` overrides it; the default is
    /// `~/.cargo/advisory-db`, where cargo-audit keeps its copy.
    #[serde(default)]
    pub db: Option<PathBuf>,
    /// The git remote the database is cloned from when missing (default: the RustSec
    /// repository); `WHARF_ADVISORY_DB_URL` overrides it.
    #[serde(default)]
    pub db_url: Option<String>,
    /// Update a git checkout of the database older than this many hours (default 24).
    #[serde(default)]
    pub db_max_age_hours: Option<u64>,
    /// Fail on vulnerabilities of this severity or above (`none`, `low`, `medium`, `high`,
    /// `critical`); default `low`: any vulnerability.
    #[serde(default)]
    pub fail_on: Option<wharf_policy::Severity>,
    /// Fail on warnings (unmaintained, unsound, notice) too.
    #[serde(default)]
    pub fail_on_warnings: bool,
    /// Accepted findings: `{ id, reason, expires = "YYYY-MM-DD" }`, all required.
    #[serde(default)]
    pub ignore: Vec<wharf_policy::Ignore>,
    /// `allow` and `deny` lists of SPDX license ids for what the binary links.
    #[serde(default)]
    pub licenses: wharf_policy::Licenses,
    /// Budget for the pushed size of the image (config and compressed layers), in bytes.
    #[serde(default)]
    pub max_image_bytes: Option<u64>,
    /// Labels the image must carry.
    #[serde(default)]
    pub required_labels: Vec<String>,
    /// Let the image run as root (the check fails on root otherwise).
    #[serde(default)]
    pub allow_root: bool,
}

impl ScanConfig {
    /// The policy gate this section describes.
    pub fn policy(&self) -> wharf_policy::Policy {
        let defaults = wharf_policy::Policy::default();
        wharf_policy::Policy {
            fail_on: self.fail_on.unwrap_or(defaults.fail_on),
            fail_on_warnings: self.fail_on_warnings,
            ignore: self.ignore.clone(),
            licenses: self.licenses.clone(),
        }
    }
}

/// `[push]`: the registry the built image goes to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// `docker://HOST/REPO`; every tag of the image is pushed there.
    pub destination: String,
    /// Registries (HOST[:PORT], matched exactly) whose certificate is not verified, reached
    /// over plain HTTP only if they do not speak TLS.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// The stage of `[[stages]]` the release promotes its image into once it is pushed and
    /// recorded (a `promote-<stage>` step at the end of `cargo xtask release`).
    #[serde(default)]
    pub promote_to: Option<String>,
    /// Sign what the release pushed (a `sign` step after the push): cosign's format, with
    /// SLSA provenance attached.
    #[serde(default)]
    pub sign: Option<SignConfig>,
}

/// `[push] sign = { key = "env://WHARF_SIGNING_KEY", provenance = true }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// The private key: `env://NAME` (a CI secret; the generated release workflow passes
    /// the repository secret NAME) or a file (mode 0600) relative to the workspace root.
    #[serde(default = "default_signing_key")]
    pub key: String,
    /// Also attach SLSA provenance signed with the same key.
    #[serde(default = "yes")]
    pub provenance: bool,
}

/// Where the signing key comes from by default: the secret the release workflow passes.
pub const DEFAULT_SIGNING_KEY: &str = "env://WHARF_SIGNING_KEY";

fn default_signing_key() -> String {
    DEFAULT_SIGNING_KEY.to_string()
}

fn yes() -> bool {
    true
}

impl SignConfig {
    /// The environment variable the key is read from, if it is read from one.
    pub fn key_variable(&self) -> Option<&str> {
        self.key.strip_prefix("env://")
    }
}

/// `[image]`: the image `cargo xtask image` builds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// The Cargo package whose binary goes into the image.
    pub package: String,
    /// The binary's name; defaults to the package name.
    #[serde(default)]
    pub binary: Option<String>,
    /// Repository name used in references and the image title, e.g. `wharf/hello-service`;
    /// defaults to the package name.
    #[serde(default)]
    pub repository: Option<String>,
    /// The OCI layout that stands in for a registry; relative to the workspace root.
    /// Defaults to `target/wharf/oci/<package>`.
    #[serde(default)]
    pub layout: Option<PathBuf>,
    /// `scratch`, or an image in an OCI layout pinned by digest:
    /// `oci:DIR:TAG@sha256:<hex>` (the digest is checked, so a moved tag cannot change the
    /// base silently).
    #[serde(default = "scratch")]
    pub base: String,
    /// `uid:gid` the container runs as (numeric, so no passwd file is needed).
    #[serde(default = "default_user")]
    pub user: String,
    /// Defaults to `["/app/<binary>"]`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// e.g. `["8080/tcp"]`.
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// Extra files, each `{ from = "host/path", to = "/image/path" }`, in their own layer.
    #[serde(default)]
    pub files: Vec<FileMapping>,
    /// `org.opencontainers.image.source`; defaults to the package's `repository`.
    #[serde(default)]
    pub source: Option<String>,
    /// A stage name for the `<stage>-YYYY-MM-DD` tag, e.g. `dev`.
    #[serde(default)]
    pub stage: Option<String>,
    /// Platforms to build, e.g. `["linux/amd64", "linux/arm64"]`: one image per platform,
    /// tagged together as one OCI image index. Empty (the default): one linux/amd64 image,
    /// no index.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Binaries built elsewhere, by platform, e.g. `{ "linux/arm64" = "dist/app-arm64" }`
    /// (relative to the workspace root): used as they are instead of compiling for that
    /// platform.
    #[serde(default)]
    pub binaries: BTreeMap<String, PathBuf>,
    /// A directory of compressed layers for CI to save and restore between runs, e.g.
    /// `target/wharf/layer-cache` (relative to the workspace root): a layer whose content is
    /// there is copied instead of compressed again. Unset: only the layout is looked in.
    #[serde(default)]
    pub layer_cache: Option<PathBuf>,
    /// A Dockerfile (relative to the workspace root) to build with the Docker engine instead
    /// of assembling the image around the package's binary. The package still names the
    /// version and the SBOM; the Dockerfile decides everything in the image.
    #[serde(default)]
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile build's context directory; default the workspace root. Its
    /// `.dockerignore` applies.
    #[serde(default)]
    pub context: Option<PathBuf>,
    /// `ARG` values for the Dockerfile build.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// The Dockerfile stage to build (`docker build --target`); default the last.
    #[serde(default)]
    pub target: Option<String>,
}

impl ImageConfig {
    /// The platforms the image is built for: `platforms`, or linux/amd64 alone.
    pub fn platform_list(&self) -> Vec<String> {
        if self.platforms.is_empty() {
            vec!["linux/amd64".to_string()]
        } else {
            self.platforms.clone()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMapping {
    pub from: PathBuf,
    pub to: String,
}

/// `[ci]`: the steps of `cargo xtask ci`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiConfig {
    #[serde(default = "default_steps")]
    pub steps: Vec<StepName>,
    /// Arguments after `cargo test`.
    #[serde(default = "default_test_args")]
    pub test_args: Vec<String>,
}

impl Default for CiConfig {
    fn default() -> Self {
        CiConfig {
            steps: default_steps(),
            test_args: default_test_args(),
        }
    }
}

/// A step `cargo xtask ci` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    Fmt,
    Clippy,
    Test,
    Image,
    /// SBOM, vulnerabilities, image checks and the policy gate; runs only when `[scan]`
    /// is configured.
    Scan,
    /// Runs only when `[push]` is configured.
    Push,
    /// The test matrix; runs only when `[matrix]` is configured.
    Matrix,
}

fn scratch() -> String {
    "scratch".into()
}

fn default_user() -> String {
    "65532:65532".into()
}

fn default_steps() -> Vec<StepName> {
    vec![
        StepName::Fmt,
        StepName::Clippy,
        StepName::Test,
        StepName::Matrix,
        StepName::Image,
        StepName::Scan,
        StepName::Push,
    ]
}

fn default_test_args() -> Vec<String> {
    vec!["--workspace".into()]
}

impl Config {
    /// Reads `pipelines/wharf.toml` under `root`, or the defaults if there is none.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        Config::load_file(&root.join(CONFIG_PATH))
    }

    /// Reads the config file at `path`, or the defaults if there is none.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        if let Some(image) = &config.image {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            };
            parse_user(&image.user).map_err(|m| invalid(format!("image.user: {m}")))?;
            if image.base != "scratch" {
                parse_base(&image.base).map_err(|m| invalid(format!("image.base: {m}")))?;
            }
            check_platforms(image).map_err(invalid)?;
            check_dockerfile(image).map_err(invalid)?;
        }
        // Stages are checked when the file is read, so a mistake there fails every
        // command at once (`ci --dry-run` too), not the first promotion.
        if !config.stages.is_empty()
            && let Err(problems) = wharf_promote::validate(&config.stages)
        {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: list.join("; "),
            });
        }
        if let Some(stage) = config.push.as_ref().and_then(|p| p.promote_to.as_ref())
            && !config.stages.iter().any(|s| &s.name == stage)
        {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "push.promote_to: {stage:?} names no stage of [[stages]] (add one, or remove the key)"
                ),
            });
        }
        if let Some(name) = config
            .push
            .as_ref()
            .and_then(|p| p.sign.as_ref())
            .and_then(SignConfig::key_variable)
            && (name.is_empty()
                || name.starts_with(|c: char| c.is_ascii_digit())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "push.sign.key: env://{name} names no valid environment variable (use letters, digits and _, e.g. env://WHARF_SIGNING_KEY)"
                ),
            });
        }
        Ok(config)
    }
}

/// `platforms` parse, name no platform twice, and `binaries` names only platforms built.
fn check_platforms(image: &ImageConfig) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for text in &image.platforms {
        let platform =
            wharf_oci::Platform::parse(text).map_err(|m| format!("image.platforms: {m}"))?;
        if !seen.insert(platform.to_string()) {
            return Err(format!("image.platforms: {text:?} is listed twice"));
        }
    }
    let built = image.platform_list();
    for name in image.binaries.keys() {
        if !built.contains(name) {
            return Err(format!(
                "image.binaries: {name:?} is not a platform the image is built for ({}); add it to image.platforms",
                built.join(", ")
            ));
        }
    }
    Ok(())
}

/// With a Dockerfile, the keys that shape a daemonless image are the Dockerfile's job; the
/// Dockerfile keys mean nothing without one.
fn check_dockerfile(image: &ImageConfig) -> Result<(), String> {
    if image.dockerfile.is_none() {
        let stray = [
            ("context", image.context.is_some()),
            ("build_args", !image.build_args.is_empty()),
            ("target", image.target.is_some()),
        ];
        return match first_set(&stray) {
            Some(key) => Err(format!(
                "image.{key} applies to Dockerfile builds only; add image.dockerfile, or remove it"
            )),
            None => Ok(()),
        };
    }
    let daemonless = [
        ("base", image.base != "scratch"),
        ("user", image.user != default_user()),
        ("entrypoint", image.entrypoint.is_some()),
        ("cmd", !image.cmd.is_empty()),
        ("env", !image.env.is_empty()),
        ("ports", !image.ports.is_empty()),
        ("workdir", image.workdir.is_some()),
        ("files", !image.files.is_empty()),
        ("platforms", !image.platforms.is_empty()),
        ("binaries", !image.binaries.is_empty()),
        ("layer_cache", image.layer_cache.is_some()),
    ];
    match first_set(&daemonless) {
        Some(key) => Err(format!(
            "image.{key} shapes images built without a Dockerfile; with image.dockerfile, say it in the Dockerfile instead"
        )),
        None => Ok(()),
    }
}

/// The first key of `keys` that the config sets.
fn first_set<'a>(keys: &[(&'a str, bool)]) -> Option<&'a str> {
    keys.iter().find(|(_, set)| *set).map(|(key, _)| *key)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Parses `uid:gid` (or `uid`, meaning gid = uid).
pub fn parse_user(user: &str) -> Result<(u64, u64), String> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    match (uid.parse(), gid.parse()) {
        (Ok(uid), Ok(gid)) => Ok((uid, gid)),
        _ => Err(format!(
            "{user:?} is not numeric uid:gid (scratch images have no /etc/passwd to look names up in; use e.g. \"65532:65532\")"
        )),
    }
}

/// A base image pinned in an OCI layout: directory, tag and expected digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedBase {
    pub dir: PathBuf,
    pub tag: String,
    pub digest: wharf_oci::Digest,
}

/// Parses `oci:DIR:TAG@sha256:<hex>`.
pub fn parse_base(base: &str) -> Result<PinnedBase, String> {
    let hint = "expected \"scratch\" or oci:DIR:TAG@sha256:<digest> (pin the base by digest; `cargo xtask image --json` prints digests)";
    let Some((location, digest)) = base.split_once('@') else {
        return Err(format!("{base:?} is not pinned by digest: {hint}"));
    };
    let digest = digest.parse().map_err(|e| format!("{e}"))?;
    match location.parse::<wharf_oci::Location>() {
        Ok(wharf_oci::Location::Layout {
            dir,
            tag: Some(tag),
        }) => Ok(PinnedBase { dir, tag, digest }),
        Ok(other) => Err(format!("{other} is not supported as a base yet: {hint}")),
        Err(e) => Err(format!("{e}: {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, expected: &str) {
        let err = Config::parse(text, Path::new("pipelines/wharf.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }

    #[test]
    fn stage_mistakes_fail_when_the_file_is_read() {
        let path = Path::new("pipelines/wharf.toml");
        let cycle = "[[stages]]\nname = \"a\"\nfrom = \"b\"\nlocation = \"oci:x\"\n[[stages]]\nname = \"b\"\nfrom = \"a\"\nlocation = \"oci:y\"\n";
        let error = Config::parse(cycle, path).unwrap_err().to_string();
        assert!(error.starts_with("pipelines/wharf.toml: "), "{error}");
        assert!(error.contains("stages"), "{error}");
        let unknown = "[push]\ndestination = \"docker://r/x\"\npromote_to = \"dev\"\n";
        let error = Config::parse(unknown, path).unwrap_err().to_string();
        assert!(error.contains("push.promote_to: \"dev\""), "{error}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("", Path::new("x")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.ci.steps.len(), 7);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        check_err(
            "[image]\npackage = \"x\"\nbogus = 1\n",
            "pipelines/wharf.toml:3:1: unknown field `bogus`, expected one of",
        );
        check_err(
            "[ci]\nsteps = [\"fmt\", \"deploy\"]\n",
            "pipelines/wharf.toml:2:17: unknown variant `deploy`, expected one of `fmt`, `clippy`, `test`, `image`, `scan`, `push`",
        );
        check_err(
            "[image]\npackage = \"x\"\nuser = \"nobody\"\n",
            "image.user: \"nobody\" is not numeric uid:gid",
        );
        check_err(
            "[image]\npackage = \"x\"\nbase = \"oci:base:v1\"\n",
            "is not pinned by digest",
        );
    }

    #[test]
    fn platforms_and_binaries_are_checked_when_read() {
        check_err(
            "[image]\npackage = \"x\"\nplatforms = [\"linux/amd64\", \"arm64\"]\n",
            "image.platforms: \"arm64\" is not a platform (expected OS/ARCH",
        );
        check_err(
            "[image]\npackage = \"x\"\nplatforms = [\"linux/arm64\", \"linux/arm64\"]\n",
            "image.platforms: \"linux/arm64\" is listed twice",
        );
        check_err(
            "[image]\npackage = \"x\"\nbinaries = { \"linux/arm64\" = \"a\" }\n",
            "image.binaries: \"linux/arm64\" is not a platform the image is built for (linux/amd64); add it to image.platforms",
        );
        check_err(
            "[image]\npackage = \"x\"\ndockerfile = \"Dockerfile\"\nports = [\"8080/tcp\"]\n",
            "image.ports shapes images built without a Dockerfile; with image.dockerfile, say it in the Dockerfile instead",
        );
        check_err(
            "[image]\npackage = \"x\"\ntarget = \"runtime\"\n",
            "image.target applies to Dockerfile builds only",
        );
        let ok = "[image]\npackage = \"x\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nbinaries = { \"linux/arm64\" = \"dist/x\" }\n";
        let image = Config::parse(ok, Path::new("x")).unwrap().image.unwrap();
        assert_eq!(image.platform_list(), ["linux/amd64", "linux/arm64"]);
        assert_eq!(image.binaries["linux/arm64"], PathBuf::from("dist/x"));
    }

    #[test]
    fn scan_section_ignore_entries_need_every_field() {
        let text = "[scan]\nfail_on = \"high\"\n\n[[scan.ignore]]\nid = \"RUSTSEC-2021-0003\"\nexpires = \"2027-01-31\"\n";
        check_err(text, "pipelines/wharf.toml:4:1: missing field `reason`");
        check_err(
            "[scan]\nfail_on = \"severe\"\n",
            "pipelines/wharf.toml:2:11: unknown variant `severe`, expected one of `none`, `low`, `medium`, `high`, `critical`",
        );
        let ok = format!("{text}reason = \"unreachable\"\n");
        let policy = Config::parse(&ok, Path::new("x"))
            .unwrap()
            .scan
            .unwrap()
            .policy();
        assert_eq!(policy.fail_on, wharf_policy::Severity::High);
        assert_eq!(policy.ignore[0].expires.to_string(), "2027-01-31");
        assert_eq!(
            ScanConfig::default().policy(),
            wharf_policy::Policy::default()
        );
    }

    #[test]
    fn pinned_base_parses() {
        let hex = "a".repeat(64);
        let base = parse_base(&format!("oci:/tmp/base:v1@sha256:{hex}")).unwrap();
        assert_eq!(base.dir, PathBuf::from("/tmp/base"));
        assert_eq!(base.tag, "v1");
    }
}
