//! `cargo xtask promote`, `approve`, `rollback`, `status`, `history`, `ledger verify` and
//! `dora`: the I/O around the pure planning of `wharf_promote`.
//!
//! Every command that changes a stage follows one order (see docs/ARCHITECTURE.md,
//! "Promotion"): repair any tag that disagrees with the ledger; plan from the ledger and
//! the evidence; copy the image in by digest (no tag moves); append the ledger entry, the
//! gates checked again on the ledger's tip inside the append; then move the tags until they
//! equal the ledger's last entries. A crash anywhere leaves either nothing or a ledger
//! entry whose tags the next command moves.

pub mod deploy;
mod evidence;
mod identity;
pub mod k8s;
mod ledger;
mod notify;
mod place;
mod smoke;
mod ssh;

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use serde_json::json;
use wharf_ledger::{AppendError, Entry, Snapshot, Store};
use wharf_oci::Digest;
use wharf_pipeline::Config;
use wharf_promote::{Notification, PromotionPlan, Stage};
use wharf_registry::Client;

use crate::{GateFailed, Session, UsageError, stdout};
use place::Place;

pub(crate) use identity::who;
pub use ledger::open as open_ledger;

/// How many times the tags are moved and the ledger read again before giving up on a
/// ledger that keeps changing under us.
const CONVERGE_ROUNDS: usize = 20;

#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The stage to promote into, e.g. `staging`.
    stage: String,
    /// The digest to promote (default: the one current in the stage it comes from; for the
    /// first stage, the last one CI verified).
    #[arg(long)]
    digest: Option<String>,
    /// Print the plan (source, target, tags, each gate with its evidence) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan or the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The stage the approval is for.
    stage: String,
    /// The digest approved (an approval counts for this digest only). Default: the one
    /// waiting to come in (the `from` stage's current digest), printed with the approval.
    digest: Option<String>,
    /// The same, as an option (what the generated promotion workflow passes).
    #[arg(long = "digest", value_name = "DIGEST", conflicts_with = "digest")]
    digest_option: Option<String>,
    /// Sign the approval with this SSH private key (`ssh-keygen -Y sign`), for stages that
    /// require signed approvals.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The stage to move back to its previous digest.
    stage: String,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// The stage whose entries to list.
    stage: String,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(clap::Subcommand)]
pub enum LedgerCommand {
    /// Check the hash chain: an edited, removed or reordered entry is named.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct DoraArgs {
    /// The window, in days back from now.
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long)]
    json: bool,
}

/// A fault-injection point for the crash test (`tests/promote.rs`): with this variable set
/// to a path, a command that changes a stage creates that file right after its ledger entry
/// is written, then waits (at most two minutes) to be killed before it moves any tag.
const PAUSE_ENV: &str = "WHARF_PAUSE_AFTER_LEDGER_WRITE";

fn pause_after_ledger_write() {
    if let Some(path) = std::env::var_os(PAUSE_ENV) {
        let _ = std::fs::write(&path, b"");
        std::thread::sleep(std::time::Duration::from_secs(120));
    }
}

/// What every command here needs: the config's stages, the ledger, a registry client.
struct Ctx<'a> {
    session: &'a Session,
    config: &'a Config,
    store: Store,
    /// The last ledger read, for the next append to build on.
    last_read: RefCell<Option<Snapshot>>,
    client: Client,
}

