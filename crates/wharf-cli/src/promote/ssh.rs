//! Signed approvals with the approver's SSH key: `ssh-keygen -Y sign` and `-Y verify`
//! against an allowed-signers file, as git's SSH commit signing does. With them, write
//! access to the ledger is not enough to forge an approval.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// The signature namespace: a signature made for wharf approvals is not valid for git
/// commits or anything else signed with the same key, and the other way round.
pub const NAMESPACE: &str = "wharf-approval";

/// Signs `message` with the private key `key` (or the public key of a key held by
/// ssh-agent); returns the armored signature.
pub fn sign(key: &Path, message: &[u8]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("approval");
    std::fs::write(&file, message)?;
    let output = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen -Y sign (is OpenSSH installed?)")?;
    if !output.status.success() {
        bail!(
            "ssh-keygen could not sign with {}: {}",
            key.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let signature = std::fs::read_to_string(dir.path().join("approval.sig"))
        .context("reading the signature ssh-keygen wrote")?;
    Ok(signature)
}

/// True when `signature` is `principal`'s signature of `message` under an allowed-signers
/// entry of `allowed_signers`; false when it is not; an error when ssh-keygen cannot run.
pub fn verify(
    allowed_signers: &Path,
    principal: &str,
    message: &[u8],
    signature: &str,
) -> Result<bool> {
    if !allowed_signers.is_file() {
        bail!(
            "the allowed-signers file {} does not exist (one line per approver: \
             \"EMAIL-OR-NAME ssh-ed25519 AAAA...\", see ssh-keygen(1) ALLOWED SIGNERS)",
            allowed_signers.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let sig = dir.path().join("approval.sig");
    std::fs::write(&sig, signature)?;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", NAMESPACE, "-f"])
        .arg(allowed_signers)
        .args(["-I", principal, "-s"])
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("running ssh-keygen -Y verify (is OpenSSH installed?)")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("ssh-keygen's stdin"))?
        .write_all(message)?;
    Ok(child.wait()?.success())
}
