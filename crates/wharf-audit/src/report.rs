//! The report: which advisories apply to which locked packages.

use std::fmt;

use rustsec::advisory::{Informational, License};
use rustsec::database::Query;
use rustsec::package::Package;
use rustsec::{Advisory, Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::{Advisories, Lockfile};

/// What applies to a lockfile: vulnerabilities, and warnings from informational advisories.
/// Both lists are sorted by package, version (semver order) and advisory id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub vulnerabilities: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// One advisory that applies to one locked package version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory id, e.g. `RUSTSEC-2023-0071`.
    pub id: String,
    pub package: String,
    pub version: Version,
    /// For a warning, what kind; `None` for a vulnerability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    pub title: String,
    /// The date the advisory was reported, `YYYY-MM-DD`.
    pub date: String,
    /// From the advisory's CVSS vector; `None` when it has none.
    pub severity: Option<Severity>,
    /// The CVSS base score, 0.0 to 10.0.
    pub cvss: Option<f64>,
    /// The CVSS vector, e.g. `CVSS:3.1/AV:N/AC:L/...`.
    pub cvss_vector: Option<String>,
    /// The advisory's patched version requirements, e.g. `>=1.2.3, <1.3.0`.
    pub patched: Vec<String>,
    /// The lowest patched version above the locked one: what to upgrade to. `None` when no
    /// patched version is above it (e.g. an unmaintained crate).
    pub fixed_version: Option<Version>,
    /// The advisory's page; the `url` field only for advisories imported under CC-BY-4.0,
    /// whose licence asks to keep it (as cargo-audit does).
    pub url: String,
    /// Other ids of the same issue (CVE, GHSA).
    pub aliases: Vec<String>,
    /// The line of the package's `name = "..."` in the lockfile, when found.
    pub line: Option<usize>,
}

