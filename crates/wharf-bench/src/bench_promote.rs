//! `cargo xtask bench-promote`: a promotion with its gates, and a rollback, against what
//! `skopeo copy` does for the same move, on a loopback `docker-registry`.
//!
//! Not timed: a workspace (a git repository with a `[workspace]` `Cargo.toml`) whose
//! `pipelines/wharf.toml` has two stages in that registry, dev (`bench/app`) and staging
//! (`bench/app-staging`; gates tests, scan, image size and one approval); two random images
//! A and B of 4 layers pushed to dev, each with a clean scan report attached and the
//! verification entry the ci pipeline would record; A promoted into dev and staging, then B
//! into dev.
//!
//! Timed, as whole processes (this xtask binary and skopeo), the contenders taking turns
//! (the first one changes every round), medians compared:
//! - rollback: `rollback staging` (B back to A: ledger append, tag move) against `skopeo
//!   copy` of A's digest onto the `staging` tag of the same repository. Before each round B
//!   is promoted again (untimed), and before each contender the tag is on B.
//! - promotion: `promote staging` (gates, copy by digest with the scan report, ledger
//!   append, tag) against `skopeo copy` of B's digest from dev. Each run copies into a
//!   repository of its own, so both always copy into an empty one; wharf's goes through a
//!   config per run (`--config`: the same stages, staging's location changed).
//!
//! Then where wharf's time goes: `promote staging --dry-run` as a process (start, config,
//! ledger read, evidence, gates), in process the copy by digest, a ledger read and a ledger
//! append; for the rollback, `ledger verify` and `status` as processes (the floor of any
//! command, without and with the registry client).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use wharf::oci::{Digest, Location, Reference, media_type};
use wharf::registry::{Artifact, Client};
use wharf_ledger::Store;

use crate::loopback::{Registry, make_image, start_registry};
use crate::{checked, median, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Timed rounds (medians compared).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Size of each of the image's 4 layers, in MiB.
    #[arg(long, default_value_t = 4)]
    layer_mib: u64,
}

/// Who the commands run as (`GITHUB_ACTOR`): CI promotes, someone else approves.
const CI: &str = "ci";
const APPROVER: &str = "reviewer";

/// The stages, with staging in `bench/STAGING_REPO`.
fn stages(host: &str, staging_repo: &str, budget: u64) -> String {
    format!(
        r#"[[stages]]
name = "dev"
location = "docker://{host}/bench/app"
gates = {{ tests = true }}

[[stages]]
name = "staging"
from = "dev"
location = "docker://{host}/bench/{staging_repo}"
gates = {{ tests = true, scan = true, max_image_bytes = {budget}, approvals = {{ required = 1, approvers = ["{APPROVER}"] }} }}
"#
    )
}

/// The registry, the workspace and the two images, ready for the timed rounds.
struct Fixture {
    registry: Registry,
    dir: tempfile::TempDir,
    xtask: PathBuf,
    client: Client,
    ledger: Store,
    /// A, then B.
    images: [Digest; 2],
    budget: u64,
    /// The workspace's commit, which the verification entries name.
    commit: String,
}

