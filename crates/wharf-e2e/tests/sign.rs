//! Signatures (issue 13): `cargo xtask keygen`, `sign` and `verify` against the real
//! registry, and each signature checked by tools that are not wharf: the `.sig` manifest read
//! with skopeo, the payload fetched over plain HTTP by Python, the signature checked with
//! `openssl dgst -sha256 -verify`, the payload's fields read by name.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;
use wharf::oci::{Digest, Reference};
use wharf::registry::{Client, Config};
use wharf_e2e::registry::{Auth, Registry, write_tiny_image};
use wharf_e2e::{describe, fails_with, ok_json, require, require_skopeo, run, xtask_binary};

fn xtask(args: &[&str]) -> Output {
    Command::new(xtask_binary())
        .args(args)
        .env_remove("WHARF_SIGNING_KEY")
        .output()
        .unwrap()
}

/// A loopback registry holding a tiny image at `REPO:v1`; its digest.
fn registry_with_image(dir: &Path, repo: &str) -> Option<(Registry, String)> {
    let registry = Registry::try_start(Auth::None)?;
    let layout = dir.join(format!("layout-{}", repo.replace('/', "-")));
    let tiny = write_tiny_image(&layout, "v1", repo.as_bytes());
    let source = format!("oci:{}:v1", layout.display());
    let out = xtask(&[
        "copy",
        &source,
        &format!("docker://{}/{repo}:v1", registry.host()),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    Some((registry, tiny.manifest_digest))
}

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let prefix = dir.join(name);
    let out = ok_json(xtask(&[
        "keygen",
        "--json",
        "--output-key-prefix",
        prefix.to_str().unwrap(),
    ]));
    let private = out["private_key"].as_str().unwrap().to_string();
    let public = out["public_key"].as_str().unwrap().to_string();
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is for its owner only");
    (private, public)
}

/// What skopeo (not wharf) reads as the raw manifest at `reference`.
fn skopeo_raw(reference: &str) -> Value {
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A blob's bytes fetched by Python's urllib from the registry's HTTP API.
fn python_blob(host: &str, repo: &str, digest: &str) -> Vec<u8> {
    python_blob_at(host, &format!("{repo}/blobs/{digest}"), "*/*")
}

/// openssl and Python, which check what wharf wrote without wharf's code.
fn independent_checkers() -> bool {
    require("openssl", &["version"], "apt-get install openssl")
        && require("python3", &["--version"], "apt-get install python3")
}

#[test]
fn a_signature_wharf_makes_verifies_with_openssl_and_has_cosigns_fields() {
    if !require_skopeo() || !independent_checkers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, digest)) = registry_with_image(dir.path(), "team/app") else {
        return;
    };
    let host = registry.host();
    let (key, public) = keygen(dir.path(), "cosign");
    let image = format!("docker://{host}/team/app:v1");

    let signed = ok_json(xtask(&["sign", &image, "--key", &key, "--json"]));
    assert_eq!(signed["added"], true);
    assert_eq!(signed["count"], 1);
    let verified = ok_json(xtask(&["verify", &image, "--key", &public, "--json"]));
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["image"], digest.as_str());
    assert_eq!(verified["matched_keys"].as_array().unwrap().len(), 1);

    // cosign's tag, read by skopeo.
    let hex = digest.strip_prefix("sha256:").unwrap();
    let manifest = skopeo_raw(&format!("{host}/team/app:sha256-{hex}.sig"));
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let annotation = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();

    // The payload, fetched by Python, read by field name as cosign's spec names them.
    let payload = python_blob(&host, "team/app", layer["digest"].as_str().unwrap());
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        format!("{host}/team/app")
    );
    assert!(claims.get("optional").is_some());

    // The signature, checked by openssl over the payload's bytes.
    let payload_path = dir.path().join("payload.json");
    let signature_path = dir.path().join("sig.der");
    std::fs::write(&payload_path, &payload).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(annotation)
        .unwrap();
    std::fs::write(&signature_path, &der).unwrap();
    let openssl = |public: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", public, "-signature"])
            .arg(&signature_path)
            .arg(&payload_path)
            .output()
            .unwrap()
    };
    let out = openssl(&public);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    // ...and refused by openssl with another key: the check can fail.
    let (_, other_public) = keygen(dir.path(), "other");
    assert!(!openssl(&other_public).status.success());
}

