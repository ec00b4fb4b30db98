//! The policy gate: given what a scan found, does the image ship?
//!
//! Pure: findings, licenses and today's date come in as plain data, a [`Gate`] comes out.
//! The rules:
//! - a vulnerability at or above [`Policy::fail_on`] fails the gate, unless an ignore entry
//!   with its id (or one of its aliases) is still in force; a vulnerability without a CVSS
//!   score has no known severity and fails whenever `fail_on` is not `none` (no score is
//!   not the same as harmless);
//! - every ignore entry needs an id, a reason and an expiry date; an entry past its date
//!   fails the gate and says so, whether or not it still matches anything (a forgotten
//!   exception is a decision nobody re-made);
//! - with an allow list, a package's license expression must be satisfiable with allowed
//!   licenses only (`MIT OR GPL-3.0` passes if MIT is allowed); a denied license can never
//!   be chosen; a package with no license fails when an allow list is set;
//! - warnings (unmaintained, unsound, notice) fail only with `fail_on_warnings`.
//!
//! The license rule needs the `licenses` feature (default, brings the `spdx` crate).
//! Without it, license lists in a policy fail the gate for every package instead of being
//! ignored: a gate that was configured must never pass unchecked.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Severity, as CVSS v3 names its ranges. Ordered: `None < Low < ... < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// What a pipeline's `[scan]` section says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Fail on vulnerabilities of this severity or above; `none` never fails on them.
    #[serde(default = "default_fail_on")]
    pub fail_on: Severity,
    /// Fail on warnings (unmaintained, unsound, notice) too.
    #[serde(default)]
    pub fail_on_warnings: bool,
    #[serde(default)]
    pub ignore: Vec<Ignore>,
    #[serde(default)]
    pub licenses: Licenses,
}

fn default_fail_on() -> Severity {
    Severity::Low
}

impl Default for Policy {
    /// Any vulnerability fails; warnings do not; no ignores; no license lists.
    fn default() -> Policy {
        Policy {
            fail_on: default_fail_on(),
            fail_on_warnings: false,
            ignore: Vec::new(),
            licenses: Licenses::default(),
        }
    }
}

/// An accepted finding: all three fields are required (the config parser says which one
/// is missing, with the file and line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ignore {
    /// An advisory id (`RUSTSEC-2024-0001`) or one of its aliases (`CVE-...`, `GHSA-...`).
    pub id: String,
    /// Why it is acceptable: shown in every report that uses the entry.
    pub reason: String,
    /// The last day the entry holds (`2027-01-31`); from the next day it fails the gate.
    pub expires: Date,
}

/// License allow and deny lists of SPDX ids (`MIT`, `Apache-2.0`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licenses {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A vulnerability or warning as the gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub package: String,
    pub version: String,
    /// `None` when the advisory has no CVSS score.
    pub severity: Option<Severity>,
    /// `true` for warnings (unmaintained, unsound, notice).
    pub warning: bool,
}

/// A package and its declared license expression (as in the SBOM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageLicense {
    pub package: String,
    pub version: String,
    pub license: Option<String>,
}

/// Why the gate failed; each names the object and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    Vulnerability {
        id: String,
        package: String,
        version: String,
        severity: Option<Severity>,
    },
    Warning {
        id: String,
        package: String,
        version: String,
    },
    ExpiredIgnore {
        id: String,
        expired: Date,
    },
    License {
        package: String,
        version: String,
        license: Option<String>,
        why: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Vulnerability {
                id,
                package,
                version,
                severity,
            } => {
                let severity = severity.map_or("unknown severity (no CVSS)".into(), |s| {
                    format!("severity {s}")
                });
                write!(
                    f,
                    "{id}: {package} {version} ({severity}); upgrade it, or add an ignore entry with a reason and an expiry date"
                )
            }
            Violation::Warning {
                id,
                package,
                version,
            } => write!(
                f,
                "{id}: warning for {package} {version} (fail_on_warnings is set)"
            ),
            Violation::ExpiredIgnore { id, expired } => write!(
                f,
                "ignore entry {id} expired on {expired}: review it, then renew its date or remove it"
            ),
            Violation::License {
                package,
                version,
                license,
                why,
            } => write!(
                f,
                "{package} {version} is licensed {}: {why}",
                license.as_deref().unwrap_or("(none declared)")
            ),
        }
    }
}

