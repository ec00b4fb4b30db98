//! Gathering facts from a real git checkout in a temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use wharf_flow::Facts;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn gather_walks_the_workspace_like_git_and_reads_git_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "ignored.txt\n/generated/\n");
    write(root, "src/lib.rs", "pub fn f() {}\n");
    write(root, "ignored.txt", "secret scratch\n");
    write(root, "generated/out.rs", "// generated\n");
    write(root, "target/debug/app", "binary\n");
    write(root, "nested/target/x", "nested build dir\n");
    write(root, ".github/workflows/ci.yml", "on: push\n");
    write(root, "run.sh", "#!/bin/sh\n");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "init"]);

    let facts = Facts::gather(root, ["PATH", "WHARF_FLOW_TEST_NEVER_SET"]).unwrap();
    let paths: Vec<&str> = facts.files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            ".github/workflows/ci.yml",
            ".gitignore",
            "run.sh",
            "src/lib.rs"
        ]
    );
    assert!(facts.files["run.sh"].executable);
    assert!(!facts.files["src/lib.rs"].executable);
    assert_eq!(
        facts.files["src/lib.rs"].sha256,
        // sha256 of "pub fn f() {}\n"
        hex_sha256(b"pub fn f() {}\n")
    );
    let git_facts = facts.git.clone().expect("a git checkout");
    assert_eq!(git_facts.commit.len(), 40);
    assert!(!git_facts.dirty);
    assert!(facts.toolchain.starts_with("rustc "), "{}", facts.toolchain);
    assert!(facts.env["PATH"].is_some());
    assert_eq!(facts.env["WHARF_FLOW_TEST_NEVER_SET"], None);
    assert!(facts.cpus >= 1);
    assert_eq!(facts.root, root);

    let json = serde_json::to_string(&facts).unwrap();
    assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), facts);

    write(root, "src/new.rs", "\n");
    let facts = Facts::gather(root, [] as [&str; 0]).unwrap();
    assert!(facts.git.unwrap().dirty);
    assert!(facts.files.contains_key("src/new.rs"));
}

#[test]
fn gather_outside_git_has_no_git_facts_and_still_honours_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".gitignore", "*.log\n");
    write(dir.path(), "a.log", "x\n");
    write(dir.path(), "b.rs", "y\n");
    let facts = Facts::gather(dir.path(), [] as [&str; 0]).unwrap();
    assert_eq!(facts.git, None);
    let paths: Vec<&str> = facts.files.keys().map(String::as_str).collect();
    assert_eq!(paths, [".gitignore", "b.rs"]);
}

fn hex_sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
