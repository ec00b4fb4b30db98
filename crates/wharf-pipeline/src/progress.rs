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
