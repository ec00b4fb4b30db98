//! `cargo xtask scan`: SBOM, RustSec advisories, image checks and the policy gate.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wharf_oci::Location;
use wharf_pipeline::scan::{self, Overrides, ScanOutcome, ScanPlan};

use crate::{Session, UsageError};

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
    /// The output format (default: from the --output name, `.json` is json, `.sarif` sarif,
    /// `.cdx.json` cyclonedx, `.spdx.json` spdx; else table).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Write the output to this file (atomically) instead of stdout. Its directory must
    /// exist; a JSON name (`.json`, `.sarif`) never gets the table.
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
    /// Never fetch or update the advisory database (also: CARGO_NET_OFFLINE=true).
    #[arg(long)]
    offline: bool,
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

pub fn run(args: Args, session: &Session) -> Result<()> {
    let format = output_format(&args)?;
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
        offline: args.offline,
    };
    let plan = plan(session, overrides)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    prepare_db(&plan)?;
    let outcome = run_plan(&plan)?;
    let text = render(&session.root, &outcome, &plan, format)?;
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
        crate::referrers::attach(&session.root, &client, &subject, &outcome, &plan)?;
    }
    verdict(&outcome)
}

/// The format of the output: `--json`, else `--format`, else what the `--output` name says.
/// Checked before scanning: `--output` in a directory that does not exist, or the table
/// into a JSON name, is an error (exit 2) rather than a surprise.
fn output_format(args: &Args) -> Result<Format> {
    let usage = |message: String| -> anyhow::Error { UsageError(anyhow::anyhow!(message)).into() };
    let named = args.output.as_deref().and_then(format_of_name);
    let format = match (args.json, args.format) {
        (true, _) => Format::Json,
        (false, Some(format)) => format,
        (false, None) => named.unwrap_or(Format::Table),
    };
    let Some(path) = &args.output else {
        return Ok(format);
    };
    if format == Format::Table && named.is_some() {
        return Err(usage(format!(
            "--output {}: the name says JSON, but --format table writes text (drop --format to write {} there, or name the file .txt)",
            path.display(),
            named
                .and_then(|f| clap::ValueEnum::to_possible_value(&f))
                .map_or("json".into(), |v| v.get_name().to_string())
        )));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(usage(format!(
            "--output {}: directory {} does not exist (create it first, e.g. mkdir -p {})",
            path.display(),
            dir.display(),
            dir.display()
        )));
    }
    Ok(format)
}

/// The format a file name implies: the SBOM names of CycloneDX and SPDX, then `.json` and
/// `.sarif`; `None` for any other name.
fn format_of_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    [
        (".cdx.json", Format::Cyclonedx),
        (".spdx.json", Format::Spdx),
        (".sarif", Format::Sarif),
        (".sarif.json", Format::Sarif),
        (".json", Format::Json),
    ]
    .into_iter()
    .find(|(suffix, _)| name.ends_with(suffix))
    .map(|(_, format)| format)
}

/// Runs the scan; a lockfile that cannot be read or is not a Cargo.lock is the user's to
/// fix (exit 2).
fn run_plan(plan: &ScanPlan) -> Result<ScanOutcome> {
    scan::run(plan).map_err(|e| match e {
        scan::ScanError::Audit(e @ wharf_audit::Error::Lockfile { .. }) => {
            UsageError(anyhow::Error::new(e).context(format!(
                "{} is not a Cargo.lock (pass a workspace's Cargo.lock to --lockfile)",
                plan.lockfile.display()
            )))
            .into()
        }
        scan::ScanError::Audit(e) if e.path() == plan.lockfile => UsageError(e.into()).into(),
        e => anyhow::Error::from(e),
    })
}

/// Plans a scan of this repository: the default image is the primary tag of the image
/// `cargo xtask image` builds, and the SBOM's time is the image's.
pub fn plan(session: &Session, overrides: Overrides) -> Result<ScanPlan> {
    let config = session.config()?;
    let (default_image, created) = match (&config.image, overrides.lockfile_only) {
        (Some(_), false) => {
            let (image_plan, _) = crate::image::plan(session)?;
            let tag = image_plan.tags.first().cloned().unwrap_or_default();
            let built = wharf_oci::Layout::open(&image_plan.layout)
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
    scan::plan(
        &session.root,
        config,
        overrides,
        default_image,
        created,
        today,
    )
    .map_err(|e| match e {
        e @ scan::ScanError::NoLockfile(_) => UsageError(e.into()).into(),
        e => anyhow::Error::from(e),
    })
}

pub fn render(
    root: &Path,
    outcome: &ScanOutcome,
    plan: &ScanPlan,
    format: Format,
) -> Result<String> {
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
                .strip_prefix(root)
                .unwrap_or(&plan.lockfile)
                .display()
                .to_string();
            wharf_audit::render::sarif(&outcome.audit, &uri) + "\n"
        }
        Format::Cyclonedx => sbom(false)?,
        Format::Spdx => sbom(true)?,
        Format::Table => {
            let mut text = wharf_audit::render::table(&outcome.audit);
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
/// files (`wharf_oci::atomic`).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    wharf_oci::atomic::write(path, bytes)?;
    Ok(())
}

/// Fetches the advisory database when it is missing and updates an old git checkout of it
/// (unless offline); an old copy that could not be updated is a warning, not a failure.
pub fn prepare_db(plan: &ScanPlan) -> Result<()> {
    use wharf_advisory_db::Status;
    let status = scan::ensure_db(plan).map_err(|e| UsageError(e.into()))?;
    let db = plan.db.display();
    match &status {
        Status::Cloned => eprintln!(
            "==> advisory database: cloned {} into {db}",
            plan.db_fetch.url
        ),
        Status::Updated => eprintln!("==> advisory database: updated {db}"),
        Status::Stale { .. } => eprintln!("warning: advisory database {db}: {status}"),
        Status::Fresh | Status::Snapshot => {}
    }
    Ok(())
}

/// Makes the advisory database ready before `cargo xtask ci` starts its steps, so a
/// missing database fails in seconds rather than after the tests.
pub fn prepare_db_for_ci(session: &Session, offline: bool) -> Result<()> {
    let overrides = Overrides {
        lockfile_only: true,
        offline,
        ..Overrides::default()
    };
    prepare_db(&plan(session, overrides)?)
}
