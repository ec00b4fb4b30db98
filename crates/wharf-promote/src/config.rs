//! The promotion sections of `pipelines/wharf.toml`: `[[stages]]`, `[ledger]` and
//! `[[webhooks]]`. Every table rejects unknown keys.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[[stages]]`: one stage a digest moves through, e.g. `dev`, `staging`, `production`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The stage's name, e.g. `staging`; also the first of its tags unless `tags` is given.
    pub name: String,
    /// Where the stage's image lives: `docker://HOST/REPO` (a registry repository) or
    /// `oci:DIR` (an OCI layout, relative to the workspace root; the embedded default).
    pub location: String,
    /// The stage a digest must be in before it can come here; `None` for the first stage,
    /// whose candidates are the digests CI verified (the ledger's verification entries).
    #[serde(default)]
    pub from: Option<String>,
    /// The tags moved to the digest; default: the stage's name.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Also tag the release's version (`1.2.3`, `1.2`, `1`, from the image's
    /// `org.opencontainers.image.version` label, by wharf-tag's rules).
    #[serde(default)]
    pub semver_tags: bool,
    /// Also tag `<stage>-YYYY-MM-DD` (the day of the promotion, UTC).
    #[serde(default)]
    pub date_tag: bool,
    /// What must hold before a digest comes in.
    #[serde(default)]
    pub gates: Gates,
    /// Where the stage's current digest runs (`cargo xtask deploy STAGE`); none: nowhere.
    #[serde(default)]
    pub deploy: Option<Deploy>,
}

/// `[stages.deploy]`: a runtime for the stage's digest. `docker` runs it on a Docker engine
/// (blue-green behind wharf's proxy), `kubernetes` sizes the stage's kustomize overlay
/// (`cargo xtask render-k8s`); a stage may have both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[serde(default)]
    pub docker: Option<DockerDeploy>,
    #[serde(default)]
    pub kubernetes: Option<KubernetesDeploy>,
    /// HTTP checks run against the stage after a deploy switches traffic (and by `cargo
    /// xtask smoke STAGE`); one failing rolls the deploy back.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// The stage's base URL for smoke checks, e.g. `https://staging.example.com`. Default:
    /// the Docker proxy's address.
    #[serde(default)]
    pub url: Option<String>,
}

/// `[stages.deploy.docker]`: blue-green on the Docker engine `DOCKER_HOST` names (a local one:
/// wharf's proxy runs beside it and reaches the containers on loopback).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerDeploy {
    /// The stable address clients use, e.g. `0.0.0.0:8080`: wharf's TCP proxy listens here
    /// and forwards to the live container.
    pub listen: String,
    /// The variable that tells a container its own address: each container gets
    /// `NAME=127.0.0.1:PORT` with a port of its own (host networking).
    #[serde(default = "listen_env")]
    pub listen_env: String,
    /// `NAME=VALUE` added to the image's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// `no`, `always`, `unless-stopped` (default) or `on-failure`.
    #[serde(default = "unless_stopped")]
    pub restart: String,
    /// A memory limit as `docker run --memory` takes it: `256m`, `1g`, bytes.
    #[serde(default)]
    pub memory: Option<String>,
    /// A CPU limit as `docker run --cpus` takes it: `0.5`, `2`.
    #[serde(default)]
    pub cpus: Option<String>,
    /// Seconds a stopping container gets after SIGTERM before SIGKILL.
    #[serde(default = "thirty")]
    pub stop_timeout_secs: u64,
    /// How a new container proves it is healthy when its image has no HEALTHCHECK.
    #[serde(default)]
    pub health: HealthCheck,
}

/// `health = { path = "/health", interval_ms = 1000, timeout_ms = 5000, retries = 3,
/// start_period_ms = 30000 }`: Docker's HEALTHCHECK semantics over HTTP. A probe is a GET
/// that must answer 2xx within `timeout_ms`; one passing probe makes the container healthy;
/// after `start_period_ms`, `retries` failing probes in a row make it unhealthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "health_path")]
    pub path: String,
    #[serde(default = "one_second")]
    pub interval_ms: u64,
    #[serde(default = "five_seconds")]
    pub timeout_ms: u64,
    #[serde(default = "three")]
    pub retries: u32,
    #[serde(default = "thirty_seconds")]
    pub start_period_ms: u64,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: health_path(),
            interval_ms: one_second(),
            timeout_ms: five_seconds(),
            retries: three(),
            start_period_ms: thirty_seconds(),
        }
    }
}

