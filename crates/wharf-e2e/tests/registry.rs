//! The registry client against real CNCF distribution registries on loopback, checked with
//! independent clients (skopeo, docker) where they apply.

use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use wharf::oci::{Image, Layout, Location, Platform, Reference, image, random_image};
use wharf::pipeline::copy::copy;
use wharf::registry::credentials::{Credential, CredentialError, CredentialSource, Secret};
use wharf::registry::{Client, Config, Event, RetryPolicy};
use wharf_e2e::registry::{
    Action, Auth, Fault, FaultPlan, FaultProxy, Registry, Target, TokenServer,
};
use wharf_e2e::{docker_pull_and_probe_health, example_image, require_docker, require_skopeo, run};

/// Fixed credentials for one test.
struct Static(String, String);

impl CredentialSource for Static {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Basic {
            username: self.0.clone(),
            password: Secret::new(self.1.clone()),
        }))
    }
}

struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(None)
    }
}

/// A client with the given credentials that records its events.
fn client_with(
    credentials: Arc<dyn CredentialSource>,
    tune: impl FnOnce(&mut Config),
) -> (Client, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut config = Config::new();
    config.credentials = credentials;
    config.events = Arc::new(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    tune(&mut config);
    (Client::new(config).unwrap(), events)
}

fn anonymous() -> (Client, Arc<Mutex<Vec<Event>>>) {
    client_with(Arc::new(NoCredentials), |_| {})
}

fn reference(text: &str) -> Reference {
    text.parse().unwrap()
}

fn layout_location(layout: &std::path::Path, tag: &str) -> Location {
    Location::Layout {
        dir: layout.to_path_buf(),
        tag: Some(tag.to_string()),
    }
}

#[test]
fn push_pull_copy_mount_retag_list_and_delete() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let built = example_image();
    let (client, _) = anonymous();
    let host = registry.host();

    // Push from the layout.
    let to = Location::Registry(reference(&format!("{host}/wharf/app:v1")));
    let pushed = copy(&client, &layout_location(&built.layout, &built.tag), &to).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&built.digest));
    assert!(
        pushed.blobs_uploaded >= 2 && pushed.bytes_uploaded > 0,
        "{pushed:?}"
    );

    // Pushing again sends nothing.
    let again = copy(&client, &layout_location(&built.layout, &built.tag), &to).unwrap();
    assert_eq!(
        (again.blobs_uploaded, again.bytes_uploaded),
        (0, 0),
        "{again:?}"
    );
    assert_eq!(again.blobs_skipped, pushed.blobs_uploaded);

    // Pull into a new layout: same digest, and the layout reads back verified.
    let tmp = tempfile::tempdir().unwrap();
    let pulled = copy(
        &client,
        &to,
        &layout_location(&tmp.path().join("pulled"), "v1"),
    )
    .unwrap();
    assert_eq!(pulled.digest.as_ref(), Some(&built.digest));
    let back = Layout::open(tmp.path().join("pulled")).unwrap();
    let img = back.image_by_tag("v1", &Platform::linux_amd64()).unwrap();
    assert_eq!(image::digest(&img).unwrap(), built.digest);

    // Copy across repositories of one registry: mounted, zero bytes uploaded.
    let other = Location::Registry(reference(&format!("{host}/team/other:v1")));
    let mounted = copy(&client, &to, &other).unwrap();
    assert_eq!(mounted.digest.as_ref(), Some(&built.digest));
    assert_eq!(
        mounted.bytes_uploaded, 0,
        "a mount sends no blob bytes: {mounted:?}"
    );
    assert!(mounted.blobs_mounted >= 2, "{mounted:?}");

    // Copy to a second registry instance: uploaded, same digest.
    let Some(second) = Registry::try_start(Auth::None) else {
        return;
    };
    let there = Location::Registry(reference(&format!("{}/mirror/app:v1", second.host())));
    let copied = copy(&client, &to, &there).unwrap();
    assert_eq!(copied.digest.as_ref(), Some(&built.digest));
    assert!(copied.bytes_uploaded > 0);

    // Retag (manifest only), list, resolve.
    let v1 = reference(&format!("{host}/wharf/app:v1"));
    assert_eq!(client.tag(&v1, "v2").unwrap(), built.digest);
    let mut tags = client.list_tags(&host, "wharf/app").unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(
        client.resolve(&v1.with_tag("v2").unwrap()).unwrap().digest,
        built.digest
    );

    // skopeo agrees on the digest wharf printed.
    if require_skopeo() {
        let out = run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{host}/team/other:v1"),
        ]));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["Digest"], built.digest.to_string());
    }

    // Delete by digest; a deleted manifest is gone.
    let pinned = reference(&format!("{host}/team/other@{}", built.digest));
    client.delete(&pinned).unwrap();
    let err = client.manifest(&pinned).unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
}

