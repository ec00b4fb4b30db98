//! The service the tests render: hello-service in dev, staging and production.

use wharf_k8s::{App, Pin, Resources, StageManifest};

pub const IMAGE: &str = "ghcr.io/org/hello-service";

/// A digest per stage, different in each so that a swapped image shows.
pub fn digest(stage: &str) -> String {
    let nibble = match stage {
        "dev" => "d",
        "staging" => "5",
        _ => "9",
    };
    format!("sha256:{}", nibble.repeat(64))
}

pub fn app() -> App {
    App {
        name: "hello-service".into(),
        port: 8080,
        health_path: "/health".into(),
        user: Some((65532, 65532)),
        env: vec![
            ("RUST_LOG".into(), "info".into()),
            // A YAML 1.1 boolean spelling: must stay a string.
            ("FEATURE_X".into(), "on".into()),
        ],
    }
}

pub fn stages() -> Vec<StageManifest> {
    let stage = |name: &str, replicas, min_available| StageManifest {
        name: name.into(),
        image: format!("{IMAGE}-{name}"),
        pin: Pin::Digest(digest(name)),
        replicas,
        requests: Resources {
            cpu: "100m".into(),
            memory: "128Mi".into(),
        },
        limits: Resources {
            cpu: "500m".into(),
            memory: "256Mi".into(),
        },
        min_available,
        autoscale: None,
    };
    vec![
        stage("dev", 1, None),
        stage("staging", 2, None),
        stage("production", 3, Some(2)),
    ]
}
