//! Gathering what the gates decide on: the image (size, labels), the scan report attached
//! to it, the benchmark files, the smoke checks, the change's author, the approvals'
//! signatures and the image's cosign signatures. Everything read here is I/O; deciding is `wharf_promote::plan`'s.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use wharf_ledger::{Entry, Kind};
use wharf_oci::media_type;
use wharf_promote::{
    BenchmarkFiles, BuiltBy, Candidate, Evidence, ProvenanceVerdict, ScanVerdict, SignatureVerdict,
    Stage, VerificationEvidence,
};
use wharf_sign::provenance::ProvenanceCheck;

use super::place::Place;
use super::{Ctx, identity, smoke, ssh};

/// The OCI label that names the commit an image was built from.
const REVISION: &str = "org.opencontainers.image.revision";
const VERSION: &str = "org.opencontainers.image.version";

pub(super) fn gather(
    cx: &Ctx<'_>,
    stage: &Stage,
    candidate: &Candidate,
    entries: &[Entry],
) -> Result<Evidence> {
    let digest = &candidate.digest;
    let source = cx.place(&candidate.source.location)?;
    let facts = source
        .facts(&cx.client, digest)
        .with_context(|| format!("reading {digest} in {source}"))?;
    let gates = &stage.gates;
    let mut evidence = Evidence {
        image_bytes: Some(facts.bytes),
        version: facts.labels.get(VERSION).cloned(),
        revision: facts.labels.get(REVISION).cloned(),
        ..Evidence::default()
    };
    if let Some(revision) = &evidence.revision {
        evidence.authors = identity::author(&cx.session.root, revision).unwrap_or_default();
    }
    if gates.scan {
        evidence.scan = scan_verdict(cx, &source, candidate, entries)?;
    }
    if let Some(bench) = &gates.benchmark {
        let read = |path: &std::path::Path| {
            let path = cx.session.root.join(path);
            std::fs::read(&path).with_context(|| {
                format!(
                    "reading the benchmark file {} (stage {}'s benchmark gate)",
                    path.display(),
                    stage.name
                )
            })
        };
        evidence.benchmark = Some(BenchmarkFiles {
            baseline: read(&bench.baseline)?,
            current: read(&bench.current)?,
        });
    }
    if let Some(gate) = &gates.smoke {
        evidence.smoke = smoke::check(gate);
    }
    if let Some(approvals) = &gates.approvals
        && approvals.signed
    {
        evidence.verified_approvals = verified_approvals(cx, stage, digest, entries)?;
    }
    if let Some(gate) = &gates.signature {
        let read = GateRead::new(cx, stage, "signature", &gate.keys, &source, digest)?;
        evidence.signature = Some(signature_verdict(cx, &read, gate.check_reference)?);
    }
    if let Some(gate) = &gates.provenance {
        let read = GateRead::new(cx, stage, "provenance", &gate.keys, &source, digest)?;
        evidence.provenance = Some(provenance_verdict(cx, &read)?);
    }
    Ok(evidence)
}

/// What the signature and provenance gates start from: their keys (files relative to the
/// workspace root, or `env://NAME`) and the image pinned in the source location, or why the
/// location cannot hold signatures (an OCI layout: they are kept beside images in
/// registries).
struct GateRead {
    location: String,
    keys: Vec<wharf_sign::PublicKey>,
    image: std::result::Result<wharf_oci::Reference, String>,
}

impl GateRead {
    fn new(
        cx: &Ctx<'_>,
        stage: &Stage,
        gate: &str,
        keys: &[String],
        source: &Place,
        digest: &wharf_oci::Digest,
    ) -> Result<GateRead> {
        let keys = keys
            .iter()
            .map(|key| {
                crate::sign::read_public_key(key, Some(&cx.session.root))
                    .with_context(|| format!("stage {}'s {gate} gate", stage.name))
            })
            .collect::<Result<Vec<_>>>()?;
        let image = match source {
            Place::Registry(repo) => Ok(repo.with_digest(digest.clone())),
            Place::Layout(_) => Err(format!(
                "signatures and provenance are kept in registries, and {source} is an OCI \
                 layout (sign the image in a stage whose location is a registry)"
            )),
        };
        Ok(GateRead {
            location: source.to_string(),
            keys,
            image,
        })
    }

    fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(wharf_sign::PublicKey::id).collect()
    }
}

/// The provenance attached to the image in the source location, each envelope checked
/// against the gate's keys and the image digest.
fn provenance_verdict(cx: &Ctx<'_>, read: &GateRead) -> Result<ProvenanceVerdict> {
    let mut verdict = ProvenanceVerdict {
        location: read.location.clone(),
        keys: read.key_ids(),
        verified: Vec::new(),
        failures: Vec::new(),
    };
    let image = match &read.image {
        Ok(image) => image,
        Err(why) => {
            verdict.failures.push(why.clone());
            return Ok(verdict);
        }
    };
    let checks = wharf_pipeline::sign::verify_provenance(&cx.client, image, &read.keys)
        .with_context(|| format!("reading the provenance of {image}"))?;
    for (envelope, check) in checks {
        match check {
            ProvenanceCheck::Verified {
                keys,
                builder,
                source,
                commit,
            } => verdict.verified.push(BuiltBy {
                builder,
                source,
                commit,
                keys,
            }),
            failed => verdict
                .failures
                .push(format!("provenance {envelope}: {failed}")),
        }
    }
    Ok(verdict)
}

