//! GitHub Actions: workflow commands on the log, the job summary, step outputs.
//!
//! The formats follow actions/toolkit (`packages/core/src/command.ts` for commands,
//! `file-command.ts` for `$GITHUB_OUTPUT`) and the runner that reads them.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Row, Tally, duration, outcome_word};
use crate::event::{Annotation, Event, Level, Outcome, Reporter};

/// The files GitHub hands a job step, as named by `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitHubFiles {
    /// Markdown appended here shows on the run's summary page.
    pub step_summary: Option<PathBuf>,
    /// `name<<DELIM` blocks appended here become the step's outputs.
    pub output: Option<PathBuf>,
}

impl GitHubFiles {
    /// The paths from the environment, for the CLI; unset or empty means none.
    pub fn from_env() -> GitHubFiles {
        let path = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        GitHubFiles {
            step_summary: path("GITHUB_STEP_SUMMARY"),
            output: path("GITHUB_OUTPUT"),
        }
    }
}

/// Reports for GitHub Actions: a collapsed `::group::` per finished step holding its log,
/// `::error`/`::warning`/`::notice` annotations, and at the end a Markdown summary and the
/// `digest`, `reference` and `tags` outputs.
pub struct GitHub {
    root: PathBuf,
    files: GitHubFiles,
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    tally: Tally,
}

impl GitHub {
    /// Workflow commands on stdout.
    pub fn new(root: &Path, files: GitHubFiles) -> GitHub {
        GitHub::with_writer(root, files, Box::new(io::stdout()))
    }

    /// Workflow commands on `out` (stderr when stdout carries JSON; a buffer in tests).
    pub fn with_writer(root: &Path, files: GitHubFiles, out: Box<dyn Write + Send>) -> GitHub {
        GitHub {
            root: root.to_path_buf(),
            files,
            state: Mutex::new(State {
                out,
                tally: Tally::default(),
            }),
        }
    }

    fn finished(&self, out: &mut dyn Write, row: &Row, log: Option<&Path>) -> io::Result<()> {
        if let Outcome::Failed { message } = &row.outcome {
            let props = [("title", Some(format!("{} failed", row.step)))];
            writeln!(out, "{}", command("error", &props, message))?;
        }
        let cached = if row.cache_hit { ", cached" } else { "" };
        let title = format!(
            "{} ({}, {}{cached})",
            row.step,
            outcome_word(&row.outcome),
            duration(row.duration_ms)
        );
        writeln!(out, "{}", command("group", &[], &title))?;
        if let Some(log) = log {
            copy_log(out, &self.root.join(log))?;
        }
        writeln!(out, "{}", command("endgroup", &[], ""))?;
        out.flush()
    }

    fn done(&self, tally: &Tally, ok: bool, ms: u64) -> io::Result<()> {
        if let Some(path) = &self.files.step_summary {
            append(path, &summary(tally, ok, ms))?;
        }
        if let Some(path) = &self.files.output {
            let image = tally.image();
            let tags = image.tags.join("\n");
            let outputs = [
                ("digest", image.digest.as_deref()),
                ("reference", image.reference.as_deref()),
                ("tags", (!image.tags.is_empty()).then_some(tags.as_str())),
            ];
            let mut text = String::new();
            for (name, value) in outputs {
                if let Some(value) = value {
                    text.push_str(&output_entry(name, value));
                }
            }
            append(path, &text)?;
        }
        Ok(())
    }
}

impl Reporter for GitHub {
    fn event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tally.record(event);
        let State { out, tally } = &mut *state;
        let written = match event {
            Event::Annotated { annotation, .. } => {
                writeln!(out, "{}", annotation_command(annotation)).and_then(|()| out.flush())
            }
            Event::Finished { log, .. } => {
                let row = tally.rows.last().expect("recorded above");
                self.finished(out, row, log.as_deref())
            }
            Event::Done { ok, duration_ms } => self.done(tally, *ok, *duration_ms),
            Event::Planned { .. } | Event::Started { .. } | Event::Waiting { .. } => Ok(()),
        };
        if let Err(e) = written {
            tracing::warn!("writing the github actions report: {e}");
        }
    }
}