#[test]
fn docker_pulls_and_runs_an_image_wharf_pushed() {
    if !require_docker() {
        return;
    }
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let built = example_image();
    let (client, _) = anonymous();
    let name = format!("{}/wharf/hello:e2e", registry.host());
    copy(
        &client,
        &layout_location(&built.layout, &built.tag),
        &Location::Registry(reference(&name)),
    )
    .unwrap();
    let container = format!("wharf-registry-e2e-{}", std::process::id());
    let status = docker_pull_and_probe_health(&name, &container);
    assert_eq!(status, Some(200));
}

#[test]
fn images_pushed_by_skopeo_and_docker_keep_their_digest_through_wharf() {
    if !require_skopeo() {
        return;
    }
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let built = example_image();
    let (client, _) = anonymous();

    // skopeo pushes (converting nothing), wharf copies to another repository.
    let src = format!("{host}/by-skopeo/app:v1");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci:{}:{}", built.layout.display(), built.tag),
        &format!("docker://{src}"),
    ]));
    let skopeo_digest = client.resolve(&reference(&src)).unwrap().digest;
    let copied = copy(
        &client,
        &Location::Registry(reference(&src)),
        &Location::Registry(reference(&format!("{host}/copied/app:v1"))),
    )
    .unwrap();
    assert_eq!(copied.digest, Some(skopeo_digest));

    // docker builds and pushes a Docker v2 schema 2 image; wharf copies it to a second
    // registry byte for byte.
    if !require_docker() {
        return;
    }
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("hello.txt"), "made by docker\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let tag = format!("{host}/by-docker/app:v1");
    run(Command::new("docker")
        .args(["build", "--quiet", "--tag", &tag])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0"));
    run(Command::new("docker").args(["push", "--quiet", &tag]));
    let docker_manifest = client.manifest(&reference(&tag)).unwrap();
    assert_eq!(
        docker_manifest.media_type,
        wharf::oci::media_type::DOCKER_MANIFEST
    );
    let Some(second) = Registry::try_start(Auth::None) else {
        return;
    };
    let dest = format!("{}/from-docker/app:v1", second.host());
    let copied = copy(
        &client,
        &Location::Registry(reference(&tag)),
        &Location::Registry(reference(&dest)),
    )
    .unwrap();
    assert_eq!(copied.digest, Some(docker_manifest.digest.clone()));
    let _ = Command::new("docker")
        .args(["rmi", "--force", &tag])
        .output();
}

