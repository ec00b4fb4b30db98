//! The guide's examples (`docs/guide/*.md`) run as written, so that the guide stays true.
//!
//! On each page, in order:
//! - a ```` ```toml ```` block starts with a comment naming its file. `# pipelines/wharf.toml`
//!   blocks must parse as wharf's config (`Config::parse`), and the last one before a console
//!   block is the config of the fixture workspace that block runs in; any other file must be
//!   valid TOML;
//! - in a ```` ```console ```` block, each `$ cargo xtask ...` line (after optional
//!   `NAME=value` words, its environment) runs the built xtask in that workspace, and must
//!   exit 0, or the code a trailing `# exit code N` names. The lines after it must each match
//!   a line of its output (stdout or stderr, trimmed), `...` matching any text;
//! - a page that names `localhost:5000` gets a real registry, whose address replaces it;
//! - `rust` blocks are doctests of the `wharf` crate (`crates/wharf/src/lib.rs`); `sh` and
//!   `yaml` blocks are not run; a block with no language is an error (rustdoc would compile
//!   it as Rust).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wharf::pipeline::Config;
use wharf_e2e::registry::{Auth, Registry};
use wharf_e2e::{CI_VARIABLES, advisory_db, fixture_workspace, workspace_root, xtask_binary};

const CONFIG_FILE: &str = "pipelines/wharf.toml";
/// The registry address the pages use; replaced by the test registry's.
const REGISTRY_PLACEHOLDER: &str = "localhost:5000";
/// Longest a single example command may take (a cold `cargo xtask ci` of the fixture).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Variables of this process that would change what an example does: they are removed.
const HOST_VARIABLES: &[&str] = &[
    "WHARF_WORKSPACE",
    "WHARF_CACHE_DIR",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_OUTPUT",
    "RUST_LOG",
];

/// A fenced code block: its language (the info string's first word), the line of its opening
/// fence, and its text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        let Some(info) = line.strip_prefix("```") else {
            if let Some(block) = &mut open {
                block.text.push_str(line);
                block.text.push('\n');
            }
            continue;
        };
        match open.take() {
            Some(block) => found.push(block),
            None => {
                let lang = info.split([',', ' ']).next().unwrap_or_default();
                open = Some(Block {
                    lang: lang.to_string(),
                    line: index + 1,
                    text: String::new(),
                });
            }
        }
    }
    found.extend(open);
    found
}

/// One `$ ...` line of a console block and the output lines it promises.
struct Example {
    line: usize,
    env: Vec<(String, String)>,
    args: Vec<String>,
    exit_code: i32,
    expected: Vec<String>,
}

fn examples(block: &Block) -> Result<Vec<Example>, String> {
    let mut found: Vec<Example> = Vec::new();
    for (offset, line) in block.text.lines().enumerate() {
        let at = block.line + 1 + offset;
        match line.strip_prefix("$ ") {
            Some(command) => found.push(example(command, at)?),
            None => match found.last_mut() {
                Some(example) => example.expected.push(line.trim().to_string()),
                None => return Err(format!("line {at}: output before any `$ ` command")),
            },
        }
    }
    Ok(found)
}

fn example(command: &str, line: usize) -> Result<Example, String> {
    let (command, comment) = command.split_once(" # ").unwrap_or((command, ""));
    let exit_code = match comment.trim().strip_prefix("exit code ") {
        Some(code) => code
            .parse()
            .map_err(|_| format!("line {line}: `# exit code {code}` is not a number"))?,
        None => 0,
    };
    if command.contains(['\'', '"', '|', '>', '<', '&', ';', '$']) {
        return Err(format!(
            "line {line}: the harness runs plain words only (no quotes, pipes or variables): {command}"
        ));
    }
    let mut words = command.split_whitespace().peekable();
    let mut env = Vec::new();
    while let Some((name, value)) = words.peek().and_then(|w| w.split_once('=')) {
        env.push((name.to_string(), value.to_string()));
        words.next();
    }
    if words.next() != Some("cargo") || words.next() != Some("xtask") {
        return Err(format!(
            "line {line}: a console block runs `cargo xtask ...` only; put other commands in a ```sh block: {command}"
        ));
    }
    Ok(Example {
        line,
        env,
        args: words.map(String::from).collect(),
        exit_code,
        expected: Vec::new(),
    })
}

/// `pattern` matches `text` whole, each `...` in it standing for any text.
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split("...");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What the examples share: the environment every command gets.
struct Harness {
    env: Vec<(String, String)>,
}

