//! cosign's key-based signature format ("simple signing", cosign's SIGNATURE_SPEC):
//!
//! - the payload is JSON naming the image's manifest digest:
//!   `{"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":
//!   DIGEST},"type":"cosign container image signature"},"optional":...}`;
//! - it is a layer of media type [`SIMPLE_SIGNING`] in a signature manifest, the layer's
//!   annotation [`SIGNATURE_ANNOTATION`] holding base64 of the ASN.1 DER ECDSA signature over
//!   the payload's bytes;
//! - the signature manifest is tagged `sha256-<hex>.sig` ([`signature_tag`]) in the image's
//!   repository; each signature is one more layer, earlier ones are kept.
//!
//! cosign itself also uploads each signature to the Rekor transparency log and, when it
//! verifies, looks the signature up there unless told `--insecure-ignore-tlog`. wharf has no
//! transparency log (nothing public is reachable from CI runners that must work offline),
//! so `cosign verify --key cosign.pub --insecure-ignore-tlog IMAGE` is how cosign checks a
//! wharf signature: the signature is the same, only the log's proof of when it was made is
//! missing.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use wharf_oci::{Descriptor, Digest, Manifest, canonical_json, media_type};

use crate::keys::{KeyPair, PublicKey};

/// The media type of a signature layer (the payload).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign signature payload.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// The tag cosign finds an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(image: &Digest) -> String {
    format!("{}-{}.sig", image.algorithm().as_str(), image.hex())
}

/// A simple-signing payload. Fields in cosign's order, so the bytes are the ones cosign
/// writes for the same image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    /// Claims the signer adds (cosign's `-a key=value`); `null` when there are none.
    pub optional: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The repository the image was signed in (`registry/repository`), which cosign's
    /// verification ignores unless asked.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageClaim {
    /// Older cosign documentation capitalizes it; Go's JSON decoding accepts either.
    #[serde(rename = "docker-manifest-digest", alias = "Docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload for the image `digest` in `repository` (`registry/repository`).
    pub fn new(repository: &str, digest: &Digest) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: ImageClaim {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: COSIGN_TYPE.to_string(),
            },
            optional: None,
        }
    }

    /// The bytes that are signed and stored: compact JSON in field order, as cosign's.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload serializes")
    }
}

/// A signature manifest (the `.sig` image) and the blobs it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    pub manifest: Manifest,
    /// The config's bytes (cosign's placeholder image config listing the layers).
    pub config: Vec<u8>,
}

/// What [`SignatureManifest::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new layer; the payload blob, the config and the manifest need pushing.
    Signed,
    /// A layer with this payload already verifies with this key: nothing to write.
    AlreadySigned,
}

