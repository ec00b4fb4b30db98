//! Where registry credentials come from: environment variables, docker's `config.json`, and
//! the credential helpers it names.
//!
//! A [`CredentialSource`] answers "what do I log in to this registry with?". [`Chain`] asks
//! several in order, and [`default_sources`] is what a command uses: [`Env`] first (CI sets
//! variables), then [`DockerConfig`] (a developer ran `docker login`).
//!
//! This module only reads credentials: it never talks to a registry or a token server, and
//! never writes a config file or stores a secret. Secrets stay inside [`Secret`], which never
//! prints, and no error carries a password, a token, a base64 `auth` value or a helper's
//! output.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value};

/// How long a credential helper may take before it is killed.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Docker Hub's key in `config.json` and for credential helpers, whatever name it is given.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Docker Hub's host after [`registry_host`]; also the name its variables use (`DOCKER_IO`).
const DOCKER_HUB_HOST: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// What a helper may print before we stop reading; credentials are a few kilobytes at most.
const HELPER_OUTPUT_LIMIT: u64 = 1 << 20;

/// A secret that never prints: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, to put in a request; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What to log in to a registry with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// OAuth2 refresh token from `identitytoken` in docker config (used with a token server's
    /// POST flow).
    IdentityToken(Secret),
    /// A registry token to send as-is (`registrytoken` in docker config).
    RegistryToken(Secret),
}

/// Something that may know credentials for a registry.
pub trait CredentialSource: Send + Sync {
    /// Credentials for `registry` (a host such as `localhost:5000` or `ghcr.io`; a scheme and
    /// path are ignored, and Docker Hub's names are one registry), or `None` if this source
    /// has none.
    fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialError>;
}

/// Why credentials could not be read. Messages name where the problem is and never include a
/// secret or a helper's output.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{set} is set but {missing} is not (set both, or neither)")]
    EnvIncomplete { set: String, missing: String },
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}:{column}: not valid JSON ({problem})")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        problem: String,
    },
    #[error("{path}: {field} is not {expected}")]
    Shape {
        path: PathBuf,
        field: String,
        expected: &'static str,
    },
    #[error(
        "{path}: auths[{key:?}].auth is not base64 of user:password (run `docker login {registry}` to write it again)"
    )]
    BadAuth {
        path: PathBuf,
        key: String,
        registry: String,
    },
    #[error("{path}: auths[{key:?}] has a {present} but no {missing}")]
    Incomplete {
        path: PathBuf,
        key: String,
        present: &'static str,
        missing: &'static str,
    },
    #[error(
        "{path}: {field} is {name:?}, which is not a credential helper name (expected the part after docker-credential-, such as \"desktop\")"
    )]
    HelperName {
        path: PathBuf,
        field: String,
        name: String,
    },
    #[error(
        "helper docker-credential-{helper} (named by {field} in {path}) is not on PATH (install it, or remove {field} from {path})"
    )]
    HelperNotFound {
        helper: String,
        field: String,
        path: PathBuf,
    },
    #[error("running helper docker-credential-{helper}: {source}")]
    HelperSpawn {
        helper: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "helper docker-credential-{helper} failed with {status} for {server} (run `printf %s {server} | docker-credential-{helper} get` to see its message)"
    )]
    HelperFailed {
        helper: String,
        server: String,
        status: String,
    },
    #[error("helper docker-credential-{helper} did not answer within {timeout:?} and was killed")]
    HelperTimeout { helper: String, timeout: Duration },
    #[error(
        "helper docker-credential-{helper} printed {problem}, not the JSON object {{\"ServerURL\", \"Username\", \"Secret\"}}"
    )]
    HelperOutput {
        helper: String,
        problem: &'static str,
    },
}

type Result<T, E = CredentialError> = std::result::Result<T, E>;

/// Credentials from environment variables, for CI:
///
/// - `WHARF_REGISTRY_<HOST>_USERNAME` and `_PASSWORD` for one registry, where `HOST` is the
///   registry host uppercased with every other character than a letter or digit replaced by
///   `_` (`localhost:5000` is `LOCALHOST_5000`; Docker Hub is `DOCKER_IO`);
/// - else `WHARF_REGISTRY_USERNAME` and `WHARF_REGISTRY_PASSWORD`, for every registry, or only
///   for `WHARF_REGISTRY_HOST` if that is set.
///
/// An empty variable counts as unset (CI systems expand a missing secret to ""); one of a pair
/// without the other is an error rather than an anonymous request that fails later.
pub struct Env {
    /// `None` reads the process environment at each lookup.
    vars: Option<BTreeMap<String, String>>,
}

impl Env {
    /// Reads the process environment (at each lookup, so it sees what is set at the time).
    pub fn from_process() -> Self {
        Env { vars: None }
    }

    /// Reads only `vars`, never the process environment: for tests, and for callers that
    /// take variables from elsewhere.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Env {
            vars: Some(
                vars.into_iter()
                    .filter(|(name, _)| name.starts_with("WHARF_REGISTRY_"))
                    .collect(),
            ),
        }
    }

    fn var(&self, name: &str) -> Result<Option<String>> {
        let value = match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => match std::env::var(name) {
                Ok(value) => Some(value),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(CredentialError::EnvNotUnicode {
                        var: name.to_owned(),
                    });
                }
            },
        };
        Ok(value.filter(|v| !v.is_empty()))
    }

    fn pair(&self, user_var: &str, password_var: &str) -> Result<Option<Credential>> {
        let incomplete = |set: &str, missing: &str| CredentialError::EnvIncomplete {
            set: set.to_owned(),
            missing: missing.to_owned(),
        };
        match (self.var(user_var)?, self.var(password_var)?) {
            (Some(username), Some(password)) => Ok(Some(Credential::Basic {
                username,
                password: Secret(password),
            })),
            (Some(_), None) => Err(incomplete(user_var, password_var)),
            (None, Some(_)) => Err(incomplete(password_var, user_var)),
            (None, None) => Ok(None),
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::from_process()
    }
}

impl fmt::Debug for Env {
    /// Names only: the values hold passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.vars {
            None => f.write_str("Env(process)"),
            Some(vars) => f.debug_tuple("Env").field(&vars.keys()).finish(),
        }
    }
}

