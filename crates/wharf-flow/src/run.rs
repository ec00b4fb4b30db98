//! The runner: starts every step whose needs succeeded, within the bounds, and reports.
//!
//! - At most `parallel` steps run at once; a step whose need failed is skipped.
//! - A step whose key is in the cache is not run: its recorded outputs are replayed.
//! - Compiling steps take a token from one jobserver of `jobs` tokens before they start and
//!   hand the same jobserver to their processes: cargo counts the token its step holds as its
//!   own implicit one and takes more from the pool, so all compilers together never exceed
//!   `jobs`.
//! - Steps naming the same lock never overlap; a step kept waiting says for which step.
//! - Events reach the reporter from the calling thread only, in order: every `Planned`, then
//!   `Started`/`Waiting`/`Annotated`/`Finished` as they happen, `Done` last.
//! - A step that panics fails; the run goes on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::Scope;
use std::time::{Duration, Instant};

use crate::cache::{Cache, Entry};
use crate::context::Context;
use crate::event::{Event, Outcome, Reporter};
use crate::facts::Facts;
use crate::plan::{Pipeline, Plan, PlannedStep};
use crate::step::{Outputs, Step};

pub struct RunOptions {
    /// `None` runs every step (`--no-cache`).
    pub cache: Option<Cache>,
    /// Steps running at once, at least 1.
    pub parallel: usize,
    /// Compiler slots shared by all compiling steps, at least 1.
    pub jobs: usize,
    /// Where each step's log is written (`<step>.log`).
    pub log_dir: PathBuf,
}

impl RunOptions {
    /// As many steps and compilers as the facts' cores, the cache at its usual place, logs in
    /// `target/wharf/logs`.
    pub fn new(facts: &Facts) -> RunOptions {
        RunOptions {
            cache: Some(Cache::new(Cache::dir_for(&facts.root))),
            parallel: facts.cpus.max(1),
            jobs: facts.cpus.max(1),
            log_dir: facts.root.join("target").join("wharf").join("logs"),
        }
    }
}

/// How each step ended, in plan order.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Every step succeeded (from the cache or by running).
    pub ok: bool,
    pub duration: Duration,
    pub steps: Vec<StepSummary>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepSummary {
    pub id: String,
    pub outcome: Outcome,
    pub cache_hit: bool,
    pub duration: Duration,
    pub outputs: Outputs,
    pub log: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("creating the jobserver for {jobs} compiler slots: {source}")]
    Jobserver { jobs: usize, source: io::Error },
}

/// Runs `plan` (made from `pipeline` and `facts` by [`crate::plan()`]).
pub fn run(
    pipeline: &Pipeline,
    plan: &Plan,
    facts: &Facts,
    options: RunOptions,
    reporter: &dyn Reporter,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let jobs = options.jobs.max(1);
    let jobserver =
        jobserver::Client::new(jobs).map_err(|source| RunError::Jobserver { jobs, source })?;
    for event in plan.planned_events() {
        reporter.event(&event);
    }
    let (tx, rx) = mpsc::channel();
    let mut scheduler = Scheduler {
        pipeline,
        plan,
        facts,
        options: &options,
        jobserver: &jobserver,
        reporter,
        tx,
        results: vec![None; plan.steps.len()],
        running: HashSet::new(),
        cache_checked: HashSet::new(),
        locks: HashMap::new(),
        waited: HashSet::new(),
        compilers: Vec::new(),
        slot_waited: HashSet::new(),
    };
    std::thread::scope(|scope| scheduler.drive(scope, &rx));
    let steps: Vec<StepSummary> = scheduler.results.into_iter().flatten().collect();
    let ok = steps.iter().all(|s| s.outcome == Outcome::Succeeded);
    let duration = started.elapsed();
    reporter.event(&Event::Done {
        ok,
        duration_ms: millis(duration),
    });
    Ok(RunSummary {
        ok,
        duration,
        steps,
    })
}

