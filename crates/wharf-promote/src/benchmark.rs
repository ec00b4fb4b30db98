//! The benchmark regression gate.
//!
//! # File format
//!
//! The baseline and the current results are JSON files of the same shape:
//!
//! ```json
//! {"benchmarks": [{"name": "http_get", "p95_ns": 1000000}, {"name": "parse", "p95_ns": 52000}]}
//! ```
//!
//! - `name`: a benchmark's name, unique in the file;
//! - `p95_ns`: its 95th-percentile time in nanoseconds, a positive integer.
//!
//! Unknown keys are rejected, so a typo (`p95`) is an error, not a silently passing gate.
//!
//! # Rule
//!
//! The gate fails when a benchmark's current p95 is more than `max_regression_percent` above
//! its baseline p95 (`current * 100 > baseline * (100 + limit)`, in integers: exactly 10%
//! slower with a 10% limit passes, 11% fails), or when a baseline benchmark is missing from
//! the current results. A benchmark only in the current results passes (it is new).
//! Changes are reported in per-mille (`110` = 11.0% slower; negative: faster).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::evidence::{BenchmarkFiles, GateResult};

/// A benchmark results file (see the module docs for the format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkFile {
    pub benchmarks: Vec<Benchmark>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    pub name: String,
    pub p95_ns: u64,
}

impl BenchmarkFile {
    /// Parses and checks a file; `what` (`baseline`, `current`) names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<BenchmarkFile, String> {
        let file: BenchmarkFile = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "the {what} file is not in the benchmark format: {e} (expected {{\"benchmarks\": [{{\"name\": \"...\", \"p95_ns\": 1234}}]}})"
            )
        })?;
        for (i, b) in file.benchmarks.iter().enumerate() {
            if b.p95_ns == 0 {
                return Err(format!(
                    "the {what} file gives {} a p95_ns of 0 (a time is a positive number of nanoseconds)",
                    b.name
                ));
            }
            if file.benchmarks[..i].iter().any(|o| o.name == b.name) {
                return Err(format!(
                    "the {what} file names {} twice (give each benchmark one entry)",
                    b.name
                ));
            }
        }
        Ok(file)
    }
}

/// The benchmark gate for `files` (None: not gathered) with a limit in percent.
pub(crate) fn gate(files: Option<&BenchmarkFiles>, limit_percent: u32) -> GateResult {
    let result = |passed, message: String, evidence| GateResult {
        gate: "benchmark".to_owned(),
        passed,
        message: format!("benchmark: {message}"),
        evidence,
    };
    let Some(files) = files else {
        return result(
            false,
            "the baseline and current files were not read".to_owned(),
            json!({ "limit_percent": limit_percent }),
        );
    };
    let parsed = BenchmarkFile::parse(&files.baseline, "baseline")
        .and_then(|b| Ok((b, BenchmarkFile::parse(&files.current, "current")?)));
    let (baseline, current) = match parsed {
        Ok(both) => both,
        Err(e) => return result(false, e, json!({ "limit_percent": limit_percent })),
    };

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut missing = Vec::new();
    for base in &baseline.benchmarks {
        let Some(cur) = current.benchmarks.iter().find(|c| c.name == base.name) else {
            failures.push(format!(
                "{} is in the baseline but not in the current results",
                base.name
            ));
            missing.push(base.name.clone());
            continue;
        };
        let passed = u128::from(cur.p95_ns) * 100
            <= u128::from(base.p95_ns) * (100 + u128::from(limit_percent));
        let per_mille = change_per_mille(base.p95_ns, cur.p95_ns);
        if !passed {
            failures.push(format!(
                "{} p95 {} slower than baseline ({} ns vs {} ns), limit {limit_percent}%",
                base.name,
                percent(per_mille),
                cur.p95_ns,
                base.p95_ns
            ));
        }
        rows.push(json!({
            "name": base.name,
            "baseline_p95_ns": base.p95_ns,
            "current_p95_ns": cur.p95_ns,
            "change_per_mille": per_mille,
            "passed": passed,
        }));
    }
    let new: Vec<&str> = current
        .benchmarks
        .iter()
        .filter(|c| !baseline.benchmarks.iter().any(|b| b.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    let evidence = json!({
        "limit_percent": limit_percent,
        "benchmarks": rows,
        "missing": missing,
        "new": new,
    });
    if failures.is_empty() {
        let message = format!(
            "{} benchmark(s) within {limit_percent}% of the baseline",
            rows.len()
        );
        return result(true, message, evidence);
    }
    result(false, failures.join("; "), evidence)
}

/// `(current - baseline) / baseline` in per-mille, truncated toward zero.
fn change_per_mille(baseline: u64, current: u64) -> i64 {
    let diff = i128::from(current) - i128::from(baseline);
    let per_mille = diff * 1000 / i128::from(baseline.max(1));
    i64::try_from(per_mille).unwrap_or(i64::MAX)
}

/// Per-mille as a percentage with one decimal, without floats: `110` -> `11.0%`.
fn percent(per_mille: i64) -> String {
    let sign = if per_mille < 0 { "-" } else { "" };
    let abs = per_mille.unsigned_abs();
    format!("{sign}{}.{}%", abs / 10, abs % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_prints_one_decimal_from_per_mille() {
        assert_eq!(percent(110), "11.0%");
        assert_eq!(percent(5), "0.5%");
        assert_eq!(percent(-125), "-12.5%");
        assert_eq!(change_per_mille(1_000_000, 1_110_000), 110);
        assert_eq!(change_per_mille(1_000, 900), -100);
    }
}
