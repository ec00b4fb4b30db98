//! cosign-compatible signatures for container images, as cosign's SIGNATURE_SPEC describes
//! its key-based ("simple signing") format: no transparency log, no certificates.
//!
//! - [`keys`]: ECDSA P-256 key pairs, the private key as PKCS#8 PEM and the public key as
//!   the PEM `PUBLIC KEY` (SubjectPublicKeyInfo) that `cosign verify --key` reads; cosign's
//!   encrypted private keys are read too (scrypt and NaCl secretbox).
//! - [`simple_signing`]: the payload that names the image's digest, the signature layer that
//!   carries it, the signature manifest tagged `sha256-<hex>.sig`, and the checks `verify`
//!   makes on each of its layers.
//! - [`provenance`]: a SLSA provenance v1 statement (in-toto v1) in a DSSE envelope signed
//!   with the same key, and its checks.
//!
//! Pure: bytes in, bytes out. Reading keys from files and talking to registries is the
//! caller's (`wharf-cli`'s `sign` module).
//!
//! The crypto is `ring` (already in the workspace for rustls and digests), not the `sigstore`
//! crate (about 350 crates, a second registry client and tokio) nor `p256` 0.14 (some 20
//! crates and a second SHA-2); see docs/ARCHITECTURE.md.

mod encrypted;
pub mod keys;
pub mod provenance;
pub mod simple_signing;

pub use keys::{KeyError, KeyPair, PublicKey, is_encrypted};
pub use simple_signing::{
    Added, COSIGN_TYPE, Check, LayerReport, Payload, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
    SignatureManifest, Verification, signature_tag,
};
