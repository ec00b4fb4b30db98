//! The spec as workflow files: one job per pipeline, the matrix's plan and shard jobs, and
//! the steps every job shares.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crate::promote;
use crate::yaml::{self, Map, Node};
use crate::{
    Files, HEADER, Matrix, PROMOTE_PATH, Pipeline, RegistrySecrets, Report, SpecError, Trigger,
    WorkflowSpec,
};

const CHECKOUT: &str = "actions/checkout@v4";
const CACHE_RESTORE: &str = "actions/cache/restore@v4";
const CACHE_SAVE: &str = "actions/cache/save@v4";
const UPLOAD_ARTIFACT: &str = "actions/upload-artifact@v4";
const UPLOAD_SARIF: &str = "github/codeql-action/upload-sarif@v3";
pub(crate) const RUNNER: &str = "ubuntu-latest";
/// The release workflow's `name`, which promote.yml's `workflow_run` trigger names.
pub(crate) const RELEASE_WORKFLOW: &str = "release";
/// What the step cache's key hashes besides the commit: a lockfile or pipeline change
/// invalidates most entries, so restoring across one is only a fallback.
const KEY_FILES: &str = "hashFiles('**/Cargo.lock', 'pipelines/**')";
/// The id of the cache restore step, whose outputs the save step reads.
const CACHE_STEP: &str = "step-cache";

/// The workflow files for `spec`, in a fixed order (ci.yml, then release.yml), each only
/// when a job runs in it. The same spec always gives the same bytes.
pub fn render(spec: &WorkflowSpec) -> Result<Files, SpecError> {
    validate(spec)?;
    let mut files = Vec::new();
    for trigger in [Trigger::Change, Trigger::Release] {
        let mut jobs = Map::new();
        for pipeline in spec.pipelines.iter().filter(|p| p.trigger == trigger) {
            jobs = jobs.with(&pipeline.name, pipeline_job(spec, pipeline));
        }
        if let (Trigger::Change, Some(matrix)) = (trigger, &spec.matrix) {
            jobs = jobs
                .with("plan", plan_job(spec, matrix))
                .with("matrix", shard_job(spec, matrix));
        }
        if !jobs.is_empty() {
            files.push((PathBuf::from(trigger.path()), workflow(trigger, jobs)));
        }
    }
    if let Some(promotion) = &spec.promotion {
        files.push((
            PathBuf::from(PROMOTE_PATH),
            promote::workflow(spec, promotion),
        ));
    }
    Ok(files)
}

/// A workflow file: the header, what the workflow is for, its name and triggers, then
/// `rules` (permissions, concurrency), the environment every job shares, and the jobs.
pub(crate) fn document(about: &str, name: &str, on: Map, rules: Map, jobs: Map) -> String {
    let doc = Map::new()
        .comment(about)
        .with("name", name)
        .with("on", on)
        .append(rules)
        .with("env", Map::new().with("CARGO_TERM_COLOR", "always"))
        .with("jobs", jobs);
    format!("{HEADER}\n{}", yaml::to_string(&doc))
}

fn workflow(trigger: Trigger, jobs: Map) -> String {
    let (name, about, on) = match trigger {
        Trigger::Change => (
            "ci",
            "Every push to main and every pull request: the same `cargo xtask` lines a developer runs.",
            Map::new()
                .with(
                    "push",
                    Map::new().with("branches", vec![Node::from("main")]),
                )
                .with("pull_request", Node::Null),
        ),
        Trigger::Release => (
            RELEASE_WORKFLOW,
            "A pushed version tag: build, scan and push the image with the registry credentials.",
            Map::new().with("push", Map::new().with("tags", vec![Node::from("v*")])),
        ),
    };
    let rules = Map::new()
        .comment("Jobs that need more say so themselves.")
        .with("permissions", Map::new().with("contents", "read"));
    document(about, name, on, rules, jobs)
}

