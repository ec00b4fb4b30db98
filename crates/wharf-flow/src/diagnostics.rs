//! Turning tool output into [`Annotation`]s: places in the workspace worth pointing at.
//!
//! Pure parsers over text the steps captured: cargo's `--message-format=json` lines, the
//! panics in test output (libtest's and nextest's), and a package's line in `Cargo.lock`.
//! Paths come out relative to the workspace root, as GitHub wants them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::{Annotation, Level};

/// A compiler diagnostic from cargo's JSON messages: where it points, and the text rustc
/// would have printed (for the step's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompilerMessage {
    pub annotation: Annotation,
    pub rendered: Option<String>,
}

#[derive(Deserialize)]
struct CargoLine {
    reason: String,
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    level: String,
    code: Option<Code>,
    #[serde(default)]
    spans: Vec<Span>,
    rendered: Option<String>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[derive(Clone, Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    column_start: u32,
    is_primary: bool,
    expansion: Option<Box<Expansion>>,
}

#[derive(Clone, Deserialize)]
struct Expansion {
    span: Span,
}

/// The errors and warnings among cargo's `--message-format=json` lines; other lines (build
/// script output, text a tool printed) are skipped.
pub fn cargo_messages(output: &str, root: &Path) -> Vec<CompilerMessage> {
    output
        .lines()
        .filter_map(|line| cargo_message(line, root))
        .collect()
}

/// One line of cargo's JSON output, if it is a compiler error or warning.
pub fn cargo_message(line: &str, root: &Path) -> Option<CompilerMessage> {
    let line: CargoLine = serde_json::from_str(line.trim()).ok()?;
    if line.reason != "compiler-message" {
        return None;
    }
    let diagnostic = line.message?;
    let level = match diagnostic.level.as_str() {
        "error" => Level::Error,
        "warning" => Level::Warning,
        _ => return None,
    };
    let span = diagnostic
        .spans
        .iter()
        .find(|s| s.is_primary)
        .map(|s| call_site(s, root));
    // "aborting due to 2 previous errors", "3 warnings emitted": tallies, not places.
    if span.is_none()
        && (level == Level::Warning || diagnostic.message.starts_with("aborting due to"))
    {
        return None;
    }
    let annotation = Annotation {
        level,
        file: span
            .as_ref()
            .map(|s| relative(Path::new(&s.file_name), root)),
        line: span.as_ref().map(|s| s.line_start),
        column: span.as_ref().map(|s| s.column_start),
        title: Some(
            diagnostic
                .code
                .map_or_else(|| "rustc".to_string(), |c| c.code),
        ),
        message: diagnostic.message,
    };
    Some(CompilerMessage {
        annotation,
        rendered: diagnostic.rendered,
    })
}

/// A span inside a macro from outside the workspace (`assert!`, a dependency's macro)
/// points at that macro's source; the place to show is where the workspace calls it.
fn call_site(span: &Span, root: &Path) -> Span {
    let mut span = span.clone();
    // Bounded: an expansion chain is as deep as the macro nesting, never a cycle.
    for _ in 0..64 {
        let path = Path::new(&span.file_name);
        let outside = path.is_absolute() && !path.starts_with(root);
        match span.expansion.take() {
            Some(expansion) if outside || span.file_name.starts_with('<') => span = expansion.span,
            _ => break,
        }
    }
    span
}

/// `path` relative to the workspace root when it lies inside; as it is otherwise (cargo
/// already gives workspace members' paths relative to the root).
fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// The panics in test output (libtest's or nextest's), one error annotation each:
/// `thread '<test>' panicked at <file>:<line>:<col>:` and the message lines after it
/// (the format since Rust 1.73; newer versions add the thread id after the name).
pub fn test_panics(output: &str, root: &Path) -> Vec<Annotation> {
    let mut panics = Vec::new();
    // libtest heads each failure's replayed output with `---- <test> stdout ----`; the thread
    // is named `main` when tests run on the main thread (`--test-threads=1`).
    let mut current_test: Option<&str> = None;
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current_test = Some(name);
            continue;
        }
        let Some((thread, file, line_no, column)) = panic_header(line) else {
            continue;
        };
        let mut message = Vec::new();
        while let Some(next) = lines.next_if(|l| !ends_message(l)) {
            message.push(next);
        }
        let title = match (thread, current_test) {
            ("main", Some(test)) => test,
            (thread, _) => thread,
        };
        panics.push(Annotation {
            level: Level::Error,
            file: Some(relative(Path::new(file), root)),
            line: Some(line_no),
            column: Some(column),
            title: Some(title.to_string()),
            message: message.join("\n"),
        });
    }
    panics
}

/// `thread 'tests::x' panicked at src/lib.rs:9:5:`, or with the thread id
/// (`thread 'tests::x' (4242) panicked at ...`): (thread, file, line, column).
fn panic_header(line: &str) -> Option<(&str, &str, u32, u32)> {
    let rest = line.trim_start().strip_prefix("thread '")?;
    let (thread, rest) = rest.split_once('\'')?;
    let (_, location) = rest.split_once("panicked at ")?;
    let location = location.strip_suffix(':')?;
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line_no = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some((thread, file, line_no, column))
}

