//! promote.yml: one job per stage, picked by the dispatch's `stage` input (or by a
//! successful release, for the first stages), doing its work in one `cargo xtask` line
//! whose inputs reach the shell as variables.

use std::collections::{BTreeMap, HashSet};

use crate::render::{self, ID, Install, RELEASE_WORKFLOW, RUNNER, WORD};
use crate::yaml::{Map, Node};
use crate::{Deploy, Promotion, SpecError, Stage, Trigger, WorkflowSpec};

/// The commands a dispatch may run; the first is the default and what a release triggers.
const COMMANDS: [&str; 3] = ["promote", "approve", "rollback"];
/// The command of this run: a release's completion runs no dispatch and has no inputs.
const COMMAND: &str = "${{ inputs.command || 'promote' }}";
/// A completed run of the release workflow that succeeded.
const RELEASED: &str =
    "github.event_name == 'workflow_run' && github.event.workflow_run.conclusion == 'success'";

/// The promotion workflow for `promotion`, whose names [`validate`] accepted.
pub(crate) fn workflow(spec: &WorkflowSpec, promotion: &Promotion) -> String {
    let released = spec.pipelines.iter().any(|p| p.trigger == Trigger::Release);
    let mut jobs = Map::new();
    for stage in &promotion.stages {
        jobs = jobs.with(&stage.name, job(spec, promotion, stage, released));
    }
    let about = if released {
        "Moves an image by digest through the stages: promote, approve or roll back one stage by hand (Run workflow), and promote each successful release into the first stage."
    } else {
        "Moves an image by digest through the stages: promote, approve or roll back one stage by hand (Run workflow)."
    };
    let rules = Map::new()
        .comment("The ledger's ref is pushed with the job's token, which actions/checkout leaves in the git config.")
        .with("permissions", Map::new().with("contents", "write"))
        .comment(concat!(
            "One promotion or rollback per stage at a time, to spare the retries. The ledger is the real guard:\n",
            "its ref is pushed without force, so a concurrent writer's push is rejected and it retries on the new tip.\n",
            "Approvals only add an entry and are not queued: GitHub cancels a pending run when a newer one joins\n",
            "its group, which would lose an approval.",
        ))
        .with("concurrency", concurrency(promotion));
    render::document(about, "promote", on(promotion, released), rules, jobs)
}

fn on(promotion: &Promotion, released: bool) -> Map {
    let names: Vec<Node> = promotion
        .stages
        .iter()
        .map(|s| Node::from(s.name.as_str()))
        .collect();
    let digest = "The image digest (sha256:...): needed to approve; to promote, default the one current in the stage it comes from";
    let inputs = Map::new()
        .with(
            "command",
            input("What to do with the stage", "choice", true)
                .with("default", COMMANDS[0])
                .with("options", COMMANDS.map(Node::from).to_vec()),
        )
        .with(
            "stage",
            input("The stage", "choice", true).with("options", names),
        )
        .with("digest", input(digest, "string", false));
    let on = Map::new().with("workflow_dispatch", Map::new().with("inputs", inputs));
    if !released {
        return on;
    }
    on.comment("After a successful release (the job's `if` checks the conclusion).")
        .with(
            "workflow_run",
            Map::new()
                .with("workflows", vec![Node::from(RELEASE_WORKFLOW)])
                .with("types", vec![Node::from("completed")]),
        )
}

/// A `workflow_dispatch` input.
fn input(description: &str, kind: &str, required: bool) -> Map {
    Map::new()
        .with("description", description)
        .with("type", kind)
        .with("required", required)
}

/// Moves of one stage share a group (a release's run moves the first stage); each approval
/// has a group of its own.
fn concurrency(promotion: &Promotion) -> Map {
    let first = &promotion.stages[0].name;
    Map::new()
        .with(
            "group",
            format!(
                "${{{{ inputs.command == 'approve' && format('approve-{{0}}', github.run_id) || format('promote-{{0}}', inputs.stage || '{first}') }}}}"
            ),
        )
        .with("cancel-in-progress", false)
}

fn job(spec: &WorkflowSpec, promotion: &Promotion, stage: &Stage, released: bool) -> Map {
    let chosen = format!("inputs.stage == '{}'", stage.name);
    let condition = if released && stage.from.is_none() {
        format!("({RELEASED}) || {chosen}")
    } else {
        chosen
    };
    let name = match &stage.from {
        Some(from) => format!("{} (from {from})", stage.name),
        None => stage.name.clone(),
    };
    let mut steps = vec![
        render::checkout(
            "Full history: the approvals gate looks up the author of the image's revision commit.",
        ),
        fetch_ledger(promotion),
        render::toolchains(spec, Install::Default),
        work(promotion, stage),
    ];
    if let Some(how) = stage.deploy {
        steps.push(deploy(promotion, stage, how));
    }
    steps.push(status());
    let mut job = Map::new()
        .with("name", name)
        .with("if", condition)
        .with("runs-on", RUNNER);
    if let Some(environment) = &stage.environment {
        job = job
            .comment("GitHub's protection rules (required reviewers, branches) and the environment's secrets apply here.")
            .with("environment", environment.as_str());
    }
    job.comment("Every `cargo xtask` line of the job reads and writes the shared ledger.")
        .with(
            "env",
            Map::new().with("WHARF_LEDGER_REMOTE", promotion.ledger_remote.as_str()),
        )
        .with("steps", steps)
}

