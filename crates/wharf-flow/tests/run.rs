//! The runner: overlap, bounds, locks, failures, panics and the cache. Every wait is bounded
//! and waits for an event (a step's start), never for a time to pass.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FnStep, Recorder, facts};
use wharf_flow::{
    Annotation, Cache, Event, Facts, Level, Outcome, Output, Outputs, Pipeline, RunOptions,
    RunSummary, StepError, plan, run,
};

/// Long enough for any machine to start a thread; only reached when the runner is wrong.
const BOUND: Duration = Duration::from_secs(30);

fn options(dir: &std::path::Path, parallel: usize, jobs: usize, cache: bool) -> RunOptions {
    RunOptions {
        cache: cache.then(|| Cache::new(dir.join("cache"))),
        parallel,
        jobs,
        log_dir: dir.join("logs"),
    }
}

fn run_in(
    dir: &std::path::Path,
    pipeline: Pipeline,
    parallel: usize,
    jobs: usize,
    cache: bool,
) -> (RunSummary, Vec<Event>) {
    let options = options(dir, parallel, jobs, cache);
    run_pipeline(&Arc::new(pipeline), &facts(dir.into()), options)
}

/// Plans and runs on another thread, so that a runner that never ends fails the test.
fn run_pipeline(
    pipeline: &Arc<Pipeline>,
    facts: &Facts,
    options: RunOptions,
) -> (RunSummary, Vec<Event>) {
    let (pipeline, facts) = (pipeline.clone(), facts.clone());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let plan = plan(&pipeline, &facts).expect("plans");
        let recorder = Recorder::default();
        let summary = run(&pipeline, &plan, &facts, options, &recorder).expect("runs");
        let _ = tx.send((summary, recorder.events()));
    });
    rx.recv_timeout(BOUND).expect("the run ends")
}

fn outcome<'s>(summary: &'s RunSummary, id: &str) -> &'s Outcome {
    &summary.steps.iter().find(|s| s.id == id).unwrap().outcome
}

/// One side of a rendezvous: says "started" on the sender, hears the other on the receiver.
type Side = (Sender<()>, Mutex<Receiver<()>>);

/// A pair of one-shot signals: each side says it started and waits (bounded) for the other.
fn rendezvous() -> (Side, Side) {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    ((a_tx, Mutex::new(b_rx)), (b_tx, Mutex::new(a_rx)))
}

fn meet(
    me: &'static str,
    (tx, rx): Side,
) -> impl Fn(&mut wharf_flow::Context<'_>) -> Result<Outputs, StepError> {
    move |_| {
        let _ = tx.send(());
        rx.lock()
            .unwrap()
            .recv_timeout(BOUND)
            .map(|()| Outputs::new())
            .map_err(|_| StepError::new(format!("{me}: the other step never ran at the same time")))
    }
}

#[test]
fn independent_steps_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = rendezvous();
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("a").body(meet("a", a)))
        .step(FnStep::new("b").body(meet("b", b)));
    let (summary, events) = run_in(dir.path(), pipeline, 2, 2, false);
    assert!(summary.ok, "{summary:#?}");
    // Both started before either finished: the events show the overlap.
    let first_finish = events
        .iter()
        .position(|e| matches!(e, Event::Finished { .. }))
        .unwrap();
    let starts = events[..first_finish]
        .iter()
        .filter(|e| matches!(e, Event::Started { .. }))
        .count();
    assert_eq!(starts, 2, "{events:#?}");
}

/// Counts steps inside a section and remembers the most at once.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A step that enters the section, gives the other step a chance to enter too (it waits for
/// the other's start, which must not come while this one runs), then leaves.
fn exclusive(
    me: &'static str,
    side: Side,
    concurrency: Arc<Concurrency>,
) -> impl Fn(&mut wharf_flow::Context<'_>) -> Result<Outputs, StepError> {
    let (tx, rx) = side;
    move |cx| {
        concurrency.enter();
        let _ = tx.send(());
        // The first step waits a little for the second, which the bound keeps out; no
        // outcome depends on how long this takes.
        let _ = rx.lock().unwrap().recv_timeout(Duration::from_millis(300));
        writeln!(cx.log(), "{me} ran").unwrap();
        concurrency.leave();
        Ok(Outputs::new())
    }
}