#[test]
fn basic_auth_pushes_with_credentials_and_explains_a_wrong_password() {
    let Some(registry) = Registry::try_start(Auth::htpasswd("wharf", "s3cret-Pa55")) else {
        return;
    };
    let host = registry.host();
    let img = random_image(11, 2, 4096);
    let (client, _) = client_with(
        Arc::new(Static("wharf".into(), "s3cret-Pa55".into())),
        |_| {},
    );
    let report = client
        .push(&img, &reference(&format!("{host}/private/app:v1")), None)
        .unwrap();
    assert_eq!(report.digest, Some(image::digest(&img).unwrap()));

    let (wrong, _) = client_with(
        Arc::new(Static("wharf".into(), "not-the-Pa55".into())),
        |_| {},
    );
    let err = wrong
        .push(&img, &reference(&format!("{host}/private/app:v2")), None)
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(
        !text.contains("not-the-Pa55"),
        "the password leaked into the error: {text}"
    );

    let (nobody, _) = anonymous();
    let err = nobody
        .manifest(&reference(&format!("{host}/private/app:v1")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("WHARF_REGISTRY_USERNAME"), "{err}");
}

#[test]
fn bearer_token_auth_with_mount_scopes_on_the_source_repository() {
    let tokens = TokenServer::start();
    tokens.add_user("ci", "t0ken-Pa55");
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    let host = registry.host();
    let img = random_image(12, 3, 64 * 1024);
    let (client, _) = client_with(Arc::new(Static("ci".into(), "t0ken-Pa55".into())), |_| {});
    let src = reference(&format!("{host}/source/app:v1"));
    client.push(&img, &src, None).unwrap();

    tokens.clear_requests();
    let report = copy(
        &client,
        &Location::Registry(src.clone()),
        &Location::Registry(reference(&format!("{host}/target/app:v1"))),
    )
    .unwrap();
    assert_eq!(
        report.bytes_uploaded, 0,
        "mounted, not uploaded: {report:?}"
    );
    assert_eq!(
        report.blobs_mounted, 4,
        "config and three layers: {report:?}"
    );
    let asked: Vec<String> = tokens
        .requests()
        .into_iter()
        .flat_map(|r| r.scopes)
        .collect();
    assert!(
        asked.iter().any(|s| s == "repository:source/app:pull"),
        "the push token must include pull on the source repository for mounts: {asked:?}"
    );
}

/// Credentials that are an OAuth2 refresh token (docker config.json's `identitytoken`).
struct RefreshToken(String);

impl CredentialSource for RefreshToken {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::IdentityToken(Secret::new(self.0.clone()))))
    }
}

#[test]
fn oauth2_refresh_token_flow_and_a_clear_error_for_a_revoked_one() {
    let tokens = TokenServer::start();
    tokens.add_refresh_token("ci-bot", "refresh-Secr3t");
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    let target = reference(&format!("{}/oauth/app:v1", registry.host()));
    let img = random_image(21, 2, 32 * 1024);
    let (client, _) = client_with(Arc::new(RefreshToken("refresh-Secr3t".into())), |_| {});
    let report = client.push(&img, &target, None).unwrap();
    assert_eq!(report.digest, Some(image::digest(&img).unwrap()));
    let requests = tokens.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        // The OAuth2 form: POST, refresh_token grant, never Basic credentials.
        assert_eq!(request.method, "POST", "{request:?}");
        assert_eq!(request.grant_type.as_deref(), Some("refresh_token"));
        assert!(!request.basic, "{request:?}");
        assert_eq!(request.username.as_deref(), Some("ci-bot"));
        assert_eq!(request.status, 200);
    }
    assert!(
        requests.iter().any(|r| r
            .granted
            .iter()
            .any(|a| a.name == "oauth/app" && a.actions.iter().any(|x| x == "push"))),
        "{requests:?}"
    );

    let (revoked, _) = client_with(Arc::new(RefreshToken("revoked-token".into())), |_| {});
    let error = revoked.push(&img, &target, None).unwrap_err().to_string();
    assert!(error.contains("answered 401"), "{error}");
    assert!(error.contains("check the credentials"), "{error}");
    assert!(!error.contains("revoked-token"), "{error}");
}

