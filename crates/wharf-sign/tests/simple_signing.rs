//! The signature format and its checks, on payloads and manifests made here. The registry
//! round trip, cosign's tag and the independent check with openssl are in wharf-e2e's
//! tests/sign.rs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use wharf_oci::{Descriptor, Digest};
use wharf_sign::{
    Added, COSIGN_TYPE, Check, KeyPair, Payload, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
    SignatureManifest, Verification, signature_tag,
};

const REPO: &str = "registry.example/team/app";

fn image() -> Digest {
    Digest::sha256(b"an image manifest")
}

/// A signature manifest with one signature by `key` over the payload for `digest`, and its
/// layers with their payloads as a registry would return them.
fn signed(key: &KeyPair, digest: &Digest) -> (SignatureManifest, Vec<(Descriptor, Vec<u8>)>) {
    let payload = Payload::new(REPO, digest).to_bytes();
    let mut sig = SignatureManifest::from_existing(None);
    assert_eq!(sig.add(&payload, key), Added::Signed);
    let layers = sig
        .manifest
        .layers
        .iter()
        .map(|l| (l.clone(), payload.clone()))
        .collect();
    (sig, layers)
}

fn only_check(v: &Verification) -> &Check {
    assert_eq!(v.layers.len(), 1);
    &v.layers[0].check
}

#[test]
fn the_payload_has_cosigns_fields_by_name_and_order() {
    let digest = image();
    let payload = Payload::new(REPO, &digest).to_bytes();
    let text = String::from_utf8(payload.clone()).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{REPO}\"}},\"image\":\
             {{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"{COSIGN_TYPE}\"}},\
             \"optional\":null}}"
        )
    );
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(json["critical"]["type"], "cosign container image signature");
    assert_eq!(
        json["critical"]["image"]["docker-manifest-digest"],
        digest.to_string()
    );
    assert_eq!(json["critical"]["identity"]["docker-reference"], REPO);
    assert_eq!(
        signature_tag(&digest),
        format!("sha256-{}.sig", digest.hex())
    );
}

#[test]
fn a_signature_verifies_with_its_key_and_names_it() {
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    let (sig, layers) = signed(&key, &image());
    let layer = &sig.manifest.layers[0];
    assert_eq!(layer.media_type, SIMPLE_SIGNING);
    assert!(layer.annotations.contains_key(SIGNATURE_ANNOTATION));
    let keys = [other.public_key(), key.public_key()];
    let v = Verification::check(&image(), &layers, &keys, Some(REPO));
    assert!(v.verified(), "{}", v.failures());
    assert_eq!(v.matched_keys(), [key.public_key().id()]);
    assert_eq!(v.layers[0].docker_reference.as_deref(), Some(REPO));
}

#[test]
fn a_changed_payload_byte_fails_the_signature_check() {
    let key = KeyPair::generate().unwrap();
    let (_, mut layers) = signed(&key, &image());
    // Whoever changes the payload must also change the layer's digest, or the digest check
    // catches it first; both are failures, named.
    layers[0].1[20] ^= 0x01;
    let v = Verification::check(&image(), &layers, &[key.public_key()], None);
    assert!(
        matches!(only_check(&v), Check::PayloadDigest { .. }),
        "{}",
        v.failures()
    );
    assert!(v.failures().contains("payload digest"), "{}", v.failures());
    layers[0].0.digest = Digest::sha256(&layers[0].1);
    let v = Verification::check(&image(), &layers, &[key.public_key()], None);
    assert!(!v.verified());
    assert!(matches!(only_check(&v), Check::NoKeyVerifies { .. }));
    assert!(v.failures().contains("no given key"), "{}", v.failures());
}

#[test]
fn a_signature_for_another_digest_fails_naming_the_signed_digest() {
    let key = KeyPair::generate().unwrap();
    let elsewhere = Digest::sha256(b"another image");
    let (_, layers) = signed(&key, &elsewhere);
    let v = Verification::check(&image(), &layers, &[key.public_key()], None);
    assert_eq!(
        only_check(&v),
        &Check::OtherImage {
            signed: elsewhere.to_string()
        }
    );
    assert!(v.failures().contains("not this image"), "{}", v.failures());
}

