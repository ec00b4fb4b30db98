//! The overlays, as a GitOps controller would build them: `kubectl kustomize` (kustomize 5)
//! turns each `overlays/<stage>` into plain manifests, `kubernetes-validate --strict` checks
//! them against the Kubernetes OpenAPI schemas (1.33, the version wharf-k8s targets, and the
//! tool's latest), and the objects, read back into k8s-openapi types, hold what the stages
//! asked for. A manifest with an unknown field is refused by the validator, so its pass means
//! something. No cluster: nothing is applied.
//!
//! Missing tools skip the test, or fail it under `CI=true` (or `WHARF_REQUIRE_SERVICES`);
//! `bash pipelines/test.sh` installs kubernetes-validate.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{IMAGE, digest};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const KUBECTL: &str = "kubectl";
const VALIDATE: &str = "kubernetes-validate";

#[test]
fn overlays_build_with_kustomize_and_pass_the_schemas() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stages = common::stages();
    let files = wharf_k8s::render(&common::app(), &stages).unwrap();
    wharf_k8s::write(dir.path(), &files).unwrap();

    let mut built = Vec::new();
    for stage in &stages {
        let yaml = kustomize(&dir.path().join("overlays").join(&stage.name));
        let out = dir.path().join(format!("{}.built.yaml", stage.name));
        std::fs::write(&out, &yaml).unwrap();
        built.push(out);
        let objects = Objects::parse(&stage.name, &yaml);
        objects.assert_stage(&stage.name, stage.replicas);
    }

    // The two schema versions at once: the validator takes seconds to start.
    let target = validate(Some("1.33.0"), &built);
    let latest = validate(None, &built);
    for (version, child) in [("1.33", target), ("latest", latest)] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "kubernetes-validate --strict ({version}) refused the built overlays:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

/// The validator is not a rubber stamp: the production overlay with one unknown field (what a
/// typo in a hand-written manifest looks like) fails `--strict`.
#[test]
fn kubernetes_validate_refuses_an_unknown_field() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = wharf_k8s::render(&common::app(), &common::stages()).unwrap();
    wharf_k8s::write(dir.path(), &files).unwrap();
    let yaml = kustomize(&dir.path().join("overlays/production"));
    let broken = yaml.replacen(
        "maxUnavailable: 0",
        "maxUnavailable: 0\n      maxUnavaliable: 0",
        1,
    );
    assert_ne!(broken, yaml, "the edit must change the manifests");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, broken).unwrap();
    let output = validate(Some("1.33.0"), &[path])
        .wait_with_output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted:\n{report}");
    assert!(report.contains("maxUnavaliable"), "{report}");
}

/// The four objects an overlay builds, typed.
struct Objects {
    deployment: Deployment,
    service: Service,
    pdb: PodDisruptionBudget,
    hpa: HorizontalPodAutoscaler,
}

impl Objects {
    fn parse(stage: &str, yaml: &str) -> Objects {
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
            .unwrap_or_else(|e| panic!("{stage}: kustomize output is not YAML: {e}\n{yaml}"));
        let mut by_kind = BTreeMap::new();
        for document in documents {
            let kind = document["kind"].as_str().unwrap().to_owned();
            assert!(
                by_kind.insert(kind.clone(), document).is_none(),
                "{stage}: two {kind}s"
            );
        }
        let kinds: Vec<_> = by_kind.keys().map(String::as_str).collect();
        assert_eq!(
            kinds,
            [
                "Deployment",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "Service"
            ],
            "{stage}"
        );
        let mut take = |kind: &str| by_kind.remove(kind).unwrap();
        Objects {
            deployment: serde_json::from_value(take("Deployment")).unwrap(),
            service: serde_json::from_value(take("Service")).unwrap(),
            pdb: serde_json::from_value(take("PodDisruptionBudget")).unwrap(),
            hpa: serde_json::from_value(take("HorizontalPodAutoscaler")).unwrap(),
        }
    }

