//! Promotion by digest (issue 12): `cargo xtask promote`, `approve`, `rollback`, `status`,
//! `history`, `ledger verify` and `dora` on fixture workspaces, against the real registry
//! (checked with skopeo) and in OCI layouts (checked with skopeo too), with the ledger in a
//! git ref, shared through a bare repository where runners share it.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use wharf_e2e::{built_digest, describe, fails_with, fixture_workspace, ok_json, run, xtask_in};

/// `cargo xtask ARGS` as `actor` (GITHUB_ACTOR is who the ledger records).
fn xt(root: &Path, args: &[&str], actor: &str) -> Output {
    xtask_in(root, args, &[("GITHUB_ACTOR", actor)])
}

/// What skopeo (not wharf) says a tag points at.
fn skopeo_digest(location: &str) -> String {
    let raw = run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        location,
    ]))
    .stdout;
    wharf::oci::Digest::sha256(&raw).to_string()
}

fn write(root: &Path, path: &str, text: &str) -> String {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// dev -> staging -> production in a real registry: the digest CI built and pushed reaches
/// production unchanged, no blob byte is sent within the registry, skopeo sees the stage,
/// version and date tags, the SBOM is readable from production, a missing approval and an
/// injected critical finding block with the gate named, webhooks hear every promotion.
#[test]
fn a_built_image_goes_from_dev_to_staging_to_production_by_digest() {
    if !wharf_e2e::require_skopeo() {
        return;
    }
    let Some(registry) = wharf_e2e::registry::Registry::try_start(wharf_e2e::registry::Auth::None)
    else {
        return;
    };
    let hooks = wharf_e2e::webhook::Receiver::start();
    let host = registry.host();
    let dev = format!("docker://{host}/team/app");
    let staging = format!("docker://{host}/team/app-staging");
    let production = format!("docker://{host}/team/app-prod");
    let ws = fixture_workspace(&format!(
        r#"[image]
package = "app"
[scan]
[push]
destination = "{dev}"
[ci]
steps = ["image", "scan"]

[[stages]]
name = "dev"
location = "{dev}"
gates = {{ tests = true, scan = true }}

[[stages]]
name = "staging"
from = "dev"
location = "{staging}"
gates = {{ tests = true, scan = true, max_image_bytes = 16777216 }}

[[stages]]
name = "production"
from = "staging"
location = "{production}"
semver_tags = true
date_tag = true
gates = {{ scan = true, approvals = {{ required = 1, approvers = ["alice", "bob"] }}, signature = {{ keys = ["cosign.pub"] }} }}

[[webhooks]]
url = "{url}"
"#,
        url = hooks.url()
    ));
    let root = ws.path();
    let db = root.join("target/empty-advisory-db");
    std::fs::create_dir_all(db.join("crates")).unwrap();
    let released = xtask_in(
        root,
        &["release", "--json"],
        &[
            ("WHARF_ADVISORY_DB", db.to_str().unwrap()),
            ("GITHUB_ACTOR", "ci"),
        ],
    );
    let built = built_digest(&released);

    let into_dev = ok_json(xt(root, &["promote", "dev", "--json"], "ci"));
    assert_eq!(into_dev["digest"], built.as_str());
    let into_staging = ok_json(xt(root, &["promote", "staging", "--json"], "ci"));
    assert_eq!(into_staging["digest"], built.as_str());
    assert_eq!(into_staging["copy"]["bytes_uploaded"], 0, "{into_staging}");
    assert!(into_staging["copy"]["blobs_mounted"].as_u64().unwrap() >= 2);

    // Production asks for an approval and a signature: neither is there, so both gates
    // block and say so.
    let prefix = root.join("cosign");
    let prefix = prefix.to_str().unwrap();
    ok_json(xt(
        root,
        &["keygen", "--output-key-prefix", prefix, "--json"],
        "ci",
    ));
    let blocked = xt(root, &["promote", "production"], "ci");
    fails_with(
        &blocked,
        3,
        &["approvals", "production", "signature", "has no signature"],
    );
    ok_json(xt(
        root,
        &["approve", "production", &built, "--json"],
        "alice",
    ));
    let unsigned = xt(root, &["promote", "production"], "ci");
    fails_with(&unsigned, 3, &["signature", "cargo xtask sign"]);
    // Signed in staging (where production takes it from) with the key the gate names.
    let key = format!("{prefix}.key");
    ok_json(xt(
        root,
        &[
            "sign",
            &format!("{staging}@{built}"),
            "--key",
            &key,
            "--json",
        ],
        "ci",
    ));
    let into_production = ok_json(xt(root, &["promote", "production", "--json"], "ci"));
    assert_eq!(into_production["digest"], built.as_str());
    assert_eq!(into_production["copy"]["bytes_uploaded"], 0);

    // The signature travelled with the image: it verifies in production.
    let verified = ok_json(xt(
        root,
        &[
            "verify",
            &format!("{production}:production"),
            "--key",
            &format!("{prefix}.pub"),
            "--json",
        ],
        "ci",
    ));
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["image"], built.as_str());

    // skopeo, not wharf: production's tags point at the digest CI built.
    assert_eq!(skopeo_digest(&format!("{production}:production")), built);
    let listed: Value = serde_json::from_slice(
        &run(std::process::Command::new("skopeo").args([
            "list-tags",
            "--tls-verify=false",
            &production,
        ]))
        .stdout,
    )
    .unwrap();
    let tags: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    for tag in ["production", "0.3.1", "0.3", &format!("production-{today}")] {
        assert!(tags.contains(&tag), "{tag} not in {tags:?}");
        assert_eq!(skopeo_digest(&format!("{production}:{tag}")), built);
    }
    // The SBOM travelled with the image.
    let sbom = xt(
        root,
        &[
            "referrers",
            &format!("{production}@{built}"),
            "--type",
            "sbom",
            "--get",
        ],
        "ci",
    );
    let sbom: Value =
        serde_json::from_slice(&sbom.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&sbom)));
    assert_eq!(sbom["bomFormat"], "CycloneDX");

    // An injected critical finding, attached to the image in staging, blocks production.
    let client = wharf::registry::Client::new(wharf::registry::Config::new()).unwrap();
    let subject: wharf::oci::Reference =
        format!("{}@{built}", staging.trim_start_matches("docker://"))
            .parse()
            .unwrap();
    let report = json!({
        "passed": false,
        "vulnerabilities": [{
            "id": "RUSTSEC-2099-0001", "package": "app", "version": "0.3.1",
            "title": "injected for the test", "date": "2099-01-01", "severity": "critical",
            "cvss": null, "cvss_vector": null, "patched": [], "fixed_version": null,
            "url": "https://rustsec.org/advisories/RUSTSEC-2099-0001", "aliases": [], "line": null,
        }],
        "warnings": [],
    });
    client
        .attach(
            &subject,
            &wharf::registry::Artifact {
                artifact_type: wharf::oci::media_type::WHARF_SCAN.into(),
                media_type: "application/json".into(),
                bytes: serde_json::to_vec(&report).unwrap(),
                annotations: Default::default(),
                fallback_suffix: "scan".into(),
            },
        )
        .unwrap();
    let blocked = xt(root, &["promote", "production", "--dry-run"], "ci");
    fails_with(&blocked, 3, &["scan", "RUSTSEC-2099-0001"]);

    let verified = ok_json(xt(root, &["ledger", "verify", "--json"], "ci"));
    // The verification, three promotions and the approval.
    assert_eq!(verified["entries"], 5, "{verified}");
    let status = ok_json(xt(root, &["status", "--json"], "ci"));
    let stages: Vec<&Value> = status.as_array().unwrap().iter().collect();
    assert!(
        stages.iter().all(|s| s["digest"] == built.as_str()),
        "{status}"
    );
    let history = ok_json(xt(root, &["history", "production", "--json"], "ci"));
    assert!(history.as_array().unwrap().len() >= 2, "{history}");
    let dora = ok_json(xt(root, &["dora", "--json"], "ci"));
    assert!(dora.to_string().contains('1'), "{dora}");

    let received = hooks.received();
    let promotions = received
        .iter()
        .filter(|m| m["event"] == "promotion")
        .count();
    assert_eq!(promotions, 3, "{received:?}");
    assert!(
        received.iter().any(|m| m["event"] == "gate_failed"),
        "{received:?}"
    );
}

