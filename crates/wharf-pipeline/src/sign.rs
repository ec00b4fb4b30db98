//! Signing images in a registry and verifying their signatures, in cosign's key-based format
//! (`wharf-sign`): the signature manifest is the tag `sha256-<hex>.sig` in the image's
//! repository, one layer per signature.
//!
//! Two signers of one image at the same moment can lose one signature (each reads the
//! `.sig` manifest, adds its layer and puts it back; registries have no compare-and-swap on
//! tags), as with cosign. Signing again restores it: signing is idempotent per key.

use std::io::Read;

use serde::Serialize;
use wharf_oci::{Descriptor, Digest, Manifest, Reference};
use wharf_registry::{Artifact, Attached};
use wharf_registry::{Client, Error as RegistryError};
use wharf_sign::provenance::{self, Build, Envelope, ProvenanceCheck};
use wharf_sign::{Added, KeyPair, Payload, PublicKey, SignatureManifest, Verification};

/// The largest signature payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
}

/// What [`sign`] did (the `--json` output of `cargo xtask sign`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signed {
    /// The image signed, by digest.
    pub image: String,
    /// `registry/repository:sha256-<hex>.sig`.
    pub signatures: String,
    /// The signature manifest's digest after signing.
    pub manifest: Digest,
    /// The id of the key that signed (see `wharf_sign::PublicKey::id`).
    pub key: String,
    /// False when the key had signed this image already (nothing was written).
    pub added: bool,
    /// How many signatures the image has now.
    pub count: usize,
}

/// `image` pinned to its digest (a tag is resolved first: signatures name digests).
pub fn pinned(client: &Client, image: &Reference) -> Result<(Reference, Digest), SignError> {
    let digest = match image.digest() {
        Some(digest) => digest.clone(),
        None => client.resolve(image)?.digest,
    };
    Ok((image.with_digest(digest.clone()), digest))
}

/// `registry/repository`: what a payload's `docker-reference` names.
pub fn repository_of(image: &Reference) -> String {
    format!("{}/{}", image.registry(), image.repository())
}

fn signature_ref(image: &Reference, digest: &Digest) -> Result<Reference, SignError> {
    let tag = wharf_sign::signature_tag(digest);
    image.with_tag(&tag).map_err(|e| SignError::Invalid {
        what: format!("naming the signature tag {tag}"),
        why: e.to_string(),
    })
}

/// The image's signature manifest, if it has one.
fn signature_manifest(client: &Client, sig: &Reference) -> Result<Option<Manifest>, SignError> {
    let Some(raw) = client.manifest_if_present(sig)? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw.bytes)
        .map(Some)
        .map_err(|e| SignError::Invalid {
            what: format!("reading the signature manifest {sig}"),
            why: format!("not an image manifest: {e}"),
        })
}

