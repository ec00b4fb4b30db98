//! Test harness for the registry client's end-to-end tests: real CNCF distribution
//! registries on 127.0.0.1 ([`Registry`]), a Bearer token issuer ([`TokenServer`]) and a
//! fault-injecting HTTP proxy ([`FaultProxy`]).
//!
//! Everything binds and connects to 127.0.0.1 only; every wait is bounded in time and every
//! loop in count; every process and thread is stopped on drop. A missing `docker-registry`
//! (or `htpasswd`) fails under `CI=true`/`WHARF_REQUIRE_SERVICES=1` and is skipped elsewhere
//! ([`Registry::try_start`]).
//!
//! It never mocks the registry itself: protocol behavior comes from the real process, the
//! test doubles only stand where a real deployment has another service (the token issuer)
//! or a bad network (the proxy). One exception, for a feature no registry here has:
//! [`ReferrersRegistry`] answers the OCI 1.1 referrers API (`OCI-Subject`, `GET
//! .../referrers/<digest>`), which Debian's distribution 2.8 lacks; the client's fallback
//! path is tested against the real registry.

mod fixture;
pub mod http;
mod proxy;
mod referrers_api;
mod tls;
mod token;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fixture::{TinyImage, write_tiny_image};
pub use proxy::{Action, Fault, FaultPlan, FaultProxy, FaultStats, Received, Target};
pub use referrers_api::ReferrersRegistry;
pub use tls::{TLS_HOST, TestCa};
pub use token::{
    Access, ISSUER, KeyHint, REGISTRY_LEEWAY, SERVICE, TokenAuth, TokenRequest, TokenServer,
    libtrust_key_id,
};

/// How long [`Registry::start`] and [`Registry::restart`] wait for `GET /v2/` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at finding a free port when another process takes the one picked.
const PORT_ATTEMPTS: usize = 5;
/// Bytes of the log shown when a registry fails to start.
const LOG_TAIL: u64 = 4096;

/// How a [`Registry`] authenticates clients.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Anonymous read and write.
    None,
    /// HTTP Basic against an htpasswd (bcrypt) file holding this one user.
    Htpasswd { username: String, password: String },
    /// Bearer tokens from a [`TokenServer`] ([`TokenServer::registry_auth`]).
    Token(TokenAuth),
}

impl Auth {
    /// `Auth::Htpasswd` for `username`/`password`.
    pub fn htpasswd(username: &str, password: &str) -> Auth {
        Auth::Htpasswd {
            username: username.to_string(),
            password: password.to_string(),
        }
    }
}

