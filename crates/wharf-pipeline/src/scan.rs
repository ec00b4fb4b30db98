//! `cargo xtask scan` and the `scan` step of ci: what the image ships (SBOM), what is known
//! to be wrong with it (RustSec advisories for its lockfile), checks on the image itself,
//! then the policy gate over all of it.
//!
//! Plan, then apply: [`plan`] resolves every path and setting (and fails early, naming the
//! fix, when the advisory database is missing); [`run`] reads and decides.

use std::path::{Path, PathBuf};

use serde::Serialize;
use wharf_oci::{Layout, Platform};
use wharf_policy::{Finding, Gate, PackageLicense, Policy};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No advisory database, and none could be fetched.
    #[error("{0} (location from {1})")]
    Database(wharf_advisory_db::Error, &'static str),
    #[error("no lockfile at {0} (run `cargo generate-lockfile`, or pass --lockfile PATH)")]
    NoLockfile(PathBuf),
    #[error(transparent)]
    Audit(#[from] wharf_audit::Error),
    #[error(transparent)]
    Sbom(#[from] wharf_sbom::Error),
    #[error(transparent)]
    ImageCheck(#[from] wharf_imagecheck::Error),
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
}

/// What a scan will read and how it decides. Plain data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScanPlan {
    pub lockfile: PathBuf,
    pub db: PathBuf,
    /// Where `db` came from: `--db`, `WHARF_ADVISORY_DB`, `[scan] db` or the default.
    pub db_from: &'static str,
    /// How `db` is fetched when missing and updated when old ([`ensure_db`]).
    pub db_fetch: DbFetch,
    /// The image to check: an OCI layout and a tag in it.
    pub image: Option<(PathBuf, String)>,
    /// The SBOM's subject: the binary's package, its workspace manifest and target.
    pub sbom: Option<SbomPlan>,
    /// `SOURCE_DATE_EPOCH` for the SBOM's timestamp.
    pub created: i64,
    /// The day ignore entries are checked against.
    pub today: jiff::civil::Date,
    #[serde(skip)]
    pub policy: Policy,
    #[serde(skip)]
    pub image_policy: wharf_imagecheck::Policy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SbomPlan {
    pub manifest: PathBuf,
    pub package: String,
    pub target: String,
}

/// The fetch policy of the advisory database, as plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbFetch {
    pub url: String,
    pub max_age_hours: u64,
    pub offline: bool,
}

impl DbFetch {
    fn policy(&self) -> wharf_advisory_db::Fetch {
        wharf_advisory_db::Fetch {
            url: self.url.clone(),
            max_age: std::time::Duration::from_secs(self.max_age_hours * 3600),
            offline: self.offline,
            ..wharf_advisory_db::Fetch::default()
        }
    }
}

/// What the caller overrides on the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub lockfile: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub image: Option<(PathBuf, String)>,
    /// Scan only the lockfile (no SBOM of a package, no image).
    pub lockfile_only: bool,
    /// Never fetch or update the advisory database (`--offline`, or `CARGO_NET_OFFLINE`).
    pub offline: bool,
}

/// Resolves paths and settings: `--db`, then `WHARF_ADVISORY_DB`, then `[scan] db`
/// (relative to `root`), then `~/.cargo/advisory-db` (cargo-audit's). The database is
/// fetched from `WHARF_ADVISORY_DB_URL`, else `[scan] db_url`, else the RustSec repository.
pub fn plan(
    root: &Path,
    config: &Config,
    overrides: Overrides,
    default_image: Option<(PathBuf, String)>,
    created: i64,
    today: jiff::civil::Date,
) -> Result<ScanPlan, ScanError> {
    let scan = config.scan.clone().unwrap_or_default();
    let (db, from) = if let Some(db) = overrides.db {
        (db, "--db")
    } else if let Some(db) = std::env::var_os("WHARF_ADVISORY_DB").filter(|v| !v.is_empty()) {
        (PathBuf::from(db), "WHARF_ADVISORY_DB")
    } else if let Some(db) = scan.db.as_ref() {
        (root.join(db), "[scan] db in pipelines/wharf.toml")
    } else {
        (
            wharf_audit::default_db().unwrap_or_else(|| PathBuf::from("~/.cargo/advisory-db")),
            "cargo-audit's default, $CARGO_HOME/advisory-db",
        )
    };
    let db_fetch = DbFetch {
        url: std::env::var("WHARF_ADVISORY_DB_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| scan.db_url.clone())
            .unwrap_or_else(|| wharf_advisory_db::DEFAULT_URL.to_string()),
        max_age_hours: scan.db_max_age_hours.unwrap_or(24),
        offline: overrides.offline
            || std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true" || v == "1"),
    };
    let lockfile = overrides
        .lockfile
        .clone()
        .unwrap_or_else(|| root.join("Cargo.lock"));
    if !lockfile.is_file() {
        return Err(ScanError::NoLockfile(lockfile));
    }
    let (image, sbom) = if overrides.lockfile_only {
        (None, None)
    } else {
        let sbom = config.image.as_ref().map(|image| SbomPlan {
            manifest: root.join("Cargo.toml"),
            package: image.package.clone(),
            target: wharf_source::host_triple()
                .unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into()),
        });
        (overrides.image.or(default_image), sbom)
    };
    Ok(ScanPlan {
        lockfile,
        db,
        db_from: from,
        db_fetch,
        image,
        sbom,
        created,
        today,
        policy: scan.policy(),
        image_policy: wharf_imagecheck::Policy {
            max_size: scan.max_image_bytes,
            required_labels: scan.required_labels.clone(),
            allow_root: scan.allow_root,
            ..wharf_imagecheck::Policy::default()
        },
    })
}

/// Everything a scan found, and the decision. The `--json` output of `cargo xtask scan`.
#[derive(Clone, Debug, Serialize)]
pub struct ScanOutcome {
    /// The gate passed and the image checks found no errors.
    pub passed: bool,
    pub vulnerabilities: Vec<wharf_audit::Finding>,
    pub warnings: Vec<wharf_audit::Finding>,
    pub image: Option<wharf_imagecheck::Report>,
    /// Packages in the SBOM (the binary's dependencies), when one was made.
    pub packages: Option<usize>,
    pub gate: Gate,
    #[serde(skip)]
    pub audit: wharf_audit::Report,
    #[serde(skip)]
    pub sbom: Option<wharf_sbom::Sbom>,
}

/// Makes sure the plan's advisory database is there: clones it when missing, updates a
/// git checkout older than the plan's age (unless offline). A failed update of an existing
/// copy is a [`wharf_advisory_db::Status::Stale`] for the caller to warn about, not an error.
pub fn ensure_db(plan: &ScanPlan) -> Result<wharf_advisory_db::Status, ScanError> {
    wharf_advisory_db::ensure(
        &plan.db,
        &plan.db_fetch.policy(),
        std::time::SystemTime::now(),
    )
    .map_err(|e| ScanError::Database(e, plan.db_from))
}

/// Reads the lockfile, the advisories, the workspace and the image; applies the gate.
pub fn run(plan: &ScanPlan) -> Result<ScanOutcome, ScanError> {
    let audit = wharf_audit::audit_lockfile(&plan.lockfile, &plan.db)?;
    let sbom = match &plan.sbom {
        Some(s) => Some(wharf_sbom::from_workspace(
            &s.manifest,
            &s.package,
            &s.target,
            &wharf_sbom::Features::default(),
        )?),
        None => None,
    };
    let image = match &plan.image {
        Some((dir, tag)) => {
            let image = Layout::open(dir)?.image_by_tag(tag, &Platform::linux_amd64())?;
            Some(wharf_imagecheck::check(&image, &plan.image_policy)?)
        }
        None => None,
    };
    let findings: Vec<Finding> = audit
        .vulnerabilities
        .iter()
        .map(|f| gate_finding(f, false))
        .chain(audit.warnings.iter().map(|f| gate_finding(f, true)))
        .collect();
    let licenses: Vec<PackageLicense> = sbom
        .iter()
        .flat_map(|s| &s.packages)
        .map(|p| PackageLicense {
            package: p.name.clone(),
            version: p.version.to_string(),
            license: match &p.license {
                wharf_sbom::License::Spdx(e) | wharf_sbom::License::Unrecognized(e) => {
                    Some(e.clone())
                }
                _ => None,
            },
        })
        .collect();
    let gate = wharf_policy::evaluate(&plan.policy, plan.today, &findings, &licenses);
    Ok(ScanOutcome {
        passed: gate.passed() && image.as_ref().is_none_or(|r| r.passed()),
        vulnerabilities: audit.vulnerabilities.clone(),
        warnings: audit.warnings.clone(),
        image,
        packages: sbom.as_ref().map(|s| s.packages.len()),
        gate,
        audit,
        sbom,
    })
}

fn gate_finding(finding: &wharf_audit::Finding, warning: bool) -> Finding {
    Finding {
        id: finding.id.clone(),
        aliases: finding.aliases.clone(),
        package: finding.package.clone(),
        version: finding.version.to_string(),
        severity: finding.severity,
        warning,
    }
}

/// The SBOM documents, for `--format cyclonedx|spdx` and for attaching to the image.
pub fn sbom_documents(
    sbom: &wharf_sbom::Sbom,
    created: i64,
) -> Result<(Vec<u8>, Vec<u8>), ScanError> {
    let meta = wharf_sbom::Meta::new(created)?;
    Ok((
        wharf_sbom::cyclonedx_json(sbom, &meta),
        wharf_sbom::spdx_json(sbom, &meta),
    ))
}

/// A scan report read back (the JSON `cargo xtask scan` writes and attaches) and checked
/// against the policy in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recheck {
    /// The image the report is about, when it checked one.
    pub image: Option<wharf_oci::Digest>,
    /// What fails, one line each; empty when the report passes.
    pub failures: Vec<String>,
}