impl Fixture {
    fn root(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn repo(&self, name: &str) -> String {
        format!("docker://{}/bench/{name}", self.registry.host)
    }

    /// Runs this xtask binary in the workspace as `actor`, with `--config` if given.
    fn xtask(&self, actor: &str, config: Option<&Path>, args: &[&str]) -> Result<Output> {
        let mut command = Command::new(&self.xtask);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        checked(
            command
                .args(args)
                .env("WHARF_WORKSPACE", self.root())
                .env("GITHUB_ACTOR", actor)
                .env_remove("WHARF_LEDGER_REMOTE"),
        )
    }

    /// Approves what dev holds for staging, then promotes it there (untimed).
    fn approve_and_promote(&self, config: Option<&Path>, digest: &Digest) -> Result<()> {
        self.approve(config, digest)?;
        self.xtask(CI, config, &["promote", "staging", "--json"])?;
        Ok(())
    }

    fn approve(&self, config: Option<&Path>, digest: &Digest) -> Result<()> {
        self.xtask(
            APPROVER,
            config,
            &["approve", "staging", &digest.to_string(), "--json"],
        )?;
        Ok(())
    }

    /// Points `bench/app-staging:staging` at `digest` (the registry API, untimed).
    fn set_staging_tag(&self, digest: &Digest) -> Result<()> {
        let repo = format!("{}/bench/app-staging@{digest}", self.registry.host);
        self.client.tag(&repo.parse::<Reference>()?, "staging")?;
        Ok(())
    }

    /// The entry the ci pipeline's record step writes for a digest it built and tested.
    fn verify(&self, digest: &Digest) -> Result<()> {
        let evidence = wharf_promote::VerificationEvidence {
            location: Some(self.repo("app")),
            commit: Some(self.commit.clone()),
            ..Default::default()
        };
        let draft = |_: &[wharf_ledger::Entry]| -> Result<_> {
            Ok(wharf_promote::verification_draft(
                digest.clone(),
                CI,
                jiff::Timestamp::now(),
                &evidence,
            ))
        };
        self.ledger
            .append(draft)
            .map_err(|e| anyhow!("recording the verification of {digest}: {e}"))?;
        Ok(())
    }
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = checked(Command::new("git").args(args).current_dir(root))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn skopeo_copy(from: &str, to: &str) -> Result<()> {
    checked(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        from,
        to,
    ]))
    .context("(skopeo is installed by bash pipelines/test.sh)")?;
    Ok(())
}

/// A clean scan report, as `cargo xtask scan` writes one with nothing found.
fn clean_report() -> Artifact {
    Artifact {
        artifact_type: media_type::WHARF_SCAN.into(),
        media_type: "application/json".into(),
        bytes: serde_json::to_vec(
            &json!({ "passed": true, "vulnerabilities": [], "warnings": [] }),
        )
        .expect("a literal serializes"),
        annotations: Default::default(),
        fallback_suffix: "scan".into(),
    }
}

fn setup(args: &Args) -> Result<Fixture> {
    let registry = start_registry()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("workspace");
    let client = Client::new(wharf::registry::Config::new())?;
    let dev = format!("docker://{}/bench/app", registry.host);
    let mut images = Vec::new();
    for seed in [1, 2] {
        let layout = dir.path().join(format!("image-{seed}"));
        let digest = make_image(&layout, args.layer_mib, seed)?;
        let from: Location = format!("oci:{}:bench", layout.display()).parse()?;
        let to: Location = format!("{dev}:v{seed}").parse()?;
        wharf::pipeline::copy::copy(&client, &from, &to)?;
        let subject: Reference = format!("{}/bench/app@{digest}", registry.host).parse()?;
        client.attach(&subject, &clean_report())?;
        images.push(digest);
    }
    std::fs::create_dir_all(root.join("pipelines"))?;
    std::fs::write(root.join("Cargo.toml"), "[workspace]\n")?;
    // Twice the image: the size gate is checked, and passes.
    let budget = 2 * ((4 * args.layer_mib) << 20) + (1 << 20);
    std::fs::write(
        root.join("pipelines/wharf.toml"),
        stages(&registry.host, "app-staging", budget),
    )?;
    git(&root, &["init", "-q", "-b", "main"])?;
    git(&root, &["add", "-A"])?;
    git(
        &root,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-qm",
            "bench workspace",
        ],
    )?;
    let [a, b] = <[Digest; 2]>::try_from(images).expect("two images");
    let fixture = Fixture {
        commit: git(&root, &["rev-parse", "HEAD"])?,
        ledger: Store::git(root, wharf_ledger::DEFAULT_REF, None),
        registry,
        dir,
        xtask: std::env::current_exe()?,
        client,
        images: [a, b],
        budget,
    };
    let [a, b] = &fixture.images;
    fixture.verify(a)?;
    fixture.verify(b)?;
    fixture.xtask(CI, None, &["promote", "dev", "--digest", &a.to_string()])?;
    fixture.approve_and_promote(None, a)?;
    fixture.xtask(CI, None, &["promote", "dev", "--digest", &b.to_string()])?;
    // skopeo remembers where it saw a blob (its blob info cache) and mounts it from there
    // instead of sending it; a copy of each image first, so that every timed copy of skopeo
    // mounts, as wharf's does (without it the first one sends the 16 MiB).
    for (n, digest) in fixture.images.iter().enumerate() {
        let warm = fixture.repo(&format!("skopeo-warm-up:{n}"));
        skopeo_copy(&format!("{}@{digest}", fixture.repo("app")), &warm)?;
    }
    Ok(fixture)
}