impl SignatureManifest {
    /// An existing signature manifest (`None`: the image has no `.sig` yet).
    pub fn from_existing(manifest: Option<Manifest>) -> SignatureManifest {
        let manifest = manifest.unwrap_or_else(|| Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::for_bytes(media_type::OCI_CONFIG, b"{}"),
            layers: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        });
        let mut signatures = SignatureManifest {
            manifest,
            config: Vec::new(),
        };
        signatures.refresh_config();
        signatures
    }

    /// Adds `key`'s signature over `payload` as a layer, keeping every earlier one. A layer
    /// with this payload (the same digest) that `key` already signed makes it a no-op:
    /// ECDSA signatures are randomized, so signing again would otherwise add a layer each
    /// time.
    pub fn add(&mut self, payload: &[u8], key: &KeyPair) -> Added {
        let digest = Digest::sha256(payload);
        let public = key.public_key();
        let already = self.manifest.layers.iter().any(|layer| {
            layer.digest == digest
                && signature_of(layer).is_some_and(|sig| public.verifies(payload, &sig))
        });
        if already {
            return Added::AlreadySigned;
        }
        let mut layer = Descriptor::for_bytes(SIMPLE_SIGNING, payload);
        layer.annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            BASE64.encode(key.sign(payload)),
        );
        self.manifest.layers.push(layer);
        self.refresh_config();
        Added::Signed
    }

    /// Adds the layers of `other` (another repository's signature manifest for the same
    /// image) that this one lacks, keeping its own: a copy into a repository that has
    /// signatures of its own loses none on either side. Returns how many were added.
    pub fn merge(&mut self, other: &Manifest) -> usize {
        let mut added = 0;
        for layer in &other.layers {
            let present =
                self.manifest.layers.iter().any(|mine| {
                    mine.digest == layer.digest && mine.annotations == layer.annotations
                });
            if !present {
                self.manifest.layers.push(layer.clone());
                added += 1;
            }
        }
        if added > 0 {
            self.refresh_config();
        }
        added
    }

    /// The manifest's bytes, as pushed (canonical JSON: the same manifest, the same digest).
    pub fn manifest_bytes(&self) -> Vec<u8> {
        canonical_json(&self.manifest)
    }

    /// cosign's placeholder config: an image config with empty platform fields whose
    /// `rootfs.diff_ids` are the layers' digests, so tools that read signature images as
    /// images (skopeo, crane) find a well-formed one.
    fn refresh_config(&mut self) {
        let diff_ids: Vec<String> = self
            .manifest
            .layers
            .iter()
            .map(|l| l.digest.to_string())
            .collect();
        let config = serde_json::json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        self.config = canonical_json(&config);
        self.manifest.config = Descriptor::for_bytes(media_type::OCI_CONFIG, &self.config);
    }
}

/// The decoded signature annotation of a layer, if it has one that is base64.
fn signature_of(layer: &Descriptor) -> Option<Vec<u8>> {
    BASE64
        .decode(layer.annotations.get(SIGNATURE_ANNOTATION)?)
        .ok()
}

/// The outcome of checking one signature layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// Every check passed.
    Verified,
    NotSimpleSigning {
        media_type: String,
    },
    /// The payload's bytes do not have the layer's digest.
    PayloadDigest {
        expected: String,
        actual: String,
    },
    NoSignature,
    /// The annotation is not base64 (cut short, or edited).
    SignatureNotBase64,
    /// None of the keys verifies the signature over the payload.
    NoKeyVerifies {
        keys: Vec<String>,
    },
    PayloadNotJson {
        why: String,
    },
    NotCosignType {
        found: String,
    },
    /// The signature is valid but signs another image.
    OtherImage {
        signed: String,
    },
    /// The signature is valid but names another repository (checked only when asked).
    OtherReference {
        signed: String,
        expected: String,
    },
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Verified => write!(f, "verified"),
            Check::NotSimpleSigning { media_type } => {
                write!(f, "not a simple-signing layer (media type {media_type})")
            }
            Check::PayloadDigest { expected, actual } => {
                write!(
                    f,
                    "payload digest: the layer names {expected}, the bytes are {actual}"
                )
            }
            Check::NoSignature => write!(f, "no {SIGNATURE_ANNOTATION} annotation"),
            Check::SignatureNotBase64 => {
                write!(
                    f,
                    "signature: the annotation is not base64 (truncated or edited?)"
                )
            }
            Check::NoKeyVerifies { keys } => write!(
                f,
                "signature: no given key ({}) verifies it over the payload (another key \
                 signed it, or the payload or signature was changed)",
                keys.join(", ")
            ),
            Check::PayloadNotJson { why } => {
                write!(f, "payload: not a simple-signing JSON ({why})")
            }
            Check::NotCosignType { found } => {
                write!(
                    f,
                    "payload: critical.type is {found:?}, not {COSIGN_TYPE:?}"
                )
            }
            Check::OtherImage { signed } => write!(
                f,
                "payload digest: it signs {signed}, not this image (a signature copied from \
                 another image)"
            ),
            Check::OtherReference { signed, expected } => {
                write!(f, "docker-reference: it names {signed}, not {expected}")
            }
        }
    }
}

