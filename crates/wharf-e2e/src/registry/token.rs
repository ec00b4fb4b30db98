//! A Bearer token issuer on 127.0.0.1: a test double for an authorization service such as
//! Docker Hub's `auth.docker.io`, implementing the distribution token protocol
//! (`GET /token?service=..&scope=..` with optional HTTP Basic credentials, and the OAuth2
//! `POST /token` password grant) and signing ES256 JWTs that a real `docker-registry`
//! configured with [`TokenServer::registry_auth`] accepts.
//!
//! It records every request (never a password) and counts the tokens it issues, so tests
//! can assert what a client asked for. It never stores or forwards anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use super::http::{self, Server};

/// The `service` the registry is configured with (the JWT audience).
pub const SERVICE: &str = "wharf-test-registry";
/// The `iss` claim the registry is configured to expect.
pub const ISSUER: &str = "wharf-test-token-server";

/// distribution 2.8 accepts a token up to this long after its `exp` (and before its `nbf`)
/// to allow for clock skew (`token.Leeway` in `registry/auth/token/token.go`).
pub const REGISTRY_LEEWAY: Duration = Duration::from_secs(60);

/// Default token lifetime, as Docker Hub's (`expires_in: 300`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Most requests kept by [`TokenServer::requests`].
const MAX_RECORDED: usize = 100_000;
/// Socket timeout for a token request.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest form body accepted by `POST /token`.
const MAX_FORM: u64 = 64 * 1024;

/// What a registry's `auth.token` configuration needs to trust a [`TokenServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAuth {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM file with the certificate whose key signs the tokens.
    pub rootcertbundle: PathBuf,
}

/// How a token names its verifying key in the JWT header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyHint {
    /// `kid`: the libtrust key ID of the certificate's public key. distribution 2.8 looks it
    /// up among the keys of the certificates in `rootcertbundle`.
    #[default]
    Kid,
    /// `x5c`: the signing certificate itself (base64 DER), verified as a chain to the
    /// `rootcertbundle` roots. Takes precedence over `kid` in distribution 2.8.
    X5c,
    /// Neither: distribution 2.8 rejects such a token ("unable to get token signing key").
    None,
}

/// One `type:name:actions` grant, as in the JWT `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// `repository`, `registry`, ...
    pub kind: String,
    /// `a/b` for a repository, `catalog` for the registry.
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// Parses `repository:a/b:pull,push` (the name may itself contain `:`, e.g. a port).
    pub fn parse(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        json!({"type": self.kind, "name": self.name, "actions": self.actions})
    }
}

/// A request the token server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query as sent, e.g. `/token?scope=repository%3Aa%3Apull&service=...`.
    pub path_and_query: String,
    /// The `service` parameter, if any.
    pub service: Option<String>,
    /// Every requested scope, decoded, in order (`repository:a/b:pull,push`).
    pub scopes: Vec<String>,
    /// The user named by Basic credentials (or the OAuth2 form); never the password.
    pub username: Option<String>,
    /// Whether an `Authorization: Basic` header was present.
    pub basic: bool,
    /// The OAuth2 `grant_type` of a POST (`password`, `refresh_token`), if any.
    pub grant_type: Option<String>,
    /// The status answered: 200, 401 (bad credentials), 400 or 404.
    pub status: u16,
    /// What the issued token grants (empty unless 200).
    pub granted: Vec<Access>,
}

struct State {
    users: BTreeMap<String, String>,
    denied: BTreeSet<(String, String)>,
    lifetime: Duration,
    compensate_leeway: bool,
    anonymous_pull: bool,
    key_hint: KeyHint,
    requests: Vec<TokenRequest>,
    issued: usize,
    /// OAuth2 refresh tokens (docker's `identitytoken`) and the user each stands for.
    refresh_tokens: BTreeMap<String, String>,
}

struct Keys {
    signing: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der: Vec<u8>,
    kid: String,
}

