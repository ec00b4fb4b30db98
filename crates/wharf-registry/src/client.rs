//! The HTTP layer: base URLs, authentication (Basic and Bearer token challenges), retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::challenge::{self, Challenge, Scheme};
use crate::credentials::{Credential, CredentialSource};
use crate::error::{Error, Result};
use crate::events::{Event, Sink};
use crate::retry::{Attempts, RetryPolicy, parse_retry_after};
use crate::tls::{self, Transport};

/// How a [`Client`] behaves.
#[derive(Clone)]
pub struct Config {
    /// Registries (host[:port], compared exactly; no port is 80) whose certificate is not
    /// verified, reached over plain HTTP only if they do not speak TLS.
    pub insecure: Vec<String>,
    /// Docker's per-registry CA directory: `<certs_d>/<host[:port]>/*.crt` are trusted for
    /// that registry. Default: `WHARF_CERTS_D`, else `/etc/docker/certs.d`.
    pub certs_d: PathBuf,
    /// Fixed addresses for host names, like curl's `--resolve` (the URL's port is kept).
    /// `WHARF_RESOLVE=NAME=IP,...` adds to these.
    pub resolve: Vec<(String, IpAddr)>,
    pub retry: RetryPolicy,
    /// Blobs transferred at once.
    pub parallel: usize,
    /// Bytes per PATCH of a chunked upload; an upload resumes at chunk granularity at worst.
    pub chunk_size: usize,
    /// Longest wait for the next bytes of an answer (reset by every read, so a slow but
    /// progressing transfer never times out). A request that times out counts as a failed
    /// attempt within the retry budget.
    pub read_timeout: Duration,
    pub credentials: Arc<dyn CredentialSource>,
    pub events: Sink,
    /// A `WHARF_REGISTRY_TIMEOUT_SECS` that is not a number, reported by [`Client::new`].
    env_error: Option<String>,
}

/// Overrides [`Config::read_timeout`] (whole seconds), e.g. to fail fast in scripts.
pub const TIMEOUT_ENV: &str = "WHARF_REGISTRY_TIMEOUT_SECS";
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest upload (bytes per second) a chunk is given time for on top of the read timeout:
/// 16 MiB chunks get 256 s more. Slower links need a smaller `Config::chunk_size`.
const MIN_UPLOAD_RATE: u64 = 64 << 10;

impl Config {
    /// Credentials from the environment and docker's config.json; the read timeout from
    /// `WHARF_REGISTRY_TIMEOUT_SECS` if set; no events.
    pub fn new() -> Config {
        let (read_timeout, env_error) = match std::env::var(TIMEOUT_ENV) {
            Err(_) => (DEFAULT_READ_TIMEOUT, None),
            Ok(value) => match value.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => (Duration::from_secs(secs), None),
                _ => (
                    DEFAULT_READ_TIMEOUT,
                    Some(format!(
                        "{TIMEOUT_ENV}={value:?} is not a whole number of seconds above 0 (unset it for the default of {} s)",
                        DEFAULT_READ_TIMEOUT.as_secs()
                    )),
                ),
            },
        };
        Config {
            insecure: Vec::new(),
            certs_d: tls::default_certs_d(),
            resolve: Vec::new(),
            retry: RetryPolicy::default(),
            parallel: 4,
            chunk_size: 16 << 20,
            read_timeout,
            credentials: Arc::new(crate::credentials::default_sources()),
            events: crate::events::ignore(),
            env_error,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// The access an operation needs: the registry and the token scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub registry: String,
    pub scopes: Vec<String>,
}

impl Access {
    pub fn pull(registry: &str, repository: &str) -> Access {
        Access {
            registry: registry.to_string(),
            scopes: vec![challenge::scope(repository, &["pull"])],
        }
    }

    /// Push to `repository`, and pull from `mount_from` for cross-repository mounts: a
    /// token without pull on the source makes registries decline the mount.
    pub fn push(registry: &str, repository: &str, mount_from: Option<&str>) -> Access {
        let mut scopes = vec![challenge::scope(repository, &["pull", "push"])];
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            scopes.push(challenge::scope(from, &["pull"]));
        }
        Access {
            registry: registry.to_string(),
            scopes,
        }
    }

    pub fn delete(registry: &str, repository: &str) -> Access {
        Access {
            registry: registry.to_string(),
            scopes: vec![challenge::scope(repository, &["delete"])],
        }
    }
}

