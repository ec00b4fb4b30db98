//! Planning: the order, the errors, and that a key changes exactly when an input does.

mod common;

use std::path::PathBuf;

use common::{FnStep, facts};
use wharf_flow::{Event, Facts, FileFact, Pipeline, PlanError, plan};

/// The keys of a pipeline whose `build` step reads `src/**/*.rs` and `PROFILE`, and whose
/// `test` step needs `build`.
fn keys(facts: &Facts, build: impl FnOnce(FnStep) -> FnStep) -> (String, String) {
    let pipeline = Pipeline::new("ci")
        .step(build(
            FnStep::new("build")
                .files(&["src/**/*.rs"])
                .env(&["PROFILE"]),
        ))
        .step(FnStep::new("test").needs(&["build"]));
    let plan = plan(&pipeline, facts).expect("plans");
    let key = |i: usize| plan.steps[i].key.clone().expect("a cached step has a key");
    (key(0), key(1))
}

fn base() -> Facts {
    let mut facts = facts(PathBuf::from("/w"));
    facts
        .env
        .insert("PROFILE".to_string(), Some("dev".to_string()));
    facts
}

#[test]
fn keys_are_stable() {
    assert_eq!(keys(&base(), |s| s), keys(&base(), |s| s));
}

#[test]
fn key_changes_with_each_input_and_reaches_dependants() {
    let (build, test) = keys(&base(), |s| s);
    let changed_facts: Vec<(&str, Facts)> = vec![
        ("file content", {
            let mut f = base();
            f.files.get_mut("src/lib.rs").unwrap().sha256 = format!("{:0>64}", "9");
            f
        }),
        ("executable bit", {
            let mut f = base();
            f.files.get_mut("src/lib.rs").unwrap().executable = true;
            f
        }),
        ("new matching file", {
            let mut f = base();
            f.files.insert(
                "src/deep/mod.rs".to_string(),
                FileFact {
                    executable: false,
                    sha256: format!("{:0>64}", "3"),
                },
            );
            f
        }),
        ("env value", {
            let mut f = base();
            f.env
                .insert("PROFILE".to_string(), Some("release".to_string()));
            f
        }),
        ("env empty", {
            let mut f = base();
            f.env.insert("PROFILE".to_string(), Some(String::new()));
            f
        }),
        ("env unset", {
            let mut f = base();
            f.env.insert("PROFILE".to_string(), None);
            f
        }),
        ("toolchain", {
            let mut f = base();
            f.toolchain = "rustc 1.96.0 (test)".to_string();
            f
        }),
    ];
    for (what, facts) in &changed_facts {
        let (b, t) = keys(facts, |s| s);
        assert_ne!(b, build, "{what} changes the key");
        assert_ne!(t, test, "{what} changes a dependant's key (upstream key)");
    }
    type Change = Box<dyn FnOnce(FnStep) -> FnStep>;
    let changed_steps: Vec<(&str, Change)> = vec![
        (
            "argv",
            Box::new(|mut s: FnStep| {
                s.argv.push("--release".to_string());
                s
            }),
        ),
        (
            "version",
            Box::new(|mut s: FnStep| {
                s.version = 2;
                s
            }),
        ),
    ];
    for (what, change) in changed_steps {
        let (b, t) = keys(&base(), change);
        assert_ne!(b, build, "{what} changes the key");
        assert_ne!(t, test, "{what} changes a dependant's key");
    }
    // Unset and empty differ from each other too, not only from a value.
    let mut empty = base();
    empty.env.insert("PROFILE".to_string(), Some(String::new()));
    let mut unset = base();
    unset.env.insert("PROFILE".to_string(), None);
    assert_ne!(keys(&empty, |s| s), keys(&unset, |s| s));
}

#[test]
fn key_ignores_unrelated_files_and_undeclared_env() {
    let before = keys(&base(), |s| s);
    let mut facts = base();
    facts.files.get_mut("README.md").unwrap().sha256 = format!("{:0>64}", "8");
    facts.files.insert(
        "src/notes.txt".to_string(),
        FileFact {
            executable: true,
            sha256: format!("{:0>64}", "7"),
        },
    );
    facts
        .env
        .insert("GITHUB_ACTIONS".to_string(), Some("true".to_string()));
    facts.git = Some(wharf_flow::Git {
        commit: "0".repeat(40),
        dirty: true,
    });
    facts.cpus = 64;
    facts.root = PathBuf::from("/elsewhere");
    assert_eq!(keys(&facts, |s| s), before);
}