    fn assert_stage(&self, stage: &str, replicas: u32) {
        let replicas = i32::try_from(replicas).unwrap();
        let deployment = self.deployment.spec.as_ref().unwrap();
        assert_eq!(deployment.replicas, Some(replicas), "{stage}: replicas");
        if stage == "production" {
            assert!(deployment.replicas.unwrap() >= 3, "production: replicas");
        }
        let rolling = deployment
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .unwrap_or_else(|| panic!("{stage}: no rolling update"));
        assert_eq!(
            rolling.max_unavailable,
            Some(IntOrString::Int(0)),
            "{stage}"
        );

        let selector = deployment.selector.match_labels.as_ref().unwrap();
        assert_eq!(
            selector.get("app.kubernetes.io/name").map(String::as_str),
            Some("hello-service")
        );
        let pod_labels = deployment
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .unwrap();
        let selects_pods = |labels: &BTreeMap<String, String>| {
            labels.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
        };
        assert!(selects_pods(selector), "{stage}: deployment selector");

        let pod = deployment.template.spec.as_ref().unwrap();
        let pod_security = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true), "{stage}");
        assert_eq!(pod_security.run_as_user, Some(65532), "{stage}");
        assert_eq!(pod_security.run_as_group, Some(65532), "{stage}");
        assert_eq!(
            pod_security
                .seccomp_profile
                .as_ref()
                .map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        assert!(!pod.containers.is_empty());
        for container in &pod.containers {
            let what = format!("{stage}: container {}", container.name);
            assert_eq!(
                container.image.as_deref(),
                Some(format!("{IMAGE}-{stage}@{}", digest(stage)).as_str()),
                "{what}: image"
            );
            let resources = container.resources.as_ref().unwrap();
            for (kind, map) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                let map = map.as_ref().unwrap_or_else(|| panic!("{what}: no {kind}"));
                for resource in ["cpu", "memory"] {
                    assert!(map.contains_key(resource), "{what}: no {kind}.{resource}");
                }
            }
            let port = container.ports.as_ref().unwrap();
            assert_eq!(port[0].name.as_deref(), Some("http"));
            assert_eq!(port[0].container_port, 8080);
            for (kind, probe) in [
                ("liveness", &container.liveness_probe),
                ("readiness", &container.readiness_probe),
            ] {
                let get = probe
                    .as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .unwrap_or_else(|| panic!("{what}: no {kind} httpGet probe"));
                assert_eq!(get.path.as_deref(), Some("/health"), "{what}: {kind}");
                assert_eq!(
                    get.port,
                    IntOrString::String("http".into()),
                    "{what}: {kind}"
                );
            }
            let security = container.security_context.as_ref().unwrap();
            assert_eq!(security.allow_privilege_escalation, Some(false), "{what}");
            assert_eq!(security.read_only_root_filesystem, Some(true), "{what}");
            assert_eq!(
                security.capabilities.as_ref().and_then(|c| c.drop.clone()),
                Some(vec!["ALL".to_owned()]),
                "{what}"
            );
            // A YAML 1.1 boolean spelling survived serde-saphyr and kustomize as a string.
            let env = container.env.as_ref().unwrap();
            let flag = env.iter().find(|e| e.name == "FEATURE_X").unwrap();
            assert_eq!(flag.value.as_deref(), Some("on"), "{what}");
        }

        let service = self.service.spec.as_ref().unwrap();
        assert_eq!(service.type_.as_deref(), Some("ClusterIP"));
        let port = &service.ports.as_ref().unwrap()[0];
        assert_eq!(port.port, 8080);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert!(
            selects_pods(service.selector.as_ref().unwrap()),
            "{stage}: service selector"
        );

        let pdb = self.pdb.spec.as_ref().unwrap();
        let expected = match stage {
            "production" => 2,
            _ => replicas - 1,
        };
        assert_eq!(
            pdb.min_available,
            Some(IntOrString::Int(expected)),
            "{stage}: minAvailable"
        );
        let pdb_selector = pdb.selector.as_ref().and_then(|s| s.match_labels.as_ref());
        assert!(selects_pods(pdb_selector.unwrap()), "{stage}: pdb selector");

        let hpa = self.hpa.spec.as_ref().unwrap();
        assert_eq!(hpa.scale_target_ref.kind, "Deployment");
        assert_eq!(
            hpa.scale_target_ref.name,
            self.deployment.metadata.name.clone().unwrap()
        );
        assert_eq!(hpa.min_replicas, Some(replicas), "{stage}: minReplicas");
        assert_eq!(hpa.max_replicas, 2 * replicas, "{stage}: maxReplicas");
        let metric = &hpa.metrics.as_ref().unwrap()[0];
        let target = &metric.resource.as_ref().unwrap().target;
        assert_eq!(target.average_utilization, Some(80), "{stage}");
    }
}

fn kustomize(overlay: &Path) -> String {
    let output = run(Command::new(KUBECTL).arg("kustomize").arg(overlay));
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        overlay.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `kubernetes-validate --strict` on `files`, against `version` or the tool's latest.
fn validate(version: Option<&str>, files: &[PathBuf]) -> Child {
    let mut command = Command::new(VALIDATE);
    command.args(["--strict", "--quiet"]);
    if let Some(version) = version {
        command.args(["--kubernetes-version", version]);
    }
    command
        .args(files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

/// Whether both tools run. If not: under CI a failure that says how to install them,
/// elsewhere a visible skip.
fn tools() -> bool {
    let works = |tool: &str, args: &[&str]| {
        Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut missing = Vec::new();
    if !works(KUBECTL, &["kustomize", "--help"]) {
        missing.push(
            "kubectl (with kustomize, kubectl >= 1.14: https://kubernetes.io/docs/tasks/tools/)",
        );
    }
    if !works(VALIDATE, &["--version"]) {
        missing.push("kubernetes-validate (python3 -m pip install kubernetes-validate)");
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "missing {} (`bash pipelines/test.sh` installs kubernetes-validate)",
        missing.join(" and ")
    );
    let strict = ["CI", "WHARF_REQUIRE_SERVICES"].iter().any(|name| {
        std::env::var(name).is_ok_and(|v| {
            ["true", "1", "yes", "on"]
                .iter()
                .any(|t| v.trim().eq_ignore_ascii_case(t))
        })
    });
    if strict {
        panic!("{message}; CI=true, so this test fails instead of skipping");
    }
    eprintln!("SKIPPED: {message}");
    // The same skip log the wharf-e2e tests write, summarized by pipelines/test.sh.
    if let Some(path) = std::env::var_os("WHARF_SKIP_LOG").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{test}: {message}"));
    }
    false
}
