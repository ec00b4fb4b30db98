//! SBOMs of the example service, checked by tools that are not wharf: the CycloneDX 1.5 JSON
//! schema (cyclonedx-python-lib), the SPDX 2.3 validator (pyspdxtools), packageurl-python for
//! the purls, and `cargo tree` for which packages the binary is built from.
//!
//! `pip install 'cyclonedx-python-lib[json-validation]' spdx-tools` provides the Python
//! tools; the schemas ship inside the package, so nothing is fetched at test time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use wharf_e2e::{require, run, workspace_root};
use wharf_sbom::{Features, Meta, Sbom};

const PACKAGE: &str = "hello-service";
const PIP_CYCLONEDX: &str = "pip install 'cyclonedx-python-lib[json-validation]'";
const PIP_SPDX: &str = "pip install spdx-tools";

/// The example's SBOM and both documents, written once per test binary.
struct Written {
    sbom: Sbom,
    cyclonedx: PathBuf,
    spdx: PathBuf,
    triple: String,
    _dir: tempfile::TempDir,
}

fn written() -> &'static Written {
    static WRITTEN: OnceLock<Written> = OnceLock::new();
    WRITTEN.get_or_init(|| {
        let triple = wharf::source::host_triple().unwrap();
        let sbom = wharf_sbom::from_workspace(
            &workspace_root().join("Cargo.toml"),
            PACKAGE,
            &triple,
            &Features::default(),
        )
        .unwrap();
        let meta = Meta::new(1_700_000_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cyclonedx = dir.path().join("hello-service.cdx.json");
        let spdx = dir.path().join("hello-service.spdx.json");
        std::fs::write(&cyclonedx, wharf_sbom::cyclonedx_json(&sbom, &meta)).unwrap();
        std::fs::write(&spdx, wharf_sbom::spdx_json(&sbom, &meta)).unwrap();
        Written {
            sbom,
            cyclonedx,
            spdx,
            triple,
            _dir: dir,
        }
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn require_cyclonedx() -> bool {
    require(
        "python3",
        &[
            "-c",
            "from cyclonedx.validation.json import JsonStrictValidator; import packageurl",
        ],
        PIP_CYCLONEDX,
    )
}

/// Validates with the official library's strict 1.5 schema; returns the errors it printed.
fn cyclonedx_errors(path: &Path) -> Option<String> {
    const SCRIPT: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read(), all_errors=True)
if errors:
    for e in errors:
        print(e)
    sys.exit(1)
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .unwrap();
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `pyspdxtools -i FILE`; returns its output if it did not accept the document.
fn spdx_errors(path: &Path) -> Option<String> {
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // pyspdxtools logs each validation message and exits 1.
    (!out.status.success()).then_some(text)
}

#[test]
fn cyclonedx_document_is_valid_against_the_1_5_schema() {
    if !require_cyclonedx() {
        return;
    }
    let written = written();
    if let Some(errors) = cyclonedx_errors(&written.cyclonedx) {
        panic!(
            "{} is not valid CycloneDX 1.5:\n{errors}",
            written.cyclonedx.display()
        );
    }
    // The validator is not vacuous: a field the schema does not have is refused.
    let mut broken = read_json(&written.cyclonedx);
    broken["components"][0]["notAField"] = Value::from(1);
    let path = written.cyclonedx.with_extension("broken.json");
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(
        cyclonedx_errors(&path).is_some(),
        "the validator accepted a wrong document"
    );
}

#[test]
fn spdx_document_is_valid_for_pyspdxtools() {
    if !require("pyspdxtools", &["--help"], PIP_SPDX) {
        return;
    }
    let written = written();
    if let Some(errors) = spdx_errors(&written.spdx) {
        panic!(
            "{} is not valid SPDX 2.3:\n{errors}",
            written.spdx.display()
        );
    }
    // The validator is not vacuous: an invalid license expression is refused.
    let mut broken = read_json(&written.spdx);
    broken["packages"][1]["licenseDeclared"] = Value::from("MIT/Apache-2.0");
    let path = written.spdx.with_extension("broken.json");
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(
        spdx_errors(&path).is_some(),
        "pyspdxtools accepted a wrong document"
    );
}

#[test]
fn purls_parse_and_print_back_the_same_with_packageurl_python() {
    if !require_cyclonedx() {
        return;
    }
    let doc = read_json(&written().cyclonedx);
    let purls: Vec<&str> = std::iter::once(&doc["metadata"]["component"])
        .chain(doc["components"].as_array().unwrap())
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    const SCRIPT: &str = r#"
import sys
from packageurl import PackageURL
bad = [p for p in sys.argv[1:] if PackageURL.from_string(p).to_string() != p or PackageURL.from_string(p).type != "cargo"]
print("\n".join(bad))
sys.exit(1 if bad else 0)
"#;
    run(Command::new("python3").args(["-c", SCRIPT]).args(&purls));
}

/// `name@version` of every package `cargo tree` shows for the binary's normal dependencies
/// on this target.
fn cargo_tree(triple: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = run(Command::new(cargo).current_dir(workspace_root()).args([
        "tree", "-p", PACKAGE, "-e", "normal", "--target", triple, "--prefix", "none",
    ]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // `name vX.Y.Z`, then maybe `(proc-macro)`, `(/path)` or `(*)`.
            let mut words = l.split_whitespace();
            let name = words.next().unwrap();
            let version = words.next().unwrap().trim_start_matches('v');
            format!("{name}@{version}")
        })
        .collect()
}

#[test]
fn both_documents_list_exactly_the_packages_cargo_tree_shows() {
    let written = written();
    let expected = cargo_tree(&written.triple);
    assert!(expected.len() > 10, "cargo tree listed {expected:?}");
    let cdx = read_json(&written.cyclonedx);
    let in_cyclonedx: BTreeSet<String> = std::iter::once(&cdx["metadata"]["component"])
        .chain(cdx["components"].as_array().unwrap())
        .map(|c| {
            format!(
                "{}@{}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    let spdx = read_json(&written.spdx);
    let in_spdx: BTreeSet<String> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    let diff = |found: &BTreeSet<String>| {
        format!(
            "extra: {:?}, missing: {:?}",
            found.difference(&expected).collect::<Vec<_>>(),
            expected.difference(found).collect::<Vec<_>>()
        )
    };
    assert_eq!(
        in_cyclonedx,
        expected,
        "CycloneDX vs cargo tree: {}",
        diff(&in_cyclonedx)
    );
    assert_eq!(in_spdx, expected, "SPDX vs cargo tree: {}", diff(&in_spdx));
    assert_eq!(cdx["metadata"]["component"]["name"], PACKAGE);
}

#[test]
fn every_crates_io_package_has_the_lockfile_checksum() {
    let written = written();
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    for p in &written.sbom.packages {
        if p.source != wharf_sbom::Source::CratesIo {
            continue;
        }
        let checksum = p
            .checksum
            .as_deref()
            .unwrap_or_else(|| panic!("{}@{} has no checksum", p.name, p.version));
        let entry = format!(
            "name = \"{}\"\nversion = \"{}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{checksum}\"",
            p.name, p.version
        );
        assert!(lock.contains(&entry), "{entry}");
    }
}

#[test]
fn documents_are_the_same_bytes_every_time_and_name_no_local_path() {
    let written = written();
    let again = wharf_sbom::from_workspace(
        &workspace_root().join("Cargo.toml"),
        PACKAGE,
        &written.triple,
        &Features::default(),
    )
    .unwrap();
    let meta = Meta::new(1_700_000_000).unwrap();
    let cyclonedx = wharf_sbom::cyclonedx_json(&again, &meta);
    let spdx = wharf_sbom::spdx_json(&again, &meta);
    assert_eq!(cyclonedx, std::fs::read(&written.cyclonedx).unwrap());
    assert_eq!(spdx, std::fs::read(&written.spdx).unwrap());
    // Another clone in another directory must write the same document.
    let root = workspace_root().display().to_string();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for doc in [&cyclonedx, &spdx] {
        let text = String::from_utf8_lossy(doc);
        assert!(!text.contains(&root), "the document names {root}");
        assert!(!text.contains(&home), "the document names {home}");
    }
}