#[test]
fn one_compiler_slot_runs_compiling_steps_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let concurrency = Arc::new(Concurrency::default());
    let (a, b) = rendezvous();
    let pipeline = Pipeline::new("ci")
        .step(
            FnStep::new("a")
                .compiler()
                .body(exclusive("a", a, concurrency.clone())),
        )
        .step(
            FnStep::new("b")
                .compiler()
                .body(exclusive("b", b, concurrency.clone())),
        );
    let (summary, events) = run_in(dir.path(), pipeline, 2, 1, false);
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(concurrency.max.load(Ordering::SeqCst), 1);
    // `b` started while `a` had the only slot, and said so. (If `b`'s thread took the token
    // first, `a` says it waits too: which thread wins is up to the machine.)
    let waiting = |step: &str, holder: &str| Event::Waiting {
        step: step.to_string(),
        lock: wharf_flow::run::COMPILER_SLOTS.to_string(),
        holder: holder.to_string(),
    };
    assert!(events.contains(&waiting("b", "a")), "{events:#?}");
    for event in events.iter().filter(|e| matches!(e, Event::Waiting { .. })) {
        assert!(
            [waiting("b", "a"), waiting("a", "b")].contains(event),
            "{event:?}"
        );
    }
    let log = std::fs::read_to_string(dir.path().join("logs/a.log")).unwrap();
    assert_eq!(log, "a ran\n");
}

#[test]
fn compiling_steps_hand_the_jobserver_to_their_commands() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = |seen: Arc<Mutex<Vec<(String, bool)>>>| {
        move |cx: &mut wharf_flow::Context<'_>| {
            let command = cx.command("cargo");
            let has = command
                .get_envs()
                .any(|(name, value)| name == "CARGO_MAKEFLAGS" && value.is_some());
            assert_eq!(command.get_current_dir(), Some(cx.root()));
            seen.lock().unwrap().push((cx.step_id().to_string(), has));
            Ok(Outputs::new())
        }
    };
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("build").compiler().body(record(seen.clone())))
        .step(FnStep::new("push").body(record(seen.clone())));
    let (summary, _) = run_in(dir.path(), pipeline, 1, 2, false);
    assert!(summary.ok, "{summary:#?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [("build".to_string(), true), ("push".to_string(), false)]
    );
}

#[test]
fn command_output_goes_to_the_step_log() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new("ci").step(FnStep::new("echo").body(|cx| {
        writeln!(cx.log(), "before").unwrap();
        let status = cx
            .command("sh")
            .args(["-c", "echo out; echo err >&2"])
            .status()
            .map_err(|e| StepError::new(e.to_string()))?;
        assert!(status.success());
        writeln!(cx.log(), "after").unwrap();
        Ok(Outputs::new())
    }));
    let (summary, _) = run_in(dir.path(), pipeline, 1, 1, false);
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(
        summary.steps[0].log.as_deref(),
        Some(std::path::Path::new("logs/echo.log"))
    );
    let log = std::fs::read_to_string(dir.path().join("logs/echo.log")).unwrap();
    assert_eq!(log, "before\nout\nerr\nafter\n");
}