#[test]
fn tokens_that_expire_in_the_middle_of_a_push_are_renewed() {
    let tokens = TokenServer::start();
    tokens.add_user("ci", "t0ken-Pa55");
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    // The 2nd and 4th chunk meet a 401 with the registry's challenge, as when a token
    // expires while the client still thinks it valid (the registry's own rejection of an
    // expired token is checked by the harness test `registry_leeway_and_enforced_token_lifetime`):
    // the push must fetch a new token each time and carry on, spending no retries.
    let challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\",scope=\"repository:expiring/app:pull,push\"",
        tokens.realm(),
        wharf_e2e::registry::SERVICE
    );
    let expired = Action::status(401, &[("WWW-Authenticate", challenge.as_str())]);
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultPlan::new([2, 4].map(|n| {
            Fault::new(
                Target::nth("PATCH", "/expiring/app/blobs/uploads/", n),
                expired.clone(),
            )
        })),
    );
    let img = random_image(22, 3, 1024 * 1024);
    let (client, events) = client_with(Arc::new(Static("ci".into(), "t0ken-Pa55".into())), |c| {
        c.chunk_size = 128 * 1024;
        c.parallel = 1;
    });
    let target = reference(&format!("{}/expiring/app:v1", proxy.host()));
    let report = client.push(&img, &target, None).unwrap();
    assert_eq!(report.digest, Some(image::digest(&img).unwrap()));
    assert_eq!(proxy.stats().faulted, 2, "{:?}", proxy.received());
    // One token for the push's scopes, then one per rejection.
    let push_tokens = tokens
        .requests()
        .iter()
        .filter(|r| r.scopes.iter().any(|s| s.contains("push")))
        .count();
    assert_eq!(push_tokens, 3, "{:?}", tokens.requests());
    // Renewals are not retries: the budget was not touched.
    let (retries, _, _) = retries_and_restarts(&events);
    assert!(retries.is_empty(), "{retries:?}");
    // And the image is whole: pull it back, every blob verified.
    let dir = tempfile::tempdir().unwrap();
    let copied = copy(
        &client,
        &Location::Registry(target),
        &layout_location(dir.path(), "back"),
    )
    .unwrap();
    assert_eq!(copied.digest, report.digest);
}

/// Waits (bounded) for the next event matching `wanted` on `events`.
fn next_event(events: &mpsc::Receiver<Event>, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    for _ in 0..100_000 {
        let event = events
            .recv_timeout(Duration::from_secs(60))
            .expect("the push stopped sending events");
        if wanted(&event) {
            return event;
        }
    }
    panic!("no matching event among 100000");
}

