//! Multi-platform images without a daemon (issue 15): `[image] platforms` builds one image
//! per platform under an OCI index. linux/amd64 is the example service, compiled by cargo;
//! linux/arm64 is a static C program cross-compiled with Debian's gcc-aarch64-linux-gnu and
//! given in `[image] binaries` (no Rust target but the host's can be installed here).
//! Checked with other tools: skopeo reads the pushed index and picks the arm64 image,
//! `file` and `qemu-aarch64-static` check and run its binary, docker pulls and runs amd64.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wharf_e2e::registry::{Auth, Registry};
use wharf_e2e::{
    built_digest, describe, docker_pull_and_probe_health, fixture_workspace, ok_json, require,
    require_docker, require_skopeo, run, workspace_root, xtask_in,
};

/// What the arm64 binary prints, so that running it under qemu proves it is the one built.
const GREETING: &str = "hello from linux/arm64";

/// A static arm64 executable, compiled from C with the cross compiler.
fn arm64_binary(dir: &Path) -> PathBuf {
    let source = dir.join("hello.c");
    std::fs::write(
        &source,
        format!("#include <stdio.h>\nint main(void) {{ puts(\"{GREETING}\"); return 0; }}\n"),
    )
    .unwrap();
    let binary = dir.join("hello-arm64");
    run(Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&binary)
        .arg(&source));
    binary
}

/// A config that builds the example service for amd64 and takes the arm64 binary as given,
/// with the layer cache in `dir/layer-cache`.
fn config(dir: &Path, name: &str, layout: &Path, arm64: &Path) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[image]\npackage = \"hello-service\"\nrepository = \"wharf/hello-multi\"\nports = [\"8080/tcp\"]\nlayout = \"{}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nbinaries = {{ \"linux/arm64\" = \"{}\" }}\nlayer_cache = \"{}\"\n",
            layout.display(),
            arm64.display(),
            dir.join("layer-cache").display()
        ),
    )
    .unwrap();
    path
}

fn build(config: &Path) -> Value {
    ok_json(xtask_in(
        &workspace_root(),
        &["image", "--json", "--config", config.to_str().unwrap()],
        &[],
    ))
}

/// `sha256:<hex>` of `bytes`.
fn digest_of(bytes: &[u8]) -> String {
    wharf::oci::Digest::sha256(bytes).to_string()
}

#[test]
fn an_index_of_amd64_and_arm64_pushes_whole_and_each_platform_runs() {
    if !(require(
        "aarch64-linux-gnu-gcc",
        &["--version"],
        "apt-get install gcc-aarch64-linux-gnu",
    ) && require(
        "qemu-aarch64-static",
        &["--version"],
        "apt-get install qemu-user-static",
    ) && require("file", &["--version"], "apt-get install file")
        && require_skopeo()
        && require_docker())
    {
        return;
    }
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let arm64 = arm64_binary(dir);

    // Two builds into two fresh layouts: the same index, byte for byte. The second finds
    // the compressed binary layer in the layer cache the first filled (as a fresh CI runner
    // that restored it would), so nothing is compressed again.
    let first = build(&config(dir, "a.toml", &dir.join("layout-a"), &arm64));
    let second = build(&config(dir, "b.toml", &dir.join("layout-b"), &arm64));
    let digest = first["digest"].as_str().unwrap().to_string();
    assert_eq!(
        digest,
        second["digest"].as_str().unwrap(),
        "index digests differ"
    );
    let reused = |built: &Value| -> Vec<bool> {
        built["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["reused"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(
        reused(&first),
        [false],
        "the first build had nothing to reuse"
    );
    assert_eq!(
        reused(&second),
        [true],
        "the cached layer was compressed again"
    );
    let platforms: Vec<&str> = first["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let tag = first["tags"][0].as_str().unwrap();

    // skopeo reads the index from the layout as wharf wrote it.
    let layout_raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:{tag}", dir.join("layout-a").display()),
    ]))
    .stdout;
    assert_eq!(digest_of(&layout_raw), digest);

    // Pushed whole: the registry serves the same index, which lists both platforms.
    let remote = format!("{}/wharf/hello-multi:{tag}", registry.host());
    let out = xtask_in(
        &workspace_root(),
        &[
            "copy",
            "--json",
            first["reference"].as_str().unwrap(),
            &format!("docker://{remote}"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]))
    .stdout;
    assert_eq!(digest_of(&raw), digest, "the registry holds another index");
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64"]);

    // Signed as a whole: the signature names the index's digest, and verifies.
    let keys = dir.join("cosign");
    let generated = ok_json(xtask_in(
        &workspace_root(),
        &[
            "keygen",
            "--json",
            "--output-key-prefix",
            keys.to_str().unwrap(),
        ],
        &[("WHARF_SIGNING_KEY", "")],
    ));
    let image = format!("docker://{remote}");
    let signed = ok_json(xtask_in(
        &workspace_root(),
        &[
            "sign",
            &image,
            "--key",
            generated["private_key"].as_str().unwrap(),
            "--json",
        ],
        &[],
    ));
    assert_eq!(signed["added"], true);
    let verified = ok_json(xtask_in(
        &workspace_root(),
        &[
            "verify",
            &image,
            "--key",
            generated["public_key"].as_str().unwrap(),
            "--json",
        ],
        &[],
    ));
    assert_eq!(
        verified["image"],
        digest.as_str(),
        "the index's digest is signed"
    );
    let signature = format!(
        "docker://{}/wharf/hello-multi:sha256-{}.sig",
        registry.host(),
        &digest["sha256:".len()..]
    );
    run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &signature]));

    // skopeo picks the arm64 image; its binary is an aarch64 executable that runs under qemu.
    let arm_layout = dir.join("arm-copy");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--override-arch",
        "arm64",
        "--src-tls-verify=false",
        &format!("docker://{remote}"),
        &format!("oci:{}:arm64", arm_layout.display()),
    ]));
    let binary = unpack_binary(&arm_layout, &dir.join("arm-root"));
    let described =
        String::from_utf8(run(Command::new("file").arg("--brief").arg(&binary)).stdout).unwrap();
    assert!(described.contains("ARM aarch64"), "file says: {described}");
    let ran = run(Command::new("qemu-aarch64-static").arg(&binary));
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), GREETING);

    // docker (amd64) pulls the index and gets the service, which serves /health.
    let container = format!("wharf-platforms-e2e-{}", std::process::id());
    let status = docker_pull_and_probe_health(&remote, &container);
    assert_eq!(status, Some(200), "the amd64 image does not serve /health");
}

