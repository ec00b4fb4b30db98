//! The parsers of `wharf_flow::diagnostics` on what real tools print: one tiny crate with a
//! compiler warning, a clippy lint and a failing test, checked by `cargo clippy` and
//! `cargo test`.
//!
//! The inner cargo runs take no lock of their own: this test already runs under the
//! workspace's cargo lock (`flock /tmp/wharf-cargo.lock cargo test ...`), and taking it again
//! from a child would wait forever. They build in the fixture's own target directory.

use std::path::Path;
use std::process::{Command, Output};

use wharf_flow::Level;
use wharf_flow::diagnostics::{cargo_messages, test_panics};

const LIB: &str = r#"pub fn answer() -> u32 {
    let unused = 1;
    return 42;
}

#[cfg(test)]
mod tests {
    #[test]
    fn broken() {
        assert_eq!(super::answer(), 41, "the answer changed");
    }
}
"#;

/// Line numbers in `LIB`, 1-based.
const UNUSED_LINE: u32 = 2;
const RETURN_LINE: u32 = 3;
const ASSERT_LINE: u32 = 10;

fn fixture(dir: &Path) {
    let manifest =
        "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new("cargo")
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .unwrap_or_else(|e| panic!("running cargo {args:?}: {e} (is cargo on PATH?)"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("no such command"),
        "cargo {args:?} is not installed (rustup component add clippy):\n{stderr}"
    );
    output
}

#[test]
fn annotations_from_real_clippy_and_test_runs_point_at_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fixture(root);

    let clippy = cargo(root, &["clippy", "--message-format=json"]);
    let stdout = String::from_utf8_lossy(&clippy.stdout);
    assert!(
        clippy.status.success(),
        "clippy failed:\n{}",
        String::from_utf8_lossy(&clippy.stderr)
    );
    let messages = cargo_messages(&stdout, root);
    let find = |title: &str| {
        messages
            .iter()
            .find(|m| m.annotation.title.as_deref() == Some(title))
            .unwrap_or_else(|| panic!("no {title} among {messages:#?}"))
    };
    for (title, line, column) in [
        ("unused_variables", UNUSED_LINE, 9),
        ("clippy::needless_return", RETURN_LINE, 5),
    ] {
        let message = find(title);
        let a = &message.annotation;
        assert_eq!(a.level, Level::Warning, "{message:?}");
        assert_eq!(
            a.file.as_deref(),
            Some(Path::new("src/lib.rs")),
            "{message:?}"
        );
        assert_eq!(
            (a.line, a.column),
            (Some(line), Some(column)),
            "{message:?}"
        );
        assert!(
            message
                .rendered
                .as_deref()
                .unwrap_or("")
                .contains("src/lib.rs"),
            "{message:?}"
        );
    }

    let test = cargo(root, &["test", "--lib"]);
    assert!(!test.status.success(), "the fixture's test passed");
    // libtest replays a failed test's output on stdout; take stderr too, in case that moves.
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let panics = test_panics(&output, root);
    assert_eq!(panics.len(), 1, "{panics:#?}\n{output}");
    let panic = &panics[0];
    assert_eq!(panic.level, Level::Error);
    assert_eq!(panic.title.as_deref(), Some("tests::broken"));
    assert_eq!(panic.file.as_deref(), Some(Path::new("src/lib.rs")));
    assert_eq!(panic.line, Some(ASSERT_LINE));
    assert!(panic.message.contains("the answer changed"), "{panic:?}");
}
