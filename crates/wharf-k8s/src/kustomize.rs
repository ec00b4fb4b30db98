//! The few fields of kustomize's `Kustomization` (kustomize.config.k8s.io/v1beta1) that the
//! base and the overlays use. k8s-openapi has no type for it (it is not a cluster API); field
//! names and shapes follow kustomize 5's `api/types/kustomization.go`.

use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Kustomization {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
}

impl Kustomization {
    pub fn new() -> Self {
        Kustomization {
            api_version: "kustomize.config.k8s.io/v1beta1",
            kind: "Kustomization",
            resources: Vec::new(),
            images: Vec::new(),
            patches: Vec::new(),
        }
    }
}

/// kustomize's image transformer: every container image named `name` becomes
/// `new_name@digest` or `new_name:new_tag`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Image {
    pub name: String,
    pub new_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A strategic-merge patch in a file of the overlay; the patch names its own target
/// (apiVersion, kind, metadata.name), so no `target` selector is needed.
#[derive(Debug, Serialize)]
pub(crate) struct Patch {
    pub path: String,
}
