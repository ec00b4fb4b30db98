//! Kubernetes manifests through the CLI (issue 14): `cargo xtask render-k8s` on a fixture
//! workspace whose digest went dev -> staging -> production, each overlay built by `kubectl
//! kustomize` and validated by `kubernetes-validate --strict`; production runs the
//! production stage's digest with 3 replicas and a PDB of 2; `--check` is the drift test;
//! `deploy STAGE` on a Kubernetes stage writes its overlay (no cluster here: nothing is
//! applied, nothing recorded).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wharf_e2e::{
    describe, example_variant, fails_with, fixture_workspace, ok_json, record_verified, run,
    xtask_in,
};

const CONFIG: &str = r#"[image]
package = "app"
user = "65532:65532"
ports = ["8080/tcp"]

[kubernetes]
health_path = "/health"

[[stages]]
name = "dev"
location = "oci:target/wharf/stages/dev"
[stages.deploy.kubernetes]
image = "registry.example.com/app-dev"
requests = { cpu = "50m", memory = "32Mi" }
limits = { cpu = "200m", memory = "64Mi" }

[[stages]]
name = "staging"
from = "dev"
location = "oci:target/wharf/stages/staging"
[stages.deploy.kubernetes]
image = "registry.example.com/app-staging"
replicas = 2
requests = { cpu = "100m", memory = "64Mi" }
limits = { cpu = "500m", memory = "128Mi" }

[[stages]]
name = "production"
from = "staging"
location = "oci:target/wharf/stages/production"
[stages.deploy.kubernetes]
image = "registry.example.com/app-production"
replicas = 3
min_available = 2
autoscale = { min = 3, max = 10, cpu_percent = 70 }
requests = { cpu = "250m", memory = "128Mi" }
limits = { cpu = "1", memory = "256Mi" }
"#;

/// No kubeconfig anywhere: `deploy` must only write.
fn xt(root: &Path, args: &[&str]) -> Output {
    xtask_in(
        root,
        args,
        &[
            ("GITHUB_ACTOR", "deployer"),
            ("KUBECONFIG", ""),
            ("HOME", root.to_str().unwrap()),
        ],
    )
}

/// `kubectl kustomize OVERLAY`, parsed: one JSON value per object (through Python's YAML
/// reader, not wharf's).
fn kustomize(overlay: &Path) -> (String, Vec<Value>) {
    let built = run(Command::new("kubectl").arg("kustomize").arg(overlay));
    let yaml = String::from_utf8(built.stdout).unwrap();
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success());
    (yaml, serde_json::from_slice(&out.stdout).unwrap())
}

/// The objects `kubectl kustomize OVERLAY` builds, after `kubernetes-validate --strict`
/// accepted them (the YAML is written to `scratch` for it).
fn built_and_validated(overlay: &Path, scratch: &Path) -> Vec<Value> {
    let (yaml, objects) = kustomize(overlay);
    let name = overlay.file_name().unwrap().to_string_lossy();
    let file = scratch.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let validated = run(Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file));
    assert!(
        validated.status.success(),
        "{}: {}",
        overlay.display(),
        describe(&validated)
    );
    objects
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