#[test]
fn steps_with_one_lock_never_overlap_and_the_waiter_says_once() {
    let dir = tempfile::tempdir().unwrap();
    let concurrency = Arc::new(Concurrency::default());
    let (a, b) = rendezvous();
    let annotating = |me, side, concurrency| {
        let body = exclusive(me, side, concurrency);
        move |cx: &mut wharf_flow::Context<'_>| {
            // Each annotation wakes the scheduler: the waiting step must still say so once.
            for n in 0..3 {
                cx.annotate(Annotation {
                    level: Level::Notice,
                    file: None,
                    line: Some(n),
                    column: None,
                    title: None,
                    message: format!("{me} {n}"),
                });
            }
            body(cx)
        }
    };
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("clippy").lock("build-dir").body(annotating(
            "clippy",
            a,
            concurrency.clone(),
        )))
        .step(FnStep::new("test").lock("build-dir").body(annotating(
            "test",
            b,
            concurrency.clone(),
        )));
    let (summary, events) = run_in(dir.path(), pipeline, 2, 2, false);
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(concurrency.max.load(Ordering::SeqCst), 1);
    let waiting: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Waiting { .. }))
        .collect();
    assert_eq!(
        waiting,
        [&Event::Waiting {
            step: "test".to_string(),
            lock: "build-dir".to_string(),
            holder: "clippy".to_string(),
        }]
    );
    let annotations = events
        .iter()
        .filter(|e| matches!(e, Event::Annotated { .. }))
        .count();
    assert_eq!(annotations, 6);
}

#[test]
fn a_failure_skips_dependants_and_independent_steps_finish() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("build").body(|_| Err(StepError::new("cargo build failed"))))
        .step(FnStep::new("test").needs(&["build"]))
        .step(FnStep::new("push").needs(&["test"]))
        .step(FnStep::new("fmt"));
    let planned = plan(&pipeline, &facts(dir.path().into())).unwrap();
    let build_key = planned.steps[0].key.clone().unwrap();
    let (summary, events) = run_in(dir.path(), pipeline, 1, 1, true);
    assert!(!summary.ok);
    let outcomes: Vec<(&str, String)> = summary
        .steps
        .iter()
        .map(|s| (s.id.as_str(), serde_json::to_string(&s.outcome).unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "build",
                r#"{"status":"failed","message":"cargo build failed"}"#.to_string()
            ),
            (
                "test",
                r#"{"status":"skipped","reason":"needs `build`, which failed"}"#.to_string()
            ),
            (
                "push",
                r#"{"status":"skipped","reason":"needs `test`, which was skipped"}"#.to_string()
            ),
            ("fmt", r#"{"status":"succeeded"}"#.to_string()),
        ]
    );
    assert!(matches!(events.first(), Some(Event::Planned { .. })));
    assert!(matches!(events.last(), Some(Event::Done { ok: false, .. })));
    // A failed step is not cached: the next run tries it again.
    let cache = Cache::new(dir.path().join("cache"));
    assert!(cache.get(&build_key).is_none());
}

#[test]
fn a_panicking_step_fails_without_crashing_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("boom").body(|_| panic!("index out of bounds")))
        .step(FnStep::new("after").needs(&["boom"]))
        .step(FnStep::new("other"));
    let (summary, _) = run_in(dir.path(), pipeline, 2, 1, false);
    assert!(!summary.ok);
    assert_eq!(
        outcome(&summary, "boom"),
        &Outcome::Failed {
            message: "the step panicked: index out of bounds".to_string()
        }
    );
    assert!(matches!(
        outcome(&summary, "after"),
        Outcome::Skipped { .. }
    ));
    assert_eq!(outcome(&summary, "other"), &Outcome::Succeeded);
}