/// A running token server. Stops on drop.
pub struct TokenServer {
    server: Server,
    state: Arc<Mutex<State>>,
    keys: Arc<Keys>,
    auth: TokenAuth,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Generates a P-256 key and a self-signed certificate for it, and serves
    /// `http://127.0.0.1:PORT/token`. No users; anonymous requests get `pull` only.
    pub fn start() -> TokenServer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generating a P-256 key");
        let signing =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("loading the generated P-256 key");
        let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("loading the key into rcgen");
        let mut params = rcgen::CertificateParams::new(vec![ISSUER.to_string()])
            .expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ISSUER);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params
            .self_signed(&key)
            .expect("self-signing the token certificate");
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let keys = Arc::new(Keys {
            signing,
            rng,
            cert_der: cert.der().to_vec(),
            kid: libtrust_key_id(&spki),
        });

        let dir = tempfile::Builder::new()
            .prefix("wharf-token-")
            .tempdir()
            .expect("creating a temporary directory");
        let bundle = dir.path().join("rootcertbundle.pem");
        std::fs::write(&bundle, cert.pem()).expect("writing the root certificate bundle");

        let state = Arc::new(Mutex::new(State {
            users: BTreeMap::new(),
            denied: BTreeSet::new(),
            lifetime: DEFAULT_LIFETIME,
            compensate_leeway: false,
            anonymous_pull: true,
            key_hint: KeyHint::default(),
            requests: Vec::new(),
            issued: 0,
            refresh_tokens: BTreeMap::new(),
        }));
        let server = Server::start("token-server", {
            let state = state.clone();
            let keys = keys.clone();
            move |stream, _| serve(stream, &state, &keys)
        })
        .expect("binding the token server on 127.0.0.1");
        let auth = TokenAuth {
            realm: format!("http://{}/token", server.host()),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            rootcertbundle: bundle,
        };
        TokenServer {
            server,
            state,
            keys,
            auth,
            _dir: dir,
        }
    }

    /// What the registry's `auth.token` configuration needs ([`super::Auth::Token`]).
    pub fn registry_auth(&self) -> TokenAuth {
        self.auth.clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host().to_string()
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        self.auth.realm.clone()
    }

    /// The libtrust key ID put in the `kid` header.
    pub fn key_id(&self) -> String {
        self.keys.kid.clone()
    }

    /// Adds (or replaces) a user. Requests with Basic credentials of an unknown user or a
    /// wrong password get 401.
    pub fn add_user(&self, username: &str, password: &str) {
        self.lock()
            .users
            .insert(username.to_string(), password.to_string());
    }

    /// From now on, never grant `push` on `repo` (to test insufficient scope).
    pub fn deny_push(&self, repo: &str) {
        self.deny(repo, "push");
    }

    /// From now on, never grant `action` on `repo` (`pull`, `push`, `delete`, `*`).
    pub fn deny(&self, repo: &str, action: &str) {
        self.lock()
            .denied
            .insert((repo.to_string(), action.to_string()));
    }

    /// Forgets every denial.
    pub fn allow_all(&self) {
        self.lock().denied.clear();
    }

    /// Whether requests without credentials get a token granting `pull` (default, like
    /// Docker Hub for public repositories) or 401.
    pub fn set_anonymous_pull(&self, allowed: bool) {
        self.lock().anonymous_pull = allowed;
    }

    /// Lifetime of the tokens issued from now on: `expires_in` in the response, and `exp` in
    /// the JWT. distribution 2.8 accepts a token until [`REGISTRY_LEEWAY`] after `exp`; use
    /// [`TokenServer::set_token_lifetime_enforced`] for tokens the registry rejects once
    /// `expires_in` has passed.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        let mut s = self.lock();
        s.lifetime = lifetime;
        s.compensate_leeway = false;
    }

    /// Like [`TokenServer::set_token_lifetime`], but the JWT's `exp` is moved back by the
    /// registry's leeway, so the registry starts rejecting the token right when
    /// `expires_in` says it expires (the `exp` claim is then in the past: a client that
    /// reads claims instead of treating tokens as opaque would be confused).
    pub fn set_token_lifetime_enforced(&self, lifetime: Duration) {
        let mut s = self.lock();
        s.lifetime = lifetime;
        s.compensate_leeway = true;
    }

    /// How tokens from now on name their verifying key.
    pub fn set_key_hint(&self, hint: KeyHint) {
        self.lock().key_hint = hint;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the recorded requests (the issued count stays).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Number of tokens issued so far.
    /// Accepts `token` in the OAuth2 refresh-token grant (a POST with
    /// `grant_type=refresh_token`) as `username`, as registries do for the
    /// `identitytoken` that `docker login` stores.
    pub fn add_refresh_token(&self, username: &str, token: &str) {
        self.lock()
            .refresh_tokens
            .insert(token.to_string(), username.to_string());
    }

    pub fn tokens_issued(&self) -> usize {
        self.lock().issued
    }

    /// Signs a token for `subject` granting `scopes` (`repository:a/b:pull,push`), valid
    /// from one second ago for `valid_for`, without going through HTTP (not counted).
    pub fn mint(&self, subject: &str, scopes: &[&str], valid_for: Duration) -> String {
        let now = unix_now();
        let access: Vec<Access> = scopes.iter().filter_map(|s| Access::parse(s)).collect();
        let hint = self.lock().key_hint;
        sign_token(
            &self.keys,
            hint,
            subject,
            SERVICE,
            &access,
            now.saturating_sub(1),
            now + valid_for.as_secs(),
        )
    }

    /// A token that expired an hour ago (well past the registry's leeway).
    pub fn mint_expired(&self, subject: &str, scopes: &[&str]) -> String {
        self.mint_expired_for(subject, scopes, Duration::from_secs(3600))
    }

    /// A token whose `exp` passed `ago` ago (issued an hour before that), so a test can
    /// put it on either side of [`REGISTRY_LEEWAY`] without waiting.
    pub fn mint_expired_for(&self, subject: &str, scopes: &[&str], ago: Duration) -> String {
        let expired = unix_now() - ago.as_secs();
        let access: Vec<Access> = scopes.iter().filter_map(|s| Access::parse(s)).collect();
        let hint = self.lock().key_hint;
        sign_token(
            &self.keys,
            hint,
            subject,
            SERVICE,
            &access,
            expired - 3600,
            expired,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// libtrust's key ID: the first 240 bits of the SHA-256 of the DER SubjectPublicKeyInfo,
/// base32 (RFC 4648, no padding), in 12 groups of 4 separated by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let b32 = base32(&hash.as_ref()[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `2006-01-02T15:04:05Z` for a Unix time.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn sign_token(
    keys: &Keys,
    hint: KeyHint,
    subject: &str,
    audience: &str,
    access: &[Access],
    not_before: u64,
    expires: u64,
) -> String {
    let mut header = json!({"typ": "JWT", "alg": "ES256"});
    match hint {
        KeyHint::Kid => header["kid"] = json!(keys.kid),
        KeyHint::X5c => header["x5c"] = json!([STANDARD.encode(&keys.cert_der)]),
        KeyHint::None => {}
    }
    let mut jti = [0u8; 16];
    keys.rng.fill(&mut jti).expect("random jti");
    let claims = json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "exp": expires,
        "nbf": not_before,
        "iat": not_before,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "access": access.iter().map(Access::to_json).collect::<Vec<_>>(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = keys
        .signing
        .sign(&keys.rng, signing_input.as_bytes())
        .expect("ES256 signing");
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

/// Serves one connection: one request, then close.
fn serve(stream: TcpStream, state: &Mutex<State>, keys: &Keys) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    let Ok(Some(head)) = http::read_head(&mut reader) else {
        return;
    };
    let mut out = &stream;
    let Ok((method, target)) = head.request_line() else {
        let _ = http::respond(
            &mut out,
            400,
            "Bad Request",
            &[],
            b"bad request line\n",
            true,
        );
        return;
    };
    let (method, target) = (method.to_string(), target.to_string());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = http::query_pairs(query);

    let mut form_user = None;
    let mut form_password = None;
    let mut form_refresh = None;
    if method == "POST" {
        // OAuth2 password grant (containerd tries it first when it has credentials).
        let mut body = Vec::new();
        let framing = http::request_framing(&head).unwrap_or(http::Framing::None);
        if http::copy_body(&mut reader, &mut body, framing, None, MAX_FORM).is_err() {
            let _ = http::respond(&mut out, 400, "Bad Request", &[], b"bad body\n", true);
            return;
        }
        for (k, v) in http::query_pairs(&String::from_utf8_lossy(&body)) {
            match k.as_str() {
                "username" => form_user = Some(v),
                "password" => form_password = Some(v),
                "refresh_token" => form_refresh = Some(v),
                _ => params.push((k, v)),
            }
        }
    }

    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let basic = head
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b64| {
            let decoded = STANDARD.decode(b64.trim()).unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded).into_owned();
            match text.split_once(':') {
                Some((u, p)) => (u.to_string(), Some(p.to_string())),
                None => (text, None),
            }
        });
    let has_basic = basic.is_some();
    let (username, password) = match (basic, form_user) {
        (Some((u, p)), _) => (Some(u), p),
        (None, Some(u)) => (Some(u), form_password),
        (None, None) => (None, None),
    };

    let grant_type = params
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.clone());
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    // The refresh-token grant names no user: the token stands for one (or for nobody).
    let refreshed_user = match (grant_type.as_deref(), &form_refresh) {
        (Some("refresh_token"), Some(token)) => Some(s.refresh_tokens.get(token).cloned()),
        _ => None,
    };
    let username = match &refreshed_user {
        Some(user) => Some(
            user.clone()
                .unwrap_or_else(|| "<unknown refresh token>".into()),
        ),
        None => username,
    };
    let mut record = TokenRequest {
        method: method.clone(),
        path_and_query: target.clone(),
        service: service.clone(),
        scopes: scopes.clone(),
        username: username.clone(),
        basic: has_basic,
        grant_type: grant_type.clone(),
        status: 200,
        granted: Vec::new(),
    };
    let status_body: Result<serde_json::Value, (u16, &str)> = if path != "/token" {
        Err((404, "not found"))
    } else if method != "GET" && method != "POST" {
        Err((405, "method not allowed"))
    } else {
        let authenticated = match (&refreshed_user, &username, &password) {
            (Some(user), _, _) => user.is_some(),
            (None, Some(u), Some(p)) => s.users.get(u).is_some_and(|want| want == p),
            _ => false,
        };
        let anonymous = username.is_none();
        let allowed = authenticated || (anonymous && s.anonymous_pull);
        if !allowed {
            Err((401, "invalid username or password"))
        } else {
            let granted: Vec<Access> = scopes
                .iter()
                .filter_map(|scope| Access::parse(scope))
                .map(|mut a| {
                    a.actions.retain(|action| {
                        (!anonymous || action == "pull")
                            && !s.denied.contains(&(a.name.clone(), action.clone()))
                    });
                    a
                })
                .collect();
            let now = unix_now();
            let lifetime = s.lifetime.as_secs().max(1);
            let exp = if s.compensate_leeway {
                (now + lifetime).saturating_sub(REGISTRY_LEEWAY.as_secs())
            } else {
                now + lifetime
            };
            let token = sign_token(
                keys,
                s.key_hint,
                username.as_deref().unwrap_or(""),
                service.as_deref().unwrap_or(SERVICE),
                &granted,
                now,
                exp,
            );
            s.issued += 1;
            record.granted = granted;
            Ok(json!({
                "token": token,
                "access_token": token,
                "expires_in": lifetime,
                "issued_at": rfc3339(now),
            }))
        }
    };
    let (status, response) = match status_body {
        Ok(body) => (200, body),
        Err((status, message)) => (
            status,
            json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]}),
        ),
    };
    record.status = status;
    if s.requests.len() < MAX_RECORDED {
        s.requests.push(record);
    }
    drop(s);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut headers = vec![("Content-Type", "application/json")];
    let challenge = format!("Basic realm=\"{ISSUER}\"");
    if status == 401 {
        headers.push(("WWW-Authenticate", &challenge));
    }
    let body = response.to_string();
    let _ = http::respond(&mut out, status, reason, &headers, body.as_bytes(), true);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
