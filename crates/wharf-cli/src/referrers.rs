//! Scan results attached to images in a registry: `cargo xtask scan --attach`, the push
//! step of ci, and `cargo xtask referrers` to read them back.

use anyhow::{Context, Result};
use wharf_oci::{Reference, media_type};
use wharf_pipeline::scan::{ScanOutcome, ScanPlan};
use wharf_registry::{Artifact, Attached, Client};

use std::path::Path;

use crate::scan::{Format, render};

/// Attaches the SBOM (CycloneDX) and the scan report (JSON) to the image `subject` names
/// (a tag is resolved to its digest first: artifacts refer to digests).
pub fn attach(
    root: &Path,
    client: &Client,
    subject: &Reference,
    outcome: &ScanOutcome,
    plan: &ScanPlan,
) -> Result<Vec<Attached>> {
    let report = render(root, outcome, plan, Format::Json)?.into_bytes();
    let sbom = match outcome.sbom {
        Some(_) => Some(render(root, outcome, plan, Format::Cyclonedx)?.into_bytes()),
        None => None,
    };
    attach_documents(client, subject, report, sbom, &mut std::io::stderr())
}

/// Attaches a scan report (wharf's JSON) and, when there is one, a CycloneDX SBOM to
/// `subject`, saying so on `log`.
pub fn attach_documents(
    client: &Client,
    subject: &Reference,
    report: Vec<u8>,
    sbom: Option<Vec<u8>>,
    log: &mut dyn std::io::Write,
) -> Result<Vec<Attached>> {
    let subject = match subject.digest() {
        Some(_) => subject.clone(),
        None => subject.with_digest(client.resolve(subject)?.digest),
    };
    let mut artifacts = vec![Artifact {
        artifact_type: media_type::WHARF_SCAN.into(),
        media_type: "application/json".into(),
        bytes: report,
        annotations: Default::default(),
        fallback_suffix: "scan".into(),
    }];
    if let Some(bytes) = sbom {
        artifacts.push(Artifact {
            artifact_type: media_type::CYCLONEDX_JSON.into(),
            media_type: media_type::CYCLONEDX_JSON.into(),
            bytes,
            annotations: Default::default(),
            fallback_suffix: "sbom".into(),
        });
    }
    artifacts
        .iter()
        .map(|artifact| {
            let attached = client.attach(&subject, artifact).with_context(|| {
                format!("attaching the {} to {subject}", artifact.fallback_suffix)
            })?;
            let _ = writeln!(
                log,
                "    attached {} {} to {subject}{}",
                artifact.fallback_suffix,
                attached.digest,
                attached
                    .fallback_tag
                    .as_deref()
                    .map(|t| format!(" (tag {t})"))
                    .unwrap_or_default()
            );
            Ok(attached)
        })
        .collect()
}

#[derive(clap::Args)]
pub struct Args {
    /// The image: docker://HOST/REPO:TAG or @DIGEST.
    image: String,
    /// Only artifacts of this kind: `sbom`, `scan`, or a media type.
    #[arg(long = "type", value_name = "KIND")]
    kind: Option<String>,
    /// Print the content of the (first) matching artifact instead of the list.
    #[arg(long)]
    get: bool,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let reference = crate::copy::parse_reference(&args.image)?;
    let client = crate::copy::client(true, args.insecure)?;
    let subject = match reference.digest() {
        Some(_) => reference.clone(),
        None => reference.with_digest(client.resolve(&reference)?.digest),
    };
    let kind = args.kind.as_deref().map(|k| match k {
        "sbom" => media_type::CYCLONEDX_JSON,
        "scan" => media_type::WHARF_SCAN,
        other => other,
    });
    let found = client.referrers(&subject, kind)?;
    if args.get {
        let first = found.first().ok_or_else(|| {
            anyhow::anyhow!(
                "nothing of type {} is attached to {subject}",
                kind.unwrap_or("any")
            )
        })?;
        let (_, bytes) = client.artifact(&subject, first)?;
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for descriptor in &found {
            println!(
                "{} {} {} bytes",
                descriptor.digest,
                descriptor.artifact_type.as_deref().unwrap_or("-"),
                descriptor.size
            );
        }
    }
    Ok(())
}
