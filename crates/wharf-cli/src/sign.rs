//! `cargo xtask keygen`, `sign` and `verify`: cosign-compatible signatures (see
//! `wharf-sign` for the format and `wharf_pipeline::sign` for the registry side).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use wharf_oci::Reference;
use wharf_pipeline::sign;
use wharf_sign::provenance::{Build, ProvenanceCheck};
use wharf_sign::{KeyPair, PublicKey};

use crate::{GateFailed, Session, UsageError, stdout, usage};

/// A key named `env://NAME` is read from that environment variable (as cosign's).
const ENV_PREFIX: &str = "env://";

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key (the private key, PKCS#8 PEM, mode 0600) and PREFIX.pub (the
    /// public key, as `cosign verify --key` reads it).
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    output_key_prefix: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The image: docker://HOST/REPO:TAG or @DIGEST (a tag is resolved: the digest is
    /// signed).
    image: String,
    /// The private key: a PKCS#8 PEM file (mode 0600 or stricter), or env://NAME for a
    /// variable holding the PEM (e.g. a CI secret). cosign's encrypted keys work too, with
    /// the password in COSIGN_PASSWORD.
    #[arg(long, value_name = "KEY")]
    key: String,
    /// Also attach SLSA provenance (in-toto v1, in a DSSE envelope signed with the same
    /// key) describing the build from this workspace: its config, commit and Cargo.lock.
    #[arg(long)]
    provenance: bool,
    #[arg(long)]
    json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The image: docker://HOST/REPO:TAG or @DIGEST.
    image: String,
    /// A public key (PEM `PUBLIC KEY`, e.g. cosign.pub) or env://NAME; repeat it to accept
    /// any of several keys.
    #[arg(long, value_name = "PUB", required = true)]
    key: Vec<String>,
    /// Also require each signature's docker-reference to be the image's repository (a
    /// signature made for the same digest in another repository then fails).
    #[arg(long)]
    check_reference: bool,
    /// Also require attached SLSA provenance signed by one of the keys whose subject is the
    /// image.
    #[arg(long)]
    provenance: bool,
    #[arg(long)]
    json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    let pair = KeyPair::generate()?;
    let private = with_suffix(&args.output_key_prefix, "key");
    let public = with_suffix(&args.output_key_prefix, "pub");
    if !args.force {
        for path in [&private, &public] {
            if path.exists() {
                return Err(usage(format!(
                    "{} exists: keygen does not overwrite keys (pass --force to replace it, \
                     or --output-key-prefix to write elsewhere)",
                    path.display()
                )));
            }
        }
    }
    write_file(&private, pair.private_pem().as_bytes(), 0o600, args.force)?;
    write_file(
        &public,
        pair.public_key().to_pem().as_bytes(),
        0o644,
        args.force,
    )?;
    let id = pair.public_key().id();
    if args.json {
        stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "private_key": private, "public_key": public, "key": id,
            }))?
        ))
    } else {
        stdout(&format!(
            "wrote {} (private: keep it secret, e.g. a CI secret) and {} (public: for \
             `cargo xtask verify --key` and `cosign verify --key`), key {id}\n",
            private.display(),
            public.display()
        ))
    }
}