/// Where a panic's message ends: a blank line, the backtrace hint, the next test's output.
fn ends_message(line: &str) -> bool {
    line.trim().is_empty()
        || line.starts_with("note: ")
        || line.starts_with("stack backtrace:")
        || line.starts_with("---- ")
        || line.starts_with("--- ")
        || panic_header(line).is_some()
}

/// The 1-based line of `name = "<package>"` in the `[[package]]` of `Cargo.lock` whose
/// version is `version`: where a scan finding points.
pub fn lockfile_line(lock_text: &str, package: &str, version: &str) -> Option<u32> {
    let name_line = format!("name = \"{package}\"");
    let version_line = format!("version = \"{version}\"");
    let lines: Vec<&str> = lock_text.lines().collect();
    lines.iter().enumerate().find_map(|(i, line)| {
        if line.trim() != name_line {
            return None;
        }
        let mut block = lines[i + 1..].iter().take_while(|l| !l.starts_with('['));
        if block.any(|l| l.trim() == version_line) {
            u32::try_from(i + 1).ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# This file is automatically @generated by Cargo.
version = 4

[[package]]
name = \"serde\"
version = \"1.0.1\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"

[[package]]
name = \"serde\"
version = \"1.0.228\"
dependencies = [
 \"serde_derive\",
]

[[package]]
name = \"time\"
version = \"0.3.0\"
";

    #[test]
    fn lockfile_line_finds_the_package_with_that_version() {
        assert_eq!(lockfile_line(LOCK, "serde", "1.0.228"), Some(10));
        assert_eq!(lockfile_line(LOCK, "serde", "1.0.1"), Some(5));
        assert_eq!(lockfile_line(LOCK, "time", "0.3.0"), Some(17));
        assert_eq!(lockfile_line(LOCK, "serde", "2.0.0"), None);
        assert_eq!(lockfile_line(LOCK, "serde_derive", "1.0.228"), None);
    }

    #[test]
    fn panics_in_libtest_and_nextest_output() {
        let root = Path::new("/ws");
        let output = "running 2 tests
test tests::ok ... ok
test tests::broken ... FAILED

failures:

---- tests::broken stdout ----

thread 'tests::broken' (4242) panicked at crates/a/src/lib.rs:12:9:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- tests::single stdout ----
thread 'main' panicked at /ws/src/main.rs:3:5:
boom
--- STDERR:              a tests::nextest ---
thread 'tests::nextest' panicked at src/lib.rs:40:1:
from nextest
";
        let panics = test_panics(output, root);
        let got: Vec<_> = panics
            .iter()
            .map(|a| {
                (
                    a.title.as_deref().unwrap(),
                    a.file.as_deref().unwrap().to_str().unwrap(),
                    a.line.unwrap(),
                    a.column.unwrap(),
                    a.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "tests::broken",
                    "crates/a/src/lib.rs",
                    12,
                    9,
                    "assertion `left == right` failed\n  left: 1\n right: 2"
                ),
                ("tests::single", "src/main.rs", 3, 5, "boom"),
                ("tests::nextest", "src/lib.rs", 40, 1, "from nextest"),
            ]
        );
    }

    #[test]
    fn cargo_messages_skip_tallies_and_other_lines() {
        let root = Path::new("/ws");
        let lines = [
            "   Compiling a v0.1.0",
            r#"{"reason":"compiler-artifact","package_id":"a"}"#,
            r#"{"reason":"compiler-message","message":{"message":"2 warnings emitted","level":"warning","code":null,"spans":[],"rendered":"warning: 2 warnings emitted\n"}}"#,
            r#"{"reason":"compiler-message","message":{"message":"aborting due to 1 previous error","level":"error","code":null,"spans":[],"rendered":"x"}}"#,
            r#"{"reason":"compiler-message","message":{"message":"linking failed","level":"error","code":null,"spans":[],"rendered":"error: linking failed\n"}}"#,
            r#"{"reason":"compiler-message","message":{"message":"note only","level":"note","code":null,"spans":[],"rendered":""}}"#,
        ];
        let messages = cargo_messages(&lines.join("\n"), root);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0].annotation.message, "linking failed");
        assert_eq!(messages[0].annotation.title.as_deref(), Some("rustc"));
        assert_eq!(messages[0].annotation.file, None);
    }

    #[test]
    fn a_span_in_an_outside_macro_points_at_the_call_site() {
        let root = Path::new("/ws");
        let line = r#"{"reason":"compiler-message","message":{"message":"m","level":"error","code":{"code":"E0308","explanation":null},"rendered":"r","spans":[{"file_name":"/rustc/abc/library/core/src/macros/mod.rs","line_start":40,"column_start":5,"is_primary":true,"expansion":{"span":{"file_name":"/ws/src/lib.rs","line_start":7,"column_start":3,"is_primary":false,"expansion":null}}}]}}"#;
        let message = cargo_message(line, root).expect("an error");
        let a = message.annotation;
        assert_eq!(a.file.as_deref(), Some(Path::new("src/lib.rs")));
        assert_eq!((a.line, a.column), (Some(7), Some(3)));
        assert_eq!(a.title.as_deref(), Some("E0308"));
        assert_eq!(message.rendered.as_deref(), Some("r"));
    }
}