/// A real `docker-registry` (CNCF distribution) process serving plain HTTP on
/// 127.0.0.1, with filesystem storage in a fresh temporary directory and deletes enabled.
///
/// Killed on drop. Keep it in the test that uses it, not in a `static`: statics are never
/// dropped, so the process would outlive the test binary. The registry builds absolute
/// URLs (upload `Location`s) from the request's `Host` header, so behind a [`FaultProxy`]
/// they already name the proxy.
pub struct Registry {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    root: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// Serves HTTPS ([`Registry::try_start_tls`]).
    tls: bool,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; panics if that is impossible (a missing binary under CI, a
    /// registry that does not become ready within 30 s, with the tail of its log).
    /// Without CI, a missing binary is skipped: prefer [`Registry::try_start`] there.
    pub fn start(auth: Auth) -> Registry {
        match Registry::try_start(auth) {
            Some(r) => r,
            None => panic!(
                "docker-registry is not available (apt-get install -y docker-registry \
                 apache2-utils)"
            ),
        }
    }

    /// Starts a registry, or returns `None` after printing `SKIPPED: ...` when
    /// `docker-registry` (or `htpasswd` for [`Auth::Htpasswd`]) is missing and services are
    /// not required. Under `CI=true` or `WHARF_REQUIRE_SERVICES=1` a missing tool panics.
    pub fn try_start(auth: Auth) -> Option<Registry> {
        Registry::launch(auth, None)
    }

    /// Like [`Registry::try_start`], serving HTTPS only, with `ca`'s server certificate
    /// (for [`TLS_HOST`] and 127.0.0.1).
    pub fn try_start_tls(auth: Auth, ca: &TestCa) -> Option<Registry> {
        Registry::launch(auth, Some(ca))
    }

    fn launch(auth: Auth, tls: Option<&TestCa>) -> Option<Registry> {
        let bin = find_tool(
            &["docker-registry", "registry"],
            "--version",
            "docker-registry",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("wharf-registry-")
            .tempdir()
            .expect("creating a temporary directory");
        let root = dir.path().join("data");
        std::fs::create_dir(&root).expect("creating the registry data directory");
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { username, password } => {
                let htpasswd = find_tool(&["htpasswd"], "-h", "apache2-utils")?;
                let out = Command::new(htpasswd)
                    .args(["-Bbn", username, password])
                    .stdin(Stdio::null())
                    .output()
                    .expect("running htpasswd");
                assert!(
                    out.status.success(),
                    "htpasswd -Bbn failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).expect("writing the htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
                    yaml("wharf-test-registry"),
                    yaml_path(&path)
                )
            }
            Auth::Token(t) => {
                // A copy, so that the registry can restart after the token server is gone.
                let bundle = dir.path().join("rootcertbundle.pem");
                std::fs::copy(&t.rootcertbundle, &bundle).expect("copying the rootcertbundle");
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                     rootcertbundle: {}\n",
                    yaml(&t.realm),
                    yaml(&t.service),
                    yaml(&t.issuer),
                    yaml_path(&bundle)
                )
            }
        };
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        // A fixed secret per registry: upload URLs carry state signed with it, so uploads
        // started before a restart can be resumed after it.
        let secret = format!("wharf-test-{}", std::process::id());
        let tls_yaml = tls.map_or_else(String::new, |ca| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_path(ca.server_cert()),
                yaml_path(ca.server_key())
            )
        });
        let mut registry = Registry {
            child: None,
            bin,
            port: 0,
            root,
            config,
            log,
            tls: tls.is_some(),
            _dir: dir,
        };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            registry.port = free_port();
            let yml = format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {}\n  secret: {}\n\
                 {tls_yaml}\
                 {auth_yaml}",
                yaml_path(&registry.root),
                yaml(&registry.host()),
                yaml(&secret),
            );
            std::fs::write(&registry.config, yml).expect("writing the registry config");
            let _ = std::fs::write(&registry.log, "");
            match registry.spawn_and_wait() {
                Ok(()) => return Some(registry),
                Err(e) => {
                    registry.kill();
                    let tail = registry.log_tail();
                    if !tail.contains("address already in use") {
                        panic!("docker-registry did not start: {e}\n--- log tail ---\n{tail}");
                    }
                    last_error = format!("{e}\n--- log tail ---\n{tail}");
                }
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `registry.wharf.test:PORT`: the registry under the name of its TLS certificate,
    /// which wharf does not treat as loopback (clients must be told its address).
    pub fn tls_host(&self) -> String {
        format!("{TLS_HOST}:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage root directory (`storage.filesystem.rootdirectory`).
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    /// The registry's configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Where the registry stores the blob with this sha256 hex digest, whichever
    /// repository it was pushed to (tests corrupt or delete it on disk).
    pub fn blob_path(&self, digest_hex: &str) -> PathBuf {
        let hex = digest_hex.strip_prefix("sha256:").unwrap_or(digest_hex);
        self.root
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// Kills the process (SIGKILL) and waits for it. Data stays; see [`Registry::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the registry again (killing it first if it runs) on the same port with the
    /// same data and configuration, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        // The port may be briefly held by a client of the old process; retry a few times.
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => {
                    last = e;
                    self.kill();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!(
            "docker-registry did not restart on port {}: {last}\n--- log tail ---\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// Everything the registry process wrote (stdout and stderr, across restarts).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(&self.log) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("opening {}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // The registry reads REGISTRY_* variables as configuration overrides.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let host = self.host();
        // Bounded by READY_TIMEOUT; one probe at most every 50 ms.
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!("docker-registry exited with {status}"));
            }
            if let Ok(r) =
                http::request_with_timeout(&host, "GET", "/v2/", &[], &[], Duration::from_secs(2))
                && (r.status == 200 || r.status == 401 || self.tls && answers_tls_only(&r))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "GET http://{host}/v2/ did not answer 200 or 401 within {READY_TIMEOUT:?}"
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Go's answer to a plain-HTTP request on a TLS port: the server is up and speaks TLS.
fn answers_tls_only(r: &http::Response) -> bool {
    r.status == 400 && r.text().contains("HTTPS server")
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// The first of `names` that runs with `probe`; otherwise `None` after a skip notice, or a
/// panic under CI.
fn find_tool(names: &[&str], probe: &str, package: &str) -> Option<PathBuf> {
    for name in names {
        let ok = Command::new(name)
            .arg(probe)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if ok {
            return Some(PathBuf::from(name));
        }
    }
    let message = format!(
        "{} is not available (apt-get install -y {package}; `bash pipelines/test.sh` sets it up)",
        names[0]
    );
    crate::skip(&message);
    None
}

/// A YAML scalar (a JSON string is valid YAML).
fn yaml(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn yaml_path(p: &Path) -> String {
    yaml(p.to_str().expect("temporary paths are UTF-8"))
}