/// The image's cosign signatures in the source location, checked against the gate's keys.
fn signature_verdict(
    cx: &Ctx<'_>,
    read: &GateRead,
    check_reference: bool,
) -> Result<SignatureVerdict> {
    let mut verdict = SignatureVerdict {
        location: read.location.clone(),
        matched_keys: Vec::new(),
        keys: read.key_ids(),
        failures: Vec::new(),
    };
    match &read.image {
        Err(why) => verdict.failures.push(why.clone()),
        Ok(image) => {
            let checked =
                wharf_pipeline::sign::verify(&cx.client, image, &read.keys, check_reference)
                    .with_context(|| format!("reading the signatures of {image}"))?;
            verdict.matched_keys = checked.matched_keys();
            if !checked.verified() && !checked.layers.is_empty() {
                verdict.failures = checked.failures().lines().map(str::to_string).collect();
            }
        }
    }
    Ok(verdict)
}

/// The scan report attached to the image (a registry) or recorded by the CI run that
/// verified it (a layout), checked again against the `[scan]` policy in force today.
fn scan_verdict(
    cx: &Ctx<'_>,
    source: &Place,
    candidate: &Candidate,
    entries: &[Entry],
) -> Result<Option<ScanVerdict>> {
    let digest = &candidate.digest;
    // Every scan report attached counts: one added later (a rescan with a newer database)
    // can only add failures.
    let reports: Vec<Vec<u8>> = match source {
        Place::Registry(repo) => {
            let subject = repo.with_digest(digest.clone());
            cx.client
                .referrers(&subject, Some(media_type::WHARF_SCAN))?
                .iter()
                .map(|descriptor| Ok(cx.client.artifact(&subject, descriptor)?.1))
                .collect::<Result<_>>()?
        }
        Place::Layout(_) => recorded_report(cx, digest, entries)?.into_iter().collect(),
    };
    let policy = cx
        .config
        .scan
        .as_ref()
        .map(|s| s.policy())
        .unwrap_or_default();
    let today = jiff::Zoned::now().date();
    let mut verdict: Option<ScanVerdict> = None;
    for bytes in &reports {
        let recheck = wharf_pipeline::scan::recheck(bytes, &policy, today)
            .map_err(|why| anyhow::anyhow!("the scan report of {digest}: {why}"))?;
        let mut failures = recheck.failures;
        if let Some(about) = &recheck.image
            && about != digest
        {
            failures.push(format!("the report is about {about}, not {digest}"));
        }
        // The verdict names a failing report if there is one.
        if verdict.as_ref().is_none_or(|v| v.failures.is_empty()) {
            verdict = Some(ScanVerdict {
                report_digest: wharf_oci::Digest::sha256(bytes),
                failures,
            });
        } else if let Some(v) = verdict.as_mut() {
            v.failures.extend(failures);
        }
    }
    Ok(verdict)
}

/// The report file the verification entry of `digest` recorded, if it is still there and
/// still has the digest recorded (a changed file is not trusted).
fn recorded_report(
    cx: &Ctx<'_>,
    digest: &wharf_oci::Digest,
    entries: &[Entry],
) -> Result<Option<Vec<u8>>> {
    let Some(recorded) = entries
        .iter()
        .rev()
        .find(|e| e.kind == Kind::Verification && &e.digest == digest)
        .and_then(|e| VerificationEvidence::of(e).scan_report)
    else {
        return Ok(None);
    };
    let Ok(bytes) = std::fs::read(cx.session.root.join(&recorded.path)) else {
        return Ok(None);
    };
    Ok(recorded.digest.verify(&bytes).is_ok().then_some(bytes))
}

/// The seqs of the approvals of `digest` for `stage` whose SSH signature verifies against
/// the stage's allowed-signers file, for the approver they name.
fn verified_approvals(
    cx: &Ctx<'_>,
    stage: &Stage,
    digest: &wharf_oci::Digest,
    entries: &[Entry],
) -> Result<BTreeSet<u64>> {
    let Some(allowed) = stage
        .gates
        .approvals
        .as_ref()
        .and_then(|a| a.allowed_signers.as_ref())
    else {
        return Ok(BTreeSet::new());
    };
    let allowed = cx.session.root.join(allowed);
    let mut verified = BTreeSet::new();
    for entry in entries.iter().filter(|e| {
        e.kind == Kind::Approval && e.to.as_deref() == Some(&stage.name) && &e.digest == digest
    }) {
        let Some(signature) = &entry.signature else {
            continue;
        };
        let message = wharf_promote::approval_message(&stage.name, digest, &entry.who);
        if ssh::verify(&allowed, &entry.who, &message, signature)? {
            verified.insert(entry.seq);
        }
    }
    Ok(verified)
}
