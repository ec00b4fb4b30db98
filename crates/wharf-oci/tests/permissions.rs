//! Issue 10, item 9: layout files and reports written through `wharf_oci::atomic` get the
//! permissions `cp` would give them (0666 minus the umask), not tempfile's 0600, so other
//! users and tools can read a layout.
//!
//! The umask is per process, so the test re-runs its own binary as the writer under a
//! shell that sets it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use wharf_oci::{Layout, random_image};

const CHILD_ENV: &str = "WHARF_PERMISSIONS_TEST_DIR";

/// The writer: a layout with a tagged image, and a report written atomically.
#[test]
fn permissions_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only does something when started by the test below.
    };
    let dir = Path::new(&dir);
    let layout = Layout::create(dir.join("layout")).unwrap();
    layout
        .write_image(&random_image(5, 2, 1000), Some("t"))
        .unwrap();
    wharf_oci::atomic::write(&dir.join("report.json"), b"{}").unwrap();
}

/// Every file and directory under `dir`, with its permission bits.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        found.push((
            entry.path().display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o7777,
        ));
        if meta.is_dir() {
            found.extend(modes(&entry.path()));
        }
    }
    found
}

fn write_under_umask(umask: &str) -> (tempfile::TempDir, Vec<(String, bool, u32)>) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(&exe)
        .args([
            "--exact",
            "permissions_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the writer failed under umask {umask}");
    let found = modes(dir.path());
    (dir, found)
}

#[test]
fn files_follow_the_umask_like_cp() {
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("077", 0o600, 0o700)] {
        let (dir, found) = write_under_umask(umask);
        let files: Vec<_> = found.iter().filter(|(_, is_dir, _)| !is_dir).collect();
        // oci-layout, index.json, its lock, config, manifest, 2 layers, the report.
        assert_eq!(files.len(), 8, "{found:?}");
        for (path, is_dir, mode) in &found {
            let expected = if *is_dir { dir_mode } else { file_mode };
            assert_eq!(
                *mode, expected,
                "{path} under umask {umask}: {mode:o}, expected {expected:o}"
            );
        }
        assert!(dir.path().join("report.json").exists());
    }
}
