//! Manifests, indexes, descriptors and image configs, as plain serde types.
//!
//! Maps are `BTreeMap`s and unknown fields are kept in sorted maps too, so serializing a
//! value twice gives the same bytes; [`canonical_json`] is the one way these are written.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::media_type;

/// Annotation key under which an OCI layout's `index.json` records a tag.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Serializes `value` as canonical JSON (sorted keys, no insignificant white space), so the
/// same value always gives the same bytes and therefore the same digest.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .expect("wharf-oci types serialize without floats, so canonical JSON cannot fail");
    escape_control_characters(out)
}

/// olpc-cjson writes control characters inside strings raw, which JSON forbids (RFC 8259,
/// section 7), so serde_json and Go's encoding/json would reject the bytes. Canonical JSON has
/// no white space outside strings and UTF-8 has no bytes below 0x20 inside multi-byte
/// characters, so every such byte is a raw character in a string: escape it as serde_json does.
fn escape_control_characters(json: Vec<u8>) -> Vec<u8> {
    if !json.iter().any(|&b| b < 0x20) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    for b in json {
        match b {
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Reads the fields of a config that wharf does not model, refusing numbers with a fraction or
/// an exponent (and integers beyond 64 bits, which serde_json reads as floats): canonical JSON
/// has no floats, so such a config could be read but never written back.
fn without_floats<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    let extra = BTreeMap::<String, Value>::deserialize(d)?;
    for (key, value) in &extra {
        if let Some(number) = first_float(value) {
            return Err(serde::de::Error::custom(format!(
                "field {key:?} holds the number {number}, but canonical JSON has only integers \
                 (no fraction, exponent or more than 64 bits)"
            )));
        }
    }
    Ok(extra)
}

fn first_float(value: &Value) -> Option<&serde_json::Number> {
    match value {
        Value::Number(n) if n.is_f64() => Some(n),
        Value::Array(items) => items.iter().find_map(first_float),
        Value::Object(fields) => fields.values().find_map(first_float),
        _ => None,
    }
}

/// A reference to content: media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A plain descriptor: media type, digest and size, nothing else.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }

    /// A descriptor for `bytes` with no annotations.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(bytes), bytes.len() as u64)
    }

    /// The tag recorded in an OCI layout's index for this descriptor, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_REF_NAME)
            .map(String::as_str)
    }
}

/// The platform an image runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux_amd64() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
        }
    }

    /// Parses `OS/ARCH[/VARIANT]` as docker's and skopeo's `--platform` write it, e.g.
    /// `linux/arm64` or `linux/arm/v7`.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match parts.as_slice() {
            [os, arch, rest @ ..] if rest.len() <= 1 && parts.iter().all(valid) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: rest.first().map(|v| v.to_string()),
                os_version: None,
                os_features: None,
            }),
            _ => Err(format!(
                "{text:?} is not a platform (expected OS/ARCH or OS/ARCH/VARIANT in lower case, e.g. \"linux/arm64\")"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    /// `OS/ARCH[/VARIANT]`, the form [`Platform::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// A single-platform image manifest (OCI, or Docker v2 schema 2 which has the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest's media type; OCI manifests may leave the field out.
    pub fn media_type(&self) -> &str {
        self.media_type
            .as_deref()
            .unwrap_or(media_type::OCI_MANIFEST)
    }
}

/// An image index: a list of manifests, usually one per platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn new() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

/// An image configuration (OCI image-spec `config.json`; Docker's is a superset).
///
/// Fields wharf does not model are kept in `extra`, so reading a base image's config and
/// writing it back loses nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten, deserialize_with = "without_floats")]
    pub extra: BTreeMap<String, Value>,
}

/// How to run a container from the image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        rename = "ExposedPorts",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(flatten, deserialize_with = "without_floats")]
    pub extra: BTreeMap<String, Value>,
}

