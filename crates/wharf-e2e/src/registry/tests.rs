//! The harness proves itself against real clients: skopeo pushes into real registries
//! (anonymous, htpasswd, and through the token flow), the registry verifies the token
//! server's JWTs, and the fault proxy's 503s and resets reach clients as they should.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::http::{self, request};
use super::*;

/// `skopeo` if it runs; otherwise skip (or fail under CI).
fn skopeo() -> bool {
    crate::require_skopeo()
}

/// `skopeo copy oci:LAYOUT:TAG docker://DEST` over plain HTTP, with its own policy.
fn skopeo_copy(layout: &Path, tag: &str, dest: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "skopeo", "--policy"])
        .arg(&policy)
        .args(["copy", "--dest-tls-verify=false"])
        .args(args)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .env("REGISTRY_AUTH_FILE", dir.path().join("auth.json"))
        .stdin(Stdio::null());
    cmd.output().expect("running skopeo")
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "skopeo failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn tags(host: &str, repo: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let r = request(host, "GET", &format!("/v2/{repo}/tags/list"), headers, b"").unwrap();
    assert_eq!(r.status, 200, "tags/list: {}", r.text());
    r.json()["tags"].clone()
}

/// A token from the token server over HTTP, as a client would get it.
fn fetch_token(
    token_server: &TokenServer,
    creds: Option<(&str, &str)>,
    scopes: &[&str],
) -> http::Response {
    let mut target = format!("/token?service={SERVICE}");
    for s in scopes {
        target.push_str(&format!(
            "&scope={}",
            s.replace(':', "%3A").replace(',', "%2C")
        ));
    }
    let auth = creds.map(|(u, p)| basic(u, p));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(&token_server.host(), "GET", &target, &headers, b"").unwrap()
}

#[test]
fn anonymous_registry_takes_a_skopeo_push_and_keeps_it_across_restart() {
    let Some(mut registry) = Registry::try_start(Auth::None) else {
        return;
    };
    if !skopeo() {
        return;
    }
    let layout = tempfile::tempdir().unwrap();
    let image = write_tiny_image(layout.path(), "v1", b"anonymous\n");
    let out = skopeo_copy(
        layout.path(),
        "v1",
        &format!("{}/harness/anon:v1", registry.host()),
        &[],
    );
    assert_ok(&out);
    assert_eq!(
        tags(&registry.host(), "harness/anon", &[]),
        serde_json::json!(["v1"])
    );

    // The blob is where blob_path says, byte for byte.
    let hex = image.layer_digest.strip_prefix("sha256:").unwrap();
    let on_disk = std::fs::read(registry.blob_path(hex)).unwrap();
    assert_eq!(on_disk.len() as u64, image.layer_size);

    let manifest = request(
        &registry.host(),
        "GET",
        "/v2/harness/anon/manifests/v1",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    )
    .unwrap();
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("Docker-Content-Digest"),
        Some(image.manifest_digest.as_str())
    );
    assert_eq!(manifest.body, image.manifest);

    let port = registry.port();
    registry.kill();
    assert!(!registry.is_running());
    assert!(request(&registry.host(), "GET", "/v2/", &[], b"").is_err());
    registry.restart();
    assert_eq!(registry.port(), port);
    assert_eq!(
        tags(&registry.host(), "harness/anon", &[]),
        serde_json::json!(["v1"])
    );
    assert!(
        registry.log().contains("listening on 127.0.0.1:"),
        "{}",
        registry.log()
    );
}

