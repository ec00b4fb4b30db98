//! SLSA provenance v1 for an image, as an in-toto v1 statement in a DSSE envelope signed with
//! the same P-256 key as the image's cosign signature.
//!
//! - Statement: `_type` `https://in-toto.io/Statement/v1`, `subject` the image (repository
//!   and sha256), `predicateType` `https://slsa.dev/provenance/v1`, `predicate` the build:
//!   `buildDefinition` (`buildType`, `externalParameters`: the source and what the config
//!   asked for; `resolvedDependencies`: the source commit, the Cargo.lock digest, the base
//!   image) and `runDetails` (`builder.id`, when, the CI run).
//! - Envelope (DSSE v1): `{"payloadType":"application/vnd.in-toto+json","payload":B64,
//!   "signatures":[{"keyid":ID,"sig":B64}]}`; the signature is over the PAE,
//!   `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
//!
//! It is attached to the image as an OCI 1.1 referrer (artifact type [`IN_TOTO`], layer
//! [`DSSE_ENVELOPE`]), beside the SBOM and the scan report.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wharf_oci::Digest;

use crate::keys::{KeyPair, PublicKey};

/// The envelope's payload type, and the referrer's artifact type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The media type of the referrer's layer: the envelope.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// What `externalParameters` and `resolvedDependencies` mean for an image wharf built:
/// documented in docs/guide/signing.md.
pub const BUILD_TYPE: &str =
    "https://github.com/wharf-rs/wharf/blob/main/docs/guide/signing.md#provenance-v1";

/// What the provenance says about a build, gathered by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Who built it: the CI workflow (`https://github.com/OWNER/REPO/.github/workflows/...`)
    /// or wharf on a named machine.
    pub builder_id: String,
    /// The source repository's URL (credentials removed), and the commit built.
    pub source_repository: String,
    pub source_commit: String,
    /// What the config asked for (package, binary, base, tags, ...).
    pub parameters: BTreeMap<String, Value>,
    /// The sha256 of Cargo.lock, hex.
    pub cargo_lock_sha256: Option<String>,
    /// The base image and its digest, when it is not `scratch`.
    pub base_image: Option<(String, Digest)>,
    /// The CI run (e.g. its URL), if any.
    pub invocation_id: Option<String>,
}

/// The in-toto statement for the image `subject` (`registry/repository`, digest).
pub fn statement(repository: &str, subject: &Digest, build: &Build) -> Value {
    let mut dependencies = vec![json!({
        "uri": git_uri(&build.source_repository),
        "digest": { "gitCommit": build.source_commit },
    })];
    if let Some(lock) = &build.cargo_lock_sha256 {
        dependencies.push(json!({ "uri": "Cargo.lock", "digest": { "sha256": lock } }));
    }
    if let Some((name, digest)) = &build.base_image {
        dependencies.push(json!({
            "uri": format!("pkg:docker/{name}"),
            "digest": { digest.algorithm().as_str(): digest.hex() },
        }));
    }
    let mut run_details = json!({ "builder": { "id": build.builder_id } });
    if let Some(id) = &build.invocation_id {
        run_details["metadata"] = json!({ "invocationId": id });
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": repository,
            "digest": { subject.algorithm().as_str(): subject.hex() },
        }],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": {
                        "uri": git_uri(&build.source_repository),
                        "digest": { "gitCommit": build.source_commit },
                    },
                    "config": build.parameters,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    })
}

fn git_uri(repository: &str) -> String {
    if repository.starts_with("git+") {
        repository.to_string()
    } else {
        format!("git+{repository}")
    }
}

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// Base64 of the statement's bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the ASN.1 DER ECDSA signature over the PAE.
    pub sig: String,
}

impl Envelope {
    /// `statement` signed with `key`.
    pub fn sign(statement: &Value, key: &KeyPair) -> Envelope {
        let payload = serde_json::to_vec(statement).expect("a statement serializes");
        let signature = key.sign(&pae(IN_TOTO, &payload));
        Envelope {
            payload_type: IN_TOTO.to_string(),
            payload: BASE64.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: key.public_key().id(),
                sig: BASE64.encode(signature),
            }],
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope serializes")
    }
}

/// The outcome of checking a provenance envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum ProvenanceCheck {
    /// Signed by `keys`, about this image; the builder and source it names.
    Verified {
        keys: Vec<String>,
        builder: String,
        source: String,
        commit: String,
    },
    NotAnEnvelope {
        why: String,
    },
    PayloadType {
        found: String,
    },
    /// No key verifies any signature over the PAE.
    NoKeyVerifies {
        keys: Vec<String>,
    },
    NotAStatement {
        why: String,
    },
    /// A statement of another kind (`predicateType`).
    NotProvenance {
        predicate_type: String,
    },
    /// Valid, but about other images.
    OtherSubject {
        subjects: Vec<String>,
    },
}

impl std::fmt::Display for ProvenanceCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProvenanceCheck::Verified {
                keys,
                builder,
                source,
                commit,
            } => write!(
                f,
                "verified: signed by key {}, built by {builder} from {source} at {commit}",
                keys.join(", ")
            ),
            ProvenanceCheck::NotAnEnvelope { why } => write!(f, "not a DSSE envelope ({why})"),
            ProvenanceCheck::PayloadType { found } => {
                write!(f, "payload type is {found:?}, not {IN_TOTO:?}")
            }
            ProvenanceCheck::NoKeyVerifies { keys } => write!(
                f,
                "signature: no given key ({}) verifies the envelope (another key signed it, \
                 or the statement was changed)",
                keys.join(", ")
            ),
            ProvenanceCheck::NotAStatement { why } => {
                write!(f, "payload: not an in-toto statement ({why})")
            }
            ProvenanceCheck::NotProvenance { predicate_type } => write!(
                f,
                "predicateType is {predicate_type:?}, not {SLSA_PROVENANCE:?}"
            ),
            ProvenanceCheck::OtherSubject { subjects } => write!(
                f,
                "subject: the statement is about {}, not this image",
                subjects.join(", ")
            ),
        }
    }
}

