//! Media types of the OCI image spec and of Docker's v2 schema 2, which registries still
//! serve for most images pushed by docker.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Artifact types of what wharf attaches to images (OCI 1.1 `artifactType`).
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
pub const SPDX_JSON: &str = "application/spdx+json";
pub const SARIF_JSON: &str = "application/sarif+json";
pub const WHARF_SCAN: &str = "application/vnd.wharf.scan.v1+json";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Is this the media type of a single-platform image manifest?
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Is this the media type of an index (a list of manifests, usually one per platform)?
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// The media type a manifest or index in JSON declares, or, as OCI lets it leave the field
/// out, the one its shape says: an index lists `manifests`, an image manifest has `config`.
pub fn of_manifest(json: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(declared) => declared.to_string(),
        None if value.get("manifests").is_some() => OCI_INDEX.to_string(),
        None => OCI_MANIFEST.to_string(),
    }
}

/// Is this a gzip-compressed layer?
pub fn is_gzip_layer(media_type: &str) -> bool {
    matches!(media_type, OCI_LAYER_GZIP | DOCKER_LAYER_GZIP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_without_its_media_type_is_known_by_its_shape() {
        assert_eq!(
            of_manifest(br#"{"schemaVersion":2,"manifests":[]}"#),
            OCI_INDEX
        );
        assert_eq!(
            of_manifest(br#"{"schemaVersion":2,"config":{},"layers":[]}"#),
            OCI_MANIFEST
        );
        assert_eq!(
            of_manifest(br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#),
            DOCKER_MANIFEST_LIST
        );
    }
}
