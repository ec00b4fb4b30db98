//! Test steps and a recording reporter, shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use wharf_flow::{Context, Event, Facts, FileFact, Inputs, Outputs, Reporter, Step, StepError};

type Body = Box<dyn Fn(&mut Context<'_>) -> Result<Outputs, StepError> + Send + Sync>;

/// A step whose behaviour is a closure.
pub struct FnStep {
    pub id: String,
    pub needs: Vec<String>,
    pub argv: Vec<String>,
    pub version: u32,
    pub inputs: Option<Inputs>,
    pub compiler: bool,
    pub lock: Option<String>,
    pub body: Body,
}

impl FnStep {
    /// A cacheable step reading nothing, doing nothing.
    pub fn new(id: &str) -> FnStep {
        FnStep {
            id: id.to_string(),
            needs: Vec::new(),
            argv: vec!["true".to_string()],
            version: 1,
            inputs: Some(Inputs::default()),
            compiler: false,
            lock: None,
            body: Box::new(|_| Ok(Outputs::new())),
        }
    }

    pub fn needs(mut self, needs: &[&str]) -> FnStep {
        self.needs = needs.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn files(mut self, globs: &[&str]) -> FnStep {
        let inputs = self.inputs.get_or_insert_with(Inputs::default);
        inputs.files = globs.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn env(mut self, names: &[&str]) -> FnStep {
        let inputs = self.inputs.get_or_insert_with(Inputs::default);
        inputs.env = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn uncached(mut self) -> FnStep {
        self.inputs = None;
        self
    }

    pub fn compiler(mut self) -> FnStep {
        self.compiler = true;
        self
    }

    pub fn lock(mut self, lock: &str) -> FnStep {
        self.lock = Some(lock.to_string());
        self
    }

    pub fn body(
        mut self,
        body: impl Fn(&mut Context<'_>) -> Result<Outputs, StepError> + Send + Sync + 'static,
    ) -> FnStep {
        self.body = Box::new(body);
        self
    }
}

impl Step for FnStep {
    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn needs(&self) -> Vec<String> {
        self.needs.clone()
    }
    fn argv(&self) -> Vec<String> {
        self.argv.clone()
    }
    fn describe(&self) -> String {
        format!("test step {}", self.id)
    }
    fn inputs(&self) -> Option<Inputs> {
        self.inputs.clone()
    }
    fn uses_compiler(&self) -> bool {
        self.compiler
    }
    fn lock(&self) -> Option<String> {
        self.lock.clone()
    }
    fn run(&self, cx: &mut Context<'_>) -> Result<Outputs, StepError> {
        (self.body)(cx)
    }
}

/// Keeps every event.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// Facts with a toolchain and two files, rooted at `root`.
pub fn facts(root: PathBuf) -> Facts {
    let file = |content: &str| FileFact {
        executable: false,
        sha256: format!("{content:0>64}"),
    };
    Facts {
        root,
        toolchain: "rustc 1.95.0 (test)".to_string(),
        git: None,
        env: BTreeMap::new(),
        files: BTreeMap::from([
            ("src/lib.rs".to_string(), file("1")),
            ("README.md".to_string(), file("2")),
        ]),
        cpus: 2,
    }
}