/// Re-checks a scan report against `policy` on `today`: its vulnerabilities and warnings
/// go through the gate again (so an ignore entry that has expired since, or a stricter
/// `fail_on`, counts), while license violations and image-check errors count as recorded
/// (the report does not carry what they were computed from).
pub fn recheck(
    report: &[u8],
    policy: &Policy,
    today: jiff::civil::Date,
) -> Result<Recheck, String> {
    // `vulnerabilities` and `warnings` are required: a document without them is not a
    // report, and must not pass as a clean one.
    #[derive(serde::Deserialize)]
    struct Report {
        vulnerabilities: Vec<wharf_audit::Finding>,
        warnings: Vec<wharf_audit::Finding>,
        #[serde(default)]
        image: Option<serde_json::Value>,
        #[serde(default)]
        gate: Option<serde_json::Value>,
    }
    let report: Report = serde_json::from_slice(report)
        .map_err(|e| format!("not a wharf scan report (the JSON of `cargo xtask scan`): {e}"))?;
    let findings: Vec<Finding> = report
        .vulnerabilities
        .iter()
        .map(|f| gate_finding(f, false))
        .chain(report.warnings.iter().map(|f| gate_finding(f, true)))
        .collect();
    let gate = wharf_policy::evaluate(policy, today, &findings, &[]);
    let mut failures: Vec<String> = gate.violations.iter().map(ToString::to_string).collect();
    let recorded = report
        .gate
        .as_ref()
        .and_then(|g| g["violations"].as_array().cloned())
        .unwrap_or_default();
    failures.extend(recorded.iter().filter(|v| v["kind"] == "license").map(|v| {
        format!(
            "{} {} is licensed {}: {}",
            v["package"].as_str().unwrap_or("?"),
            v["version"].as_str().unwrap_or("?"),
            v["license"].as_str().unwrap_or("(none declared)"),
            v["why"].as_str().unwrap_or("denied")
        )
    }));
    let image = report.image.as_ref();
    if let Some(checks) = image.and_then(|i| i["findings"].as_array()) {
        failures.extend(
            checks
                .iter()
                .filter(|f| f["level"] == "error")
                .map(|f| format!("image check: {}", f["message"].as_str().unwrap_or("?"))),
        );
    }
    Ok(Recheck {
        image: image
            .and_then(|i| i["image"].as_str())
            .and_then(|d| d.parse().ok()),
        failures,
    })
}