pub fn sign(args: SignArgs, session: &Session) -> Result<()> {
    let image = crate::copy::parse_reference(&args.image)?;
    let key = read_private_key(&args.key)?;
    let build = match args.provenance {
        true => Some(build_facts(session)?),
        false => None,
    };
    let client = crate::copy::client(args.json, args.insecure)?;
    let signed = sign::sign(&client, &image, &key).with_context(|| format!("signing {image}"))?;
    let provenance = match &build {
        Some(build) => Some(
            sign::attach_provenance(&client, &image, &key, build)
                .with_context(|| format!("attaching provenance to {image}"))?,
        ),
        None => None,
    };
    if args.json {
        let mut out = serde_json::to_value(&signed)?;
        out["provenance"] = json!(provenance.as_ref().map(|a| a.digest.to_string()));
        return stdout(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    let what = if signed.added {
        "signed"
    } else {
        "already signed (nothing written)"
    };
    stdout(&format!(
        "{what} {} with key {}: {} holds {} signature(s)\n",
        signed.image, signed.key, signed.signatures, signed.count
    ))?;
    if let Some(attached) = provenance {
        stdout(&format!("attached provenance {}\n", attached.digest))?;
    }
    Ok(())
}

/// The key `[push] sign` names: `env://NAME`, or a file relative to the workspace root.
pub(crate) fn signing_key(
    session: &Session,
    config: &wharf_pipeline::config::SignConfig,
) -> Result<KeyPair> {
    let key = match config.key_variable() {
        Some(_) => config.key.clone(),
        None => session.root.join(&config.key).display().to_string(),
    };
    read_private_key(&key).with_context(|| {
        format!(
            "[push] sign.key in {} (the key the release signs with)",
            session.config_path.display()
        )
    })
}

/// Signs `image` (pushed by the release pipeline) as `[push] sign` says, logging to `log`.
pub(crate) fn sign_pushed(
    session: &Session,
    image: &Reference,
    config: &wharf_pipeline::config::SignConfig,
    log: &mut dyn std::io::Write,
) -> Result<sign::Signed> {
    let key = signing_key(session, config)?;
    let insecure = session
        .config()?
        .push
        .as_ref()
        .map(|p| p.insecure.clone())
        .unwrap_or_default();
    let client = crate::copy::client(true, insecure)?;
    let signed = sign::sign(&client, image, &key).with_context(|| format!("signing {image}"))?;
    let _ = writeln!(
        log,
        "signed {} with key {} ({} signature(s) in {})",
        signed.image, signed.key, signed.count, signed.signatures
    );
    if config.provenance {
        let build = build_facts(session)?;
        let attached = sign::attach_provenance(&client, image, &key, &build)
            .with_context(|| format!("attaching provenance to {image}"))?;
        let _ = writeln!(log, "attached provenance {} to {image}", attached.digest);
    }
    Ok(signed)
}

/// What the provenance says about a build from this workspace: the CI run's workflow when
/// on GitHub Actions (else wharf itself), the source repository and commit, the image
/// config, the Cargo.lock digest.
fn build_facts(session: &Session) -> Result<Build> {
    let root = &session.root;
    let git = wharf_source::git_facts(root).with_context(|| {
        format!(
            "reading the commit of {} for the provenance",
            root.display()
        )
    })?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let github = env("GITHUB_SERVER_URL").zip(env("GITHUB_REPOSITORY"));
    let source_repository = match &github {
        Some((server, repo)) => format!("{server}/{repo}"),
        None => std::process::Command::new("git")
            .args(["remote", "get-url", "origin"])
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| wharf_ledger::redact(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_else(|| format!("file://{}", root.display())),
    };
    let builder_id = match (&github, env("GITHUB_WORKFLOW_REF")) {
        (Some((server, _)), Some(workflow)) => format!("{server}/{workflow}"),
        _ => format!(
            "https://github.com/wharf-rs/wharf/tree/v{} (cargo xtask, not in CI)",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let invocation_id = github
        .as_ref()
        .zip(env("GITHUB_RUN_ID"))
        .map(|((server, repo), run)| {
            let attempt = env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
            format!("{server}/{repo}/actions/runs/{run}/attempts/{attempt}")
        });
    let config = session.config()?;
    let mut parameters = std::collections::BTreeMap::new();
    let config_path = session
        .config_path
        .strip_prefix(root)
        .unwrap_or(&session.config_path);
    parameters.insert("config".to_string(), json!(config_path));
    if let Some(image) = &config.image {
        parameters.insert("image".to_string(), serde_json::to_value(image)?);
    }
    let cargo_lock_sha256 = std::fs::read(root.join("Cargo.lock"))
        .ok()
        .map(|lock| wharf_oci::Digest::sha256(&lock).hex().to_string());
    let base_image = config.image.as_ref().and_then(|image| {
        let (name, digest) = image.base.split_once('@')?;
        Some((name.to_string(), digest.parse().ok()?))
    });
    Ok(Build {
        builder_id,
        source_repository,
        source_commit: git.sha,
        parameters,
        cargo_lock_sha256,
        base_image,
        invocation_id,
    })
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let image = crate::copy::parse_reference(&args.image)?;
    let keys = args
        .key
        .iter()
        .map(|key| read_public_key(key, None))
        .collect::<Result<Vec<_>>>()?;
    let client = crate::copy::client(args.json, args.insecure)?;
    let verification = sign::verify(&client, &image, &keys, args.check_reference)
        .with_context(|| format!("verifying {image}"))?;
    let provenance = match args.provenance {
        true => Some(
            sign::verify_provenance(&client, &image, &keys)
                .with_context(|| format!("verifying the provenance of {image}"))?,
        ),
        false => None,
    };
    let provenance_ok = provenance.as_ref().is_none_or(|checks| {
        checks
            .iter()
            .any(|(_, c)| matches!(c, ProvenanceCheck::Verified { .. }))
    });
    let verified = verification.verified() && provenance_ok;
    let name = format!("{}@{}", sign::repository_of(&image), verification.image);
    if args.json {
        let provenance = provenance.as_ref().map(|checks| {
            checks
                .iter()
                .map(|(digest, check)| {
                    let mut v = serde_json::to_value(check).unwrap_or_default();
                    v["envelope"] = json!(digest);
                    v
                })
                .collect::<Vec<_>>()
        });
        stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "verified": verified,
                "matched_keys": verification.matched_keys(),
                "image": verification.image,
                "signatures": verification.layers,
                "provenance": provenance,
            }))?
        ))?;
    } else if verified {
        stdout(&format!(
            "verified {name}: signed by key {}\n",
            verification.matched_keys().join(", ")
        ))?;
        for (_, check) in provenance.iter().flatten() {
            if let ProvenanceCheck::Verified { .. } = check {
                stdout(&format!("provenance {check}\n"))?;
            }
        }
    }
    if !verification.verified() {
        return Err(GateFailed(format!(
            "{name} is not verified by the given keys:\n{}",
            verification.failures()
        ))
        .into());
    }
    if !provenance_ok {
        let checks = provenance.unwrap_or_default();
        let why = if checks.is_empty() {
            "no provenance is attached (sign it with `cargo xtask sign --provenance`)".to_string()
        } else {
            checks
                .iter()
                .map(|(digest, check)| format!("provenance {digest}: {check}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        return Err(GateFailed(format!("{name}'s provenance is not verified:\n{why}")).into());
    }
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a key file whole or not at all, with `mode` from its creation (a private key is
/// never readable by others, not even for a moment).
fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".wharf-key-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    let persisted = if replace {
        file.persist(path).map(|_| ())
    } else {
        file.persist_noclobber(path).map(|_| ())
    };
    persisted.map_err(|e| anyhow!("writing {}: {}", path.display(), e.error))
}

/// The bytes of a key given as a path or `env://NAME`, how to name it in messages, and the
/// file's permission bits (none for a variable).
fn key_source(key: &str) -> Result<(Vec<u8>, String, Option<u32>)> {
    if let Some(name) = key.strip_prefix(ENV_PREFIX) {
        let value = std::env::var(name).map_err(|_| {
            usage(format!(
                "the key {key}: the environment variable {name} is not set (or not UTF-8)"
            ))
        })?;
        return Ok((value.into_bytes(), format!("the variable {name}"), None));
    }
    let path = Path::new(key);
    let metadata =
        std::fs::metadata(path).map_err(|e| usage(format!("the key {}: {e}", path.display())))?;
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the key {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    Ok((bytes, path.display().to_string(), Some(mode)))
}

/// A private key, refused when its file can be read by other users (after checking it is
/// a private key at all: a public key given by mistake is named as such).
fn read_private_key(key: &str) -> Result<KeyPair> {
    let (bytes, what, mode) = key_source(key)?;
    let pair = if wharf_sign::is_encrypted(&bytes) {
        // cosign's variable, so that keys made by `cosign generate-key-pair` work as they are.
        let password = std::env::var_os("COSIGN_PASSWORD").ok_or_else(|| {
            usage(format!(
                "{what} is an encrypted cosign key: set COSIGN_PASSWORD to its password"
            ))
        })?;
        KeyPair::from_encrypted_pem(&bytes, &what, password.as_encoded_bytes())
    } else {
        KeyPair::from_pem(&bytes, &what)
    }
    .map_err(|e| UsageError(e.into()))?;
    if let Some(mode) = mode.filter(|mode| mode & 0o077 != 0) {
        return Err(usage(format!(
            "the private key {what} can be read by other users (mode {mode:04o}): run \
             `chmod 600 {what}`"
        )));
    }
    Ok(pair)
}

/// A public key given as a path (relative to `root` if given and the path is relative) or
/// `env://NAME`.
pub(crate) fn read_public_key(key: &str, root: Option<&Path>) -> Result<PublicKey> {
    let key = match root {
        Some(root) if !key.starts_with(ENV_PREFIX) => root.join(key).display().to_string(),
        _ => key.to_string(),
    };
    let (bytes, what, _) = key_source(&key)?;
    PublicKey::from_pem(&bytes, &what).map_err(|e| UsageError(e.into()).into())
}
