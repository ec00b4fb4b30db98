//! `Digest` and `Location` parsing: never panics, and what each prints parses back to the
//! same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::{Digest, Location};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<Digest>() {
        Ok(digest) => {
            let printed = digest.to_string();
            drop(digest.short());
            assert_eq!(
                printed.parse::<Digest>(),
                Ok(digest),
                "{s:?} printed as {printed:?}"
            );
        }
        Err(e) => drop(e.to_string()),
    }
    match s.parse::<Location>() {
        Ok(location) => {
            let printed = location.to_string();
            assert_eq!(
                printed.parse::<Location>(),
                Ok(location),
                "{s:?} printed as {printed:?}"
            );
        }
        Err(e) => drop(e.to_string()),
    }
});