fn pipeline_job(spec: &WorkflowSpec, pipeline: &Pipeline) -> Map {
    let mut line = format!("cargo xtask {}", pipeline.name);
    for arg in &pipeline.args {
        line.push(' ');
        line.push_str(&shell_word(arg));
    }
    let mut env = pipeline.env.clone();
    for name in &pipeline.secrets {
        env.insert(name.clone(), secret(name));
    }
    if let (Trigger::Release, Some(registry)) = (pipeline.trigger, &spec.registry) {
        registry_env(registry, &mut env);
    }
    // With stages, a release ends by recording its image as verified in the shared ledger
    // (the `record` step), which the first promotion reads: the job fetches the ledger and
    // may push it.
    let ledger = match (pipeline.trigger, &spec.promotion) {
        (Trigger::Release, Some(promotion)) => {
            env.insert(
                "WHARF_LEDGER_REMOTE".into(),
                promotion.ledger_remote.clone(),
            );
            Some(promotion)
        }
        _ => None,
    };
    let work = Map::new()
        .with("name", line.as_str())
        .with("run", line.as_str())
        .with_some("env", (!env.is_empty()).then(|| env_map(&env)));
    let mut steps = vec![checkout(TAGS)];
    steps.extend(ledger.map(crate::promote::fetch_ledger));
    steps.extend([
        toolchains(spec, Install::All),
        cache_restore(spec, &cache_prefix(&pipeline.name)),
        work.into(),
        cache_save(spec),
    ]);
    steps.extend(pipeline.reports.iter().map(upload));
    let sarif = pipeline
        .reports
        .iter()
        .any(|r| matches!(r, Report::Sarif { .. }));
    Map::new()
        .with("name", format!("cargo xtask {}", pipeline.name))
        .with("runs-on", RUNNER)
        .with_some(
            "permissions",
            (sarif || ledger.is_some()).then(|| {
                let contents = match ledger {
                    Some(_) => Map::new()
                        .comment("The record step pushes the ledger ref.")
                        .with("contents", "write"),
                    None => Map::new().with("contents", "read"),
                };
                match sarif {
                    true => contents
                        .comment("upload-sarif: advisories appear in GitHub code scanning.")
                        .with("security-events", "write"),
                    false => contents,
                }
            }),
        )
        .with("steps", steps)
}

fn plan_job(spec: &WorkflowSpec, matrix: &Matrix) -> Map {
    let mut emit = "cargo xtask matrix --emit github-matrix".to_owned();
    if matrix.shards > 0 {
        emit.push_str(&format!(" --shards {}", matrix.shards));
    }
    // An assignment fails the step when the command fails; `echo "matrix=$(...)"` would not.
    let script = format!("matrix=\"$({emit})\"\necho \"matrix=$matrix\" >> \"$GITHUB_OUTPUT\"\n");
    let plan = Map::new()
        .with("name", emit.as_str())
        .with("id", "plan")
        .comment("One line of JSON: {\"include\":[{\"shard\":\"1/4\",\"name\":...,\"toolchains\":...},...]}")
        .with("run", Node::Block(script));
    Map::new()
        .with("name", "plan the test matrix")
        .with("runs-on", RUNNER)
        .with(
            "outputs",
            Map::new().with("matrix", "${{ steps.plan.outputs.matrix }}"),
        )
        .with(
            "steps",
            vec![
                checkout(TAGS),
                toolchains(spec, Install::Default),
                plan.into(),
            ],
        )
}

fn shard_job(spec: &WorkflowSpec, matrix: &Matrix) -> Map {
    let run = Map::new()
        .with("name", "cargo xtask matrix --shard ${{ matrix.shard }}")
        .with("env", Map::new().with("SHARD", "${{ matrix.shard }}"))
        .with("run", "cargo xtask matrix --shard \"$SHARD\"");
    let mut steps = vec![
        checkout(TAGS),
        toolchains(spec, Install::Shard),
        cache_restore(
            spec,
            &format!("{}-${{{{ strategy.job-index }}}}", cache_prefix("matrix")),
        ),
        run.into(),
        cache_save(spec),
    ];
    if !matrix.reports.is_empty() {
        steps.push(upload(&Report::Artifact {
            // Artifact names are unique per run and may not hold the shard's `/`.
            name: "matrix-${{ strategy.job-index }}".into(),
            paths: matrix.reports.clone(),
        }));
    }
    Map::new()
        .comment("Every runner plans the same cells from the same commit, so only the shard label crosses between jobs.")
        .with("needs", "plan")
        .with("name", "${{ matrix.name }}")
        .with("runs-on", RUNNER)
        .with(
            "strategy",
            Map::new()
                .with("fail-fast", false)
                .with("matrix", "${{ fromJSON(needs.plan.outputs.matrix) }}"),
        )
        .with("steps", steps)
}

/// Why the pipelines' jobs check out the full history.
const TAGS: &str = "Tags and full history: image tags come from `git tag --points-at HEAD`.";

/// actions/checkout of the whole history, with why the job needs it.
pub(crate) fn checkout(why: &str) -> Node {
    Node::Commented(
        why.into(),
        Box::new(
            Map::new()
                .with("uses", CHECKOUT)
                .with("with", Map::new().with("fetch-depth", 0u64))
                .into(),
        ),
    )
}

/// Which toolchains a job installs.
#[derive(Clone, Copy)]
pub(crate) enum Install {
    /// The default one, which builds `cargo xtask`.
    Default,
    /// All of them: a pipeline's steps may test on each.
    All,
    /// The default one, then those of the job's matrix shard.
    Shard,
}

