//! The scan, matrix and push steps, beside the reports and registry code they share with
//! `cargo xtask scan`, `matrix` and `push`; and the pipelines composed from a config.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use wharf_flow::diagnostics::lockfile_line;
use wharf_flow::{Annotation, Context, Inputs, Level, Output, Outputs, Pipeline, Step, StepError};
use wharf_oci::Location;
use wharf_pipeline::scan::{self, Overrides};
use wharf_pipeline::steps::{Cargo, ImageStep};
use wharf_pipeline::{Config, ci};

use crate::Session;
use crate::scan::{Format, render, write_atomically};

fn step_error(e: impl std::fmt::Display) -> StepError {
    StepError::new(e.to_string())
}

fn path_of(outputs: Option<&Outputs>, name: &str) -> Option<PathBuf> {
    match outputs?.get(name)? {
        Output::Path(path) => Some(path.clone()),
        _ => None,
    }
}

/// SBOM, RustSec advisories, image checks and the policy gate, on the image the `image` step
/// built. Never cached: the advisory database changes without any file of the workspace
/// changing. Outputs the report paths and the number of findings by severity.
pub struct ScanStep {
    session: Arc<Session>,
    image: bool,
}

impl Step for ScanStep {
    fn id(&self) -> &str {
        "scan"
    }

    fn needs(&self) -> Vec<String> {
        if self.image {
            vec!["image".into()]
        } else {
            Vec::new()
        }
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-scan".into(), "--offline".into()]
    }

    fn describe(&self) -> String {
        "SBOM, RustSec advisories, image checks, then the [scan] policy gate".into()
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let session = &self.session;
        let root = session.root.clone();
        let config = session.config().map_err(step_error)?;
        let upstream = cx.outputs_of("image");
        let image = match (
            path_of(upstream, "layout"),
            upstream.and_then(|o| o.get("tags")),
        ) {
            (Some(layout), Some(Output::Tags(tags))) => tags.first().map(|t| (layout, t.clone())),
            _ => None,
        };
        let created = match upstream.and_then(|o| o.get("created")) {
            Some(Output::Count(seconds)) => *seconds as i64,
            _ => 0,
        };
        let overrides = Overrides {
            offline: true,
            lockfile_only: image.is_none(),
            ..Overrides::default()
        };
        let today = jiff::Zoned::now().date();
        let plan =
            scan::plan(&root, config, overrides, image, created, today).map_err(step_error)?;
        let _ = writeln!(
            cx.log(),
            "scan: {} against {}",
            plan.lockfile.display(),
            plan.db.display()
        );
        let outcome = scan::run(&plan).map_err(step_error)?;
        let dir = wharf_source::Workspace::load(&root)
            .map_err(step_error)?
            .target_dir
            .join("wharf")
            .join("scan");
        let mut outputs = Outputs::new();
        let mut files = vec![
            ("report", "report.json", Format::Json),
            ("sarif", "advisories.sarif", Format::Sarif),
        ];
        if outcome.sbom.is_some() {
            files.push(("sbom", "sbom.cdx.json", Format::Cyclonedx));
            files.push(("spdx", "sbom.spdx.json", Format::Spdx));
        }
        for (name, file, format) in files {
            let path = dir.join(file);
            let text = render(&root, &outcome, &plan, format).map_err(step_error)?;
            write_atomically(&path, text.as_bytes()).map_err(step_error)?;
            outputs.insert(name.into(), Output::Path(path));
        }
        let table = render(&root, &outcome, &plan, Format::Table).map_err(step_error)?;
        let _ = writeln!(cx.log(), "{table}    reports in {}", dir.display());
        // Each finding points at its package in Cargo.lock.
        let lock_text = std::fs::read_to_string(&plan.lockfile).unwrap_or_default();
        let lock_path = plan
            .lockfile
            .strip_prefix(&root)
            .unwrap_or(&plan.lockfile)
            .to_path_buf();
        for (finding, level) in outcome
            .vulnerabilities
            .iter()
            .map(|f| (f, Level::Error))
            .chain(outcome.warnings.iter().map(|f| (f, Level::Warning)))
        {
            let version = finding.version.to_string();
            cx.annotate(Annotation {
                level,
                file: Some(lock_path.clone()),
                line: lockfile_line(&lock_text, &finding.package, &version),
                column: None,
                title: Some(finding.id.clone()),
                message: format!("{} {version}: {}", finding.package, finding.title),
            });
        }
        let mut by_severity = std::collections::BTreeMap::<String, u64>::new();
        for finding in &outcome.vulnerabilities {
            let severity = finding
                .severity
                .map_or("unknown".to_string(), |s| s.to_string().to_lowercase());
            *by_severity.entry(severity).or_default() += 1;
        }
        for (severity, count) in by_severity {
            outputs.insert(severity, Output::Count(count));
        }
        outputs.insert(
            "warnings".into(),
            Output::Count(outcome.warnings.len() as u64),
        );
        crate::scan::verdict(&outcome).map_err(step_error)?;
        Ok(outputs)
    }
}