impl<'a> Ctx<'a> {
    fn new(session: &'a Session) -> Result<Ctx<'a>> {
        let config = session.config()?;
        if config.stages.is_empty() {
            return Err(crate::usage(format!(
                "no [[stages]] in {}: add the stages a digest moves through, e.g.\n\
                 [[stages]]\nname = \"dev\"\nlocation = \"oci:target/wharf/oci/app\"\n\n\
                 [[stages]]\nname = \"staging\"\nfrom = \"dev\"\nlocation = \"docker://HOST/REPO\"",
                session.config_path.display()
            )));
        }
        // The stages were validated when the config was read (`Config::parse`).
        let insecure = config
            .push
            .as_ref()
            .map(|p| p.insecure.clone())
            .unwrap_or_default();
        Ok(Ctx {
            session,
            config,
            store: ledger::open(&session.root, &config.ledger)?,
            last_read: RefCell::new(None),
            client: crate::copy::client(true, insecure)?,
        })
    }

    fn stages(&self) -> &[Stage] {
        &self.config.stages
    }

    fn stage(&self, name: &str) -> Result<&Stage> {
        self.stages()
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.stages().iter().map(|s| s.name.as_str()).collect();
                crate::usage(format!(
                    "no stage {name:?} in {} (stages: {})",
                    self.session.config_path.display(),
                    names.join(", ")
                ))
            })
    }

    fn place(&self, location: &str) -> Result<Place> {
        Place::parse(location, &self.session.root)
    }

    /// The ledger's entries, read afresh; the read is kept for the next [`Ctx::append`].
    fn entries(&self) -> Result<Vec<Entry>> {
        let snapshot = self
            .store
            .snapshot()
            .with_context(|| format!("reading the ledger ({})", self.store.describe()))?;
        let entries = snapshot.entries.clone();
        self.last_read.replace(Some(snapshot));
        Ok(entries)
    }

    /// Appends what `make` drafts, first on this command's last read (no second read when
    /// nothing else wrote meanwhile; when something did, the append reads again).
    fn append(&self, make: impl FnMut(&[Entry]) -> Result<wharf_ledger::Draft>) -> Result<Entry> {
        appended(self.store.append_on(self.last_read.take(), make))
    }

    /// Moves every tag of `only` (or of every stage) to the digest the ledger's last entry
    /// for that stage names, starting from `known` entries (the ledger as just written) or a
    /// fresh read. After a round that moved something, the ledger is read again, and the
    /// rounds go on until it did not change meanwhile: then no writer appended while the tags
    /// moved, and they equal the ledger. A round that moved nothing ends it at once: a writer
    /// that appended since runs its own rounds after its append, and nothing of this process
    /// can land after its moves. Returns what moved and the entries last read.
    fn converge(
        &self,
        only: Option<&str>,
        known: Option<Vec<Entry>>,
    ) -> Result<(Vec<String>, Vec<Entry>)> {
        let mut moved = Vec::new();
        let mut entries = match known {
            Some(entries) => entries,
            None => self.entries()?,
        };
        for _ in 0..CONVERGE_ROUNDS {
            let tip = entries.last().map(Entry::hash);
            let mut moved_now = Vec::new();
            for want in wharf_promote::desired(self.stages(), &entries) {
                if only.is_some_and(|s| s != want.stage) {
                    continue;
                }
                let place = self.place(&want.location)?;
                let tag = want.tag.as_str();
                if place.tag_digest(&self.client, tag)? == Some(want.digest.clone()) {
                    continue;
                }
                if place.manifest(&self.client, &want.digest)?.is_none() {
                    return Err(anyhow!(
                        "the ledger puts {} in {} ({place}), but that image is not there: \
                         promote it again (`cargo xtask promote {} --digest {}`)",
                        want.digest,
                        want.stage,
                        want.stage,
                        want.digest
                    ));
                }
                place.move_tag(&self.client, tag, &want.digest)?;
                moved_now.push(format!("{place}:{tag} -> {}", want.digest));
            }
            if moved_now.is_empty() {
                return Ok((moved, entries));
            }
            moved.extend(moved_now);
            entries = self.entries()?;
            if entries.last().map(Entry::hash) == tip {
                return Ok((moved, entries));
            }
        }
        Err(anyhow!(
            "the ledger kept changing while the tags were moved ({CONVERGE_ROUNDS} rounds); \
             run the command again"
        ))
    }

    /// The tags that disagree with the ledger (what a crash between a ledger write and a
    /// tag move leaves), each with what repairs it. Reads only; one request per tag.
    fn drift(&self, entries: &[Entry]) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for want in wharf_promote::desired(self.stages(), entries) {
            let place = self.place(&want.location)?;
            let tag = want.tag.as_str();
            let now = place.tag_digest(&self.client, tag)?;
            if now.as_ref() != Some(&want.digest) {
                found.push(format!(
                    "{place}:{tag} points at {}, the ledger says {}: the next `cargo xtask \
                     promote` or `rollback` of {} moves it",
                    now.map_or_else(|| "nothing".to_string(), |d| d.to_string()),
                    want.digest,
                    want.stage
                ));
            }
        }
        Ok(found)
    }

    /// Repairs what a crash between a ledger write and a tag move left in `stage` (the one
    /// this command changes: other stages' tags are left to the commands that change them,
    /// which keeps a command to a few registry requests); says what moved, and returns the
    /// ledger as read.
    fn repair(&self, stage: &str) -> Result<(Vec<String>, Vec<Entry>)> {
        let (moved, entries) = self.converge(Some(stage), None)?;
        let lines = moved
            .into_iter()
            .map(|line| format!("    repaired {line} (the ledger's last entry for the stage)"))
            .collect();
        Ok((lines, entries))
    }

    /// Sends to the webhooks; returns the warnings to show.
    fn notify(&self, notification: &Notification) -> Vec<String> {
        notify::send(
            &self.config.webhooks,
            &notification.to_json(),
            &notification.to_slack(),
        )
        .into_iter()
        .map(|warning| format!("warning: {warning}"))
        .collect()
    }
}