/// Whether a request may be sent again as it is after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// GET, HEAD, PUT of a manifest, DELETE: sending twice is harmless.
    Safe,
    /// A PATCH of upload data: after a failure the caller must ask the registry where the
    /// upload stands, so only authentication is retried here.
    Never,
}

#[derive(Default)]
struct RegistryAuth {
    /// The scheme the registry asked for, once known.
    scheme: Option<Challenge>,
    /// The Basic header, for registries that use Basic (kept so a credential helper runs
    /// once, not once per request).
    basic: Option<String>,
    tokens: HashMap<Vec<String>, Token>,
}

struct Token {
    value: String,
    expires: Instant,
}

/// A registry client. Cheap to share between threads.
pub struct Client {
    /// The HTTP clients, per registry (TLS trust); their timeout is the read timeout,
    /// which upload chunks ([`Replay::Never`]) replace with a deadline of their own.
    transport: Transport,
    pub(crate) config: Config,
    auth: Mutex<HashMap<String, RegistryAuth>>,
}

/// Installs ring as rustls's crypto provider, once per process: reqwest is built without
/// one so that no C library is linked. Any other HTTPS client in the process (webhooks,
/// smoke checks) needs it too. A second call finds it installed, which is fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    pub fn new(config: Config) -> Result<Client> {
        install_crypto_provider();
        if let Some(why) = &config.env_error {
            return Err(Error::Config(why.clone()));
        }
        // The blocking client's timeout bounds the wait for an answer's head and then each
        // read of its body separately, so a large blob that keeps streaming never times
        // out, while a registry that accepts and then goes silent cannot hang us forever.
        // The wait for the head runs from the start of the request, upload included, so
        // upload chunks replace it with a deadline that grows with their size
        // ([`Client::upload_deadline`]). Keepalive notices dead peers.
        let read_timeout = config.read_timeout;
        let builder = move || {
            Http::builder()
                .user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(15))
                .timeout(read_timeout)
                .tcp_keepalive(Duration::from_secs(30))
        };
        let mut resolve = config.resolve.clone();
        resolve.extend(tls::resolve_from_env()?);
        let transport = Transport::new(
            Arc::new(builder),
            resolve,
            config.certs_d.clone(),
            config.insecure.clone(),
        )?;
        Ok(Client {
            transport,
            config,
            auth: Mutex::new(HashMap::new()),
        })
    }

    /// `https://registry`, or `http://` for loopback registries and insecure ones that do
    /// not speak TLS (see [`tls`](crate::tls)).
    pub fn base_url(&self, registry: &str) -> Result<String> {
        Ok(format!("{}://{registry}", self.transport.scheme(registry)?))
    }

    /// The error for a certificate `authority` presented and rustls refused.
    fn untrusted(&self, what: &str, authority: &str, source: &reqwest::Error) -> Error {
        Error::Untrusted {
            what: what.to_string(),
            registry: authority.to_string(),
            why: tls::certificate_refused(source).unwrap_or_default(),
            hint: tls::trust_hint(&self.config.certs_d, authority),
        }
    }

    /// How many blobs move at once (pushes, and pulls into a layout).
    pub fn parallel(&self) -> usize {
        self.config.parallel
    }

    pub(crate) fn events(&self) -> &Sink {
        &self.config.events
    }

    /// Sends the request `make` builds, authenticating on 401 and retrying what may be
    /// retried. Returns the final response whatever its status; see [`check`].
    ///
    /// A name that does not resolve fails at once ([`Error::Resolve`]): retrying cannot fix
    /// a typo. With [`Replay::Never`] a transient failure is returned as
    /// [`Error::Interrupted`] for the caller to recover from.
    pub fn send(
        &self,
        access: &Access,
        what: &str,
        replay: Replay,
        make: &dyn Fn(&Http) -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempts = Attempts::new(&self.config.retry);
        let mut authenticated = false;
        loop {
            attempts.start();
            let http = self.transport.http(&access.registry)?;
            let mut builder = make(&http);
            if let Some(header) = self.authorization(access)? {
                builder = builder.header(AUTHORIZATION, header);
            }
            let mut request = builder.build().map_err(|source| Error::Transport {
                what: what.to_string(),
                source,
            })?;
            let deadline = match replay {
                Replay::Safe => self.config.read_timeout,
                Replay::Never => {
                    let body = request
                        .body()
                        .and_then(|b| b.as_bytes())
                        .map_or(0, <[u8]>::len);
                    let deadline = self.upload_deadline(body as u64);
                    *request.timeout_mut() = Some(deadline);
                    deadline
                }
            };
            let (method, url) = (request.method().clone(), request.url().clone());
            let started = Instant::now();
            let result = http.execute(request);
            log_request(&method, &url, attempts.made(), started, &result);
            let (reason, retry_after) = match result {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !authenticated => {
                    authenticated = true;
                    self.authenticate(access, &response)?;
                    continue;
                }
                Ok(response) if is_retryable(response.status()) && replay == Replay::Safe => {
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    (
                        format!("registry answered {}", response.status()),
                        retry_after,
                    )
                }
                Ok(response) => return Ok(response),
                // Retrying cannot make a certificate trusted: say how to trust it.
                Err(source) if tls::certificate_refused(&source).is_some() => {
                    return Err(self.untrusted(what, &access.registry, &source));
                }
                Err(source) if tls::speaks_no_tls(&source) => {
                    return Err(Error::NotTls {
                        what: what.to_string(),
                        registry: access.registry.clone(),
                    });
                }
                Err(source) if is_unresolved(&source) => {
                    return Err(Error::Resolve {
                        what: what.to_string(),
                        host: url.host_str().unwrap_or_default().to_string(),
                        why: error_chain(&source),
                    });
                }
                Err(source) if is_transient(&source) => {
                    let reason = describe_failure(&source, &method, &url, deadline);
                    if replay == Replay::Never {
                        return Err(Error::Interrupted {
                            what: what.to_string(),
                            reason,
                        });
                    }
                    (reason, None)
                }
                Err(source) => {
                    return Err(Error::Transport {
                        what: what.to_string(),
                        source,
                    });
                }
            };
            self.wait_before_retry(&attempts, what, reason, retry_after)?;
        }
    }

    /// Sleeps before the next attempt (announcing it as [`Event::Retry`]), or gives up
    /// with the last `reason` when attempts or budget ran out.
    pub(crate) fn wait_before_retry(
        &self,
        attempts: &Attempts,
        what: &str,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Result<()> {
        let Some(wait) = attempts.next_delay(retry_after) else {
            return Err(Error::GaveUp {
                what: what.to_string(),
                attempts: attempts.made(),
                elapsed: attempts.elapsed(),
                last: reason,
            });
        };
        tracing::debug!(what, attempt = attempts.made(), ?wait, reason = %reason, "retrying");
        (self.config.events)(&Event::Retry {
            what: what.to_string(),
            attempt: attempts.made(),
            wait,
            reason,
        });
        std::thread::sleep(wait);
        Ok(())
    }

    /// How long a request may go without an answer: the read timeout, plus a second per
    /// [`MIN_UPLOAD_RATE`] bytes of a chunk it uploads.
    fn upload_deadline(&self, body: u64) -> Duration {
        self.config.read_timeout + Duration::from_secs(body / MIN_UPLOAD_RATE)
    }

    /// The Authorization header for `access`, if the registry's scheme is known. For a
    /// Bearer registry a token for these scopes is fetched first if there is none (or it
    /// expired), so requests with bodies are not sent once just to learn they need one.
    fn authorization(&self, access: &Access) -> Result<Option<String>> {
        let challenge = {
            let auth = self.auth.lock().expect("auth lock");
            let Some(state) = auth.get(&access.registry) else {
                return Ok(None);
            };
            match state.scheme.as_ref().map(|c| &c.scheme) {
                Some(Scheme::Basic) => return Ok(state.basic.clone()),
                Some(Scheme::Bearer) => {
                    if let Some(token) = state
                        .tokens
                        .get(&access.scopes)
                        .filter(|t| t.expires > Instant::now())
                    {
                        return Ok(Some(format!("Bearer {}", token.value)));
                    }
                    state.scheme.clone().expect("matched Some")
                }
                _ => return Ok(None),
            }
        };
        let credential = self.config.credentials.get(&access.registry)?;
        let token = self.fetch_token(access, &challenge, credential.as_ref())?;
        let header = format!("Bearer {}", token.value);
        let mut auth = self.auth.lock().expect("auth lock");
        let state = auth.entry(access.registry.clone()).or_default();
        state.tokens.insert(access.scopes.clone(), token);
        Ok(Some(header))
    }

    /// Answers a 401: learns the scheme and, for Bearer, fetches a token for `access`.
    fn authenticate(&self, access: &Access, response: &Response) -> Result<()> {
        let registry = &access.registry;
        let header = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        if header.is_empty() {
            return Err(Error::Auth {
                registry: registry.clone(),
                why: "401 Unauthorized without a WWW-Authenticate challenge".into(),
            });
        }
        let challenges = challenge::parse(&header)?;
        let chosen = challenges
            .iter()
            .find(|c| c.scheme == Scheme::Bearer)
            .or_else(|| challenges.iter().find(|c| c.scheme == Scheme::Basic))
            .cloned()
            .ok_or_else(|| Error::Auth {
                registry: registry.clone(),
                why: format!("no supported scheme in {header:?} (wharf speaks Basic and Bearer)"),
            })?;
        let credential = self.config.credentials.get(registry)?;
        let (token, basic) = match (&chosen.scheme, &credential) {
            (Scheme::Bearer, _) => (
                Some(self.fetch_token(access, &chosen, credential.as_ref())?),
                None,
            ),
            (_, Some(Credential::Basic { username, password })) => (
                None,
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()))
                )),
            ),
            (_, Some(Credential::RegistryToken(token))) => {
                (None, Some(format!("Bearer {}", token.expose())))
            }
            _ => {
                return Err(Error::Auth {
                    registry: registry.clone(),
                    why: format!(
                        "the registry wants a username and password and none are configured (hint: docker login {registry}, or set WHARF_REGISTRY_USERNAME and WHARF_REGISTRY_PASSWORD)"
                    ),
                });
            }
        };
        let mut auth = self.auth.lock().expect("auth lock");
        let state = auth.entry(registry.clone()).or_default();
        state.scheme = Some(chosen);
        state.basic = basic;
        if let Some(token) = token {
            state.tokens.insert(access.scopes.clone(), token);
        }
        Ok(())
    }

    /// The token dance (distribution's token spec, and OAuth2 with a refresh token).
    fn fetch_token(
        &self,
        access: &Access,
        challenge: &Challenge,
        credential: Option<&Credential>,
    ) -> Result<Token> {
        let registry = &access.registry;
        let auth_error = |why: String| Error::Auth {
            registry: registry.clone(),
            why,
        };
        let realm = challenge
            .realm()
            .ok_or_else(|| auth_error("the Bearer challenge has no realm".into()))?;
        let realm_url = reqwest::Url::parse(realm)
            .map_err(|e| auth_error(format!("the token realm {realm:?} is not a URL: {e}")))?;
        let realm_authority = tls::url_authority(&realm_url);
        if realm_url.scheme() != "https"
            && !tls::plain_http_allowed(&realm_authority, &self.config.insecure)
        {
            return Err(auth_error(format!(
                "refusing to send credentials to the plain-HTTP token realm {realm}"
            )));
        }
        let mut scopes = access.scopes.clone();
        if let Some(asked) = challenge.scope() {
            for scope in asked.split(' ') {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_string());
                }
            }
        }
        let service = challenge.service();
        let http = self.transport.http(&realm_authority)?;
        let mut attempts = Attempts::new(&self.config.retry);
        let response = loop {
            attempts.start();
            let request = match credential {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("refresh_token", refresh.expose().to_string()),
                        ("client_id", "wharf".to_string()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(service) = service {
                        form.push(("service", service.to_string()));
                    }
                    http.post(realm_url.clone()).form(&form)
                }
                other => {
                    let mut url = realm_url.clone();
                    {
                        let mut query = url.query_pairs_mut();
                        if let Some(service) = service {
                            query.append_pair("service", service);
                        }
                        for scope in &scopes {
                            query.append_pair("scope", scope);
                        }
                    }
                    let request = http.get(url);
                    match other {
                        Some(Credential::Basic { username, password }) => {
                            request.basic_auth(username, Some(password.expose()))
                        }
                        _ => request,
                    }
                }
            };
            let started = Instant::now();
            let result = request.send();
            tracing::debug!(
                realm = %redacted(&realm_url),
                attempt = attempts.made(),
                status = result.as_ref().ok().map(|r| r.status().as_u16()),
                duration_ms = started.elapsed().as_millis() as u64,
                "token request"
            );
            match result {
                Ok(r) if is_retryable(r.status()) => {
                    let wait = attempts.next_delay(None).ok_or_else(|| {
                        auth_error(format!("token server {realm} answered {}", r.status()))
                    })?;
                    std::thread::sleep(wait);
                }
                Ok(r) => break r,
                Err(e) if tls::certificate_refused(&e).is_some() => {
                    return Err(self.untrusted("fetching a token", &realm_authority, &e));
                }
                Err(e) if is_transient(&e) => {
                    let wait = attempts.next_delay(None).ok_or_else(|| {
                        auth_error(format!("token server {realm}: {}", error_chain(&e)))
                    })?;
                    std::thread::sleep(wait);
                }
                Err(e) => {
                    return Err(auth_error(format!(
                        "token server {realm}: {}",
                        error_chain(&e)
                    )));
                }
            }
        };
        if !response.status().is_success() {
            let hint = if credential.is_some() {
                "check the credentials for this registry"
            } else {
                "the registry needs credentials: docker login, or WHARF_REGISTRY_USERNAME/PASSWORD"
            };
            return Err(auth_error(format!(
                "token server {realm} answered {} (hint: {hint})",
                response.status()
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body: TokenResponse = response
            .json()
            .map_err(|e| auth_error(format!("token server {realm} sent no JSON token: {e}")))?;
        let value = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_error(format!("token server {realm} sent an empty token")))?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60).max(10));
        Ok(Token {
            value,
            expires: Instant::now() + lifetime - Duration::from_secs(5),
        })
    }
}

