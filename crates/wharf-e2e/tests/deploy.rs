//! Blue-green deploys on the real Docker engine (issue 14): `cargo xtask deploy`, `deploy
//! --rollback`, `deploy status` and `smoke` on a fixture workspace whose stage holds three
//! builds of the example service: A and B answer `/health` with `ok A` and `ok B`, and the
//! broken one fails its health check (`HEALTH_FAIL=1`). A client polls the stage's stable
//! address every 100 ms over a fresh connection throughout, and must never see a failure.
//! Containers are checked with the `docker` CLI, the ledger through `history` and `dora`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf::oci::Digest;
use wharf_e2e::{
    describe, example_variant, fails_with, fixture_workspace, free_port, ok_json, record_verified,
    run, xtask_in,
};

fn xt(root: &Path, args: &[&str]) -> Output {
    xtask_in(root, args, &[("GITHUB_ACTOR", "deployer")])
}

/// GET /health over a new connection: `Ok(body)` for a 200, else what went wrong.
fn get_health(port: u16) -> Result<String, String> {
    match wharf_e2e::http_get(port, "/health")? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("status {status}: {body}")),
    }
}

/// Each answer the poller got, and when.
type Answers = Arc<Mutex<Vec<(Instant, Result<String, String>)>>>;

/// A client polling the stage every 100 ms, recording each answer.
struct Poller {
    stop: Arc<AtomicBool>,
    seen: Answers,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let answer = get_health(port);
                    seen.lock().unwrap().push((Instant::now(), answer));
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Poller {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// The answers since `since`.
    fn since(&self, since: Instant) -> Vec<Result<String, String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, answer)| answer.clone())
            .collect()
    }

    /// Waits until at least `n` more answers have come in (the poller runs on its own).
    fn wait_for(&self, n: usize) {
        let start = self.seen.lock().unwrap().len();
        while self.seen.lock().unwrap().len() < start + n {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// Takes the stage down whatever happens, so no proxy or container outlives the test.
struct Down<'a>(&'a Path, &'static str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = xt(self.0, &["deploy", self.1, "--down"]);
    }
}

/// A fixture workspace whose one stage, `stage` in `location`, deploys to the engine on
/// 127.0.0.1:`port` with the `[stages.deploy.docker]` keys `docker` (one per line); an
/// earlier run's containers of that stage are removed first.
fn docker_stage(stage: &str, location: &str, port: u16, docker: &str) -> tempfile::TempDir {
    remove_leftovers(&format!("app/{stage}"));
    fixture_workspace(&format!(
        "[image]\npackage = \"app\"\n\n[[stages]]\nname = \"{stage}\"\nlocation = \"{location}\"\n\n\
         [stages.deploy.docker]\nlisten = \"127.0.0.1:{port}\"\n{docker}\n"
    ))
}

/// Removes the containers an earlier run of a test left (killed before its cleanup): each
/// test owns the label of its stage.
fn remove_leftovers(key: &str) {
    for (name, _) in containers_of(key) {
        run(Command::new("docker").args(["rm", "-f", &name]));
    }
}

/// The dev stage's containers as the docker CLI lists them: (name, digest label).
fn containers() -> Vec<(String, String)> {
    containers_of("app/dev")
}

/// The containers of `app/stage`, from the docker CLI: (name, digest label).
fn containers_of(key: &str) -> Vec<(String, String)> {
    let out = run(Command::new("docker").args([
        "ps",
        "--all",
        "--filter",
        &format!("label=dev.wharf.deploy={key}"),
        "--format",
        "{{.Names}} {{.Label \"dev.wharf.digest\"}}",
    ]));
    let mut list: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    list.sort();
    list
}

fn deploy_json(root: &Path, args: &[&str]) -> Value {
    let mut all = vec!["deploy"];
    all.extend_from_slice(args);
    all.push("--json");
    ok_json(xt(root, &all))["report"].clone()
}