#[test]
fn registry_killed_mid_push_and_restarted_the_push_completes() {
    let Some(mut registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    // 4 layers of 6 MiB pushed in 512 KiB chunks, one at a time: long enough to be cut.
    let img = random_image(13, 4, 6 << 20);
    let expected = image::digest(&img).unwrap();
    // Every event goes to the test; the push is parked at its 16th progress event until
    // the test has killed the registry, so the kill lands mid-push whatever the speed.
    let (sender, events) = mpsc::channel::<Event>();
    let (resume, parked) = mpsc::channel::<()>();
    let parked = Mutex::new(parked);
    let progressed = std::sync::atomic::AtomicUsize::new(0);
    let (client, _) = client_with(Arc::new(NoCredentials), |c| {
        c.chunk_size = 512 << 10;
        c.parallel = 1;
        c.retry = RetryPolicy {
            max_attempts: 30,
            budget: Duration::from_secs(120),
            ..RetryPolicy::default()
        };
        c.events = Arc::new(move |e: &Event| {
            let _ = sender.send(e.clone());
            if matches!(e, Event::BlobProgress { .. })
                && progressed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 16
            {
                let _ = parked.lock().unwrap().recv_timeout(Duration::from_secs(60));
            }
        });
    });
    let destination = reference(&format!("{host}/crash/app:v1"));
    let report = std::thread::scope(|scope| {
        let push = scope.spawn(|| client.push(&img, &destination, None));
        let mut progress = 0;
        next_event(&events, |e| {
            progress += usize::from(matches!(e, Event::BlobProgress { .. }));
            progress == 16
        });
        // No tag may point at the image while it is incomplete.
        let (probe, _) = anonymous();
        assert!(
            probe.manifest(&destination).is_err(),
            "manifest visible before its blobs"
        );
        registry.kill();
        resume.send(()).unwrap();
        // The client noticed (a retry is announced) before the registry comes back.
        next_event(&events, |e| matches!(e, Event::Retry { .. }));
        registry.restart();
        push.join().unwrap()
    })
    .unwrap();
    assert_eq!(report.digest, Some(expected.clone()));
    // Every blob is there and intact: pull it all back, verified.
    let (client, _) = anonymous();
    let pulled = client
        .image(&destination, &Platform::linux_amd64())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    Layout::create(tmp.path())
        .unwrap()
        .write_image(&pulled, Some("v1"))
        .unwrap();
}

fn retries_and_restarts(events: &Mutex<Vec<Event>>) -> (Vec<String>, usize, usize) {
    let events = events.lock().unwrap();
    let retries = events
        .iter()
        .filter_map(|e| match e {
            Event::Retry { reason, wait, .. } => Some(format!("{reason} after {wait:?}")),
            _ => None,
        })
        .collect();
    let resumes = events
        .iter()
        .filter(|e| matches!(e, Event::Resume { .. }))
        .count();
    let restarts = events
        .iter()
        .filter(|e| matches!(e, Event::Restart { .. }))
        .count();
    (retries, resumes, restarts)
}

/// A retry policy for tests: quick backoff, `attempts` in all.
fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        budget: Duration::from_secs(60),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

const UPLOADS: &str = "/blobs/uploads/";

#[test]
fn retry_after_503s_and_reset_connections_within_budget_then_a_clear_error() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let img = random_image(14, 3, 2 << 20);
    let expected = image::digest(&img).unwrap();

    // 503 with Retry-After: 1 for the first two requests, and the 2nd chunk PATCH reset
    // before any byte of it reached the registry: the registry's confirmed offset is valid,
    // so the upload resumes there.
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultPlan::new([
            Fault::new(
                Target {
                    count: 2,
                    ..Target::all()
                },
                Action::status(503, &[("Retry-After", "1")]),
            ),
            Fault::new(
                Target::nth("PATCH", UPLOADS, 2),
                Action::ResetBeforeForwarding,
            ),
        ]),
    );
    let (client, events) = client_with(Arc::new(NoCredentials), |c| {
        c.chunk_size = 256 << 10;
        c.parallel = 1;
    });
    let report = client
        .push(
            &img,
            &reference(&format!("{}/faulty/app:v1", proxy.host())),
            None,
        )
        .unwrap();
    assert_eq!(report.digest, Some(expected.clone()));
    assert_eq!(proxy.stats().faulted, 3, "{:?}", proxy.received());
    let (retries, resumes, restarts) = retries_and_restarts(&events);
    let after_503: Vec<_> = retries
        .iter()
        .filter(|r| r.starts_with("registry answered 503"))
        .collect();
    assert_eq!(after_503.len(), 2, "{retries:?}");
    assert!(
        after_503.iter().all(|r| r.ends_with("after 1s")),
        "Retry-After: 1 honored: {retries:?}"
    );
    assert_eq!(
        (retries.len(), resumes, restarts),
        (3, 1, 0),
        "a reset before any byte was stored resumes: {retries:?}"
    );

    // The 2nd chunk PATCH reset after half its bytes reached the registry: CNCF
    // distribution keeps that half, then cancels the upload because the client's state no
    // longer matches ("upload resumed at wrong offset"). The client sees that the registry
    // forgot the upload and starts the blob over; the push still completes.
    let halfway = FaultProxy::start(
        &registry.host(),
        FaultPlan::new([Fault::new(
            Target::nth("PATCH", UPLOADS, 2),
            Action::ResetAfterBodyBytes(128 << 10),
        )]),
    );
    // Another image: the first one's blobs are in the registry now and would be skipped.
    let img = random_image(16, 3, 2 << 20);
    let expected = image::digest(&img).unwrap();
    let (client, events) = client_with(Arc::new(NoCredentials), |c| {
        c.chunk_size = 256 << 10;
        c.parallel = 1;
        c.retry = quick(10);
    });
    let report = client
        .push(
            &img,
            &reference(&format!("{}/faulty/app:v3", halfway.host())),
            None,
        )
        .unwrap();
    assert_eq!(report.digest, Some(expected));
    let (retries, resumes, restarts) = retries_and_restarts(&events);
    assert_eq!((resumes, restarts), (0, 1), "{retries:?}");

    // Past the budget: the error says how many attempts were made, and exactly that many
    // requests arrived.
    let hopeless = FaultProxy::start(
        &registry.host(),
        FaultPlan::new([Fault::new(
            Target::all(),
            Action::status(503, &[("Retry-After", "0")]),
        )]),
    );
    let (client, _) = client_with(Arc::new(NoCredentials), |c| {
        c.retry = quick(4);
        c.parallel = 1;
    });
    let err = client
        .push(
            &img,
            &reference(&format!("{}/faulty/app:v2", hopeless.host())),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("gave up after 4 attempts"), "{err}");
    assert_eq!(hopeless.stats().requests, 4);
}