/// The `[matrix]` cells, all of them. Its cells get their compiler slots from the
/// pipeline's jobserver.
pub struct MatrixStep {
    session: Arc<Session>,
}

impl Step for MatrixStep {
    fn id(&self) -> &str {
        "matrix"
    }

    fn argv(&self) -> Vec<String> {
        vec!["cargo".into(), "xtask".into(), "matrix".into()]
    }

    fn describe(&self) -> String {
        "the [matrix] cells (cargo xtask matrix --dry-run lists them)".into()
    }

    fn inputs(&self) -> Option<Inputs> {
        Some(Inputs {
            files: vec!["**".into()],
            env: vec!["RUSTFLAGS".into(), "CARGO_ENCODED_RUSTFLAGS".into()],
            git: false,
        })
    }

    fn uses_compiler(&self) -> bool {
        true
    }

    fn lock(&self) -> Option<String> {
        Some("cargo build directory (dev)".into())
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let report = crate::matrix::ci_step(&self.session, cx).map_err(step_error)?;
        let count = |outcome| report.count(outcome) as u64;
        Ok(Outputs::from([
            (
                "passed".into(),
                Output::Count(count(wharf_matrix_run::Outcome::Passed)),
            ),
            (
                "flaky".into(),
                Output::Count(count(wharf_matrix_run::Outcome::Flaky)),
            ),
            (
                "failed".into(),
                Output::Count(count(wharf_matrix_run::Outcome::Failed)),
            ),
        ]))
    }
}

/// Pushes every tag of the image the `image` step built, then attaches the scan's report
/// and SBOM to it. Never cached: the registry is outside the workspace.
pub struct PushStep {
    session: Arc<Session>,
    destination: String,
    needs: Vec<String>,
}

impl Step for PushStep {
    fn id(&self) -> &str {
        "push"
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-push".into(), self.destination.clone()]
    }

    fn describe(&self) -> String {
        format!("push every tag of the image to {}", self.destination)
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let image = cx
            .outputs_of("image")
            .cloned()
            .ok_or_else(|| StepError::new("push needs the outputs of the image step"))?;
        let (Some(layout), Some(Output::Tags(tags))) =
            (path_of(Some(&image), "layout"), image.get("tags"))
        else {
            return Err(StepError::new("the image step recorded no layout and tags"));
        };
        let insecure = self
            .session
            .config()
            .map_err(step_error)?
            .push
            .as_ref()
            .map(|p| p.insecure.clone())
            .unwrap_or_default();
        let report =
            crate::push::push_layout(&self.destination, &layout, tags, true, insecure.clone())
                .map_err(step_error)?;
        let digest = report
            .digest
            .clone()
            .ok_or_else(|| StepError::new("the registry returned no digest"))?;
        let _ = writeln!(cx.log(), "pushed {}@{digest}", report.destination);
        let Location::Registry(repository) =
            crate::copy::parse(&self.destination).map_err(step_error)?
        else {
            return Err(StepError::new(format!(
                "{} is not a registry",
                self.destination
            )));
        };
        let subject = repository.with_digest(digest.clone());
        if let Some(scan) = cx.outputs_of("scan").cloned() {
            let read = |name| path_of(Some(&scan), name).and_then(|p| std::fs::read(p).ok());
            if let Some(report) = read("report") {
                let client = crate::copy::client(true, insecure).map_err(step_error)?;
                crate::referrers::attach_documents(
                    &client,
                    &subject,
                    report,
                    read("sbom"),
                    cx.log(),
                )
                .map_err(step_error)?;
            }
        }
        let reference = subject.to_string();
        Ok(Outputs::from([
            ("digest".into(), Output::Digest(digest.to_string())),
            ("reference".into(), Output::Reference(reference)),
            ("tags".into(), Output::Tags(tags.clone())),
        ]))
    }
}

