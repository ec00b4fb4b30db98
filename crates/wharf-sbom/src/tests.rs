//! Unit tests on `tests/fixture`, a tiny workspace whose `cargo metadata` and `cargo tree`
//! output are recorded by `tests/fixture/regenerate.sh`. `cargo tree` is the oracle: for
//! each case the SBOM must list exactly the packages it lists.

use std::collections::BTreeSet;

use cargo_metadata::{Metadata, PackageId};
use serde_json::Value;

use super::*;

const METADATA: &str = include_str!("../tests/fixture/metadata.json");
const LOCKFILE: &str = include_str!("../tests/fixture/Cargo.lock");

fn metadata() -> Metadata {
    serde_json::from_str(METADATA).unwrap()
}

fn root(metadata: &Metadata) -> PackageId {
    metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "app")
        .unwrap()
        .id
        .clone()
}

fn sbom_of(metadata: &Metadata, options: &Options) -> Sbom {
    let checksums = checksums_from_lockfile(LOCKFILE).unwrap();
    from_metadata(metadata, &root(metadata), options, &checksums).unwrap()
}

fn sbom(options: &Options) -> Sbom {
    sbom_of(&metadata(), options)
}

fn names(sbom: &Sbom) -> BTreeSet<String> {
    sbom.all_packages()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect()
}

fn tree(case: &str) -> BTreeSet<String> {
    let path = format!(
        "{}/tests/fixture/tree/{case}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn features(all: bool, default: bool, list: &[&str]) -> Features {
    Features {
        all,
        default,
        list: list.iter().map(|s| s.to_string()).collect(),
    }
}

fn linux() -> Option<Target> {
    Some(Target {
        triple: "x86_64-unknown-linux-gnu".into(),
        cfg: Some(
            ["unix", "target_os=\"linux\"", "target_family=\"unix\""]
                .iter()
                .map(|c| c.parse().unwrap())
                .collect(),
        ),
    })
}

#[test]
fn packages_are_what_cargo_tree_lists_for_each_case() {
    let cases = [
        ("default", Features::default(), false, false),
        ("extra", features(false, true, &["extra"]), false, false),
        ("extra", features(false, true, &["app/extra"]), false, false),
        ("all-features", features(true, true, &[]), false, false),
        ("no-default", features(false, false, &[]), false, false),
        ("dev", Features::default(), true, false),
        ("build", Features::default(), false, true),
        ("dev-build", Features::default(), true, true),
    ];
    for (case, features, dev, build) in cases {
        for target in [None, linux()] {
            let options = Options {
                features: features.clone(),
                dev,
                build,
                target,
            };
            assert_eq!(names(&sbom(&options)), tree(case), "case {case}");
        }
    }
}

#[test]
fn features_other_members_turn_on_stay_out() {
    // The resolve has serde (and its derive macro) under liba, because the member `other`
    // asks liba for it; app never does, so a plain walk of the resolve would be wrong.
    let metadata = metadata();
    assert!(metadata.packages.iter().any(|p| p.name.as_str() == "serde"));
    let all = names(&sbom_of(
        &metadata,
        &Options {
            features: features(true, true, &[]),
            dev: true,
            build: true,
            target: None,
        },
    ));
    assert!(!all.iter().any(|p| p.starts_with("serde")), "{all:?}");
}

#[test]
fn dev_and_build_dependencies_only_when_asked() {
    let default = names(&sbom(&Options::default()));
    for p in ["devonly@", "once_cell@", "buildonly@", "cfg-if@"] {
        assert!(
            !default.iter().any(|n| n.starts_with(p)),
            "{p} in {default:?}"
        );
    }
    let dev = names(&sbom(&Options {
        dev: true,
        ..Options::default()
    }));
    // A dev-dependency's own dependencies come along; a dependency's dev-dependencies
    // (liba's bitflags) never do.
    assert!(dev.iter().any(|n| n.starts_with("once_cell@")), "{dev:?}");
    assert!(!dev.iter().any(|n| n.starts_with("bitflags@")), "{dev:?}");
    assert!(!dev.iter().any(|n| n.starts_with("buildonly@")), "{dev:?}");
    let build = names(&sbom(&Options {
        build: true,
        ..Options::default()
    }));
    assert!(build.iter().any(|n| n.starts_with("cfg-if@")), "{build:?}");
    assert!(
        !build.iter().any(|n| n.starts_with("devonly@")),
        "{build:?}"
    );
}

#[test]
fn a_windows_only_dependency_is_dropped_by_triple_and_by_cfg() {
    // The fixture was made with --filter-platform linux, so winapi is not in the resolve. A
    // resolve made without the filter keeps it with `target: cfg(windows)`; simulate that by
    // checking the target test directly on the declarations.
    let metadata = metadata();
    let app = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "app")
        .unwrap();
    let winapi = app
        .dependencies
        .iter()
        .find(|d| d.name == "winapi")
        .unwrap();
    let memchr = app
        .dependencies
        .iter()
        .find(|d| d.name == "memchr")
        .unwrap();
    let walker_for = |target: Option<Target>| Options {
        target,
        ..Options::default()
    };
    let check =
        |options: &Options, dep: &cargo_metadata::Dependency| walk::for_target(options, dep);
    assert!(!check(&walker_for(linux()), winapi));
    assert!(check(&walker_for(linux()), memchr));
    // Without cfg values, cfg(...) dependencies are kept: conservative.
    let triple_only = walker_for(Some(Target {
        triple: "x86_64-unknown-linux-gnu".into(),
        cfg: None,
    }));
    assert!(check(&triple_only, winapi));
    assert!(check(&walker_for(None), winapi));
}

