//! `write` then `check` on a real directory: current files pass; an edited file, a new digest,
//! a deleted file and a removed stage are each reported by name with the command that fixes
//! them; `write` repairs all of it and leaves hand-written files alone.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use wharf_k8s::{CheckError, Drift, Pin, check, render, write};

fn drift(dir: &Path, files: &[wharf_k8s::File]) -> Drift {
    match check(dir, files) {
        Err(CheckError::Drift(drift)) => drift,
        other => panic!("expected drift, got {other:?}"),
    }
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn check_passes_after_write_and_names_every_drifted_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let app = common::app();
    let mut stages = common::stages();
    let files = render(&app, &stages).unwrap();
    let written = write(dir, &files).unwrap();
    assert_eq!(written.written.len(), files.len());
    check(dir, &files).unwrap();

    // Writing again changes nothing on disk.
    let again = write(dir, &files).unwrap();
    assert!(
        again.written.is_empty() && again.removed.is_empty(),
        "{again:?}"
    );

    // A hand edit.
    let deployment = dir.join("base/deployment.yaml");
    let text = fs::read_to_string(&deployment).unwrap();
    fs::write(
        &deployment,
        text.replace("maxUnavailable: 0", "maxUnavailable: 1"),
    )
    .unwrap();
    let found = drift(dir, &files);
    assert_eq!(found.changed, paths(&["base/deployment.yaml"]));
    assert!(found.missing.is_empty() && found.extra.is_empty());
    let message = CheckError::Drift(found).to_string();
    assert!(message.contains("base/deployment.yaml"), "{message}");
    assert!(message.contains("cargo xtask render-k8s"), "{message}");
    write(dir, &files).unwrap();
    check(dir, &files).unwrap();

    // A new digest for production: only its kustomization differs.
    stages[2].pin = Pin::Digest(format!("sha256:{}", "a".repeat(64)));
    let promoted = render(&app, &stages).unwrap();
    let found = drift(dir, &promoted);
    assert_eq!(
        found.changed,
        paths(&["overlays/production/kustomization.yaml"])
    );
    let message = CheckError::Drift(found).to_string();
    assert!(
        message.contains("overlays/production/kustomization.yaml"),
        "{message}"
    );

    // A deleted file is missing.
    fs::remove_file(dir.join("overlays/staging/pdb-patch.yaml")).unwrap();
    let found = drift(dir, &files);
    assert_eq!(found.missing, paths(&["overlays/staging/pdb-patch.yaml"]));

    // A removed stage leaves extra files; a hand-written file beside them is not ours.
    write(dir, &files).unwrap();
    fs::write(dir.join("overlays/dev/notes.yaml"), "# mine\n").unwrap();
    fs::write(dir.join("base/namespace.yaml"), "kind: Namespace\n").unwrap();
    let without_dev = render(&app, &stages[1..]).unwrap();
    let found = drift(dir, &without_dev);
    assert_eq!(
        found.extra,
        paths(&[
            "overlays/dev/deployment-patch.yaml",
            "overlays/dev/hpa-patch.yaml",
            "overlays/dev/kustomization.yaml",
            "overlays/dev/pdb-patch.yaml",
        ])
    );
    // ... and production's digest changed too.
    assert_eq!(
        found.changed,
        paths(&["overlays/production/kustomization.yaml"])
    );
    let done = write(dir, &without_dev).unwrap();
    assert_eq!(done.removed, found.extra);
    assert_eq!(
        done.written,
        paths(&["overlays/production/kustomization.yaml"])
    );
    check(dir, &without_dev).unwrap();
    assert!(dir.join("overlays/dev/notes.yaml").exists());
    assert!(dir.join("base/namespace.yaml").exists());

    // Without the hand-written file the stage's directory goes entirely.
    let without_staging = render(&app, &stages[2..]).unwrap();
    write(dir, &without_staging).unwrap();
    assert!(!dir.join("overlays/staging").exists());
    check(dir, &without_staging).unwrap();

    // No temporary file is left behind.
    let leftovers: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn check_of_an_empty_directory_lists_every_file_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let files = render(&common::app(), &common::stages()).unwrap();
    let found = drift(dir.path(), &files);
    let expected: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(found.missing, expected);
}

#[test]
fn write_refuses_a_path_outside_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["../escape.yaml", "/tmp/absolute.yaml", ""] {
        let file = wharf_k8s::File {
            path: path.into(),
            contents: "x\n".into(),
        };
        let err = write(dir.path(), &[file]).unwrap_err();
        assert!(err.to_string().starts_with("writing "), "{err}");
    }
    assert!(!dir.path().parent().unwrap().join("escape.yaml").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