#[test]
fn htpasswd_registry_wants_basic_credentials() {
    let Some(registry) = Registry::try_start(Auth::htpasswd("alice", "s3cret")) else {
        return;
    };
    let host = registry.host();
    let anonymous = request(&host, "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic realm="),
        "{:?}",
        anonymous.headers
    );
    let wrong = request(
        &host,
        "GET",
        "/v2/",
        &[("Authorization", &basic("alice", "nope"))],
        b"",
    );
    assert_eq!(wrong.unwrap().status, 401);
    let right = request(
        &host,
        "GET",
        "/v2/",
        &[("Authorization", &basic("alice", "s3cret"))],
        b"",
    );
    assert_eq!(right.unwrap().status, 200);

    if !skopeo() {
        return;
    }
    let layout = tempfile::tempdir().unwrap();
    write_tiny_image(layout.path(), "v1", b"htpasswd\n");
    let dest = format!("{host}/harness/basic:v1");
    let denied = skopeo_copy(layout.path(), "v1", &dest, &["--dest-no-creds"]);
    assert!(!denied.status.success(), "anonymous push must fail");
    assert_ok(&skopeo_copy(
        layout.path(),
        "v1",
        &dest,
        &["--dest-creds", "alice:s3cret"],
    ));
    let auth = basic("alice", "s3cret");
    assert_eq!(
        tags(&host, "harness/basic", &[("Authorization", &auth)]),
        serde_json::json!(["v1"])
    );
}

#[test]
fn token_registry_pushes_through_the_token_flow() {
    let tokens = TokenServer::start();
    tokens.add_user("bob", "hunter2");
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    let host = registry.host();
    let anonymous = request(&host, "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("WWW-Authenticate").unwrap();
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", tokens.realm())
    );

    if !skopeo() {
        return;
    }
    let layout = tempfile::tempdir().unwrap();
    write_tiny_image(layout.path(), "v1", b"token\n");
    let out = skopeo_copy(
        layout.path(),
        "v1",
        &format!("{host}/harness/token:v1"),
        &["--dest-creds", "bob:hunter2"],
    );
    assert_ok(&out);
    let requests = tokens.requests();
    assert!(tokens.tokens_issued() >= 1);
    assert!(
        requests
            .iter()
            .all(|r| r.basic && r.username.as_deref() == Some("bob"))
    );
    assert!(
        requests.iter().any(|r| r
            .scopes
            .iter()
            .any(|s| s == "repository:harness/token:pull,push")),
        "{requests:#?}"
    );
    // The recorded request never holds the password.
    assert!(!format!("{requests:?}").contains("hunter2"));

    // Pushing the same blobs to another repository: skopeo tries a cross-repository mount
    // and asks for pull on the source.
    tokens.clear_requests();
    let out = skopeo_copy(
        layout.path(),
        "v1",
        &format!("{host}/harness/token-copy:v1"),
        &["--dest-creds", "bob:hunter2"],
    );
    assert_ok(&out);
    let requests = tokens.requests();
    assert!(
        requests.iter().any(|r| r.scopes
            == [
                "repository:harness/token-copy:pull,push",
                "repository:harness/token:pull"
            ]),
        "a cross-repository mount asks for pull on the source: {requests:#?}"
    );
    let token = fetch_token(
        &tokens,
        Some(("bob", "hunter2")),
        &["repository:harness/token:pull"],
    );
    let token = token.json()["token"].as_str().unwrap().to_string();
    let listed = tags(
        &host,
        "harness/token",
        &[("Authorization", &bearer(&token))],
    );
    assert_eq!(listed, serde_json::json!(["v1"]));
}