#[test]
fn edges_follow_the_declarations() {
    let sbom = sbom(&Options::default());
    let deps = |name: &str| -> BTreeSet<String> {
        let (_, to) = sbom
            .edges
            .iter()
            .find(|(from, _)| from.name == name)
            .unwrap();
        to.iter().map(|r| r.name.clone()).collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // `renamed` is libb; optc is optional and off; winapi is for windows.
    assert_eq!(deps("app"), set(&["liba", "libb", "memchr", "pm"]));
    assert_eq!(deps("liba"), set(&["itoa"]));
    assert_eq!(deps("pm"), set(&["memchr"]));
    assert_eq!(deps("itoa"), set(&[]));
    // Every package has an entry, and every edge is one the resolve has.
    assert_eq!(sbom.edges.len(), sbom.packages.len() + 1);
    let metadata = metadata();
    let resolve = metadata.resolve.as_ref().unwrap();
    for (from, tos) in &sbom.edges {
        let node = resolve
            .nodes
            .iter()
            .find(|n| metadata[&n.id].name.as_str() == from.name)
            .unwrap();
        for to in tos {
            assert!(
                node.deps
                    .iter()
                    .any(|d| metadata[&d.pkg].name.as_str() == to.name),
                "{from} -> {to} is not in the resolve"
            );
        }
    }
}

#[test]
fn packages_are_sorted_and_carry_lockfile_checksums() {
    let sbom = sbom(&Options::default());
    let ids: Vec<PackageRef> = sbom.packages.iter().map(Package::id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let lock: toml::Value = toml::from_str(LOCKFILE).unwrap();
    for p in &sbom.packages {
        let locked = lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"].as_str() == Some(&p.name))
            .unwrap();
        let expected = locked.get("checksum").and_then(|c| c.as_str());
        assert_eq!(p.checksum.as_deref(), expected, "{}", p.name);
        assert_eq!(
            p.source == Source::CratesIo,
            expected.is_some(),
            "{}",
            p.name
        );
    }
    assert_eq!(sbom.subject.name, "app");
    assert_eq!(sbom.subject.source, Source::Path);
}

#[test]
fn license_normalization() {
    let cases = [
        (
            Some("MIT/Apache-2.0"),
            None,
            License::Spdx("MIT OR Apache-2.0".into()),
        ),
        (
            Some("MIT OR Apache-2.0"),
            None,
            License::Spdx("MIT OR Apache-2.0".into()),
        ),
        (
            Some("Apache-2.0/ISC/MIT"),
            None,
            License::Spdx("Apache-2.0 OR ISC OR MIT".into()),
        ),
        (
            Some("Apache-2.0 WITH LLVM-exception"),
            None,
            License::Spdx("Apache-2.0 WITH LLVM-exception".into()),
        ),
        (Some("GPL-2.0"), None, License::Spdx("GPL-2.0-only".into())),
        (
            Some("(MIT OR Apache-2.0) AND Unicode-3.0"),
            None,
            License::Spdx("(MIT OR Apache-2.0) AND Unicode-3.0".into()),
        ),
        (
            Some("Some Custom License"),
            None,
            License::Unrecognized("Some Custom License".into()),
        ),
        (
            Some("MIT AND ("),
            None,
            License::Unrecognized("MIT AND (".into()),
        ),
        (
            Some("LicenseRef-mine"),
            None,
            License::Unrecognized("LicenseRef-mine".into()),
        ),
        (
            None,
            Some("LICENSE.txt"),
            License::File("LICENSE.txt".into()),
        ),
        (Some("  "), Some("COPYING"), License::File("COPYING".into())),
        (Some("MIT"), Some("COPYING"), License::Spdx("MIT".into())),
        (None, None, License::None),
    ];
    for (license, file, expected) in cases {
        assert_eq!(
            License::from_cargo(license, file),
            expected,
            "{license:?} {file:?}"
        );
    }
}

fn meta() -> Meta {
    Meta::new(1_700_000_000).unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn licenses_in_the_documents_are_never_invalid() {
    let sbom = sbom(&Options {
        features: features(false, true, &["extra"]),
        ..Options::default()
    });
    let spdx = json(&spdx_json(&sbom, &meta()));
    let declared = |name: &str| {
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["licenseDeclared"]
            .clone()
    };
    assert_eq!(declared("app"), "MIT OR Apache-2.0");
    assert_eq!(declared("optc"), "NOASSERTION"); // "Some Custom License"
    assert_eq!(declared("libb"), "NOASSERTION"); // license-file only
    let cdx = json(&cyclonedx_json(&sbom, &meta()));
    let licenses = |name: &str| {
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["licenses"]
            .clone()
    };
    assert_eq!(
        licenses("optc"),
        serde_json::json!([{"license": {"name": "Some Custom License"}}])
    );
    assert_eq!(
        licenses("liba"),
        serde_json::json!([{"expression": "Apache-2.0 WITH LLVM-exception"}])
    );
    assert_eq!(
        cdx["metadata"]["component"]["licenses"],
        serde_json::json!([{"expression": "MIT OR Apache-2.0"}])
    );
}

#[test]
fn same_input_same_bytes_in_any_input_order() {
    let options = Options {
        dev: true,
        build: true,
        ..Options::default()
    };
    let first = sbom(&options);
    let cdx = cyclonedx_json(&first, &meta());
    let spdx = spdx_json(&first, &meta());
    assert_eq!(cdx, cyclonedx_json(&sbom(&options), &meta()));
    assert_eq!(spdx, spdx_json(&sbom(&options), &meta()));
    // Every list cargo gave, reversed.
    let mut shuffled = metadata();
    shuffled.packages.reverse();
    for p in &mut shuffled.packages {
        p.dependencies.reverse();
    }
    let resolve = shuffled.resolve.as_mut().unwrap();
    resolve.nodes.reverse();
    for node in &mut resolve.nodes {
        node.deps.reverse();
        node.dependencies.reverse();
    }
    let other = sbom_of(&shuffled, &options);
    assert_eq!(other, first);
    assert_eq!(cyclonedx_json(&other, &meta()), cdx);
    assert_eq!(spdx_json(&other, &meta()), spdx);
}

#[test]
fn timestamps_come_from_the_given_epoch() {
    let sbom = sbom(&Options::default());
    // `date -u -d @1700000000` says Tue Nov 14 22:13:20 UTC 2023.
    let cdx = json(&cyclonedx_json(&sbom, &meta()));
    assert_eq!(cdx["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let spdx = json(&spdx_json(&sbom, &meta()));
    assert_eq!(spdx["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        json(&spdx_json(&sbom, &Meta::new(0).unwrap()))["creationInfo"]["created"],
        "1970-01-01T00:00:00Z"
    );
    // Another time is another document: serial number and namespace change with it.
    let later = Meta::new(1_700_000_001).unwrap();
    assert_ne!(
        json(&cyclonedx_json(&sbom, &later))["serialNumber"],
        cdx["serialNumber"]
    );
    assert_ne!(
        json(&spdx_json(&sbom, &later))["documentNamespace"],
        spdx["documentNamespace"]
    );
    for bad in [-1, 253_402_300_800] {
        let err = Meta::new(bad).unwrap_err().to_string();
        assert!(err.contains(&bad.to_string()), "{err}");
    }
}

#[test]
fn serial_number_and_namespace_are_content_uuids() {
    let sbom = sbom(&Options::default());
    let cdx = json(&cyclonedx_json(&sbom, &meta()));
    let serial = cdx["serialNumber"].as_str().unwrap();
    let uuid = serial.strip_prefix("urn:uuid:").unwrap();
    let groups: Vec<&str> = uuid.split('-').collect();
    assert_eq!(
        groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(groups[2].starts_with('8'), "version 8: {uuid}");
    assert!("89ab".contains(&groups[3][..1]), "RFC variant: {uuid}");
    let spdx = json(&spdx_json(&sbom, &meta()));
    let namespace = spdx["documentNamespace"].as_str().unwrap();
    assert!(
        namespace.starts_with("https://spdx.org/spdxdocs/app-1.2.3-"),
        "{namespace}"
    );
}

#[test]
fn documents_reference_only_their_own_ids() {
    let sbom = sbom(&Options {
        dev: true,
        build: true,
        ..Options::default()
    });
    let cdx = json(&cyclonedx_json(&sbom, &meta()));
    let mut refs: BTreeSet<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    refs.insert(cdx["metadata"]["component"]["bom-ref"].as_str().unwrap());
    assert_eq!(refs.len(), sbom.packages.len() + 1);
    let deps = cdx["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), refs.len());
    for d in deps {
        assert!(refs.contains(d["ref"].as_str().unwrap()));
        for on in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(on.as_str().unwrap()), "{on}");
        }
    }
    let spdx = json(&spdx_json(&sbom, &meta()));
    let ids: BTreeSet<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), sbom.packages.len() + 1);
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{id}"
        );
    }
    let relationships = spdx["relationships"].as_array().unwrap();
    let edges: usize = sbom.edges.values().map(BTreeSet::len).sum();
    assert_eq!(relationships.len(), edges + 1);
    assert_eq!(relationships[0]["relationshipType"], "DESCRIBES");
    for r in relationships {
        for end in ["spdxElementId", "relatedSpdxElement"] {
            let id = r[end].as_str().unwrap();
            assert!(id == "SPDXRef-DOCUMENT" || ids.contains(id), "{id}");
        }
    }
}

#[test]
fn duplicate_ids_get_a_suffix() {
    let mut sbom = sbom(&Options::default());
    let mut twin = sbom.packages[0].clone();
    twin.source = Source::Path;
    sbom.packages.push(twin);
    sbom.packages.sort_by_key(Package::id);
    let ids = unique_ids(&sbom, Package::purl, "#");
    let values: BTreeSet<&String> = ids.values().collect();
    assert_eq!(values.len(), sbom.packages.len() + 1);
}

#[test]
fn sources_and_purls() {
    let source = |repr: &str| {
        Source::from_cargo(Some(&cargo_metadata::Source {
            repr: repr.to_string(),
        }))
    };
    assert_eq!(
        source("registry+https://github.com/rust-lang/crates.io-index"),
        Source::CratesIo
    );
    assert_eq!(source("sparse+https://index.crates.io/"), Source::CratesIo);
    assert_eq!(
        source("sparse+https://my.registry/index/"),
        Source::Registry {
            index: "https://my.registry/index/".into()
        }
    );
    let git = source("git+https://github.com/a/b?branch=main#0123456789abcdef");
    assert_eq!(
        git,
        Source::Git {
            url: "https://github.com/a/b".into(),
            rev: "0123456789abcdef".into()
        }
    );
    let package = |source: Source, version: &str| Package {
        name: "foo_bar".into(),
        version: version.parse().unwrap(),
        source,
        checksum: None,
        license: License::None,
        description: None,
    };
    assert_eq!(
        package(Source::CratesIo, "1.0.0").purl(),
        "pkg:cargo/foo_bar@1.0.0"
    );
    assert_eq!(
        package(git.clone(), "1.0.0+build.5").purl(),
        "pkg:cargo/foo_bar@1.0.0%2Bbuild.5?vcs_url=git%2Bhttps://github.com/a/b%400123456789abcdef"
    );
    assert_eq!(
        package(git, "1.0.0").download_location().unwrap(),
        "git+https://github.com/a/b@0123456789abcdef"
    );
    assert_eq!(
        package(Source::CratesIo, "1.0.0")
            .download_location()
            .unwrap(),
        "https://crates.io/api/v1/crates/foo_bar/1.0.0/download"
    );
    assert_eq!(package(Source::Path, "1.0.0").download_location(), None);
}

#[test]
fn lockfile_checksums() {
    let sum = "a".repeat(64);
    let other = "b".repeat(64);
    let text = format!(
        r#"version = 4

[[package]]
name = "a"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{sum}"

[[package]]
name = "local"
version = "0.1.0"

[[package]]
name = "twice"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{sum}"

[[package]]
name = "twice"
version = "1.0.0"
source = "sparse+https://other.registry/"
checksum = "{other}"
"#
    );
    let checksums = checksums_from_lockfile(&text).unwrap();
    assert_eq!(
        checksums,
        Checksums::from([(("a".into(), "1.0.0".into()), sum.clone())])
    );
    // Format 1 kept them in [metadata].
    let v1 = format!(
        "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[metadata]\n\"checksum a 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\" = \"{sum}\"\n\"checksum b 2.0.0 (git+https://x/y#1)\" = \"<none>\"\n"
    );
    assert_eq!(checksums_from_lockfile(&v1).unwrap(), checksums);
}

#[test]
fn malformed_lockfiles_say_where() {
    let err = checksums_from_lockfile("version = 4\n\n[[package]]\nname = \"a\nversion = 1\n")
        .unwrap_err();
    assert_eq!(err.line, 4, "{err}");
    let err = checksums_from_lockfile(
        "version = 4\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nchecksum = \"xyz\"\n",
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (5, 12), "{err}");
    assert!(err.message.contains("not a sha256"), "{err}");
    let err = err.in_file(Path::new("/w/Cargo.lock")).to_string();
    assert!(
        err.starts_with("malformed lockfile /w/Cargo.lock:5:12: "),
        "{err}"
    );
    let err = checksums_from_lockfile("[[package]]\nname = 3\n").unwrap_err();
    assert_eq!(err.line, 2, "{err}");
}

#[test]
fn errors_name_what_is_missing() {
    let metadata = metadata();
    let checksums = Checksums::new();
    let unknown = Options {
        features: features(false, true, &["nope"]),
        ..Options::default()
    };
    let err = from_metadata(&metadata, &root(&metadata), &unknown, &checksums)
        .unwrap_err()
        .to_string();
    assert!(err.contains("package app has no feature \"nope\""), "{err}");
    assert!(err.contains("extra"), "{err}");
    let missing = PackageId {
        repr: "path+file:///elsewhere#zzz@1.0.0".into(),
    };
    let err = from_metadata(&metadata, &missing, &Options::default(), &checksums)
        .unwrap_err()
        .to_string();
    assert!(err.contains("zzz@1.0.0"), "{err}");
    let mut no_deps = metadata.clone();
    no_deps.resolve = None;
    let err = from_metadata(&no_deps, &root(&metadata), &Options::default(), &checksums)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--no-deps"), "{err}");
}

#[test]
fn a_malformed_manifest_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Cargo.toml");
    std::fs::write(
        &manifest,
        "[package]\nname = \"broken\"\nversion = 1.0.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let err = from_workspace(
        &manifest,
        "broken",
        "x86_64-unknown-linux-gnu",
        &Features::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    // cargo points at the spot: `--> .../Cargo.toml:3:14`.
    assert!(err.contains("Cargo.toml:3:"), "{err}");
}