impl CredentialSource for Env {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        let host = registry_host(registry);
        let prefix = format!("WHARF_REGISTRY_{}", env_name(&host));
        let own = self.pair(&format!("{prefix}_USERNAME"), &format!("{prefix}_PASSWORD"))?;
        if own.is_some() {
            return Ok(own);
        }
        if let Some(only) = self.var("WHARF_REGISTRY_HOST")?
            && registry_host(&only) != host
        {
            return Ok(None);
        }
        self.pair("WHARF_REGISTRY_USERNAME", "WHARF_REGISTRY_PASSWORD")
    }
}

/// `localhost:5000` -> `LOCALHOST_5000`.
fn env_name(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Docker's `config.json`, as `docker login` writes it: `auths`, `credsStore` and
/// `credHelpers` (other keys are ignored).
///
/// For a registry, a helper named in `credHelpers` for it, else the `credsStore` helper, is
/// asked first; if it has nothing, the registry's `auths` entry answers. Keys may be written
/// `host`, `https://host` or `http://host/v1/` (scheme and path are ignored, hosts compare
/// case-insensitively), and `docker.io`, `index.docker.io` and `registry-1.docker.io` are one
/// registry, Docker Hub, whose canonical key is `https://index.docker.io/v1/`.
///
/// The file's shape is checked when it is loaded; an `auths` entry's contents only when that
/// registry is asked for, so a broken entry for one registry does not stop the others.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    auths: BTreeMap<String, AuthEntry>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
    /// Where helpers are looked up, and the child's `PATH`; `None` is this process's `PATH`.
    helper_search_path: Option<OsString>,
    helper_timeout: Duration,
}

/// One `auths` entry; every secret field is a [`Secret`] so that `Debug` stays safe.
#[derive(Debug, Clone, Default)]
struct AuthEntry {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    identity_token: Option<Secret>,
    registry_token: Option<Secret>,
}

impl DockerConfig {
    /// Reads a `config.json`. A missing file is an empty config, as for docker.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_json(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::empty(path)),
            Err(source) => Err(CredentialError::Read { path, source }),
        }
    }

    /// Reads `$DOCKER_CONFIG/config.json` if `DOCKER_CONFIG` is set, else
    /// `~/.docker/config.json`. A missing file (or no home directory) is an empty config.
    pub fn from_default_location() -> Result<Self> {
        match default_path(std::env::var_os("DOCKER_CONFIG"), std::env::home_dir()) {
            Some(path) => Self::load(path),
            None => Ok(Self::empty(PathBuf::from("~/.docker/config.json"))),
        }
    }

    /// The file this config was read from (or would have been).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks credential helpers up in `search_path` (a `PATH`-style list) instead of this
    /// process's `PATH`, and gives it to the helper as its `PATH`.
    pub fn with_helper_search_path(mut self, search_path: impl Into<OsString>) -> Self {
        self.helper_search_path = Some(search_path.into());
        self
    }

    /// Kills a helper that has not answered after `timeout` (default
    /// [`DEFAULT_HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    fn empty(path: PathBuf) -> Self {
        DockerConfig {
            path,
            auths: BTreeMap::new(),
            cred_helpers: BTreeMap::new(),
            creds_store: None,
            helper_search_path: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// Parses the text of a config file; `path` is for messages.
    fn from_json(path: PathBuf, text: &str) -> Result<Self> {
        let mut config = Self::empty(path);
        // docker reads an empty file as an empty config.
        if text.trim().is_empty() {
            return Ok(config);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| syntax_error(&config.path, &e))?;
        let Value::Object(top) = value else {
            return Err(config.shape("the top level", "a JSON object"));
        };
        // Go's encoding/json, which docker uses, matches field names case-insensitively.
        for (name, value) in &top {
            match name.to_ascii_lowercase().as_str() {
                "auths" => {
                    for (key, entry) in config.object_or_null(value, name)?.iter() {
                        let entry = config.auth_entry(&format!("{name}[{key:?}]"), entry)?;
                        config.auths.insert(key.clone(), entry);
                    }
                }
                "credhelpers" => {
                    for (key, helper) in config.object_or_null(value, name)?.iter() {
                        let field = format!("{name}[{key:?}]");
                        if let Some(helper) = config.string_or_null(helper, &field)? {
                            config.cred_helpers.insert(key.clone(), helper.to_owned());
                        }
                    }
                }
                "credsstore" => {
                    config.creds_store = config.string_or_null(value, name)?.map(str::to_owned);
                }
                _ => {}
            }
        }
        Ok(config)
    }

    fn auth_entry(&self, field: &str, value: &Value) -> Result<AuthEntry> {
        let mut entry = AuthEntry::default();
        for (name, value) in self.object_or_null(value, field)?.iter() {
            let secret = |s: Option<&str>| s.map(Secret::new);
            let lower = name.to_ascii_lowercase();
            if !matches!(
                lower.as_str(),
                "auth" | "username" | "password" | "identitytoken" | "registrytoken"
            ) {
                continue;
            }
            let value = self.string_or_null(value, &format!("{field}.{name}"))?;
            match lower.as_str() {
                "auth" => entry.auth = secret(value),
                "username" => entry.username = value.map(str::to_owned),
                "password" => entry.password = secret(value),
                "identitytoken" => entry.identity_token = secret(value),
                _ => entry.registry_token = secret(value),
            }
        }
        Ok(entry)
    }

    /// An object's fields; `null` is an empty object, as for Go.
    fn object_or_null<'v>(&self, value: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match value {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(EMPTY.get_or_init(Map::new)),
            _ => Err(self.shape(field, "a JSON object")),
        }
    }

    /// A string field; `null` and `""` are absent (docker treats them alike).
    fn string_or_null<'v>(&self, value: &'v Value, field: &str) -> Result<Option<&'v str>> {
        match value {
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            _ => Err(self.shape(field, "a string")),
        }
    }

    fn shape(&self, field: &str, expected: &'static str) -> CredentialError {
        CredentialError::Shape {
            path: self.path.clone(),
            field: field.to_owned(),
            expected,
        }
    }

    fn helper_for(&self, host: &str) -> Option<(String, &str)> {
        if let Some((key, name)) = lookup(&self.cred_helpers, host) {
            return Some((format!("credHelpers[{key:?}]"), name.as_str()));
        }
        let store = self.creds_store.as_deref()?;
        Some(("credsStore".to_owned(), store))
    }

    fn run_helper(&self, field: &str, name: &str, host: &str) -> Result<Option<Credential>> {
        // The name becomes part of a program name: a `/` would let a config file run any
        // program on the machine.
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(CredentialError::HelperName {
                path: self.path.clone(),
                field: field.to_owned(),
                name: name.to_owned(),
            });
        }
        let helper = name.to_owned();
        let program = format!("docker-credential-{name}");
        let search_path = match &self.helper_search_path {
            Some(path) => path.clone(),
            None => std::env::var_os("PATH").unwrap_or_default(),
        };
        let Some(executable) = find_executable(&program, &search_path) else {
            return Err(CredentialError::HelperNotFound {
                helper,
                field: field.to_owned(),
                path: self.path.clone(),
            });
        };
        let server = server_url(host);
        let mut command = Command::new(executable);
        command.arg("get").env("PATH", &search_path);
        tracing::debug!(?command, "starting credential helper");
        let outcome = run_with_timeout(command, server.as_bytes(), self.helper_timeout).map_err(
            |source| CredentialError::HelperSpawn {
                helper: helper.clone(),
                source,
            },
        )?;
        let Some(output) = outcome else {
            return Err(CredentialError::HelperTimeout {
                helper,
                timeout: self.helper_timeout,
            });
        };
        if !output.status.success() {
            // The protocol's "not found" answer: exit non-zero and print this message.
            let not_found = |bytes: &[u8]| {
                String::from_utf8_lossy(bytes)
                    .to_ascii_lowercase()
                    .contains("credentials not found")
            };
            if not_found(&output.stdout) || not_found(&output.stderr) {
                return Ok(None);
            }
            return Err(CredentialError::HelperFailed {
                helper,
                server,
                status: describe_status(output.status),
            });
        }
        helper_credential(&helper, &output.stdout)
    }
}