#[test]
fn blue_green_deploys_fail_safe_and_roll_back_while_a_poller_sees_no_failure() {
    if !wharf_e2e::require_docker() {
        return;
    }
    remove_leftovers("app/dev");
    let port = free_port();
    let ws = fixture_workspace(&format!(
        r#"[image]
package = "app"

[[stages]]
name = "dev"
location = "oci:target/wharf/stages/dev"

[stages.deploy]
smoke = [{{ path = "/health", status = 200, body_contains = "ok", max_latency_ms = 5000 }}]

[stages.deploy.docker]
listen = "127.0.0.1:{port}"
stop_timeout_secs = 10
memory = "64m"
cpus = "0.5"
health = {{ path = "/health", interval_ms = 100, timeout_ms = 2000, retries = 3, start_period_ms = 1000 }}
"#
    ));
    let root = ws.path();
    let _down = Down(root, "dev");
    let images = root.join("images");
    let a = example_variant(&images, "a", &["HELLO_VERSION=A"]);
    let b = example_variant(&images, "b", &["HELLO_VERSION=B"]);
    let broken = example_variant(&images, "broken", &["HELLO_VERSION=C", "HEALTH_FAIL=1"]);
    let promote = |digest: &Digest| {
        record_verified(root, digest, "oci:images");
        ok_json(xt(
            root,
            &["promote", "dev", "--digest", &digest.to_string(), "--json"],
        ));
    };

    // A: the first deploy starts the proxy.
    promote(&a);
    let plan =
        String::from_utf8_lossy(&xt(root, &["deploy", "dev", "--dry-run"]).stdout).to_string();
    assert!(
        plan.contains("start app-dev-blue") && plan.contains("start the proxy"),
        "{plan}"
    );
    let first = deploy_json(root, &["dev"]);
    assert_eq!(first["outcome"], "healthy", "{first}");
    assert_eq!(get_health(port), Ok("ok A".to_string()));
    let poller = Poller::start(port);
    poller.wait_for(3);

    // B: next to A, then the switch; A is stopped and removed.
    promote(&b);
    let deployed = deploy_json(root, &["dev"]);
    let switched = Instant::now();
    assert_eq!(deployed["outcome"], "healthy", "{deployed}");
    assert_eq!(deployed["previous"], a.to_string());
    assert_eq!(containers(), [("app-dev-green".to_string(), b.to_string())]);
    poller.wait_for(3);
    let after = poller.since(switched);
    assert!(
        !after.is_empty() && after.iter().all(|r| r.as_deref() == Ok("ok B")),
        "after the switch the poller must see B only: {after:?}"
    );
    let again = deploy_json(root, &["dev"]);
    assert_eq!(again["outcome"], "unchanged", "{again}");

    // The broken build: never healthy, removed; B keeps serving.
    promote(&broken);
    let failed = xt(root, &["deploy", "dev"]);
    fails_with(
        &failed,
        1,
        &["did not become healthy", "503", "HEALTH_FAIL=1"],
    );
    assert_eq!(containers(), [("app-dev-green".to_string(), b.to_string())]);
    let tried = Instant::now();
    poller.wait_for(3);
    assert!(
        poller
            .since(tried)
            .iter()
            .all(|r| r.as_deref() == Ok("ok B"))
    );

    // Back to the last healthy deploy before B: A.
    let back = deploy_json(root, &["dev", "--rollback"]);
    let rolled = Instant::now();
    assert_eq!(back["outcome"], "healthy", "{back}");
    assert_eq!(back["digest"], a.to_string());
    assert_eq!(containers(), [("app-dev-blue".to_string(), a.to_string())]);
    poller.wait_for(3);
    assert!(
        poller
            .since(rolled)
            .iter()
            .all(|r| r.as_deref() == Ok("ok A"))
    );

    let seen = poller.finish();
    let failures: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "the poller saw failures: {failures:?}");
    assert!(seen.len() >= 12, "{} answers", seen.len());
    for version in ["ok A", "ok B"] {
        assert!(
            seen.iter().any(|r| r.as_deref() == Ok(version)),
            "never saw {version}"
        );
    }

    // The ledger: four deploys (A, B, the failed one, the rollback to A), and DORA counts
    // the failure.
    let history = ok_json(xt(root, &["history", "dev", "--json"]));
    let deploys: Vec<(String, String, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "deploy")
        .map(|e| {
            (
                e["digest"].as_str().unwrap().to_string(),
                e["evidence"]["outcome"].as_str().unwrap().to_string(),
                e["evidence"]["rollback"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expected = [
        (a.to_string(), "succeeded".to_string(), false),
        (b.to_string(), "succeeded".to_string(), false),
        (broken.to_string(), "failed".to_string(), false),
        (a.to_string(), "succeeded".to_string(), true),
    ];
    assert_eq!(deploys, expected, "{history}");
    ok_json(xt(root, &["ledger", "verify", "--json"]));

    let status = ok_json(xt(root, &["deploy", "status", "--json"]));
    assert_eq!(status[0]["status"]["serving"], a.to_string(), "{status}");
    assert_eq!(status[0]["status"]["entry_up"], true);
    // The ledger's current digest is the broken one: status says so.
    assert_eq!(status[0]["promoted"], broken.to_string());

    let smoke = ok_json(xt(root, &["smoke", "dev", "--json"]));
    assert_eq!(smoke[0]["passed"], true, "{smoke}");

    let down = xt(root, &["deploy", "dev", "--down"]);
    assert!(down.status.success(), "{}", describe(&down));
    assert!(containers().is_empty());
    assert!(get_health(port).is_err(), "nothing listens after --down");
}

/// A service in std alone: answers every request with `released`, on `LISTEN_ADDR`.
const SERVER: &str = r#"use std::io::{Read, Write};

fn main() {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = std::net::TcpListener::bind(&addr).expect("binding LISTEN_ADDR");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nreleased\n",
        );
    }
}
"#;

/// The deploy step: a release that promotes into a stage with a deploy target runs what it
/// pushed there, as its last step.
#[test]
fn a_release_ends_by_deploying_what_it_promoted() {
    if !wharf_e2e::require_docker() {
        return;
    }
    let Some(registry) = wharf_e2e::registry::Registry::try_start(wharf_e2e::registry::Auth::None)
    else {
        return;
    };
    let dev = format!("docker://{}/team/released", registry.host());
    let port = free_port();
    let ws = fixture_workspace(&format!(
        r#"[image]
package = "app"
ports = ["8080/tcp"]
[push]
destination = "{dev}"
promote_to = "qa"
[ci]
steps = ["image"]

[[stages]]
name = "qa"
location = "{dev}"
[stages.deploy]
smoke = [{{ path = "/", body_contains = "released" }}]
[stages.deploy.docker]
listen = "127.0.0.1:{port}"
stop_timeout_secs = 1
health = {{ path = "/", interval_ms = 100, start_period_ms = 5000 }}
"#
    ));
    let root = ws.path();
    std::fs::write(root.join("src/main.rs"), SERVER).unwrap();
    remove_leftovers("app/qa");
    let _down = Down(root, "qa");
    let out = xt(root, &["release", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let (finished, order) = wharf_e2e::finished_steps(&out);
    assert_eq!(
        order,
        ["image", "push", "record", "promote-qa", "deploy-qa"],
        "{}",
        describe(&out)
    );
    let pushed = &finished[3]["outputs"]["digest"]["value"];
    assert_eq!(&finished[4]["outputs"]["digest"]["value"], pushed);
    // The docker CLI sees the container of that digest, and the stage answers through the
    // proxy.
    assert_eq!(
        containers_of("app/qa"),
        [(
            "app-qa-blue".to_string(),
            pushed.as_str().unwrap().to_string()
        )]
    );
    let answer = wharf_e2e::http_status(port, "/");
    assert_eq!(answer, Some(200));
    let smoke = ok_json(xt(root, &["smoke", "qa", "--json"]));
    assert_eq!(smoke[0]["passed"], true, "{smoke}");
}

/// An image with a HEALTHCHECK is judged by the engine running it, not by HTTP probes: the
/// stage's probe path here answers 404, so only the image's check can pass. The images are
/// built by `docker build` on top of the example (copied into the engine by wharf) and
/// copied back out into the stage's layout.
#[test]
fn an_image_healthcheck_is_the_engines_verdict() {
    if !wharf_e2e::require_docker() {
        return;
    }
    let port = free_port();
    let ws = docker_stage(
        "hc",
        "oci:target/wharf/stages/hc",
        port,
        r#"stop_timeout_secs = 10
health = { path = "/no-such-path", interval_ms = 100, start_period_ms = 0, retries = 1 }"#,
    );
    let root = ws.path();
    let _down = Down(root, "hc");
    let images = root.join("images");
    let mut digests = Vec::new();
    for (tag, env) in [("ok", "HELLO_VERSION=H"), ("failing", "HEALTH_FAIL=1")] {
        example_variant(&images, &format!("{tag}-base"), &[env]);
        let base = format!("wharf-e2e-hc-base:{tag}");
        let layout = format!("oci:{}:{tag}-base", images.display());
        ok_json(xt(
            root,
            &["copy", &layout, &format!("docker-daemon:{base}"), "--json"],
        ));
        let context = root.join(format!("context-{tag}"));
        std::fs::create_dir_all(&context).unwrap();
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM {base}\nHEALTHCHECK --interval=1s --timeout=3s --retries=2 CMD [\"/app/hello-service\", \"--check\"]\n"
            ),
        )
        .unwrap();
        let built = format!("wharf-e2e-hc:{tag}");
        run(Command::new("docker")
            .args(["build", "--quiet", "-t", &built])
            .arg(&context)
            .env("DOCKER_BUILDKIT", "0"));
        let copied = ok_json(xt(
            root,
            &[
                "copy",
                &format!("docker-daemon:{built}"),
                &format!("oci:{}:{tag}", images.display()),
                "--json",
            ],
        ));
        let digest: Digest = copied["digest"].as_str().unwrap().parse().unwrap();
        for name in [&base, &built] {
            run(Command::new("docker").args(["rmi", name]));
        }
        digests.push(digest);
    }
    let promote = |digest: &Digest| {
        record_verified(root, digest, "oci:images");
        ok_json(xt(
            root,
            &["promote", "hc", "--digest", &digest.to_string(), "--json"],
        ));
    };

    promote(&digests[0]);
    let healthy = deploy_json(root, &["hc"]);
    assert_eq!(healthy["outcome"], "healthy", "{healthy}");
    assert!(
        healthy["health"]["check"]
            .as_str()
            .unwrap()
            .contains("HEALTHCHECK"),
        "{healthy}"
    );
    assert_eq!(get_health(port), Ok("ok H".to_string()));

    promote(&digests[1]);
    let failed = xt(root, &["deploy", "hc"]);
    fails_with(&failed, 1, &["HEALTHCHECK", "unhealthy", "503"]);
    assert_eq!(
        get_health(port),
        Ok("ok H".to_string()),
        "the first one still serves"
    );
    assert_eq!(
        containers_of("app/hc"),
        [("app-hc-blue".to_string(), digests[0].to_string())]
    );
}

/// A stable address something else holds: the proxy cannot start, so the deploy fails
/// naming the address, removes the container it started, and records the failure.
#[test]
fn a_stage_address_in_use_fails_the_deploy_and_leaves_nothing_running() {
    if !wharf_e2e::require_docker() {
        return;
    }
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let ws = docker_stage(
        "busy",
        "oci:target/wharf/stages/busy",
        port,
        r#"health = { path = "/health", interval_ms = 100 }"#,
    );
    let root = ws.path();
    let _down = Down(root, "busy");
    let digest = example_variant(&root.join("images"), "a", &["HELLO_VERSION=A"]);
    record_verified(root, &digest, "oci:images");
    ok_json(xt(root, &["promote", "busy", "--json"]));
    let failed = xt(root, &["deploy", "busy"]);
    fails_with(
        &failed,
        1,
        &["starting the proxy", &format!("binding 127.0.0.1:{port}")],
    );
    assert!(
        containers_of("app/busy").is_empty(),
        "{}",
        describe(&failed)
    );
    let history = ok_json(xt(root, &["history", "busy", "--json"]));
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["evidence"]["outcome"].as_str()),
        (Some("deploy"), Some("failed")),
        "{history}"
    );
    drop(squatter);
}

