//! Progress events, so callers can draw bars on a terminal or print lines in CI.

use std::time::Duration;

use wharf_oci::Digest;

/// Something the client did that a user may want to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A blob transfer started.
    BlobStart { digest: Digest, size: u64 },
    /// Bytes of a blob confirmed by the registry (uploads) or written (downloads) so far.
    BlobProgress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// A blob is where it should be, and how it got there.
    BlobDone { digest: Digest, how: BlobOutcome },
    /// A request failed and will be tried again after `wait`.
    Retry {
        what: String,
        attempt: u32,
        wait: Duration,
        reason: String,
    },
    /// An upload resumes at `offset` after a failure instead of starting over.
    Resume { digest: Digest, offset: u64 },
    /// The registry no longer knows an upload (it cancelled or forgot it, e.g. CNCF
    /// distribution cancels one that received part of a chunk), so it starts over.
    Restart { digest: Digest, reason: String },
}

/// How a blob reached the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    /// Already there (HEAD said so).
    Skipped,
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
    /// Uploaded; `bytes` is what went over the wire, resends included.
    Uploaded { bytes: u64 },
}

/// Receives events; must be cheap and thread-safe (blobs transfer in parallel).
pub type Sink = std::sync::Arc<dyn Fn(&Event) + Send + Sync>;

/// A sink that drops everything.
pub fn ignore() -> Sink {
    std::sync::Arc::new(|_| {})
}
