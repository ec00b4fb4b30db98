use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, Mismatch};

/// What went wrong reading or writing images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} is not valid JSON of the expected shape: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {source}")]
    Mismatch {
        what: String,
        #[source]
        source: Mismatch,
    },
    #[error("blob {digest} is not in {location}")]
    BlobNotFound { digest: Digest, location: String },
    #[error("no image tagged {tag:?} in {layout} (tags there: {available})")]
    TagNotFound {
        tag: String,
        layout: PathBuf,
        available: String,
    },
    #[error("{path} is not an OCI image layout: {why}")]
    NotALayout { path: PathBuf, why: String },
    #[error(
        "{path}: is a file, not an OCI layout directory (name a directory; wharf creates it if it does not exist)"
    )]
    NotADirectory { path: PathBuf },
    #[error("{what} has media type {media_type:?}, expected {expected}")]
    MediaType {
        what: String,
        media_type: String,
        expected: &'static str,
    },
    #[error("index {digest} has no manifest for {platform} (it has: {available})")]
    NoPlatform {
        digest: Digest,
        platform: String,
        available: String,
    },
    #[error("invalid tag {tag:?}: {source}")]
    Tag {
        tag: String,
        #[source]
        source: crate::reference::TagProblem,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what we were doing" to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: what(),
        source,
    })
}