#[test]
fn render_k8s_pins_each_stage_to_its_digest_and_validates() {
    let tools = wharf_e2e::require("kubectl", &["version", "--client"], "/usr/bin/kubectl")
        & wharf_e2e::require(
            "kubernetes-validate",
            &["--version"],
            "python3 -m pip install kubernetes-validate",
        )
        & wharf_e2e::require("python3", &["-c", "import yaml"], "pip install pyyaml");
    if !tools {
        return;
    }
    let ws = fixture_workspace(CONFIG);
    let root = ws.path();
    let images = root.join("images");
    let first = example_variant(&images, "first", &["HELLO_VERSION=1"]);
    let second = example_variant(&images, "second", &["HELLO_VERSION=2"]);
    for (digest, stages) in [
        (&first, &["dev", "staging", "production"][..]),
        (&second, &["dev"][..]),
    ] {
        record_verified(root, digest, "oci:images");
        for stage in stages {
            ok_json(xt(root, &["promote", stage, "--json"]));
        }
    }

    let written = ok_json(xt(root, &["render-k8s", "--json"]));
    assert!(
        !written["written"].as_array().unwrap().is_empty(),
        "{written}"
    );
    let dir = root.join("deploy/k8s");
    let expected = [
        ("dev", 1, &second),
        ("staging", 2, &first),
        ("production", 3, &first),
    ];
    for (stage, replicas, digest) in expected {
        let objects = built_and_validated(&dir.join("overlays").join(stage), root);

        let deployment = object(&objects, "Deployment");
        assert_eq!(deployment["spec"]["replicas"], replicas, "{stage}");
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(
            container["image"],
            format!("registry.example.com/app-{stage}@{digest}"),
            "{stage}"
        );
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    container["resources"][kind][resource].is_string(),
                    "{stage}: no {kind}.{resource}"
                );
            }
        }
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(container[probe]["httpGet"]["path"], "/health", "{stage}");
        }
        assert_eq!(
            deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            0
        );
        object(&objects, "Service");
        object(&objects, "HorizontalPodAutoscaler");
        let pdb = object(&objects, "PodDisruptionBudget");
        if stage == "production" {
            assert_eq!(pdb["spec"]["minAvailable"], 2);
            assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 3);
        }
    }

    // Drift: the files are what render-k8s writes; an edit or a new digest is named.
    let check = xt(root, &["render-k8s", "--check"]);
    assert!(check.status.success(), "{}", describe(&check));
    let service = dir.join("base/service.yaml");
    let original = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, original.replace("8080", "9090")).unwrap();
    fails_with(
        &xt(root, &["render-k8s", "--check"]),
        1,
        &["base/service.yaml", "cargo xtask render-k8s"],
    );
    std::fs::write(&service, original).unwrap();
    let third = example_variant(&images, "third", &["HELLO_VERSION=3"]);
    record_verified(root, &third, "oci:images");
    ok_json(xt(root, &["promote", "dev", "--json"]));
    let drift = xt(root, &["render-k8s", "--check"]);
    fails_with(&drift, 1, &["overlays/dev/kustomization.yaml"]);
    assert!(
        !String::from_utf8_lossy(&drift.stderr).contains("production"),
        "{}",
        describe(&drift)
    );

    // `deploy dev` on a Kubernetes stage writes the overlay; with no kubeconfig nothing is
    // applied and nothing is recorded (a GitOps tool deploys it).
    let plan = xt(root, &["deploy", "dev", "--dry-run"]);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains("overlays/dev/kustomization.yaml")
            && plan_text.contains("no kubeconfig"),
        "{}",
        describe(&plan)
    );
    let deployed = ok_json(xt(root, &["deploy", "dev", "--commit", "--json"]));
    assert_eq!(deployed["report"]["outcome"], "rendered", "{deployed}");
    assert_eq!(deployed["entry"], Value::Null);
    // --commit (what promote.yml runs for GitOps): the manifests, and only they, committed.
    let git = |args: &[&str]| {
        let out = run(Command::new("git").arg("-C").arg(root).args(args));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        git(&["log", "-1", "--format=%s"]),
        format!("deploy: dev runs {third}")
    );
    assert_eq!(git(&["status", "--porcelain", "--", "deploy/k8s"]), "");
    let committed = git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(
        committed.lines().all(|l| l.starts_with("deploy/k8s/"))
            && committed.contains("overlays/dev/"),
        "{committed}"
    );
    let (_, objects) = kustomize(&dir.join("overlays/dev"));
    assert_eq!(
        object(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.example.com/app-dev@{third}")
    );
    let check = xt(root, &["render-k8s", "--check"]);
    assert!(check.status.success(), "{}", describe(&check));
}

/// This repository's own manifests (deploy/k8s, from pipelines/wharf.toml): what
/// render-k8s writes, and valid. Nothing is promoted from a clone, so each overlay names its
/// stage's tag until promote.yml commits a digest.
#[test]
fn this_repositorys_manifests_are_current_and_valid() {
    let root = wharf_e2e::workspace_root();
    let check = xtask_in(&root, &["render-k8s", "--check"], &[]);
    assert!(check.status.success(), "{}", describe(&check));
    if !wharf_e2e::require("kubectl", &["version", "--client"], "/usr/bin/kubectl")
        || !wharf_e2e::require(
            "kubernetes-validate",
            &["--version"],
            "python3 -m pip install kubernetes-validate",
        )
    {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    for stage in ["dev", "staging", "production"] {
        let objects = built_and_validated(
            &root.join("deploy/k8s/overlays").join(stage),
            scratch.path(),
        );
        let deployment = object(&objects, "Deployment");
        assert!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .starts_with("ghcr.io/wharf-rs/hello-service"),
            "{deployment}"
        );
    }
}