/// True for 127.0.0.0/8, ::1 and localhost, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    tls::is_loopback(registry)
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A failed request in words that name the registry and what was awaited.
fn describe_failure(
    e: &reqwest::Error,
    method: &reqwest::Method,
    url: &reqwest::Url,
    deadline: Duration,
) -> String {
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => url.to_string(),
    };
    if e.is_timeout() && !e.is_connect() {
        format!(
            "no answer from {host} for {} s while waiting for the response to {method} {}",
            deadline.as_secs(),
            redacted(url)
        )
    } else {
        // reqwest's own message repeats the URL with its query (an upload's state): the
        // causes alone, after the redacted URL.
        let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), error_chain);
        format!("{method} {}: {cause}", redacted(url))
    }
}

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

/// A host name that does not resolve: hyper-util reports it as a connect error whose
/// cause reads "dns error" (the type is private, so the text is all there is).
fn is_unresolved(e: &reqwest::Error) -> bool {
    e.is_connect() && error_chain(e).contains("dns error")
}

/// `url` with query values hidden: upload state and token requests carry them, and
/// logs must not.
pub(crate) fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        shown
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), "REDACTED")));
    }
    shown.to_string()
}

/// One `debug!` line per request; headers (never their values for credentials) at trace.
fn log_request(
    method: &reqwest::Method,
    url: &reqwest::Url,
    attempt: u32,
    started: Instant,
    result: &reqwest::Result<Response>,
) {
    let duration_ms = started.elapsed().as_millis() as u64;
    let url = redacted(url);
    match result {
        Ok(response) => {
            tracing::debug!(%method, %url, status = response.status().as_u16(), attempt, duration_ms, "registry request");
            tracing::trace!(%method, %url, headers = ?header_names(response.headers()), "registry response headers");
        }
        Err(e) => {
            tracing::debug!(%method, %url, attempt, duration_ms, error = %error_chain(e), "registry request failed");
        }
    }
}

/// Header names with their values, credentials and tokens replaced.
fn header_names(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .iter()
        .map(|(name, value)| match name.as_str() {
            "authorization" | "www-authenticate" | "set-cookie" | "cookie" => {
                format!("{name}: REDACTED")
            }
            _ => format!("{name}: {}", value.to_str().unwrap_or("(binary)")),
        })
        .collect()
}

/// The error and its causes on one line (reqwest's Display hides the cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns a non-success response into an error with the registry's own error code.
pub fn check(response: Response, what: &str) -> Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let body = response.text().unwrap_or_default();
    let first = serde_json::from_str::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next());
    let (code, message) = first.map_or((None, None), |e| (e.code, e.message));
    let hint = match status {
        401 => Some("check the credentials for this registry".to_string()),
        403 => Some("the credentials lack permission for this repository".to_string()),
        404 => Some("check the repository name and tag or digest".to_string()),
        _ => None,
    };
    Err(Error::Status {
        what: what.to_string(),
        status,
        code,
        message,
        hint,
    })
}