pub(crate) fn toolchains(spec: &WorkflowSpec, install: Install) -> Node {
    let default = &spec.toolchains[0];
    let mut script = format!("rustup toolchain install {default} --profile minimal");
    // clippy and rustfmt run in the pipelines' steps, never in the matrix.
    if matches!(install, Install::All) && !spec.components.is_empty() {
        script.push_str(&format!(" --component {}", spec.components.join(",")));
    }
    script.push_str(&format!("\nrustup default {default}\n"));
    let mut step = Map::new().with("name", "Install toolchains");
    match install {
        Install::Default => {}
        Install::All => {
            let others = &spec.toolchains[1..];
            if !others.is_empty() {
                script.push_str(&format!(
                    "rustup toolchain install {} --profile minimal\n",
                    others.join(" ")
                ));
            }
        }
        Install::Shard => {
            step = step.with(
                "env",
                Map::new()
                    .with("TOOLCHAINS", "${{ matrix.toolchains }}")
                    .with("TARGETS", "${{ matrix.targets }}"),
            );
            script.push_str(concat!(
                "for toolchain in $TOOLCHAINS; do\n",
                "  rustup toolchain install \"$toolchain\" --profile minimal --target \"${TARGETS// /,}\"\n",
                "done\n",
            ));
        }
    }
    step.with("run", Node::Block(script)).into()
}

/// The cache key's prefix for a job: entries of one job never restore into another.
fn cache_prefix(job: &str) -> String {
    format!("wharf-{job}-${{{{ runner.os }}}}")
}

/// The step cache, restored from this commit's entry, else the newest with the same
/// lockfile and pipelines, else the newest of the job. The key holds the commit because a
/// cache entry is never overwritten: without it the first run after a lockfile change would
/// be the only one ever saved.
fn cache_restore(spec: &WorkflowSpec, prefix: &str) -> Node {
    let files = format!("{prefix}-${{{{ {KEY_FILES} }}}}");
    Map::new()
        .with("name", "Restore the step cache")
        .with("id", CACHE_STEP)
        .with("uses", CACHE_RESTORE)
        .with(
            "with",
            Map::new()
                .with("path", spec.cache_dir.as_str())
                .with("key", format!("{files}-${{{{ github.sha }}}}"))
                .with(
                    "restore-keys",
                    Node::Block(format!("{files}-\n{prefix}-\n")),
                ),
        )
        .into()
}

/// Saved also when the work failed: the steps that passed are skipped on the next run.
fn cache_save(spec: &WorkflowSpec) -> Node {
    Map::new()
        .with("name", "Save the step cache")
        .with(
            "if",
            format!("always() && steps.{CACHE_STEP}.outputs.cache-hit != 'true'"),
        )
        .with("uses", CACHE_SAVE)
        .with(
            "with",
            Map::new().with("path", spec.cache_dir.as_str()).with(
                "key",
                format!("${{{{ steps.{CACHE_STEP}.outputs.cache-primary-key }}}}"),
            ),
        )
        .into()
}

/// Uploads a report when the work wrote it, also after a failure (a failing gate's report is
/// the one worth reading).
fn upload(report: &Report) -> Node {
    match report {
        Report::Sarif { file, category } => Map::new()
            .with("name", format!("Upload {file} to code scanning"))
            .with("if", exists(std::slice::from_ref(file)))
            .with("uses", UPLOAD_SARIF)
            .with(
                "with",
                Map::new()
                    .with("sarif_file", file.as_str())
                    .with("category", category.as_str()),
            )
            .into(),
        Report::Artifact { name, paths } => {
            let path = match paths.as_slice() {
                [one] => Node::from(one.as_str()),
                many => Node::Block(many.iter().map(|p| format!("{p}\n")).collect()),
            };
            Map::new()
                .with("name", format!("Upload {name}"))
                .with("if", exists(paths))
                .with("uses", UPLOAD_ARTIFACT)
                .with(
                    "with",
                    Map::new().with("name", name.as_str()).with("path", path),
                )
                .into()
        }
    }
}

/// `always() && hashFiles(...) != ''`: true when any of `paths` (a directory: any file in
/// it) exists.
fn exists(paths: &[String]) -> String {
    let patterns: Vec<String> = paths
        .iter()
        .map(|p| match p.strip_suffix('/') {
            Some(dir) => format!("'{dir}/**'"),
            None => format!("'{p}'"),
        })
        .collect();
    format!("always() && hashFiles({}) != ''", patterns.join(", "))
}

fn secret(name: &str) -> String {
    format!("${{{{ secrets.{name} }}}}")
}

/// The registry credentials as the variables wharf-registry's `credentials::Env` reads.
pub(crate) fn registry_env(registry: &RegistrySecrets, env: &mut BTreeMap<String, String>) {
    env.insert("WHARF_REGISTRY_USERNAME".into(), secret(&registry.username));
    env.insert("WHARF_REGISTRY_PASSWORD".into(), secret(&registry.password));
    if let Some(host) = &registry.host {
        env.insert("WHARF_REGISTRY_HOST".into(), host.clone());
    }
}