#[test]
fn signing_again_keeps_earlier_signatures_and_verify_names_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, digest)) = registry_with_image(dir.path(), "team/app") else {
        return;
    };
    let host = registry.host();
    let image = format!("docker://{host}/team/app:v1");
    let (first, first_pub) = keygen(dir.path(), "first");
    let (second, second_pub) = keygen(dir.path(), "second");
    let (_, stranger_pub) = keygen(dir.path(), "stranger");

    ok_json(xtask(&["sign", &image, "--key", &first, "--json"]));
    let again = ok_json(xtask(&["sign", &image, "--key", &first, "--json"]));
    assert_eq!(again["added"], false, "the same key twice writes nothing");
    assert_eq!(again["count"], 1);
    let both = ok_json(xtask(&["sign", &image, "--key", &second, "--json"]));
    assert_eq!(both["count"], 2, "earlier signatures are kept");
    for public in [&first_pub, &second_pub] {
        ok_json(xtask(&["verify", &image, "--key", public, "--json"]));
    }

    // The wrong key: exit 3, the check named.
    let out = xtask(&["verify", &image, "--key", &stranger_pub]);
    fails_with(&out, 3, &["not verified", "no given key"]);

    // A signature copied from another image: the payload names the other digest.
    let registry_client = Client::new(Config::new()).unwrap();
    let other = write_tiny_image(&dir.path().join("other"), "v1", b"another image");
    let out = xtask(&[
        "copy",
        &format!("oci:{}:v1", dir.path().join("other").display()),
        &format!("docker://{host}/team/app:v2"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let from: Digest = digest.parse().unwrap();
    let to: Digest = other.manifest_digest.parse().unwrap();
    let sig = |d: &Digest| -> Reference {
        format!("{host}/team/app:sha256-{}.sig", d.hex())
            .parse()
            .unwrap()
    };
    let stolen = registry_client.manifest(&sig(&from)).unwrap();
    registry_client
        .put_manifest(
            &host,
            "team/app",
            sig(&to).tag().unwrap(),
            &stolen.media_type,
            &stolen.bytes,
        )
        .unwrap();
    let out = xtask(&[
        "verify",
        &format!("docker://{host}/team/app:v2"),
        "--key",
        &first_pub,
    ]);
    fails_with(&out, 3, &["not this image", &digest]);

    // A truncated annotation, stored in the registry: the signature check fails.
    let mut manifest: Value = serde_json::from_slice(&stolen.bytes).unwrap();
    let annotation = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        Value::String(annotation[..annotation.len() - 3].to_string());
    registry_client
        .put_manifest(
            &host,
            "team/app",
            sig(&from).tag().unwrap(),
            &stolen.media_type,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    let out = xtask(&["verify", &image, "--key", &first_pub]);
    fails_with(&out, 3, &["signature 1", "not base64"]);
    // The second signature (another layer) is untouched and still verifies.
    ok_json(xtask(&["verify", &image, "--key", &second_pub, "--json"]));
}

#[test]
fn keys_are_checked_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "cosign");
    // keygen refuses to overwrite.
    let out = xtask(&[
        "keygen",
        "--output-key-prefix",
        dir.path().join("cosign").to_str().unwrap(),
    ]);
    fails_with(&out, 2, &["exists", "--force"]);
    // A private key others can read is refused, naming the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = xtask(&["sign", "docker://127.0.0.1:9/none:v1", "--key", &key]);
    fails_with(&out, 2, &["mode 0644", "chmod 600"]);
    // The public key where the private one belongs.
    let out = xtask(&["sign", "docker://127.0.0.1:9/none:v1", "--key", &public]);
    fails_with(&out, 2, &["public half"]);
    // env://NAME: the variable is named when missing; its content is used when set.
    let out = xtask(&[
        "sign",
        "docker://127.0.0.1:9/none:v1",
        "--key",
        "env://WHARF_SIGNING_KEY",
    ]);
    fails_with(&out, 2, &["WHARF_SIGNING_KEY is not set"]);
}

/// `copy` takes the signatures along (and referrers), so `verify` passes in the copy's
/// repository; `--no-signatures` leaves them behind, and `verify` fails there.
#[test]
fn copies_carry_signatures_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, digest)) = registry_with_image(dir.path(), "team/app") else {
        return;
    };
    let host = registry.host();
    let (key, public) = keygen(dir.path(), "cosign");
    ok_json(xtask(&[
        "sign",
        &format!("docker://{host}/team/app:v1"),
        "--key",
        &key,
        "--json",
    ]));

    let copied = ok_json(xtask(&[
        "copy",
        "--json",
        &format!("docker://{host}/team/app:v1"),
        &format!("docker://{host}/other/app:v1"),
    ]));
    assert_eq!(copied["signatures"], 1, "{copied}");
    assert_eq!(
        copied["bytes_uploaded"], 0,
        "mounted within the registry: {copied}"
    );
    let verified = ok_json(xtask(&[
        "verify",
        &format!("docker://{host}/other/app:v1"),
        "--key",
        &public,
        "--json",
    ]));
    assert_eq!(verified["image"], digest.as_str());
    // The .sig manifest was copied byte for byte: the same digest in both repositories.
    let sig_tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    let client = Client::new(Config::new()).unwrap();
    let digest_in = |repo: &str| {
        let reference: Reference = format!("{host}/{repo}:{sig_tag}").parse().unwrap();
        client.manifest(&reference).unwrap().digest
    };
    assert_eq!(digest_in("team/app"), digest_in("other/app"));

    let bare = ok_json(xtask(&[
        "copy",
        "--json",
        "--no-signatures",
        &format!("docker://{host}/team/app:v1"),
        &format!("docker://{host}/bare/app:v1"),
    ]));
    assert_eq!(bare["signatures"], 0);
    let out = xtask(&[
        "verify",
        &format!("docker://{host}/bare/app:v1"),
        "--key",
        &public,
    ]);
    fails_with(&out, 3, &["not verified", "has no signatures"]);
}