#[cfg(test)]
mod recheck_tests {
    use super::*;

    fn report(severity: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "passed": true,
            "vulnerabilities": [{
                "id": "RUSTSEC-2099-0001", "package": "foo", "version": "1.0.0",
                "title": "t", "date": "2099-01-01", "severity": severity, "cvss": null,
                "cvss_vector": null, "patched": [], "fixed_version": null,
                "url": "https://rustsec.org", "aliases": ["CVE-2099-1"], "line": null,
            }],
            "warnings": [],
            "image": {"image": format!("sha256:{}", "a".repeat(64)), "findings": [
                {"check": "user", "level": "error", "message": "runs as root"}
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn a_report_is_judged_by_the_policy_in_force_not_by_its_own_verdict() {
        let today = jiff::civil::date(2026, 11, 29);
        let strict = Policy::default();
        let checked = recheck(&report("critical"), &strict, today).unwrap();
        assert!(
            checked.failures[0].contains("RUSTSEC-2099-0001"),
            "{checked:?}"
        );
        assert!(checked.failures.iter().any(|f| f.contains("runs as root")));
        assert_eq!(checked.image.unwrap().hex(), "a".repeat(64));

        let lenient = Policy {
            fail_on: wharf_policy::Severity::Critical,
            ..Policy::default()
        };
        let checked = recheck(&report("high"), &lenient, today).unwrap();
        assert_eq!(checked.failures, ["image check: runs as root"]);

        // An ignore entry by alias holds until it expires.
        let ignoring = |expires| Policy {
            ignore: vec![wharf_policy::Ignore {
                id: "CVE-2099-1".into(),
                reason: "not reachable".into(),
                expires,
            }],
            ..Policy::default()
        };
        let held = recheck(
            &report("critical"),
            &ignoring(jiff::civil::date(2027, 1, 1)),
            today,
        );
        assert_eq!(held.unwrap().failures.len(), 1);
        let expired = recheck(
            &report("critical"),
            &ignoring(jiff::civil::date(2026, 1, 1)),
            today,
        );
        assert!(expired.unwrap().failures.len() >= 2);

        assert!(
            recheck(b"[]", &strict, today)
                .unwrap_err()
                .contains("not a wharf scan report")
        );
    }
}
