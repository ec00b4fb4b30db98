//! cosign's encrypted private keys: the format of go-securesystemslib's `encrypted` package,
//! which `cosign generate-key-pair` uses.
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<base64>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64, 24 bytes>"},
//!  "ciphertext":"<base64: Poly1305 tag, then the encrypted PKCS#8 DER>"}
//! ```
//!
//! The key is scrypt(password, salt, N, r, p) of 32 bytes; the box is NaCl's secretbox
//! (XSalsa20-Poly1305), opened with `crypto_secretbox`. Both crates are RustCrypto's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use serde::{Deserialize, Serialize};

/// The largest scrypt cost accepted (cosign uses N = 32768): a hostile key file must not
/// make the command allocate gigabytes (memory is 128 * N * r bytes).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

#[derive(Debug)]
pub(crate) enum Error {
    WrongPassword,
    Format(String),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: Params,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Params {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn format(why: impl Into<String>) -> Error {
    Error::Format(why.into())
}

fn derive(password: &[u8], salt: &[u8], params: &Params) -> Result<[u8; 32], Error> {
    if !params.n.is_power_of_two() || params.n < 2 {
        return Err(format(format!(
            "scrypt N = {} is not a power of two",
            params.n
        )));
    }
    if 128 * params.n * u64::from(params.r) > MAX_SCRYPT_MEMORY {
        return Err(format(format!(
            "scrypt N = {}, r = {} would need more than {} MiB",
            params.n,
            params.r,
            MAX_SCRYPT_MEMORY >> 20
        )));
    }
    let log_n = params.n.trailing_zeros() as u8;
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, 32)
        .map_err(|e| format(format!("scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key)
        .map_err(|e| format(format!("scrypt: {e}")))?;
    Ok(key)
}

/// The plaintext (PKCS#8 DER) of an encrypted key's PEM contents.
pub(crate) fn decrypt(contents: &[u8], password: &[u8]) -> Result<Vec<u8>, Error> {
    let sealed: Encrypted = serde_json::from_slice(contents)
        .map_err(|e| format(format!("its content is not the expected JSON: {e}")))?;
    if sealed.kdf.name != "scrypt" {
        return Err(format(format!(
            "key derivation {:?}, not scrypt",
            sealed.kdf.name
        )));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(format(format!(
            "cipher {:?}, not nacl/secretbox",
            sealed.cipher.name
        )));
    }
    let decode = |what: &str, text: &str| {
        BASE64
            .decode(text)
            .map_err(|e| format(format!("{what} is not base64: {e}")))
    };
    let salt = decode("the salt", &sealed.kdf.salt)?;
    let nonce = decode("the nonce", &sealed.cipher.nonce)?;
    let ciphertext = decode("the ciphertext", &sealed.ciphertext)?;
    if nonce.len() != 24 {
        return Err(format(format!(
            "the nonce is {} bytes, not 24",
            nonce.len()
        )));
    }
    let key = derive(password, &salt, &sealed.kdf.params)?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| Error::WrongPassword)
}

/// Encrypts `plaintext` as cosign does, with a cheap scrypt cost: for tests of the reader.
#[cfg(test)]
pub(crate) fn encrypt_for_tests(plaintext: &[u8], password: &[u8]) -> Vec<u8> {
    let params = Params {
        n: 1024,
        r: 8,
        p: 1,
    };
    let (salt, nonce) = ([7u8; 32], [9u8; 24]);
    let key = derive(password, &salt, &params).unwrap();
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap();
    serde_json::to_vec(&Encrypted {
        kdf: Kdf {
            name: "scrypt".into(),
            params,
            salt: BASE64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: BASE64.encode(nonce),
        },
        ciphertext: BASE64.encode(ciphertext),
    })
    .unwrap()
}