const LAYOUT_STAGES: &str = r#"[image]
package = "app"
[ci]
steps = ["image"]

[[stages]]
name = "dev"
location = "oci:target/wharf/oci/app"
gates = { tests = true }
"#;

/// The staging stage of the gate tests, with `gates`.
fn staging(gates: &str) -> String {
    format!(
        "{LAYOUT_STAGES}\n[[stages]]\nname = \"staging\"\nfrom = \"dev\"\nlocation = \"oci:target/wharf/stages/staging\"\n[stages.gates]\n{gates}\n"
    )
}

/// Every gate the issue lists blocks with its name and evidence, in OCI layouts (the
/// embedded default, no registry): a missing approval, an approval by the author, one for
/// another digest, an unsigned one where signed are required, soak time, and a p95 11%
/// slower against a 10% limit; then a signed approval and a 10% p95 let it through.
#[test]
fn each_gate_blocks_with_its_evidence() {
    let ws = fixture_workspace(LAYOUT_STAGES);
    let root = ws.path();
    let built = built_digest(&xtask_in(
        root,
        &["ci", "--json"],
        &[("GITHUB_ACTOR", "ci")],
    ));
    ok_json(xt(root, &["promote", "dev", "--json"], "ci"));
    let config =
        |name: &str, gates: &str| write(root, &format!("configs/{name}.toml"), &staging(gates));
    let promote =
        |config: &str, actor: &str| xt(root, &["--config", config, "promote", "staging"], actor);

    let approvals = config(
        "approvals",
        "approvals = { required = 1, approvers = [\"alice\", \"bob\", \"t@example.com\"] }",
    );
    fails_with(&promote(&approvals, "ci"), 3, &["approvals", "0 of 1"]);
    // t@example.com wrote the fixture's commit, the image's revision.
    ok_json(xt(
        root,
        &[
            "--config", &approvals, "approve", "staging", &built, "--json",
        ],
        "t@example.com",
    ));
    fails_with(&promote(&approvals, "ci"), 3, &["approvals", "author"]);
    let other = format!("sha256:{}", "ab".repeat(32));
    ok_json(xt(
        root,
        &[
            "--config", &approvals, "approve", "staging", &other, "--json",
        ],
        "alice",
    ));
    fails_with(&promote(&approvals, "ci"), 3, &["approvals", &other[..19]]);

    // Signed approvals: bob's unsigned one does not count, his signed one does.
    let key = root.join("bob_key");
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f"])
        .arg(&key));
    let public = std::fs::read_to_string(root.join("bob_key.pub")).unwrap();
    write(root, "signers", &format!("bob {public}"));
    let signed = config(
        "signed",
        "approvals = { required = 1, approvers = [\"bob\"], signed = true, allowed_signers = \"signers\" }",
    );
    ok_json(xt(
        root,
        &["--config", &signed, "approve", "staging", &built, "--json"],
        "bob",
    ));
    fails_with(&promote(&signed, "ci"), 3, &["approvals", "bob"]);

    let soak = config("soak", "soak_minutes = 60");
    fails_with(&promote(&soak, "ci"), 3, &["soak", "60"]);

    write(
        root,
        "bench/base.json",
        r#"{"benchmarks": [{"name": "http_get", "p95_ns": 1000000}]}"#,
    );
    write(
        root,
        "bench/slow.json",
        r#"{"benchmarks": [{"name": "http_get", "p95_ns": 1110000}]}"#,
    );
    write(
        root,
        "bench/ok.json",
        r#"{"benchmarks": [{"name": "http_get", "p95_ns": 1100000}]}"#,
    );
    let slow = config(
        "slow",
        "benchmark = { baseline = \"bench/base.json\", current = \"bench/slow.json\", max_regression_percent = 10 }",
    );
    fails_with(
        &promote(&slow, "ci"),
        3,
        &["benchmark", "http_get", "11.0%"],
    );

    // What passes: bob's signed approval, a p95 exactly 10% slower.
    ok_json(xt(
        root,
        &[
            "--config",
            &signed,
            "approve",
            "staging",
            &built,
            "--sign",
            key.to_str().unwrap(),
            "--json",
        ],
        "bob",
    ));
    // The smoke test: nothing listening fails it; an endpoint that answers 503 once, then
    // 200, passes on the retry (both requests counted at the endpoint).
    let closed = wharf_e2e::free_port();
    let dead = config(
        "dead",
        &format!(
            "smoke = {{ url = \"http://127.0.0.1:{closed}/health\", retries = 1, within_secs = 5 }}"
        ),
    );
    fails_with(&promote(&dead, "ci"), 3, &["smoke", "health"]);
    let (endpoint, requests) = flaky_endpoint(1);
    // A webhook nobody listens to: the promotion goes on, with a warning.
    let passing = config(
        "passing",
        &format!(
            "approvals = {{ required = 1, approvers = [\"bob\"], signed = true, allowed_signers = \"signers\" }}\nbenchmark = {{ baseline = \"bench/base.json\", current = \"bench/ok.json\", max_regression_percent = 10 }}\nsmoke = {{ url = \"http://{}/health\", retries = 3, within_secs = 30 }}\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{closed}/hook\"\n",
            endpoint.host()
        ),
    );
    let out = xt(
        root,
        &["--config", &passing, "promote", "staging", "--json"],
        "ci",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: webhook"),
        "{}",
        describe(&out)
    );
    let promoted = ok_json(out);
    assert_eq!(promoted["digest"], built.as_str());
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        skopeo_digest(&format!(
            "oci:{}:staging",
            root.join("target/wharf/stages/staging").display()
        )),
        built
    );
}