/// One layer's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    pub layer: Digest,
    /// The ids of the keys whose signature this is (see [`PublicKey::id`]).
    pub keys: Vec<String>,
    #[serde(flatten)]
    pub check: Check,
    /// The payload's `docker-reference`, when it could be read.
    pub docker_reference: Option<String>,
}

/// The result of checking every layer of an image's signature manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub image: Digest,
    pub layers: Vec<LayerReport>,
}

impl Verification {
    /// Checks each layer of `signatures` (with its payload bytes, as fetched) against the
    /// image `digest`, the `keys`, and, if given, the repository `reference` the payload must
    /// name. The image is verified when at least one layer passes every check (as cosign's
    /// `verify`).
    pub fn check(
        image: &Digest,
        layers: &[(Descriptor, Vec<u8>)],
        keys: &[PublicKey],
        reference: Option<&str>,
    ) -> Verification {
        let layers = layers
            .iter()
            .map(|(layer, payload)| check_layer(image, layer, payload, keys, reference))
            .collect();
        Verification {
            image: image.clone(),
            layers,
        }
    }

    pub fn verified(&self) -> bool {
        self.layers.iter().any(|l| l.check == Check::Verified)
    }

    /// The ids of the keys with a verified signature, each once.
    pub fn matched_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .layers
            .iter()
            .filter(|l| l.check == Check::Verified)
            .flat_map(|l| l.keys.iter().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Why the image is not verified: one line per layer, naming the check that failed.
    pub fn failures(&self) -> String {
        if self.layers.is_empty() {
            return format!("{} has no signatures", self.image);
        }
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| format!("signature {} (layer {}): {}", i + 1, l.layer, l.check))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn check_layer(
    image: &Digest,
    layer: &Descriptor,
    payload: &[u8],
    keys: &[PublicKey],
    reference: Option<&str>,
) -> LayerReport {
    let mut report = LayerReport {
        layer: layer.digest.clone(),
        keys: Vec::new(),
        check: Check::Verified,
        docker_reference: None,
    };
    report.check = (|| {
        if layer.media_type != SIMPLE_SIGNING {
            return Check::NotSimpleSigning {
                media_type: layer.media_type.clone(),
            };
        }
        if let Err(mismatch) = layer.digest.verify(payload) {
            return Check::PayloadDigest {
                expected: mismatch.expected.to_string(),
                actual: mismatch.actual.to_string(),
            };
        }
        let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            return Check::NoSignature;
        };
        let Ok(signature) = BASE64.decode(encoded) else {
            return Check::SignatureNotBase64;
        };
        report.keys = keys
            .iter()
            .filter(|key| key.verifies(payload, &signature))
            .map(PublicKey::id)
            .collect();
        if report.keys.is_empty() {
            return Check::NoKeyVerifies {
                keys: keys.iter().map(PublicKey::id).collect(),
            };
        }
        // Only a payload whose signature verified is read: its claims are then the signer's.
        let claims: Payload = match serde_json::from_slice(payload) {
            Ok(claims) => claims,
            Err(e) => return Check::PayloadNotJson { why: e.to_string() },
        };
        report.docker_reference = Some(claims.critical.identity.docker_reference.clone());
        if claims.critical.kind != COSIGN_TYPE {
            return Check::NotCosignType {
                found: claims.critical.kind,
            };
        }
        if claims.critical.image.docker_manifest_digest != image.to_string() {
            return Check::OtherImage {
                signed: claims.critical.image.docker_manifest_digest,
            };
        }
        if let Some(expected) = reference
            && claims.critical.identity.docker_reference != expected
        {
            return Check::OtherReference {
                signed: claims.critical.identity.docker_reference,
                expected: expected.to_string(),
            };
        }
        Check::Verified
    })();
    report
}