/// Unpacks the only image of the OCI layout at `layout` (with `tar`, not wharf) into
/// `root`, and returns the path of its binary, `/app/hello-service`.
fn unpack_binary(layout: &Path, root: &Path) -> PathBuf {
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let read = |digest: &str| -> Value {
        serde_json::from_slice(&std::fs::read(blob(digest)).unwrap()).unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["architecture"], "arm64");
    std::fs::create_dir_all(root).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        run(Command::new("tar")
            .arg("-xzf")
            .arg(blob(layer["digest"].as_str().unwrap()))
            .arg("-C")
            .arg(root));
    }
    root.join("app/hello-service")
}

/// Promotion moves an index whole between OCI layouts (the embedded default): the stage's
/// tag names the same index, and every platform's image is there.
#[test]
fn promotion_copies_an_index_whole_between_layouts() {
    if !require_skopeo() {
        return;
    }
    let ws = fixture_workspace(
        r#"[image]
package = "app"
platforms = ["linux/amd64", "linux/arm64"]
binaries = { "linux/arm64" = "dist/app-arm64" }
[ci]
steps = ["image"]

[[stages]]
name = "dev"
location = "oci:target/wharf/oci/app"
gates = { tests = true }

[[stages]]
name = "staging"
from = "dev"
location = "oci:target/wharf/stages/staging"
gates = { tests = true }
"#,
    );
    let root = ws.path();
    // Not run here: any file stands for the binary built elsewhere.
    std::fs::create_dir_all(root.join("dist")).unwrap();
    std::fs::write(root.join("dist/app-arm64"), "an arm64 build of app").unwrap();
    let digest = built_digest(&xtask_in(
        root,
        &["ci", "--json"],
        &[("GITHUB_ACTOR", "ci")],
    ));
    for stage in ["dev", "staging"] {
        let promoted = ok_json(xtask_in(
            root,
            &["promote", stage, "--json"],
            &[("GITHUB_ACTOR", "ci")],
        ));
        assert_eq!(promoted["digest"], digest.as_str(), "{promoted}");
    }
    let staging = format!(
        "oci:{}:staging",
        root.join("target/wharf/stages/staging").display()
    );
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", &staging])).stdout;
    assert_eq!(digest_of(&raw), digest, "staging holds another image");
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    // Every platform's image is complete there: skopeo copies the arm64 one out.
    let copy = root.join("arm64-copy");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--override-arch",
        "arm64",
        &staging,
        &format!("oci:{}:arm64", copy.display()),
    ]));
}