/// An HTTP endpoint on loopback that answers 503 to its first `failures` requests, then 200,
/// and counts them.
fn flaky_endpoint(
    failures: usize,
) -> (
    wharf_e2e::registry::http::Server,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    use wharf_e2e::registry::http;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = http::Server::start("smoke", {
        let count = count.clone();
        move |stream, _| {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut writer = stream.try_clone().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            while let Ok(Some(_)) = http::read_head(&mut reader) {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (status, reason) = if n < failures {
                    (503, "Service Unavailable")
                } else {
                    (200, "OK")
                };
                if http::respond(&mut writer, status, reason, &[], b"", false).is_err() {
                    return;
                }
            }
        }
    })
    .unwrap();
    (server, count)
}

/// The tags of a stage in a layout, as skopeo reads them.
fn layout_tag(root: &Path, dir: &str, tag: &str) -> String {
    skopeo_digest(&format!("oci:{}:{tag}", root.join(dir).display()))
}

/// Two builds promoted in turn; rollback goes back one at a time to the first, then says
/// there is nothing left; a process killed with SIGKILL between the ledger write and the tag
/// move leaves a tag the next command moves to where the ledger says.
#[test]
fn rollback_and_a_crash_between_the_ledger_and_the_tag_are_repaired() {
    if !wharf_e2e::require_skopeo() {
        return;
    }
    let hooks = wharf_e2e::webhook::Receiver::start();
    let ws = fixture_workspace(&format!(
        "{LAYOUT_STAGES}\n[[webhooks]]\nurl = \"{}\"\n",
        hooks.url()
    ));
    let root = ws.path();
    let first = built_digest(&xtask_in(
        root,
        &["ci", "--json"],
        &[("GITHUB_ACTOR", "ci")],
    ));
    ok_json(xt(root, &["promote", "dev", "--json"], "ci"));
    write(
        root,
        "src/main.rs",
        "fn main() {\n    println!(\"app 2\");\n}\n",
    );
    let second = built_digest(&xtask_in(
        root,
        &["ci", "--json"],
        &[("GITHUB_ACTOR", "ci")],
    ));
    assert_ne!(first, second);
    ok_json(xt(root, &["promote", "dev", "--json"], "ci"));
    let dev = "target/wharf/oci/app";
    assert_eq!(layout_tag(root, dev, "dev"), second);

    let back = ok_json(xt(root, &["rollback", "dev", "--json"], "ci"));
    assert_eq!(back["to"], first.as_str());
    assert_eq!(layout_tag(root, dev, "dev"), first);
    fails_with(
        &xt(root, &["rollback", "dev"], "ci"),
        2,
        &["nothing to roll back to"],
    );

    // Promote the second again, but kill the process right after its ledger entry.
    let marker = root.join("paused");
    let mut child = std::process::Command::new(wharf_e2e::xtask_binary())
        .args(["promote", "dev", "--digest", &second])
        .env("WHARF_WORKSPACE", root)
        .env("GITHUB_ACTOR", "ci")
        .env("WHARF_PAUSE_AFTER_LEDGER_WRITE", &marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Waits for the event (the marker file), bounded by a count of polls, not a clock.
    let mut polls = 0;
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the promotion ended before its pause"
        );
        polls += 1;
        assert!(polls < 6000, "the promotion never reached its ledger write");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run(std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]));
    let _ = child.wait();
    // The ledger says second, the tag still says first: status shows it, the next
    // command repairs it.
    let out = xt(root, &["status", "--json"], "ci");
    let drift = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        drift.contains(":dev points at") && drift.contains(&format!("the ledger says {second}")),
        "{drift}"
    );
    let status = ok_json(out);
    assert_eq!(status[0]["digest"], second.as_str(), "{status}");
    assert_eq!(layout_tag(root, dev, "dev"), first);
    let repaired = xt(root, &["rollback", "dev", "--dry-run", "--json"], "ci");
    assert!(repaired.status.success(), "{}", describe(&repaired));
    let out = xt(
        root,
        &["promote", "dev", "--digest", &second, "--dry-run"],
        "ci",
    );
    assert!(out.status.success(), "{}", describe(&out));
    // A dry run changes nothing; approving (a change) repairs first.
    assert_eq!(layout_tag(root, dev, "dev"), first);
    let fixed = xt(root, &["rollback", "dev", "--json"], "ci");
    assert!(fixed.status.success(), "{}", describe(&fixed));
    assert!(
        String::from_utf8_lossy(&fixed.stderr).contains("repaired"),
        "{}",
        describe(&fixed)
    );
    assert_eq!(layout_tag(root, dev, "dev"), first);
    ok_json(xt(root, &["ledger", "verify", "--json"], "ci"));
    // One message per promotion and rollback that happened (the killed one sent none).
    let received = hooks.received();
    let count = |event: &str| received.iter().filter(|m| m["event"] == event).count();
    assert_eq!(
        (count("promotion"), count("rollback")),
        (2, 2),
        "{received:?}"
    );
    let last = received.last().unwrap();
    assert_eq!(
        (&last["stage"], &last["digest"]),
        (&json!("dev"), &json!(first))
    );
}