/// The two contenders of round `round`, in the order they run.
fn order(round: usize) -> [&'static str; 2] {
    if round.is_multiple_of(2) {
        ["wharf", "skopeo"]
    } else {
        ["skopeo", "wharf"]
    }
}

/// What a rollback round measured.
struct Rollback {
    wharf: Duration,
    skopeo: Duration,
    /// `ledger verify`: process start, config, one ledger read.
    verify: Duration,
    /// `status`: the same plus the registry client that every stage command builds.
    status: Duration,
}

/// One rollback round: staging goes from B back to A, once by each contender.
fn rollback_round(fx: &Fixture, round: usize) -> Result<Rollback> {
    let [a, b] = &fx.images;
    fx.approve_and_promote(None, b)?;
    let verify = timed(|| {
        fx.xtask(CI, None, &["ledger", "verify", "--json"])
            .map(drop)
    })?;
    let status = timed(|| fx.xtask(CI, None, &["status", "--json"]).map(drop))?;
    let (mut wharf, mut skopeo) = (Duration::ZERO, Duration::ZERO);
    let mut ledger_says = b;
    for contender in order(round) {
        if contender == "wharf" {
            wharf = timed(|| {
                fx.xtask(CI, None, &["rollback", "staging", "--json"])
                    .map(drop)
            })?;
            ledger_says = a;
        } else {
            fx.set_staging_tag(b)?;
            let staging = fx.repo("app-staging");
            skopeo =
                timed(|| skopeo_copy(&format!("{staging}@{a}"), &format!("{staging}:staging")))?;
            // Back where the ledger says, so that wharf has nothing to repair.
            fx.set_staging_tag(ledger_says)?;
        }
    }
    Ok(Rollback {
        wharf,
        skopeo,
        verify,
        status,
    })
}

/// What a promotion round measured.
struct Promotion {
    wharf: Duration,
    skopeo: Duration,
    dry_run: Duration,
    copy_in_process: Duration,
    read_in_process: Duration,
    append_in_process: Duration,
    outcome: Value,
}

