//! The example image, checked by tools that are not wharf: umoci, skopeo, docker.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use wharf_e2e::{
    example_image, free_port, http_status, require_docker, require_skopeo, require_umoci, run,
};

#[test]
fn umoci_unpacks_the_image_with_the_binary_owned_by_the_configured_user() {
    if !require_umoci() {
        return;
    }
    let built = example_image();
    let bundle = tempfile::tempdir().unwrap();
    let bundle = bundle.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{}", built.layout.display(), built.tag))
        .arg(&bundle));
    let binary = bundle.join("rootfs/app").join(&built.plan.binary);
    let meta = std::fs::metadata(&binary).unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        (meta.uid() as u64, meta.gid() as u64),
        (built.plan.uid, built.plan.gid)
    );
    assert_eq!(built.plan.uid, 65532, "the default user is non-root");
}

#[test]
fn skopeo_inspect_shows_the_digest_and_labels() {
    if !require_skopeo() {
        return;
    }
    let built = example_image();
    let out = run(Command::new("skopeo").arg("inspect").arg(format!(
        "oci:{}:{}",
        built.layout.display(),
        built.tag
    )));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Digest"], built.digest.to_string());
    let labels = &json["Labels"];
    for key in ["title", "version", "revision", "source", "licenses"] {
        let key = format!("org.opencontainers.image.{key}");
        let planned = built
            .plan
            .labels
            .get(&key)
            .unwrap_or_else(|| panic!("plan has no {key}"));
        assert_eq!(labels[&key], planned.as_str(), "label {key}: {labels}");
    }
    // `created` comes from the commit time, never the clock.
    let created = wharf::build::rfc3339(built.plan.created).unwrap();
    assert_eq!(labels["org.opencontainers.image.created"], created.as_str());
    assert_eq!(json["Created"], created.as_str());
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(json["Os"], "linux");
}

#[test]
fn docker_runs_the_image_answers_health_and_stops_on_sigterm() {
    if !(require_docker() && require_skopeo()) {
        return;
    }
    let built = example_image();
    let name = format!("wharf-e2e-{}", std::process::id());
    let image = format!("wharf-e2e/hello-service:{}", built.digest.hex());
    // skopeo, not wharf, loads the image into the engine: an independent reader of the layout.
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(format!("oci:{}:{}", built.layout.display(), built.tag))
        .arg(format!("docker-daemon:{image}")));
    let port = free_port();
    // Host networking keeps all traffic on loopback.
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        &name,
        "--network",
        "host",
        "--env",
        &format!("LISTEN_ADDR=127.0.0.1:{port}"),
        &image,
    ]));
    let cleanup = || {
        let _ = Command::new("docker")
            .args(["rm", "--force", &name])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "--force", &image])
            .output();
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = None;
    while Instant::now() < deadline {
        status = http_status(port, "/health");
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status != Some(200) {
        let logs = Command::new("docker")
            .args(["logs", &name])
            .output()
            .unwrap();
        cleanup();
        panic!(
            "GET /health gave {status:?}; logs: {}",
            String::from_utf8_lossy(&logs.stderr)
        );
    }
    // docker stop sends SIGTERM, then SIGKILL after the timeout. Exit code 0 (not 137) and
    // "OOMKilled false" prove the process exited by itself from SIGTERM.
    run(Command::new("docker").args(["stop", "--time", "60", &name]));
    let out = run(Command::new("docker").args([
        "inspect",
        "--format",
        "{{.State.ExitCode}} {{.State.Status}}",
        &name,
    ]));
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let logs = run(Command::new("docker").args(["logs", &name]));
    cleanup();
    assert_eq!(
        state, "0 exited",
        "container did not exit cleanly on SIGTERM"
    );
    assert!(String::from_utf8_lossy(&logs.stderr).contains("shutting down"));
}