/// The kind of an informational advisory that is reported as a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Notice,
    Unmaintained,
    Unsound,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Notice => "notice",
            Kind::Unmaintained => "unmaintained",
            Kind::Unsound => "unsound",
        }
    }

    /// Other informational kinds exist in the database format; cargo-audit reports none of
    /// them, and neither does this crate.
    fn from_informational(informational: &Informational) -> Option<Self> {
        match informational {
            Informational::Notice => Some(Kind::Notice),
            Informational::Unmaintained => Some(Kind::Unmaintained),
            Informational::Unsound => Some(Kind::Unsound),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CVSS qualitative severity rating: the policy gate's type, so findings feed the gate
/// without a translation.
pub use wharf_policy::Severity;

/// rustsec's severity (from the advisory's CVSS vector) as wharf's.
fn severity(severity: rustsec::advisory::Severity) -> Severity {
    use rustsec::advisory::Severity as S;
    match severity {
        S::None => Severity::None,
        S::Low => Severity::Low,
        S::Medium => Severity::Medium,
        S::High => Severity::High,
        S::Critical => Severity::Critical,
    }
}

/// The advisories of `advisories` that apply to the packages of `lockfile`.
///
/// The rules are rustsec's `Database::query_vulnerabilities` and `report::find_warnings`
/// with cargo-audit's default settings, applied through rustsec's own [`Query`]: packages
/// not from crates.io are skipped; a version is affected unless a `patched` or `unaffected`
/// requirement matches it; withdrawn advisories never apply; no os, arch or severity filter
/// (`[affected]` os/arch/functions narrow nothing, as in `cargo audit` without `--target-os`);
/// informational advisories of kind notice, unmaintained or unsound are warnings.
pub fn audit(lockfile: &Lockfile, advisories: &Advisories) -> Report {
    let lines = lockfile.package_lines();
    let mut report = Report::default();
    for package in lockfile.packages() {
        let candidates = advisories.for_package(package.name.as_str());
        if candidates.is_empty()
            || package
                .source
                .as_ref()
                .is_none_or(|source| !source.is_default_registry())
        {
            continue;
        }
        let vulnerability = Query::crate_scope().package(package);
        let informational = Query::crate_scope().informational(true).package(package);
        let line = lines
            .get(&(package.name.as_str(), package.version.to_string().as_str()))
            .copied();
        for advisory in candidates {
            if vulnerability.matches(advisory) {
                report
                    .vulnerabilities
                    .push(finding(advisory, package, None, line));
            } else if informational.matches(advisory)
                && let Some(kind) = advisory
                    .metadata
                    .informational
                    .as_ref()
                    .and_then(Kind::from_informational)
            {
                report
                    .warnings
                    .push(finding(advisory, package, Some(kind), line));
            }
        }
    }
    for list in [&mut report.vulnerabilities, &mut report.warnings] {
        list.sort_by(|a, b| (&a.package, &a.version, &a.id).cmp(&(&b.package, &b.version, &b.id)));
    }
    report
}

fn finding(
    advisory: &Advisory,
    package: &Package,
    kind: Option<Kind>,
    line: Option<usize>,
) -> Finding {
    let metadata = &advisory.metadata;
    let id_url = metadata.id.url();
    let field_url = metadata.url.as_ref().map(|u| u.to_string());
    let url = if metadata.license == License::CcBy40 {
        field_url.or(id_url)
    } else {
        id_url.or(field_url)
    };
    Finding {
        id: metadata.id.to_string(),
        package: package.name.to_string(),
        version: package.version.clone(),
        kind,
        title: metadata.title.clone(),
        date: metadata.date.as_str().to_owned(),
        severity: advisory.severity().map(severity),
        cvss: metadata.cvss.as_ref().map(|c| c.score()),
        cvss_vector: metadata.cvss.as_ref().map(|c| c.to_string()),
        patched: advisory
            .versions
            .patched()
            .iter()
            .map(|r| r.to_string())
            .collect(),
        fixed_version: fixed_version(advisory.versions.patched(), &package.version),
        url: url.unwrap_or_default(),
        aliases: metadata.aliases.iter().map(|a| a.to_string()).collect(),
        line,
    }
}

/// The lowest version above `current` that one of `patched` allows.
pub(crate) fn fixed_version(patched: &[VersionReq], current: &Version) -> Option<Version> {
    patched
        .iter()
        .filter_map(lowest_match)
        .filter(|v| v > current)
        .min()
}

/// The lowest version `req` allows, from its lower bounds; `None` for an empty range.
fn lowest_match(req: &VersionReq) -> Option<Version> {
    use semver::Op;
    let mut lowest = Version::new(0, 0, 0);
    for c in &req.comparators {
        let (minor, patch) = (c.minor.unwrap_or(0), c.patch.unwrap_or(0));
        let bound = match c.op {
            Op::Exact | Op::GreaterEq | Op::Tilde | Op::Caret | Op::Wildcard => Version {
                pre: c.pre.clone(),
                ..Version::new(c.major, minor, patch)
            },
            Op::Greater => match (c.minor, c.patch) {
                (Some(minor), Some(patch)) => Version::new(c.major, minor, patch + 1),
                (Some(minor), None) => Version::new(c.major, minor + 1, 0),
                (None, _) => Version::new(c.major + 1, 0, 0),
            },
            // Upper bounds (and operators semver may add) do not raise the lower bound.
            _ => continue,
        };
        lowest = lowest.max(bound);
    }
    req.matches(&lowest).then_some(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(patched: &[&str], current: &str) -> Option<String> {
        let patched: Vec<VersionReq> = patched.iter().map(|r| r.parse().unwrap()).collect();
        fixed_version(&patched, &current.parse().unwrap()).map(|v| v.to_string())
    }

    #[test]
    fn fixed_version_is_the_lowest_patched_version_above_the_current_one() {
        let example = [">= 1.2.3, < 1.3.0", ">= 1.3.4"];
        assert_eq!(fixed(&example, "1.0.0").as_deref(), Some("1.2.3"));
        assert_eq!(fixed(&example, "1.3.1").as_deref(), Some("1.3.4"));
        assert_eq!(
            fixed(&[">= 0.9.5, < 1.0.0", ">= 1.0.3"], "1.0.1").as_deref(),
            Some("1.0.3")
        );
    }

    #[test]
    fn fixed_version_handles_caret_tilde_and_exclusive_bounds() {
        assert_eq!(fixed(&["^0.4.2"], "0.4.1").as_deref(), Some("0.4.2"));
        assert_eq!(fixed(&["~1.1"], "1.0.9").as_deref(), Some("1.1.0"));
        assert_eq!(fixed(&["> 2.0.3"], "2.0.0").as_deref(), Some("2.0.4"));
        assert_eq!(fixed(&["> 2.0"], "2.0.0").as_deref(), Some("2.1.0"));
        assert_eq!(fixed(&["= 3.1.4"], "3.0.0").as_deref(), Some("3.1.4"));
    }

    #[test]
    fn no_fixed_version_without_a_patched_version_above() {
        assert_eq!(fixed(&[], "1.0.0"), None);
        assert_eq!(fixed(&["< 1.0.0"], "1.2.0"), None);
        // An empty range has no lowest version.
        assert_eq!(fixed(&[">= 2.0.0, < 1.0.0"], "0.1.0"), None);
    }
}
