//! The result of a matrix run: the summary table, the failures with their reproduce
//! commands, JSON (serde) and JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestRerun, TestSuite};
use serde::Serialize;

use crate::{CellResult, Harness, Outcome, TestStatus};

/// Every cell's result, in plan order.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub harness: Harness,
    pub cells: Vec<CellResult>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

impl Report {
    /// True when every cell passed (flaky counts as passed: it is reported, not fatal).
    pub fn passed(&self) -> bool {
        self.cells.iter().all(|c| c.outcome.ok())
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.cells.iter().filter(|c| c.outcome == outcome).count()
    }

    /// One row per cell (result, tests passed/failed/flaky/ignored, seconds, cell id), then
    /// a line of totals.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>6} {:>6} {:>7} {:>8}  CELL",
            "RESULT", "PASSED", "FAILED", "FLAKY", "IGNORED", "SECONDS"
        );
        for cell in &self.cells {
            let _ = writeln!(
                out,
                "{:<8} {:>6} {:>6} {:>6} {:>7} {:>8.1}  {}",
                cell.outcome.label(),
                cell.count(TestStatus::Passed),
                cell.count(TestStatus::Failed),
                cell.count(TestStatus::Flaky),
                cell.count(TestStatus::Ignored),
                cell.seconds,
                cell.id
            );
        }
        let mut totals = vec![format!("{} cells", self.cells.len())];
        for outcome in [
            Outcome::Passed,
            Outcome::Flaky,
            Outcome::Failed,
            Outcome::TimedOut,
            Outcome::NotRun,
        ] {
            let n = self.count(outcome);
            if n > 0 {
                totals.push(format!("{n} {}", outcome.label().to_lowercase()));
            }
        }
        let _ = writeln!(out, "{} in {:.1} s", totals.join(", "), self.seconds);
        out
    }

    /// Each failed, timed-out or flaky cell: what went wrong and how to see it again.
    pub fn problems(&self) -> String {
        let mut out = String::new();
        for cell in &self.cells {
            match cell.outcome {
                Outcome::Passed | Outcome::NotRun => continue,
                Outcome::Flaky => {
                    let _ = writeln!(out, "FLAKY {}", cell.id);
                    for test in cell.tests.iter().filter(|t| t.status == TestStatus::Flaky) {
                        let _ = writeln!(
                            out,
                            "    {} {} failed, then passed on attempt {}",
                            test.binary, test.name, test.attempts
                        );
                    }
                }
                Outcome::Failed | Outcome::TimedOut => {
                    let _ = writeln!(out, "{} {}", cell.outcome.label(), cell.id);
                    for test in cell.tests.iter().filter(|t| t.status == TestStatus::Failed) {
                        let _ = writeln!(
                            out,
                            "    {} {} failed {} of {} attempts",
                            test.binary, test.name, test.attempts, test.attempts
                        );
                    }
                    if let Some(message) = &cell.message {
                        let _ = writeln!(out, "    {message}");
                    }
                    if let Some(reproduce) = &cell.reproduce {
                        let _ = writeln!(out, "    reproduce: {reproduce}");
                    }
                }
            }
            let _ = writeln!(out, "    log: {}", cell.log.display());
        }
        out
    }

    /// JUnit XML: one `<testsuite>` per cell (named by its id, with the command as a
    /// property), one `<testcase>` per test. Flaky tests are successes with
    /// `<flakyFailure>` runs; failed ones carry `<rerunFailure>` runs. A cell that failed
    /// without a failing test (build error, timeout) gets a `<testcase name="(cell)">`
    /// with an `<error>`, so no failure is invisible to a JUnit reader.
    pub fn junit(&self) -> quick_junit::Report {
        let mut report = quick_junit::Report::new("wharf-matrix");
        report.set_time(Duration::from_secs_f64(self.seconds));
        for cell in &self.cells {
            let mut suite = TestSuite::new(cell.id.as_str());
            suite.set_time(Duration::from_secs_f64(cell.seconds));
            suite.add_property(Property::new("command", cell.command.as_str()));
            if let Some(reproduce) = &cell.reproduce {
                suite.add_property(Property::new("reproduce", reproduce.as_str()));
            }
            for test in &cell.tests {
                let failed_runs = || {
                    (1..test.attempts).map(|_| {
                        let mut run = TestRerun::new(NonSuccessKind::Failure);
                        run.set_type("test failure");
                        run
                    })
                };
                let status = match test.status {
                    TestStatus::Passed => TestCaseStatus::success(),
                    TestStatus::Ignored => TestCaseStatus::skipped(),
                    TestStatus::Flaky => {
                        let mut status = TestCaseStatus::success();
                        status.add_reruns(failed_runs());
                        status
                    }
                    TestStatus::Failed => {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        status.set_type("test failure");
                        status.set_message(format!(
                            "failed {} of {} attempts; log: {}",
                            test.attempts,
                            test.attempts,
                            cell.log.display()
                        ));
                        status.add_reruns(failed_runs());
                        status
                    }
                };
                let mut case = TestCase::new(test.name.as_str(), status);
                case.set_classname(format!("{}::{}", cell.id, test.binary));
                suite.add_test_case(case);
            }
            let cell_problem = match cell.outcome {
                Outcome::TimedOut => Some("timed out"),
                Outcome::Failed if !cell.tests.iter().any(|t| t.status == TestStatus::Failed) => {
                    Some("failed before any test did")
                }
                _ => None,
            };
            if let Some(what) = cell_problem {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(what);
                if let Some(message) = &cell.message {
                    status.set_description(message.as_str());
                }
                let mut case = TestCase::new("(cell)", status);
                case.set_classname(cell.id.as_str());
                suite.add_test_case(case);
            }
            if cell.outcome == Outcome::NotRun {
                let mut status = TestCaseStatus::skipped();
                status.set_message("not run (fail-fast or cancelled)");
                let mut case = TestCase::new("(cell)", status);
                case.set_classname(cell.id.as_str());
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use wharf_matrix::{Cell, Command};

    use super::*;
    use crate::TestResult;

    fn cell(features: &str, outcome: Outcome, tests: Vec<TestResult>) -> CellResult {
        let cell = Cell {
            package: "p".into(),
            features: vec![features.into()],
            no_default_features: true,
            toolchain: "stable".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            target_flag: true,
            profile: "dev".into(),
            command: Command::Test,
        };
        CellResult {
            id: cell.id(),
            command: cell.argv().join(" "),
            reproduce: (!outcome.ok()).then(|| cell.argv().join(" ")),
            message: (outcome == Outcome::TimedOut).then(|| "timed out after 9 s".into()),
            cell,
            outcome,
            seconds: 1.5,
            log: PathBuf::from(format!("logs/{features}.log")),
            tests,
        }
    }

    fn test(name: &str, status: TestStatus, attempts: u32) -> TestResult {
        TestResult {
            binary: "src/lib.rs".into(),
            name: name.into(),
            status,
            attempts,
        }
    }

    fn report() -> Report {
        Report {
            harness: Harness::Cargo,
            seconds: 4.0,
            cells: vec![
                cell(
                    "a",
                    Outcome::Flaky,
                    vec![
                        test("ok", TestStatus::Passed, 1),
                        test("flaky", TestStatus::Flaky, 2),
                    ],
                ),
                cell("b", Outcome::TimedOut, vec![]),
                cell(
                    "c",
                    Outcome::Failed,
                    vec![test("broken", TestStatus::Failed, 3)],
                ),
                cell("d", Outcome::NotRun, vec![]),
            ],
        }
    }

    #[test]
    fn table_counts_tests_and_cells() {
        let report = report();
        assert!(!report.passed());
        let table = report.table();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 6, "{table}");
        assert!(
            rows[1].starts_with("FLAKY         1      0      1"),
            "{table}"
        );
        assert!(rows[5].starts_with("4 cells, 1 flaky, 1 fail, 1 timeout, 1 not run"));
        let problems = report.problems();
        assert!(problems.contains("src/lib.rs flaky failed, then passed on attempt 2"));
        assert!(problems.contains("TIMEOUT p/b/"), "{problems}");
        assert!(problems.contains("src/lib.rs broken failed 3 of 3 attempts"));
        assert!(problems.contains("reproduce: cargo +stable test -p p"));
    }

    #[test]
    fn junit_marks_flaky_runs_reruns_and_cell_errors() {
        let xml = report().junit().to_string().unwrap();
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let suites = &parsed.test_suites;
        assert_eq!(suites.len(), 4);
        // Flaky: a success carrying one failed run.
        match &suites[0].test_cases[1].status {
            TestCaseStatus::Success { flaky_runs } => assert_eq!(flaky_runs.len(), 1),
            other => panic!("{other:?}"),
        }
        // Timed out, no test failed: the cell itself is an error case.
        assert_eq!(suites[1].test_cases[0].name.as_str(), "(cell)");
        assert!(matches!(
            suites[1].test_cases[0].status,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            }
        ));
        // Failed on all three attempts: a failure with two reruns.
        match &suites[2].test_cases[0].status {
            TestCaseStatus::NonSuccess { kind, reruns, .. } => {
                assert_eq!(*kind, NonSuccessKind::Failure);
                assert_eq!(reruns.runs.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            suites[3].test_cases[0].status,
            TestCaseStatus::Skipped { .. }
        ));
        assert_eq!(parsed.failures, 1);
        assert_eq!(parsed.errors, 1);
    }
}
