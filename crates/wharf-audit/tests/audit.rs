//! wharf-audit against a small advisory database and lockfile written for these tests
//! (`tests/fixtures`): each advisory covers one rule (ranges, withdrawn, informational kinds,
//! CVSS, os-specific, git sources, placeholders).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wharf_audit::{Advisories, Error, Finding, Kind, Lockfile, Report, Severity, audit, render};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn report() -> Report {
    let fixtures = fixtures();
    wharf_audit::audit_lockfile(&fixtures.join("Cargo.lock"), &fixtures.join("db")).unwrap()
}

/// (id, package, version) of each finding, in report order.
fn keys(findings: &[Finding]) -> Vec<(String, String, String)> {
    findings
        .iter()
        .map(|f| (f.id.clone(), f.package.clone(), f.version.to_string()))
        .collect()
}

fn key(id: &str, package: &str, version: &str) -> (String, String, String) {
    (id.into(), package.into(), version.into())
}

fn find<'a>(findings: &'a [Finding], package: &str, version: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.package == package && f.version.to_string() == version)
        .unwrap_or_else(|| panic!("no finding for {package} {version} in {findings:#?}"))
}

#[test]
fn affected_versions_are_vulnerable_and_patched_or_unaffected_ones_are_not() {
    let report = report();
    // vulnpkg: 0.4.0 is unaffected (< 0.5.0), 1.2.5 is patched (>= 1.2.3, < 1.3.0);
    // 1.0.0 and 1.3.1 are affected. lowpkg 0.3.0 is below its patched ^0.3.5.
    assert_eq!(
        keys(&report.vulnerabilities),
        [
            key("RUSTSEC-2099-0007", "lowpkg", "0.3.0"),
            key("RUSTSEC-2099-0001", "vulnpkg", "1.0.0"),
            key("RUSTSEC-2099-0001", "vulnpkg", "1.3.1"),
        ]
    );
}

#[test]
fn withdrawn_advisories_are_read_but_never_reported() {
    let fixtures = fixtures();
    let lockfile = Lockfile::load(&fixtures.join("Cargo.lock")).unwrap();
    let advisories = Advisories::load(&fixtures.join("db"), lockfile.package_names()).unwrap();
    let loaded: Vec<&str> = advisories
        .for_package("vulnpkg")
        .iter()
        .map(|a| a.id().as_str())
        .collect();
    assert_eq!(loaded, ["RUSTSEC-2099-0001", "RUSTSEC-2099-0002"]);
    let report = audit(&lockfile, &advisories);
    let all = report.vulnerabilities.iter().chain(&report.warnings);
    assert!(
        all.clone().all(|f| f.id != "RUSTSEC-2099-0002"),
        "{report:#?}"
    );
}

#[test]
fn informational_kinds_are_warnings_with_their_kind() {
    let report = report();
    let warnings: Vec<(String, String, Option<Kind>)> = report
        .warnings
        .iter()
        .map(|f| (f.id.clone(), f.package.clone(), f.kind))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "RUSTSEC-2099-0005".into(),
                "noticepkg".into(),
                Some(Kind::Notice)
            ),
            (
                "RUSTSEC-2099-0003".into(),
                "oldpkg".into(),
                Some(Kind::Unmaintained)
            ),
            (
                "RUSTSEC-2099-0004".into(),
                "unsoundpkg".into(),
                Some(Kind::Unsound)
            ),
        ]
    );
    // Vulnerabilities carry no kind, and no informational advisory is among them.
    assert!(report.vulnerabilities.iter().all(|f| f.kind.is_none()));
    // An informational kind cargo-audit does not know is not reported at all.
    let all = report.vulnerabilities.iter().chain(&report.warnings);
    assert!(all.clone().all(|f| f.package != "otherinfo"));
}

#[test]
fn severity_and_score_come_from_the_cvss_vector() {
    let report = report();
    let critical = find(&report.vulnerabilities, "vulnpkg", "1.0.0");
    assert_eq!(critical.severity, Some(Severity::Critical));
    assert_eq!(critical.cvss, Some(9.8));
    assert_eq!(
        critical.cvss_vector.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    );
    // AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N scores 4.7.
    let medium = find(&report.vulnerabilities, "lowpkg", "0.3.0");
    assert_eq!(medium.severity, Some(Severity::Medium));
    assert_eq!(medium.cvss, Some(4.7));
    let unmaintained = find(&report.warnings, "oldpkg", "0.1.0");
    assert_eq!((unmaintained.severity, unmaintained.cvss), (None, None));
}

