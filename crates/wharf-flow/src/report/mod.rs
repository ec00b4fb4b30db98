//! Reporters: where a run's [`Event`]s go.
//!
//! - [`Terminal`]: live spinners on a terminal (plain lines elsewhere), the tail of a failed
//!   step's log, and a closing table;
//! - [`JsonLines`]: one JSON object per event per line, for machines (`--json`);
//! - [`GitHub`]: workflow commands (groups, annotations), the job summary and step outputs,
//!   for GitHub Actions.
//!
//! Reporters never fail a run: trouble writing a report is logged and the run goes on.
//! They read no environment variables; the caller passes what it read ([`GitHubFiles`]).

mod github;
mod json;
mod terminal;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

pub use github::{GitHub, GitHubFiles, escape_data, escape_property};
pub use json::JsonLines;
pub use terminal::Terminal;

use crate::event::{Event, Outcome, Reporter};
use crate::step::{Output, Outputs};

/// Sends every event to each reporter in turn.
pub struct Fanout(pub Vec<Box<dyn Reporter>>);

impl Reporter for Fanout {
    fn event(&self, event: &Event) {
        for reporter in &self.0 {
            reporter.event(event);
        }
    }
}

/// The reporters for a run: JSON lines on stdout with `json`, else the terminal on stderr;
/// plus GitHub's workflow commands and files with `github` (on stdout, or on stderr when
/// stdout carries JSON: the runner reads commands from both).
///
/// `root` is the workspace root, which the events' log paths are relative to.
pub fn choose(json: bool, github: bool, root: &Path, files: GitHubFiles) -> Box<dyn Reporter> {
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if json {
        reporters.push(Box::new(JsonLines::new(io::stdout())));
    } else {
        reporters.push(Box::new(Terminal::new(root)));
    }
    if github {
        let out: Box<dyn io::Write + Send> = if json {
            Box::new(io::stderr())
        } else {
            Box::new(io::stdout())
        };
        reporters.push(Box::new(GitHub::with_writer(root, files, out)));
    }
    if reporters.len() == 1 {
        reporters.remove(0)
    } else {
        Box::new(Fanout(reporters))
    }
}

/// A finished step, as the closing tables show it.
#[derive(Clone, Debug)]
struct Row {
    step: String,
    outcome: Outcome,
    duration_ms: u64,
    cache_hit: bool,
    outputs: Outputs,
}

/// What the closing reports need, gathered from `Finished` events in the order they came.
#[derive(Debug, Default)]
struct Tally {
    rows: Vec<Row>,
}

/// The image a run produced, from the outputs named `reference`, `digest` and `tags`.
#[derive(Debug, Default, PartialEq)]
struct Image {
    reference: Option<String>,
    digest: Option<String>,
    tags: Vec<String>,
}

impl Tally {
    fn record(&mut self, event: &Event) {
        if let Event::Finished {
            step,
            outcome,
            duration_ms,
            cache_hit,
            outputs,
            ..
        } = event
        {
            self.rows.push(Row {
                step: step.clone(),
                outcome: outcome.clone(),
                duration_ms: *duration_ms,
                cache_hit: *cache_hit,
                outputs: outputs.clone(),
            });
        }
    }

    /// Later steps win: `push` finishes after `image` and its reference is the one to use.
    fn image(&self) -> Image {
        let mut image = Image::default();
        for outputs in self.rows.iter().map(|row| &row.outputs) {
            if let Some(Output::Reference(r) | Output::Text(r)) = outputs.get("reference") {
                image.reference = Some(r.clone());
            }
            if let Some(Output::Digest(d) | Output::Text(d)) = outputs.get("digest") {
                image.digest = Some(d.clone());
            }
            if let Some(Output::Tags(tags)) = outputs.get("tags") {
                image.tags = tags.clone();
            }
        }
        image
    }

    /// Every `Count` output: (step, name, count), in step order.
    fn counts(&self) -> Vec<(&str, &str, u64)> {
        self.rows
            .iter()
            .flat_map(|row| {
                row.outputs
                    .iter()
                    .filter_map(|(name, output)| match output {
                        Output::Count(n) => Some((row.step.as_str(), name.as_str(), *n)),
                        _ => None,
                    })
            })
            .collect()
    }
}

/// `ok`, `failed`, `skipped`: the word the tables use.
fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "ok",
        Outcome::Failed { .. } => "failed",
        Outcome::Skipped { .. } => "skipped",
    }
}

/// `0.4s`, `12.3s`, `2m05s`: short enough for a table column.
fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else {
        let s = ms / 1000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The last `lines` lines of a file. Reads at most the last 64 KiB: a failed test's log can
/// be large, and its end is what says why.
fn tail(path: &Path, lines: usize) -> io::Result<String> {
    const WINDOW: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    // The first line of a window that does not start at 0 is probably cut: drop it.
    let first = usize::from(start > 0 && all.len() > lines);
    let from = all.len().saturating_sub(lines).max(first);
    Ok(all[from..].join("\n"))
}

#[cfg(test)]
mod tests;
