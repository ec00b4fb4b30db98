//! The typed objects: the base (everything that is the same in every stage) and each stage's
//! overlay (image, replicas, resources, budget, autoscaling as strategic-merge patches).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::kustomize::{self, Kustomization};
use crate::validate::{Error, ValidApp, ValidStage};
use crate::{File, HEADER, Pin, Resources};

const NAME_LABEL: &str = "app.kubernetes.io/name";
const PORT_NAME: &str = "http";
const BASE_NOTE: &str =
    "# Replicas, resources, minAvailable and autoscaling are set per stage by overlays/<stage>.";

pub(crate) fn base(app: &ValidApp) -> Result<Vec<File>, Error> {
    let mut kustomization = Kustomization::new();
    kustomization.resources = ["deployment.yaml", "service.yaml", "pdb.yaml", "hpa.yaml"]
        .map(String::from)
        .into();
    Ok(vec![
        yaml("base/kustomization.yaml", None, &kustomization)?,
        yaml("base/deployment.yaml", Some(BASE_NOTE), &deployment(app))?,
        yaml("base/service.yaml", None, &service(app))?,
        yaml("base/pdb.yaml", Some(BASE_NOTE), &pdb(app, 1, true))?,
        yaml(
            "base/hpa.yaml",
            Some(BASE_NOTE),
            &hpa(app, meta(app), 1, 1, 80),
        )?,
    ])
}

pub(crate) fn overlay(app: &ValidApp, stage: &ValidStage) -> Result<Vec<File>, Error> {
    let (new_tag, digest) = match &stage.pin {
        Pin::Digest(digest) => (None, Some(digest.clone())),
        Pin::Tag(tag) => (Some(tag.clone()), None),
    };
    let mut kustomization = Kustomization::new();
    kustomization.resources = vec!["../../base".into()];
    kustomization.images = vec![kustomize::Image {
        // The base's container image is the app name, a placeholder this replaces.
        name: app.name.clone(),
        new_name: stage.image.clone(),
        new_tag,
        digest,
    }];
    let patches = ["deployment-patch.yaml", "pdb-patch.yaml", "hpa-patch.yaml"];
    kustomization.patches = patches
        .iter()
        .map(|path| kustomize::Patch {
            path: (*path).into(),
        })
        .collect();

    let dir = format!("overlays/{}", stage.name);
    Ok(vec![
        yaml(&format!("{dir}/kustomization.yaml"), None, &kustomization)?,
        yaml(
            &format!("{dir}/{}", patches[0]),
            None,
            &deployment_patch(app, stage),
        )?,
        yaml(
            &format!("{dir}/{}", patches[1]),
            None,
            &pdb(app, stage.min_available, false),
        )?,
        yaml(
            &format!("{dir}/{}", patches[2]),
            None,
            &hpa(
                app,
                patch_meta(app),
                stage.autoscale_min,
                stage.autoscale_max,
                stage.cpu_percent,
            ),
        )?,
    ])
}

fn yaml(path: &str, note: Option<&str>, value: &impl Serialize) -> Result<File, Error> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // One line per value (no folded `>` blocks): plain diffs in git, greppable values.
    options.prefer_block_scalars = false;
    let body = serde_saphyr::to_string_with_options(value, options).map_err(|source| {
        Error::Serialize {
            path: path.into(),
            source,
        }
    })?;
    let mut contents = format!("{HEADER}\n");
    if let Some(note) = note {
        contents.push_str(note);
        contents.push('\n');
    }
    contents.push_str(&body);
    if !contents.ends_with('\n') {
        contents.push('\n');
    }
    Ok(File {
        path: PathBuf::from(path),
        contents,
    })
}

fn labels(app: &ValidApp) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), app.name.clone())])
}

fn meta(app: &ValidApp) -> ObjectMeta {
    ObjectMeta {
        name: Some(app.name.clone()),
        labels: Some(labels(app)),
        ..ObjectMeta::default()
    }
}

/// A patch names its target and nothing else of the metadata: a label here would be merged
/// in and hide a missing one in the base.
fn patch_meta(app: &ValidApp) -> ObjectMeta {
    ObjectMeta {
        name: Some(app.name.clone()),
        ..ObjectMeta::default()
    }
}

fn selector(app: &ValidApp) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(app)),
        ..LabelSelector::default()
    }
}

fn deployment(app: &ValidApp) -> Deployment {
    let probe = || Probe {
        http_get: Some(HTTPGetAction {
            path: Some(app.health_path.clone()),
            port: IntOrString::String(PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    };
    let env = app
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..EnvVar::default()
        })
        .collect::<Vec<_>>();
    let container = Container {
        name: app.name.clone(),
        image: Some(app.name.clone()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: app.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        liveness_probe: Some(probe()),
        readiness_probe: Some(probe()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        // A read-only root file system still needs somewhere for temporary files.
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let security_context = PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: app.user.map(|(uid, _)| uid),
        run_as_group: app.user.map(|(_, gid)| gid),
        fs_group: app.user.map(|(_, gid)| gid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    };
    Deployment {
        metadata: meta(app),
        spec: Some(DeploymentSpec {
            selector: selector(app),
            // Never below the wanted count during a rollout: one new pod first, then one old
            // pod goes.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(app)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(security_context),
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn service(app: &ValidApp) -> Service {
    Service {
        metadata: meta(app),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels(app)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: app.port,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn deployment_patch(app: &ValidApp, stage: &ValidStage) -> Deployment {
    let quantities = |resources: &Resources| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(resources.cpu.clone())),
            ("memory".to_owned(), Quantity(resources.memory.clone())),
        ])
    };
    Deployment {
        metadata: patch_meta(app),
        spec: Some(DeploymentSpec {
            replicas: Some(stage.replicas),
            // Required by the type; equal to the base's, so merging it changes nothing.
            selector: selector(app),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    // Containers merge by name.
                    containers: vec![Container {
                        name: app.name.clone(),
                        resources: Some(ResourceRequirements {
                            requests: Some(quantities(&stage.requests)),
                            limits: Some(quantities(&stage.limits)),
                            ..ResourceRequirements::default()
                        }),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The budget; the base's also carries the selector and the eviction policy, a stage's patch
/// only `minAvailable`.
fn pdb(app: &ValidApp, min_available: i32, base: bool) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: if base { meta(app) } else { patch_meta(app) },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available)),
            selector: base.then(|| selector(app)),
            // Pods that are not ready protect nothing: let a drain evict them even when the
            // budget is short, or one crash-looping pod blocks node maintenance.
            unhealthy_pod_eviction_policy: base.then(|| "AlwaysAllow".into()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn hpa(
    app: &ValidApp,
    metadata: ObjectMeta,
    min: i32,
    max: i32,
    cpu_percent: i32,
) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata,
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: app.name.clone(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            // A list without a merge key: a patch replaces it whole.
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(cpu_percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    }
}
