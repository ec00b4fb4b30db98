//! Dockerfile builds through the Docker engine (issue 15): `[image] dockerfile` builds
//! examples/hello-service/Dockerfile (a Rust build stage, a `FROM scratch` runtime stage)
//! with the engine's classic builder; the image is read back into the layout, where skopeo
//! reads its labels, and docker runs it. The Rust build stage is an image made from this
//! machine's toolchain ([`rust_builder_image`]): none can be pulled here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wharf_e2e::{
    advisory_db, describe, free_port, ok_json, require_docker, require_skopeo, run,
    rust_builder_image, wait_for_health, workspace_root, xtask_in,
};

/// A config whose image is built from `dockerfile` (and `extra` lines), into `dir/layout`.
fn config(dir: &Path, dockerfile: &str, extra: &str) -> PathBuf {
    let path = dir.join("wharf.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\npackage = \"hello-service\"\nrepository = \"wharf/hello-docker\"\nlayout = \"{}\"\ndockerfile = \"{dockerfile}\"\n{extra}",
            dir.join("layout").display()
        ),
    )
    .unwrap();
    path
}

fn xtask(args: &[&str], config: &Path) -> Output {
    let mut args = args.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    xtask_in(&workspace_root(), &args, &[])
}

#[test]
fn the_example_dockerfile_builds_an_image_that_serves_health_as_non_root_with_the_oci_labels() {
    if !(require_docker() && require_skopeo()) {
        return;
    }
    let Some(db) = advisory_db() else {
        return;
    };
    let builder = rust_builder_image();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(
        tmp.path(),
        "examples/hello-service/Dockerfile",
        &format!(
            "build_args = {{ RUST_IMAGE = \"{builder}\" }}\n\n[scan]\nfail_on = \"low\"\nmax_image_bytes = 16_777_216\nrequired_labels = [\"org.opencontainers.image.revision\", \"org.opencontainers.image.source\", \"org.opencontainers.image.version\", \"org.opencontainers.image.created\"]\n"
        ),
    );
    let out = xtask(&["image", "--json"], &config);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let built = ok_json(out);
    // The builder's lines came through as they were printed, under the step.
    for line in [
        "| Step 1/",
        "FROM ${RUST_IMAGE} AS build",
        "| Step ",
        "FROM scratch AS runtime",
    ] {
        assert!(stderr.contains(line), "{line:?} not in:\n{stderr}");
    }
    let tag = built["tags"][0].as_str().unwrap();
    let location = format!("oci:{}:{tag}", tmp.path().join("layout").display());

    // skopeo reads the image from the layout, with the labels wharf gives every image.
    let inspected: Value =
        serde_json::from_slice(&run(Command::new("skopeo").args(["inspect", &location])).stdout)
            .unwrap();
    assert_eq!(inspected["Digest"], built["digest"]);
    let labels = &inspected["Labels"];
    let head = String::from_utf8(
        run(Command::new("git")
            .arg("-C")
            .arg(workspace_root())
            .args(["rev-parse", "HEAD"]))
        .stdout,
    )
    .unwrap();
    assert_eq!(labels["org.opencontainers.image.revision"], head.trim());
    assert_eq!(
        labels["org.opencontainers.image.title"],
        "wharf/hello-docker"
    );
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION"),
        "the workspace version"
    );
    assert!(
        labels["org.opencontainers.image.source"].is_string(),
        "{labels}"
    );
    assert!(
        labels["org.opencontainers.image.created"].is_string(),
        "{labels}"
    );
    // The Dockerfile's own LABEL is kept.
    assert!(
        labels["org.opencontainers.image.description"]
            .as_str()
            .is_some_and(|d| d.contains("HTTP service")),
        "{labels}"
    );

    // The scan reads it like any image: advisories, image checks (non-root, size, labels).
    let out = xtask_in(
        &workspace_root(),
        &[
            "scan",
            "--json",
            "--offline",
            "--image",
            &location,
            "--config",
            config.to_str().unwrap(),
        ],
        &[("WHARF_ADVISORY_DB", db.to_str().unwrap())],
    );
    let report = ok_json(out);
    assert_eq!(report["passed"], true, "{report}");

    // docker (from the layout, through skopeo) runs it as the Dockerfile's user, and the
    // HEALTHCHECK command works in the scratch image.
    let name = format!("wharf-test/hello-docker-e2e:{}", std::process::id());
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &location,
        &format!("docker-daemon:{name}"),
    ]));
    let port = free_port();
    let container = format!("wharf-dockerfile-e2e-{}", std::process::id());
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        &container,
        "--network",
        "host",
        "--env",
        &format!("LISTEN_ADDR=127.0.0.1:{port}"),
        &name,
    ]));
    let status = wait_for_health(port);
    let inspect = |format: &str| {
        String::from_utf8(
            run(Command::new("docker").args(["inspect", "--format", format, &container])).stdout,
        )
        .unwrap()
        .trim()
        .to_string()
    };
    let pid = inspect("{{.State.Pid}}");
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let healthcheck = inspect("{{json .Config.Healthcheck.Test}}");
    let check = Command::new("docker")
        .args(["exec", &container, "/app/hello-service", "--check"])
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["rm", "--force", &container])
        .output();
    let _ = Command::new("docker")
        .args(["rmi", "--force", &name])
        .output();
    assert_eq!(status, Some(200), "the image does not serve /health");
    assert!(
        uid.split_whitespace().skip(1).all(|id| id == "65532"),
        "the service runs as {uid}"
    );
    assert_eq!(healthcheck, r#"["CMD","/app/hello-service","--check"]"#);
    assert!(check.status.success(), "{}", describe(&check));
}

#[test]
fn a_failing_run_names_its_step_and_its_last_lines_and_tags_nothing() {
    if !require_docker() {
        return;
    }
    let builder = rust_builder_image();
    let tmp = tempfile::tempdir().unwrap();
    let context = tmp.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nRUN echo getting ready\nRUN echo the last words && exit 3\nRUN echo never\n",
    )
    .unwrap();
    let config = config(
        tmp.path(),
        &context.join("Dockerfile").display().to_string(),
        &format!(
            "context = \"{}\"\nbuild_args = {{ BASE = \"{builder}\" }}\n",
            context.display()
        ),
    );
    let out = xtask(&["image"], &config);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        // Step 4 of 5 instructions, and the labels wharf adds, which the builder counts.
        "the Docker build failed in step 4/",
        " (RUN echo the last words && exit 3): ",
        "returned a non-zero code: 3",
        "last lines of the step's output:\n  the last words\n",
    ] {
        assert!(stderr.contains(words), "{words:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("never"),
        "the build went on after the failure"
    );
    let tags = std::fs::read_to_string(tmp.path().join("layout/index.json")).unwrap_or_default();
    assert!(!tags.contains("ref.name"), "a failed build tagged {tags}");
}
