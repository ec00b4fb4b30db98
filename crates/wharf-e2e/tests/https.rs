//! The registry client over HTTPS against the real distribution registry serving TLS with a
//! CA made by the test, under a name wharf does not treat as loopback
//! (`registry.wharf.test`, resolved by wharf's `resolve` override, never `/etc/hosts`).
//! Also: which registries may use plain HTTP, and where credentials may go in clear text.
//! Pushed images are checked with skopeo, which verifies the certificate independently.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use wharf::oci::{Layout, Location, Platform, Reference, image};
use wharf::pipeline::copy::{CopyError, CopyReport, copy};
use wharf::registry::credentials::{Credential, CredentialError, CredentialSource, Secret};
use wharf::registry::{Client, Config, Event};
use wharf_e2e::registry::{Auth, Registry, TLS_HOST, TestCa, TokenServer};
use wharf_e2e::{example_image, require_skopeo, run, xtask_binary};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(None)
    }
}

struct Static(&'static str, &'static str);

impl CredentialSource for Static {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Basic {
            username: self.0.to_string(),
            password: Secret::new(self.1.to_string()),
        }))
    }
}

/// A client that resolves [`TLS_HOST`] to 127.0.0.1, uses `certs_d` (an empty directory
/// unless the test trusts the CA there), and records its events.
fn client(certs_d: &Path, tune: impl FnOnce(&mut Config)) -> (Client, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut config = Config::new();
    config.credentials = Arc::new(NoCredentials);
    config.certs_d = certs_d.to_path_buf();
    config.resolve = vec![(TLS_HOST.to_string(), LOOPBACK)];
    config.events = Arc::new(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    tune(&mut config);
    (Client::new(config).unwrap(), events)
}

fn location(text: &str) -> Location {
    text.parse().unwrap()
}

fn layout(dir: &Path, tag: &str) -> Location {
    Location::Layout {
        dir: dir.to_path_buf(),
        tag: Some(tag.to_string()),
    }
}

/// skopeo, verifying the registry's certificate by its 127.0.0.1 SAN with only this CA,
/// reports `digest` for `repo_tag`.
fn skopeo_sees(ca: &TestCa, registry: &Registry, repo_tag: &str, digest: &str) {
    if !require_skopeo() {
        return;
    }
    let cert_dir = ca.certs_d(&registry.host()).join(registry.host());
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=true",
        "--cert-dir",
        cert_dir.to_str().unwrap(),
        &format!("docker://{}/{repo_tag}", registry.host()),
    ]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Digest"], digest, "skopeo inspect {repo_tag}");
}

/// Copies the example image from its layout to `docker://HOST/wharf/app:v1`.
fn push_example(client: &Client, host: &str) -> Result<CopyReport, CopyError> {
    let built = example_image();
    copy(
        client,
        &layout(&built.layout, &built.tag),
        &location(&format!("docker://{host}/wharf/app:v1")),
    )
}

fn retries(events: &Mutex<Vec<Event>>) -> usize {
    let events = events.lock().unwrap();
    events
        .iter()
        .filter(|e| matches!(e, Event::Retry { .. }))
        .count()
}

fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn push_pull_and_copy_over_https_with_the_ca_in_certs_d() {
    let ca = TestCa::new("wharf test CA (certs.d)");
    let Some(registry) = Registry::try_start_tls(Auth::None, &ca) else {
        return;
    };
    let host = registry.tls_host();
    let (client, events) = client(&ca.certs_d(&host), |_| {});
    assert_eq!(client.base_url(&host).unwrap(), format!("https://{host}"));
    let built = example_image();

    let pushed = push_example(&client, &host).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&built.digest));
    assert!(pushed.blobs_uploaded >= 2, "{pushed:?}");

    // Pull back into a fresh layout: the same image, every blob checked on the way in.
    let pulled_dir = empty_dir();
    let pulled = copy(
        &client,
        &location(&format!("docker://{host}/wharf/app:v1")),
        &layout(pulled_dir.path(), "v1"),
    )
    .unwrap();
    assert_eq!(pulled.digest.as_ref(), Some(&built.digest));
    let pulled = Layout::open(pulled_dir.path())
        .unwrap()
        .image_by_tag("v1", &Platform::linux_amd64())
        .unwrap();
    assert_eq!(image::digest(&pulled).unwrap(), built.digest);

    // Registry to registry over HTTPS (a cross-repository mount on the same registry).
    let copied = copy(
        &client,
        &location(&format!("docker://{host}/wharf/app:v1")),
        &location(&format!("docker://{host}/team/copy:v1")),
    )
    .unwrap();
    assert_eq!(copied.digest.as_ref(), Some(&built.digest));
    assert_eq!(retries(&events), 0, "nothing needed a retry over HTTPS");
    for repo_tag in ["wharf/app:v1", "team/copy:v1"] {
        skopeo_sees(&ca, &registry, repo_tag, &built.digest.to_string());
    }
}