/// From a step's thread to the scheduler.
enum Msg {
    /// Waits for a compiler slot: every token is taken.
    WaitingForSlot(usize),
    Started(usize),
    Event(Event),
    Finished(usize, Result<Outputs, String>, Duration, PathBuf),
}

struct Scheduler<'r> {
    pipeline: &'r Pipeline,
    plan: &'r Plan,
    facts: &'r Facts,
    options: &'r RunOptions,
    jobserver: &'r jobserver::Client,
    reporter: &'r dyn Reporter,
    tx: mpsc::Sender<Msg>,
    /// By plan index; `Some` once the step is over.
    results: Vec<Option<StepSummary>>,
    running: HashSet<usize>,
    cache_checked: HashSet<usize>,
    /// Lock name -> the plan index of the running step that holds it.
    locks: HashMap<String, usize>,
    /// Steps that already said they wait for a lock.
    waited: HashSet<usize>,
    /// Running compiling steps (holding a slot or waiting for one), in the order they started.
    compilers: Vec<usize>,
    /// Steps that already said they wait for a compiler slot.
    slot_waited: HashSet<usize>,
}

impl<'r> Scheduler<'r> {
    fn drive<'s>(&mut self, scope: &'s Scope<'s, 'r>, rx: &mpsc::Receiver<Msg>) {
        loop {
            self.schedule(scope);
            if self.results.iter().all(Option::is_some) {
                return;
            }
            if self.running.is_empty() {
                // Unreachable for a plan of this pipeline (the plan's order has no cycle and a
                // lock is held only by a running step); a mismatched plan must not hang.
                self.fail_rest("the step could not be started (is the plan from this pipeline?)");
                return;
            }
            // A running step always sends `Finished` (panics are caught), so this returns.
            let Ok(msg) = rx.recv() else { return };
            match msg {
                Msg::WaitingForSlot(index) => self.waiting_for_slot(index),
                Msg::Started(index) => self.reporter.event(&Event::Started {
                    step: self.plan.steps[index].id.clone(),
                }),
                Msg::Event(event) => self.reporter.event(&event),
                Msg::Finished(index, result, duration, log) => {
                    self.finished(index, result, duration, log)
                }
            }
        }
    }

    /// One pass in plan order: skips, cache hits and starts whatever can go now. Plan order
    /// puts a step after its needs, so one pass sees the effect of the skips and hits before.
    fn schedule<'s>(&mut self, scope: &'s Scope<'s, 'r>) {
        for index in 0..self.plan.steps.len() {
            if self.results[index].is_some() || self.running.contains(&index) {
                continue;
            }
            let planned = &self.plan.steps[index];
            match self.needs_state(planned) {
                Needs::Pending => continue,
                Needs::Failed(reason) => {
                    self.record(index, Outcome::Skipped { reason }, false, Outputs::new());
                    continue;
                }
                Needs::Succeeded => {}
            }
            if self.cache_hit(index) {
                continue;
            }
            if self.running.len() >= self.options.parallel.max(1) {
                continue;
            }
            let Some(step) = self.pipeline.find(&planned.id) else {
                let message = format!(
                    "step `{}` is in the plan but not in the pipeline",
                    planned.id
                );
                self.record(index, Outcome::Failed { message }, false, Outputs::new());
                continue;
            };
            if self.lock_busy(index, step) {
                continue;
            }
            self.start(scope, index, step);
        }
    }

    fn needs_state(&self, planned: &PlannedStep) -> Needs {
        let mut pending = false;
        for need in &planned.needs {
            let Some(at) = self.plan.steps.iter().position(|s| &s.id == need) else {
                return Needs::Failed(format!("needs `{need}`, which is not in the plan"));
            };
            match &self.results[at] {
                None => pending = true,
                Some(s) if s.outcome == Outcome::Succeeded => {}
                Some(s) => {
                    let how = match s.outcome {
                        Outcome::Skipped { .. } => "was skipped",
                        _ => "failed",
                    };
                    return Needs::Failed(format!("needs `{need}`, which {how}"));
                }
            }
        }
        if pending {
            Needs::Pending
        } else {
            Needs::Succeeded
        }
    }

    /// Replays a cached result; looks once per step.
    fn cache_hit(&mut self, index: usize) -> bool {
        let (Some(cache), Some(key)) = (&self.options.cache, &self.plan.steps[index].key) else {
            return false;
        };
        if !self.cache_checked.insert(index) {
            return false;
        }
        let Some(entry) = cache.get(key) else {
            return false;
        };
        let still_valid = self
            .pipeline
            .find(&self.plan.steps[index].id)
            .is_some_and(|step| step.still_valid(&entry.outputs));
        if !still_valid {
            tracing::info!(step = %entry.step, "cached outputs no longer hold; running the step");
            return false;
        }
        self.reporter.event(&Event::Started {
            step: self.plan.steps[index].id.clone(),
        });
        self.record(index, Outcome::Succeeded, true, entry.outputs);
        true
    }

    /// Whether another running step holds this step's lock (saying so once).
    fn lock_busy(&mut self, index: usize, step: &dyn Step) -> bool {
        let Some(lock) = step.lock() else {
            return false;
        };
        let Some(&holder) = self.locks.get(&lock) else {
            return false;
        };
        if self.waited.insert(index) {
            self.reporter.event(&Event::Waiting {
                step: self.plan.steps[index].id.clone(),
                lock,
                holder: self.plan.steps[holder].id.clone(),
            });
        }
        true
    }

    fn start<'s>(&mut self, scope: &'s Scope<'s, 'r>, index: usize, step: &'r dyn Step) {
        self.running.insert(index);
        if step.uses_compiler() {
            // Known here for this run's own steps; the step's thread tells about slots that
            // its cargo's helpers hold.
            if self.compilers.len() >= self.options.jobs.max(1) {
                self.waiting_for_slot(index);
            }
            self.compilers.push(index);
        }
        if let Some(lock) = step.lock() {
            self.locks.insert(lock, index);
        }
        let planned = &self.plan.steps[index];
        let needs: BTreeMap<String, Outputs> = planned
            .needs
            .iter()
            .filter_map(|need| {
                let at = self.plan.steps.iter().position(|s| &s.id == need)?;
                let outputs = self.results[at].as_ref()?.outputs.clone();
                Some((need.clone(), outputs))
            })
            .collect();
        let log = self.options.log_dir.join(log_name(&planned.id));
        let (facts, jobserver, tx) = (self.facts, self.jobserver, self.tx.clone());
        scope.spawn(move || {
            // Held until the step returns: it stands for the implicit token of the step's
            // cargo, which takes any further ones from the same pool.
            let compiles = step.uses_compiler();
            let _token = match compiles
                .then(|| compiler_slot(index, jobserver, &tx))
                .transpose()
            {
                Ok(token) => token,
                Err(e) => {
                    let error = format!("taking a compiler slot from the jobserver: {e}");
                    let _ = tx.send(Msg::Finished(index, Err(error), Duration::ZERO, log));
                    return;
                }
            };
            let _ = tx.send(Msg::Started(index));
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                execute(step, facts, needs, jobserver, &tx, &log)
            }))
            .unwrap_or_else(|panic| Err(format!("the step panicked: {}", panic_message(&panic))));
            let _ = tx.send(Msg::Finished(index, result, started.elapsed(), log));
        });
    }

    /// Says (once) which steps hold the compiler slots, so that no step waits silently.
    fn waiting_for_slot(&mut self, index: usize) {
        if !self.slot_waited.insert(index) {
            return;
        }
        let holders: Vec<&str> = self
            .compilers
            .iter()
            .filter(|&&i| i != index)
            .map(|&i| self.plan.steps[i].id.as_str())
            .collect();
        self.reporter.event(&Event::Waiting {
            step: self.plan.steps[index].id.clone(),
            lock: COMPILER_SLOTS.to_string(),
            // Empty only in the instant a holder finishes and frees its slot, or when the
            // slots are held by processes of steps that have ended.
            holder: holders.join(", "),
        });
    }

    fn finished(
        &mut self,
        index: usize,
        result: Result<Outputs, String>,
        duration: Duration,
        log: PathBuf,
    ) {
        self.running.remove(&index);
        self.compilers.retain(|&compiler| compiler != index);
        self.locks.retain(|_, holder| *holder != index);
        let planned = &self.plan.steps[index];
        let (outcome, outputs) = match result {
            Ok(outputs) => (Outcome::Succeeded, outputs),
            Err(message) => (Outcome::Failed { message }, Outputs::new()),
        };
        if let (Outcome::Succeeded, Some(cache), Some(key)) =
            (&outcome, &self.options.cache, &planned.key)
        {
            let entry = Entry {
                step: planned.id.clone(),
                key: key.clone(),
                outputs: outputs.clone(),
                duration_ms: millis(duration),
            };
            // A cache that cannot be written costs the next run time, not this run its result.
            if let Err(e) = cache.put(&entry) {
                tracing::warn!("caching the outputs of step `{}`: {e}", planned.id);
            }
        }
        let log = relative(&self.facts.root, &log);
        self.finish(index, outcome, false, outputs, duration, Some(log));
    }

    /// A step that ends without running (skipped, replayed from the cache, unknown).
    fn record(&mut self, index: usize, outcome: Outcome, cache_hit: bool, outputs: Outputs) {
        self.finish(index, outcome, cache_hit, outputs, Duration::ZERO, None);
    }

    fn finish(
        &mut self,
        index: usize,
        outcome: Outcome,
        cache_hit: bool,
        outputs: Outputs,
        duration: Duration,
        log: Option<PathBuf>,
    ) {
        let id = self.plan.steps[index].id.clone();
        self.reporter.event(&Event::Finished {
            step: id.clone(),
            outcome: outcome.clone(),
            duration_ms: millis(duration),
            cache_hit,
            outputs: outputs.clone(),
            log: log.clone(),
        });
        self.results[index] = Some(StepSummary {
            id,
            outcome,
            cache_hit,
            duration,
            outputs,
            log,
        });
    }

    fn fail_rest(&mut self, message: &str) {
        for index in 0..self.results.len() {
            if self.results[index].is_none() {
                let message = message.to_string();
                self.record(index, Outcome::Failed { message }, false, Outputs::new());
            }
        }
    }
}