#[test]
fn fixed_version_is_the_lowest_patched_version_above_the_locked_one() {
    let report = report();
    let fixed = |findings: &[Finding], package: &str, version: &str| {
        find(findings, package, version)
            .fixed_version
            .as_ref()
            .map(|v| v.to_string())
    };
    assert_eq!(
        fixed(&report.vulnerabilities, "vulnpkg", "1.0.0").as_deref(),
        Some("1.2.3")
    );
    assert_eq!(
        fixed(&report.vulnerabilities, "vulnpkg", "1.3.1").as_deref(),
        Some("1.3.4")
    );
    assert_eq!(
        fixed(&report.vulnerabilities, "lowpkg", "0.3.0").as_deref(),
        Some("0.3.5")
    );
    assert_eq!(
        fixed(&report.warnings, "unsoundpkg", "1.5.0").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(fixed(&report.warnings, "oldpkg", "0.1.0"), None);
    let vulnerable = find(&report.vulnerabilities, "vulnpkg", "1.0.0");
    assert_eq!(vulnerable.patched, [">=1.2.3, <1.3.0", ">=1.3.4"]);
}

#[test]
fn findings_carry_url_aliases_title_and_lockfile_line() {
    let report = report();
    let f = find(&report.vulnerabilities, "vulnpkg", "1.3.1");
    assert_eq!(f.title, "Buffer overflow in vulnpkg::parse");
    assert_eq!(f.url, "https://rustsec.org/advisories/RUSTSEC-2099-0001");
    assert_eq!(f.aliases, ["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"]);
    assert_eq!(f.date, "2099-01-15");
    let text = std::fs::read_to_string(fixtures().join("Cargo.lock")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let line = f.line.expect("the package's line is found");
    assert_eq!(lines[line - 1], "name = \"vulnpkg\"");
    assert_eq!(lines[line], "version = \"1.3.1\"");
}

#[test]
fn packages_not_from_crates_io_are_skipped() {
    // gitonly has an advisory covering every version, but the lockfile takes it from git.
    let report = report();
    let all = report.vulnerabilities.iter().chain(&report.warnings);
    assert!(all.clone().all(|f| f.package != "gitonly"), "{report:#?}");
    // The same package from crates.io is reported, so the skip is about the source.
    let text = std::fs::read_to_string(fixtures().join("Cargo.lock"))
        .unwrap()
        .replace(
            "source = \"git+https://example.com/gitonly.git#0123456789abcdef0123456789abcdef01234567\"",
            "source = \"registry+https://github.com/rust-lang/crates.io-index\"",
        );
    let lockfile = Lockfile::parse("Cargo.lock", text).unwrap();
    let advisories = Advisories::load(&fixtures().join("db"), lockfile.package_names()).unwrap();
    let report = audit(&lockfile, &advisories);
    assert!(
        report
            .vulnerabilities
            .iter()
            .any(|f| f.package == "gitonly")
    );
}

#[test]
fn only_the_directories_of_locked_crates_are_read() {
    let db = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("db"), db.path());
    // A malformed advisory about a crate the lockfile does not use is never read.
    write(
        db.path(),
        "unused",
        "RUSTSEC-2099-0100.md",
        "not an advisory",
    );
    let report = wharf_audit::audit_lockfile(&fixtures().join("Cargo.lock"), db.path()).unwrap();
    assert_eq!(report, self::report());
    // Names that are not crate names never lead outside the database.
    let advisories = Advisories::load(db.path(), ["../crates/vulnpkg", "vulnpkg/.."]).unwrap();
    assert!(advisories.is_empty());
    let advisories = Advisories::load(db.path(), ["vulnpkg", "cleanpkg"]).unwrap();
    assert_eq!(advisories.len(), 2);
}

#[test]
fn the_report_is_sorted_and_the_same_every_time() {
    let report = report();
    for list in [&report.vulnerabilities, &report.warnings] {
        let mut sorted = list.clone();
        sorted
            .sort_by(|a, b| (&a.package, &a.version, &a.id).cmp(&(&b.package, &b.version, &b.id)));
        assert_eq!(list, &sorted);
    }
    assert_eq!(render::json(&report), render::json(&self::report()));
}

#[test]
fn json_has_vulnerabilities_and_warnings_at_the_top() {
    let report = report();
    let value: serde_json::Value = serde_json::from_str(&render::json(&report)).unwrap();
    let keys: BTreeSet<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["vulnerabilities", "warnings"]));
    assert_eq!(value["vulnerabilities"].as_array().unwrap().len(), 3);
    assert_eq!(value["warnings"][1]["kind"], "unmaintained");
    assert_eq!(value["vulnerabilities"][1]["severity"], "critical");
    assert_eq!(value["vulnerabilities"][1]["fixed_version"], "1.2.3");
    // It reads back as the same report.
    let back: Report = serde_json::from_value(value).unwrap();
    assert_eq!(back, report);
}