/// Fetches `manifest` through a proxy applying `action` to the first `times` manifest
/// GETs: the result, the manifest GETs the proxy received, and the Retry waits.
fn fetch_through(
    registry: &Registry,
    manifest: &str,
    action: Action,
    times: usize,
) -> (Result<(), String>, usize, Vec<Duration>) {
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultPlan::new([Fault::new(
            Target::first("GET", "/manifests/", times),
            action,
        )]),
    );
    let (client, events) = client_with(Arc::new(NoCredentials), |c| {
        c.retry = quick(5);
        c.read_timeout = Duration::from_secs(1);
    });
    let result = client
        .manifest(&reference(&format!("{}/{manifest}", proxy.host())))
        .map(drop)
        .map_err(|e| e.to_string());
    let waits = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retry { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    (result, proxy.count("GET", "/manifests/"), waits)
}

#[test]
fn which_failures_are_retried_counted_at_the_proxy() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let (client, _) = anonymous();
    let img = random_image(31, 1, 4096);
    client
        .push(
            &img,
            &reference(&format!("{}/classes/app:v1", registry.host())),
            None,
        )
        .unwrap();
    let manifest = "classes/app:v1";

    // Retried: two failures, then the answer; three requests arrive.
    let date_past = "Sun, 06 Nov 1994 08:49:37 GMT";
    let retried = [
        ("429", Action::status(429, &[])),
        (
            "429 Retry-After: 0",
            Action::status(429, &[("Retry-After", "0")]),
        ),
        (
            "429 Retry-After: date",
            Action::status(429, &[("Retry-After", date_past)]),
        ),
        ("500", Action::status(500, &[])),
        ("502", Action::status(502, &[])),
        ("503", Action::status(503, &[])),
        ("504", Action::status(504, &[])),
        ("reset", Action::ResetBeforeForwarding),
        ("no answer", Action::Stall),
        ("silent mid-body", Action::StallResponseAfter(10)),
    ];
    for (class, action) in retried {
        let honours_retry_after = class.contains("Retry-After");
        let (result, requests, waits) = fetch_through(&registry, manifest, action, 2);
        assert_eq!(result, Ok(()), "{class}");
        assert_eq!(requests, 3, "{class}: two failures and the answer");
        assert_eq!(waits.len(), 2, "{class}: {waits:?}");
        if honours_retry_after {
            assert!(waits.iter().all(|w| w.is_zero()), "{class}: {waits:?}");
        }
    }

    // Never retried: exactly one request arrives.
    for status in [400, 401, 403, 404] {
        let (result, requests, waits) =
            fetch_through(&registry, manifest, Action::status(status, &[]), 1);
        let err = result.unwrap_err();
        assert!(err.contains(&status.to_string()), "{status}: {err}");
        assert_eq!((requests, waits.len()), (1, 0), "{status}: {err}");
    }
}

#[test]
fn a_host_that_does_not_resolve_fails_at_once() {
    let (client, events) = client_with(Arc::new(NoCredentials), |c| c.retry = quick(10));
    let err = client
        .manifest(&reference("nonexistent.invalid/x/y:t"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nonexistent.invalid does not resolve"),
        "{err}"
    );
    let (retries, _, _) = retries_and_restarts(&events);
    assert!(retries.is_empty(), "not retried: {retries:?}");
}

#[test]
fn a_silent_registry_ends_in_a_bounded_error_naming_what_was_awaited() {
    // Accepts TCP, reads each request, never answers (nothing upstream is ever reached).
    let silent = FaultProxy::start(
        "127.0.0.1:9",
        FaultPlan::new([Fault::new(Target::all(), Action::Stall)]),
    );
    let (client, _) = client_with(Arc::new(NoCredentials), |c| {
        c.retry = quick(3);
        c.read_timeout = Duration::from_secs(1);
    });
    let host = silent.host();
    let err = client
        .put_manifest(&host, "x", "t", wharf::oci::media_type::OCI_MANIFEST, b"{}")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "no answer from {host} for 1 s while waiting for the response to PUT http://{host}/v2/x/manifests/t"
        )),
        "{err}"
    );
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    let stats = silent.stats();
    assert_eq!((stats.connections, stats.requests), (3, 3), "{stats:?}");
}

