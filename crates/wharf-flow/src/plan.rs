//! Planning: a pipeline and the facts in, the order and every step's cache key out.
//! Pure: no file, process or environment is read here (tests build [`Facts`] by hand).

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSetBuilder};
use serde::Serialize;

use crate::event::Event;
use crate::facts::Facts;
use crate::step::Step;

/// A named set of steps: `Pipeline::new("ci").step(Fmt).step(Clippy)`.
pub struct Pipeline {
    pub name: String,
    pub steps: Vec<Box<dyn Step>>,
}

impl Pipeline {
    pub fn new(name: impl Into<String>) -> Pipeline {
        Pipeline {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    pub fn step(mut self, step: impl Step + 'static) -> Pipeline {
        self.steps.push(Box::new(step));
        self
    }

    /// The pipeline without the steps `ids`, which also leave the needs of the others (a
    /// step that needed one runs without waiting for it).
    pub fn without(self, ids: &[String]) -> Pipeline {
        if ids.is_empty() {
            return self;
        }
        let dropped: BTreeSet<String> = ids.iter().cloned().collect();
        let steps = self
            .steps
            .into_iter()
            .filter(|step| !dropped.contains(step.id()))
            .map(|inner| -> Box<dyn Step> {
                Box::new(Without {
                    inner,
                    dropped: dropped.clone(),
                })
            })
            .collect();
        Pipeline {
            name: self.name,
            steps,
        }
    }

    /// The environment variables any step declares: what [`Facts::gather`] must read.
    pub fn env_names(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .steps
            .iter()
            .filter_map(|s| s.inputs())
            .flat_map(|inputs| inputs.env)
            .collect();
        names.into_iter().collect()
    }

    pub(crate) fn find(&self, id: &str) -> Option<&dyn Step> {
        self.steps.iter().find(|s| s.id() == id).map(|s| &**s)
    }
}

/// What a run will do, in order: plain data (`--dry-run --json` prints it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub pipeline: String,
    /// In a topological order: every step after the steps it needs.
    pub steps: Vec<PlannedStep>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    pub id: String,
    pub needs: Vec<String>,
    pub argv: Vec<String>,
    pub description: String,
    /// sha256 hex of everything the step reads; `None` when it is never cached (it reads
    /// the world, or a step it needs does).
    pub key: Option<String>,
}

impl Plan {
    /// One `Event::Planned` per step, in plan order.
    pub fn planned_events(&self) -> Vec<Event> {
        self.steps
            .iter()
            .map(|s| Event::Planned {
                step: s.id.clone(),
                needs: s.needs.clone(),
                argv: s.argv.clone(),
                description: s.description.clone(),
                key: s.key.clone(),
            })
            .collect()
    }
}

/// For `--dry-run`: one line per step, in order, with its short key and needs.
impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pipeline {}: {} steps", self.pipeline, self.steps.len())?;
        for step in &self.steps {
            let key = step
                .key
                .as_deref()
                .map_or("never cached", |k| &k[..k.len().min(12)]);
            write!(f, "  {:<12} {:<12} {}", step.id, key, step.argv.join(" "))?;
            if !step.needs.is_empty() {
                write!(f, " (after {})", step.needs.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("pipeline `{pipeline}` has two steps with the id `{id}` (hint: ids must be unique)")]
    DuplicateId { pipeline: String, id: String },
    #[error(
        "step `{step}` needs `{need}`, which is not a step of pipeline `{pipeline}` \
         (known steps: {}; hint: fix the id or add the step)", known.join(", ")
    )]
    UnknownNeed {
        pipeline: String,
        step: String,
        need: String,
        known: Vec<String>,
    },
    #[error(
        "steps of pipeline `{pipeline}` need each other in a cycle: {} (hint: drop one of these needs)",
        cycle.join(" -> ")
    )]
    Cycle {
        pipeline: String,
        /// The first step repeated at the end: `a -> b -> a`.
        cycle: Vec<String>,
    },
    #[error("step `{step}` has an invalid input glob `{glob}`: {message}")]
    BadGlob {
        step: String,
        glob: String,
        message: String,
    },
    #[error(
        "step `{step}` declares the environment variable `{name}`, which the facts do not hold \
         (hint: gather the facts with the pipeline's env_names())"
    )]
    EnvNotGathered { step: String, name: String },
}