/// What the gate decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub violations: Vec<Violation>,
    /// Findings let through by an ignore entry in force: (finding id, the entry).
    pub ignored: Vec<(String, Ignore)>,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Applies `policy` to what a scan found, on `today`.
pub fn evaluate(
    policy: &Policy,
    today: Date,
    findings: &[Finding],
    licenses: &[PackageLicense],
) -> Gate {
    let mut gate = Gate::default();
    for entry in &policy.ignore {
        if entry.expires < today {
            gate.violations.push(Violation::ExpiredIgnore {
                id: entry.id.clone(),
                expired: entry.expires,
            });
        }
    }
    for finding in findings {
        let fails = if finding.warning {
            policy.fail_on_warnings
        } else {
            policy.fail_on != Severity::None && finding.severity.is_none_or(|s| s >= policy.fail_on)
        };
        if !fails {
            continue;
        }
        let ignored_by = policy.ignore.iter().find(|entry| {
            entry.expires >= today
                && (entry.id == finding.id || finding.aliases.contains(&entry.id))
        });
        if let Some(entry) = ignored_by {
            gate.ignored.push((finding.id.clone(), entry.clone()));
            continue;
        }
        gate.violations.push(if finding.warning {
            Violation::Warning {
                id: finding.id.clone(),
                package: finding.package.clone(),
                version: finding.version.clone(),
            }
        } else {
            Violation::Vulnerability {
                id: finding.id.clone(),
                package: finding.package.clone(),
                version: finding.version.clone(),
                severity: finding.severity,
            }
        });
    }
    for package in licenses {
        if let Some(why) = license_problem(&policy.licenses, package.license.as_deref()) {
            gate.violations.push(Violation::License {
                package: package.package.clone(),
                version: package.version.clone(),
                license: package.license.clone(),
                why,
            });
        }
    }
    gate
}

/// Why a license expression does not pass the lists, or `None` if it does.
fn license_problem(lists: &Licenses, expression: Option<&str>) -> Option<String> {
    if lists.allow.is_empty() && lists.deny.is_empty() {
        return None;
    }
    let Some(expression) = expression else {
        return (!lists.allow.is_empty())
            .then(|| "no license declared, and an allow list is set".to_string());
    };
    expression_problem(lists, expression)
}

#[cfg(not(feature = "licenses"))]
fn expression_problem(_: &Licenses, _: &str) -> Option<String> {
    Some(
        "license lists are set, but wharf-policy was built without its `licenses` feature \
         (hint: enable it, or remove the license lists)"
            .to_string(),
    )
}

#[cfg(feature = "licenses")]
fn expression_problem(lists: &Licenses, expression: &str) -> Option<String> {
    let parsed = match spdx::Expression::parse_mode(expression, spdx::ParseMode::LAX) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("not a valid SPDX expression ({e})")),
    };
    let named = |req: &spdx::LicenseReq, list: &[String]| {
        let name = req.license.to_string();
        list.iter().any(|l| l == &name)
    };
    let acceptable = |req: &spdx::LicenseReq| {
        !named(req, &lists.deny) && (lists.allow.is_empty() || named(req, &lists.allow))
    };
    if parsed.evaluate(acceptable) {
        return None;
    }
    Some(if lists.allow.is_empty() {
        format!(
            "every choice includes a denied license ({})",
            lists.deny.join(", ")
        )
    } else {
        format!(
            "no choice of licenses is within the allow list ({}) without a denied one",
            lists.allow.join(", ")
        )
    })
}

#[cfg(test)]
mod tests;