/// Checks an envelope's bytes: its signature (over the PAE) with `keys`, that it carries an
/// in-toto SLSA provenance statement, and that the statement's subject is `image`.
pub fn check(envelope: &[u8], keys: &[PublicKey], image: &Digest) -> ProvenanceCheck {
    let envelope: Envelope = match serde_json::from_slice(envelope) {
        Ok(e) => e,
        Err(e) => return ProvenanceCheck::NotAnEnvelope { why: e.to_string() },
    };
    if envelope.payload_type != IN_TOTO {
        return ProvenanceCheck::PayloadType {
            found: envelope.payload_type,
        };
    }
    let Ok(payload) = BASE64.decode(&envelope.payload) else {
        return ProvenanceCheck::NotAnEnvelope {
            why: "the payload is not base64".into(),
        };
    };
    let signed = pae(&envelope.payload_type, &payload);
    let mut matched: Vec<String> = keys
        .iter()
        .filter(|key| {
            envelope.signatures.iter().any(|s| {
                BASE64
                    .decode(&s.sig)
                    .is_ok_and(|sig| key.verifies(&signed, &sig))
            })
        })
        .map(PublicKey::id)
        .collect();
    matched.dedup();
    if matched.is_empty() {
        return ProvenanceCheck::NoKeyVerifies {
            keys: keys.iter().map(PublicKey::id).collect(),
        };
    }
    let statement: Value = match serde_json::from_slice(&payload) {
        Ok(v) => v,
        Err(e) => return ProvenanceCheck::NotAStatement { why: e.to_string() },
    };
    if statement["_type"] != STATEMENT_TYPE {
        return ProvenanceCheck::NotAStatement {
            why: format!("_type is {}", statement["_type"]),
        };
    }
    if statement["predicateType"] != SLSA_PROVENANCE {
        return ProvenanceCheck::NotProvenance {
            predicate_type: statement["predicateType"].to_string(),
        };
    }
    let subjects: Vec<&Value> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let about_image = subjects
        .iter()
        .any(|s| s["digest"][image.algorithm().as_str()].as_str() == Some(image.hex()));
    if !about_image {
        return ProvenanceCheck::OtherSubject {
            subjects: subjects
                .iter()
                .map(|s| format!("{}@{}", s["name"].as_str().unwrap_or("?"), s["digest"]))
                .collect(),
        };
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let source = &statement["predicate"]["buildDefinition"]["externalParameters"]["source"];
    ProvenanceCheck::Verified {
        keys: matched,
        builder: text(&statement["predicate"]["runDetails"]["builder"]["id"]),
        source: text(&source["uri"]),
        commit: text(&source["digest"]["gitCommit"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Build {
        Build {
            builder_id: "https://github.com/o/r/.github/workflows/release.yml".into(),
            source_repository: "https://github.com/o/r".into(),
            source_commit: "c0ffee".repeat(6) + "c0ff",
            parameters: BTreeMap::from([("package".into(), json!("app"))]),
            cargo_lock_sha256: Some("ab".repeat(32)),
            base_image: None,
            invocation_id: Some("https://github.com/o/r/actions/runs/1".into()),
        }
    }

    #[test]
    fn an_envelope_verifies_for_its_image_and_names_builder_and_source() {
        let key = KeyPair::generate().unwrap();
        let image = Digest::sha256(b"image");
        let envelope = Envelope::sign(&statement("reg/app", &image, &build()), &key).to_bytes();
        let checked = check(&envelope, &[key.public_key()], &image);
        assert_eq!(
            checked,
            ProvenanceCheck::Verified {
                keys: vec![key.public_key().id()],
                builder: build().builder_id,
                source: "git+https://github.com/o/r".into(),
                commit: build().source_commit,
            }
        );
        let other = Digest::sha256(b"other");
        assert!(matches!(
            check(&envelope, &[key.public_key()], &other),
            ProvenanceCheck::OtherSubject { .. }
        ));
        let stranger = KeyPair::generate().unwrap().public_key();
        assert!(matches!(
            check(&envelope, &[stranger], &image),
            ProvenanceCheck::NoKeyVerifies { .. }
        ));
    }

    #[test]
    fn a_changed_statement_fails_the_signature() {
        let key = KeyPair::generate().unwrap();
        let image = Digest::sha256(b"image");
        let mut envelope = Envelope::sign(&statement("reg/app", &image, &build()), &key);
        let mut payload = BASE64.decode(&envelope.payload).unwrap();
        let at = payload.iter().position(|b| *b == b'c').unwrap();
        payload[at] = b'd';
        envelope.payload = BASE64.encode(&payload);
        assert!(matches!(
            check(&envelope.to_bytes(), &[key.public_key()], &image),
            ProvenanceCheck::NoKeyVerifies { .. }
        ));
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("application/example", b"hello"),
            b"DSSEv1 19 application/example 5 hello"
        );
    }
}
