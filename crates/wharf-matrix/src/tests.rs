use std::collections::BTreeMap;

use super::*;

const HOST: &str = "x86_64-unknown-linux-gnu";

fn package(name: &str, features: &[(&str, &[&str])], rust_version: Option<&str>) -> PackageInfo {
    PackageInfo {
        name: name.into(),
        features: features
            .iter()
            .map(|(f, v)| (f.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect::<BTreeMap<_, _>>(),
        rust_version: rust_version.map(String::from),
    }
}

fn config(toml_text: &str) -> Config {
    #[derive(serde::Deserialize)]
    struct File {
        matrix: Config,
    }
    toml::from_str::<File>(toml_text)
        .unwrap_or_else(|e| panic!("{e}"))
        .matrix
}

fn ids(plan: &Plan) -> Vec<String> {
    plan.cells.iter().map(Cell::id).collect()
}

/// The feature labels of the cells of one package, in plan order.
fn labels(plan: &Plan) -> Vec<String> {
    plan.cells.iter().map(|c| c.feature_set().label()).collect()
}

fn error(config: &Config, packages: &[PackageInfo]) -> String {
    plan(config, packages, HOST).unwrap_err().to_string()
}

#[test]
fn default_config_is_one_cell_per_package_sorted_by_name() {
    let packages = [
        package("wharf-tag", &[], None),
        package("wharf-oci", &[], None),
    ];
    let plan = plan(&Config::default(), &packages, HOST).unwrap();
    assert_eq!(
        ids(&plan),
        [
            "wharf-oci/default/stable/x86_64-unknown-linux-gnu/dev",
            "wharf-tag/default/stable/x86_64-unknown-linux-gnu/dev",
        ]
    );
    assert_eq!(
        plan.cells[0].argv().join(" "),
        "cargo +stable test -p wharf-oci --profile dev"
    );
}

#[test]
fn argv_reproduces_the_cell() {
    let cell = Cell {
        package: "wharf-tag".into(),
        features: vec!["a".into(), "b".into()],
        no_default_features: true,
        toolchain: "nightly".into(),
        target: "aarch64-unknown-linux-gnu".into(),
        target_flag: true,
        profile: "release".into(),
        command: Command::Clippy,
    };
    assert_eq!(
        cell.argv().join(" "),
        "cargo +nightly clippy -p wharf-tag --no-default-features --features a,b \
         --target aarch64-unknown-linux-gnu --profile release"
    );
    assert_eq!(
        cell.id(),
        "wharf-tag/a+b/nightly/aarch64-unknown-linux-gnu/release"
    );
}

/// The example of the crate docs, checked set by set.
#[test]
fn powerset_with_depth_groups_exclusive_skip_and_always() {
    let packages = [package(
        "p",
        &[
            ("a", &[]),
            ("b", &[]),
            ("c", &[]),
            ("x", &[]),
            ("y", &[]),
            ("nightly-only", &[]),
            ("std", &[]),
        ],
        None,
    )];
    let config = config(
        r#"
        [matrix]
        [[matrix.packages]]
        name = "p"
        features = { mode = "powerset", depth = 2, groups = [["a", "b"]], exclusive = [["x", "y"]], skip = ["nightly-only"], always = ["std"] }
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(
        labels(&plan),
        [
            "std",
            "a+b+std",
            "c+std",
            "std+x",
            "std+y",
            "a+b+c+std",
            "a+b+std+x",
            "a+b+std+y",
            "c+std+x",
            "c+std+y",
        ]
    );
    assert!(plan.cells.iter().all(|c| c.no_default_features));
}

#[test]
fn each_is_no_features_each_feature_and_default() {
    let packages = [package(
        "p",
        &[("default", &["a"]), ("a", &[]), ("b", &[])],
        None,
    )];
    let config = config(
        r#"
        [matrix]
        [[matrix.packages]]
        name = "p"
        features = { mode = "each" }
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(labels(&plan), ["no-default", "a", "b", "default"]);
    assert_eq!(
        plan.cells[3].argv().join(" "),
        "cargo +stable test -p p --profile dev"
    );
}

#[test]
fn sets_are_exact_and_default_turns_default_features_on() {
    let packages = [package("p", &[("a", &[]), ("b", &[]), ("std", &[])], None)];
    let config = config(
        r#"
        [matrix]
        [[matrix.packages]]
        name = "p"
        features = { mode = "sets", sets = [[], ["default"], ["b", "a"], ["a", "b"]], always = ["std"] }
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    // ["b", "a"] and ["a", "b"] are one set.
    assert_eq!(labels(&plan), ["std", "default+std", "a+b+std"]);
}

/// `dep:` entries are dependencies; `serde` is the implicit feature of an optional
/// dependency; `derive` turns it on through `serde/derive`; `json` only weakly (`serde?/std`).
#[test]
fn optional_dependencies_follow_cargo() {
    let features: &[(&str, &[&str])] = &[
        ("serde", &["dep:serde"]),
        ("derive", &["serde/derive"]),
        ("json", &["dep:serde_json", "serde?/std"]),
    ];
    let packages = [package("p", features, None)];
    let plan_for = |mode: &str| {
        let config = config(&format!(
            "[matrix]\n[[matrix.packages]]\nname = \"p\"\nfeatures = {mode}\n"
        ));
        labels(&plan(&config, &packages, HOST).unwrap())
    };
    // {derive, serde} is skipped: derive already turns serde on. {json, serde} is not.
    assert_eq!(
        plan_for(r#"{ mode = "powerset" }"#),
        [
            "no-default",
            "derive",
            "json",
            "serde",
            "derive+json",
            "json+serde"
        ]
    );
    assert_eq!(
        plan_for(r#"{ mode = "powerset", optional_deps = false }"#),
        ["no-default", "derive", "json", "derive+json"]
    );
}

#[test]
fn a_feature_that_enables_an_exclusive_one_counts_as_it() {
    let packages = [package(
        "p",
        &[("tokio", &[]), ("async-std", &[]), ("rt", &["tokio"])],
        None,
    )];
    let config = config(
        r#"
        [matrix]
        [[matrix.packages]]
        name = "p"
        features = { mode = "powerset", exclusive = [["tokio", "async-std"]] }
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(
        labels(&plan),
        ["no-default", "async-std", "rt", "tokio"],
        "rt+async-std holds two runtimes; rt+tokio is just rt"
    );
}

#[test]
fn always_on_features_make_what_they_enable_redundant() {
    let packages = [package(
        "p",
        &[("std", &["alloc"]), ("alloc", &[]), ("x", &[])],
        None,
    )];
    let config = config(
        r#"
        [matrix]
        [[matrix.packages]]
        name = "p"
        features = { mode = "each", always = ["std"] }
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(labels(&plan), ["std", "std+x"]);
}

#[test]
fn msrv_is_the_rust_version_with_a_patch() {
    let packages = [
        package("a", &[], Some("1.85")),
        package("b", &[], Some("1.95.1")),
    ];
    let config = config("[matrix]\ntoolchains = [\"msrv\", \"1.85.0\"]\n");
    let plan = plan(&config, &packages, HOST).unwrap();
    // a's msrv and the explicit 1.85.0 are the same cell.
    assert_eq!(
        ids(&plan),
        [
            "a/default/1.85.0/x86_64-unknown-linux-gnu/dev",
            "b/default/1.95.1/x86_64-unknown-linux-gnu/dev",
            "b/default/1.85.0/x86_64-unknown-linux-gnu/dev",
        ]
    );
}

#[test]
fn msrv_without_rust_version_names_the_package_unless_excluded() {
    let packages = [package("a", &[], Some("1.85")), package("b", &[], None)];
    let msrv = config("[matrix]\ntoolchains = [\"stable\", \"msrv\"]\n");
    let message = error(&msrv, &packages);
    assert!(
        message.contains("package \"b\" has no rust-version"),
        "{message}"
    );

    let excluded = config(
        r#"
        [matrix]
        toolchains = ["stable", "msrv"]
        [[matrix.exclude]]
        package = "b"
        toolchain = "msrv"
        "#,
    );
    let plan = plan(&excluded, &packages, HOST).unwrap();
    assert_eq!(plan.cells.len(), 3);

    let bad = [package("c", &[], Some("1.x"))];
    assert!(error(&msrv, &bad).contains("rust-version \"1.x\""));
}

#[test]
fn unknown_names_are_errors_that_list_the_known_ones() {
    let packages = [
        package("wharf-tag", &[("a", &[]), ("b", &[])], None),
        package("wharf-oci", &[], None),
    ];
    let cases = [
        (
            "[[matrix.packages]]\nname = \"wharf-tga\"",
            "unknown package \"wharf-tga\" in [matrix] packages (known: wharf-oci, wharf-tag)",
        ),
        (
            "[[matrix.packages]]\nname = \"wharf-tag\"\nfeatures = { mode = \"powerset\", skip = [\"c\"] }",
            "unknown feature \"c\" of package \"wharf-tag\" in [matrix] (known: a, b)",
        ),
        (
            "[[matrix.packages]]\nname = \"wharf-oci\"\nfeatures = { mode = \"sets\", sets = [[\"a\"]] }",
            "unknown feature \"a\" of package \"wharf-oci\" in [matrix] (it has no features)",
        ),
        (
            "[[matrix.include]]\npackage = \"nope\"",
            "unknown package \"nope\" in [matrix] include",
        ),
        (
            "[[matrix.exclude]]\nfeatures = [\"zzz\"]",
            "unknown feature \"zzz\" in [[matrix.exclude]]",
        ),
        (
            "[[matrix.exclude]]\n",
            "[[matrix.exclude]] entry 1 gives no keys",
        ),
        ("toolchains = []", "[matrix] toolchains is empty"),
        (
            "[[matrix.packages]]\nname = \"wharf-tag\"\nfeatures = { mode = \"powerset\", groups = [[\"a\", \"b\"]], skip = [\"a\"] }",
            "feature \"a\" of package \"wharf-tag\" is in both a group and skip",
        ),
        (
            "[[matrix.packages]]\nname = \"wharf-tag\"\nfeatures = { mode = \"powerset\", groups = [[\"a\", \"b\"]], exclusive = [[\"a\", \"b\"]] }",
            "features [\"a\", \"b\"] of package \"wharf-tag\" are mutually exclusive, but a group turns them on together",
        ),
    ];
    for (section, expected) in cases {
        let config = config(&format!("[matrix]\n{section}\n"));
        let message = error(&config, &packages);
        assert!(message.contains(expected), "{section}\n  got: {message}");
    }
}

#[test]
fn a_powerset_without_depth_is_bounded() {
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
    let features: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
    let packages = [package("big", &features, None)];
    let unbounded = config(
        "[[matrix.packages]]\nname = \"big\"\nfeatures = { mode = \"powerset\" }\n[matrix]\n",
    );
    let message = error(&unbounded, &packages);
    assert!(
        message.contains("package \"big\" would have 1048576 feature sets"),
        "{message}"
    );
    let bounded = config(
        "[[matrix.packages]]\nname = \"big\"\nfeatures = { mode = \"powerset\", depth = 2 }\n[matrix]\n",
    );
    assert_eq!(
        plan(&bounded, &packages, HOST).unwrap().cells.len(),
        1 + 20 + 190
    );
}

#[test]
fn exclude_then_include() {
    let packages = [package("p", &[("simd", &[]), ("std", &[])], Some("1.85"))];
    let config = config(
        r#"
        [matrix]
        toolchains = ["stable", "nightly"]
        targets = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
        [[matrix.packages]]
        name = "p"
        features = { mode = "each" }
        [[matrix.exclude]]
        features = ["simd"]
        toolchain = "stable"
        [[matrix.exclude]]
        target = "aarch64-unknown-linux-gnu"
        toolchain = "nightly"
        [[matrix.include]]
        package = "p"
        toolchain = "msrv"
        [[matrix.include]]
        package = "p"
        features = ["std"]
        "#,
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(
        ids(&plan),
        [
            "p/no-default/stable/x86_64-unknown-linux-gnu/dev",
            "p/std/stable/x86_64-unknown-linux-gnu/dev",
            "p/no-default/stable/aarch64-unknown-linux-gnu/dev",
            "p/std/stable/aarch64-unknown-linux-gnu/dev",
            "p/no-default/nightly/x86_64-unknown-linux-gnu/dev",
            "p/simd/nightly/x86_64-unknown-linux-gnu/dev",
            "p/std/nightly/x86_64-unknown-linux-gnu/dev",
            // Includes; the second duplicates a generated cell and is dropped.
            "p/default/1.85.0/x86_64-unknown-linux-gnu/dev",
        ]
    );
}

#[test]
fn config_rejects_keys_of_another_mode_and_unknown_keys() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct File {
        matrix: Config,
    }
    let bad = [
        (
            "[matrix]\ntoolchain = [\"stable\"]",
            "unknown field `toolchain`",
        ),
        (
            "[[matrix.packages]]\nname = \"p\"\nfeatures = { mode = \"each\", depth = 2 }",
            "unknown field `depth`",
        ),
        (
            "[[matrix.packages]]\nname = \"p\"\nfeatures = { mode = \"everything\" }",
            "unknown variant `everything`",
        ),
        ("[matrix]\ncommand = \"bench\"", "unknown variant `bench`"),
        (
            "[[matrix.packages]]\nname = \"p\"\nfeatures = { mode = \"sets\" }",
            "missing field `sets`",
        ),
    ];
    for (text, expected) in bad {
        let message = toml::from_str::<File>(text).unwrap_err().to_string();
        assert!(message.contains(expected), "{text}\n  got: {message}");
    }
    // Every key has a default.
    assert_eq!(config("[matrix]\n"), Config::default());
}

#[test]
fn dry_run_listing_and_json() {
    let packages = [package("wharf-tag", &[("a", &[])], None)];
    let config = config(
        "[matrix]\ncommand = \"check\"\n[[matrix.packages]]\nname = \"wharf-tag\"\nfeatures = { mode = \"each\" }\n",
    );
    let plan = plan(&config, &packages, HOST).unwrap();
    assert_eq!(
        plan.to_string(),
        "2 cells
  wharf-tag/no-default/stable/x86_64-unknown-linux-gnu/dev
      cargo +stable check -p wharf-tag --no-default-features --profile dev
  wharf-tag/a/stable/x86_64-unknown-linux-gnu/dev
      cargo +stable check -p wharf-tag --no-default-features --features a --profile dev
"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["cells"][1],
        serde_json::json!({
            "id": "wharf-tag/a/stable/x86_64-unknown-linux-gnu/dev",
            "package": "wharf-tag",
            "features": ["a"],
            "no_default_features": true,
            "toolchain": "stable",
            "target": "x86_64-unknown-linux-gnu",
            "target_flag": false,
            "profile": "dev",
            "command": "check",
            "argv": ["cargo", "+stable", "check", "-p", "wharf-tag", "--no-default-features",
                     "--features", "a", "--profile", "dev"],
        })
    );
}

#[test]
fn shard_parse() {
    let ok = [("2/5", (2, 5)), ("1/1", (1, 1)), (" 3 / 4 ", (3, 4))];
    for (input, (k, n)) in ok {
        let shard = Shard::parse(input).unwrap();
        assert_eq!((shard.index(), shard.count()), (k, n), "{input}");
    }
    assert_eq!(Shard::parse("2/5").unwrap().to_string(), "2/5");
    let bad = [
        ("0/5", "invalid shard 0/5: shards are numbered from 1 to 5"),
        ("6/5", "invalid shard 6/5: shards are numbered from 1 to 5"),
        ("1/0", "invalid shard 1/0: N must be at least 1"),
        ("junk", "invalid shard \"junk\": expected K/N"),
        ("1/", "invalid shard \"1/\": expected K/N"),
        ("+1/2", "invalid shard \"+1/2\": expected K/N"),
        ("1/2/3", "invalid shard \"1/2/3\": expected K/N"),
        ("-1/2", "invalid shard \"-1/2\": expected K/N"),
    ];
    for (input, expected) in bad {
        let message = Shard::parse(input).unwrap_err().to_string();
        assert!(message.contains(expected), "{input}: {message}");
    }
}

#[test]
fn shards_are_contiguous_and_balanced() {
    let sizes: Vec<usize> = (1..=4)
        .map(|k| Shard::new(k, 4).unwrap().range(10).len())
        .collect();
    assert_eq!(sizes, [3, 3, 2, 2]);
    assert_eq!(Shard::new(2, 4).unwrap().range(10), 3..6);
    assert_eq!(Shard::new(3, 3).unwrap().range(0), 0..0);
}

fn plan_of(n: usize) -> Plan {
    let packages: Vec<PackageInfo> = (0..n)
        .map(|i| package(&format!("p{i:03}"), &[], None))
        .collect();
    plan(&Config::default(), &packages, HOST).unwrap()
}

#[test]
fn github_matrix_shape() {
    let matrix = github_matrix(&plan_of(5), 2);
    assert_eq!(
        matrix,
        serde_json::json!({"include": [
            {"shard": "1/2", "name": "matrix 1/2: p000, p001, p002 (3 cells)", "cells": 3,
             "toolchains": "stable", "targets": "x86_64-unknown-linux-gnu"},
            {"shard": "2/2", "name": "matrix 2/2: p003, p004 (2 cells)", "cells": 2,
             "toolchains": "stable", "targets": "x86_64-unknown-linux-gnu"},
        ]})
    );
    let one_line = serde_json::to_string(&matrix).unwrap();
    assert!(!one_line.contains('\n'), "$GITHUB_OUTPUT takes one line");
}

#[test]
fn github_matrix_shard_count() {
    let shards = |cells: usize, requested: usize| {
        github_matrix(&plan_of(cells), requested)["include"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(shards(17, 0), 3, "ceil(17 / 8)");
    assert_eq!(shards(16, 0), 2);
    assert_eq!(shards(3, 10), 3, "no idle runners");
    assert_eq!(shards(0, 0), 1, "GitHub rejects an empty matrix");
    assert_eq!(shards(300, 300), MAX_JOBS);
    assert_eq!(shard_count(100_000, 0), MAX_JOBS);
    let name = &github_matrix(&plan_of(9), 1)["include"][0]["name"];
    assert_eq!(name, "matrix 1/1: p000, p001 and 7 more (9 cells)");
}

#[test]
fn a_powerset_past_u128_says_so() {
    let names: Vec<String> = (0..300).map(|i| format!("f{i:03}")).collect();
    let features: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
    let packages = [package("huge", &features, None)];
    let config = config(
        "[[matrix.packages]]\nname = \"huge\"\nfeatures = { mode = \"powerset\" }\n[matrix]\n",
    );
    assert!(error(&config, &packages).contains("would have more than 2^128 feature sets"));
}

/// The `[matrix]` example in the crate docs parses and plans (with packages that have the
/// features it names).
#[test]
fn crate_docs_example_is_valid() {
    let source = include_str!("lib.rs");
    let lines: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```toml")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    assert!(lines.len() > 10, "found the example");
    let config = config(&lines.join("\n"));
    let features: &[(&str, &[&str])] = &[
        ("a", &[]),
        ("b", &[]),
        ("x", &[]),
        ("y", &[]),
        ("nightly-only", &[]),
        ("std", &[]),
    ];
    let packages = [
        package("wharf-tag", features, Some("1.95")),
        package(
            "wharf-policy",
            &[("default", &["x"]), ("x", &[])],
            Some("1.95"),
        ),
        package("wharf-oci", &[("a", &[]), ("b", &[])], Some("1.95")),
    ];
    let plan = plan(&config, &packages, HOST).unwrap();
    let ids = ids(&plan);
    assert!(ids.contains(&"wharf-tag/a+b+std/1.95.0/x86_64-unknown-linux-gnu/dev".to_string()));
    assert!(ids.contains(&"wharf-policy/x/stable/x86_64-unknown-linux-gnu/dev".to_string()));
    assert!(!ids.contains(&"wharf-policy/x/nightly/x86_64-unknown-linux-gnu/dev".to_string()));
    assert_eq!(
        plan.cells.last().unwrap().id(),
        "wharf-tag/a/beta/x86_64-unknown-linux-gnu/dev"
    );
}