/// Two deploys of one stage at once: the lock lets one through at a time, and a deploy
/// planned before the other finished refuses its stale plan. Whatever order they land in,
/// the stage ends with one container, the one the proxy serves.
#[test]
fn concurrent_deploys_of_a_stage_leave_it_consistent() {
    if !wharf_e2e::require_docker() {
        return;
    }
    let port = free_port();
    let ws = docker_stage(
        "race",
        "oci:images",
        port,
        r#"health = { path = "/health", interval_ms = 100 }"#,
    );
    let root = ws.path();
    let _down = Down(root, "race");
    let images = root.join("images");
    let a = example_variant(&images, "a", &["HELLO_VERSION=A"]);
    let b = example_variant(&images, "b", &["HELLO_VERSION=B"]);
    let c = example_variant(&images, "c", &["HELLO_VERSION=C"]);
    deploy_json(root, &["race", "--digest", &a.to_string()]);
    let racers: Vec<_> = [&b, &c]
        .into_iter()
        .map(|digest| {
            Command::new(wharf_e2e::xtask_binary())
                .args(["deploy", "race", "--digest", &digest.to_string()])
                .env("WHARF_WORKSPACE", root)
                .env("GITHUB_ACTOR", "deployer")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = racers
        .into_iter()
        .map(|r| r.wait_with_output().unwrap())
        .collect();
    assert!(
        outs.iter().any(|o| o.status.success()),
        "{}",
        describe(&outs[0])
    );
    for out in outs.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("another deploy of race is running")
                || stderr.contains("race changed since the plan"),
            "{}",
            describe(out)
        );
    }
    // A refused deploy never started: the ledger records only the ones that ran.
    let history = ok_json(xt(root, &["history", "race", "--json"]));
    let deploys = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "deploy")
        .count();
    let succeeded = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(deploys, 1 + succeeded, "{history}");
    let status = ok_json(xt(root, &["deploy", "status", "--json"]));
    let serving = status[0]["status"]["serving"].as_str().unwrap().to_string();
    assert_eq!(
        containers_of("app/race"),
        [(containers_of("app/race")[0].0.clone(), serving.clone())]
    );
    let expected = if serving == b.to_string() {
        "ok B"
    } else {
        "ok C"
    };
    assert_eq!(get_health(port), Ok(expected.to_string()), "{status}");
}