/// `sign --provenance` attaches SLSA provenance in a DSSE envelope; `verify --provenance`
/// accepts it. Checked independently: Python decodes the envelope (base64, JSON) and writes
/// the PAE, openssl checks the signature over it, and the statement's subject is the image.
#[test]
fn provenance_is_a_signed_dsse_envelope_about_the_image() {
    if !independent_checkers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, digest)) = registry_with_image(dir.path(), "team/app") else {
        return;
    };
    let host = registry.host();
    let ws = wharf_e2e::fixture_workspace("[image]\npackage = \"app\"\n");
    let (key, public) = keygen(dir.path(), "cosign");
    let image = format!("docker://{host}/team/app:v1");
    let env = [("GITHUB_ACTOR", "ci")];
    let signed = ok_json(wharf_e2e::xtask_in(
        ws.path(),
        &["sign", &image, "--key", &key, "--provenance", "--json"],
        &env,
    ));
    let envelope_digest = signed["provenance"].as_str().unwrap().to_string();
    let verified = ok_json(xtask(&[
        "verify",
        &image,
        "--key",
        &public,
        "--provenance",
        "--json",
    ]));
    assert_eq!(verified["verified"], true, "{verified}");
    let commit = String::from_utf8(
        run(Command::new("git")
            .arg("-C")
            .arg(ws.path())
            .args(["rev-parse", "HEAD"]))
        .stdout,
    )
    .unwrap();
    assert_eq!(verified["provenance"][0]["check"], "verified");
    assert_eq!(verified["provenance"][0]["commit"], commit.trim());

    // The envelope's manifest and bytes, fetched by Python from the registry's HTTP API.
    let manifest: Value = serde_json::from_slice(&python_blob_at(
        &host,
        &format!("team/app/manifests/{envelope_digest}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(manifest["subject"]["digest"], digest.as_str());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let envelope_path = dir.path().join("envelope.json");
    std::fs::write(&envelope_path, python_blob(&host, "team/app", layer)).unwrap();
    // Python: decode the envelope, write the PAE and the DER signature, print the statement.
    let script = r#"
import base64, json, sys
env = json.load(open(sys.argv[1]))
payload = base64.b64decode(env["payload"])
ptype = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
open(sys.argv[2], "wb").write(pae)
open(sys.argv[3], "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
print(json.dumps(json.loads(payload)))
"#;
    let (pae, sig) = (dir.path().join("pae.bin"), dir.path().join("dsse.der"));
    let out = run(Command::new("python3")
        .args(["-c", script])
        .args([&envelope_path, &pae, &sig]));
    let statement: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );
    let deps = &statement["predicate"]["buildDefinition"]["resolvedDependencies"];
    assert_eq!(deps[0]["digest"]["gitCommit"], commit.trim());
    let lock = std::fs::read(ws.path().join("Cargo.lock")).unwrap();
    assert_eq!(deps[1]["uri"], "Cargo.lock");
    assert_eq!(deps[1]["digest"]["sha256"], Digest::sha256(&lock).hex());
    let openssl = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", &public, "-signature"])
        .arg(&sig)
        .arg(&pae));
    assert_eq!(
        String::from_utf8_lossy(&openssl.stdout).trim(),
        "Verified OK"
    );

    // Without provenance, `verify --provenance` fails and says so.
    let bare = ok_json(xtask(&[
        "copy",
        "--json",
        "--no-signatures",
        &image,
        &format!("docker://{host}/bare/app:v1"),
    ]));
    assert_eq!(bare["referrers"], 0);
    ok_json(xtask(&[
        "sign",
        &format!("docker://{host}/bare/app:v1"),
        "--key",
        &key,
        "--json",
    ]));
    let out = xtask(&[
        "verify",
        &format!("docker://{host}/bare/app:v1"),
        "--key",
        &public,
        "--provenance",
    ]);
    fails_with(
        &out,
        3,
        &["provenance is not verified", "no provenance is attached"],
    );
}

/// Any registry path fetched by Python's urllib with an Accept header.
fn python_blob_at(host: &str, path: &str, accept: &str) -> Vec<u8> {
    run(Command::new("python3").args([
        "-c",
        "import sys, urllib.request; r = urllib.request.Request(sys.argv[1], headers={'Accept': sys.argv[2]}); sys.stdout.buffer.write(urllib.request.urlopen(r).read())",
        &format!("http://{host}/v2/{path}"),
        accept,
    ]))
    .stdout
}

/// A key in cosign's encrypted format, written by Python (cryptography makes the P-256 key,
/// hashlib's scrypt and PyNaCl's secretbox seal it, as go-securesystemslib does), signs with
/// its password in COSIGN_PASSWORD, and its public half, as Python wrote it, verifies.
#[test]
fn an_encrypted_cosign_key_signs_with_its_password() {
    if !require(
        "python3",
        &["-c", "import nacl.secret, cryptography"],
        "pip install pynacl cryptography",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, _)) = registry_with_image(dir.path(), "team/app") else {
        return;
    };
    let script = r#"
import base64, hashlib, json, os, sys, textwrap
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption())
salt, nonce = os.urandom(32), os.urandom(24)
n, r, p = 32768, 8, 1
box_key = hashlib.scrypt(sys.argv[1].encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                         maxmem=64 * 1024 * 1024)
sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
body = json.dumps({
    "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p},
            "salt": base64.b64encode(salt).decode()},
    "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
    "ciphertext": base64.b64encode(sealed).decode(),
}).encode()
lines = textwrap.wrap(base64.b64encode(body).decode(), 64)
pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + \
      "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, pem.encode())
os.close(fd)
open(sys.argv[3], "wb").write(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;
    let (key, public) = (dir.path().join("enc.key"), dir.path().join("enc.pub"));
    run(Command::new("python3")
        .args(["-c", script, "correct horse"])
        .args([&key, &public]));
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());
    let image = format!("docker://{}/team/app:v1", registry.host());
    let sign = |password: Option<&str>| {
        let mut command = Command::new(xtask_binary());
        command.args(["sign", &image, "--key", key, "--json"]);
        match password {
            Some(password) => command.env("COSIGN_PASSWORD", password),
            None => command.env_remove("COSIGN_PASSWORD"),
        };
        command.output().unwrap()
    };
    fails_with(&sign(None), 2, &["encrypted cosign key", "COSIGN_PASSWORD"]);
    fails_with(
        &sign(Some("wrong")),
        2,
        &["password does not decrypt", "enc.key"],
    );
    let signed = ok_json(sign(Some("correct horse")));
    assert_eq!(signed["added"], true);
    let verified = ok_json(xtask(&["verify", &image, "--key", public, "--json"]));
    assert_eq!(verified["verified"], true);
}
