//! The examples table in `docs/TAGS.md` is run through `tags`, so the doc cannot drift
//! from the code.

use wharf_tag::{Facts, tags};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/TAGS.md");
const HEADER: [&str; 6] = ["version", "release", "branch", "stage", "build", "tags"];

#[test]
fn docs_table_matches_tags() {
    let text = std::fs::read_to_string(DOC).unwrap_or_else(|e| panic!("reading {DOC}: {e}"));
    let lines: Vec<&str> = text.lines().collect();

    let sha = fact(&lines, "sha");
    let date = fact(&lines, "date")
        .parse()
        .unwrap_or_else(|e| panic!("{DOC}: bad date: {e}"));
    let default_branch = fact(&lines, "default branch");

    let header = lines
        .iter()
        .position(|l| cells(l) == HEADER)
        .unwrap_or_else(|| panic!("{DOC}: no table with the columns {}", HEADER.join(" | ")));
    let mut rows = 0;
    let mut failures = Vec::new();
    // Skip the header and the `| --- |` line; the table ends at the first other line.
    for (i, line) in lines.iter().enumerate().skip(header + 2) {
        if !line.starts_with('|') {
            break;
        }
        let at = format!("docs/TAGS.md:{}", i + 1);
        let [version, release, branch, stage, build, expected] = cells(line)[..] else {
            panic!("{at}: expected {} cells in {line:?}", HEADER.len());
        };
        let facts = Facts {
            version: code(version, &at)
                .parse()
                .unwrap_or_else(|e| panic!("{at}: {e}")),
            release: match release {
                "yes" => true,
                "no" => false,
                other => panic!("{at}: release must be yes or no, not {other:?}"),
            },
            sha: sha.to_owned(),
            branch: (branch != "(detached)").then(|| code(branch, &at).to_owned()),
            default_branch: default_branch.to_owned(),
            date,
            stage: (stage != "-").then(|| code(stage, &at).to_owned()),
            build_number: (build != "-").then(|| {
                code(build, &at)
                    .parse()
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
            }),
        };
        // Tags are the `code` spans of the last cell.
        let expected: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let got = tags(&facts).unwrap_or_else(|e| panic!("{at}: {e}"));
        let got: Vec<&str> = got.iter().map(|t| t.as_str()).collect();
        if got != expected {
            failures.push(format!(
                "{at}\n  documented: {}\n  computed:   {}",
                expected.join(" "),
                got.join(" ")
            ));
        }
        rows += 1;
    }
    assert!(
        failures.is_empty(),
        "docs/TAGS.md disagrees with wharf_tag::tags:\n{}",
        failures.join("\n")
    );
    assert!(
        rows >= 8,
        "docs/TAGS.md: expected at least 8 example rows, found {rows}"
    );
}

/// The value of a `- name: `value`` line above the table.
fn fact<'a>(lines: &[&'a str], name: &str) -> &'a str {
    let prefix = format!("- {name}: `");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('`'))
        .unwrap_or_else(|| panic!("{DOC}: no line \"{prefix}...`\""))
}

fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

fn code<'a>(cell: &'a str, at: &str) -> &'a str {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or_else(|| panic!("{at}: expected a `code` cell, found {cell:?}"))
}