fn parse_digest(text: &str) -> Result<Digest> {
    text.parse()
        .map_err(|e| UsageError(anyhow!("{text:?} is not a digest (sha256:<64 hex>): {e}")).into())
}

/// What a promotion did, or would do.
pub enum Outcome {
    /// `--dry-run`: the plan, every gate passing.
    Planned(PromotionPlan),
    /// A gate failed: nothing was copied, written or moved.
    Blocked(PromotionPlan),
    Promoted(Box<Promoted>),
}

/// A promotion carried out.
pub struct Promoted {
    pub plan: PromotionPlan,
    pub entry: Entry,
    pub copied: wharf_pipeline::copy::CopyReport,
    /// Lines of the repairs made first and of the webhook warnings, for the log.
    pub notes: Vec<String>,
}

impl Promoted {
    fn json(&self, location: &str) -> serde_json::Value {
        json!({
            "stage": self.plan.stage,
            "digest": self.entry.digest,
            "entry": self.entry.seq,
            "tags": self.plan.target.tags,
            "location": location,
            "copy": self.copied,
            "gates": self.plan.gates,
        })
    }
}

/// Promotes `digest` (default: the candidate) into `stage_name`: repair, plan, copy by
/// digest, append (the gates again on the tip), move the tags, notify. What `cargo xtask
/// promote` and the promote step share.
pub fn promote_into(
    session: &Session,
    stage_name: &str,
    digest: Option<Digest>,
    dry_run: bool,
) -> Result<Outcome> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(stage_name)?.clone();
    let mut notes = Vec::new();
    let entries = if dry_run {
        cx.entries()?
    } else {
        let (repaired, entries) = cx.repair(&stage.name)?;
        notes.extend(repaired);
        entries
    };
    let candidate = wharf_promote::candidate(cx.stages(), &stage.name, &entries, digest)
        .map_err(|e| UsageError(e.into()))?;
    let evidence = evidence::gather(&cx, &stage, &candidate, &entries)?;
    let now = Timestamp::now();
    let plan = wharf_promote::plan(cx.stages(), &candidate, &entries, &evidence, now)
        .map_err(|e| UsageError(e.into()))?;
    if !plan.allowed() {
        if !dry_run {
            let who = identity::who(&session.root).unwrap_or_else(|_| "unknown".into());
            for warning in cx.notify(&Notification::gate_failed(&plan, &who, now)) {
                eprintln!("{warning}");
            }
        }
        return Ok(Outcome::Blocked(plan));
    }
    if dry_run {
        return Ok(Outcome::Planned(plan));
    }
    let who = identity::who(&session.root)?;
    let source = cx.place(&candidate.source.location)?;
    let target = cx.place(&stage.location)?;
    let copied = target.copy_in(&cx.client, &source, &candidate.digest)?;
    // The gates again, on the ledger as it is when the entry is written: another runner may
    // have promoted or rolled back meanwhile (the append retries on a new tip).
    let mut written = Vec::new();
    let entry = cx.append(|entries: &[Entry]| -> Result<_> {
        written = entries.to_vec();
        let candidate = wharf_promote::candidate(
            cx.stages(),
            &stage.name,
            entries,
            Some(candidate.digest.clone()),
        )?;
        let now = Timestamp::now();
        let plan = wharf_promote::plan(cx.stages(), &candidate, entries, &evidence, now)?;
        if !plan.allowed() {
            return Err(blocked(&plan, " any more"));
        }
        Ok(plan.draft(&who, now))
    })?;
    pause_after_ledger_write();
    written.push(entry.clone());
    cx.converge(Some(&stage.name), Some(written))?;
    notes.extend(cx.notify(&Notification::promoted(&plan, &who, entry.when)));
    Ok(Outcome::Promoted(Box::new(Promoted {
        plan,
        entry,
        copied,
        notes,
    })))
}