impl CredentialSource for DockerConfig {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        let host = registry_host(registry);
        if let Some((field, name)) = self.helper_for(&host)
            && let Some(credential) = self.run_helper(&field, name, &host)?
        {
            return Ok(Some(credential));
        }
        let Some((key, entry)) = lookup(&self.auths, &host) else {
            return Ok(None);
        };
        entry.credential(&self.path, key, &host)
    }
}

impl AuthEntry {
    /// The entry's credential, in docker's order: registry token, identity token, `auth`,
    /// then `username` and `password`. An empty entry (what `docker login` leaves when a
    /// helper holds the secret) is `None`.
    fn credential(&self, path: &Path, key: &str, host: &str) -> Result<Option<Credential>> {
        if let Some(token) = &self.registry_token {
            return Ok(Some(Credential::RegistryToken(token.clone())));
        }
        if let Some(token) = &self.identity_token {
            return Ok(Some(Credential::IdentityToken(token.clone())));
        }
        if let Some(auth) = &self.auth {
            let Some((username, password)) = decode_auth(auth.expose()) else {
                return Err(CredentialError::BadAuth {
                    path: path.to_owned(),
                    key: key.to_owned(),
                    registry: display_registry(host),
                });
            };
            if username.is_empty() && password.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Credential::Basic {
                username,
                password: Secret(password),
            }));
        }
        let incomplete = |present, missing| CredentialError::Incomplete {
            path: path.to_owned(),
            key: key.to_owned(),
            present,
            missing,
        };
        match (&self.username, &self.password) {
            (Some(username), Some(password)) => Ok(Some(Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            })),
            (Some(_), None) => Err(incomplete("username", "password")),
            (None, Some(_)) => Err(incomplete("password", "username")),
            (None, None) => Ok(None),
        }
    }
}

/// `base64("user:password")` -> `(user, password)`; the password may contain `:`.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // Hand-made configs come from `echo user:pw | base64`, which may wrap lines and whose
    // padding people trim; neither changes what the value means.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = auth.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = String::from_utf8(LENIENT.decode(compact).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    // docker trims NULs that some tools leave at the end of the password.
    Some((username.to_owned(), password.trim_matches('\0').to_owned()))
}

/// The host a registry name stands for: scheme, user info and path stripped, lowercased, and Docker
/// Hub's aliases folded into `docker.io`.
fn registry_host(registry: &str) -> String {
    let s = registry.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let s = s.split('/').next().unwrap_or_default();
    // `user:password@host` must not carry a password into a variable name or a message.
    let s = s.rsplit_once('@').map_or(s, |(_, host)| host);
    let host = s.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB_HOST.to_owned()
    } else {
        host
    }
}

