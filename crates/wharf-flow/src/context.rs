//! What a running step sees: the workspace, the facts, its upstream steps' outputs, its log,
//! and a way to start processes that write to that log and share the compiler slots.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::event::{Annotation, Event};
use crate::facts::Facts;
use crate::step::Outputs;

type Sink<'a> = Box<dyn Fn(Event) + Send + 'a>;

pub struct Context<'a> {
    step: String,
    facts: &'a Facts,
    needs: BTreeMap<String, Outputs>,
    log: File,
    log_path: PathBuf,
    jobserver: Option<&'a jobserver::Client>,
    sink: Option<Sink<'a>>,
    annotations: Vec<Annotation>,
}

impl<'a> Context<'a> {
    /// A context for `step` whose log is `log_path` (created, or emptied). The runner builds
    /// one per step; tests of a step build their own.
    pub fn new(step: &str, facts: &'a Facts, log_path: &Path) -> io::Result<Context<'a>> {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("creating the log {}: {e}", log_path.display()),
            )
        };
        if let Some(dir) = log_path.parent() {
            fs::create_dir_all(dir).map_err(context)?;
        }
        File::create(log_path).map_err(context)?;
        // Appending: the step's own writes and its processes' output share one file and
        // must not overwrite each other.
        let log = OpenOptions::new()
            .append(true)
            .open(log_path)
            .map_err(context)?;
        Ok(Context {
            step: step.to_string(),
            facts,
            needs: BTreeMap::new(),
            log,
            log_path: log_path.to_path_buf(),
            jobserver: None,
            sink: None,
            annotations: Vec::new(),
        })
    }

    /// The outputs of the steps this one needs, by step id.
    pub fn with_needs(mut self, needs: BTreeMap<String, Outputs>) -> Context<'a> {
        self.needs = needs;
        self
    }

    /// Processes from [`Context::command`] get their compiler slots from `jobserver`.
    pub fn with_jobserver(mut self, jobserver: &'a jobserver::Client) -> Context<'a> {
        self.jobserver = Some(jobserver);
        self
    }

    /// Where annotations go as they are made (the runner forwards them to the reporter).
    pub(crate) fn with_sink(mut self, sink: Sink<'a>) -> Context<'a> {
        self.sink = Some(sink);
        self
    }

    pub fn step_id(&self) -> &str {
        &self.step
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.facts.root
    }

    pub fn facts(&self) -> &Facts {
        self.facts
    }

    /// The outputs of `step`, when this step needs it (and it succeeded).
    pub fn outputs_of(&self, step: &str) -> Option<&Outputs> {
        self.needs.get(step)
    }

    /// The step's captured log, for what it prints itself.
    pub fn log(&mut self) -> &mut File {
        &mut self.log
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Points at a place in the workspace; reporters show it (GitHub as `::error file=...`).
    pub fn annotate(&mut self, annotation: Annotation) {
        if let Some(sink) = &self.sink {
            sink(Event::Annotated {
                step: self.step.clone(),
                annotation: annotation.clone(),
            });
        }
        self.annotations.push(annotation);
    }

    /// The annotations made so far.
    pub fn annotations(&self) -> &[Annotation] {
        &self.annotations
    }

    /// `program` to run in the workspace root with no input, its stdout and stderr appended
    /// to the step's log and, for a compiling step, the shared jobserver (cargo reads it from
    /// `CARGO_MAKEFLAGS` and takes its compiler slots from it).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(self.root());
        self.attach(&mut command);
        command
    }

    /// Gives a command built elsewhere (by a library) what [`Context::command`] gives: the
    /// step's log for its output, no input, and the shared jobserver.
    pub fn attach(&self, command: &mut Command) {
        command
            .stdin(Stdio::null())
            .stdout(self.log_stdio())
            .stderr(self.log_stdio());
        if let Some(jobserver) = self.jobserver {
            jobserver.configure(command);
        }
    }

    /// The jobserver of this run's compiler slots, for a step that starts compilers its own
    /// way (the matrix runner).
    pub fn jobserver(&self) -> Option<&jobserver::Client> {
        self.jobserver
    }

    fn log_stdio(&self) -> Stdio {
        match self.log.try_clone() {
            Ok(file) => Stdio::from(file),
            // Only when out of file descriptors, where the spawn fails too; the terminal then
            // shows the output rather than losing it.
            Err(e) => {
                tracing::warn!("sharing the log {}: {e}", self.log_path.display());
                Stdio::inherit()
            }
        }
    }
}
