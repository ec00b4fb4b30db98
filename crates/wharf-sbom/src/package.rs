//! One package of an SBOM, and the names other tools know it by (purl, download location).

use cargo_metadata::semver::Version;
use serde::Serialize;

use crate::License;
use crate::lockfile::Checksums;

/// Where cargo took a package from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    CratesIo,
    /// Another registry, by its index URL (without cargo's `registry+`/`sparse+` prefix).
    Registry {
        index: String,
    },
    /// A git repository at a commit.
    Git {
        url: String,
        rev: String,
    },
    /// A local directory: a workspace member or a `path` dependency. The path itself is left
    /// out on purpose: it differs between clones and would make the SBOM differ too.
    Path,
    /// A source kind this crate does not know, verbatim.
    Other {
        repr: String,
    },
}

const CRATES_IO_SPARSE: &str = "sparse+https://index.crates.io/";

impl Source {
    /// Parses cargo's source string (`registry+…`, `sparse+…`, `git+URL?branch=x#sha`);
    /// `None` is a path package.
    pub fn from_cargo(source: Option<&cargo_metadata::Source>) -> Source {
        let Some(source) = source else {
            return Source::Path;
        };
        let repr = source.repr.as_str();
        if source.is_crates_io() || repr == CRATES_IO_SPARSE {
            return Source::CratesIo;
        }
        if let Some(rest) = repr.strip_prefix("git+") {
            let (url, rev) = rest.split_once('#').unwrap_or((rest, ""));
            // `?branch=`, `?tag=`, `?rev=` say what was asked for; the fragment is the commit
            // cargo locked, which is what was built.
            let url = url.split_once('?').map_or(url, |(url, _)| url);
            return Source::Git {
                url: url.to_string(),
                rev: rev.to_string(),
            };
        }
        if let Some(index) = repr
            .strip_prefix("registry+")
            .or_else(|| repr.strip_prefix("sparse+"))
        {
            return Source::Registry {
                index: index.to_string(),
            };
        }
        if repr.starts_with("path+") {
            return Source::Path;
        }
        Source::Other {
            repr: repr.to_string(),
        }
    }

    fn is_registry(&self) -> bool {
        matches!(self, Source::CratesIo | Source::Registry { .. })
    }
}

/// What identifies a package in an SBOM: the edges' keys, and the sort order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PackageRef {
    pub name: String,
    pub version: Version,
    pub source: Source,
}

impl std::fmt::Display for PackageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// A package compiled into the binary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub source: Source,
    /// sha256 of the `.crate` file, lowercase hex, from `Cargo.lock` (registry packages only).
    pub checksum: Option<String>,
    pub license: License,
    pub description: Option<String>,
}

impl Package {
    pub(crate) fn from_cargo(p: &cargo_metadata::Package, checksums: &Checksums) -> Package {
        let source = Source::from_cargo(p.source.as_ref());
        let checksum = match source.is_registry() {
            true => checksums
                .get(&(p.name.to_string(), p.version.to_string()))
                .cloned(),
            // Git and path packages have no checksum in Cargo.lock; a same-named registry
            // package's checksum must not be borrowed.
            false => None,
        };
        Package {
            name: p.name.to_string(),
            version: p.version.clone(),
            source,
            checksum,
            license: License::from_cargo(
                p.license.as_deref(),
                p.license_file.as_ref().map(|f| f.as_str()),
            ),
            description: p
                .description
                .as_deref()
                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    }

    pub fn id(&self) -> PackageRef {
        PackageRef {
            name: self.name.clone(),
            version: self.version.clone(),
            source: self.source.clone(),
        }
    }

    /// The package URL (`pkg:cargo/<name>@<version>`, purl-spec's cargo type), with
    /// `vcs_url` for git packages and `repository_url` for other registries. Percent-encoded
    /// as packageurl-python does it, so the e2e tests can check a round trip.
    pub fn purl(&self) -> String {
        let mut purl = format!(
            "pkg:cargo/{}@{}",
            encode(&self.name, false),
            encode(&self.version.to_string(), false)
        );
        let qualifier = match &self.source {
            Source::Git { url, rev } => Some(("vcs_url", format!("git+{url}@{rev}"))),
            Source::Registry { index } => Some(("repository_url", index.clone())),
            Source::CratesIo | Source::Path | Source::Other { .. } => None,
        };
        if let Some((key, value)) = qualifier {
            purl.push('?');
            purl.push_str(key);
            purl.push('=');
            purl.push_str(&encode(&value, true));
        }
        purl
    }

    /// Where the package can be downloaded, in SPDX's `downloadLocation` grammar; `None`
    /// when unknown (path packages, other registries whose download URL template we do not
    /// read).
    pub fn download_location(&self) -> Option<String> {
        match &self.source {
            Source::CratesIo => Some(format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                self.name, self.version
            )),
            Source::Git { url, rev } => Some(format!("git+{url}@{rev}")),
            Source::Registry { .. } | Source::Path | Source::Other { .. } => None,
        }
    }
}

/// Percent-encodes everything but unreserved characters and `:` (and `/` in qualifier
/// values), matching packageurl-python.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b':')
            || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