#[test]
fn sarif_has_the_shape_github_code_scanning_reads() {
    let report = report();
    let sarif: serde_json::Value =
        serde_json::from_str(&render::sarif(&report, "Cargo.lock")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "wharf-audit");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // One rule per advisory, although RUSTSEC-2099-0001 has two findings.
    assert_eq!(
        rule_ids,
        [
            "RUSTSEC-2099-0001",
            "RUSTSEC-2099-0003",
            "RUSTSEC-2099-0004",
            "RUSTSEC-2099-0005",
            "RUSTSEC-2099-0007"
        ]
    );
    for rule in rules {
        assert!(rule["helpUri"].as_str().unwrap().starts_with("https://"));
        assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
        assert!(
            !rule["shortDescription"]["text"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(rules[0]["properties"]["security-severity"], "9.8");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "Cargo.lock");
        assert!(location["region"]["startLine"].as_u64().unwrap() > 1);
    }
    let level = |rule: &str, version: &str| {
        results
            .iter()
            .find(|r| {
                r["ruleId"] == rule && r["message"]["text"].as_str().unwrap().contains(version)
            })
            .map(|r| r["level"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(level("RUSTSEC-2099-0001", "1.3.1"), "error"); // critical
    assert_eq!(level("RUSTSEC-2099-0007", "0.3.0"), "warning"); // medium
    assert_eq!(level("RUSTSEC-2099-0003", "0.1.0"), "warning"); // unmaintained
    // Located at the package's entry in the lockfile.
    let text = std::fs::read_to_string(fixtures().join("Cargo.lock")).unwrap();
    let lowpkg_line = text.lines().position(|l| l == "name = \"lowpkg\"").unwrap() + 1;
    let lowpkg = results
        .iter()
        .find(|r| r["ruleId"] == "RUSTSEC-2099-0007")
        .unwrap();
    assert_eq!(
        lowpkg["locations"][0]["physicalLocation"]["region"]["startLine"],
        lowpkg_line
    );
}

#[test]
fn table_columns_are_aligned() {
    let report = report();
    let table = render::table(&report);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 6 + 1, "{table}");
    assert!(lines[0].starts_with("ID "), "{table}");
    assert_eq!(*lines.last().unwrap(), "3 vulnerabilities, 3 warnings");
    // Every column starts at the same offset in each row as in the header.
    for column in ["PACKAGE", "VERSION", "KIND", "SEVERITY", "FIX", "TITLE"] {
        let offset = lines[0].find(column).unwrap();
        for row in &lines[1..7] {
            assert_eq!(
                &row[offset - 2..offset],
                "  ",
                "{column} in {row:?}\n{table}"
            );
            assert_ne!(
                &row[offset..offset + 1],
                " ",
                "{column} in {row:?}\n{table}"
            );
        }
    }
    assert!(table.contains("critical (9.8)"), "{table}");
    assert!(table.contains("unmaintained"), "{table}");
    assert!(lines.iter().all(|l| !l.ends_with(' ')));
    assert_eq!(
        render::table(&Report::default()),
        "0 vulnerabilities, 0 warnings\n"
    );
}

// ---- errors ----

fn write(db: &Path, package: &str, file: &str, text: &str) -> PathBuf {
    let dir = db.join("crates").join(package);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Loads a database holding only `text` as the advisory `file` about `badpkg`; returns the
/// error, its path and its line.
fn advisory_error(file: &str, text: &str) -> (Error, PathBuf) {
    let db = tempfile::tempdir().unwrap();
    let path = write(db.path(), "badpkg", file, text);
    let error = Advisories::load(db.path(), ["badpkg"]).unwrap_err();
    assert!(matches!(error, Error::Advisory { .. }), "{error:?}");
    assert_eq!(error.path(), path);
    // The message names the file (and the line when known).
    assert!(
        error.to_string().starts_with(&path.display().to_string()),
        "{error}"
    );
    (error, path)
}

const GOOD: &str = "```toml\n[advisory]\nid = \"RUSTSEC-2099-0100\"\npackage = \"badpkg\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [\">= 1.0.0\"]\n```\n\n# Title\n\nBody.\n";

#[test]
fn the_good_advisory_template_loads() {
    // The malformed advisories below are this one with one thing broken.
    let db = tempfile::tempdir().unwrap();
    write(db.path(), "badpkg", "RUSTSEC-2099-0100.md", GOOD);
    let advisories = Advisories::load(db.path(), ["badpkg"]).unwrap();
    assert_eq!(advisories.len(), 1);
}

#[test]
fn a_toml_syntax_error_names_the_file_and_line() {
    let text = GOOD.replace("date = \"2099-01-01\"", "date = 2099-01-01-oops");
    let (error, path) = advisory_error("RUSTSEC-2099-0100.md", &text);
    assert_eq!(error.line(), Some(5), "{error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:5: invalid advisory", path.display()))
    );
}

#[test]
fn an_invalid_version_requirement_names_its_line() {
    let text = GOOD.replace("patched = [\">= 1.0.0\"]", "patched = [\">= one\"]");
    let (error, _) = advisory_error("RUSTSEC-2099-0100.md", &text);
    assert_eq!(error.line(), Some(8), "{error}");
}

#[test]
fn errors_in_v4_advisories_without_the_advisory_header_name_the_right_line() {
    // rustsec adds the missing `[advisory]` line before parsing; the line must not shift.
    let text = GOOD
        .replace("[advisory]\n", "")
        .replace("package = \"badpkg\"", "package = badpkg");
    let (error, _) = advisory_error("RUSTSEC-2099-0100.md", &text);
    assert_eq!(error.line(), Some(3), "{error}");
}

#[test]
fn a_file_without_the_toml_fence_is_an_error_at_line_1() {
    let (error, _) = advisory_error("RUSTSEC-2099-0100.md", "# Title\n\nno front matter\n");
    assert_eq!(error.line(), Some(1), "{error}");
}

#[test]
fn a_missing_title_is_an_error_at_the_line_after_the_fence() {
    let text = GOOD.replace("# Title", "Title");
    let (error, _) = advisory_error("RUSTSEC-2099-0100.md", &text);
    assert_eq!(error.line(), Some(11), "{error}");
}

#[test]
fn an_advisory_in_the_wrong_directory_or_file_is_an_error() {
    let text = GOOD.replace("package = \"badpkg\"", "package = \"otherpkg\"");
    let (error, _) = advisory_error("RUSTSEC-2099-0100.md", &text);
    assert_eq!(error.line(), Some(4), "{error}");
    assert!(error.to_string().contains("crates/badpkg"), "{error}");
    let (error, _) = advisory_error("RUSTSEC-2099-0999.md", GOOD);
    assert_eq!(error.line(), Some(3), "{error}");
    assert!(
        error.to_string().contains("RUSTSEC-2099-0100.md"),
        "{error}"
    );
    let (error, _) = advisory_error("RUSTSEC-2099-0100.toml", GOOD);
    assert!(error.to_string().contains("extension"), "{error}");
}

#[test]
fn a_missing_database_is_an_error_not_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let error = Advisories::load(&dir.path().join("nowhere"), ["vulnpkg"]).unwrap_err();
    assert!(matches!(error, Error::Database { .. }), "{error:?}");
    assert!(error.to_string().contains("nowhere"), "{error}");
}

fn lockfile_error(text: &str) -> Error {
    let error = Lockfile::parse("some/Cargo.lock", text.into()).unwrap_err();
    assert!(matches!(error, Error::Lockfile { .. }), "{error:?}");
    assert_eq!(error.path(), Path::new("some/Cargo.lock"));
    error
}

#[test]
fn a_malformed_lockfile_names_the_file_and_line() {
    let text = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = [oops\n";
    let error = lockfile_error(text);
    assert_eq!(error.line(), Some(6), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("some/Cargo.lock:6: invalid lockfile: "),
        "{error}"
    );
    // The parser's snippet is left out: one line of message.
    assert!(!error.to_string().contains('|'), "{error}");
}

#[test]
fn an_invalid_version_in_a_lockfile_names_its_line() {
    let text = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"b\"\nversion = \"1.x\"\n";
    let error = lockfile_error(text);
    assert_eq!(error.line(), Some(9), "{error}");
}

#[test]
fn a_missing_lockfile_names_the_path() {
    let error = Lockfile::load(Path::new("/nonexistent/Cargo.lock")).unwrap_err();
    assert!(matches!(error, Error::Read { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/Cargo.lock"),
        "{error}"
    );
}
