//! ECDSA P-256 keys in the PEM forms cosign and openssl read.
//!
//! - Private: PKCS#8 (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey -algorithm EC
//!   -pkeyopt ec_paramgen_curve:P-256` writes it, with the public key inside (ring needs
//!   it; openssl and Go always write it).
//! - Public: SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as `cosign.pub` and
//!   `openssl pkey -pubout` write it.

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use wharf_oci::Digest;

/// The DER prefix of a P-256 public key's SubjectPublicKeyInfo: SEQUENCE { SEQUENCE {
/// id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes: the uncompressed point) }. Every
/// P-256 SPKI starts with exactly these 26 bytes (RFC 5480), so the key is the rest.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const POINT_LEN: usize = 65;

/// A key that cannot be used, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{what} is not PEM ({why}); expected -----BEGIN {expected}-----")]
    NotPem {
        what: String,
        why: String,
        expected: &'static str,
    },
    #[error(
        "{what} is a {found} PEM block, not a {expected}{hint}",
        hint = wrong_kind_hint(found, expected)
    )]
    WrongKind {
        what: String,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{what} is not an ECDSA P-256 {kind} (wharf signs and verifies cosign's P-256 \
         signatures only; make a key with `cargo xtask keygen`)"
    )]
    NotP256 { what: String, kind: &'static str },
    #[error("generating a key pair failed (the system's random source)")]
    Random,
    #[error("{what} is an encrypted cosign key that wharf cannot read: {why}")]
    Encrypted { what: String, why: String },
    #[error(
        "the password does not decrypt {what} (set COSIGN_PASSWORD to the password the key \
         was made with)"
    )]
    WrongPassword { what: String },
}

/// The PEM labels of cosign's encrypted private keys (`cosign generate-key-pair`); the older
/// one is from cosign before 1.x's rename to sigstore.
pub const ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// Whether `text` is a PEM block of one of cosign's encrypted private keys.
pub fn is_encrypted(text: &[u8]) -> bool {
    pem::parse(text).is_ok_and(|block| ENCRYPTED_LABELS.contains(&block.tag()))
}

fn wrong_kind_hint(found: &str, expected: &str) -> &'static str {
    match (found, expected) {
        ("EC PRIVATE KEY", _) => {
            " (convert it: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8.pem)"
        }
        ("ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY", _) => {
            " (an encrypted cosign key: give its password in COSIGN_PASSWORD)"
        }
        ("PUBLIC KEY", "PRIVATE KEY") => " (this is the public half: sign with the private key)",
        ("PRIVATE KEY", "PUBLIC KEY") => {
            " (this is the private half: verify with the public key, e.g. cosign.pub)"
        }
        _ => "",
    }
}

/// A signing key: an ECDSA P-256 key pair.
pub struct KeyPair {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    // Never the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public_key().id())
    }
}

impl KeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<KeyPair, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| KeyError::Random)?;
        KeyPair::from_pkcs8_der(pkcs8.as_ref(), "the generated key")
    }

    /// Reads a PKCS#8 PEM private key; `what` names it in errors (a path, a variable).
    pub fn from_pem(text: &[u8], what: &str) -> Result<KeyPair, KeyError> {
        let der = pem_block(text, what, "PRIVATE KEY")?;
        KeyPair::from_pkcs8_der(&der, what)
    }

    /// Reads one of cosign's encrypted private keys (`ENCRYPTED SIGSTORE PRIVATE KEY`), as
    /// go-securesystemslib's `encrypted` package writes it: JSON holding an scrypt key
    /// derivation (N, r, p, salt) and a NaCl secretbox (XSalsa20-Poly1305) nonce and
    /// ciphertext, whose plaintext is the PKCS#8 DER of the key.
    pub fn from_encrypted_pem(
        text: &[u8],
        what: &str,
        password: &[u8],
    ) -> Result<KeyPair, KeyError> {
        let block = pem::parse(text).map_err(|e| KeyError::NotPem {
            what: what.to_string(),
            why: e.to_string(),
            expected: ENCRYPTED_LABELS[0],
        })?;
        if !ENCRYPTED_LABELS.contains(&block.tag()) {
            return Err(KeyError::WrongKind {
                what: what.to_string(),
                found: block.tag().to_string(),
                expected: ENCRYPTED_LABELS[0],
            });
        }
        let der = crate::encrypted::decrypt(block.contents(), password).map_err(|e| match e {
            crate::encrypted::Error::WrongPassword => KeyError::WrongPassword {
                what: what.to_string(),
            },
            crate::encrypted::Error::Format(why) => KeyError::Encrypted {
                what: what.to_string(),
                why,
            },
        })?;
        KeyPair::from_pkcs8_der(&der, what)
    }

    fn from_pkcs8_der(der: &[u8], what: &str) -> Result<KeyPair, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &SystemRandom::new())
                .map_err(|_| KeyError::NotP256 {
                    what: what.to_string(),
                    kind: "private key in PKCS#8",
                })?;
        Ok(KeyPair {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The private key as PKCS#8 PEM: secret, for a file of mode 0600.
    pub fn private_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    pub fn public_key(&self) -> PublicKey {
        let mut point = [0u8; POINT_LEN];
        point.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { point }
    }

    /// The ASN.1 DER ECDSA signature over SHA-256 of `message`, as cosign stores it
    /// (base64 in the layer annotation) and `openssl dgst -sha256 -verify` checks it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            // ring fails only if the random source does; nothing to sign with then.
            .expect("ECDSA signing (the system's random source failed)")
            .as_ref()
            .to_vec()
    }
}

