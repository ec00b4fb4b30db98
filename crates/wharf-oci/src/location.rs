//! Where an image lives, in skopeo's transport syntax: `oci:DIR[:TAG]`,
//! `docker://HOST/REPO[:TAG|@DIGEST]`, `docker-daemon:REPO:TAG`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::reference::{Reference, ReferenceError, TagProblem, validate_tag};

/// An image location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An OCI image layout directory and an optional tag in it.
    Layout { dir: PathBuf, tag: Option<String> },
    /// A repository in a registry.
    Registry(Reference),
    /// An image in a Docker engine.
    Daemon(Reference),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "invalid image location {0:?}: expected oci:DIR[:TAG], docker://HOST/REPO[:TAG|@DIGEST] or docker-daemon:REPO:TAG"
    )]
    Transport(String),
    #[error("invalid image location {input:?}: the layout directory is empty (write oci:DIR:TAG)")]
    EmptyDir { input: String },
    #[error("invalid image location {input:?}: {source}")]
    Tag {
        input: String,
        #[source]
        source: TagProblem,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(input: &str) -> Result<Location, LocationError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            // Like skopeo, the first ':' separates directory and tag.
            let (dir, tag) = match rest.split_once(':') {
                Some((dir, tag)) => (dir, Some(tag)),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(LocationError::EmptyDir {
                    input: input.to_string(),
                });
            }
            if let Some(tag) = tag {
                validate_tag(tag).map_err(|source| LocationError::Tag {
                    input: input.to_string(),
                    source,
                })?;
            }
            return Ok(Location::Layout {
                dir: PathBuf::from(dir),
                tag: tag.map(str::to_string),
            });
        }
        if let Some(rest) = input.strip_prefix("docker://") {
            return Ok(Location::Registry(rest.parse()?));
        }
        if let Some(rest) = input.strip_prefix("docker-daemon:") {
            return Ok(Location::Daemon(rest.parse()?));
        }
        Err(LocationError::Transport(input.to_string()))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout {
                dir,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", dir.display()),
            Location::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Location::Registry(reference) => write!(f, "docker://{reference}"),
            Location::Daemon(reference) => write!(f, "docker-daemon:{reference}"),
        }
    }
}