enum Needs {
    Pending,
    Succeeded,
    /// Why the step is skipped.
    Failed(String),
}

/// The `lock` of a `Waiting` event for a step that waits for a jobserver token.
pub const COMPILER_SLOTS: &str = "compiler slots";

/// A jobserver token for a compiling step, saying first when it must wait for one.
fn compiler_slot(
    index: usize,
    jobserver: &jobserver::Client,
    tx: &mpsc::Sender<Msg>,
) -> io::Result<jobserver::Acquired> {
    // A hint only (another thread may take the last token in between): `try_acquire` would
    // tell for sure but turns the pipe non-blocking for every process that shares it.
    if jobserver.available().is_ok_and(|n| n == 0) {
        let _ = tx.send(Msg::WaitingForSlot(index));
    }
    jobserver.acquire()
}

/// Runs one step (on its own thread, holding its compiler slot if it needs one) with a fresh
/// context.
fn execute(
    step: &dyn Step,
    facts: &Facts,
    needs: BTreeMap<String, Outputs>,
    jobserver: &jobserver::Client,
    tx: &mpsc::Sender<Msg>,
    log: &Path,
) -> Result<Outputs, String> {
    let sink_tx = tx.clone();
    let mut cx = Context::new(step.id(), facts, log)
        .map_err(|e| e.to_string())?
        .with_needs(needs)
        .with_sink(Box::new(move |event| {
            let _ = sink_tx.send(Msg::Event(event));
        }));
    if step.uses_compiler() {
        cx = cx.with_jobserver(jobserver);
    }
    step.run(&mut cx).map_err(|e| e.message)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// `<id>.log`, a valid file name whatever the id holds.
fn log_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}.log")
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