/// What a credential helper is asked for: the key `docker login` stored the secret under.
fn server_url(host: &str) -> String {
    if host == DOCKER_HUB_HOST {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// A registry as a user would type it to `docker login` (Docker Hub is the default).
fn display_registry(host: &str) -> String {
    if host == DOCKER_HUB_HOST {
        String::new()
    } else {
        host.to_owned()
    }
}

/// The entry of `map` whose key names `host`. If several do (`docker.io` and
/// `https://index.docker.io/v1/`), the one written in canonical form wins, then the first in
/// sorted order, so the answer never depends on map order.
fn lookup<'m, V>(map: &'m BTreeMap<String, V>, host: &str) -> Option<(&'m str, &'m V)> {
    let canonical = server_url(host);
    if let Some((key, value)) = map.get_key_value(&canonical) {
        return Some((key, value));
    }
    map.iter()
        .find(|(key, _)| registry_host(key) == host)
        .map(|(key, value)| (key.as_str(), value))
}

fn default_path(docker_config: Option<OsString>, home: Option<PathBuf>) -> Option<PathBuf> {
    match docker_config {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => home.map(|home| home.join(".docker").join("config.json")),
    }
}

/// A syntax error's position and kind. serde_json's syntax messages are fixed phrases ("expected
/// `,` or `}`"), never input text; anything else gets a generic phrase, since the input is
/// full of secrets.
fn syntax_error(path: &Path, e: &serde_json::Error) -> CredentialError {
    use serde_json::error::Category;
    let problem = match e.classify() {
        Category::Syntax | Category::Eof => {
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            message
                .strip_suffix(&suffix)
                .unwrap_or("malformed JSON")
                .to_owned()
        }
        Category::Io | Category::Data => "malformed JSON".to_owned(),
    };
    CredentialError::Syntax {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        problem,
    }
}

/// Reads a helper's answer `{"ServerURL": ..., "Username": ..., "Secret": ...}`.
fn helper_credential(helper: &str, stdout: &[u8]) -> Result<Option<Credential>> {
    let bad = |problem| CredentialError::HelperOutput {
        helper: helper.to_owned(),
        problem,
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(stdout) else {
        return Err(bad("output that is not a JSON object"));
    };
    let mut username = String::new();
    let mut secret = String::new();
    for (name, value) in &fields {
        let slot = if name.eq_ignore_ascii_case("username") {
            &mut username
        } else if name.eq_ignore_ascii_case("secret") {
            &mut secret
        } else {
            continue;
        };
        match value {
            Value::String(s) => *slot = s.clone(),
            Value::Null => {}
            _ => return Err(bad("a Username or Secret that is not a string")),
        }
    }
    if secret.is_empty() {
        return Ok(None);
    }
    // The protocol's marker for "the secret is an identity token".
    if username == "<token>" {
        return Ok(Some(Credential::IdentityToken(Secret(secret))));
    }
    Ok(Some(Credential::Basic {
        username,
        password: Secret(secret),
    }))
}

fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

/// The first `program` in a `PATH`-style list. Empty entries (the current directory, by old
/// convention) are skipped: a credential helper must not come from wherever we happen to run.
fn find_executable(program: &str, search_path: &OsStr) -> Option<PathBuf> {
    let names: &[String] = if cfg!(windows) {
        &[format!("{program}.exe"), program.to_owned()]
    } else {
        &[program.to_owned()]
    };
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` with `input` on stdin; `None` if it has not finished within `timeout`, in
/// which case it is killed. Only the process itself is killed: a helper's own children are
/// left alone, and if one of them keeps the output open we stop waiting for it at the deadline
/// (the reader threads end when it exits).
fn run_with_timeout(
    mut command: Command,
    input: &[u8],
    timeout: Duration,
) -> io::Result<Option<Output>> {
    let deadline = Instant::now() + timeout;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both outputs on their own threads: a helper blocked on a full pipe never exits.
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    if let Some(mut stdin) = child.stdin.take() {
        // A server URL fits in any pipe buffer, so this cannot block; a helper that exits
        // without reading makes it fail, which its exit status reports better.
        let _ = stdin.write_all(input);
    }
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| -> Option<Vec<u8>> {
        match rx {
            None => Some(Vec::new()),
            Some(rx) => rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok(),
        }
    };
    let (Some(stdout), Some(stderr)) = (collect(stdout), collect(stderr)) else {
        return Ok(None);
    };
    Ok(Some(Output {
        status,
        stdout,
        stderr,
    }))
}

fn read_in_background(pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // An error only cuts the output short, and the exit status tells whether it mattered.
        let _ = pipe.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Sources asked in order; the first that has credentials wins, and an error stops the search
/// (a broken source should be fixed, not skipped).
pub struct Chain(Vec<Box<dyn CredentialSource>>);

impl Chain {
    pub fn new(sources: Vec<Box<dyn CredentialSource>>) -> Self {
        Chain(sources)
    }

    /// This chain with `source` asked last.
    pub fn with(mut self, source: impl CredentialSource + 'static) -> Self {
        self.0.push(Box::new(source));
        self
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chain({} sources)", self.0.len())
    }
}

impl CredentialSource for Chain {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        for source in &self.0 {
            if let Some(credential) = source.get(registry)? {
                return Ok(Some(credential));
            }
        }
        Ok(None)
    }
}

/// [`Env`] from the process environment, then the default [`DockerConfig`].
pub fn default_sources() -> Chain {
    Chain::new(vec![
        Box::new(Env::from_process()),
        Box::new(DefaultDockerConfig),
    ])
}

/// The default docker config, read at each lookup: a broken file only matters to commands
/// that need credentials, and a `docker login` during a long run is seen.
struct DefaultDockerConfig;

impl CredentialSource for DefaultDockerConfig {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        DockerConfig::from_default_location()?.get(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn basic(username: &str, password: &str) -> Option<Credential> {
        Some(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        })
    }

    fn config(json: &str) -> DockerConfig {
        DockerConfig::from_json(PathBuf::from("/home/u/.docker/config.json"), json)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn config_error(json: &str) -> String {
        DockerConfig::from_json(PathBuf::from("/home/u/.docker/config.json"), json)
            .map(|c| format!("{c:?}"))
            .expect_err("config should be rejected")
            .to_string()
    }

    fn auth(user_password: &str) -> String {
        STANDARD.encode(user_password)
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "hunter2");
        let credential = basic("alice", "hunter2").unwrap();
        let debug = format!("{credential:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("alice"),
            "{debug}"
        );
        let debug = format!(
            "{:?}",
            config(&format!(
                r#"{{"auths":{{"h":{{"auth":"{}"}}}}}}"#,
                auth("a:hunter2")
            ))
        );
        assert!(!debug.contains("hunter2") && !debug.contains(&auth("a:hunter2")));
        let debug = format!("{:?}", env(&[("WHARF_REGISTRY_PASSWORD", "hunter2")]));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn registry_names() {
        for (input, host) in [
            ("localhost:5000", "localhost:5000"),
            ("https://localhost:5000", "localhost:5000"),
            ("http://localhost:5000/v1/", "localhost:5000"),
            ("HTTPS://Registry.Example.com/v2/", "registry.example.com"),
            ("ghcr.io/wharf-rs/wharf", "ghcr.io"),
            ("https://alice:hunter2@ghcr.io/v2/", "ghcr.io"),
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
        ] {
            assert_eq!(registry_host(input), host, "{input}");
        }
        assert_eq!(env_name("localhost:5000"), "LOCALHOST_5000");
        assert_eq!(
            env_name("my-registry.example.com"),
            "MY_REGISTRY_EXAMPLE_COM"
        );
        assert_eq!(env_name("docker.io"), "DOCKER_IO");
    }

    #[test]
    fn env_global_and_per_registry() {
        let global = env(&[
            ("WHARF_REGISTRY_USERNAME", "ci"),
            ("WHARF_REGISTRY_PASSWORD", "pw"),
        ]);
        assert_eq!(global.get("ghcr.io").unwrap(), basic("ci", "pw"));
        assert_eq!(global.get("localhost:5000").unwrap(), basic("ci", "pw"));

        let only = env(&[
            ("WHARF_REGISTRY_USERNAME", "ci"),
            ("WHARF_REGISTRY_PASSWORD", "pw"),
            ("WHARF_REGISTRY_HOST", "https://LOCALHOST:5000/"),
        ]);
        assert_eq!(only.get("localhost:5000").unwrap(), basic("ci", "pw"));
        assert_eq!(only.get("ghcr.io").unwrap(), None);

        let hub_only = env(&[
            ("WHARF_REGISTRY_USERNAME", "ci"),
            ("WHARF_REGISTRY_PASSWORD", "pw"),
            ("WHARF_REGISTRY_HOST", "docker.io"),
        ]);
        assert_eq!(
            hub_only.get("registry-1.docker.io").unwrap(),
            basic("ci", "pw")
        );

        let both = env(&[
            ("WHARF_REGISTRY_USERNAME", "ci"),
            ("WHARF_REGISTRY_PASSWORD", "pw"),
            ("WHARF_REGISTRY_LOCALHOST_5000_USERNAME", "local"),
            ("WHARF_REGISTRY_LOCALHOST_5000_PASSWORD", "localpw"),
            ("WHARF_REGISTRY_DOCKER_IO_USERNAME", "hub"),
            ("WHARF_REGISTRY_DOCKER_IO_PASSWORD", "hubpw"),
        ]);
        assert_eq!(
            both.get("localhost:5000").unwrap(),
            basic("local", "localpw")
        );
        assert_eq!(
            both.get("http://localhost:5000/v2/").unwrap(),
            basic("local", "localpw")
        );
        assert_eq!(both.get("index.docker.io").unwrap(), basic("hub", "hubpw"));
        assert_eq!(both.get("ghcr.io").unwrap(), basic("ci", "pw"));

        // Per-registry variables apply even when WHARF_REGISTRY_HOST names another registry.
        let per_registry = env(&[
            ("WHARF_REGISTRY_HOST", "ghcr.io"),
            ("WHARF_REGISTRY_LOCALHOST_5000_USERNAME", "local"),
            ("WHARF_REGISTRY_LOCALHOST_5000_PASSWORD", "localpw"),
        ]);
        assert_eq!(
            per_registry.get("localhost:5000").unwrap(),
            basic("local", "localpw")
        );
        assert_eq!(per_registry.get("ghcr.io").unwrap(), None);
    }

    #[test]
    fn env_empty_is_unset_and_half_pairs_fail() {
        assert_eq!(env(&[]).get("ghcr.io").unwrap(), None);
        let empty = env(&[
            ("WHARF_REGISTRY_USERNAME", ""),
            ("WHARF_REGISTRY_PASSWORD", ""),
        ]);
        assert_eq!(empty.get("ghcr.io").unwrap(), None);
        let e = env(&[("WHARF_REGISTRY_GHCR_IO_PASSWORD", "hunter2")])
            .get("ghcr.io")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "WHARF_REGISTRY_GHCR_IO_PASSWORD is set but WHARF_REGISTRY_GHCR_IO_USERNAME is not (set both, or neither)"
        );
        let e = env(&[
            ("WHARF_REGISTRY_USERNAME", "ci"),
            ("WHARF_REGISTRY_PASSWORD", ""),
        ])
        .get("ghcr.io")
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("WHARF_REGISTRY_USERNAME is set but WHARF_REGISTRY_PASSWORD"));
        // Unrelated variables are not kept (nor printed).
        let other = env(&[("AWS_SECRET_ACCESS_KEY", "x")]);
        assert_eq!(format!("{other:?}"), "Env([])");
    }

    #[test]
    fn auths_key_forms() {
        for key in [
            "localhost:5000",
            "https://localhost:5000",
            "http://localhost:5000/v1/",
            "https://localhost:5000/v2/",
            "LocalHost:5000",
        ] {
            let c = config(&format!(
                r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#,
                auth("alice:pw")
            ));
            for asked in [
                "localhost:5000",
                "https://localhost:5000/",
                "http://localhost:5000",
            ] {
                assert_eq!(
                    c.get(asked).unwrap(),
                    basic("alice", "pw"),
                    "{key} for {asked}"
                );
            }
            assert_eq!(c.get("localhost:5001").unwrap(), None, "{key}");
        }
    }

    #[test]
    fn docker_hub_aliases() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io/v2/",
        ] {
            let c = config(&format!(
                r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#,
                auth("hub:pw")
            ));
            for asked in [
                "docker.io",
                "index.docker.io",
                "registry-1.docker.io",
                "https://index.docker.io/v1/",
            ] {
                assert_eq!(
                    c.get(asked).unwrap(),
                    basic("hub", "pw"),
                    "{key} for {asked}"
                );
            }
            assert_eq!(c.get("quay.io").unwrap(), None);
        }
        // Two keys for Docker Hub: the canonical one wins, whatever the order.
        let c = config(&format!(
            r#"{{"auths":{{"docker.io":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            auth("old:pw"),
            auth("canonical:pw")
        ));
        assert_eq!(c.get("docker.io").unwrap(), basic("canonical", "pw"));
    }

    #[test]
    fn auth_entry_forms() {
        let c = config(&format!(
            r#"{{
                "auths": {{
                    "colon.example": {{"auth": "{colon}"}},
                    "unpadded.example": {{"auth": "{unpadded}"}},
                    "separate.example": {{"username": "bob", "password": "pw"}},
                    "identity.example": {{"auth": "{token}", "identitytoken": "refresh"}},
                    "registry.example": {{"registrytoken": "bearer", "identitytoken": "refresh"}},
                    "cased.example": {{"Auth": "{cased}"}},
                    "both.example": {{"auth": "{colon}", "username": "ignored", "password": "ignored"}},
                    "empty.example": {{}},
                    "nulls.example": {{"auth": null, "email": "a@example.com", "serveraddress": "x"}},
                    "blank.example": {{"auth": ""}}
                }},
                "HttpHeaders": {{"User-Agent": "x"}},
                "unknownKey": [1, 2]
            }}"#,
            colon = auth("alice:pa:ss:word"),
            unpadded = auth("al:pw").trim_end_matches('='),
            token = auth("<token>:"),
            cased = auth("carol:pw"),
        ));
        assert_eq!(
            c.get("colon.example").unwrap(),
            basic("alice", "pa:ss:word")
        );
        assert_eq!(c.get("unpadded.example").unwrap(), basic("al", "pw"));
        assert_eq!(c.get("separate.example").unwrap(), basic("bob", "pw"));
        assert_eq!(
            c.get("identity.example").unwrap(),
            Some(Credential::IdentityToken(Secret::new("refresh")))
        );
        assert_eq!(
            c.get("registry.example").unwrap(),
            Some(Credential::RegistryToken(Secret::new("bearer")))
        );
        assert_eq!(c.get("cased.example").unwrap(), basic("carol", "pw"));
        assert_eq!(c.get("both.example").unwrap(), basic("alice", "pa:ss:word"));
        for none in [
            "empty.example",
            "nulls.example",
            "blank.example",
            "absent.example",
        ] {
            assert_eq!(c.get(none).unwrap(), None, "{none}");
        }
    }

    #[test]
    fn bad_entries_name_the_file_and_the_entry() {
        let c = config(&format!(
            r#"{{"auths":{{
                "localhost:5000": {{"auth": "not base64!"}},
                "nocolon.example": {{"auth": "{nocolon}"}},
                "docker.io": {{"auth": "%%%"}},
                "user.example": {{"username": "bob"}},
                "password.example": {{"password": "pw"}},
                "good.example": {{"auth": "{good}"}}
            }}}}"#,
            nocolon = auth("alice"),
            good = auth("a:b"),
        ));
        let message = |registry: &str| c.get(registry).unwrap_err().to_string();
        assert_eq!(
            message("localhost:5000"),
            r#"/home/u/.docker/config.json: auths["localhost:5000"].auth is not base64 of user:password (run `docker login localhost:5000` to write it again)"#
        );
        assert!(
            message("nocolon.example").contains(r#"auths["nocolon.example"].auth is not base64"#)
        );
        assert!(message("index.docker.io").contains("(run `docker login ` to write it again)"));
        assert_eq!(
            message("user.example"),
            r#"/home/u/.docker/config.json: auths["user.example"] has a username but no password"#
        );
        assert!(message("password.example").ends_with("has a password but no username"));
        // A broken entry for one registry does not stop the others.
        assert_eq!(c.get("good.example").unwrap(), basic("a", "b"));
    }

    #[test]
    fn malformed_config_names_file_line_and_field() {
        let e = config_error("{\n  \"auths\": {\n    \"h\": {\"auth\": \"x\"\n  }\n");
        assert!(
            e.starts_with("/home/u/.docker/config.json:5:0: not valid JSON (EOF while parsing"),
            "{e}"
        );
        let e = config_error("{\n  \"auths\": {\n    \"h\" {}\n  }\n}\n");
        assert_eq!(
            e,
            "/home/u/.docker/config.json:3:9: not valid JSON (expected `:`)"
        );
        for (json, expected) in [
            (
                "[]",
                "/home/u/.docker/config.json: the top level is not a JSON object",
            ),
            (r#"{"auths": "x"}"#, "auths is not a JSON object"),
            (
                r#"{"auths": {"h": []}}"#,
                r#"auths["h"] is not a JSON object"#,
            ),
            (
                r#"{"auths": {"h": {"auth": 5}}}"#,
                r#"auths["h"].auth is not a string"#,
            ),
            (r#"{"credsStore": true}"#, "credsStore is not a string"),
            (
                r#"{"credHelpers": {"gcr.io": 1}}"#,
                r#"credHelpers["gcr.io"] is not a string"#,
            ),
        ] {
            let e = config_error(json);
            assert!(e.ends_with(expected), "{json}: {e}");
        }
    }

    #[test]
    fn files_and_default_location() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DockerConfig::load(dir.path().join("nope.json")).unwrap();
        assert_eq!(missing.get("ghcr.io").unwrap(), None);
        assert_eq!(missing.path(), dir.path().join("nope.json"));

        let path = dir.path().join("config.json");
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            DockerConfig::load(&path).unwrap().get("ghcr.io").unwrap(),
            None
        );

        let json = format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
            auth("gh:pw")
        );
        std::fs::write(&path, json).unwrap();
        assert_eq!(
            DockerConfig::load(&path).unwrap().get("ghcr.io").unwrap(),
            basic("gh", "pw")
        );

        std::fs::write(&path, "{\n,").unwrap();
        let e = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2:1: not valid JSON", path.display())),
            "{e}"
        );

        let e = DockerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("reading {}: ", dir.path().display())),
            "{e}"
        );

        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            default_path(Some("/etc/docker-ci".into()), home.clone()),
            Some(PathBuf::from("/etc/docker-ci/config.json"))
        );
        assert_eq!(
            default_path(Some("".into()), home.clone()),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(
            default_path(None, home),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(default_path(None, None), None);
        assert_eq!(format!("{:?}", default_sources()), "Chain(2 sources)");
    }

    #[test]
    fn env_wins_over_docker_config() {
        let chain = Chain::new(vec![])
            .with(env(&[
                ("WHARF_REGISTRY_LOCALHOST_5000_USERNAME", "env"),
                ("WHARF_REGISTRY_LOCALHOST_5000_PASSWORD", "envpw"),
            ]))
            .with(config(&format!(
                r#"{{"auths":{{"localhost:5000":{{"auth":"{0}"}},"ghcr.io":{{"auth":"{0}"}}}}}}"#,
                auth("file:filepw")
            )));
        assert_eq!(chain.get("localhost:5000").unwrap(), basic("env", "envpw"));
        assert_eq!(chain.get("ghcr.io").unwrap(), basic("file", "filepw"));
        assert_eq!(chain.get("quay.io").unwrap(), None);
        // An error stops the chain rather than falling through to other credentials.
        let broken = Chain::new(vec![
            Box::new(env(&[("WHARF_REGISTRY_USERNAME", "ci")])),
            Box::new(config(&format!(
                r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
                auth("file:filepw")
            ))),
        ]);
        assert!(broken.get("ghcr.io").is_err());
    }

    /// The helper protocol against real executables (shell scripts), so Unix only.
    #[cfg(unix)]
    mod helper_protocol {
        use super::*;

        const HELPER: &str = r#"#!/bin/sh
    # A credential helper for tests: the answer depends on the server URL on stdin.
    [ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }
    server=$(cat)
    case "$server" in
      localhost:5000)
        printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret:pw"}' "$server" ;;
      https://index.docker.io/v1/)
        printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}' "$server" ;;
      path.example)
        # Proves the search path reached the child: the first PATH entry as the username.
        printf '{"Username":"%s","Secret":"x"}' "${PATH%%:*}" ;;
      empty.example)
        printf '{"ServerURL":"%s","Username":"","Secret":""}' "$server" ;;
      failing.example)
        echo "cannot unlock keychain for alice:hunter2-Pa55-word" >&2
        echo "hunter2-Pa55-word"
        exit 3 ;;
      garbage.example)
        echo "here you go: hunter2-Pa55-word" ;;
      hanging.example)
        exec sleep 60 ;;
      *)
        echo "credentials not found in native keychain"
        exit 1 ;;
    esac
    "#;

        /// A second helper, to tell which one answered.
        const OTHER_HELPER: &str = r#"#!/bin/sh
    server=$(cat)
    case "$server" in
      auths-only.example) echo "credentials not found in native keychain" >&2; exit 1 ;;
      *) printf '{"ServerURL":"%s","Username":"bob","Secret":"other"}' "$server" ;;
    esac
    "#;

        /// Serializes the helper tests. Writing an executable while another thread forks can
        /// leave a write descriptor open in the fork, and exec then fails with "text file busy".
        static SPAWN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

        struct Helpers {
            dir: tempfile::TempDir,
            _lock: std::sync::MutexGuard<'static, ()>,
        }

        impl Helpers {
            fn new() -> Self {
                let lock = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                let dir = tempfile::tempdir().unwrap();
                let helpers = Helpers { dir, _lock: lock };
                helpers.write("docker-credential-wharftest", HELPER);
                helpers.write("docker-credential-wharfother", OTHER_HELPER);
                helpers.write(
                    "docker-credential-wharfbroken",
                    "#!/nonexistent/interpreter\n",
                );
                helpers
            }

            fn write(&self, name: &str, script: &str) {
                use std::os::unix::fs::PermissionsExt;
                let path = self.dir.path().join(name);
                std::fs::write(&path, script).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }

            /// The helpers' directory first, then this process's PATH (for `sh`, `cat`, `sleep`).
            fn search_path(&self) -> OsString {
                let mut dirs = vec![self.dir.path().to_owned()];
                dirs.extend(std::env::split_paths(
                    &std::env::var_os("PATH").unwrap_or_default(),
                ));
                std::env::join_paths(dirs).unwrap()
            }

            fn config(&self, json: &str) -> DockerConfig {
                config(json)
                    .with_helper_search_path(self.search_path())
                    .with_helper_timeout(Duration::from_secs(20))
            }
        }

        #[test]
        fn helper_found_not_found_and_token() {
            let helpers = Helpers::new();
            let c = helpers.config(r#"{"credsStore": "wharftest"}"#);
            assert_eq!(
                c.get("localhost:5000").unwrap(),
                basic("alice", "s3cret:pw")
            );
            assert_eq!(
                c.get("registry-1.docker.io").unwrap(),
                Some(Credential::IdentityToken(Secret::new("refresh")))
            );
            assert_eq!(c.get("unknown.example").unwrap(), None);
            assert_eq!(c.get("empty.example").unwrap(), None);
            assert_eq!(
                c.get("path.example").unwrap(),
                basic(&helpers.dir.path().display().to_string(), "x")
            );
        }

        #[test]
        fn helper_failures() {
            let helpers = Helpers::new();
            let c = helpers.config(r#"{"credsStore": "wharftest"}"#);
            assert_eq!(
                c.get("failing.example").unwrap_err().to_string(),
                "helper docker-credential-wharftest failed with exit status 3 for failing.example (run `printf %s failing.example | docker-credential-wharftest get` to see its message)"
            );
            assert_eq!(
                c.get("garbage.example").unwrap_err().to_string(),
                r#"helper docker-credential-wharftest printed output that is not a JSON object, not the JSON object {"ServerURL", "Username", "Secret"}"#
            );
            let quick = c.clone().with_helper_timeout(Duration::from_millis(200));
            assert_eq!(
                quick.get("hanging.example").unwrap_err().to_string(),
                "helper docker-credential-wharftest did not answer within 200ms and was killed"
            );
            // The helper still works after one was killed.
            assert_eq!(
                c.get("localhost:5000").unwrap(),
                basic("alice", "s3cret:pw")
            );

            let missing = helpers.config(r#"{"credsStore": "wharfmissing"}"#);
            assert_eq!(
                missing.get("localhost:5000").unwrap_err().to_string(),
                "helper docker-credential-wharfmissing (named by credsStore in /home/u/.docker/config.json) is not on PATH (install it, or remove credsStore from /home/u/.docker/config.json)"
            );
            let broken = helpers.config(r#"{"credsStore": "wharfbroken"}"#);
            assert!(
                broken
                    .get("localhost:5000")
                    .unwrap_err()
                    .to_string()
                    .starts_with("running helper docker-credential-wharfbroken: "),
            );
            let evil = helpers.config(r#"{"credHelpers": {"localhost:5000": "../../bin/sh"}}"#);
            assert_eq!(
                evil.get("localhost:5000").unwrap_err().to_string(),
                r#"/home/u/.docker/config.json: credHelpers["localhost:5000"] is "../../bin/sh", which is not a credential helper name (expected the part after docker-credential-, such as "desktop")"#
            );
        }

        #[test]
        fn helper_precedence() {
            let helpers = Helpers::new();
            let c = helpers.config(&format!(
                r#"{{
                    "credHelpers": {{"localhost:5000": "wharftest", "https://index.docker.io/v1/": "wharftest"}},
                    "credsStore": "wharfother",
                    "auths": {{
                        "localhost:5000": {{"auth": "{0}"}},
                        "ghcr.io": {{"auth": "{0}"}},
                        "auths-only.example": {{"auth": "{0}"}}
                    }}
                }}"#,
                auth("carol:inline")
            ));
            // credHelpers beats credsStore and auths.
            assert_eq!(
                c.get("localhost:5000").unwrap(),
                basic("alice", "s3cret:pw")
            );
            assert_eq!(
                c.get("docker.io").unwrap(),
                Some(Credential::IdentityToken(Secret::new("refresh")))
            );
            // credsStore beats auths.
            assert_eq!(c.get("ghcr.io").unwrap(), basic("bob", "other"));
            // auths answers when the helper has nothing.
            assert_eq!(
                c.get("auths-only.example").unwrap(),
                basic("carol", "inline")
            );
            // Without helpers, auths answers.
            let plain = config(&format!(
                r#"{{"auths": {{"localhost:5000": {{"auth": "{}"}}}}}}"#,
                auth("carol:inline")
            ));
            assert_eq!(
                plain.get("localhost:5000").unwrap(),
                basic("carol", "inline")
            );
        }

        /// Builds every error variant from inputs holding a known password, and checks that
        /// neither the password nor its base64 reaches any message.
        #[test]
        fn errors_never_contain_secrets() {
            const PASSWORD: &str = "hunter2-Pa55-word";
            let helpers = Helpers::new();
            let path = PathBuf::from("/home/u/.docker/config.json");
            let load = |json: &str| DockerConfig::from_json(path.clone(), json);
            let with_helper = |json: &str| -> DockerConfig {
                load(json)
                    .unwrap()
                    .with_helper_search_path(helpers.search_path())
                    .with_helper_timeout(Duration::from_secs(20))
            };
            let user_password = format!("alice:{PASSWORD}");
            let errors: Vec<CredentialError> = vec![
                env(&[("WHARF_REGISTRY_PASSWORD", PASSWORD)])
                    .get("h")
                    .unwrap_err(),
                CredentialError::EnvNotUnicode {
                    var: "WHARF_REGISTRY_PASSWORD".into(),
                },
                DockerConfig::load(helpers.dir.path()).unwrap_err(),
                load(&format!(
                    r#"{{"auths":{{"h":{{"password":"{PASSWORD}" "x"}}}}}}"#
                ))
                .unwrap_err(),
                load(&format!(
                    r#"{{"auths":{{"h":{{"auth":"{}"}}}}"#,
                    auth(&user_password)
                ))
                .unwrap_err(),
                load(&format!(r#"{{"auths":"{PASSWORD}"}}"#)).unwrap_err(),
                load(&format!(
                    r#"{{"auths":{{"h":{{"password":["{PASSWORD}"]}}}}}}"#
                ))
                .unwrap_err(),
                load(&format!(r#"{{"auths":{{"h":{{"auth":"{PASSWORD}"}}}}}}"#))
                    .unwrap()
                    .get("h")
                    .unwrap_err(),
                load(&format!(
                    r#"{{"auths":{{"h":{{"auth":"{}"}}}}}}"#,
                    auth(PASSWORD)
                ))
                .unwrap()
                .get("h")
                .unwrap_err(),
                load(&format!(
                    r#"{{"auths":{{"h":{{"password":"{PASSWORD}"}}}}}}"#
                ))
                .unwrap()
                .get("h")
                .unwrap_err(),
                with_helper(r#"{"credsStore": "wharf/evil"}"#)
                    .get("h")
                    .unwrap_err(),
                with_helper(r#"{"credsStore": "wharfmissing"}"#)
                    .get("h")
                    .unwrap_err(),
                with_helper(r#"{"credsStore": "wharfbroken"}"#)
                    .get("h")
                    .unwrap_err(),
                with_helper(r#"{"credsStore": "wharftest"}"#)
                    .get("failing.example")
                    .unwrap_err(),
                with_helper(r#"{"credsStore": "wharftest"}"#)
                    .with_helper_timeout(Duration::from_millis(200))
                    .get("hanging.example")
                    .unwrap_err(),
                with_helper(r#"{"credsStore": "wharftest"}"#)
                    .get("garbage.example")
                    .unwrap_err(),
            ];
            let forbidden = [
                PASSWORD.to_owned(),
                auth(PASSWORD),
                auth(&user_password),
                "hunter2".to_owned(),
            ];
            let mut seen = std::collections::BTreeSet::new();
            for e in &errors {
                seen.insert(variant(e));
                for text in [e.to_string(), format!("{e:?}")] {
                    for secret in &forbidden {
                        assert!(
                            !text.contains(secret.as_str()),
                            "{secret:?} leaked in {text}"
                        );
                    }
                }
            }
            assert_eq!(
                seen.len(),
                VARIANTS,
                "not every variant was built: {seen:?}"
            );
        }

        const VARIANTS: usize = 13;

        /// Exhaustive on purpose: a new variant fails to compile here until the test above
        /// builds it too (and `VARIANTS` counts it).
        fn variant(e: &CredentialError) -> &'static str {
            match e {
                CredentialError::EnvIncomplete { .. } => "EnvIncomplete",
                CredentialError::EnvNotUnicode { .. } => "EnvNotUnicode",
                CredentialError::Read { .. } => "Read",
                CredentialError::Syntax { .. } => "Syntax",
                CredentialError::Shape { .. } => "Shape",
                CredentialError::BadAuth { .. } => "BadAuth",
                CredentialError::Incomplete { .. } => "Incomplete",
                CredentialError::HelperName { .. } => "HelperName",
                CredentialError::HelperNotFound { .. } => "HelperNotFound",
                CredentialError::HelperSpawn { .. } => "HelperSpawn",
                CredentialError::HelperFailed { .. } => "HelperFailed",
                CredentialError::HelperTimeout { .. } => "HelperTimeout",
                CredentialError::HelperOutput { .. } => "HelperOutput",
            }
        }
    }
}