#[test]
fn the_cli_gives_up_on_a_silent_registry() {
    let silent = FaultProxy::start(
        "127.0.0.1:9",
        FaultPlan::new([Fault::new(Target::all(), Action::Stall)]),
    );
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).unwrap();
    layout
        .write_image(&random_image(32, 1, 1024), Some("v1"))
        .unwrap();
    let out = Command::new(wharf_e2e::xtask_binary())
        .args(["copy", "--json"])
        .arg(format!("oci:{}:v1", tmp.path().display()))
        .arg(format!("docker://{}/x:t", silent.host()))
        .env(wharf::registry::TIMEOUT_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("no answer from {}", silent.host())),
        "{stderr}"
    );
}

#[test]
fn a_copy_to_a_mismatched_digest_moves_no_tag() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).unwrap();
    let img = random_image(33, 1, 4096);
    layout.write_image(&img, Some("v1")).unwrap();
    let other = image::digest(&random_image(34, 1, 4096)).unwrap();
    let (client, _) = anonymous();
    let pinned = Location::Registry(reference(&format!("{host}/pinned/app:t@{other}")));
    let err = copy(&client, &layout_location(tmp.path(), "v1"), &pinned)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    let err = client
        .push(
            &img,
            &reference(&format!("{host}/pinned/app:t@{other}")),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    // Checked with a raw request, not wharf's client: no tag, no blob.
    let tag =
        wharf_e2e::registry::http::request(&host, "GET", "/v2/pinned/app/manifests/t", &[], b"")
            .unwrap();
    assert_eq!(tag.status, 404, "{}", registry.log());
    let config = image::manifest(&img).unwrap().config.digest;
    let blob = wharf_e2e::registry::http::request(
        &host,
        "HEAD",
        &format!("/v2/pinned/app/blobs/{config}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(blob.status, 404);
}

#[test]
fn manifests_that_do_not_match_their_digest_are_refused() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let (client, _) = anonymous();
    let img = random_image(35, 1, 4096);
    let digest = client
        .push(&img, &reference(&format!("{host}/checked/app:v1")), None)
        .unwrap()
        .digest
        .unwrap();
    let other = random_image(36, 1, 4096).raw_manifest().unwrap();
    // By digest, the body swapped for another manifest.
    let swapped = FaultProxy::start(
        &host,
        FaultPlan::new([Fault::new(
            Target::every("GET", "/manifests/"),
            Action::ReplaceResponseBody(other.clone()),
        )]),
    );
    let err = client
        .manifest(&reference(&format!(
            "{}/checked/app@{digest}",
            swapped.host()
        )))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    // By tag, against Docker-Content-Digest: the body swapped, or the header.
    let err = client
        .manifest(&reference(&format!("{}/checked/app:v1", swapped.host())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    let lying = FaultProxy::start(
        &host,
        FaultPlan::new([Fault::new(
            Target::every("GET", "/manifests/"),
            Action::SetResponseHeader(
                "Docker-Content-Digest".into(),
                wharf::oci::Digest::sha256(&other).to_string(),
            ),
        )]),
    );
    let err = client
        .manifest(&reference(&format!("{}/checked/app:v1", lying.host())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn an_upload_whose_source_does_not_match_its_digest_is_never_committed() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let (client, _) = anonymous();
    let declared = b"the bytes the descriptor promises".to_vec();
    let actual = b"other bytes of the very same size".to_vec();
    let actual = actual[..declared.len()].to_vec();
    let descriptor = wharf::oci::Descriptor::for_bytes("application/octet-stream", &declared);
    let open = || -> wharf::registry::Result<wharf::oci::image::BlobReader<'static>> {
        Ok(Box::new(std::io::Cursor::new(actual.clone())))
    };
    let err = client
        .push_blob(&host, "unverified/app", &descriptor, None, &open)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not match") || err.contains("digest"),
        "{err}"
    );
    for digest in [
        descriptor.digest.clone(),
        wharf::oci::Digest::sha256(&actual),
    ] {
        let head = wharf_e2e::registry::http::request(
            &host,
            "HEAD",
            &format!("/v2/unverified/app/blobs/{digest}"),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(head.status, 404, "{digest}");
    }
}

#[test]
fn a_blob_altered_on_the_registry_disk_is_refused_on_pull() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let img = random_image(15, 2, 8192);
    let (client, _) = anonymous();
    let destination = reference(&format!("{}/tampered/app:v1", registry.host()));
    client.push(&img, &destination, None).unwrap();
    let layer = image::manifest(&img).unwrap().layers.remove(1);
    let path = registry.blob_path(layer.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();

    let pulled = client
        .image(&destination, &Platform::linux_amd64())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).unwrap();
    let err = layout
        .write_image(&pulled, Some("v1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&layer.digest.to_string()),
        "the error names the digest: {err}"
    );
    assert!(
        !layout.blob_path(&layer.digest).exists(),
        "nothing unverified is written"
    );
    assert!(layout.tags().unwrap().is_empty());
    // Only the altered layer is refused: the config on the registry is intact, the same
    // bytes as the source image's.
    assert_eq!(pulled.raw_config().unwrap(), img.raw_config().unwrap());
}

#[test]
fn an_index_is_copied_whole_with_its_digest() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path().join("multi")).unwrap();
    let mut index = wharf::oci::Index::new();
    for (seed, arch) in [(21, "amd64"), (22, "arm64")] {
        let img = random_image(seed, 2, 4096);
        let (mut descriptor, _) = layout.write_image(&img, None).unwrap();
        descriptor.platform = Some(Platform {
            architecture: arch.into(),
            ..Platform::linux_amd64()
        });
        index.manifests.push(descriptor);
    }
    let bytes = wharf::oci::canonical_json(&index);
    let root = layout
        .write_blob_bytes(wharf::oci::media_type::OCI_INDEX, &bytes)
        .unwrap();
    layout.tag(&root, "multi").unwrap();

    let (client, _) = anonymous();
    let pushed_to = reference(&format!("{host}/multi/app:v1"));
    let report = copy(
        &client,
        &layout_location(&tmp.path().join("multi"), "multi"),
        &Location::Registry(pushed_to.clone()),
    )
    .unwrap();
    assert_eq!(report.digest.as_ref(), Some(&root.digest));
    assert_eq!(
        report.blobs_uploaded, 6,
        "two configs and four layers: {report:?}"
    );
    let stored = client.manifest(&pushed_to).unwrap();
    assert_eq!(stored.media_type, wharf::oci::media_type::OCI_INDEX);
    assert_eq!(stored.bytes, bytes, "the index is stored byte for byte");

    // Across repositories: every child mounted; back into a layout: same digest.
    let mounted = copy(
        &client,
        &Location::Registry(pushed_to.clone()),
        &Location::Registry(reference(&format!("{host}/multi-copy/app:v1"))),
    )
    .unwrap();
    assert_eq!(mounted.digest.as_ref(), Some(&root.digest));
    assert_eq!(
        (mounted.bytes_uploaded, mounted.blobs_mounted),
        (0, 6),
        "{mounted:?}"
    );
    let back = tmp.path().join("back");
    let pulled = copy(
        &client,
        &Location::Registry(pushed_to),
        &layout_location(&back, "v1"),
    )
    .unwrap();
    assert_eq!(pulled.digest.as_ref(), Some(&root.digest));
    let back = Layout::open(&back).unwrap();
    assert_eq!(back.resolve("v1").unwrap().digest, root.digest);
    let arm = Platform {
        architecture: "arm64".into(),
        ..Platform::linux_amd64()
    };
    let arm_image = back.image(&back.resolve("v1").unwrap(), &arm).unwrap();
    assert_eq!(
        image::digest(&arm_image).unwrap(),
        index.manifests[1].digest
    );
}
