//! A [`Report`] as text: a table for people, JSON for programs, SARIF for GitHub code
//! scanning. Pure functions: the caller decides where the text goes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Finding, Report, Severity};

/// A plain-text table, one row per finding (vulnerabilities first), columns aligned, and a
/// summary line.
pub fn table(report: &Report) -> String {
    const HEADER: [&str; 7] = [
        "ID", "PACKAGE", "VERSION", "KIND", "SEVERITY", "FIX", "TITLE",
    ];
    let rows: Vec<[String; 7]> = report
        .vulnerabilities
        .iter()
        .chain(&report.warnings)
        .map(|f| {
            [
                f.id.clone(),
                f.package.clone(),
                f.version.to_string(),
                f.kind.map_or("vulnerability", |k| k.as_str()).to_owned(),
                match (f.severity, f.cvss) {
                    (Some(severity), Some(score)) => format!("{severity} ({score:.1})"),
                    _ => "-".to_owned(),
                },
                f.fixed_version
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), |v| v.to_string()),
                f.title.clone(),
            ]
        })
        .collect();
    let mut out = String::new();
    if !rows.is_empty() {
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header = HEADER.map(str::to_owned);
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    // The last column is not padded: no trailing spaces.
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} {}, {} {}\n",
        report.vulnerabilities.len(),
        plural(
            report.vulnerabilities.len(),
            "vulnerability",
            "vulnerabilities"
        ),
        report.warnings.len(),
        plural(report.warnings.len(), "warning", "warnings"),
    ));
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The report as pretty-printed JSON: `{"vulnerabilities": [...], "warnings": [...]}`.
pub fn json(report: &Report) -> String {
    let mut text =
        serde_json::to_string_pretty(report).expect("a report is plain data and serializes");
    text.push('\n');
    text
}

/// The SARIF 2.1.0 level of a finding: warnings are `warning`; a vulnerability is `error`
/// when critical or high, `warning` when medium, `note` when low or none, and `error` when
/// it has no CVSS vector (unknown is not taken as harmless).
pub fn level(finding: &Finding) -> &'static str {
    if finding.kind.is_some() {
        return "warning";
    }
    match finding.severity {
        Some(Severity::Critical | Severity::High) | None => "error",
        Some(Severity::Medium) => "warning",
        Some(Severity::Low | Severity::None) => "note",
    }
}

/// The report as a SARIF 2.1.0 log for GitHub code scanning: one rule per advisory (with
/// help text and URL, and `security-severity` from the CVSS score, which GitHub uses to
/// rank alerts), one result per finding, located in `lockfile_uri` (the lockfile's path
/// relative to the repository root) at the package's `name = "..."` line.
pub fn sarif(report: &Report, lockfile_uri: &str) -> String {
    let findings: Vec<&Finding> = report
        .vulnerabilities
        .iter()
        .chain(&report.warnings)
        .collect();
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for finding in &findings {
        rules.entry(finding.id.as_str()).or_insert(finding);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let rules: Vec<Value> = rules.values().map(|f| rule(f)).collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.id,
                "ruleIndex": index[f.id.as_str()],
                "level": level(f),
                "message": { "text": message(f) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": lockfile_uri },
                        "region": { "startLine": f.line.unwrap_or(1) }
                    }
                }],
                "partialFingerprints": {
                    "wharf-audit/v1": format!("{}:{}:{}", f.id, f.package, f.version)
                }
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "wharf-audit",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules
                }
            },
            "results": results
        }]
    });
    let mut text = serde_json::to_string_pretty(&log).expect("a JSON value serializes");
    text.push('\n');
    text
}

fn rule(f: &Finding) -> Value {
    let what = match f.kind {
        Some(kind) => format!("{kind} crate"),
        None => "vulnerability".to_owned(),
    };
    let fix = match &f.patched[..] {
        [] => "No patched version is known.".to_owned(),
        patched => format!("Patched versions: {}.", patched.join(" or ")),
    };
    let mut properties = json!({
        "tags": ["security", f.kind.map_or("vulnerability", |k| k.as_str())],
        "precision": "very-high"
    });
    if let Some(score) = f.cvss {
        properties["security-severity"] = json!(format!("{score:.1}"));
    }
    json!({
        "id": f.id,
        "name": f.id,
        "shortDescription": { "text": f.title },
        "fullDescription": { "text": format!("{} ({what} in {}): {}", f.id, f.package, f.title) },
        "helpUri": f.url,
        "help": {
            "text": format!("{fix} See {}", f.url),
            "markdown": format!("{fix} See [{}]({}).", f.id, f.url)
        },
        "defaultConfiguration": { "level": level(f) },
        "properties": properties
    })
}

fn message(f: &Finding) -> String {
    let what = match f.kind {
        None => format!(
            "{} {} is vulnerable to {}: {}",
            f.package, f.version, f.id, f.title
        ),
        Some(kind) => format!(
            "{} {}: {kind} ({}): {}",
            f.package, f.version, f.id, f.title
        ),
    };
    match &f.fixed_version {
        Some(fixed) => format!("{what} (upgrade to {fixed})"),
        None => what,
    }
}