/// `cargo xtask` with `WHARF_RESOLVE` naming the TLS host, an empty `certs.d` unless given,
/// and no `SSL_CERT_FILE` unless given.
fn xtask(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let empty = empty_dir();
    let mut cmd = Command::new(xtask_binary());
    cmd.args(args)
        .env("WHARF_RESOLVE", format!("{TLS_HOST}={LOOPBACK}"))
        .env("WHARF_CERTS_D", empty.path())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("WHARF_REGISTRY_USERNAME")
        .env_remove("WHARF_REGISTRY_PASSWORD");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_cli_copies_over_https_trusting_the_ca_by_ssl_cert_file_or_certs_d() {
    let ca = TestCa::new("wharf test CA (cli)");
    let Some(registry) = Registry::try_start_tls(Auth::None, &ca) else {
        return;
    };
    let host = registry.tls_host();
    let built = example_image();
    let source = format!("oci:{}:{}", built.layout.display(), built.tag);
    let pushed = format!("docker://{host}/cli/app:v1");

    // SSL_CERT_FILE: push, then pull into a layout.
    let ssl_cert_file = [("SSL_CERT_FILE", ca.ca_cert())];
    assert_ok(
        "push with SSL_CERT_FILE",
        &xtask(&["copy", &source, &pushed], &ssl_cert_file),
    );
    let pulled = empty_dir();
    let pulled_layout = format!("oci:{}:v1", pulled.path().display());
    assert_ok(
        "pull with SSL_CERT_FILE",
        &xtask(&["copy", &pushed, &pulled_layout], &ssl_cert_file),
    );
    let image = Layout::open(pulled.path())
        .unwrap()
        .image_by_tag("v1", &Platform::linux_amd64())
        .unwrap();
    assert_eq!(image::digest(&image).unwrap(), built.digest);

    // Docker's certs.d convention, through WHARF_CERTS_D: registry to registry.
    let certs_d = ca.certs_d(&host);
    let out = xtask(
        &[
            "copy",
            "--json",
            &pushed,
            &format!("docker://{host}/cli/copy:v1"),
        ],
        &[("WHARF_CERTS_D", &certs_d)],
    );
    assert_ok("copy with certs.d", &out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["digest"], built.digest.to_string());

    for repo_tag in ["cli/app:v1", "cli/copy:v1"] {
        skopeo_sees(&ca, &registry, repo_tag, &built.digest.to_string());
    }
}

#[test]
fn an_untrusted_certificate_fails_at_once_naming_the_host_and_how_to_trust_the_ca() {
    let ca = TestCa::new("wharf test CA (untrusted)");
    let Some(registry) = Registry::try_start_tls(Auth::None, &ca) else {
        return;
    };
    let host = registry.tls_host();
    let built = example_image();
    let certs_d = empty_dir();
    let (untrusting, events) = client(certs_d.path(), |_| {});
    let error = push_example(&untrusting, &host).unwrap_err();
    let text = error.to_string();
    let ca_crt = format!("{}/ca.crt", certs_d.path().join(&host).display());
    for wanted in [
        host.as_str(),
        "not trusted",
        "SSL_CERT_FILE",
        ca_crt.as_str(),
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing in: {text}");
    }
    assert!(
        !text.contains("insecure"),
        "turning verification off is no fix: {text}"
    );
    assert_eq!(retries(&events), 0, "a certificate error is never retried");

    // The CLI says the same and exits non-zero; nothing reached the repository.
    let out = xtask(
        &[
            "copy",
            &format!("oci:{}:{}", built.layout.display(), built.tag),
            &format!("docker://{host}/wharf/app:v1"),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&host) && stderr.contains("SSL_CERT_FILE") && stderr.contains("ca.crt"),
        "{stderr}"
    );
    let (trusting, _) = client(&ca.certs_d(&host), |_| {});
    let tags = trusting.list_tags(&host, "wharf/app");
    assert!(tags.is_err() || tags.unwrap().is_empty());
}

#[test]
fn an_insecure_tls_registry_is_reached_over_https_without_verification_never_plain_http() {
    let ca = TestCa::new("wharf test CA (insecure)");
    let Some(registry) = Registry::try_start_tls(Auth::None, &ca) else {
        return;
    };
    let host = registry.tls_host();
    let certs_d = empty_dir();
    let (client, _) = client(certs_d.path(), |c| c.insecure = vec![host.clone()]);
    // A TLS port answers plain HTTP with 400: had wharf downgraded, the push would fail.
    assert_eq!(client.base_url(&host).unwrap(), format!("https://{host}"));
    let built = example_image();
    let pushed = push_example(&client, &host).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&built.digest));
    skopeo_sees(&ca, &registry, "wharf/app:v1", &built.digest.to_string());
}

