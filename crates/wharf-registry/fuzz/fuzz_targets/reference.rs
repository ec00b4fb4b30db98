//! `Reference` parsing: never panics, and what it prints parses back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<Reference>() {
        Ok(parsed) => {
            let printed = parsed.to_string();
            assert_eq!(
                printed.parse::<Reference>(),
                Ok(parsed.clone()),
                "{s:?} printed as {printed:?}"
            );
            // The parts of a valid reference build it again.
            let rebuilt = Reference::new(
                parsed.registry(),
                parsed.repository(),
                parsed.tag(),
                parsed.digest().cloned(),
            );
            assert_eq!(rebuilt, Ok(parsed), "{s:?} rebuilt from its parts");
        }
        // Messages quote and slice the input: formatting them must not panic either.
        Err(e) => drop(e.to_string()),
    }
});
