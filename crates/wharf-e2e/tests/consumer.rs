//! `examples/consumer`: a repository of its own whose xtask is `wharf::cli::main()`. Its
//! `cargo xtask ci` builds, tests, packs and scans its image; `cargo xtask push` puts it in a
//! real registry, where skopeo finds the digest ci printed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wharf::source::Workspace;
use wharf_e2e::registry::{Auth, Registry};
use wharf_e2e::{CI_VARIABLES, advisory_db, require_skopeo, run, workspace_root};

/// `cargo xtask ARGS` in the consumer's directory, through cargo as its users run it. It
/// shares this workspace's target directory: the same dependencies, compiled once.
fn consumer_xtask(dir: &Path, args: &[&str], db: &Path) -> Output {
    let target = Workspace::load(&workspace_root()).unwrap().target_dir;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    for name in CI_VARIABLES {
        command.env_remove(name);
    }
    command
        .current_dir(dir)
        .args(["xtask"])
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env("WHARF_ADVISORY_DB", db)
        .env_remove("WHARF_WORKSPACE")
        // ring's build script watches it: the test's value would rebuild ring.
        .env_remove("CARGO_MANIFEST_DIR")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running cargo xtask {args:?}: {e}"))
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\nstdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_consumer_builds_scans_and_pushes_its_image_with_wharf_as_a_library() {
    let (Some(db), true) = (advisory_db(), require_skopeo()) else {
        return;
    };
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let dir = workspace_root().join("examples/consumer");

    let out = consumer_xtask(&dir, &["ci", "--json", "--no-cache"], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let finished: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["event"] == "finished")
        .collect();
    let mut names: Vec<&str> = finished
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["clippy", "fmt", "image", "scan", "test"]);
    assert!(
        finished.iter().all(|e| e["status"] == "succeeded"),
        "{finished:?}"
    );
    let image = &finished.iter().find(|e| e["step"] == "image").unwrap()["outputs"];
    let digest = image["digest"]["value"].as_str().unwrap().to_string();
    let tag = image["tags"]["value"][0].as_str().unwrap().to_string();
    let layout = image["layout"]["value"].as_str().unwrap();
    assert!(
        Path::new(layout).starts_with(&dir),
        "the consumer's image went to {layout}, outside the consumer"
    );

    let destination = format!("docker://{}/example/greeter", registry.host());
    let pushed = json(&consumer_xtask(
        &dir,
        &["push", &destination, "--json"],
        &db,
    ));
    assert_eq!(pushed["digest"], digest.as_str());

    // skopeo reads the manifest from the registry; its sha256 is the digest ci printed.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("{destination}:{tag}"),
    ]))
    .stdout;
    let hex = wharf::oci::Digest::sha256(&raw).to_string();
    assert_eq!(
        hex, digest,
        "the registry's manifest is not the one ci built"
    );
}
