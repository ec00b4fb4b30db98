//! `cargo xtask scan`: SBOM, RustSec advisories, image checks and the policy gate.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wharf::oci::Location;
use wharf::pipeline::Config;
use wharf::pipeline::scan::{self, Overrides, ScanOutcome, ScanPlan};

use crate::{UsageError, workspace_root};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human tables: advisories, image checks, the gate.
    Table,
    /// One JSON object: `passed`, `vulnerabilities`, `warnings`, `image`, `gate`.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning (the advisories).
    Sarif,
    /// The SBOM as CycloneDX 1.5 JSON.
    Cyclonedx,
    /// The SBOM as SPDX 2.3 JSON.
    Spdx,
}

#[derive(clap::Args)]
pub struct Args {
    /// Scan this Cargo.lock alone: advisories and the gate, no SBOM and no image checks.
    #[arg(long, value_name = "PATH")]
    lockfile: Option<PathBuf>,
    /// The RustSec advisory database directory (default: WHARF_ADVISORY_DB, [scan] db,
    /// then ~/.cargo/advisory-db).
    #[arg(long, value_name = "DIR")]
    db: Option<PathBuf>,
    /// The image to check, as oci:DIR:TAG (default: the one `cargo xtask image` built).
    #[arg(long, value_name = "LOCATION")]
    image: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Write the output to this file (atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Attach the SBOM and the report to this image in a registry (docker://HOST/REPO:TAG
    /// or @DIGEST) as OCI artifacts; read them back with `cargo xtask referrers`.
    #[arg(long, value_name = "IMAGE")]
    attach: Option<String>,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// Print what would be read, and the policy, without scanning.
    #[arg(long)]
    dry_run: bool,
}

/// The gate said no: exit code 3, so CI can tell "unsafe to ship" from "could not scan".
#[derive(Debug)]
pub struct GateFailed(pub String);

impl std::fmt::Display for GateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GateFailed {}

pub fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let config = Config::load(&root).map_err(|e| UsageError(e.into()))?;
    let image = match &args.image {
        Some(text) => match crate::copy::parse(text)? {
            Location::Layout {
                dir,
                tag: Some(tag),
            } => Some((dir, tag)),
            other => {
                return Err(UsageError(anyhow::anyhow!(
                    "--image {other}: scan reads images from an OCI layout with a tag (oci:DIR:TAG); copy it there first with `cargo xtask copy {other} oci:DIR:TAG`"
                ))
                .into());
            }
        },
        None => None,
    };
    let lockfile_only = args.lockfile.is_some() && image.is_none();
    let overrides = Overrides {
        lockfile: args.lockfile.clone(),
        db: args.db.clone(),
        image,
        lockfile_only,
    };
    let plan = plan(&root, &config, overrides)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let outcome = scan::run(&plan)?;
    let format = if args.json { Format::Json } else { args.format };
    let text = render(&outcome, &plan, format)?;
    match &args.output {
        Some(path) => write_atomically(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    if format != Format::Table {
        eprint!("{}", gate_summary(&outcome));
    }
    // Attached whatever the verdict: a failed scan's report is worth keeping with the image.
    if let Some(target) = &args.attach {
        let Location::Registry(subject) = crate::copy::parse(target)? else {
            return Err(UsageError(anyhow::anyhow!(
                "--attach {target}: artifacts attach to images in a registry (docker://HOST/REPO:TAG)"
            ))
            .into());
        };
        let client = crate::copy::client(true, args.insecure.clone())?;
        crate::referrers::attach(&client, &subject, &outcome, &plan)?;
    }
    verdict(&outcome)
}

/// Plans a scan of this repository: the default image is the primary tag of the image
/// `cargo xtask image` builds, and the SBOM's time is the image's.
pub fn plan(root: &Path, config: &Config, overrides: Overrides) -> Result<ScanPlan> {
    let (default_image, created) = match (&config.image, overrides.lockfile_only) {
        (Some(_), false) => {
            let (image_plan, _) = crate::image::plan()?;
            let tag = image_plan.tags.first().cloned().unwrap_or_default();
            let built = wharf::oci::Layout::open(&image_plan.layout)
                .and_then(|layout| layout.resolve(&tag))
                .is_ok();
            if overrides.image.is_none() && !built {
                return Err(UsageError(anyhow::anyhow!(
                    "the image of this commit is not built yet (no tag {tag} in {}): run `cargo xtask image` first, or pass --image oci:DIR:TAG, or --lockfile PATH to scan the lockfile alone",
                    image_plan.layout.display()
                ))
                .into());
            }
            (Some((image_plan.layout, tag)), image_plan.created)
        }
        _ => (None, 0),
    };
    let today = jiff::Zoned::now().date();
    scan::plan(root, config, overrides, default_image, created, today).map_err(|e| match e {
        e @ (scan::ScanError::NoDatabase { .. } | scan::ScanError::NoLockfile(_)) => {
            UsageError(e.into()).into()
        }
        e => anyhow::Error::from(e),
    })
}

pub fn render(outcome: &ScanOutcome, plan: &ScanPlan, format: Format) -> Result<String> {
    // `spdx`: the SPDX document, else the CycloneDX one.
    let sbom = |spdx: bool| -> Result<String> {
        let sbom = outcome.sbom.as_ref().ok_or_else(|| {
            UsageError(anyhow::anyhow!(
                "no SBOM: it describes the [image] package, and this scan has none (drop --lockfile, or add [image] to pipelines/wharf.toml)"
            ))
        })?;
        let (cyclonedx, spdx_json) = scan::sbom_documents(sbom, plan.created)?;
        let bytes = if spdx { spdx_json } else { cyclonedx };
        Ok(String::from_utf8(bytes).expect("JSON is UTF-8") + "\n")
    };
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(outcome)? + "\n",
        Format::Sarif => {
            let uri = plan
                .lockfile
                .strip_prefix(workspace_root())
                .unwrap_or(&plan.lockfile)
                .display()
                .to_string();
            wharf::audit::render::sarif(&outcome.audit, &uri) + "\n"
        }
        Format::Cyclonedx => sbom(false)?,
        Format::Spdx => sbom(true)?,
        Format::Table => {
            let mut text = wharf::audit::render::table(&outcome.audit);
            if let Some(image) = &outcome.image {
                text.push('\n');
                text.push_str(&image.to_string());
            }
            text.push('\n');
            text.push_str(&gate_summary(outcome));
            text
        }
    })
}

/// What the gate decided, one line per violation and per ignore entry used.
pub fn gate_summary(outcome: &ScanOutcome) -> String {
    let mut text = String::new();
    for (id, entry) in &outcome.gate.ignored {
        text.push_str(&format!(
            "ignored {id} until {}: {}\n",
            entry.expires, entry.reason
        ));
    }
    for violation in &outcome.gate.violations {
        text.push_str(&format!("gate: {violation}\n"));
    }
    let image_errors = outcome.image.as_ref().is_some_and(|r| !r.passed());
    if image_errors {
        text.push_str("gate: the image checks found errors (listed above)\n");
    }
    text.push_str(if outcome.passed {
        "scan passed\n"
    } else {
        "scan FAILED the policy gate (pipelines/wharf.toml [scan])\n"
    });
    text
}

pub fn verdict(outcome: &ScanOutcome) -> Result<()> {
    if outcome.passed {
        return Ok(());
    }
    let count = outcome.gate.violations.len()
        + usize::from(outcome.image.as_ref().is_some_and(|r| !r.passed()));
    Err(GateFailed(format!("the policy gate failed ({count} reasons above)")).into())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees half a report; with the umask's permissions, like the layout's
/// files (`wharf::oci::atomic`).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    wharf::oci::atomic::write(path, bytes)?;
    Ok(())
}

/// The `scan` step of `cargo xtask ci`: scans the image just built, writes every format
/// under `target/wharf/scan/` (for CI to upload: SARIF to code scanning, the SBOMs as
/// artifacts), prints the tables to stderr, and fails the step if the gate fails.
pub fn ci_step() -> Result<(ScanOutcome, ScanPlan)> {
    let root = workspace_root();
    let config = Config::load(&root).map_err(|e| UsageError(e.into()))?;
    let plan = plan(&root, &config, Overrides::default())?;
    eprintln!(
        "==> scan: {} against {}",
        plan.lockfile.display(),
        plan.db.display()
    );
    let outcome = scan::run(&plan)?;
    let dir = wharf::source::Workspace::load(&root)?
        .target_dir
        .join("wharf")
        .join("scan");
    let mut files = vec![
        ("report.json", Format::Json),
        ("advisories.sarif", Format::Sarif),
    ];
    if outcome.sbom.is_some() {
        files.push(("sbom.cdx.json", Format::Cyclonedx));
        files.push(("sbom.spdx.json", Format::Spdx));
    }
    for (name, format) in files {
        write_atomically(&dir.join(name), render(&outcome, &plan, format)?.as_bytes())?;
    }
    eprint!("{}", render(&outcome, &plan, Format::Table)?);
    eprintln!("    reports in {}", dir.display());
    verdict(&outcome)?;
    Ok((outcome, plan))
}
