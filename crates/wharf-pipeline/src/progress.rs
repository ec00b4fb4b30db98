//! Progress on stderr: a spinner on a terminal, one plain line per event elsewhere (CI
//! logs), nothing at all when quiet. Stdout stays free for results (`--json`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Spinners and colors: stderr is a terminal.
    Terminal,
    /// One line per step start and end, for logs.
    Plain,
    Quiet,
}

impl Mode {
    /// Terminal if stderr is one, else plain lines.
    pub fn detect() -> Mode {
        if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// Reports steps as they start and finish.
#[derive(Clone, Debug)]
pub struct Progress {
    mode: Mode,
}

/// A running step; finish it with [`Step::done`] or [`Step::failed`].
pub struct Step {
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    mode: Mode,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress { mode }
    }

    pub fn start(&self, name: impl Into<String>) -> Step {
        let name = name.into();
        let bar = match self.mode {
            Mode::Terminal => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("static template"),
                );
                bar.set_message(name.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Mode::Plain => {
                eprintln!("==> {name}");
                None
            }
            Mode::Quiet => None,
        };
        Step {
            name,
            started: Instant::now(),
            bar,
            mode: self.mode,
        }
    }

    /// A line of information outside any step.
    pub fn note(&self, line: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("    {line}");
        }
    }
}

impl Step {
    /// Suspends the spinner while `f` prints (e.g. a child process writing to stderr).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// A line of the step's own output (e.g. a Docker build's), shown under the step.
    pub fn line(&self, text: &str) {
        if self.mode != Mode::Quiet {
            self.suspend(|| eprintln!("    | {text}"));
        }
    }

    pub fn done(self, detail: &str) {
        self.finish("ok", detail);
    }

    pub fn failed(self, detail: &str) {
        self.finish("FAILED", detail);
    }

    fn finish(self, status: &str, detail: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let sep = if detail.is_empty() { "" } else { ": " };
        let line = format!("{status:>6} {} ({elapsed:.1}s){sep}{detail}", self.name);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Quiet {
            eprintln!("{line}");
        }
    }
}

/// A sink for registry events drawn in `mode`: a byte bar per blob on a terminal, one line
/// per blob (and per retry or resume) in logs.
pub fn registry_events(mode: Mode) -> wharf_registry::events::Sink {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use indicatif::MultiProgress;
    use wharf_registry::{BlobOutcome, Event};

    let multi = MultiProgress::new();
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    Arc::new(move |event: &Event| {
        if mode == Mode::Quiet {
            return;
        }
        match event {
            Event::BlobStart { digest, size } => {
                if mode == Mode::Terminal {
                    let bar = multi.add(ProgressBar::new(*size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("static template"),
                    );
                    bar.set_message(digest.short());
                    bars.lock().expect("lock").insert(digest.to_string(), bar);
                } else {
                    eprintln!("    blob {} ({}): sending", digest.short(), human(*size));
                }
            }
            Event::BlobProgress { digest, done, .. } => {
                if let Some(bar) = bars.lock().expect("lock").get(&digest.to_string()) {
                    bar.set_position(*done);
                }
            }
            Event::BlobDone { digest, how } => {
                if let Some(bar) = bars.lock().expect("lock").remove(&digest.to_string()) {
                    bar.finish_and_clear();
                }
                let how = match how {
                    BlobOutcome::Skipped => "already there".to_string(),
                    BlobOutcome::Mounted => "mounted".to_string(),
                    BlobOutcome::Uploaded { bytes } => format!("uploaded {}", human(*bytes)),
                };
                let line = format!("    blob {}: {how}", digest.short());
                multi.suspend(|| eprintln!("{line}"));
            }
            Event::Retry {
                what,
                attempt,
                wait,
                reason,
            } => {
                let line = format!(
                    "    retry {attempt} of {what} in {:.1}s: {reason}",
                    wait.as_secs_f64()
                );
                multi.suspend(|| eprintln!("{line}"));
            }
            Event::Resume { digest, offset } => {
                let line = format!("    blob {}: resuming at byte {offset}", digest.short());
                multi.suspend(|| eprintln!("{line}"));
            }
            Event::Restart { digest, reason } => {
                let line = format!("    blob {}: starting over: {reason}", digest.short());
                multi.suspend(|| eprintln!("{line}"));
            }
        }
    })
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