#[test]
fn the_wrong_key_fails_naming_the_keys_tried() {
    let key = KeyPair::generate().unwrap();
    let wrong = KeyPair::generate().unwrap().public_key();
    let (_, layers) = signed(&key, &image());
    let v = Verification::check(&image(), &layers, std::slice::from_ref(&wrong), None);
    assert_eq!(
        only_check(&v),
        &Check::NoKeyVerifies {
            keys: vec![wrong.id()]
        }
    );
    assert!(v.failures().contains(&wrong.id()), "{}", v.failures());
    assert!(v.matched_keys().is_empty());
}

#[test]
fn a_truncated_annotation_fails_the_signature_check() {
    let key = KeyPair::generate().unwrap();
    let (_, mut layers) = signed(&key, &image());
    let annotation = layers[0]
        .0
        .annotations
        .get_mut(SIGNATURE_ANNOTATION)
        .unwrap();
    // Cut by 3: not base64 any more. Cut by 4: base64 of a shorter DER, which no key verifies.
    let full = annotation.clone();
    *annotation = full[..full.len() - 3].to_string();
    let v = Verification::check(&image(), &layers, &[key.public_key()], None);
    assert_eq!(only_check(&v), &Check::SignatureNotBase64);
    assert!(v.failures().contains("not base64"), "{}", v.failures());
    layers[0]
        .0
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), full[..full.len() - 4].into());
    assert!(BASE64.decode(&full[..full.len() - 4]).is_ok());
    let v = Verification::check(&image(), &layers, &[key.public_key()], None);
    assert!(matches!(only_check(&v), Check::NoKeyVerifies { .. }));
}

#[test]
fn the_docker_reference_is_checked_only_when_asked() {
    let key = KeyPair::generate().unwrap();
    let (_, layers) = signed(&key, &image());
    let keys = [key.public_key()];
    assert!(Verification::check(&image(), &layers, &keys, None).verified());
    let v = Verification::check(&image(), &layers, &keys, Some("registry.example/other"));
    assert_eq!(
        only_check(&v),
        &Check::OtherReference {
            signed: REPO.into(),
            expected: "registry.example/other".into()
        }
    );
}

#[test]
fn signing_again_keeps_earlier_signatures_and_the_same_key_twice_is_a_no_op() {
    let first = KeyPair::generate().unwrap();
    let second = KeyPair::generate().unwrap();
    let payload = Payload::new(REPO, &image()).to_bytes();
    let mut sig = SignatureManifest::from_existing(None);
    assert_eq!(sig.add(&payload, &first), Added::Signed);
    let one = sig.manifest_bytes();
    assert_eq!(sig.add(&payload, &first), Added::AlreadySigned);
    assert_eq!(sig.manifest_bytes(), one);
    // Read back as a registry would hand it over, then signed by another key.
    let stored: wharf_oci::Manifest = serde_json::from_slice(&one).unwrap();
    let mut sig = SignatureManifest::from_existing(Some(stored));
    assert_eq!(sig.add(&payload, &second), Added::Signed);
    assert_eq!(sig.manifest.layers.len(), 2);
    let layers: Vec<_> = sig
        .manifest
        .layers
        .iter()
        .map(|l| (l.clone(), payload.clone()))
        .collect();
    let v = Verification::check(
        &image(),
        &layers,
        &[first.public_key(), second.public_key()],
        None,
    );
    let mut both = vec![first.public_key().id(), second.public_key().id()];
    both.sort();
    assert_eq!(v.matched_keys(), both);
    // The config lists both layers, as cosign's does.
    let config: serde_json::Value = serde_json::from_slice(&sig.config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    assert_eq!(sig.manifest.config.digest, Digest::sha256(&sig.config));
}

#[test]
fn merging_keeps_both_sides_signatures_once() {
    let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let payload = Payload::new(REPO, &image()).to_bytes();
    let mut source = SignatureManifest::from_existing(None);
    source.add(&payload, &a);
    let mut target = SignatureManifest::from_existing(None);
    target.add(&payload, &b);
    assert_eq!(target.merge(&source.manifest), 1);
    assert_eq!(
        target.merge(&source.manifest),
        0,
        "a second merge adds nothing"
    );
    assert_eq!(target.manifest.layers.len(), 2);
    let config: serde_json::Value = serde_json::from_slice(&target.config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}