/// `[[stages.deploy.smoke]]`: `{ path = "/health", status = 200, body_contains = "ok",
/// max_latency_ms = 500 }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    pub path: String,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The answer must be complete within this many milliseconds (default 5000).
    #[serde(default = "five_seconds")]
    pub max_latency_ms: u64,
}

/// `[stages.deploy.kubernetes]`: the stage's overlay of the manifests `cargo xtask
/// render-k8s` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesDeploy {
    /// The repository the cluster pulls from, e.g. `ghcr.io/org/app-production`; default the
    /// stage's location (which must then be `docker://`).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// `{ cpu = "100m", memory = "64Mi" }`, as Kubernetes quantities.
    pub requests: Resources,
    pub limits: Resources,
    /// The PodDisruptionBudget's minAvailable; default: one less than `replicas` (at least 1).
    #[serde(default)]
    pub min_available: Option<u32>,
    /// The HorizontalPodAutoscaler: `{ min = 3, max = 10, cpu_percent = 70 }`; default: from
    /// `replicas` to twice as many, at 80% CPU.
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu: String,
    pub memory: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    #[serde(default = "eighty")]
    pub cpu_percent: u32,
}

impl DockerDeploy {
    /// `memory` in bytes: `docker run --memory`'s units (b, k, m, g; case ignored).
    pub fn memory_bytes(&self) -> Result<Option<i64>, String> {
        let Some(text) = self.memory.as_deref() else {
            return Ok(None);
        };
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('b').unwrap_or(&lower);
        let (number, unit) = match lower.char_indices().last() {
            Some((i, c @ ('k' | 'm' | 'g'))) => (&lower[..i], c),
            _ => (lower, ' '),
        };
        let scale: i64 = match unit {
            'k' => 1 << 10,
            'm' => 1 << 20,
            'g' => 1 << 30,
            _ => 1,
        };
        number
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|n| *n >= 6 << 20)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "memory = {text:?}: expected a size of at least 6m, e.g. \"256m\" or \"1g\""
                )
            })
    }

    /// `cpus` in billionths of a CPU, as the engine takes it.
    pub fn nano_cpus(&self) -> Result<Option<i64>, String> {
        let Some(text) = self.cpus.as_deref() else {
            return Ok(None);
        };
        let bad = || format!("cpus = {text:?}: expected a number of CPUs, e.g. \"0.5\" or \"2\"");
        let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let fraction: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
        let nanos = whole
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(fraction))
            .filter(|n| *n > 0)
            .ok_or_else(bad)?;
        Ok(Some(nanos))
    }
}

fn listen_env() -> String {
    "LISTEN_ADDR".to_string()
}
fn unless_stopped() -> String {
    "unless-stopped".to_string()
}
fn health_path() -> String {
    "/health".to_string()
}
fn one() -> u32 {
    1
}
fn eighty() -> u32 {
    80
}
fn one_second() -> u64 {
    1000
}
fn five_seconds() -> u64 {
    5000
}
fn thirty_seconds() -> u64 {
    30_000
}

/// `[stages.gates]`: every gate is off unless configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// The ledger holds a verification entry for the digest (CI built and tested it).
    #[serde(default)]
    pub tests: bool,
    /// The scan report attached to the image passes the `[scan]` policy in force.
    #[serde(default)]
    pub scan: bool,
    /// The image's pushed size (config and layers) is at most this many bytes.
    #[serde(default)]
    pub max_image_bytes: Option<u64>,
    /// The digest has been in the `from` stage for at least this many minutes (since it last
    /// became current there); for a first stage, since CI verified it.
    #[serde(default)]
    pub soak_minutes: Option<u64>,
    /// No benchmark's p95 is more than `max_regression_percent` slower than the baseline.
    #[serde(default)]
    pub benchmark: Option<BenchmarkGate>,
    /// HTTP checks against an endpoint, with retries within a time limit.
    #[serde(default)]
    pub smoke: Option<SmokeGate>,
    /// N of M distinct approvals for the digest.
    #[serde(default)]
    pub approvals: Option<ApprovalGate>,
    /// A cosign signature of the digest, in the location it comes from, that one of these
    /// public keys verifies.
    #[serde(default)]
    pub signature: Option<SignatureGate>,
    /// SLSA provenance attached to the digest, signed by one of these keys, from a named
    /// builder and source repository.
    #[serde(default)]
    pub provenance: Option<ProvenanceGate>,
}