/// 20 promotions and rollbacks at once, from separate processes, with the ledger shared
/// through a bare git repository: the ledger verifies, holds all 20 new entries, and the
/// stage's tag is its last entry's digest.
#[test]
fn concurrent_promotions_and_rollbacks_lose_nothing() {
    if !wharf_e2e::require_skopeo() {
        return;
    }
    let ws = fixture_workspace(LAYOUT_STAGES);
    let root = ws.path();
    let remote = tempfile::tempdir().unwrap();
    run(std::process::Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(remote.path()));
    run(std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["remote", "add", "origin"])
        .arg(remote.path()));
    let env = [("GITHUB_ACTOR", "ci"), ("WHARF_LEDGER_REMOTE", "origin")];
    let first = built_digest(&xtask_in(root, &["ci", "--json"], &env));
    write(
        root,
        "src/main.rs",
        "fn main() {\n    println!(\"app 2\");\n}\n",
    );
    let second = built_digest(&xtask_in(root, &["ci", "--json"], &env));
    // A deep enough history that 10 rollbacks in any order have something to go back to.
    for round in 0..11 {
        let digest = if round % 2 == 0 { &first } else { &second };
        ok_json(xtask_in(
            root,
            &["promote", "dev", "--digest", digest, "--json"],
            &env,
        ));
    }
    let before = ok_json(xtask_in(root, &["ledger", "verify", "--json"], &env))["entries"]
        .as_u64()
        .unwrap();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut command = std::process::Command::new(wharf_e2e::xtask_binary());
            if i % 2 == 0 {
                let digest = if i % 4 == 0 { &first } else { &second };
                command.args(["promote", "dev", "--digest", digest]);
            } else {
                command.args(["rollback", "dev"]);
            }
            command
                .env("WHARF_WORKSPACE", root)
                .envs(env)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let after = ok_json(xtask_in(root, &["ledger", "verify", "--json"], &env));
    assert_eq!(after["entries"].as_u64().unwrap(), before + 20, "{after}");
    // The shared copy, read by git itself, holds them too.
    let shared = run(std::process::Command::new("git")
        .arg("-C")
        .arg(remote.path())
        .args(["cat-file", "blob", "refs/wharf/ledger:ledger.jsonl"]))
    .stdout;
    assert_eq!(
        shared.iter().filter(|b| **b == b'\n').count() as u64,
        before + 20
    );
    let status = ok_json(xtask_in(root, &["status", "--json"], &env));
    assert_eq!(
        layout_tag(root, "target/wharf/oci/app", "dev"),
        status[0]["digest"].as_str().unwrap()
    );
}