/// actions/checkout fetches branches and tags, never a ref such as refs/wharf/ledger.
pub(crate) fn fetch_ledger(promotion: &Promotion) -> Node {
    let refspec = format!("+{0}:{0}", promotion.ledger_ref);
    let line = format!(
        "git fetch {} {} || true",
        render::shell_word(&promotion.ledger_remote),
        render::shell_word(&refspec)
    );
    Node::Commented(
        concat!(
            "actions/checkout fetches branches and tags only, never the ledger's ref. Before the first\n",
            "promotion the ref does not exist, hence `|| true`: cargo xtask fetches it again before\n",
            "every ledger write and fails there, naming the remote, if it cannot.",
        )
        .into(),
        Box::new(
            Map::new()
                .with("name", "Fetch the ledger")
                .with("run", line)
                .into(),
        ),
    )
}

/// The one xtask line; the inputs are variables of its environment, never text of the
/// script, so a digest such as `$(curl ...)` stays a string (script injection).
fn work(promotion: &Promotion, stage: &Stage) -> Node {
    let mut env = BTreeMap::from([
        ("COMMAND".to_owned(), COMMAND.to_owned()),
        ("DIGEST".to_owned(), "${{ inputs.digest }}".to_owned()),
    ]);
    if let Some(registry) = &promotion.registry {
        render::registry_env(registry, &mut env);
    }
    Map::new()
        .with("name", format!("cargo xtask {COMMAND} {}", stage.name))
        .with("env", render::env_map(&env))
        .with(
            "run",
            format!(
                "cargo xtask \"$COMMAND\" {} ${{DIGEST:+--digest \"$DIGEST\"}}",
                stage.name
            ),
        )
        .into()
}

/// Runs the stage's new digest once a promotion or rollback changed it (an approval does
/// not): on a runtime, health and smoke checked and recorded in the ledger; or as
/// manifests committed and pushed for a GitOps tool.
fn deploy(promotion: &Promotion, stage: &Stage, how: Deploy) -> Node {
    let (comment, run) = match how {
        Deploy::Run => (
            "The stage's digest changed: run it on the stage's [stages.deploy] target.",
            Node::from(format!("cargo xtask deploy {}", stage.name)),
        ),
        Deploy::Commit => (
            "The stage's digest changed: commit its Kubernetes overlay, for the GitOps tool to apply.",
            Node::Block(format!(
                "cargo xtask deploy {} --commit\ngit push origin \"HEAD:refs/heads/$GITHUB_REF_NAME\"\n",
                stage.name
            )),
        ),
    };
    let mut step = Map::new()
        .with("name", format!("cargo xtask deploy {}", stage.name))
        .with("if", "(inputs.command || 'promote') != 'approve'");
    // The Docker target pulls the image from the stage's registry.
    if let Some(registry) = &promotion.registry {
        let mut env = BTreeMap::new();
        render::registry_env(registry, &mut env);
        step = step.with("env", render::env_map(&env));
    }
    Node::Commented(comment.into(), Box::new(step.with("run", run).into()))
}

/// Where every stage stands now, in the job's summary; also after a failed gate.
fn status() -> Node {
    let script = concat!(
        "{\n",
        "  echo '### Stages'\n",
        "  echo '```'\n",
        "  cargo xtask status\n",
        "  echo '```'\n",
        "} >> \"$GITHUB_STEP_SUMMARY\"\n",
    );
    Map::new()
        .with("name", "cargo xtask status")
        .with("if", "!cancelled()")
        .with("run", Node::Block(script.into()))
        .into()
}

pub(crate) fn validate(promotion: &Promotion) -> Result<(), SpecError> {
    if promotion.stages.is_empty() {
        return Err(SpecError::NoStage);
    }
    let mut seen = HashSet::new();
    for stage in &promotion.stages {
        ID.check("stage", &stage.name)?;
        if !seen.insert(stage.name.as_str()) {
            return Err(SpecError::DuplicateStage {
                name: stage.name.clone(),
            });
        }
        if let Some(from) = &stage.from {
            ID.check("stage", from)?;
        }
        if let Some(environment) = &stage.environment {
            ID.check("GitHub environment", environment)?;
        }
    }
    WORD.check("ledger remote", &promotion.ledger_remote)?;
    check_ref(&promotion.ledger_ref)?;
    if let Some(registry) = &promotion.registry {
        render::check_registry(registry)?;
    }
    Ok(())
}

/// A ref that needs no quoting and that git accepts: `refs/` and plain components.
fn check_ref(name: &str) -> Result<(), SpecError> {
    let plain = name.strip_prefix("refs/").is_some_and(|rest| {
        rest.split('/').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !part.contains("..")
                && !part.ends_with(".lock")
                && !part.ends_with('.')
        })
    });
    if plain {
        Ok(())
    } else {
        Err(SpecError::LedgerRef {
            name: name.to_owned(),
        })
    }
}
