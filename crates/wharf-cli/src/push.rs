use std::path::Path;

use anyhow::{Context, Result, bail};
use wharf_oci::{Location, Reference};
use wharf_pipeline::copy;

use crate::{Session, UsageError};

#[derive(clap::Args)]
pub struct Args {
    /// Where to push, docker://HOST/REPO (every tag of the built image is pushed); default:
    /// `[push] destination` in pipelines/wharf.toml.
    destination: Option<String>,
    #[arg(long)]
    json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

/// Pushes the image `cargo xtask image` built, under all its tags.
pub fn run(args: Args, session: &Session) -> Result<()> {
    let destination = match args.destination {
        Some(d) => d,
        None => match &session.config()?.push {
            Some(push) => push.destination.clone(),
            None => bail!(UsageError(anyhow::anyhow!(
                "no destination: pass docker://HOST/REPO, or set [push] destination in pipelines/wharf.toml"
            ))),
        },
    };
    let report = push_to(session, &destination, args.json, args.insecure)?;
    crate::copy::print_report(&report, args.json)
}

/// Pushes the built image to `destination` (`docker://HOST/REPO`) under every planned tag.
pub fn push_to(
    session: &Session,
    destination: &str,
    json: bool,
    mut insecure: Vec<String>,
) -> Result<copy::CopyReport> {
    let (plan, _) = crate::image::plan(session)?;
    if let Some(push) = &session.config()?.push {
        insecure.extend(push.insecure.iter().cloned());
    }
    push_layout(destination, &plan.layout, &plan.tags, json, insecure)
}

/// Pushes the image tagged `tags[0]` in the OCI layout `layout` to `destination`
/// (`docker://HOST/REPO`), then points the other tags at it.
pub fn push_layout(
    destination: &str,
    layout: &Path,
    tags: &[String],
    json: bool,
    insecure: Vec<String>,
) -> Result<copy::CopyReport> {
    let Location::Registry(repository) = crate::copy::parse(destination)? else {
        bail!(UsageError(anyhow::anyhow!(
            "push needs a docker://HOST/REPO destination, got {destination}"
        )));
    };
    let client = crate::copy::client(json, insecure)?;
    let primary = tags.first().context("the image has no tag")?;
    let source = Location::Layout {
        dir: layout.to_path_buf(),
        tag: Some(primary.clone()),
    };
    let first = repository.with_tag(primary)?;
    let report =
        copy::copy(&client, &source, &Location::Registry(first.clone())).with_context(|| {
            format!("pushing {source} (run `cargo xtask image` first if it is missing)")
        })?;
    // The other tags name the same manifest: moving them sends no blob.
    for tag in tags.iter().skip(1) {
        client.tag(&first, tag)?;
    }
    Ok(report)
}

#[derive(clap::Args)]
pub struct TagArgs {
    /// The image to tag: docker://HOST/REPO:TAG or @DIGEST (or HOST/REPO:TAG).
    reference: String,
    /// The new tag, in the same repository.
    new_tag: String,
    #[arg(long)]
    json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
}

pub fn tag(args: TagArgs) -> Result<()> {
    let reference = registry_reference(&args.reference, &args.new_tag)?;
    wharf_oci::validate_tag(&args.new_tag)
        .map_err(|e| UsageError(anyhow::anyhow!("invalid tag {:?}: {e}", args.new_tag)))?;
    let client = crate::copy::client(args.json, args.insecure)?;
    let digest = client.tag(&reference, &args.new_tag)?;
    let tagged = reference.with_tag(&args.new_tag)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "reference": tagged.to_string(), "digest": digest.to_string() })
        );
    } else {
        println!("{tagged}@{digest}");
    }
    Ok(())
}

/// The registry image `tag` works on: `docker://HOST/REPO:TAG` (or without `docker://`).
/// Other locations are refused with the command that does the same there.
fn registry_reference(text: &str, new_tag: &str) -> Result<Reference> {
    let not_a_registry = |what: &str, instead: String| -> anyhow::Error {
        UsageError(anyhow::anyhow!(
            "cannot tag {what}: tagging works on images in a registry only (docker://HOST/REPO:TAG){instead}"
        ))
        .into()
    };
    if text.starts_with("oci:") || text.starts_with("docker-daemon:") {
        let instead = match crate::copy::parse(text)? {
            Location::Layout { dir, .. } => format!(
                "; to add a tag in an OCI layout, copy the image into the same layout under the new tag: cargo xtask copy {text} oci:{}:{new_tag}",
                dir.display()
            ),
            _ => "; to tag in the Docker engine, use docker tag".to_string(),
        };
        return Err(not_a_registry(text, instead));
    }
    crate::copy::parse_reference(text)
}