#[test]
fn a_second_run_replays_every_keyed_step_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = |output: &'static str, calls: Arc<AtomicUsize>| {
        move |cx: &mut wharf_flow::Context<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let upstream = cx.outputs_of("image").cloned().unwrap_or_default();
            let mut outputs =
                Outputs::from([("out".to_string(), Output::Text(output.to_string()))]);
            outputs.extend(
                upstream
                    .into_iter()
                    .map(|(k, v)| (format!("from-image-{k}"), v)),
            );
            Ok(outputs)
        }
    };
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("image").body(counted("sha256:ab", calls.clone())))
        .step(
            FnStep::new("scan")
                .needs(&["image"])
                .body(counted("0 findings", calls.clone())),
        )
        .step(
            FnStep::new("push")
                .needs(&["image"])
                .uncached()
                .body(counted("pushed", calls.clone())),
        );
    let pipeline = Arc::new(pipeline);
    let facts = facts(dir.path().into());
    let (first, _) = run_pipeline(&pipeline, &facts, options(dir.path(), 2, 2, true));
    assert!(first.ok, "{first:#?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let (second, events) = run_pipeline(&pipeline, &facts, options(dir.path(), 2, 2, true));
    assert!(second.ok, "{second:#?}");
    // Only the uncached step ran again.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let hits: Vec<_> = second
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.cache_hit))
        .collect();
    assert_eq!(hits, [("image", true), ("scan", true), ("push", false)]);
    for (a, b) in first.steps.iter().zip(&second.steps) {
        assert_eq!(a.outputs, b.outputs, "step {} replays its outputs", a.id);
    }
    // The replayed upstream outputs reach the step that runs.
    assert!(second.steps[2].outputs.contains_key("from-image-out"));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Finished { step, cache_hit: true, .. } if step == "scan"))
    );

    // A corrupt entry is a miss: the step runs again and its entry is written anew.
    let planned = plan(&pipeline, &facts).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let scan_entry = cache
        .entry_path(planned.steps[1].key.as_ref().unwrap())
        .unwrap();
    std::fs::write(&scan_entry, "{ truncated").unwrap();
    let (repaired, _) = run_pipeline(&pipeline, &facts, options(dir.path(), 2, 2, true));
    let hits: Vec<_> = repaired
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.cache_hit))
        .collect();
    assert_eq!(hits, [("image", true), ("scan", false), ("push", false)]);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(repaired.steps[1].outputs, first.steps[1].outputs);
    assert!(cache.get(planned.steps[1].key.as_ref().unwrap()).is_some());

    // Without the cache every step runs.
    let (third, _) = run_pipeline(&pipeline, &facts, options(dir.path(), 2, 2, false));
    assert!(third.steps.iter().all(|s| !s.cache_hit));
    assert_eq!(calls.load(Ordering::SeqCst), 9);
}

#[test]
fn events_come_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("a"))
        .step(FnStep::new("b").needs(&["a"]));
    let (_, events) = run_in(dir.path(), pipeline, 2, 2, false);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            let json = serde_json::to_value(e).unwrap();
            let step = json["step"].as_str().unwrap_or("").to_string();
            format!("{} {step}", json["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "planned a",
            "planned b",
            "started a",
            "finished a",
            "started b",
            "finished b",
            "done "
        ]
    );
}

#[test]
fn a_context_works_without_a_runner_for_testing_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let facts = facts(dir.path().into());
    let log = dir.path().join("logs/deep/step.log");
    let image = Outputs::from([(
        "digest".to_string(),
        Output::Digest("sha256:ab".to_string()),
    )]);
    let mut cx = wharf_flow::Context::new("scan", &facts, &log)
        .unwrap()
        .with_needs([("image".to_string(), image.clone())].into());
    assert_eq!(cx.outputs_of("image"), Some(&image));
    assert_eq!(cx.outputs_of("push"), None);
    let annotation = Annotation {
        level: Level::Error,
        file: Some("Cargo.lock".into()),
        line: Some(12),
        column: None,
        title: Some("RUSTSEC-2024-0001".to_string()),
        message: "a finding".to_string(),
    };
    cx.annotate(annotation.clone());
    assert_eq!(cx.annotations(), [annotation]);
    let status = cx.command("pwd").status().unwrap();
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.trim_end(), dir.path().to_str().unwrap());
    // Not a compiling step: no jobserver for its processes.
    assert!(
        cx.command("cargo")
            .get_envs()
            .all(|(name, _)| name != "CARGO_MAKEFLAGS")
    );
}
