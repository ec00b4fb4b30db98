//! Same commit, same digest: two clones of this repository in different directories, one
//! made under umask 077, build the example image with the same manifest digest.

use std::path::Path;
use std::process::Command;

use wharf_e2e::{build_example, run, workspace_root};

fn clone(into: &Path, umask: &str) {
    let root = workspace_root();
    run(Command::new("sh").arg("-c").arg(format!(
        "umask {umask} && git clone --quiet --no-hardlinks '{}' '{}'",
        root.display(),
        into.display()
    )));
}

#[test]
fn two_clones_in_different_directories_give_the_same_digest() {
    let root = workspace_root();
    let dirty = !run(Command::new("git").arg("-C").arg(&root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .stdout
    .is_empty();
    if dirty {
        // A clone has only what is committed, so it could differ for a good reason.
        eprintln!(
            "note: uncommitted changes in {}; the clones build HEAD",
            root.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a/wharf");
    let b = tmp.path().join("somewhere/much/deeper/other-name");
    clone(&a, "022");
    clone(&b, "077");
    // Different creation order of the same inputs: touch b's files in reverse order.
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && git ls-files | sort -r | while read f; do touch -d @1 \"$f\"; done",
        b.display()
    )));

    let (first, _) = build_example(&a, &tmp.path().join("layout-a"));
    let (second, _) = build_example(&b, &tmp.path().join("layout-b"));
    assert_eq!(
        first.digest, second.digest,
        "manifest digests differ between clones"
    );
    assert_eq!(
        first
            .layers
            .iter()
            .map(|l| &l.descriptor.digest)
            .collect::<Vec<_>>(),
        second
            .layers
            .iter()
            .map(|l| &l.descriptor.digest)
            .collect::<Vec<_>>()
    );
    let bin_a = std::fs::read(&first.binary).unwrap();
    let bin_b = std::fs::read(&second.binary).unwrap();
    assert!(
        bin_a == bin_b,
        "the binaries differ: a machine-specific path leaked into the build"
    );
    for leaked in [a.to_str().unwrap(), b.to_str().unwrap()] {
        assert!(
            !bin_a.windows(leaked.len()).any(|w| w == leaked.as_bytes())
                && !bin_b.windows(leaked.len()).any(|w| w == leaked.as_bytes()),
            "the binary contains the clone path {leaked}"
        );
    }
}