/// A verifying key: an ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: [u8; POINT_LEN],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo); `what` names it in errors.
    pub fn from_pem(text: &[u8], what: &str) -> Result<PublicKey, KeyError> {
        let der = pem_block(text, what, "PUBLIC KEY")?;
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|point| point.len() == POINT_LEN && point[0] == 0x04)
            .ok_or_else(|| KeyError::NotP256 {
                what: what.to_string(),
                kind: "public key",
            })?;
        let mut key = PublicKey {
            point: [0u8; POINT_LEN],
        };
        key.point.copy_from_slice(point);
        Ok(key)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], &self.point[..]].concat()
    }

    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der()))
    }

    /// A short, stable name for the key in reports: the first 16 hex digits of the sha256 of
    /// its SubjectPublicKeyInfo (`openssl pkey -pubin -outform DER | sha256sum`).
    pub fn id(&self) -> String {
        Digest::sha256(&self.spki_der()).hex()[..16].to_string()
    }

    /// Whether `signature` (ASN.1 DER) is this key's ECDSA signature over SHA-256 of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point[..])
            .verify(message, signature)
            .is_ok()
    }
}

/// The DER inside the first PEM block of `text`, which must be an `expected` block.
fn pem_block(text: &[u8], what: &str, expected: &'static str) -> Result<Vec<u8>, KeyError> {
    let block = pem::parse(text).map_err(|e| KeyError::NotPem {
        what: what.to_string(),
        why: e.to_string(),
        expected,
    })?;
    if block.tag() != expected {
        return Err(KeyError::WrongKind {
            what: what.to_string(),
            found: block.tag().to_string(),
            expected,
        });
    }
    Ok(block.into_contents())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_round_trips_through_pem_and_signs_what_its_public_key_verifies() {
        let pair = KeyPair::generate().unwrap();
        let again = KeyPair::from_pem(pair.private_pem().as_bytes(), "key").unwrap();
        let public = PublicKey::from_pem(pair.public_key().to_pem().as_bytes(), "pub").unwrap();
        assert_eq!(again.public_key(), public);
        let signature = again.sign(b"payload");
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        let other = KeyPair::generate().unwrap().public_key();
        assert!(!other.verifies(b"payload", &signature));
        assert_ne!(other.id(), public.id());
    }

    #[test]
    fn keys_of_the_wrong_kind_are_named_with_the_fix() {
        let pair = KeyPair::generate().unwrap();
        let public = pair.public_key().to_pem();
        let err = KeyPair::from_pem(public.as_bytes(), "cosign.pub").unwrap_err();
        assert!(err.to_string().contains("public half"), "{err}");
        let err = PublicKey::from_pem(pair.private_pem().as_bytes(), "cosign.key").unwrap_err();
        assert!(err.to_string().contains("private half"), "{err}");
        let sec1 = pem::encode(&pem::Pem::new("EC PRIVATE KEY", vec![1, 2, 3]));
        let err = KeyPair::from_pem(sec1.as_bytes(), "old.pem").unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
        let err = PublicKey::from_pem(b"not a key", "x.pub").unwrap_err();
        assert!(matches!(err, KeyError::NotPem { .. }), "{err}");
        // An RSA public key in SPKI form is not P-256.
        let rsa = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![0x30, 0x82, 0x01, 0x22]));
        let err = PublicKey::from_pem(rsa.as_bytes(), "rsa.pub").unwrap_err();
        assert!(
            err.to_string().contains("not an ECDSA P-256 public key"),
            "{err}"
        );
    }

    #[test]
    fn an_encrypted_cosign_key_opens_with_its_password_only() {
        let pair = KeyPair::generate().unwrap();
        let sealed = crate::encrypted::encrypt_for_tests(&pair.pkcs8, b"hunter2");
        let text = pem::encode(&pem::Pem::new("ENCRYPTED SIGSTORE PRIVATE KEY", sealed));
        assert!(is_encrypted(text.as_bytes()));
        let opened =
            KeyPair::from_encrypted_pem(text.as_bytes(), "cosign.key", b"hunter2").unwrap();
        assert_eq!(opened.public_key(), pair.public_key());
        let err = KeyPair::from_encrypted_pem(text.as_bytes(), "cosign.key", b"wrong").unwrap_err();
        assert!(matches!(err, KeyError::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains("COSIGN_PASSWORD"), "{err}");
        let garbage = pem::encode(&pem::Pem::new(
            "ENCRYPTED SIGSTORE PRIVATE KEY",
            b"{}".to_vec(),
        ));
        let err = KeyPair::from_encrypted_pem(garbage.as_bytes(), "x.key", b"").unwrap_err();
        assert!(matches!(err, KeyError::Encrypted { .. }), "{err}");
        // Read as a plain key, it says where the password goes.
        let err = KeyPair::from_pem(text.as_bytes(), "cosign.key").unwrap_err();
        assert!(err.to_string().contains("COSIGN_PASSWORD"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let pair = KeyPair::generate().unwrap();
        let shown = format!("{pair:?}");
        assert_eq!(shown, format!("KeyPair({})", pair.public_key().id()));
    }
}