/// Orders the steps and computes their keys. Runs nothing.
pub fn plan(pipeline: &Pipeline, facts: &Facts) -> Result<Plan, PlanError> {
    let order = order(pipeline)?;
    let mut keys: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut steps = Vec::with_capacity(order.len());
    for index in order {
        let step = &*pipeline.steps[index];
        let needs = needs(step);
        let key = key(step, &needs, facts, &keys)?;
        keys.insert(step.id(), key.clone());
        steps.push(PlannedStep {
            id: step.id().to_string(),
            needs,
            argv: step.argv(),
            description: step.describe(),
            key,
        });
    }
    Ok(Plan {
        pipeline: pipeline.name.clone(),
        steps,
    })
}

/// A step's needs without repeats, in declaration order.
fn needs(step: &dyn Step) -> Vec<String> {
    let mut seen = BTreeSet::new();
    step.needs()
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// Indexes into `pipeline.steps` in a stable topological order: among the steps whose needs
/// are placed, the first declared goes first.
fn order(pipeline: &Pipeline) -> Result<Vec<usize>, PlanError> {
    let ids: Vec<&str> = pipeline.steps.iter().map(|s| s.id()).collect();
    let mut seen = BTreeSet::new();
    for id in &ids {
        if !seen.insert(*id) {
            return Err(PlanError::DuplicateId {
                pipeline: pipeline.name.clone(),
                id: id.to_string(),
            });
        }
    }
    let needs: Vec<Vec<usize>> = pipeline
        .steps
        .iter()
        .map(|step| {
            needs(&**step)
                .into_iter()
                .map(|need| {
                    ids.iter()
                        .position(|id| *id == need)
                        .ok_or_else(|| PlanError::UnknownNeed {
                            pipeline: pipeline.name.clone(),
                            step: step.id().to_string(),
                            need,
                            known: ids.iter().map(|id| id.to_string()).collect(),
                        })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let mut placed = vec![false; ids.len()];
    let mut order = Vec::with_capacity(ids.len());
    while order.len() < ids.len() {
        let ready = (0..ids.len()).find(|&i| !placed[i] && needs[i].iter().all(|&n| placed[n]));
        let Some(ready) = ready else {
            return Err(PlanError::Cycle {
                pipeline: pipeline.name.clone(),
                cycle: cycle(&needs, &placed, &ids),
            });
        };
        placed[ready] = true;
        order.push(ready);
    }
    Ok(order)
}

/// A cycle among the unplaced steps. Every unplaced step has an unplaced need (else it would
/// be ready), so following first unplaced needs must come back to a step already seen.
fn cycle(needs: &[Vec<usize>], placed: &[bool], ids: &[&str]) -> Vec<String> {
    let mut path: Vec<usize> = Vec::new();
    let mut at = (0..ids.len()).find(|&i| !placed[i]).unwrap_or(0);
    while !path.contains(&at) && path.len() <= ids.len() {
        path.push(at);
        at = needs[at]
            .iter()
            .copied()
            .find(|&n| !placed[n])
            .unwrap_or(at);
    }
    let start = path.iter().position(|&i| i == at).unwrap_or(0);
    path[start..]
        .iter()
        .chain([&at])
        .map(|&i| ids[i].to_string())
        .collect()
}

/// The step's cache key; `keys` holds the keys of the steps before it in the order.
fn key(
    step: &dyn Step,
    needs: &[String],
    facts: &Facts,
    keys: &BTreeMap<&str, Option<String>>,
) -> Result<Option<String>, PlanError> {
    let Some(inputs) = step.inputs() else {
        return Ok(None);
    };
    let mut upstream = Vec::with_capacity(needs.len());
    for need in needs {
        // An upstream step that is never cached has outputs nobody can predict.
        let Some(Some(key)) = keys.get(need.as_str()) else {
            return Ok(None);
        };
        upstream.push((need.as_str(), key.as_str()));
    }
    upstream.sort();
    let mut env_names: Vec<&str> = inputs.env.iter().map(String::as_str).collect();
    env_names.sort();
    env_names.dedup();

    let mut hasher = KeyHasher::new();
    hasher.field(b"id", step.id().as_bytes());
    hasher.field(b"version", &step.version().to_le_bytes());
    hasher.list(b"argv", step.argv().iter().map(|a| a.as_bytes()));
    hasher.count(b"env", env_names.len());
    for name in env_names {
        let value = facts
            .env
            .get(name)
            .ok_or_else(|| PlanError::EnvNotGathered {
                step: step.id().to_string(),
                name: name.to_string(),
            })?;
        hasher.field(b"name", name.as_bytes());
        match value {
            None => hasher.field(b"unset", b""),
            Some(value) => hasher.field(b"value", value.as_bytes()),
        }
    }
    hasher.field(b"toolchain", facts.toolchain.as_bytes());
    if inputs.git {
        match &facts.git {
            Some(git) => {
                hasher.field(b"commit", git.commit.as_bytes());
                hasher.field(b"dirty", &[u8::from(git.dirty)]);
            }
            None => hasher.field(b"no-git", b""),
        }
    }
    let matched = matching_files(step, &inputs.files, facts)?;
    hasher.count(b"files", matched.len());
    for (path, file) in matched {
        hasher.field(b"path", path.as_bytes());
        hasher.field(b"executable", &[u8::from(file.executable)]);
        hasher.field(b"sha256", file.sha256.as_bytes());
    }
    hasher.count(b"needs", upstream.len());
    for (need, key) in upstream {
        hasher.field(b"need", need.as_bytes());
        hasher.field(b"key", key.as_bytes());
    }
    Ok(Some(hasher.finish()))
}

/// The facts' files that any of `globs` matches, sorted by path (the map's order).
fn matching_files<'f>(
    step: &dyn Step,
    globs: &[String],
    facts: &'f Facts,
) -> Result<Vec<(&'f String, &'f crate::facts::FileFact)>, PlanError> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let bad = |e: globset::Error| PlanError::BadGlob {
            step: step.id().to_string(),
            glob: glob.clone(),
            message: e.kind().to_string(),
        };
        // `*` stays within a directory, as in .gitignore; `**` crosses them.
        set.add(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(bad)?,
        );
    }
    let set = set.build().map_err(|e| PlanError::BadGlob {
        step: step.id().to_string(),
        glob: e.glob().unwrap_or_default().to_string(),
        message: e.kind().to_string(),
    })?;
    Ok(facts
        .files
        .iter()
        .filter(|(path, _)| set.is_match(path.as_str()))
        .collect())
}

/// A canonical, unambiguous encoding: every field is a tag and a length-prefixed value, so
/// no two different inputs encode alike (`["a b"]` vs `["a", "b"]`, unset vs empty).
struct KeyHasher(ring::digest::Context);

impl KeyHasher {
    fn new() -> KeyHasher {
        let mut hasher = KeyHasher(ring::digest::Context::new(&ring::digest::SHA256));
        hasher.field(b"wharf-flow step key", b"1");
        hasher
    }

    fn field(&mut self, tag: &[u8], value: &[u8]) {
        self.0.update(&(tag.len() as u64).to_le_bytes());
        self.0.update(tag);
        self.0.update(&(value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn count(&mut self, tag: &[u8], n: usize) {
        self.field(tag, &(n as u64).to_le_bytes());
    }

    fn list<'v>(&mut self, tag: &[u8], values: impl ExactSizeIterator<Item = &'v [u8]>) {
        self.count(tag, values.len());
        for value in values {
            self.field(b"item", value);
        }
    }

    fn finish(self) -> String {
        hex::encode(self.0.finish())
    }
}

/// A step whose needs leave out steps removed from its pipeline.
struct Without {
    inner: Box<dyn Step>,
    dropped: BTreeSet<String>,
}

impl Step for Without {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn needs(&self) -> Vec<String> {
        let mut needs = self.inner.needs();
        needs.retain(|need| !self.dropped.contains(need));
        needs
    }
    fn argv(&self) -> Vec<String> {
        self.inner.argv()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn inputs(&self) -> Option<crate::step::Inputs> {
        self.inner.inputs()
    }
    fn uses_compiler(&self) -> bool {
        self.inner.uses_compiler()
    }
    fn lock(&self) -> Option<String> {
        self.inner.lock()
    }
    fn still_valid(&self, outputs: &crate::step::Outputs) -> bool {
        self.inner.still_valid(outputs)
    }
    fn run(
        &self,
        cx: &mut crate::context::Context<'_>,
    ) -> Result<crate::step::Outputs, crate::step::StepError> {
        self.inner.run(cx)
    }
}
