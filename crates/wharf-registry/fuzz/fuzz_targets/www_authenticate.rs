//! `WWW-Authenticate` headers and token scopes: parsing never panics; a repository scope
//! written by `scope` reads back as the same parts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_registry::challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match challenge::parse(s) {
        Ok(challenges) => {
            assert!(!challenges.is_empty(), "{s:?} parsed to no challenge");
            for c in &challenges {
                drop((c.realm(), c.service(), c.scheme.to_string()));
                for one in c.scope().unwrap_or("").split_whitespace() {
                    drop(challenge::parse_scope(one));
                }
            }
        }
        Err(e) => drop(e.to_string()),
    }
    if let Some(parts) = challenge::parse_scope(s)
        && parts.0 == "repository"
    {
        let actions: Vec<&str> = parts.2.iter().map(String::as_str).collect();
        let written = challenge::scope(&parts.1, &actions);
        assert_eq!(
            challenge::parse_scope(&written),
            Some(parts.clone()),
            "{s:?} written back as {written:?}"
        );
    }
});
