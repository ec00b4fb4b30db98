//! Table tests for everything users type: digests, references, tags and locations.

use wharf_oci::{Digest, Location, Reference};

const HEX64: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Checks that `input` parses to `expected` (the fully qualified form).
fn check_ok(input: &str, expected: &str) {
    let parsed: Reference = input
        .parse()
        .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
    assert_eq!(parsed.to_string(), expected, "parsing {input:?}");
}

/// Checks that `input` is rejected with a message containing `fragment`.
fn check_err(input: &str, fragment: &str) {
    match input.parse::<Reference>() {
        Ok(parsed) => panic!("{input:?} should be rejected, parsed as {parsed}"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(fragment),
                "error for {input:?} should mention {fragment:?}: {message}"
            );
        }
    }
}

#[test]
fn valid_references_get_docker_defaults() {
    let digest = format!("sha256:{HEX64}");
    for (input, expected) in [
        ("alpine", "docker.io/library/alpine:latest".to_string()),
        ("alpine:3.20", "docker.io/library/alpine:3.20".into()),
        ("user/app", "docker.io/user/app:latest".into()),
        ("docker.io/alpine", "docker.io/library/alpine:latest".into()),
        ("localhost/app", "localhost/app:latest".into()),
        ("localhost:5000/app:v1", "localhost:5000/app:v1".into()),
        (
            "127.0.0.1:5000/team/app:1.2.3",
            "127.0.0.1:5000/team/app:1.2.3".into(),
        ),
        ("[::1]:5000/app", "[::1]:5000/app:latest".into()),
        (
            "ghcr.io/org/a.b_c__d---e:x",
            "ghcr.io/org/a.b_c__d---e:x".into(),
        ),
        (
            &format!("ghcr.io/org/app@{digest}"),
            format!("ghcr.io/org/app@{digest}"),
        ),
        (
            &format!("ghcr.io/org/app:v1@{digest}"),
            format!("ghcr.io/org/app:v1@{digest}"),
        ),
        (
            "Registry.Example.com/app",
            "Registry.Example.com/app:latest".into(),
        ),
        (
            &format!("app:{}", "t".repeat(128)),
            format!("docker.io/library/app:{}", "t".repeat(128)),
        ),
    ] {
        check_ok(input, &expected);
    }
}

#[test]
fn malformed_references_are_rejected_with_a_reason() {
    let long_repo = format!("example.com/{}", "a".repeat(250));
    let long_tag = format!("app:{}", "t".repeat(129));
    let cases: &[(&str, &str)] = &[
        ("", "is empty"),
        ("Alpine", "must be lowercase"),
        ("docker.io/Team/app", "must be lowercase"),
        ("app:", "tag after ':' is empty"),
        (&long_tag, "tag is 129 characters, the limit is 128"),
        ("app:-x", "must start with a letter, digit or '_'"),
        ("app:.x", "must start with a letter, digit or '_'"),
        ("app:a/b", "invalid port"),
        ("app:v1+build", "contains '+'"),
        ("app:v1!", "contains '!'"),
        ("app@sha256:abc", "needs 64 hex digits, found 3"),
        ("app@sha256:", "needs 64 hex digits, found 0"),
        (
            &format!("app@sha256:{}", HEX64.to_uppercase()),
            "is not a lowercase hex digit",
        ),
        (
            &format!("app@sha256:{}g", &HEX64[..63]),
            "'g' is not a lowercase hex digit",
        ),
        (&format!("app@md5:{HEX64}"), "unsupported algorithm \"md5\""),
        (&format!("app@{HEX64}"), "missing the algorithm prefix"),
        ("app@", "digest \"\""),
        ("example.com//app", "is empty (remove the doubled"),
        ("example.com/app/", "is empty"),
        ("/app", "is empty"),
        (
            "example.com/-app",
            "must start and end with a letter or digit",
        ),
        (
            "example.com/app-",
            "must start and end with a letter or digit",
        ),
        ("example.com/a..b", "invalid separator"),
        ("example.com/a___b", "invalid separator"),
        ("example.com/a$b", "has '$'"),
        ("example.com/a b", "has ' '"),
        ("exa_mple.com/app", "not a valid host name"),
        ("-example.com/app", "not a valid host name"),
        ("example.com:/app", "invalid port"),
        ("example.com:99999x/app", "invalid port"),
        ("[::1/app", "unclosed '['"),
        ("[zz]:5000/app", "not a valid IPv6 address"),
        (&long_repo, "the limit is 255"),
    ];
    assert!(cases.len() >= 20);
    for (input, fragment) in cases {
        check_err(input, fragment);
    }
}

#[test]
fn digest_round_trips_and_rejects_bad_input() {
    let text = format!("sha256:{HEX64}");
    let digest: Digest = text.parse().unwrap();
    assert_eq!(digest.to_string(), text);
    assert_eq!(digest.hex(), HEX64);
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    assert_eq!(sha512.parse::<Digest>().unwrap().to_string(), sha512);
    for (bad, fragment) in [
        ("", "empty"),
        ("sha256", "missing the algorithm prefix"),
        ("sha256:", "found 0"),
        (&format!("sha256:{HEX64}00") as &str, "found 66"),
        (&format!("sha512:{HEX64}"), "sha512 needs 128 hex digits"),
        (&format!("SHA256:{HEX64}"), "unsupported algorithm"),
        (
            &format!("sha256:{}Z", &HEX64[..63]),
            "'Z' is not a lowercase hex digit",
        ),
        (
            &format!("sha256: {}", &HEX64[..63]),
            "' ' is not a lowercase hex digit",
        ),
    ] {
        let err = bad.parse::<Digest>().unwrap_err().to_string();
        assert!(err.contains(fragment), "{bad:?}: {err}");
    }
}

#[test]
fn locations_use_skopeo_syntax() {
    for (input, display) in [
        (
            "oci:target/wharf/layout:hello",
            "oci:target/wharf/layout:hello",
        ),
        ("oci:/tmp/x", "oci:/tmp/x"),
        (
            "docker://localhost:5000/app:v1",
            "docker://localhost:5000/app:v1",
        ),
        (
            "docker-daemon:app:v1",
            "docker-daemon:docker.io/library/app:v1",
        ),
    ] {
        let location: Location = input.parse().unwrap();
        assert_eq!(location.to_string(), display);
    }
    for (bad, fragment) in [
        ("target/layout", "expected oci:DIR[:TAG]"),
        ("oci::tag", "directory is empty"),
        ("oci:dir:-bad", "must start with"),
        ("docker://Bad/App", "must be lowercase"),
    ] {
        let err = bad.parse::<Location>().unwrap_err().to_string();
        assert!(err.contains(fragment), "{bad:?}: {err}");
    }
}
