//! The terminal: live spinners when stderr is one, plain lines in logs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{Tally, duration, outcome_word, tail};
use crate::event::{Annotation, Event, Outcome, Reporter};

/// How many lines of a failed step's log the terminal shows.
const TAIL_LINES: usize = 40;

/// Progress and results on the terminal (stderr): a spinner per running step with its
/// elapsed time (and the lock it waits for), or one line per start and end when stderr is
/// not a terminal; the end of a failed step's log; a table of all steps at the end.
pub struct Terminal {
    root: PathBuf,
    state: Mutex<State>,
}

struct State {
    screen: Screen,
    tally: Tally,
}

enum Screen {
    Live {
        multi: MultiProgress,
        spinners: HashMap<String, ProgressBar>,
    },
    Plain(Box<dyn Write + Send>),
}

impl Terminal {
    /// Spinners if stderr is a terminal, else plain lines on stderr. `root` is the workspace
    /// root, which the events' log paths are relative to.
    pub fn new(root: &Path) -> Terminal {
        let screen = if io::stderr().is_terminal() {
            Screen::Live {
                multi: MultiProgress::new(),
                spinners: HashMap::new(),
            }
        } else {
            Screen::Plain(Box::new(io::stderr()))
        };
        Terminal::with_screen(root, screen)
    }

    /// Plain lines to any writer (a log file, a test's buffer).
    pub fn plain(root: &Path, writer: Box<dyn Write + Send>) -> Terminal {
        Terminal::with_screen(root, Screen::Plain(writer))
    }

    /// Spinners drawn nowhere: runs the live code paths in tests.
    #[cfg(test)]
    pub(super) fn hidden_live(root: &Path) -> Terminal {
        let multi = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        Terminal::with_screen(
            root,
            Screen::Live {
                multi,
                spinners: HashMap::new(),
            },
        )
    }

    /// How many spinners are up.
    #[cfg(test)]
    pub(super) fn spinners(&self) -> usize {
        match &self.state.lock().unwrap().screen {
            Screen::Live { spinners, .. } => spinners.len(),
            Screen::Plain(_) => 0,
        }
    }

    fn with_screen(root: &Path, screen: Screen) -> Terminal {
        Terminal {
            root: root.to_path_buf(),
            state: Mutex::new(State {
                screen,
                tally: Tally::default(),
            }),
        }
    }
}

impl Reporter for Terminal {
    fn event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tally.record(event);
        match event {
            Event::Planned { .. } => {}
            Event::Started { step } => state.screen.started(step),
            Event::Waiting { step, lock, holder } => state.screen.waiting(step, lock, holder),
            Event::Annotated { annotation, .. } => state.screen.line(&annotation_line(annotation)),
            Event::Finished {
                step,
                outcome,
                duration_ms,
                cache_hit,
                log,
                ..
            } => {
                state.screen.finished(step);
                state
                    .screen
                    .line(&finished_line(step, outcome, *duration_ms, *cache_hit));
                if let (Outcome::Failed { .. }, Some(log)) = (outcome, log) {
                    let text = log_tail(&self.root.join(log));
                    state.screen.line(&text);
                }
            }
            Event::Done { ok, duration_ms } => {
                state.screen.clear();
                let table = closing_table(&state.tally, *ok, *duration_ms);
                state.screen.line(&table);
            }
        }
    }
}

impl Screen {
    fn started(&mut self, step: &str) {
        match self {
            Screen::Live { .. } => self.spinner(step).set_message(""),
            Screen::Plain(_) => self.line(&format!("==> {step} started")),
        }
    }

    fn waiting(&mut self, step: &str, lock: &str, holder: &str) {
        let what = format!("waiting for {lock} held by {holder}");
        match self {
            Screen::Live { .. } => self.spinner(step).set_message(what),
            Screen::Plain(_) => self.line(&format!("... {step} {what}")),
        }
    }