/// `provenance = { keys = ["cosign.pub"], builder = "https://github.com/OWNER/REPO/.github/workflows/release.yml", source = "https://github.com/OWNER/REPO" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceGate {
    /// Public keys, as for the signature gate; the envelope must verify with one.
    pub keys: Vec<String>,
    /// The builder id the provenance must name: equal, or followed by `@` and a ref (GitHub's
    /// workflow ids end in `@refs/tags/v1.2.3`). None: any builder.
    #[serde(default)]
    pub builder: Option<String>,
    /// The source repository it must name (compared without `git+` and a trailing `.git`).
    /// None: any source.
    #[serde(default)]
    pub source: Option<String>,
}

impl ProvenanceGate {
    /// Whether a provenance's builder id is the one this gate names.
    pub fn builder_matches(&self, builder: &str) -> bool {
        self.builder.as_deref().is_none_or(|want| {
            builder == want
                || builder
                    .strip_prefix(want)
                    .is_some_and(|rest| rest.starts_with('@'))
        })
    }

    /// Whether a provenance's source repository is the one this gate names.
    pub fn source_matches(&self, source: &str) -> bool {
        let plain = |uri: &str| {
            let uri = uri.strip_prefix("git+").unwrap_or(uri);
            uri.strip_suffix(".git").unwrap_or(uri).to_string()
        };
        self.source
            .as_deref()
            .is_none_or(|want| plain(want) == plain(source))
    }
}

/// `signature = { keys = ["pipelines/cosign.pub"], check_reference = false }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureGate {
    /// Public keys (PEM, as `cosign.pub`): files relative to the workspace root, or
    /// `env://NAME` for a variable holding one. Any of them may have signed.
    pub keys: Vec<String>,
    /// Also require the signature's docker-reference to be the source repository.
    #[serde(default)]
    pub check_reference: bool,
}

/// `benchmark = { baseline = "FILE", current = "FILE", max_regression_percent = 10 }`.
/// Both files are in the format documented in `docs/guide/promotion.md`
/// (`{"benchmarks": [{"name": "...", "p95_ns": 1234}]}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkGate {
    pub baseline: PathBuf,
    pub current: PathBuf,
    pub max_regression_percent: u32,
}

/// `smoke = { url = "http://...", expect_status = 200, retries = 3, within_secs = 30 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeGate {
    pub url: String,
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    /// Attempts after the first failed one.
    #[serde(default = "three")]
    pub retries: u32,
    /// All attempts together end within this many seconds.
    #[serde(default = "thirty")]
    pub within_secs: u64,
}

/// `approvals = { required = 2, approvers = ["alice", "bob", "carol"], signed = false,
/// allowed_signers = "FILE" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalGate {
    /// How many distinct approvers (N of M).
    pub required: u32,
    /// Who may approve (`GITHUB_ACTOR` names or emails); empty: anyone but the author.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Count only approvals signed with an SSH key listed in `allowed_signers`.
    #[serde(default)]
    pub signed: bool,
    /// An `ssh-keygen` allowed-signers file, relative to the workspace root.
    #[serde(default)]
    pub allowed_signers: Option<PathBuf>,
}

/// `[ledger]`: where the ledger is kept. Default: the git ref `refs/wharf/ledger` in the
/// workspace's repository, with no remote (or the file `.wharf/ledger.jsonl` outside git).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The ref, default `refs/wharf/ledger`.
    #[serde(default)]
    pub git_ref: Option<String>,
    /// The git remote CI runners share it through, e.g. `origin`; `WHARF_LEDGER_REMOTE`
    /// overrides it. None: the local repository only.
    #[serde(default)]
    pub remote: Option<String>,
    /// Keep the ledger in this file (under a lock) instead of a git ref.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `[[webhooks]]`: where promotions, rollbacks and failed gates are announced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// `json` (wharf's message) or `slack` (an incoming-webhook `text` message).
    #[serde(default)]
    pub format: WebhookFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

fn ok_status() -> u16 {
    200
}
fn three() -> u32 {
    3
}
fn thirty() -> u64 {
    30
}