/// The error of a blocked promotion: exit code 3, each failed gate with its evidence.
pub fn blocked(plan: &PromotionPlan, qualifier: &str) -> anyhow::Error {
    GateFailed(format!(
        "{} cannot go to {}{qualifier}: {}",
        plan.digest,
        plan.stage,
        failed_gates(plan)
    ))
    .into()
}

pub fn promote(args: PromoteArgs, session: &Session) -> Result<()> {
    let digest = args.digest.as_deref().map(parse_digest).transpose()?;
    let promoted = match promote_into(session, &args.stage, digest, args.dry_run)? {
        Outcome::Planned(plan) => return print_plan(&plan, args.json),
        Outcome::Blocked(plan) => {
            print_plan(&plan, args.json)?;
            return Err(blocked(&plan, ""));
        }
        Outcome::Promoted(promoted) => promoted,
    };
    for note in &promoted.notes {
        eprintln!("{note}");
    }
    let Promoted {
        plan,
        entry,
        copied,
        ..
    } = promoted.as_ref();
    let location = &plan.target.location;
    if args.json {
        stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&promoted.json(location))?
        ))
    } else {
        stdout(&format!(
            "promoted {} to {} ({}: {}), ledger entry {}\n    blobs: {} copied ({} bytes), {} mounted, {} already there\n",
            entry.digest,
            plan.stage,
            location,
            tag_list(&plan.target.tags),
            entry.seq,
            copied.blobs_uploaded,
            copied.bytes_uploaded,
            copied.blobs_mounted,
            copied.blobs_skipped
        ))
    }
}

fn print_plan(plan: &wharf_promote::PromotionPlan, json: bool) -> Result<()> {
    if json {
        return stdout(&format!("{}\n", serde_json::to_string_pretty(plan)?));
    }
    stdout(&plan.to_string())
}