/// Signs what the push step pushed (`cargo xtask sign --provenance` as a step), with the
/// key `[push] sign` names: cosign's signature, and SLSA provenance of the build unless
/// `provenance = false`. Never cached: the registry is outside the workspace.
pub struct SignStep {
    session: Arc<Session>,
    sign: wharf_pipeline::config::SignConfig,
}

impl Step for SignStep {
    fn id(&self) -> &str {
        "sign"
    }

    fn needs(&self) -> Vec<String> {
        vec!["push".into()]
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-sign".into(), self.sign.key.clone()]
    }

    fn describe(&self) -> String {
        let provenance = if self.sign.provenance {
            ", with SLSA provenance"
        } else {
            ""
        };
        format!("sign the pushed image (cosign's format{provenance})")
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let Some(Output::Reference(pushed)) =
            cx.outputs_of("push").and_then(|o| o.get("reference"))
        else {
            return Err(StepError::new(
                "sign needs the reference the push step recorded",
            ));
        };
        let image: wharf_oci::Reference = pushed.parse().map_err(step_error)?;
        let signed = crate::sign::sign_pushed(&self.session, &image, &self.sign, cx.log())
            .map_err(step_error)?;
        Ok(Outputs::from([(
            "signatures".into(),
            Output::Reference(signed.signatures),
        )]))
    }
}

/// Records in the promotion ledger that this run built and checked the image: the
/// verification entry the `tests` gate of a promotion reads, with the commit, its time (for
/// DORA's lead time), where the image is and the scan report. Added where the config has
/// `[[stages]]`, after every other step. Never cached: the ledger is outside the workspace.
pub struct RecordStep {
    session: Arc<Session>,
    needs: Vec<String>,
}

impl Step for RecordStep {
    fn id(&self) -> &str {
        "record"
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-record".into()]
    }

    fn describe(&self) -> String {
        "record the verified digest in the promotion ledger".into()
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let root = &self.session.root;
        let image = cx
            .outputs_of("image")
            .cloned()
            .ok_or_else(|| StepError::new("record needs the outputs of the image step"))?;
        let Some(Output::Digest(digest)) = image.get("digest") else {
            return Err(StepError::new("the image step recorded no digest"));
        };
        let digest: wharf_oci::Digest = digest.parse().map_err(step_error)?;
        let location = match cx.outputs_of("push").and_then(|o| o.get("reference")) {
            Some(Output::Reference(reference)) => {
                let reference: wharf_oci::Reference = reference.parse().map_err(step_error)?;
                format!(
                    "docker://{}/{}",
                    reference.registry(),
                    reference.repository()
                )
            }
            _ => {
                let layout = path_of(Some(&image), "layout")
                    .ok_or_else(|| StepError::new("the image step recorded no layout"))?;
                let relative = layout.strip_prefix(root).unwrap_or(&layout);
                format!("oci:{}", relative.display())
            }
        };
        let scan_report = path_of(cx.outputs_of("scan"), "report").and_then(|path| {
            let bytes = std::fs::read(&path).ok()?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            Some(wharf_promote::RecordedFile {
                path: relative.display().to_string(),
                digest: wharf_oci::Digest::sha256(&bytes),
            })
        });
        let git = wharf_source::git_facts(root).map_err(step_error)?;
        let evidence = wharf_promote::VerificationEvidence {
            location: Some(location.clone()),
            commit: Some(git.sha),
            commit_time: jiff::Timestamp::from_second(git.commit_time).ok(),
            tags: match image.get("tags") {
                Some(Output::Tags(tags)) => tags.clone(),
                _ => Vec::new(),
            },
            steps: self.needs.clone(),
            scan_report,
        };
        let config = self.session.config().map_err(step_error)?;
        let store = crate::promote::open_ledger(root, &config.ledger).map_err(step_error)?;
        let who = crate::promote::who(root).unwrap_or_else(|_| "unknown".into());
        // A run that changed nothing (a cached image) records nothing new: decided inside the
        // append, on the ledger it reads anyway.
        let mut already = None;
        let appended = store.append(|entries: &[wharf_ledger::Entry]| {
            already = entries
                .iter()
                .rev()
                .find(|e| {
                    let recorded = wharf_promote::VerificationEvidence::of(e);
                    e.kind == wharf_ledger::Kind::Verification
                        && e.digest == digest
                        && recorded.location == evidence.location
                        && recorded.commit == evidence.commit
                })
                .map(|e| e.seq);
            match already {
                Some(_) => Err(anyhow::anyhow!("already recorded")),
                None => Ok(wharf_promote::verification_draft(
                    digest.clone(),
                    &who,
                    jiff::Timestamp::now(),
                    &evidence,
                )),
            }
        });
        if let Some(seq) = already {
            let _ = writeln!(
                cx.log(),
                "{digest} is already recorded as verified (ledger entry {seq})"
            );
            return Ok(Outputs::from([("entry".into(), Output::Count(seq))]));
        }
        let entry = crate::promote::appended(appended).map_err(step_error)?;
        let _ = writeln!(
            cx.log(),
            "recorded {digest} as verified ({location}) in the ledger {} (entry {})",
            store.describe(),
            entry.seq
        );
        Ok(Outputs::from([("entry".into(), Output::Count(entry.seq))]))
    }
}