/// Docker writes `null` for an empty `Env`, `Labels` or `ExposedPorts` (its legacy builder
/// does for every `FROM scratch` image); read it as empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The JSON `{}` used as the value of `ExposedPorts` and `Volumes` entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The layers' uncompressed digests, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of the image's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_as_docker_writes_them_and_print_back() {
        for text in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            assert_eq!(Platform::parse(text).unwrap().to_string(), text);
        }
        let arm = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(
            (
                arm.os.as_str(),
                arm.architecture.as_str(),
                arm.variant.as_deref()
            ),
            ("linux", "arm", Some("v7"))
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap(),
            Platform::linux_amd64()
        );
        for bad in [
            "linux",
            "linux/",
            "Linux/amd64",
            "linux/arm/v7/x",
            "/amd64",
            "linux amd64",
        ] {
            let message = Platform::parse(bad).unwrap_err();
            assert!(message.contains("linux/arm64"), "{bad}: {message}");
        }
    }

    #[test]
    fn canonical_json_sorts_keys_whatever_the_insertion_order() {
        let mut a = Descriptor::for_bytes(media_type::OCI_LAYER_GZIP, b"x");
        let mut b = a.clone();
        for (k, v) in [("z", "1"), ("a", "2"), ("m", "3")] {
            a.annotations.insert(k.into(), v.into());
        }
        for (k, v) in [("m", "3"), ("z", "1"), ("a", "2")] {
            b.annotations.insert(k.into(), v.into());
        }
        assert_eq!(canonical_json(&a), canonical_json(&b));
        let text = String::from_utf8(canonical_json(&a)).unwrap();
        assert!(
            text.starts_with("{\"annotations\":{\"a\":\"2\",\"m\":\"3\",\"z\":\"1\"}"),
            "{text}"
        );
    }

    #[test]
    fn config_keeps_unknown_fields() {
        let raw = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "container":"abc","config":{"Env":["A=1"],"OnBuild":null}}"#;
        let config: ImageConfig = serde_json::from_str(raw).unwrap();
        let again = String::from_utf8(canonical_json(&config)).unwrap();
        assert!(again.contains("\"container\":\"abc\""), "{again}");
        assert!(again.contains("\"OnBuild\":null"), "{again}");
    }

    /// Found by copying an image `docker build` made from `FROM scratch` out of the engine.
    #[test]
    fn config_reads_docker_nulls_as_empty() {
        let raw = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Env":null,"Labels":null,"ExposedPorts":null,"Cmd":null,"User":"1000"}}"#;
        let config: ImageConfig = serde_json::from_str(raw).unwrap();
        let run = config.config.unwrap();
        assert!(run.env.is_empty() && run.labels.is_empty() && run.exposed_ports.is_empty());
        assert_eq!((run.cmd, run.user.as_deref()), (None, Some("1000")));
    }

    /// Reproduced with the `manifest` fuzz target: a string with a newline (as a heredoc `RUN`
    /// puts in a history entry) was written raw, and the bytes did not parse back.
    #[test]
    fn canonical_json_escapes_control_characters() {
        let raw = br#"{"architecture":"a\n","os":"b","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config: ImageConfig = serde_json::from_slice(raw).unwrap();
        let first = canonical_json(&config);
        assert_eq!(
            String::from_utf8(first.clone()).unwrap(),
            r#"{"architecture":"a\n","os":"b","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
        let all: String = (0..0x20u8).map(char::from).collect();
        let mut config = ImageConfig::default();
        config.history.push(History {
            created_by: Some(format!("RUN <<EOF\n{all}\\\"\u{7f}é\nEOF")),
            ..History::default()
        });
        let first = canonical_json(&config);
        let again: ImageConfig = serde_json::from_slice(&first).unwrap();
        assert_eq!(again, config);
        assert_eq!(canonical_json(&again), first);
    }

    /// Reproduced with the `manifest` fuzz target: a number with a fraction in an unknown config
    /// field made `canonical_json` panic. It is now an error when the config is read.
    #[test]
    fn config_with_a_float_is_an_error_not_a_panic() {
        let raw =
            br#"{"architecture":"a","os":"b","rootfs":{"type":"layers","diff_ids":[]},"x":1.5}"#;
        let e = serde_json::from_slice::<ImageConfig>(raw).unwrap_err();
        assert!(
            e.to_string().contains(r#"field "x" holds the number 1.5"#),
            "{e}"
        );
        for nested in [
            r#""config":{"Healthcheck":{"Interval":3e10}}"#,
            r#""x":[1,{"y":18446744073709551616}]"#,
        ] {
            let raw = format!(
                r#"{{"architecture":"a","os":"b","rootfs":{{"type":"layers","diff_ids":[]}},{nested}}}"#
            );
            assert!(serde_json::from_str::<ImageConfig>(&raw).is_err(), "{raw}");
        }
        let raw = br#"{"architecture":"a","os":"b","rootfs":{"type":"layers","diff_ids":[]},"x":[-1,18446744073709551615]}"#;
        let config: ImageConfig = serde_json::from_slice(raw).unwrap();
        let first = canonical_json(&config);
        assert!(String::from_utf8_lossy(&first).contains("[-1,18446744073709551615]"));
    }
}