pub(crate) fn env_map(env: &BTreeMap<String, String>) -> Map {
    env.iter()
        .fold(Map::new(), |map, (k, v)| map.with(k, v.as_str()))
}

/// `word` as one POSIX shell word: as is when it holds nothing the shell treats specially,
/// else single-quoted.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Job ids, stages and GitHub environments.
pub(crate) const ID: Charset = Charset {
    first: |c| c.is_ascii_alphabetic() || c == '_',
    rest: |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    allowed: "letters, digits, `-` and `_`, starting with a letter or `_`",
};
/// Environment variables and secrets.
const VAR: Charset = Charset {
    first: |c| c.is_ascii_alphabetic() || c == '_',
    rest: |c| c.is_ascii_alphanumeric() || c == '_',
    allowed: "letters, digits and `_`, starting with a letter or `_`",
};
/// Toolchains, components, artifacts and git remotes.
pub(crate) const WORD: Charset = Charset {
    first: |c| c.is_ascii_alphanumeric(),
    rest: |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
    allowed: "letters, digits, `-`, `_` and `.`, starting with a letter or digit",
};
const HOST: Charset = Charset {
    first: |c| c.is_ascii_alphanumeric() || c == '[',
    rest: |c| c.is_ascii_alphanumeric() || "-.:[]".contains(c),
    allowed: "a registry host such as ghcr.io or localhost:5000",
};

fn validate(spec: &WorkflowSpec) -> Result<(), SpecError> {
    let mut taken: HashSet<&str> = HashSet::new();
    if spec.matrix.is_some() {
        taken.extend(["plan", "matrix"]);
    }
    for pipeline in &spec.pipelines {
        ID.check("pipeline", &pipeline.name)?;
        if !taken.insert(&pipeline.name) {
            return Err(SpecError::Duplicate {
                name: pipeline.name.clone(),
            });
        }
        for name in pipeline.env.keys() {
            VAR.check("environment variable", name)?;
        }
        for name in &pipeline.secrets {
            VAR.check("secret", name)?;
        }
        for report in &pipeline.reports {
            match report {
                Report::Artifact { name, paths } => {
                    WORD.check("artifact", name)?;
                    paths.iter().try_for_each(|p| check_path("report", p))?;
                }
                Report::Sarif { file, category } => {
                    check_path("report", file)?;
                    WORD.check("SARIF category", category)?;
                }
            }
        }
    }
    if spec.toolchains.is_empty() {
        return Err(SpecError::NoToolchain);
    }
    for toolchain in &spec.toolchains {
        WORD.check("toolchain", toolchain)?;
    }
    for component in &spec.components {
        WORD.check("component", component)?;
    }
    if let Some(matrix) = &spec.matrix {
        matrix
            .reports
            .iter()
            .try_for_each(|p| check_path("report", p))?;
    }
    check_path("step cache directory", &spec.cache_dir)?;
    if let Some(registry) = &spec.registry {
        check_registry(registry)?;
    }
    if let Some(promotion) = &spec.promotion {
        promote::validate(promotion)?;
    }
    Ok(())
}

pub(crate) fn check_registry(registry: &RegistrySecrets) -> Result<(), SpecError> {
    VAR.check("secret", &registry.username)?;
    VAR.check("secret", &registry.password)?;
    if let Some(name) = &registry.host {
        HOST.check("registry host", name)?;
    }
    Ok(())
}

/// The characters a kind of name may hold.
pub(crate) struct Charset {
    first: fn(char) -> bool,
    rest: fn(char) -> bool,
    allowed: &'static str,
}

impl Charset {
    pub(crate) fn check(&self, what: &'static str, name: &str) -> Result<(), SpecError> {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(self.first) && chars.all(self.rest);
        if ok {
            Ok(())
        } else {
            Err(SpecError::Name {
                what,
                name: name.to_owned(),
                allowed: self.allowed,
            })
        }
    }
}

/// A path inside the repository that can sit in a `hashFiles('...')` expression.
fn check_path(what: &'static str, path: &str) -> Result<(), SpecError> {
    let inside = !path.is_empty()
        && !path.starts_with('/')
        && !path.split('/').any(|part| part == "..")
        && !path.contains(['\'', '\\', '$', '{', '}', '*'])
        && !path.chars().any(char::is_control);
    if inside {
        Ok(())
    } else {
        Err(SpecError::Path {
            what,
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_single_shell_words() {
        assert_eq!(shell_word("--skip=matrix"), "--skip=matrix");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn directories_are_globbed_in_the_upload_condition() {
        assert_eq!(
            exists(&["a/b.json".into(), "a/logs/".into()]),
            "always() && hashFiles('a/b.json', 'a/logs/**') != ''"
        );
    }
}