#[test]
fn token_server_answers_like_an_authorization_service() {
    let tokens = TokenServer::start();
    tokens.add_user("carol", "pw");
    tokens.deny_push("locked/repo");

    let wrong = fetch_token(&tokens, Some(("carol", "bad")), &["repository:a/b:pull"]);
    assert_eq!(wrong.status, 401);
    let unknown = fetch_token(&tokens, Some(("mallory", "pw")), &["repository:a/b:pull"]);
    assert_eq!(unknown.status, 401);
    assert_eq!(tokens.tokens_issued(), 0);

    let ok = fetch_token(
        &tokens,
        Some(("carol", "pw")),
        &["repository:locked/repo:pull,push", "repository:a/b:push"],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let body = ok.json();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let claims = jwt_part(body["token"].as_str().unwrap(), 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], "carol");
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "locked/repo", "actions": ["pull"]},
            {"type": "repository", "name": "a/b", "actions": ["push"]},
        ])
    );
    let header = jwt_part(body["token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], tokens.key_id());

    // Anonymous: pull only (or 401 when switched off).
    let anonymous = fetch_token(&tokens, None, &["repository:a/b:pull,push"]);
    assert_eq!(
        jwt_part(anonymous.json()["token"].as_str().unwrap(), 1)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    tokens.set_anonymous_pull(false);
    assert_eq!(
        fetch_token(&tokens, None, &["repository:a/b:pull"]).status,
        401
    );

    let requests = tokens.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].status, 401);
    assert_eq!(requests[0].username.as_deref(), Some("carol"));
    assert_eq!(
        requests[2].scopes,
        ["repository:locked/repo:pull,push", "repository:a/b:push"]
    );
    assert!(requests[3].username.is_none() && !requests[3].basic);
    assert_eq!(tokens.tokens_issued(), 2);

    // OAuth2 password grant.
    let form = "grant_type=password&service=wharf-test-registry&client_id=test&username=carol&password=pw&scope=repository%3Aa%2Fb%3Apull";
    let posted = request(
        &tokens.host(),
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(posted.status, 200, "{}", posted.text());
    let last = tokens.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.username.as_deref()),
        ("POST", Some("carol"))
    );
    assert_eq!(last.scopes, ["repository:a/b:pull"]);
}

fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn libtrust_key_id_matches_coreutils() {
    // A P-256 SubjectPublicKeyInfo, and its key ID computed with
    // `sha256sum | cut -c1-60 | xxd -r -p | base32 | tr -d = | sed 's/.\{4\}/&:/g'`.
    let spki = STANDARD
        .decode(
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYD54V/vp+54P9DXarYqx4MPcm+HKRIQzNasYSoRQHQ/6S6Ps8tp\
             McT+KvIIC8W/e9k0W7Cm72M1P9jU7SLf/vg==",
        )
        .unwrap();
    assert_eq!(
        libtrust_key_id(&spki),
        "L76K:QQFN:YT7U:X7NP:43BJ:VTFS:3BLR:FJDW:V4LZ:XXKS:LK3C:CKWC"
    );
}

/// Which JWT key hints distribution 2.8 accepts, tried with raw requests.
#[test]
fn registry_verifies_kid_and_x5c_tokens_and_rejects_others() {
    let tokens = TokenServer::start();
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    let host = registry.host();
    let status = |token: &str| {
        request(
            &host,
            "GET",
            "/v2/",
            &[("Authorization", &bearer(token))],
            b"",
        )
        .unwrap()
        .status
    };
    let hour = Duration::from_secs(3600);
    tokens.set_key_hint(KeyHint::Kid);
    assert_eq!(
        status(&tokens.mint("u", &[], hour)),
        200,
        "kid: {}",
        registry.log()
    );
    tokens.set_key_hint(KeyHint::X5c);
    assert_eq!(
        status(&tokens.mint("u", &[], hour)),
        200,
        "x5c: {}",
        registry.log()
    );
    tokens.set_key_hint(KeyHint::None);
    assert_eq!(status(&tokens.mint("u", &[], hour)), 401);
    tokens.set_key_hint(KeyHint::Kid);
    assert_eq!(status(&tokens.mint_expired("u", &[])), 401);
    // A key the registry does not trust.
    let stranger = TokenServer::start();
    assert_eq!(status(&stranger.mint("u", &[], hour)), 401);
    stranger.set_key_hint(KeyHint::X5c);
    assert_eq!(status(&stranger.mint("u", &[], hour)), 401);
    // Scopes are enforced.
    let pull_only = tokens.mint("u", &["repository:x/y:pull"], hour);
    let upload = request(
        &host,
        "POST",
        "/v2/x/y/blobs/uploads/",
        &[("Authorization", &bearer(&pull_only))],
        b"",
    )
    .unwrap();
    assert_eq!(upload.status, 401);
    // distribution lists the actions in no fixed order (pull,push or push,pull).
    let challenge = upload.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("scope=\"repository:x/y:pull,push\"")
            || challenge.contains("scope=\"repository:x/y:push,pull\""),
        "{:?}",
        upload.headers
    );
    assert!(registry.log().contains("insufficient scope"));
}

