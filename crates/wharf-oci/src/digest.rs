//! Content digests (`sha256:<64 hex>`), as defined by the OCI image spec.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hash algorithm registered by the OCI image spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding of this algorithm's output.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest such as `sha256:e3b0c442...`.
///
/// The encoded part is always lowercase hex of the right length, so two equal digests are
/// equal as strings too.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest \"\": a digest is empty (expected sha256:<64 lowercase hex digits>)")]
    Empty,
    #[error(
        "invalid digest {0:?}: missing the algorithm prefix (expected sha256:<64 lowercase hex digits>)"
    )]
    MissingAlgorithm(String),
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (supported: sha256, sha512)"
    )]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: {algorithm} needs {expected} hex digits, found {found}")]
    Length {
        input: String,
        algorithm: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "invalid digest {input:?}: {character:?} is not a lowercase hex digit (use 0-9 and a-f)"
    )]
    Alphabet { input: String, character: char },
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex-encoded hash, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first `n` hex digits, for messages (`sha256:ab12cd34ef56`).
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), &self.hex[..12])
    }

    /// Checks `bytes` against this digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), Mismatch> {
        let mut hasher = Hasher::new(self.algorithm);
        hasher.update(bytes);
        hasher.finish().expect(self)
    }
}

/// A blob whose content does not hash to the digest it was fetched by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content does not match its digest: expected {expected}, computed {actual}")]
pub struct Mismatch {
    pub expected: Digest,
    pub actual: Digest,
}

impl Digest {
    /// `Ok` when `self` (a computed digest) equals `expected`.
    pub fn expect(&self, expected: &Digest) -> Result<(), Mismatch> {
        if self == expected {
            Ok(())
        } else {
            Err(Mismatch {
                expected: expected.clone(),
                actual: self.clone(),
            })
        }
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Digest, DigestError> {
        if input.is_empty() {
            return Err(DigestError::Empty);
        }
        let Some((algorithm, encoded)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm(input.to_string()));
        };
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(DigestError::UnsupportedAlgorithm {
                    input: input.to_string(),
                    algorithm: other.to_string(),
                });
            }
        };
        if let Some(character) = encoded
            .chars()
            .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestError::Alphabet {
                input: input.to_string(),
                character,
            });
        }
        if encoded.len() != algorithm.hex_len() {
            return Err(DigestError::Length {
                input: input.to_string(),
                algorithm: algorithm.as_str(),
                expected: algorithm.hex_len(),
                found: encoded.len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental digest computation.
pub struct Hasher {
    algorithm: Algorithm,
    context: ring::digest::Context,
    bytes: u64,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let ring_algorithm = match algorithm {
            Algorithm::Sha256 => &ring::digest::SHA256,
            Algorithm::Sha512 => &ring::digest::SHA512,
        };
        Hasher {
            algorithm,
            context: ring::digest::Context::new(ring_algorithm),
            bytes: 0,
        }
    }

    pub fn sha256() -> Hasher {
        Hasher::new(Algorithm::Sha256)
    }

    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.context.update(data);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            algorithm: self.algorithm,
            hex: hex::encode(self.context.finish()),
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes what passes through it and, at end of stream, fails with
/// [`io::ErrorKind::InvalidData`] if the content does not match the expected digest and size.
///
/// Consumers that stream a blob to its destination therefore never see a successful end of
/// stream for altered content: the final `read` returns the error instead of `Ok(0)`.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Option<Hasher>,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        let hasher = Some(Hasher::new(expected.algorithm()));
        VerifyingReader {
            inner,
            expected,
            expected_size,
            hasher,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(n);
        };
        if n > 0 {
            hasher.update(&buf[..n]);
            if let Some(size) = self.expected_size.filter(|size| hasher.len() > *size) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is larger than its descriptor's size {size}",
                        self.expected
                    ),
                ));
            }
            return Ok(n);
        }
        let hasher = self.hasher.take().expect("checked above");
        let size = hasher.len();
        if let Some(expected_size) = self.expected_size.filter(|s| *s != size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} has {size} bytes, its descriptor says {expected_size}",
                    self.expected
                ),
            ));
        }
        hasher
            .finish()
            .expect(&self.expected)
            .map_err(|mismatch| io::Error::new(io::ErrorKind::InvalidData, mismatch))?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(Digest::sha256(b"").to_string(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>().unwrap(), Digest::sha256(b""));
    }

    #[test]
    fn verifying_reader_accepts_matching_content() {
        let digest = Digest::sha256(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], digest, Some(5))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn verifying_reader_rejects_altered_content() {
        let digest = Digest::sha256(b"hello");
        let err = VerifyingReader::new(&b"hellO"[..], digest.clone(), None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
    }

    #[test]
    fn verifying_reader_rejects_wrong_size() {
        let digest = Digest::sha256(b"hello");
        let err = VerifyingReader::new(&b"hello"[..], digest, Some(4))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
