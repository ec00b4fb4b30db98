//! Reading what `cargo test` printed: which test binary ran, and each test's result.
//!
//! cargo writes its `Running ...` lines to stderr and the test binaries write theirs to
//! stdout; the runner sends both to one file, so the order in the file is the order they
//! happened and every result line follows the `Running` line of its binary. The format
//! read here is libtest's default ("pretty") output, which is stable; its JSON output is
//! nightly-only.

use crate::TestStatus;

/// One `test NAME ... RESULT` line, with the binary it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// `src/lib.rs`, `tests/api.rs`, `doctests`: what cargo's `Running` line names.
    pub binary: String,
    pub name: String,
    pub status: TestStatus,
}

/// Every test result in `output`, in order. Lines that are not results (compiler output,
/// what a test printed uncaptured) are skipped.
pub fn parse(output: &str) -> Vec<Line> {
    let mut binary = String::from("unknown");
    let mut lines = Vec::new();
    // Inside the `failures:` section libtest replays each failed test's captured output,
    // which may contain anything, `test x ... ok` included.
    let mut replaying = false;
    for line in output.lines() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if line.starts_with("---- ") && line.ends_with(" ----") {
            replaying = true;
            continue;
        }
        if line.starts_with("test result: ") || line.starts_with("running ") {
            replaying = false;
            continue;
        }
        if replaying {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            // `Running unittests src/lib.rs (target/debug/deps/x-0123)` or
            // `Running tests/api.rs (target/debug/deps/api-4567)`.
            let source = rest.rsplit_once(" (").map_or(rest, |(source, _)| source);
            binary = source
                .strip_prefix("unittests ")
                .unwrap_or(source)
                .to_string();
            continue;
        }
        if trimmed.starts_with("Doc-tests ") {
            binary = "doctests".into();
            continue;
        }
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let status = match result {
            "ok" => TestStatus::Passed,
            "FAILED" => TestStatus::Failed,
            r if r.starts_with("ignored") => TestStatus::Ignored,
            // `bench: ...` lines of `cargo bench`, and anything libtest may add later.
            _ => continue,
        };
        lines.push(Line {
            binary: binary.clone(),
            name: name.to_string(),
            status,
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `cargo test` 1.95 on a crate with a unit test, an integration test
    // and a doctest, one of them failing.
    const OUTPUT: &str = "\
   Compiling fixture v0.1.0 (/tmp/fixture)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.52s
     Running unittests src/lib.rs (target/debug/deps/fixture-0f3c1e9a8d2b4c5d)

running 3 tests
test tests::adds ... ok
test tests::slow ... ignored, takes a minute
test tests::broken ... FAILED

failures:

---- tests::broken stdout ----
test message that looks like a result ... ok

thread 'tests::broken' panicked at src/lib.rs:12:9:
assertion `left == right` failed

failures:
    tests::broken

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running tests/api.rs (target/debug/deps/api-1a2b3c4d5e6f7a8b)

running 1 test
test round_trip ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests fixture

running 1 test
test src/lib.rs - add (line 3) ... ok
";

    #[test]
    fn results_are_attributed_to_their_binary() {
        let lines = parse(OUTPUT);
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.binary.as_str(), l.name.as_str(), l.status))
            .collect();
        assert_eq!(
            got,
            [
                ("src/lib.rs", "tests::adds", TestStatus::Passed),
                ("src/lib.rs", "tests::slow", TestStatus::Ignored),
                ("src/lib.rs", "tests::broken", TestStatus::Failed),
                // Not "message that looks like a result": that is the failed test's
                // captured output.
                ("tests/api.rs", "round_trip", TestStatus::Passed),
                ("doctests", "src/lib.rs - add (line 3)", TestStatus::Passed),
            ]
        );
    }

    #[test]
    fn compiler_errors_give_no_results() {
        let output = "error[E0308]: mismatched types\n --> src/lib.rs:3:5\n\
                      error: could not compile `fixture` (lib test) due to 1 previous error\n";
        assert!(parse(output).is_empty());
    }
}
