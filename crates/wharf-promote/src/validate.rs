//! Checks a `[[stages]]` list before anything is planned with it.

use std::fmt;

use serde::{Deserialize, Serialize};
use wharf_tag::Tag;

use crate::config::{ApprovalGate, Deploy, Gates, Stage};
use crate::stage_names;

/// The largest `max_regression_percent` taken as meant: above it the gate can hardly fail,
/// which is more likely a typo than a policy.
const MAX_REGRESSION_PERCENT: u32 = 1000;

/// One thing wrong with the stages, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The stage's index in `[[stages]]` and its name; `None` for the list as a whole.
    pub stage: Option<(usize, String)>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stage {
            Some((i, name)) => write!(f, "stages[{i}] ({name}): {}", self.message),
            None => write!(f, "stages: {}", self.message),
        }
    }
}

/// Every problem in `stages`: names unique; `from` names another stage, with no cycle and
/// at least one first stage; locations `docker://…` or `oci:…`; valid tags, distinct across
/// stages that share a location; approval counts possible; signed approvals with an
/// allowed-signers file; a sane benchmark limit; a smoke URL over HTTP.
pub fn validate(stages: &[Stage]) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let mut report = |message: String| {
            problems.push(Problem {
                stage: Some((i, stage.name.clone())),
                message,
            })
        };
        if let Some(j) = stages[..i].iter().position(|s| s.name == stage.name) {
            report(format!(
                "the name {} is taken by stages[{j}] too (give each stage its own name)",
                stage.name
            ));
        }
        check_from(stages, i, &mut report);
        check_location(&stage.location, &mut report);
        check_tags(stages, i, &mut report);
        check_gates(&stage.gates, &mut report);
        if let Some(deploy) = &stage.deploy {
            check_deploy(deploy, &mut report);
        }
    }
    if !stages.is_empty() && stages.iter().all(|s| s.from.is_some()) {
        problems.push(Problem {
            stage: None,
            message: "every stage has `from`, so no digest can ever enter (leave `from` out of the first stage: it takes the digests CI verified)".to_owned(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_from(stages: &[Stage], i: usize, report: &mut impl FnMut(String)) {
    let stage = &stages[i];
    let Some(from) = &stage.from else { return };
    if from == &stage.name {
        return report(format!(
            "from = {from:?} names the stage itself (name the stage it promotes from, or leave `from` out for a first stage)"
        ));
    }
    if !stages.iter().any(|s| &s.name == from) {
        return report(format!(
            "from = {from:?} names no stage (stages: {})",
            stage_names(stages)
        ));
    }
    // Follow `from` links; a chain longer than the list has a cycle. Reported by the
    // cycle's first stage in the list only, so one cycle is one problem.
    let mut chain = vec![i];
    let mut at = i;
    while let Some(next) = stages[at]
        .from
        .as_ref()
        .and_then(|f| stages.iter().position(|s| &s.name == f))
    {
        if let Some(start) = chain.iter().position(|&c| c == next) {
            let cycle = &chain[start..];
            if start == 0 && cycle.iter().all(|&c| c >= i) {
                let mut names: Vec<&str> = cycle.iter().map(|&c| stages[c].name.as_str()).collect();
                names.push(&stage.name);
                report(format!(
                    "`from` makes a cycle {} (a chain of stages must start at a stage without `from`)",
                    names.join(" <- ")
                ));
            }
            return;
        }
        if chain.len() > stages.len() {
            return;
        }
        chain.push(next);
        at = next;
    }
}

fn check_location(location: &str, report: &mut impl FnMut(String)) {
    let rest = location
        .strip_prefix("docker://")
        .or_else(|| location.strip_prefix("oci:"));
    if rest.is_none_or(str::is_empty) {
        report(format!(
            "location {location:?} is neither a registry repository nor an OCI layout (write docker://HOST/REPO or oci:DIR)"
        ));
    }
}

/// The tags a stage moves, as written (its name when `tags` is empty).
fn written_tags(stage: &Stage) -> Vec<&str> {
    if stage.tags.is_empty() {
        vec![stage.name.as_str()]
    } else {
        stage.tags.iter().map(String::as_str).collect()
    }
}

fn check_tags(stages: &[Stage], i: usize, report: &mut impl FnMut(String)) {
    let stage = &stages[i];
    for tag in written_tags(stage) {
        if let Err(e) = Tag::parse(tag) {
            let fix = if stage.tags.is_empty() {
                "the stage's name is its tag: rename the stage or give it `tags`"
            } else {
                "fix the tag"
            };
            report(format!("{e} ({fix})"));
        }
    }
    if stage.date_tag
        && let Err(e) = Tag::parse(&format!("{}-2000-01-01", stage.name))
    {
        report(format!(
            "date_tag makes an invalid tag {}-YYYY-MM-DD: {e} (rename the stage or turn date_tag off)",
            stage.name
        ));
    }
    for (j, other) in stages[..i].iter().enumerate() {
        if other.location != stage.location {
            continue;
        }
        for tag in written_tags(stage) {
            if written_tags(other).contains(&tag) {
                report(format!(
                    "tag {tag} is also moved by stages[{j}] ({}), which shares the location {} (give one of them another tag)",
                    other.name, stage.location
                ));
            }
        }
        if stage.semver_tags && other.semver_tags {
            report(format!(
                "semver_tags is also on in stages[{j}] ({}), which shares the location {} (keep version tags on one stage per location)",
                other.name, stage.location
            ));
        }
    }
}

fn check_gates(gates: &Gates, report: &mut impl FnMut(String)) {
    if let Some(provenance) = &gates.provenance
        && provenance.keys.is_empty()
    {
        report("provenance keys = [] accepts no provenance (list the public keys that may sign it, e.g. keys = [\"pipelines/cosign.pub\"])".to_owned());
    }
    if let Some(signature) = &gates.signature
        && signature.keys.is_empty()
    {
        report("signature keys = [] accepts no signature (list the public keys that may sign, e.g. keys = [\"pipelines/cosign.pub\"])".to_owned());
    }
    if let Some(approvals) = &gates.approvals {
        check_approvals(approvals, report);
    }
    if let Some(bench) = &gates.benchmark
        && bench.max_regression_percent > MAX_REGRESSION_PERCENT
    {
        report(format!(
            "benchmark max_regression_percent = {} lets a benchmark get {}x slower (give a percentage, e.g. 10, at most {MAX_REGRESSION_PERCENT})",
            bench.max_regression_percent,
            1 + bench.max_regression_percent / 100
        ));
    }
    if let Some(smoke) = &gates.smoke {
        if !(smoke.url.starts_with("http://") || smoke.url.starts_with("https://")) {
            report(format!(
                "smoke url {:?} is not an HTTP URL (write http://HOST/PATH or https://HOST/PATH)",
                smoke.url
            ));
        }
        if smoke.within_secs == 0 {
            report("smoke within_secs = 0 leaves no time for an attempt (give the seconds all attempts may take, e.g. 30)".to_owned());
        }
    }
}

fn check_approvals(approvals: &ApprovalGate, report: &mut impl FnMut(String)) {
    if approvals.required == 0 {
        report("approvals required = 0 asks for no approval (require at least 1, or remove the approvals gate)".to_owned());
    }
    let m = approvals.approvers.len();
    if m > 0 && approvals.required as usize > m {
        report(format!(
            "approvals required = {} but only {m} approvers are allowed (lower required or add approvers)",
            approvals.required
        ));
    }
    if approvals.signed && approvals.allowed_signers.is_none() {
        report("approvals signed = true needs allowed_signers, the ssh-keygen allowed-signers file the signatures are checked against (add allowed_signers = \"FILE\")".to_owned());
    }
}

fn check_deploy(deploy: &Deploy, report: &mut impl FnMut(String)) {
    if let Some(docker) = &deploy.docker {
        if docker.listen.parse::<core::net::SocketAddr>().is_err() {
            report(format!(
                "deploy.docker.listen = {:?} is not IP:PORT (e.g. \"0.0.0.0:8080\"; host names are not resolved)",
                docker.listen
            ));
        }
        if docker.listen_env.is_empty() || docker.listen_env.contains('=') {
            report(format!(
                "deploy.docker.listen_env = {:?} is not a variable name (e.g. \"LISTEN_ADDR\")",
                docker.listen_env
            ));
        }
        for (what, result) in [
            ("memory", docker.memory_bytes().map(|_| ())),
            ("cpus", docker.nano_cpus().map(|_| ())),
        ] {
            if let Err(message) = result {
                report(format!("deploy.docker.{what}: {message}"));
            }
        }
        if !["no", "always", "unless-stopped", "on-failure"].contains(&docker.restart.as_str()) {
            report(format!(
                "deploy.docker.restart = {:?}: expected no, always, unless-stopped or on-failure",
                docker.restart
            ));
        }
        if let Some(bad) = docker.env.iter().find(|e| !e.contains('=')) {
            report(format!("deploy.docker.env: {bad:?} is not NAME=VALUE"));
        }
        let health = &docker.health;
        if !health.path.starts_with('/') {
            report(format!(
                "deploy.docker.health.path = {:?} must start with / (e.g. \"/health\")",
                health.path
            ));
        }
        if health.interval_ms == 0 || health.timeout_ms == 0 {
            report("deploy.docker.health: interval_ms and timeout_ms must be above 0".to_owned());
        }
    }
    for check in &deploy.smoke {
        if !check.path.starts_with('/') {
            report(format!(
                "deploy.smoke: path {:?} must start with / (it is joined to the stage's URL)",
                check.path
            ));
        }
    }
    if let Some(url) = &deploy.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        report(format!(
            "deploy.url = {url:?} must be an http:// or https:// URL"
        ));
    }
    if !deploy.smoke.is_empty() && deploy.url.is_none() && deploy.docker.is_none() {
        report(
            "deploy.smoke needs deploy.url (where the stage answers) or deploy.docker".to_owned(),
        );
    }
}
