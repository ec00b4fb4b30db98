//! What the tests render: a spec like the one this repository's CLI builds.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use wharf_workflow::*;

/// A realistic spec: this repository's pipelines and `[matrix]` (stable, nightly and the
/// MSRV), the scan's SARIF and reports, registry secrets, and the stages
/// `dev -> staging -> production` with approvals on production. For tests and examples.
pub fn example_spec() -> WorkflowSpec {
    let mut ci = Pipeline::new("ci", Trigger::Change);
    ci.reports = vec![
        Report::Sarif {
            file: "target/wharf/scan/advisories.sarif".into(),
            category: "rustsec".into(),
        },
        Report::Artifact {
            name: "scan".into(),
            paths: vec!["target/wharf/scan/".into()],
        },
    ];
    let mut release = Pipeline::new("release", Trigger::Release);
    release.secrets = vec!["WHARF_SIGNING_KEY".into()];
    WorkflowSpec {
        pipelines: vec![ci, release],
        toolchains: vec!["stable".into(), "nightly".into(), "1.95.0".into()],
        components: vec!["rustfmt".into(), "clippy".into()],
        matrix: Some(Matrix {
            shards: 0,
            reports: vec![
                "target/wharf/matrix/junit.xml".into(),
                "target/wharf/matrix/report.json".into(),
                "target/wharf/matrix/logs/".into(),
            ],
        }),
        cache_dir: "target/wharf/cache".into(),
        registry: Some(registry_secrets()),
        promotion: Some(three_stages()),
    }
}

/// The secrets' names the CLI uses.
pub fn registry_secrets() -> RegistrySecrets {
    RegistrySecrets {
        username: "WHARF_REGISTRY_USERNAME".into(),
        password: "WHARF_REGISTRY_PASSWORD".into(),
        host: None,
    }
}

/// `dev -> staging -> production`, approvals on production, the registry secrets.
pub fn three_stages() -> Promotion {
    let mut promotion = Promotion::new(vec![
        Stage::new("dev", None, false),
        Stage::new("staging", Some("dev"), false).deployed(Deploy::Run),
        Stage::new("production", Some("staging"), true).deployed(Deploy::Commit),
    ]);
    promotion.registry = Some(registry_secrets());
    promotion
}

/// The smallest spec: one pipeline on stable, no matrix, no reports, no registry.
pub fn minimal_spec() -> WorkflowSpec {
    WorkflowSpec {
        pipelines: vec![Pipeline::new("ci", Trigger::Change)],
        toolchains: vec!["stable".into()],
        components: Vec::new(),
        matrix: None,
        cache_dir: "target/wharf/cache".into(),
        registry: None,
        promotion: None,
    }
}

/// The text of the file at `path` in a rendering.
pub fn file<'a>(files: &'a Files, path: &str) -> &'a str {
    files
        .iter()
        .find(|(p, _)| p.to_str() == Some(path))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("no {path} in the rendering"))
}

/// The shell scripts of a rendered workflow: every `run:` value, a literal block's lines
/// without their indentation.
pub fn run_scripts(text: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let key = line.trim_start().trim_start_matches("- ");
        let Some(value) = key.strip_prefix("run:") else {
            continue;
        };
        if value.trim() != "|" {
            scripts.push(value.trim().to_owned());
            continue;
        }
        let own = line.len() - key.len();
        let mut script = String::new();
        while let Some(next) = lines.next_if(|l| l.is_empty() || indent(l) > own) {
            script.push_str(next.trim_start());
            script.push('\n');
        }
        scripts.push(script);
    }
    scripts
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}
