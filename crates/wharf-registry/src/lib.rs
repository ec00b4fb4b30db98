//! An OCI registry client: the registry as a source ([`RemoteImage`]) and a sink
//! ([`Client::push`]) of the [`wharf_oci::Image`] trait.
//!
//! What it does that common clients do not, and why it is not built on oci-client: chunked
//! uploads that resume at the offset the registry confirms after a broken connection;
//! retries with backoff, jitter and `Retry-After` within a time budget; cross-repository
//! mounts with a token that has `pull` on the source; every blob and manifest checked
//! against its digest; and progress events. Credentials never appear in messages.
//!
//! HTTPS with certificate verification; plain HTTP only for loopback registries, or ones
//! listed as insecure that do not speak TLS ([`tls`]).

pub mod challenge;
mod client;
pub mod credentials;
mod error;
pub mod events;
mod push;
pub mod referrers;
mod remote;
pub mod retry;
mod system_roots;
pub mod tls;

pub use client::{
    Access, Client, Config, Replay, TIMEOUT_ENV, check, install_crypto_provider, is_loopback,
};
pub use error::{Error, Result};
pub use events::{BlobOutcome, Event};
pub use push::PushReport;
pub use referrers::{Artifact, Attached};
pub use remote::{RawManifest, RemoteImage};
pub use retry::RetryPolicy;
