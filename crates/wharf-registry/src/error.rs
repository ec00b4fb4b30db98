use std::time::Duration;

use crate::challenge::ChallengeError;
use crate::credentials::CredentialError;

/// What went wrong talking to a registry. Messages never contain credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry answered, with an error status.
    #[error("{what}: registry answered {status}{detail}{hint}", detail = detail(code, message), hint = hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Status {
        what: String,
        status: u16,
        code: Option<String>,
        message: Option<String>,
        hint: Option<String>,
    },
    /// Retries ran out.
    #[error("{what}: gave up after {attempts} attempts in {:.1}s: {last}", elapsed.as_secs_f64())]
    GaveUp {
        what: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    /// A connection or protocol failure that retrying cannot fix.
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry's TLS certificate is not trusted; retrying cannot help.
    #[error("{what}: the TLS certificate of {registry} is not trusted ({why}) (hint: {hint})")]
    Untrusted {
        what: String,
        registry: String,
        why: String,
        hint: String,
    },
    /// The registry answered the TLS handshake in clear text.
    #[error(
        "{what}: {registry} does not speak TLS (hint: if it is a plain-HTTP registry on a network \
         you trust, name it with --insecure-registry {registry})"
    )]
    NotTls { what: String, registry: String },
    /// A setting (an environment variable) that cannot be used.
    #[error("{name}: {why}")]
    Setting { name: &'static str, why: String },
    /// A transient failure of a request that may not be sent again as it is (an upload
    /// chunk); the caller asks the registry where things stand.
    #[error("{what}: {reason}")]
    Interrupted { what: String, reason: String },
    /// The registry's host name does not resolve; not retried.
    #[error("{what}: the host name {host} does not resolve; check the registry name ({why})")]
    Resolve {
        what: String,
        host: String,
        why: String,
    },
    /// The client's own configuration is wrong.
    #[error("{0}")]
    Config(String),
    #[error("authenticating to {registry}: {why}")]
    Auth { registry: String, why: String },
    #[error("{what}: the registry's answer is not what the protocol says: {why}")]
    Protocol { what: String, why: String },
    #[error("{what}: {source}")]
    Verify {
        what: String,
        #[source]
        source: wharf_oci::digest::Mismatch,
    },
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn detail(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!(" {code}: {message}"),
        (Some(code), None) => format!(" {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
