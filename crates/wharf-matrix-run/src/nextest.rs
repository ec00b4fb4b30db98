//! cargo-nextest as a cell's runner: nextest retries failing tests itself and writes a
//! JUnit report with `<flakyFailure>` for tests that passed on a retry; the runner reads
//! that report (nextest writes it with quick-junit, which reads it back).

use std::path::Path;

use quick_junit::{Report, TestCaseStatus};

use crate::{TestResult, TestStatus};

/// The nextest profile a cell runs with. It comes from a tool config file (below), layered
/// under the repository's own `.config/nextest.toml`, so a user's settings still apply.
pub const PROFILE: &str = "wharf-matrix";

/// A nextest tool config that keeps going after failures and writes a JUnit report under
/// `store` (one directory per cell: cells running at once must not share a report path).
pub fn tool_config(store: &Path) -> String {
    // TOML basic strings take any path once quotes and backslashes are escaped.
    let store = store
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        "# Written by wharf for one matrix cell.\n\
         [store]\ndir = \"{store}\"\n\n\
         [profile.{PROFILE}]\nfail-fast = false\n\n\
         [profile.{PROFILE}.junit]\npath = \"junit.xml\"\n"
    )
}

/// Where nextest writes the JUnit report for the store directory given to [`tool_config`].
pub fn junit_path(store: &Path) -> std::path::PathBuf {
    store.join(PROFILE).join("junit.xml")
}

/// Each test's result in a nextest JUnit report.
pub fn results(junit: &str) -> Result<Vec<TestResult>, String> {
    let report = Report::deserialize_from_str(junit).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let (status, attempts) = match &case.status {
                TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
                    (TestStatus::Passed, 1)
                }
                TestCaseStatus::Success { flaky_runs } => {
                    (TestStatus::Flaky, flaky_runs.len() as u32 + 1)
                }
                TestCaseStatus::NonSuccess { reruns, .. } => {
                    (TestStatus::Failed, reruns.runs.len() as u32 + 1)
                }
                TestCaseStatus::Skipped { .. } => (TestStatus::Ignored, 0),
            };
            results.push(TestResult {
                // nextest names suites by binary id: `crate`, `crate::api` (tests/api.rs),
                // `crate::bin/tool`.
                binary: suite.name.as_str().to_string(),
                name: case.name.as_str().to_string(),
                status,
                attempts,
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape cargo-nextest 0.9.143 writes with `--retries 2`: a flaky test, a failing
    // one, a passing one.
    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" skipped="0" failures="1" errors="0" time="0.1">
    <testsuite name="fixture" tests="2" skipped="0" errors="0" failures="1">
        <testcase name="tests::broken" classname="fixture" time="0.01">
            <failure type="test failure">assertion failed</failure>
            <rerunFailure type="test failure" time="0.01"/>
            <rerunFailure type="test failure" time="0.01"/>
        </testcase>
        <testcase name="tests::adds" classname="fixture" time="0.01"/>
    </testsuite>
    <testsuite name="fixture::flaky" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="fails_first" classname="fixture::flaky" time="0.01">
            <flakyFailure type="test failure" time="0.01"/>
        </testcase>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn flaky_failed_and_passed_tests_are_told_apart() {
        let results = results(JUNIT).unwrap();
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.binary.as_str(), r.name.as_str(), r.status, r.attempts))
            .collect();
        assert_eq!(
            got,
            [
                ("fixture", "tests::broken", TestStatus::Failed, 3),
                ("fixture", "tests::adds", TestStatus::Passed, 1),
                ("fixture::flaky", "fails_first", TestStatus::Flaky, 2),
            ]
        );
    }

    #[test]
    fn tool_config_is_valid_toml_with_the_store() {
        let store = r#"/tmp/a "b" \c/store"#;
        let text = tool_config(Path::new(store));
        // Parsed by a TOML parser, not searched for text: quotes and backslashes in the
        // path must come back as they were.
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed["store"]["dir"].as_str(), Some(store), "{text}");
        let profile = &parsed["profile"][PROFILE];
        assert_eq!(profile["fail-fast"].as_bool(), Some(false), "{text}");
        assert_eq!(
            profile["junit"]["path"].as_str(),
            Some("junit.xml"),
            "{text}"
        );
        // nextest writes the report to <store.dir>/<profile>/<junit.path>.
        let written = Path::new(store)
            .join(PROFILE)
            .join(profile["junit"]["path"].as_str().unwrap());
        assert_eq!(junit_path(Path::new(store)), written);
    }
}