#[test]
fn registry_leeway_and_enforced_token_lifetime() {
    let tokens = TokenServer::start();
    tokens.add_user("u", "p");
    let Some(registry) = Registry::try_start(Auth::Token(tokens.registry_auth())) else {
        return;
    };
    let host = registry.host();
    let status = |token: &str| {
        request(
            &host,
            "GET",
            "/v2/",
            &[("Authorization", &bearer(token))],
            b"",
        )
        .unwrap()
        .status
    };
    let claims = |token: &str| -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    };
    // The registry's leeway, on both sides, with tokens whose `exp` is already past (no
    // waiting for a clock): 30 s past is still accepted, leeway + 30 s past is not.
    let margin = Duration::from_secs(30);
    assert_eq!(status(&tokens.mint_expired_for("u", &[], margin)), 200);
    let late = tokens.mint_expired_for("u", &[], REGISTRY_LEEWAY + margin);
    assert_eq!(status(&late), 401, "{}", registry.log());
    // Plain lifetime: `exp` is `expires_in` after issue.
    tokens.set_token_lifetime(Duration::from_secs(1));
    let lenient = fetch_token(&tokens, Some(("u", "p")), &[]).json();
    assert_eq!(lenient["expires_in"], 1);
    let c = claims(lenient["token"].as_str().unwrap());
    assert_eq!(c["exp"].as_u64().unwrap(), c["iat"].as_u64().unwrap() + 1);
    // Enforced lifetime: `exp` moved back by the leeway, so the registry's deadline (exp +
    // leeway) is exactly `expires_in` after issue; the boundary itself is checked above.
    tokens.set_token_lifetime_enforced(Duration::from_secs(90));
    let strict = fetch_token(&tokens, Some(("u", "p")), &[]).json();
    assert_eq!(strict["expires_in"], 90);
    let strict = strict["token"].as_str().unwrap();
    let c = claims(strict);
    assert_eq!(
        c["exp"].as_u64().unwrap() + REGISTRY_LEEWAY.as_secs(),
        c["iat"].as_u64().unwrap() + 90
    );
    assert_eq!(status(strict), 200);
}

