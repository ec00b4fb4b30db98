//! A bounded, seeded fuzz loop: random and mutated layers never panic, never make `check`
//! fail, and garbage is never taken for a clean layer. Set WHARF_FUZZ_SEED to replay a run.

mod common;

use common::{Layer, Tar, gzip, image_of};
use wharf_imagecheck::{Limits, Policy, check};
use wharf_oci::media_type;

const ITERATIONS: usize = 300;

fn seed() -> u64 {
    std::env::var("WHARF_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1a7e)
}

fn policy() -> Policy {
    // Small limits keep every iteration fast, whatever sizes the bytes claim.
    Policy {
        limits: Limits {
            max_layer_bytes: 1 << 20,
            max_entries: 1000,
        },
        ..Policy::default()
    }
}

/// A valid layer with a bit of everything the scanner looks at.
fn valid_tar() -> Vec<u8> {
    Tar::new()
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0::/:/bin/sh\n")
        .symlink("a", "b")
        .symlink("b", "etc/passwd")
        .hardlink("c", "etc/passwd")
        .file("app/.env", 0o644, b"A=1\n")
        .file("app/.wh.gone", 0o644, b"")
        .file("app/data", 0o666, &[42; 700])
        .finish()
}

#[test]
fn random_bytes_as_layers_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for i in 0..ITERATIONS {
        let len = rng.usize(1..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let media = if rng.bool() {
            media_type::OCI_LAYER_GZIP
        } else {
            media_type::OCI_LAYER_TAR
        };
        let report = check(&image_of(vec![Layer::blob(media, bytes)]), &policy())
            .unwrap_or_else(|e| panic!("iteration {i}: {e}"));
        assert!(
            !report.passed(),
            "iteration {i}: random bytes passed as a layer"
        );
    }
}

#[test]
fn mutated_layers_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed());
    let valid = valid_tar();
    for i in 0..ITERATIONS {
        let mut tar = valid.clone();
        match rng.u8(0..3) {
            // Random bytes anywhere, headers included (their checksums then fail).
            0 => {
                for _ in 0..rng.usize(1..8) {
                    let at = rng.usize(..tar.len());
                    tar[at] = rng.u8(..);
                }
            }
            // Mutations inside one header, with its checksum fixed, so parsing goes on to
            // the fields: sizes, types, names and link names of any shape.
            1 => {
                let block = rng.usize(..tar.len() / 512) * 512;
                for _ in 0..rng.usize(1..6) {
                    let at = block + rng.usize(..512);
                    tar[at] = rng.u8(..);
                }
                let mut header = tar::Header::new_old();
                header
                    .as_mut_bytes()
                    .copy_from_slice(&tar[block..block + 512]);
                header.set_cksum();
                tar[block..block + 512].copy_from_slice(header.as_bytes());
            }
            // Truncation anywhere.
            _ => tar.truncate(rng.usize(..tar.len())),
        }
        let layer = if rng.bool() {
            Layer::gz(tar)
        } else {
            let mut blob = gzip(&tar);
            blob.truncate(rng.usize(1..=blob.len()));
            Layer::blob(media_type::OCI_LAYER_GZIP, blob)
        };
        check(&image_of(vec![layer]), &policy()).unwrap_or_else(|e| panic!("iteration {i}: {e}"));
    }
}
