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