/// Signs the image `image` names with `key`: adds a layer to its `.sig` manifest (made if
/// missing), keeping earlier signatures; a no-op if `key` signed it already.
pub fn sign(client: &Client, image: &Reference, key: &KeyPair) -> Result<Signed, SignError> {
    let (image, digest) = pinned(client, image)?;
    let sig = signature_ref(&image, &digest)?;
    let mut signatures = SignatureManifest::from_existing(signature_manifest(client, &sig)?);
    let payload = Payload::new(&repository_of(&image), &digest).to_bytes();
    let added = signatures.add(&payload, key) == Added::Signed;
    let manifest = signatures.manifest_bytes();
    if added {
        let (registry, repository) = (image.registry(), image.repository());
        let payload_layer = Descriptor::for_bytes(wharf_sign::SIMPLE_SIGNING, &payload);
        for (descriptor, bytes) in [
            (&payload_layer, payload.as_slice()),
            (&signatures.manifest.config, signatures.config.as_slice()),
        ] {
            let open = || Ok(Box::new(bytes) as wharf_oci::image::BlobReader<'_>);
            client.push_blob(registry, repository, descriptor, None, &open)?;
        }
        client.put_manifest(
            registry,
            repository,
            sig.tag().expect("the signature reference has a tag"),
            wharf_oci::media_type::OCI_MANIFEST,
            &manifest,
        )?;
    }
    Ok(Signed {
        image: format!("{}@{digest}", repository_of(&image)),
        signatures: sig.to_string(),
        manifest: Digest::sha256(&manifest),
        key: key.public_key().id(),
        added,
        count: signatures.manifest.layers.len(),
    })
}

/// The layers of the image's `.sig` manifest with their payloads (each checked against its
/// digest as it is read); empty when the image has no signatures.
pub fn signatures(
    client: &Client,
    image: &Reference,
    digest: &Digest,
) -> Result<Vec<(Descriptor, Vec<u8>)>, SignError> {
    let sig = signature_ref(image, digest)?;
    let Some(manifest) = signature_manifest(client, &sig)? else {
        return Ok(Vec::new());
    };
    manifest
        .layers
        .into_iter()
        .map(|layer| {
            if layer.size > MAX_PAYLOAD {
                return Err(SignError::Invalid {
                    what: format!("reading signature layer {} of {sig}", layer.digest),
                    why: format!("{} bytes, more than a payload's {MAX_PAYLOAD}", layer.size),
                });
            }
            let mut payload = Vec::new();
            client
                .blob(
                    image.registry(),
                    image.repository(),
                    &layer.digest,
                    Some(layer.size),
                )?
                .read_to_end(&mut payload)
                .map_err(|e| SignError::Invalid {
                    what: format!("reading signature layer {} of {sig}", layer.digest),
                    why: e.to_string(),
                })?;
            Ok((layer, payload))
        })
        .collect()
}

/// Checks every signature of the image `image` names against `keys`; with
/// `check_reference`, each payload must also name the image's own repository.
pub fn verify(
    client: &Client,
    image: &Reference,
    keys: &[PublicKey],
    check_reference: bool,
) -> Result<Verification, SignError> {
    let (image, digest) = pinned(client, image)?;
    let layers = signatures(client, &image, &digest)?;
    let reference = check_reference.then(|| repository_of(&image));
    Ok(Verification::check(
        &digest,
        &layers,
        keys,
        reference.as_deref(),
    ))
}

/// The annotation naming an attestation's predicate, as cosign and oras write it.
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// Attaches SLSA provenance for the image `image` names, built as `build` says, in a DSSE
/// envelope signed with `key`, as an OCI 1.1 referrer (with the tag fallbacks where the
/// registry has no referrers API).
pub fn attach_provenance(
    client: &Client,
    image: &Reference,
    key: &KeyPair,
    build: &Build,
) -> Result<Attached, SignError> {
    let (image, digest) = pinned(client, image)?;
    let statement = provenance::statement(&repository_of(&image), &digest, build);
    let artifact = Artifact {
        artifact_type: provenance::IN_TOTO.into(),
        media_type: provenance::DSSE_ENVELOPE.into(),
        bytes: Envelope::sign(&statement, key).to_bytes(),
        annotations: [(
            PREDICATE_TYPE.to_string(),
            provenance::SLSA_PROVENANCE.to_string(),
        )]
        .into(),
        fallback_suffix: "provenance".into(),
    };
    Ok(client.attach(&image, &artifact)?)
}

/// Checks every provenance envelope attached to the image: each one's outcome, in the order
/// the registry lists them (empty: none attached).
pub fn verify_provenance(
    client: &Client,
    image: &Reference,
    keys: &[PublicKey],
) -> Result<Vec<(Digest, ProvenanceCheck)>, SignError> {
    let (image, digest) = pinned(client, image)?;
    client
        .referrers(&image, Some(provenance::IN_TOTO))?
        .iter()
        .map(|descriptor| {
            let (_, envelope) = client.artifact(&image, descriptor)?;
            Ok((
                descriptor.digest.clone(),
                provenance::check(&envelope, keys, &digest),
            ))
        })
        .collect()
}