#[test]
fn fault_proxy_answers_503_first_then_forwards() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let plan = FaultPlan::new([Fault::new(
        Target::first("GET", "/v2/", 2),
        Action::status(503, &[("Retry-After", "1")]),
    )]);
    let proxy = FaultProxy::start(&registry.host(), plan);
    for _ in 0..2 {
        let r = request(&proxy.host(), "GET", "/v2/", &[], b"").unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("Retry-After"), Some("1"));
    }
    let r = request(&proxy.host(), "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert_eq!(
        proxy.stats(),
        FaultStats {
            requests: 3,
            faulted: 2,
            forwarded: 1,
            connections: 3
        }
    );

    // Kept-alive: several requests on one connection, one of them refused.
    proxy.set_plan(FaultPlan::new([Fault::new(
        Target::nth("POST", "/blobs/uploads/", 1),
        Action::status(503, &[("Retry-After", "7")]),
    )]));
    let mut conn = TcpStream::connect(proxy.host()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
    let mut statuses = Vec::new();
    for _ in 0..3 {
        write!(conn, "POST /v2/harness/keep/blobs/uploads/ HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n", proxy.host()).unwrap();
        let head = http::read_head(&mut reader).unwrap().unwrap();
        let framing = http::response_framing(&head, "POST").unwrap();
        http::drain_body(&mut reader, framing, 1 << 20).unwrap();
        statuses.push(head.status().unwrap());
        if head.status().unwrap() == 202 {
            // Absolute upload URL on the proxy (the registry builds it from Host).
            let location = head.header("Location").unwrap();
            assert!(
                location.starts_with(&format!(
                    "http://{}/v2/harness/keep/blobs/uploads/",
                    proxy.host()
                )),
                "{location}"
            );
        }
    }
    assert_eq!(statuses, [503, 202, 202]);
    assert_eq!(proxy.stats().connections, 4);

    // skopeo through the proxy.
    if !skopeo() {
        return;
    }
    // skopeo 1.9 does not retry a 503 on its first request (the /v2/ ping), not even with
    // --retry-times: it fails naming the status. Once the 503s are used up, it pushes
    // through the proxy (upload URLs and all).
    proxy.set_plan(FaultPlan::new([Fault::new(
        Target {
            count: 2,
            ..Target::all()
        },
        Action::status(503, &[("Retry-After", "1")]),
    )]));
    let layout = tempfile::tempdir().unwrap();
    write_tiny_image(layout.path(), "v1", b"through the proxy\n");
    let dest = format!("{}/harness/proxied:v1", proxy.host());
    let refused = skopeo_copy(layout.path(), "v1", &dest, &["--retry-times", "3"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("503"), "{stderr}");
    let before = proxy.stats();
    assert_ok(&skopeo_copy(layout.path(), "v1", &dest, &[]));
    let after = proxy.stats();
    assert!(
        after.forwarded >= before.forwarded + 5,
        "{before:?} -> {after:?}"
    );
    assert_eq!(
        tags(&proxy.host(), "harness/proxied", &[]),
        serde_json::json!(["v1"])
    );

    // Resets reach skopeo as connection errors: with every upload request that has a
    // body reset it gives up (after one retry); with only the first one reset, its retry
    // gets through.
    let reset_uploads = |target: fn(&str, &str) -> Target| {
        FaultPlan::new(["PATCH", "PUT"].map(|method| {
            Fault::new(
                target(method, "/blobs/uploads/"),
                Action::ResetAfterBodyBytes(1),
            )
        }))
    };
    proxy.set_plan(reset_uploads(Target::every));
    write_tiny_image(layout.path(), "v2", b"always reset\n");
    let dest = format!("{}/harness/proxied:v2", proxy.host());
    let before = proxy.stats();
    let out = skopeo_copy(layout.path(), "v2", &dest, &["--retry-times", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connection reset by peer"), "{stderr}");
    assert!(
        proxy.stats().faulted >= before.faulted + 2,
        "{:?}",
        proxy.stats()
    );

    proxy.set_plan(reset_uploads(|method, path| Target::nth(method, path, 1)));
    write_tiny_image(layout.path(), "v3", b"sometimes reset\n");
    let dest = format!("{}/harness/proxied:v3", proxy.host());
    let before = proxy.stats();
    let out = skopeo_copy(layout.path(), "v3", &dest, &["--retry-times", "5"]);
    assert_ok(&out);
    assert!(
        proxy.stats().faulted > before.faulted,
        "{:?}",
        proxy.stats()
    );
}

#[test]
fn fault_proxy_resets_mid_body() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    // The second PUT (the second connection's) is reset after 1000 bytes of its body.
    let reset_put = |n| {
        FaultPlan::new([Fault::new(
            Target::nth("PUT", "/blobs/uploads/", n),
            Action::ResetAfterBodyBytes(1000),
        )])
    };
    let plan = reset_put(2);
    let proxy = FaultProxy::start(&registry.host(), plan);
    let body = vec![7u8; 100_000];
    let digest = {
        let d = ring::digest::digest(&ring::digest::SHA256, &body);
        format!(
            "sha256:{}",
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    // Connection 1 is forwarded whole, connection 2 is reset in the PUT body (after its POST
    // went through), connection 3 is whole.
    let first = upload_on_one_connection(&proxy.host(), "harness/reset", &body, &digest);
    assert_eq!(first.unwrap(), 201);
    let second = upload_on_one_connection(&proxy.host(), "harness/reset", &body, &digest);
    let err = second.expect_err("the second connection is reset");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{err:?}"
    );
    let third = upload_on_one_connection(&proxy.host(), "harness/reset", &body, &digest);
    assert_eq!(third.unwrap(), 201);
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.faulted, stats.forwarded), (6, 1, 5));

    // A reset connection on which the client only reads: the read sees the reset.
    proxy.set_plan(reset_put(1));
    let mut conn = TcpStream::connect(proxy.host()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "PUT /v2/harness/reset/blobs/uploads/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n"
    )
    .unwrap();
    conn.write_all(&[0u8; 2000]).unwrap();
    let mut buf = [0u8; 16];
    let read = conn.read(&mut buf);
    assert!(
        read.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
}

/// POST + PUT (monolithic upload) on one kept-alive connection; the PUT's status.
fn upload_on_one_connection(
    host: &str,
    repo: &str,
    body: &[u8],
    digest: &str,
) -> std::io::Result<u16> {
    let mut conn = TcpStream::connect(host)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = std::io::BufReader::new(conn.try_clone()?);
    write!(
        conn,
        "POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let head = http::read_head(&mut reader)?.expect("a response");
    assert_eq!(head.status()?, 202);
    http::drain_body(&mut reader, http::response_framing(&head, "POST")?, 1 << 20).unwrap();
    let location = head.header("Location").unwrap();
    let path = location.strip_prefix(&format!("http://{host}")).unwrap();
    let sep = if path.contains('?') { '&' } else { '?' };
    write!(
        conn,
        "PUT {path}{sep}digest={digest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    let head = http::read_head(&mut reader)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed without a response",
        )
    })?;
    head.status()
}

#[test]
fn fault_proxy_rewrites_upstream_locations() {
    // An upstream that answers with absolute URLs on its own host (as a registry with
    // `http.host` set does) and with chunked and Content-Length bodies.
    let upstream = http::Server::start("fake-upstream", |stream, _| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut w = &stream;
        let host = stream.local_addr().unwrap().to_string();
        for _ in 0..10 {
            let Ok(Some(head)) = http::read_head(&mut reader) else { return };
            let framing = http::request_framing(&head).unwrap();
            http::drain_body(&mut reader, framing, 1 << 20).unwrap();
            let (_, target) = head.request_line().unwrap();
            if target == "/chunked" {
                write!(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap();
            } else {
                let location = format!("http://{host}/v2/r/blobs/uploads/abc?_state=x");
                http::respond(&mut w, 202, "Accepted", &[("Location", &location), ("Range", "0-0")], b"", false).unwrap();
            }
        }
    })
    .unwrap();
    let proxy = FaultProxy::start(upstream.host(), FaultPlan::default());
    let r = request(&proxy.host(), "POST", "/v2/r/blobs/uploads/", &[], b"").unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(
        r.header("Location").unwrap(),
        format!("http://{}/v2/r/blobs/uploads/abc?_state=x", proxy.host())
    );
    assert_eq!(r.header("Range"), Some("0-0"));
    let chunked = request(&proxy.host(), "GET", "/chunked", &[], b"").unwrap();
    assert_eq!(chunked.text(), "hello world");
    // The upstream is gone: 502.
    drop(upstream);
    let gone = request(&proxy.host(), "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(gone.status, 502);
}

#[test]
fn an_upload_started_before_a_restart_finishes_after_it() {
    let Some(mut registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let body = b"first half|second half".to_vec();
    let digest = {
        let d = ring::digest::digest(&ring::digest::SHA256, &body);
        let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    };
    let started = request(&host, "POST", "/v2/harness/resume/blobs/uploads/", &[], b"").unwrap();
    assert_eq!(started.status, 202);
    let path_of = |location: &str| {
        location
            .strip_prefix(&format!("http://{host}"))
            .unwrap_or(location)
            .to_string()
    };
    let location = path_of(started.header("Location").unwrap());
    let patched = request(
        &host,
        "PATCH",
        &location,
        &[("Content-Type", "application/octet-stream")],
        &body[..11],
    )
    .unwrap();
    assert_eq!(patched.status, 202, "{}", patched.text());
    assert_eq!(patched.header("Range"), Some("0-10"));
    let location = path_of(patched.header("Location").unwrap());

    registry.restart();
    let finished = request(
        &host,
        "PUT",
        &format!("{location}&digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        &body[11..],
    )
    .unwrap();
    assert_eq!(finished.status, 201, "{}", finished.text());
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert_eq!(std::fs::read(registry.blob_path(hex)).unwrap(), body);
}
