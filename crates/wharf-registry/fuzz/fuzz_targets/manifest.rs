//! Manifest, index and config JSON: parsing never panics, and canonical JSON is a fixed point
//! (what `canonical_json` writes parses, and writing that again gives the same bytes).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wharf_oci::{ImageConfig, Index, canonical_json, image};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = image::parse_manifest(data) {
        fixed_point("manifest", &manifest, |bytes| {
            image::parse_manifest(bytes).map_err(|e| e.to_string())
        });
    }
    if let Ok(index) = serde_json::from_slice::<Index>(data) {
        fixed_point("index", &index, json::<Index>);
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfig>(data) {
        fixed_point("config", &config, json::<ImageConfig>);
    }
});

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn fixed_point<T: Serialize>(what: &str, value: &T, parse: impl Fn(&[u8]) -> Result<T, String>) {
    let first = canonical_json(value);
    let reparsed = parse(&first).unwrap_or_else(|e| {
        panic!(
            "canonical {what} does not parse: {e}\n{:?}",
            String::from_utf8_lossy(&first)
        )
    });
    let second = canonical_json(&reparsed);
    assert!(
        first == second,
        "canonical {what} is not a fixed point:\n{:?}\n{:?}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
}