/// Promotes into a stage of `[[stages]]` (`cargo xtask promote STAGE` as a step): the
/// digest current in its `from` stage, or for a first stage the one the `record` step just
/// verified. Fails when a gate blocks, naming each. Never cached: the ledger and the
/// registry are outside the workspace.
pub struct PromoteStep {
    session: Arc<Session>,
    stage: String,
    id: String,
    needs: Vec<String>,
}

impl PromoteStep {
    /// Promotes into `stage` after the steps `needs`.
    pub fn new(session: &Arc<Session>, stage: &str, needs: Vec<String>) -> PromoteStep {
        PromoteStep {
            session: session.clone(),
            stage: stage.to_string(),
            id: format!("promote-{stage}"),
            needs,
        }
    }
}

impl Step for PromoteStep {
    fn id(&self) -> &str {
        &self.id
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-promote".into(), self.stage.clone()]
    }

    fn describe(&self) -> String {
        format!(
            "promote the verified digest into {}, through its gates",
            self.stage
        )
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        // The digest this run recorded, when there is one: a first stage must take what this
        // pipeline verified, not a newer verification by another runner.
        let digest = match cx.outputs_of("image").and_then(|o| o.get("digest")) {
            Some(Output::Digest(d)) if self.first_stage() => Some(d.parse().map_err(step_error)?),
            _ => None,
        };
        use crate::promote::Outcome;
        let promoted = match crate::promote::promote_into(&self.session, &self.stage, digest, false)
            .map_err(step_error)?
        {
            Outcome::Promoted(promoted) => promoted,
            Outcome::Blocked(plan) => {
                let _ = write!(cx.log(), "{plan}");
                return Err(step_error(crate::promote::blocked(&plan, "")));
            }
            Outcome::Planned(_) => unreachable!("not a dry run"),
        };
        for note in &promoted.notes {
            let _ = writeln!(cx.log(), "{note}");
        }
        let _ = writeln!(
            cx.log(),
            "promoted {} to {} (ledger entry {})",
            promoted.entry.digest,
            self.stage,
            promoted.entry.seq
        );
        Ok(promoted_outputs(&promoted))
    }
}

impl PromoteStep {
    fn first_stage(&self) -> bool {
        self.session.config().is_ok_and(|c| {
            c.stages
                .iter()
                .any(|s| s.name == self.stage && s.from.is_none())
        })
    }
}

/// Deploys a stage's current digest on its `[stages.deploy]` target (`cargo xtask deploy
/// STAGE` as a step): health and smoke checked, recorded in the ledger; fails with the
/// evidence when the new version is not healthy (the old one keeps serving). Never cached:
/// what runs is outside the workspace.
pub struct DeployStep {
    session: Arc<Session>,
    stage: String,
    id: String,
    needs: Vec<String>,
}

impl DeployStep {
    /// Deploys `stage` after the steps `needs` (e.g. its promotion).
    pub fn new(session: &Arc<Session>, stage: &str, needs: Vec<String>) -> DeployStep {
        DeployStep {
            session: session.clone(),
            stage: stage.to_string(),
            id: format!("deploy-{stage}"),
            needs,
        }
    }
}

impl Step for DeployStep {
    fn id(&self) -> &str {
        &self.id
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-deploy".into(), self.stage.clone()]
    }

