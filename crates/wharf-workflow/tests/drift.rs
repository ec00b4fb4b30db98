//! `check` against files on disk: a fresh `write` passes, an edited or missing file fails
//! with its name and `cargo xtask codegen`, and `write` replaces only what changed.

mod common;

use std::path::{Path, PathBuf};

use common::example_spec;
use wharf_workflow::*;

/// The example written to a fresh directory: (the directory, the spec, ci.yml's path and
/// text).
fn written() -> (tempfile::TempDir, WorkflowSpec, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let spec = example_spec();
    write(dir.path(), &spec).unwrap();
    let ci = dir.path().join(CI_PATH);
    let text = std::fs::read_to_string(&ci).unwrap();
    (dir, spec, ci, text)
}

fn drift(root: &Path, spec: &WorkflowSpec) -> Drift {
    match check(root, spec) {
        Err(CheckError::Drift(drift)) => drift,
        other => panic!("expected drift, got {other:?}"),
    }
}

#[test]
fn a_fresh_write_passes_the_check_and_a_second_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example_spec();
    let written = write(dir.path(), &spec).unwrap();
    assert_eq!(
        written,
        [
            PathBuf::from(CI_PATH),
            PathBuf::from(RELEASE_PATH),
            PathBuf::from(PROMOTE_PATH)
        ]
    );
    check(dir.path(), &spec).unwrap();
    assert_eq!(write(dir.path(), &spec).unwrap(), Vec::<PathBuf>::new());
    // No temporary file is left beside the workflows.
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ci.yml", "promote.yml", "release.yml"]);
}

#[test]
fn an_edited_or_missing_workflow_is_named_with_the_fix() {
    let (dir, spec, ci, text) = written();
    // A hand edit: one more toolchain, copied in by hand.
    let edited = text.replace("nightly 1.95.0", "nightly beta 1.95.0");
    assert_ne!(edited, text);
    std::fs::write(&ci, &edited).unwrap();
    std::fs::remove_file(dir.path().join(RELEASE_PATH)).unwrap();

    let drift = drift(dir.path(), &spec);
    let line = text
        .lines()
        .position(|l| l.contains("nightly 1.95.0"))
        .unwrap()
        + 1;
    assert_eq!(
        drift.files,
        [
            (
                PathBuf::from(CI_PATH),
                DriftKind::Differs {
                    line,
                    committed: Some(
                        "          rustup toolchain install nightly beta 1.95.0 --profile minimal"
                            .into()
                    ),
                    rendered: Some(
                        "          rustup toolchain install nightly 1.95.0 --profile minimal"
                            .into()
                    ),
                }
            ),
            (PathBuf::from(RELEASE_PATH), DriftKind::Missing),
        ]
    );
    let message = drift.to_string();
    for part in [
        "run `cargo xtask codegen`",
        &format!(".github/workflows/ci.yml: differs from line {line}"),
        ".github/workflows/release.yml: missing",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }

    // The fix is the fix.
    write(dir.path(), &spec).unwrap();
    check(dir.path(), &spec).unwrap();
}

#[test]
fn a_truncated_workflow_says_where_it_ends() {
    let (dir, spec, ci, text) = written();
    let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&ci, &cut).unwrap();
    let message = drift(dir.path(), &spec).to_string();
    assert!(
        message.contains("differs from line 4: committed \"\", rendered"),
        "{message}"
    );
}

/// A Windows checkout with `core.autocrlf` turns LF into CRLF; that is not a change.
#[test]
fn crlf_line_endings_are_not_drift() {
    let (dir, spec, ci, text) = written();
    std::fs::write(&ci, text.replace('\n', "\r\n")).unwrap();
    check(dir.path(), &spec).unwrap();
}

#[cfg(unix)]
#[test]
fn written_workflows_are_ordinary_readable_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &example_spec()).unwrap();
    let mode = std::fs::metadata(dir.path().join(CI_PATH))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn a_bad_spec_is_an_error_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = example_spec();
    spec.toolchains.clear();
    assert!(matches!(
        check(dir.path(), &spec),
        Err(CheckError::Spec(SpecError::NoToolchain))
    ));
    assert!(matches!(
        write(dir.path(), &spec),
        Err(WriteError::Spec(SpecError::NoToolchain))
    ));
}

/// The last release pipeline went: release.yml is drift until codegen removes it (and
/// promote.yml, which followed releases, changes), and a hand-written workflow beside it is
/// neither reported nor touched.
#[test]
fn a_generated_file_no_pipeline_renders_is_drift_and_write_removes_it() {
    let (dir, mut spec, _, _) = written();
    let own = dir.path().join(".github/workflows/own.yml");
    std::fs::write(&own, "name: hand-written\n").unwrap();
    spec.pipelines.retain(|p| p.trigger != Trigger::Release);

    let drift = drift(dir.path(), &spec);
    assert!(
        matches!(
            drift.files.as_slice(),
            [
                (promote, DriftKind::Differs { .. }),
                (release, DriftKind::NotRendered),
            ] if promote == Path::new(PROMOTE_PATH) && release == Path::new(RELEASE_PATH)
        ),
        "{drift}"
    );
    assert!(
        drift
            .to_string()
            .contains(".github/workflows/release.yml: generated, but no pipeline renders it now"),
        "{drift}"
    );

    assert_eq!(
        write(dir.path(), &spec).unwrap(),
        [PathBuf::from(PROMOTE_PATH), PathBuf::from(RELEASE_PATH)]
    );
    assert!(!dir.path().join(RELEASE_PATH).exists());
    assert_eq!(
        std::fs::read_to_string(&own).unwrap(),
        "name: hand-written\n"
    );
    check(dir.path(), &spec).unwrap();
}

/// Without stages there is no promote.yml: the check passes without one, and one left from
/// when there were stages is drift until codegen removes it.
#[test]
fn without_stages_no_promotion_workflow_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = example_spec();
    spec.promotion = None;
    assert_eq!(
        write(dir.path(), &spec).unwrap(),
        [PathBuf::from(CI_PATH), PathBuf::from(RELEASE_PATH)]
    );
    assert!(!dir.path().join(PROMOTE_PATH).exists());
    check(dir.path(), &spec).unwrap();

    // With stages, release.yml also fetches and pushes the ledger (its record step writes
    // there): without them, it differs too.
    write(dir.path(), &example_spec()).unwrap();
    let files = drift(dir.path(), &spec).files;
    let paths: Vec<&PathBuf> = files.iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [&PathBuf::from(RELEASE_PATH), &PathBuf::from(PROMOTE_PATH)]
    );
    assert_eq!(files[1].1, DriftKind::NotRendered);
    assert_eq!(
        write(dir.path(), &spec).unwrap(),
        [PathBuf::from(RELEASE_PATH), PathBuf::from(PROMOTE_PATH)]
    );
    check(dir.path(), &spec).unwrap();
}
