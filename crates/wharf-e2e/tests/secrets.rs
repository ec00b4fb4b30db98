//! Every registry command run with a password set and every log on (`RUST_LOG=trace`): the
//! password appears nowhere in stdout, stderr or `--json` output, whether the command
//! succeeds or fails, although the logs show each request.

use std::process::{Command, Output};

use wharf_e2e::registry::{Auth, Registry};
use wharf_e2e::{example_image, xtask_binary};

const USER: &str = "deployer";
const PASSWORD: &str = "Hunter2-very-secret-Pa55word";

fn xtask(args: &[&str], password: &str) -> Output {
    let mut command = Command::new(xtask_binary());
    // `scan --attach` reads the advisory database: the snapshot, never the network.
    if let Some(db) = wharf_e2e::advisory_db() {
        command.env("WHARF_ADVISORY_DB", db);
    }
    command
        .args(args)
        .env("WHARF_REGISTRY_USERNAME", USER)
        .env("WHARF_REGISTRY_PASSWORD", password)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap()
}

fn assert_clean(what: &str, out: &Output, secret: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let base64 = base64_of(&format!("{USER}:{secret}"));
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains(secret),
            "{what}: password in {name}:\n{text}"
        );
        assert!(
            !text.contains(&base64),
            "{what}: base64 credentials in {name}:\n{text}"
        );
    }
}

fn base64_of(text: &str) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn no_command_prints_the_password() {
    let Some(registry) = Registry::try_start(Auth::htpasswd(USER, PASSWORD)) else {
        return;
    };
    let host = registry.host();
    let built = example_image();
    let layout = format!("oci:{}:{}", built.layout.display(), built.tag);
    let repo = format!("docker://{host}/secret/app");

    let mut ran = 0;
    for (json, password, should_pass) in [
        (false, PASSWORD, true),
        (true, PASSWORD, true),
        (false, "wrong-Pa55word-also-secret", false),
        (true, "wrong-Pa55word-also-secret", false),
    ] {
        let flag: &[&str] = if json { &["--json"] } else { &[] };
        let commands: Vec<Vec<String>> = vec![
            ["copy", &layout, &format!("{repo}:v1")]
                .map(String::from)
                .to_vec(),
            [
                "copy",
                &format!("{repo}:v1"),
                &format!("docker://{host}/secret/other:v1"),
            ]
            .map(String::from)
            .to_vec(),
            ["tag", &format!("{repo}:v1"), "v2"]
                .map(String::from)
                .to_vec(),
            ["push", &repo].map(String::from).to_vec(),
            // Attaching scan results, and reading them back.
            [
                "scan",
                "--image",
                &layout,
                "--attach",
                &format!("{repo}:v1"),
            ]
            .map(String::from)
            .to_vec(),
            ["referrers", &format!("{repo}:v1")]
                .map(String::from)
                .to_vec(),
        ];
        for command in commands {
            let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
            args.extend_from_slice(flag);
            if command[0] == "push" {
                // push sends what `cargo xtask image` built in this checkout.
                let image = xtask(&["image", "--json"], password);
                assert!(
                    image.status.success(),
                    "{}",
                    String::from_utf8_lossy(&image.stderr)
                );
            }
            let out = xtask(&args, password);
            assert_eq!(
                out.status.success(),
                should_pass,
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let reports_a_digest = !matches!(command[0].as_str(), "scan" | "referrers");
            if json && should_pass && reports_a_digest {
                let value: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON object: {e}"));
                assert!(value.get("digest").is_some(), "{value}");
            }
            assert_clean(&format!("{args:?}"), &out, password);
            // The logs were on: the requests, with the registry's answer, are in them.
            let stderr = String::from_utf8_lossy(&out.stderr);
            if command[0] == "copy" {
                assert!(
                    stderr.contains(&format!("http://{host}/v2/")) && stderr.contains("401"),
                    "{args:?}: no request in the trace logs:\n{stderr}"
                );
            }
            ran += 1;
        }
    }
    assert_eq!(ran, 24);
}