    fn describe(&self) -> String {
        format!("deploy the digest current in {} to its target", self.stage)
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        use crate::promote::deploy::{Choice, Deployed, deploy_stage, failure};
        let mut lines = Vec::new();
        let deployed = deploy_stage(
            &self.session,
            &self.stage,
            Choice::Current,
            false,
            &mut |line| lines.push(line.to_string()),
        );
        for line in lines {
            let _ = writeln!(cx.log(), "{line}");
        }
        let Deployed::Done { report, entry } = deployed.map_err(step_error)? else {
            unreachable!("not a dry run")
        };
        let _ = writeln!(cx.log(), "{}", report.detail());
        if let Some(e) = failure(&report) {
            return Err(step_error(e));
        }
        let mut outputs =
            Outputs::from([("digest".into(), Output::Digest(report.digest.to_string()))]);
        if let Some(entry) = entry {
            outputs.insert("entry".into(), Output::Count(entry.seq));
        }
        Ok(outputs)
    }
}

/// Runs a stage's `[[stages.deploy.smoke]]` checks (`cargo xtask smoke STAGE` as a step):
/// status, body and latency of each; fails naming every check that did not pass.
pub struct SmokeStep {
    session: Arc<Session>,
    stage: String,
    id: String,
    needs: Vec<String>,
}

impl SmokeStep {
    pub fn new(session: &Arc<Session>, stage: &str, needs: Vec<String>) -> SmokeStep {
        SmokeStep {
            session: session.clone(),
            stage: stage.to_string(),
            id: format!("smoke-{stage}"),
            needs,
        }
    }
}

impl Step for SmokeStep {
    fn id(&self) -> &str {
        &self.id
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-smoke".into(), self.stage.clone()]
    }

    fn describe(&self) -> String {
        format!("the smoke checks of {}", self.stage)
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        use crate::promote::deploy::{smoke_failure, smoke_lines, smoke_stage};
        let results = smoke_stage(&self.session, &self.stage, None).map_err(step_error)?;
        let _ = write!(cx.log(), "{}", smoke_lines(&results));
        if let Some(e) = smoke_failure(&self.stage, &results) {
            return Err(step_error(e));
        }
        Ok(Outputs::from([(
            "passed".into(),
            Output::Count(results.len() as u64),
        )]))
    }
}

/// Approves the digest waiting to come into a stage, as whoever runs the pipeline
/// (`cargo xtask approve STAGE` as a step): for an automated approver, e.g. after a job
/// that checked the digest in the stage before.
pub struct ApproveStep {
    session: Arc<Session>,
    stage: String,
    id: String,
    needs: Vec<String>,
}

impl ApproveStep {
    pub fn new(session: &Arc<Session>, stage: &str, needs: Vec<String>) -> ApproveStep {
        ApproveStep {
            session: session.clone(),
            stage: stage.to_string(),
            id: format!("approve-{stage}"),
            needs,
        }
    }
}

impl Step for ApproveStep {
    fn id(&self) -> &str {
        &self.id
    }

    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }

    fn argv(&self) -> Vec<String> {
        vec!["wharf-approve".into(), self.stage.clone()]
    }

    fn describe(&self) -> String {
        format!("approve the digest waiting to come into {}", self.stage)
    }

    fn inputs(&self) -> Option<Inputs> {
        None
    }

    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        let entry = crate::promote::approve_digest(&self.session, &self.stage, None, None)
            .map_err(step_error)?;
        let _ = writeln!(
            cx.log(),
            "{} approved {} for {} (ledger entry {})",
            entry.who,
            entry.digest,
            self.stage,
            entry.seq
        );
        Ok(Outputs::from([
            ("digest".into(), Output::Digest(entry.digest.to_string())),
            ("entry".into(), Output::Count(entry.seq)),
        ]))
    }
}

/// The promote step's outputs: the digest, its ledger entry and the tags moved.
fn promoted_outputs(promoted: &crate::promote::Promoted) -> Outputs {
    let tags = promoted.plan.target.tags.iter();
    Outputs::from([
        (
            "digest".into(),
            Output::Digest(promoted.entry.digest.to_string()),
        ),
        ("entry".into(), Output::Count(promoted.entry.seq)),
        (
            "tags".into(),
            Output::Tags(tags.map(|t| t.as_str().to_string()).collect()),
        ),
    ])
}