#[test]
fn uncached_steps_and_their_dependants_have_no_key() {
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("fmt"))
        .step(FnStep::new("push").uncached())
        .step(FnStep::new("announce").needs(&["push"]))
        .step(FnStep::new("x").needs(&["fmt"]));
    let plan = plan(&pipeline, &base()).unwrap();
    let keys: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.key.is_some()))
        .collect();
    assert_eq!(
        keys,
        [
            ("fmt", true),
            ("push", false),
            ("announce", false),
            ("x", true)
        ]
    );
}

#[test]
fn order_is_topological_and_stable() {
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("push").needs(&["image", "scan"]))
        .step(FnStep::new("scan").needs(&["image"]))
        .step(FnStep::new("fmt"))
        .step(FnStep::new("image").needs(&["fmt"]))
        .step(FnStep::new("clippy"));
    let plan = plan(&pipeline, &base()).unwrap();
    let ids: Vec<_> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["fmt", "image", "scan", "push", "clippy"]);
    let planned = plan.planned_events();
    assert_eq!(planned.len(), 5);
    assert!(matches!(&planned[3], Event::Planned { step, needs, .. }
        if step == "push" && needs == &["image".to_string(), "scan".to_string()]));
}

#[test]
fn plan_serialises_with_keys() {
    let pipeline = Pipeline::new("ci").step(FnStep::new("fmt"));
    let plan = plan(&pipeline, &base()).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["pipeline"], "ci");
    assert_eq!(json["steps"][0]["id"], "fmt");
    assert_eq!(json["steps"][0]["key"].as_str().unwrap().len(), 64);
}

#[test]
fn plan_displays_one_line_per_step() {
    let pipeline = Pipeline::new("ci")
        .step(FnStep::new("fmt"))
        .step(FnStep::new("push").needs(&["fmt"]).uncached());
    let plan = plan(&pipeline, &base()).unwrap();
    let key = &plan.steps[0].key.as_ref().unwrap()[..12];
    assert_eq!(
        plan.to_string(),
        format!(
            "pipeline ci: 2 steps\n  fmt          {key} true\n  push         never cached true (after fmt)\n"
        )
    );
}

fn error(pipeline: Pipeline) -> (PlanError, String) {
    let e = plan(&pipeline, &base()).expect_err("planning fails");
    let message = e.to_string();
    (e, message)
}

#[test]
fn unknown_need_names_step_need_and_known_ids() {
    let (e, message) = error(
        Pipeline::new("ci")
            .step(FnStep::new("fmt"))
            .step(FnStep::new("push").needs(&["imgae"])),
    );
    assert!(matches!(e, PlanError::UnknownNeed { .. }));
    assert_eq!(
        message,
        "step `push` needs `imgae`, which is not a step of pipeline `ci` \
         (known steps: fmt, push; hint: fix the id or add the step)"
    );
}

#[test]
fn cycle_is_named() {
    let (e, message) = error(
        Pipeline::new("ci")
            .step(FnStep::new("fmt"))
            .step(FnStep::new("a").needs(&["fmt", "c"]))
            .step(FnStep::new("b").needs(&["a"]))
            .step(FnStep::new("c").needs(&["b"])),
    );
    assert!(matches!(e, PlanError::Cycle { .. }));
    assert!(message.contains("a -> c -> b -> a"), "{message}");
    let (_, message) = error(Pipeline::new("ci").step(FnStep::new("self").needs(&["self"])));
    assert!(message.contains("self -> self"), "{message}");
}

#[test]
fn duplicate_id_is_named() {
    let (e, message) = error(
        Pipeline::new("ci")
            .step(FnStep::new("fmt"))
            .step(FnStep::new("fmt")),
    );
    assert!(matches!(e, PlanError::DuplicateId { .. }));
    assert_eq!(
        message,
        "pipeline `ci` has two steps with the id `fmt` (hint: ids must be unique)"
    );
}

#[test]
fn bad_glob_names_step_and_glob() {
    let (e, message) = error(Pipeline::new("ci").step(FnStep::new("lint").files(&["src/[a-"])));
    assert!(matches!(e, PlanError::BadGlob { .. }));
    assert!(
        message.starts_with("step `lint` has an invalid input glob `src/[a-`: "),
        "{message}"
    );
}

#[test]
fn env_not_gathered_is_an_error_not_a_silent_key() {
    let (e, message) = error(Pipeline::new("ci").step(FnStep::new("lint").env(&["RUSTFLAGS"])));
    assert!(matches!(e, PlanError::EnvNotGathered { .. }));
    assert!(message.contains("`RUSTFLAGS`"), "{message}");
    let pipeline = Pipeline::new("ci").step(FnStep::new("lint").env(&["RUSTFLAGS", "A"]));
    assert_eq!(pipeline.env_names(), ["A", "RUSTFLAGS"]);
}