/// Escapes a command's message as toolkit's `escapeData` does.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value as toolkit's `escapeProperty` does.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::name key=value,key=value::message`; properties without a value are left out, as
/// toolkit does.
pub(super) fn command(name: &str, props: &[(&str, Option<String>)], message: &str) -> String {
    let props: Vec<String> = props
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", escape_property(value.as_ref()?))))
        .collect();
    let space = if props.is_empty() { "" } else { " " };
    format!(
        "::{name}{space}{}::{}",
        props.join(","),
        escape_data(message)
    )
}

/// `::error file=src/lib.rs,line=3,col=9,title=unused_variables::unused variable: `x``.
pub(super) fn annotation_command(a: &Annotation) -> String {
    let name = match a.level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    // GitHub matches annotation paths against the repository with forward slashes.
    let file = a
        .file
        .as_ref()
        .map(|f| f.to_string_lossy().replace('\\', "/"));
    let props = [
        ("file", file),
        ("line", a.line.map(|n| n.to_string())),
        ("col", a.column.map(|n| n.to_string())),
        ("title", a.title.clone()),
    ];
    command(name, &props, &a.message)
}

/// The log inside a group, with workflow commands turned off: a test's output that happens
/// to print `::error::` or `::add-mask::` must not act as a command of ours.
fn copy_log(out: &mut dyn Write, path: &Path) -> io::Result<()> {
    let token = random_token();
    match File::open(path) {
        Ok(mut file) => {
            writeln!(out, "::stop-commands::{token}")?;
            let copied = io::copy(&mut file, out);
            // The last line of the log may lack its newline; the resume command must start a line.
            writeln!(out)?;
            writeln!(out, "::{token}::")?;
            copied.map(drop)
        }
        Err(e) => writeln!(out, "(reading the log {}: {e})", path.display()),
    }
}

/// One output in the multi-line syntax, `name<<DELIM\nvalue\nDELIM\n`, with a delimiter
/// that occurs in neither name nor value (toolkit's `prepareKeyValueMessage`).
pub(super) fn output_entry(name: &str, value: &str) -> String {
    let delimiter = std::iter::repeat_with(|| format!("ghadelimiter_{}", random_token()))
        .find(|d| !name.contains(d.as_str()) && !value.contains(d.as_str()))
        .expect("an endless iterator finds a fresh delimiter");
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

fn random_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
}

/// The job summary: the steps table, the image, and every count (scan findings by
/// severity, matrix cells passed and failed).
pub(super) fn summary(tally: &Tally, ok: bool, ms: u64) -> String {
    let verdict = if ok { "succeeded" } else { "failed" };
    let mut md = format!("### wharf: {verdict} in {}\n\n", duration(ms));
    md.push_str("| Step | Outcome | Duration | Cache |\n| --- | --- | --- | --- |\n");
    for row in &tally.rows {
        let outcome = match &row.outcome {
            Outcome::Succeeded => "✅ ok".to_string(),
            Outcome::Failed { message } => format!("❌ failed: {}", cell(message)),
            Outcome::Skipped { reason } => format!("⏭️ skipped: {}", cell(reason)),
        };
        let cache = if row.cache_hit { "hit" } else { "" };
        let _ = writeln!(
            md,
            "| {} | {outcome} | {} | {cache} |",
            cell(&row.step),
            duration(row.duration_ms)
        );
    }
    let image = tally.image();
    if image != Default::default() {
        md.push_str("\n#### Image\n\n");
        for (name, value) in [("Reference", &image.reference), ("Digest", &image.digest)] {
            if let Some(value) = value {
                let _ = writeln!(md, "- {name}: `{value}`");
            }
        }
        if !image.tags.is_empty() {
            let tags: Vec<String> = image.tags.iter().map(|t| format!("`{t}`")).collect();
            let _ = writeln!(md, "- Tags: {}", tags.join(", "));
        }
    }
    let counts = tally.counts();
    if !counts.is_empty() {
        md.push_str("\n#### Counts\n\n| Step | Name | Count |\n| --- | --- | --- |\n");
        for (step, name, n) in counts {
            let _ = writeln!(md, "| {} | {} | {n} |", cell(step), cell(name));
        }
    }
    md.push('\n');
    md
}

/// Text made safe for one Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}