/// The failed gates' messages, each naming its gate and evidence.
fn failed_gates(plan: &wharf_promote::PromotionPlan) -> String {
    plan.failed()
        .map(|g| g.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn tag_list(tags: &[wharf_tag::Tag]) -> String {
    tags.iter()
        .map(wharf_tag::Tag::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An append's error as the command's: a refusal of the caller's own check (a gate failed
/// on the new tip) keeps its type, so that it maps to its exit code.
pub(crate) fn appended(result: Result<Entry, AppendError<anyhow::Error>>) -> Result<Entry> {
    result.map_err(|e| match e {
        AppendError::Aborted(e) => e,
        AppendError::Store(e) => e.into(),
        AppendError::Draft(e) => e.into(),
        contended @ AppendError::Contended { .. } => anyhow!("{contended}"),
    })
}

/// Records an approval of `digest` (default: the digest waiting to come into the stage)
/// by whoever runs this, signed with the SSH key `sign` if given. What `cargo xtask approve`
/// and the approve step share.
pub fn approve_digest(
    session: &Session,
    stage_name: &str,
    digest: Option<Digest>,
    sign: Option<&std::path::Path>,
) -> Result<Entry> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(stage_name)?.clone();
    let digest = match digest {
        Some(digest) => digest,
        None => {
            wharf_promote::candidate(cx.stages(), &stage.name, &cx.entries()?, None)
                .map_err(|e| UsageError(e.into()))?
                .digest
        }
    };
    let who = identity::who(&session.root)?;
    let signature = match sign {
        Some(key) => Some(ssh::sign(
            key,
            &wharf_promote::approval_message(&stage.name, &digest, &who),
        )?),
        None => None,
    };
    cx.append(|_: &[Entry]| -> Result<_> {
        Ok(wharf_promote::approval_draft(
            &stage.name,
            digest.clone(),
            &who,
            Timestamp::now(),
            signature.clone(),
        ))
    })
}

pub fn approve(args: ApproveArgs, session: &Session) -> Result<()> {
    let digest = args
        .digest
        .as_deref()
        .or(args.digest_option.as_deref())
        .map(parse_digest)
        .transpose()?;
    let entry = approve_digest(session, &args.stage, digest, args.sign.as_deref())?;
    if args.json {
        stdout(&format!("{}\n", serde_json::to_string_pretty(&entry)?))
    } else {
        stdout(&format!(
            "{} approved {} for {}{} (ledger entry {})\n",
            entry.who,
            entry.digest,
            args.stage,
            if entry.signature.is_some() {
                ", signed"
            } else {
                ""
            },
            entry.seq
        ))
    }
}

pub fn rollback(args: RollbackArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(&args.stage)?.clone();
    let entries = if args.dry_run {
        cx.entries()?
    } else {
        let (repaired, entries) = cx.repair(&stage.name)?;
        for line in repaired {
            eprintln!("{line}");
        }
        entries
    };
    let plan = wharf_promote::plan_rollback(cx.stages(), &stage.name, &entries)
        .map_err(|e| UsageError(e.into()))?;
    if args.dry_run {
        return if args.json {
            stdout(&format!("{}\n", serde_json::to_string_pretty(&plan)?))
        } else {
            stdout(&format!(
                "roll {} back from {} to {} (tags: {})\n",
                plan.stage,
                plan.from_digest,
                plan.digest,
                tag_list(&plan.tags)
            ))
        };
    }
    let place = cx.place(&stage.location)?;
    if place.manifest(&cx.client, &plan.digest)?.is_none() {
        return Err(anyhow!(
            "{} is no longer in {place}: it cannot be rolled back to",
            plan.digest
        ));
    }
    let who = identity::who(&session.root)?;
    // Planned again on the ledger's tip inside the append: a concurrent promotion or
    // rollback changes what "back" is, and this one goes back from whatever is current.
    let mut plan = plan;
    let mut written = Vec::new();
    let entry = cx.append(|entries: &[Entry]| -> Result<_> {
        written = entries.to_vec();
        plan = wharf_promote::plan_rollback(cx.stages(), &stage.name, entries)?;
        Ok(plan.draft(&who, Timestamp::now()))
    })?;
    pause_after_ledger_write();
    written.push(entry.clone());
    cx.converge(Some(&stage.name), Some(written))?;
    for warning in cx.notify(&Notification::rolled_back(&plan, &who, entry.when)) {
        eprintln!("{warning}");
    }
    if args.json {
        stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "stage": stage.name, "from": plan.from_digest, "to": plan.digest,
                "entry": entry.seq, "tags": plan.tags,
            }))?
        ))
    } else {
        stdout(&format!(
            "rolled {} back from {} to {} (ledger entry {})\n",
            stage.name, plan.from_digest, plan.digest, entry.seq
        ))
    }
}