/// One promotion round: B from dev into a new, empty repository, once by each contender.
fn promotion_round(fx: &Fixture, round: usize) -> Result<Promotion> {
    let b = &fx.images[1];
    let config = fx.dir.path().join(format!("staging-{round}.toml"));
    std::fs::write(
        &config,
        stages(
            &fx.registry.host,
            &format!("app-staging-wharf-{round}"),
            fx.budget,
        ),
    )?;
    fx.approve(Some(&config), b)?;
    let dry_run = timed(|| {
        fx.xtask(
            CI,
            Some(&config),
            &["promote", "staging", "--dry-run", "--json"],
        )
        .map(drop)
    })?;
    let (mut wharf, mut skopeo) = (Duration::ZERO, Duration::ZERO);
    let mut outcome = Value::Null;
    for contender in order(round) {
        if contender == "wharf" {
            wharf = timed(|| -> Result<()> {
                let out = fx.xtask(CI, Some(&config), &["promote", "staging", "--json"])?;
                outcome = serde_json::from_slice(&out.stdout)?;
                Ok(())
            })?;
        } else {
            let to = fx.repo(&format!("app-staging-skopeo-{round}"));
            skopeo = timed(|| {
                skopeo_copy(&format!("{}@{b}", fx.repo("app")), &format!("{to}:staging"))
            })?;
        }
    }
    let from: Location = format!("{}@{b}", fx.repo("app")).parse()?;
    let to: Location = format!("{}@{b}", fx.repo(&format!("app-staging-lib-{round}"))).parse()?;
    let copy_in_process = timed(|| wharf::pipeline::copy::copy(&fx.client, &from, &to).map(drop))?;
    let read_in_process = timed(|| fx.ledger.read().map(drop))?;
    let append_in_process = timed(|| fx.verify(b))?;
    Ok(Promotion {
        wharf,
        skopeo,
        dry_run,
        copy_in_process,
        read_in_process,
        append_in_process,
        outcome,
    })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn run(args: Args) -> Result<()> {
    let runs = args.runs.max(1);
    eprintln!(
        "setting up: a loopback registry, two images of 4 x {} MiB in dev (not timed)",
        args.layer_mib
    );
    let fx = setup(&args)?;
    let backs = (0..runs)
        .map(|round| rollback_round(&fx, round))
        .collect::<Result<Vec<_>>>()?;
    let mut rounds = Vec::new();
    for round in 0..runs {
        rounds.push(promotion_round(&fx, round)?);
    }
    let (pw, ps) = (med(&rounds, |p| p.wharf), med(&rounds, |p| p.skopeo));
    let (dry, copy, read, append) = (
        med(&rounds, |p| p.dry_run),
        med(&rounds, |p| p.copy_in_process),
        med(&rounds, |p| p.read_in_process),
        med(&rounds, |p| p.append_in_process),
    );
    let (bw, bs) = (med(&backs, |r| r.wharf), med(&backs, |r| r.skopeo));
    let (verify, status) = (med(&backs, |r| r.verify), med(&backs, |r| r.status));
    let last = &rounds.last().expect("at least one round").outcome;
    println!(
        "{runs} rounds, medians, whole processes, contenders taking turns; an image of 4 x {} MiB in a loopback docker-registry:",
        args.layer_mib
    );
    println!(
        "  promotion: wharf {:.3} s, skopeo {:.3} s: {:.2}x (goal <= 2x)",
        secs(pw),
        secs(ps),
        secs(pw) / secs(ps)
    );
    println!(
        "    wharf: gates {}, copy by digest with the scan report ({} blobs mounted, {} bytes sent), ledger entry, tag; \
         each run into an empty repository of its own (a config per run, --config), as skopeo's",
        gate_names(&last["gates"]),
        last["copy"]["blobs_mounted"],
        last["copy"]["bytes_uploaded"]
    );
    println!(
        "  rollback: wharf {:.3} s, skopeo {:.3} s: {:.2}x (goal < 1 s and <= 1x)",
        secs(bw),
        secs(bs),
        secs(bw) / secs(bs)
    );
    println!(
        "  wharf's promotion split: `promote --dry-run` process (start, config, ledger read, evidence, gates) {:.3} s; \
         in process: copy by digest {:.3} s, ledger read {:.3} s, ledger append {:.3} s; the rest (repair check, the other ledger \
         reads, referrers, gates again in the append, tag) {:.3} s",
        secs(dry),
        secs(copy),
        secs(read),
        secs(append),
        secs(pw) - secs(dry) - secs(copy) - secs(append)
    );
    println!(
        "  the ledger (a git ref) held {} entries at the end; wharf reads the whole chain several times per command, so its times grow with it",
        fx.ledger.read()?.len()
    );
    println!(
        "  wharf's rollback split: `ledger verify` process (start, config, one ledger read) {:.3} s; \
         `status` process (the same and the registry client) {:.3} s; the rest (repair check, \
         ledger reads, append, tag) {:.3} s",
        secs(verify),
        secs(status),
        secs(bw) - secs(status)
    );
    Ok(())
}

/// The median of one measurement over rounds.
fn med<T>(rounds: &[T], f: impl Fn(&T) -> Duration) -> Duration {
    let mut times: Vec<Duration> = rounds.iter().map(f).collect();
    median(&mut times)
}

/// `tests, scan, size, approvals` from the outcome's gate list.
fn gate_names(gates: &Value) -> String {
    gates
        .as_array()
        .map(|gates| {
            gates
                .iter()
                .filter_map(|g| g["gate"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    /// The bench's stages stay a config that `promote` accepts, with the gates it claims to
    /// time: the run itself needs a registry and skopeo, this does not.
    #[test]
    fn the_stages_parse_and_validate_with_every_gate() {
        let text = super::stages("127.0.0.1:5000", "app-staging", 1 << 30);
        let config = wharf::pipeline::Config::parse(&text, "wharf.toml".as_ref()).unwrap();
        wharf_promote::validate(&config.stages).unwrap();
        let staging = &config.stages[1];
        assert_eq!(staging.from.as_deref(), Some("dev"));
        let gates = &staging.gates;
        assert!(gates.tests && gates.scan, "{gates:?}");
        assert_eq!(gates.max_image_bytes, Some(1 << 30));
        assert_eq!(gates.approvals.as_ref().map(|a| a.required), Some(1));
    }
}
