//! Image references: `[registry/]repository[:tag][@digest]`, with docker's defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestError};

/// The registry docker assumes when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag docker assumes when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (with its registry) that registries accept.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag the distribution spec allows.
pub const MAX_TAG_LEN: usize = 128;

/// A fully qualified image reference such as `docker.io/library/alpine:3.20@sha256:...`.
///
/// Parsing applies docker's defaults: no registry means `docker.io`, a single-component
/// repository on docker.io gets `library/`, and no tag or digest means `latest`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "invalid reference \"\": a reference is empty (expected [registry/]repository[:tag][@digest])"
    )]
    Empty,
    #[error(
        "invalid reference {input:?}: repository {repository:?} must be lowercase (try {suggestion:?})"
    )]
    Uppercase {
        input: String,
        repository: String,
        suggestion: String,
    },
    #[error("invalid reference {input:?}: path component {component:?} of the repository {why}")]
    Component {
        input: String,
        component: String,
        why: String,
    },
    #[error("invalid reference {input:?}: registry {registry:?} {why}")]
    Registry {
        input: String,
        registry: String,
        why: &'static str,
    },
    #[error(
        "invalid reference {input:?}: repository name is {len} characters, the limit is {MAX_NAME_LEN}"
    )]
    NameTooLong { input: String, len: usize },
    #[error("invalid reference {input:?}: {why}")]
    Tag { input: String, why: TagProblem },
    #[error("invalid reference {input:?}: {source}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// What is wrong with a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagProblem {
    #[error("the tag after ':' is empty (remove the ':' or name a tag)")]
    Empty,
    #[error("tag is {0} characters, the limit is {MAX_TAG_LEN}")]
    TooLong(usize),
    #[error("tag {tag:?} must start with a letter, digit or '_'")]
    Start { tag: String },
    #[error("tag {tag:?} contains {character:?} (allowed: letters, digits, '_', '.', '-')")]
    Character { tag: String, character: char },
}

/// Checks a tag against the distribution spec's `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), TagProblem> {
    let Some(first) = tag.chars().next() else {
        return Err(TagProblem::Empty);
    };
    if tag.len() > MAX_TAG_LEN {
        return Err(TagProblem::TooLong(tag.len()));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(TagProblem::Start {
            tag: tag.to_string(),
        });
    }
    if let Some(character) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(TagProblem::Character {
            tag: tag.to_string(),
            character,
        });
    }
    Ok(())
}

impl Reference {
    /// Builds a reference from parts that are validated like a parsed one.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let mut text = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            text = format!("{text}:{tag}");
        }
        let mut parsed: Reference = text.parse()?;
        parsed.digest = digest;
        if tag.is_none() && parsed.digest.is_some() {
            parsed.tag = None;
        }
        Ok(parsed)
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository at another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag).map_err(|why| ReferenceError::Tag {
            input: format!("{}/{}:{tag}", self.registry, self.repository),
            why,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (the tag is kept for readers).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse().map_err(|source| ReferenceError::Digest {
                    input: input.to_string(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // The tag follows the last ':' that comes after the last '/', so a registry port
        // (`localhost:5000/app`) is not mistaken for a tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(|why| ReferenceError::Tag {
                    input: input.to_string(),
                    why,
                })?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (registry, repository) = split_registry(name);
        if let Some(registry) = registry {
            validate_registry(input, registry)?;
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.to_string(),
                repository: repository.to_string(),
                suggestion: input.replace(repository, &repository.to_ascii_lowercase()),
            });
        }
        for component in repository.split('/') {
            validate_component(input, component)?;
        }
        let registry = registry.unwrap_or(DEFAULT_REGISTRY);
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let len = registry.len() + 1 + repository.len();
        if len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                input: input.to_string(),
                len,
            });
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }
}

/// Docker's rule: the first component names a registry when it looks like a host (has a
/// '.' or ':', is `localhost`, or has uppercase letters, which repositories never have).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_registry(input: &str, registry: &str) -> Result<(), ReferenceError> {
    let fail = |why| ReferenceError::Registry {
        input: input.to_string(),
        registry: registry.to_string(),
        why,
    };
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(fail("has an unclosed '[' (write IPv6 hosts as [::1]:5000)"));
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(fail("is not a valid IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => return Err(fail("has characters after ']' (expected :port)")),
        }
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(fail(
            "has an invalid port (expected 1 to 5 digits after ':')",
        ));
    }
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(fail(
                    "is not a valid host name (letters, digits and inner '-' between dots)",
                ));
            }
        }
    }
    Ok(())
}

/// A path component is `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn validate_component(input: &str, component: &str) -> Result<(), ReferenceError> {
    let fail = |why: &str| ReferenceError::Component {
        input: input.to_string(),
        component: component.to_string(),
        why: why.to_string(),
    };
    if component.is_empty() {
        return Err(fail("is empty (remove the doubled or trailing '/')"));
    }
    if let Some(c) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(fail(&format!(
            "has {c:?}, outside a-z, 0-9, '.', '_' and '-'"
        )));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(fail("must start and end with a letter or digit"));
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(fail(
                "has an invalid separator (use one '.', one or two '_', or dashes)",
            ));
        }
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