#[test]
fn a_plain_http_registry_by_name_needs_insecure_and_says_so() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let host = format!("{TLS_HOST}:{}", registry.port());
    let certs_d = empty_dir();

    // Not listed: HTTPS meets clear text; fail at once and say what would allow it.
    let (strict, events) = client(certs_d.path(), |_| {});
    let error = push_example(&strict, &host).unwrap_err().to_string();
    assert!(
        error.contains("does not speak TLS")
            && error.contains(&format!("--insecure-registry {host}")),
        "{error}"
    );
    assert_eq!(
        retries(&events),
        0,
        "clear text on a TLS handshake is never retried"
    );

    // Listed: the probe finds no TLS, so plain HTTP.
    let (insecure, _) = client(certs_d.path(), |c| c.insecure = vec![host.clone()]);
    assert_eq!(insecure.base_url(&host).unwrap(), format!("http://{host}"));
    let pushed = push_example(&insecure, &host).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&example_image().digest));
}

/// Issue 10, item 3: the realm check was `insecure.any(|r| r.starts_with(realm_host))`, so
/// an insecure `reg.corp:PORT` let credentials go to `http://reg:PORT/token`.
#[test]
fn credentials_never_go_to_a_plain_http_realm_whose_host_only_prefixes_an_insecure_entry() {
    let tokens = TokenServer::start();
    tokens.add_user("deployer", "s3cret-pa55");
    let port = tokens.host().rsplit_once(':').unwrap().1.to_string();
    let mut auth = tokens.registry_auth();
    auth.realm = format!("http://reg:{port}/token");
    let Some(registry) = Registry::try_start(Auth::Token(auth)) else {
        return;
    };
    let certs_d = empty_dir();
    let (client, _) = client(certs_d.path(), |c| {
        c.credentials = Arc::new(Static("deployer", "s3cret-pa55"));
        c.insecure = vec![format!("reg.corp:{port}")];
        c.resolve.push(("reg".to_string(), LOOPBACK));
    });
    let reference: Reference = format!("{}/wharf/app:v1", registry.host()).parse().unwrap();
    let error = client.manifest(&reference).unwrap_err().to_string();
    assert!(
        error.contains("refusing to send credentials to the plain-HTTP token realm"),
        "{error}"
    );
    assert!(
        tokens.requests().is_empty(),
        "the token realm was asked: {:?}",
        tokens.requests()
    );

    // The exact entry allows it.
    let (allowed, _) = client_allowing(certs_d.path(), &port);
    let error = allowed.manifest(&reference).unwrap_err().to_string();
    assert!(!error.contains("refusing"), "{error}");
    assert!(
        !tokens.requests().is_empty(),
        "the exact entry allows the realm"
    );
}

fn client_allowing(certs_d: &Path, port: &str) -> (Client, Arc<Mutex<Vec<Event>>>) {
    client(certs_d, |c| {
        c.credentials = Arc::new(Static("deployer", "s3cret-pa55"));
        c.insecure = vec![format!("reg:{port}")];
        c.resolve.push(("reg".to_string(), LOOPBACK));
    })
}

/// The system's roots are read at the first TLS handshake, not when the client is made
/// (src/system_roots.rs): with none readable, a plain-HTTP loopback registry still works,
/// and an HTTPS one fails saying why.
#[test]
fn the_system_roots_are_read_only_when_a_registry_speaks_tls() {
    let ca = TestCa::new("wharf test CA (no system roots)");
    let Some(plain) = Registry::try_start(Auth::None) else {
        return;
    };
    let Some(tls) = Registry::try_start_tls(Auth::None, &ca) else {
        return;
    };
    let built = example_image();
    let source = format!("oci:{}:{}", built.layout.display(), built.tag);
    let nowhere = empty_dir();
    let missing = nowhere.path().join("no-such-bundle.pem");
    let no_roots = [
        ("SSL_CERT_FILE", missing.as_path()),
        ("SSL_CERT_DIR", nowhere.path()),
    ];
    let out = xtask(
        &[
            "copy",
            &source,
            &format!("docker://{}/plain/app:v1", plain.host()),
        ],
        &no_roots,
    );
    assert_ok("copy to a loopback registry with no system roots", &out);

    let out = xtask(
        &[
            "copy",
            &source,
            &format!("docker://{}/tls/app:v1", tls.tls_host()),
        ],
        &no_roots,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("root certificates") && stderr.contains(&tls.tls_host()),
        "{stderr}"
    );
}