/// Runs `cargo xtask ARGS` in `root` (as a user in their repository: the workspace is the
/// current directory's), with `env`, waiting at most [`COMMAND_TIMEOUT`]. Returns the exit
/// code and the output's lines.
fn run_xtask(root: &Path, args: &[String], env: &[(String, String)]) -> (i32, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let mut command = Command::new(xtask_binary());
    for name in CI_VARIABLES.iter().chain(HOST_VARIABLES) {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting cargo xtask {args:?}: {e}"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cargo xtask {args:?} did not finish in {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut lines = Vec::new();
    for path in [stdout, stderr] {
        let text = std::fs::read_to_string(path).unwrap();
        lines.extend(text.lines().map(|l| l.trim().to_string()));
    }
    (status.code().unwrap_or(-1), lines)
}

impl Harness {
    /// The problems found on a page (empty when every example holds), each as
    /// `page:line: what`.
    fn check(&self, page: &str, markdown: &str) -> Vec<String> {
        let mut failures = Vec::new();
        let mut config = String::new();
        let mut fixture: Option<tempfile::TempDir> = None;
        for block in blocks(markdown) {
            let mut fail = |message: String| failures.push(format!("{page}:{message}"));
            match block.lang.as_str() {
                "toml" => match check_toml(&block) {
                    Ok(true) => {
                        config = block.text.clone();
                        fixture = None;
                    }
                    Ok(false) => {}
                    Err(message) => fail(message),
                },
                "console" => {
                    let examples = match examples(&block) {
                        Ok(examples) => examples,
                        Err(message) => {
                            fail(message);
                            continue;
                        }
                    };
                    let root = fixture.get_or_insert_with(|| fixture_workspace(&config));
                    for example in examples {
                        if let Err(message) = self.run(root.path(), &example) {
                            fail(format!("{}: {message}", example.line));
                        }
                    }
                }
                "rust" | "sh" | "yaml" => {}
                other => fail(format!(
                    "{}: block language {other:?}: tag it toml, console, rust, sh or yaml",
                    block.line
                )),
            }
        }
        failures
    }

    fn run(&self, root: &Path, example: &Example) -> Result<(), String> {
        let env: Vec<(String, String)> = self.env.iter().chain(&example.env).cloned().collect();
        let started = Instant::now();
        let (code, lines) = run_xtask(root, &example.args, &env);
        eprintln!(
            "line {}: cargo xtask {}: exit code {code} in {:.1?}",
            example.line,
            example.args.join(" "),
            started.elapsed()
        );
        let shown = || {
            format!(
                "`cargo xtask {}` printed:\n    {}",
                example.args.join(" "),
                lines.join("\n    ")
            )
        };
        if code != example.exit_code {
            return Err(format!(
                "exit code {code}, the guide says {}; {}",
                example.exit_code,
                shown()
            ));
        }
        let missing: Vec<&String> = example
            .expected
            .iter()
            .filter(|want| *want != "..." && !lines.iter().any(|line| matches(want, line)))
            .collect();
        if !missing.is_empty() {
            return Err(format!("no output line matches {missing:?}; {}", shown()));
        }
        Ok(())
    }
}

/// Checks a toml block; `Ok(true)` when it is a `pipelines/wharf.toml`.
fn check_toml(block: &Block) -> Result<bool, String> {
    let at = block.line;
    let Some(file) = block
        .text
        .lines()
        .next()
        .and_then(|first| first.strip_prefix("# "))
        .map(str::trim)
    else {
        return Err(format!(
            "{at}: a toml block starts with a comment naming its file, e.g. `# {CONFIG_FILE}`"
        ));
    };
    if file == CONFIG_FILE {
        Config::parse(&block.text, Path::new(CONFIG_FILE))
            .map(|_| true)
            .map_err(|e| format!("{at}: {e}"))
    } else {
        toml::from_str::<toml::Table>(&block.text)
            .map(|_| false)
            .map_err(|e| format!("{at}: {file}: {e}"))
    }
}

fn guide_dir() -> PathBuf {
    workspace_root().join("docs/guide")
}

/// The harness, or `None` when the advisory database is missing and services are not
/// required (a notice is printed).
fn harness() -> Option<Harness> {
    let db = advisory_db()?;
    Some(Harness {
        env: vec![
            ("WHARF_ADVISORY_DB".into(), db.display().to_string()),
            // Loopback only: the fixture has no dependency, the database is local.
            ("CARGO_NET_OFFLINE".into(), "true".into()),
        ],
    })
}

/// Checks one page of the guide, with a registry when it names one.
fn check_page(page: &str) {
    let Some(harness) = harness() else { return };
    let mut markdown = std::fs::read_to_string(guide_dir().join(page))
        .unwrap_or_else(|e| panic!("reading docs/guide/{page}: {e}"));
    let _registry = if markdown.contains(REGISTRY_PLACEHOLDER) {
        let Some(registry) = Registry::try_start(Auth::None) else {
            return;
        };
        markdown = markdown.replace(REGISTRY_PLACEHOLDER, &registry.host());
        Some(registry)
    } else {
        None
    };
    let started = Instant::now();
    let failures = harness.check(page, &markdown);
    eprintln!("docs/guide/{page}: checked in {:.1?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "the guide's examples do not hold (fix the page or the code):\n{}",
        failures.join("\n")
    );
}

#[test]
fn readme() {
    check_page("README.md");
}

#[test]
fn build() {
    check_page("build.md");
}

#[test]
fn registry() {
    check_page("registry.md");
}

#[test]
fn scan() {
    check_page("scan.md");
}

#[test]
fn matrix() {
    check_page("matrix.md");
}

#[test]
fn pipelines() {
    check_page("pipelines.md");
}

#[test]
fn github_actions() {
    check_page("github-actions.md");
}

#[test]
fn using_wharf() {
    check_page("using-wharf.md");
}

#[test]
fn promotion() {
    check_page("promotion.md");
}

#[test]
fn signing() {
    check_page("signing.md");
}

/// A new page gets its test above, and its Rust blocks a doctest in `crates/wharf`.
#[test]
fn deploy() {
    check_page("deploy.md");
}

#[test]
fn every_page_is_checked() {
    let mut pages: Vec<String> = std::fs::read_dir(guide_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let checked = [
        "README.md",
        "build.md",
        "deploy.md",
        "github-actions.md",
        "matrix.md",
        "pipelines.md",
        "promotion.md",
        "registry.md",
        "scan.md",
        "signing.md",
        "using-wharf.md",
    ];
    assert_eq!(pages, checked, "add a test for each page of docs/guide");
    let lib = std::fs::read_to_string(workspace_root().join("crates/wharf/src/lib.rs")).unwrap();
    for page in pages {
        let markdown = std::fs::read_to_string(guide_dir().join(&page)).unwrap();
        if blocks(&markdown).iter().any(|b| b.lang == "rust") {
            assert!(
                lib.contains(&format!("docs/guide/{page}")),
                "docs/guide/{page} has Rust blocks: include it in the doctests of crates/wharf/src/lib.rs"
            );
        }
    }
}

/// The harness fails on a wrong flag, a wrong exit code, output that is not printed, a config
/// key that does not exist and an unmarked block: a passing guide test means something.
#[test]
fn the_harness_catches_examples_that_do_not_hold() {
    let Some(harness) = harness() else { return };
    let page = "\
```toml
# pipelines/wharf.toml
[image]
package = \"app\"
```

```console
$ cargo xtask image --dry-run --no-such-flag
$ cargo xtask image --dry-run
would build app into .../target/wharf/oci/app
would build something else
$ cargo xtask tag oci:target/wharf/oci/app:main latest
```

```toml
# pipelines/wharf.toml
[image]
packages = \"app\"
```

```toml
[image]
```

```
cargo xtask image
```
";
    let failures = harness.check("bad.md", page);
    let expect = [
        ("bad.md:8: exit code 2, the guide says 0", "--no-such-flag"),
        (
            "bad.md:9: no output line matches",
            "would build something else",
        ),
        ("bad.md:12: exit code 2, the guide says 0", "cannot tag"),
        (
            "bad.md:15: pipelines/wharf.toml:3:1: unknown field `packages`",
            "",
        ),
        (
            "bad.md:21: a toml block starts with a comment naming its file",
            "",
        ),
        ("bad.md:25: block language \"\"", ""),
    ];
    assert_eq!(failures.len(), expect.len(), "{failures:#?}");
    for ((start, detail), failure) in expect.iter().zip(&failures) {
        assert!(
            failure.starts_with(start) && failure.contains(detail),
            "expected {start:?} ... {detail:?}, got: {failure}"
        );
    }
}

#[test]
fn wildcards_match_any_text_and_nothing_else() {
    assert!(matches("sha256:...", "sha256:abc"));
    assert!(matches("oci:.../app:sha-...", "oci:/tmp/x/app:sha-1a2b3c4"));
    assert!(matches("a ... b ... c", "a 1 b 2 c"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exactly"));
    assert!(!matches("sha256:...", "digest sha256:abc"));
    assert!(!matches("a...b", "ab-a"));
}