/// The steps a pipeline of `[ci] steps` is made of, and those left out (with why).
pub fn ci(session: &Arc<Session>) -> anyhow::Result<(Pipeline, Vec<ci::Skipped>)> {
    let config = session.config()?;
    let planned = ci::plan(config);
    let mut pipeline = Pipeline::new("ci");
    let mut before_push = Vec::new();
    for step in &planned.steps {
        let boxed: Box<dyn Step> = match step {
            ci::Step::Command { name, .. } => match name.as_str() {
                "fmt" => Box::new(Cargo::fmt()),
                "clippy" => Box::new(Cargo::clippy()),
                _ => Box::new(Cargo::test(&config.ci.test_args)),
            },
            ci::Step::Image { .. } => Box::new(image_step(session, config)?),
            ci::Step::Scan { .. } => Box::new(ScanStep {
                session: session.clone(),
                image: config.image.is_some(),
            }),
            ci::Step::Matrix { .. } => Box::new(MatrixStep {
                session: session.clone(),
            }),
            ci::Step::Push { destination, .. } => Box::new(PushStep {
                session: session.clone(),
                destination: destination.clone(),
                // Nothing is pushed before every other step has passed.
                needs: before_push.clone(),
            }),
        };
        before_push.push(boxed.id().to_string());
        pipeline.steps.push(boxed);
    }
    add_record(session, config, &mut pipeline);
    Ok((pipeline, planned.skipped))
}

/// With `[[stages]]` and an image, the run ends by recording the image as verified (after
/// every other step, the push included, so a failed step records nothing). A pipeline that
/// adds steps of its own calls it again afterwards, so the record needs them too.
pub fn add_record(session: &Arc<Session>, config: &Config, pipeline: &mut Pipeline) {
    // The promotions that come after the record (`[push] promote_to`) stay after it.
    let (promotions, mut steps): (Vec<_>, Vec<_>) = std::mem::take(&mut pipeline.steps)
        .into_iter()
        .filter(|s| s.id() != "record")
        .partition(|s| s.id().starts_with("promote-") || s.id().starts_with("approve-"));
    if !config.stages.is_empty() && steps.iter().any(|s| s.id() == "image") {
        let needs = steps.iter().map(|s| s.id().to_string()).collect();
        steps.push(Box::new(RecordStep {
            session: session.clone(),
            needs,
        }));
    }
    steps.extend(promotions);
    pipeline.steps = steps;
}

/// `ci`, then the push: what a version tag runs. The push destination is required.
pub fn release(session: &Arc<Session>) -> anyhow::Result<(Pipeline, Vec<ci::Skipped>)> {
    let config = session.config()?;
    let Some(push) = &config.push else {
        return Err(crate::usage(format!(
            "the release pipeline pushes the image: add [push] destination = \"docker://HOST/REPO\" to {}",
            session.config_path.display()
        )));
    };
    let (mut pipeline, skipped) = ci(session)?;
    pipeline.name = "release".into();
    if !pipeline.steps.iter().any(|s| s.id() == "push") {
        let needs = pipeline
            .steps
            .iter()
            .map(|s| s.id().to_string())
            .filter(|id| id != "record")
            .collect();
        pipeline.steps.push(Box::new(PushStep {
            session: session.clone(),
            destination: push.destination.clone(),
            needs,
        }));
    }
    if let Some(sign) = &push.sign {
        pipeline.steps.push(Box::new(SignStep {
            session: session.clone(),
            sign: sign.clone(),
        }));
    }
    // The record goes last again, so it names where the push put the image.
    add_record(session, config, &mut pipeline);
    // `Config::parse` checked that the stage exists.
    if let Some(stage) = &push.promote_to {
        let needs = pipeline.steps.iter().map(|s| s.id().to_string()).collect();
        let promote = PromoteStep::new(session, stage, needs);
        let promoted = promote.id().to_string();
        pipeline.steps.push(Box::new(promote));
        // A stage with a deploy target runs what was just promoted into it.
        if config
            .stages
            .iter()
            .any(|s| &s.name == stage && s.deploy.is_some())
        {
            pipeline
                .steps
                .push(Box::new(DeployStep::new(session, stage, vec![promoted])));
        }
    }
    Ok((pipeline, skipped))
}

fn image_step(session: &Session, config: &Config) -> anyhow::Result<ImageStep> {
    ImageStep::new(config, &session.config_path, &session.root)
        .ok_or_else(|| crate::usage("no [image] section: there is no image to build"))
}