/// `[push] promote_to`: `cargo xtask release` pushes, records the image as verified, then
/// its `promote-dev` step promotes exactly that digest into dev.
#[test]
fn a_release_can_end_by_promoting_its_image() {
    let Some(registry) = wharf_e2e::registry::Registry::try_start(wharf_e2e::registry::Auth::None)
    else {
        return;
    };
    let dev = format!("docker://{}/team/app", registry.host());
    // The release signs what it pushes (key from the variable the release workflow fills
    // from a secret) and attaches provenance naming the workflow; the dev stage asks for
    // both, staging for provenance from another workflow.
    let workflow = "https://github.com/o/r/.github/workflows/release.yml";
    let ws = fixture_workspace(&format!(
        r#"[image]
package = "app"
[push]
destination = "{dev}"
promote_to = "dev"
sign = {{}}
[ci]
steps = ["image"]

[[stages]]
name = "dev"
location = "{dev}"
gates = {{ tests = true, signature = {{ keys = ["release.pub"] }}, provenance = {{ keys = ["release.pub"], builder = "{workflow}", source = "https://github.com/o/r" }} }}

[[stages]]
name = "staging"
from = "dev"
location = "{dev}-staging"
gates = {{ provenance = {{ keys = ["release.pub"], builder = "https://github.com/o/other/.github/workflows/release.yml" }} }}
"#
    ));
    let root = ws.path();
    let prefix = root.join("release");
    ok_json(xt(
        root,
        &[
            "keygen",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
            "--json",
        ],
        "ci",
    ));
    let private_key = std::fs::read_to_string(root.join("release.key")).unwrap();
    std::fs::remove_file(root.join("release.key")).unwrap();
    // Without the key's secret the release stops before it builds or pushes anything.
    let keyless = xtask_in(root, &["release"], &[("GITHUB_ACTOR", "ci")]);
    fails_with(
        &keyless,
        2,
        &["WHARF_SIGNING_KEY is not set", "[push] sign.key"],
    );
    assert!(
        !String::from_utf8_lossy(&keyless.stderr).contains("started"),
        "no step ran: {}",
        describe(&keyless)
    );
    let status = ok_json(xt(root, &["status", "--json"], "ci"));
    assert!(
        status[0]["digest"].is_null(),
        "nothing was recorded: {status}"
    );
    let out = xtask_in(
        root,
        &["release", "--json"],
        &[
            ("GITHUB_ACTOR", "ci"),
            ("WHARF_SIGNING_KEY", &private_key),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            (
                "GITHUB_WORKFLOW_REF",
                "o/r/.github/workflows/release.yml@refs/tags/v0.3.1",
            ),
            ("GITHUB_RUN_ID", "7"),
        ],
    );
    let built = built_digest(&out);
    let (finished, order) = wharf_e2e::finished_steps(&out);
    assert_eq!(
        order,
        ["image", "push", "sign", "record", "promote-dev"],
        "{}",
        describe(&out)
    );
    assert_eq!(finished[4]["outputs"]["digest"]["value"], built.as_str());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY")
            && !String::from_utf8_lossy(&out.stderr).contains("PRIVATE KEY"),
        "the key never reaches the output"
    );
    let public = root.join("release.pub");
    let verified = ok_json(xt(
        root,
        &[
            "verify",
            &format!("{dev}@{built}"),
            "--key",
            public.to_str().unwrap(),
            "--provenance",
            "--json",
        ],
        "ci",
    ));
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(
        verified["provenance"][0]["builder"],
        format!("{workflow}@refs/tags/v0.3.1")
    );
    // Staging wants provenance from another workflow: blocked, both builders named.
    let blocked = xt(root, &["promote", "staging"], "ci");
    fails_with(
        &blocked,
        3,
        &[
            "provenance",
            "built by https://github.com/o/r/",
            "not https://github.com/o/other/",
        ],
    );
    let status = ok_json(xt(root, &["status", "--json"], "ci"));
    assert_eq!(status[0]["digest"], built.as_str());
    assert_eq!(status[0]["by"], "ci");
}
