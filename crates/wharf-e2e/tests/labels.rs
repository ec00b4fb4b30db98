//! Checks of what wharf writes against sources other than wharf's own code (issue 10,
//! item 15): the image's revision label and timestamps against the git CLI and
//! `SOURCE_DATE_EPOCH`, its tags against the CI variables that name the branch, and the
//! pinned layer's diff id against a tar written by Python's `tarfile`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use wharf::build::{Content, FileEntry, LayerSpec, Ownership};
use wharf_e2e::{fixture_workspace, require, run, xtask_in};

const IMAGE: &str = "[image]\npackage = \"app\"\nrepository = \"team/app\"\n";
/// 2023-11-14T22:13:20Z.
const EPOCH: &str = "1700000000";

fn git_head(root: &Path) -> String {
    let out = run(Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A blob of the layout, parsed as JSON, read with nothing but the file system.
fn blob(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let path = layout.join("blobs/sha256").join(hex);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn the_built_image_carries_the_git_head_and_source_date_epoch() {
    let ws = fixture_workspace(IMAGE);
    let head = git_head(ws.path());
    let out = xtask_in(
        ws.path(),
        &["image", "--json"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    let outcome = json(&out);
    let layout = ws.path().join("target/wharf/oci/app");

    // index.json -> manifest -> config, as any OCI reader walks it.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let primary = format!("sha-{}", &head[..7]);
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == primary.as_str())
        .unwrap_or_else(|| panic!("no tag {primary} in {index:#}"));
    assert_eq!(entry["digest"], outcome["digest"]);
    let manifest = blob(&layout, entry["digest"].as_str().unwrap());
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], head.as_str());
    assert_eq!(labels["org.opencontainers.image.version"], "0.3.1");
    assert_eq!(labels["org.opencontainers.image.title"], "team/app");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    for entry in config["history"].as_array().unwrap() {
        assert_eq!(entry["created"], "2023-11-14T22:13:20Z", "{entry}");
    }
}

/// The tags `image --dry-run` plans with `vars` set, on a detached HEAD as CI checks out.
fn tags_with(root: &Path, vars: &[(&str, &str)]) -> Vec<String> {
    let plan = json(&xtask_in(root, &["image", "--dry-run", "--json"], vars));
    plan["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_branch_tag_comes_from_the_ci_variables_on_a_detached_head() {
    let ws = fixture_workspace(IMAGE);
    let root = ws.path();
    run(Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["checkout", "--quiet", "--detach"]));
    let sha = format!("sha-{}", &git_head(root)[..7]);

    assert_eq!(
        tags_with(root, &[]),
        [sha.as_str()],
        "no branch, no branch tag"
    );
    let github_push = [
        ("GITHUB_REF_NAME", "feature/x"),
        ("GITHUB_REF_TYPE", "branch"),
    ];
    assert!(tags_with(root, &github_push).contains(&"feature-x".to_string()));
    let github_tag = [("GITHUB_REF_NAME", "v9.9.9"), ("GITHUB_REF_TYPE", "tag")];
    assert_eq!(tags_with(root, &github_tag), [sha.as_str()]);
    let pull_request = [
        ("GITHUB_HEAD_REF", "fix/login"),
        ("GITHUB_REF_NAME", "12/merge"),
        ("GITHUB_REF_TYPE", "branch"),
    ];
    let tags = tags_with(root, &pull_request);
    assert!(tags.contains(&"fix-login".to_string()), "{tags:?}");
    assert!(!tags.iter().any(|t| t.contains("merge")), "{tags:?}");
    let gitlab = [("CI_COMMIT_REF_NAME", "release/2")];
    assert!(tags_with(root, &gitlab).contains(&"release-2".to_string()));
    let gitlab_tag = [
        ("CI_COMMIT_REF_NAME", "v2.0.0"),
        ("CI_COMMIT_TAG", "v2.0.0"),
    ];
    assert_eq!(tags_with(root, &gitlab_tag), [sha.as_str()]);

    // SOURCE_DATE_EPOCH, not the commit time, is the image's time.
    let plan = json(&xtask_in(
        root,
        &["image", "--dry-run", "--json"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    ));
    assert_eq!(plan["created"], 1_700_000_000);
    let out = xtask_in(
        root,
        &["image", "--dry-run"],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=\"yesterday\""));
}

/// Python's tarfile writing the entries wharf's pinned layer has: the `app/` directory
/// (root, 0755) and `app/hello` (65532:65532, 0755), both at mtime 1700000000, in GNU
/// format. Prints the tar's sha256. Two encodings differ where the format allows either, and
/// are brought to wharf's (the tar crate's) form, with every other byte left to tarfile:
/// - the header checksum: tarfile writes six octal digits, NUL, space (POSIX); the tar crate
///   seven digits and NUL (also POSIX-valid; GNU tar reads both). Same value.
/// - the end: tarfile pads the archive to a 10240-byte record after the two zero blocks
///   that end it; wharf, like Go's archive/tar, writes no record padding.
const PYTHON_TAR: &str = r#"
import hashlib, io, tarfile
buf = io.BytesIO()
tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
headers = []
def entry(name, kind, mode, uid, data=b""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = uid
    info.uname = info.gname = ""
    info.mtime = 1700000000
    info.size = len(data)
    headers.append(tar.offset)
    tar.addfile(info, io.BytesIO(data) if data else None)
entry("app", tarfile.DIRTYPE, 0o755, 0)
entry("app/hello", tarfile.REGTYPE, 0o755, 65532, b"hello, wharf\n")
tar.close()
data = bytearray(buf.getvalue()[:tar.offset])
for at in headers:
    at += 148
    data[at:at + 8] = b"%07o\0" % int(data[at:at + 6], 8)
print("sha256:" + hashlib.sha256(data).hexdigest())
"#;

#[test]
fn the_pinned_layer_diff_id_is_the_sha256_of_the_same_tar_written_by_python() {
    if !require("python3", &["--version"], "apt-get install python3") {
        return;
    }
    // The layer of wharf-build's `a_known_input_gives_a_pinned_layer_digest`.
    let spec = LayerSpec {
        description: "pinned".into(),
        files: vec![FileEntry {
            path: "/app/hello".into(),
            content: Content::Bytes(b"hello, wharf\n".to_vec()),
            mode: Some(0o755),
        }],
    };
    let owner = Ownership {
        uid: 65532,
        gid: 65532,
        mtime: 1_700_000_000,
    };
    let diff_id = wharf::build::diff_id(&spec, owner).unwrap().to_string();
    assert_eq!(
        diff_id,
        "sha256:53f2b983246cd35f2cd9ddb0313db3dae61f3325fb8632575246022bbc9cb50e"
    );
    let out = run(Command::new("python3").args(["-c", PYTHON_TAR]));
    let python = String::from_utf8(out.stdout).unwrap();
    assert_eq!(python.trim(), diff_id, "wharf's tar differs from Python's");
}