pub fn status(args: StatusArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let entries = cx.entries()?;
    let status = wharf_promote::status(cx.stages(), &entries);
    for warning in cx.drift(&entries)? {
        eprintln!("warning: {warning}");
    }
    if args.json {
        return stdout(&format!("{}\n", serde_json::to_string_pretty(&status)?));
    }
    let mut text = String::new();
    for s in &status {
        match &s.digest {
            Some(digest) => text.push_str(&format!(
                "{:<12} {digest}  since {} by {} (entry {}) tags: {}\n",
                s.stage,
                s.since.map(|t| t.to_string()).unwrap_or_default(),
                s.by.clone().unwrap_or_default(),
                s.seq.unwrap_or_default(),
                tag_list(&s.tags)
            )),
            None => text.push_str(&format!("{:<12} (nothing promoted yet)\n", s.stage)),
        }
        for waiting in &s.waiting {
            text.push_str(&format!(
                "{:<12}   waiting: {} approved by {}\n",
                "",
                waiting.digest,
                waiting.approvals.join(", ")
            ));
        }
    }
    stdout(&text)
}

pub fn history(args: HistoryArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let stage = cx.stage(&args.stage)?.clone();
    let entries = wharf_promote::history(&cx.entries()?, &stage.name);
    if args.json {
        return stdout(&format!("{}\n", serde_json::to_string_pretty(&entries)?));
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(&format!(
            "{:>5} {} {:<12} {} {}{} by {}\n",
            e.seq,
            e.when,
            format!("{:?}", e.kind).to_lowercase(),
            e.digest,
            e.from
                .as_deref()
                .map(|f| format!("{f} -> "))
                .unwrap_or_default(),
            e.to.as_deref().unwrap_or("-"),
            e.who
        ));
    }
    stdout(&text)
}

pub fn ledger(args: LedgerArgs, session: &Session) -> Result<()> {
    let LedgerCommand::Verify { json } = args.command;
    let config = session.config()?;
    let store = ledger::open(&session.root, &config.ledger)?;
    let raw = store.raw()?;
    match wharf_ledger::verify(&raw) {
        Ok(entries) => {
            let tip = entries.last().map(Entry::hash);
            if json {
                stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json!({
                        "ok": true, "entries": entries.len(), "tip": tip,
                        "ledger": store.describe(),
                    }))?
                ))
            } else {
                stdout(&format!(
                    "ledger {}: {} entries, the hash chain holds (tip {})\n",
                    store.describe(),
                    entries.len(),
                    tip.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
                ))
            }
        }
        Err(tamper) => {
            if json {
                stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json!({
                        "ok": false, "error": tamper.to_string(), "ledger": store.describe(),
                    }))?
                ))?;
            }
            Err(anyhow!("ledger {}: {tamper}", store.describe()))
        }
    }
}

pub fn dora(args: DoraArgs, session: &Session) -> Result<()> {
    let cx = Ctx::new(session)?;
    let entries = cx.entries()?;
    let last = final_stage(cx.stages());
    let now = Timestamp::now();
    let since = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(args.days)))
        .map_err(|e| UsageError(anyhow!("--days {}: {e}", args.days)))?;
    let figures = wharf_promote::dora(cx.stages(), &entries, &last, since, now)
        .map_err(|e| UsageError(e.into()))?;
    if args.json {
        return stdout(&format!("{}\n", serde_json::to_string_pretty(&figures)?));
    }
    let days = |m: &Option<wharf_promote::Median>| match m {
        Some(m) => format!(
            "{} (median of {})",
            jiff::SignedDuration::from_secs(m.median_secs as i64),
            m.samples
        ),
        None => "-".into(),
    };
    let rate = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.1}", r));
    stdout(&format!(
        "{} over the last {} days:\n    deployment frequency: {} ({} per day, {} per week)\n    lead time for changes: {}\n    change failure rate: {}\n    failed deployment recovery time: {} ({} not recovered)\n",
        figures.stage,
        args.days,
        figures.deployments,
        rate(figures.deployments_per_day),
        rate(figures.deployments_per_week),
        days(&figures.lead_time),
        figures
            .change_failure_rate
            .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
        days(&figures.recovery_time),
        figures.unrecovered
    ))
}

/// The stage production is: the last one in the config that no other stage promotes from.
fn final_stage(stages: &[Stage]) -> String {
    stages
        .iter()
        .rev()
        .find(|s| {
            !stages
                .iter()
                .any(|o| o.from.as_deref() == Some(s.name.as_str()))
        })
        .map(|s| s.name.clone())
        .expect("validate: the stages have no cycle, so one has no successor")
}