    fn finished(&mut self, step: &str) {
        if let Screen::Live { spinners, .. } = self
            && let Some(spinner) = spinners.remove(step)
        {
            spinner.finish_and_clear();
        }
    }

    fn clear(&mut self) {
        if let Screen::Live { multi, spinners } = self {
            spinners.drain().for_each(|(_, s)| s.finish_and_clear());
            let _ = multi.clear();
        }
    }

    /// The spinner of a step, made on its first event (a step may wait before it starts).
    fn spinner(&mut self, step: &str) -> &ProgressBar {
        let Screen::Live { multi, spinners } = self else {
            unreachable!("spinners exist only on a live screen")
        };
        spinners.entry(step.to_string()).or_insert_with(|| {
            let spinner = multi.add(ProgressBar::new_spinner());
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed} {wide_msg}")
                    .expect("static template"),
            );
            spinner.set_prefix(step.to_string());
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        })
    }

    /// A line (or several) above the spinners.
    fn line(&mut self, text: &str) {
        let written = match self {
            Screen::Live { multi, .. } => multi.println(text),
            Screen::Plain(out) => writeln!(out, "{text}").and_then(|()| out.flush()),
        };
        // Losing a progress line must not stop the run.
        if let Err(e) = written {
            tracing::debug!("writing progress: {e}");
        }
    }
}

/// `ok clippy 12.3s`, `cached fmt`, `FAILED test 3.1s: ...`, `skipped push: ...`.
fn finished_line(step: &str, outcome: &Outcome, ms: u64, cache_hit: bool) -> String {
    match outcome {
        Outcome::Succeeded if cache_hit => format!("cached {step}"),
        Outcome::Succeeded => format!("ok {step} {}", duration(ms)),
        Outcome::Failed { message } => format!("FAILED {step} {}: {message}", duration(ms)),
        Outcome::Skipped { reason } => format!("skipped {step}: {reason}"),
    }
}

/// `warning src/lib.rs:3:9 [unused_variables] unused variable: `x``.
fn annotation_line(a: &Annotation) -> String {
    let level = format!("{:?}", a.level).to_lowercase();
    let mut line = level;
    if let Some(file) = &a.file {
        let _ = write!(line, " {}", file.display());
        for n in [a.line, a.column].into_iter().flatten() {
            let _ = write!(line, ":{n}");
        }
    }
    if let Some(title) = &a.title {
        let _ = write!(line, " [{title}]");
    }
    let first = a.message.lines().next().unwrap_or_default();
    let _ = write!(line, " {first}");
    line
}

fn log_tail(path: &Path) -> String {
    match tail(path, TAIL_LINES) {
        Ok(text) => format!(
            "--- last {TAIL_LINES} lines of {} ---\n{text}\n---",
            path.display()
        ),
        Err(e) => format!("(reading the log {}: {e})", path.display()),
    }
}

/// The steps with outcome, duration and cache hits, then the image the run made.
fn closing_table(tally: &Tally, ok: bool, ms: u64) -> String {
    let width = tally
        .rows
        .iter()
        .map(|r| r.step.len())
        .max()
        .unwrap_or(0)
        .max("step".len());
    let mut out = format!("{:width$}  {:8}  {:>8}  cache\n", "step", "outcome", "time");
    for row in &tally.rows {
        let cache = if row.cache_hit { "cached" } else { "" };
        let line = format!(
            "{:width$}  {:8}  {:>8}  {cache}",
            row.step,
            outcome_word(&row.outcome),
            duration(row.duration_ms)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let image = tally.image();
    for (name, value) in [("reference", &image.reference), ("digest", &image.digest)] {
        if let Some(value) = value {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
    if !image.tags.is_empty() {
        let _ = writeln!(out, "tags: {}", image.tags.join(", "));
    }
    let verdict = if ok { "succeeded" } else { "FAILED" };
    let _ = write!(out, "run {verdict} in {}", duration(ms));
    out
}
