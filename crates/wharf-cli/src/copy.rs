use anyhow::{Context, Result};
use wharf_oci::Location;
use wharf_pipeline::progress::registry_events;
use wharf_pipeline::{Mode, copy};
use wharf_registry::{Client, Config};

#[derive(clap::Args)]
pub struct Args {
    /// Source, in skopeo syntax: oci:DIR[:TAG] or docker://HOST/REPO[:TAG|@DIGEST].
    source: String,
    /// Destination, in the same syntax.
    destination: String,
    /// Print one JSON object (digest, blobs_uploaded, blobs_mounted, blobs_skipped,
    /// bytes_uploaded, signatures, referrers) on stdout.
    #[arg(long)]
    json: bool,
    /// Copy the image alone: not its cosign signatures (the `.sig` tag) nor its referrers
    /// (SBOMs, scan reports, provenance), which go with it from registry to registry.
    #[arg(long)]
    no_signatures: bool,
    /// Do not verify this registry's certificate (HOST[:PORT], matched exactly); plain HTTP
    /// only if it does not speak TLS.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

pub fn client(json: bool, insecure: Vec<String>) -> Result<Client> {
    let mode = if json { Mode::Plain } else { Mode::detect() };
    let mut config = Config::new();
    config.events = registry_events(mode);
    config.insecure = insecure;
    Ok(Client::new(config)?)
}

/// A registry image as `docker://HOST/REPO:TAG` (or without `docker://`).
pub fn parse_reference(text: &str) -> Result<wharf_oci::Reference> {
    let text = text.strip_prefix("docker://").unwrap_or(text);
    text.parse()
        .map_err(|e: wharf_oci::ReferenceError| crate::UsageError(e.into()).into())
}

pub fn parse(location: &str) -> Result<Location> {
    location
        .parse()
        .map_err(|e: wharf_oci::LocationError| crate::UsageError(e.into()).into())
}

pub fn run(args: Args) -> Result<()> {
    let source = parse(&args.source)?;
    let destination = parse(&args.destination)?;
    let client = client(args.json, args.insecure)?;
    let mut report = copy::copy(&client, &source, &destination)
        .with_context(|| format!("copying {source} to {destination}"))?;
    if let (Location::Registry(from), Location::Registry(to), Some(digest)) =
        (&source, &destination, report.digest.clone())
        && !args.no_signatures
    {
        copy::copy_attachments(&client, from, to, &digest, &mut report).with_context(|| {
            format!("copying the signatures and referrers of {source} to {destination}")
        })?;
    }
    print_report(&report, args.json)
}

pub fn print_report(report: &copy::CopyReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        let digest = report
            .digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        println!("{}@{digest}", report.destination);
        eprintln!(
            // "copied": uploaded to a registry, written to a layout or loaded into the engine.
            "    blobs: {} copied ({} bytes), {} mounted, {} already there",
            report.blobs_uploaded,
            report.bytes_uploaded,
            report.blobs_mounted,
            report.blobs_skipped
        );
        if report.signatures + report.referrers > 0 {
            eprintln!(
                "    with it: {} signature(s), {} referrer(s)",
                report.signatures, report.referrers
            );
        }
    }
    Ok(())
}
