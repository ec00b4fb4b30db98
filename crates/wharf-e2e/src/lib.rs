//! Helpers for wharf's end-to-end tests: find the real tools a test needs, and fail (under
//! `CI=true`) or skip loudly (elsewhere) when one is missing. The tests themselves are in
//! `tests/`; `bash pipelines/test.sh` installs and starts everything they need.
//!
//! This crate is never published and holds no product code.

pub mod actions;
pub mod registry;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use wharf::oci::Digest;
use wharf::pipeline::{Config, Mode, Progress, image};
use wharf::source::{self, Workspace};

/// True when missing services must fail tests rather than skip them: `CI` or
/// `WHARF_REQUIRE_SERVICES` set to a true value (`true`, `1`, `yes`, any case).
pub fn strict() -> bool {
    ["CI", "WHARF_REQUIRE_SERVICES"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| is_true(&v)))
}

fn is_true(value: &str) -> bool {
    ["true", "1", "yes", "on"]
        .iter()
        .any(|t| value.trim().eq_ignore_ascii_case(t))
}

/// A test cannot run here because `message` (a missing tool or service). Under
/// [`strict`] that is a failure; elsewhere the test is skipped, loudly: on stderr, and in
/// the file `WHARF_SKIP_LOG` names, which `pipelines/test.sh` prints in its summary (cargo
/// hides a passing test's stderr).
pub fn skip(message: &str) {
    if strict() {
        panic!("{message}; CI=true, so this test fails instead of skipping");
    }
    eprintln!("SKIPPED: {message}");
    if let Some(path) = std::env::var_os("WHARF_SKIP_LOG").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{test}: {message}"));
    }
}

/// Returns `true` if `tool` works (`probe` succeeds). Otherwise panics under CI, or prints
/// a visible skip notice and returns `false`.
pub fn require(tool: &str, probe: &[&str], hint: &str) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    skip(&format!(
        "{tool} is not available ({hint}; `bash pipelines/test.sh` sets it up)"
    ));
    false
}

pub fn require_docker() -> bool {
    require("docker", &["info"], "start dockerd")
}

pub fn require_skopeo() -> bool {
    require("skopeo", &["--version"], "apt-get install skopeo")
}

pub fn require_umoci() -> bool {
    require("umoci", &["--version"], "apt-get install umoci")
}

/// The full RustSec advisory-db snapshot: `WHARF_ADVISORY_DB` if set, else
/// `../shared/advisory-db` beside the repository (where this workplace keeps it). Missing:
/// fails under CI, else prints a skip notice and returns `None`.
pub fn advisory_db() -> Option<PathBuf> {
    let db = std::env::var_os("WHARF_ADVISORY_DB")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/advisory-db"));
    if db.join("crates").is_dir() {
        return Some(db);
    }
    skip(&format!(
        "no advisory-db snapshot at {} (a directory copy of https://github.com/rustsec/advisory-db; set WHARF_ADVISORY_DB)",
        db.display()
    ));
    None
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/wharf-e2e is two levels below the root")
        .to_path_buf()
}

/// The example image, built once per test binary into a layout in a temporary directory.
pub struct BuiltExample {
    pub layout: PathBuf,
    pub tag: String,
    pub digest: Digest,
    pub plan: image::ImagePlan,
    _dir: tempfile::TempDir,
}

/// Builds this repository's example image (as `cargo xtask image` does) once.
pub fn example_image() -> &'static BuiltExample {
    static BUILT: OnceLock<BuiltExample> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let dir = tempfile::tempdir().unwrap();
        let (outcome, plan) = build_example(&root, &dir.path().join("layout"));
        BuiltExample {
            layout: outcome.layout,
            tag: outcome.tags[0].clone(),
            digest: outcome.digest,
            plan,
            _dir: dir,
        }
    })
}

/// Builds the example image of the repository at `root` into `layout`.
pub fn build_example(root: &Path, layout: &Path) -> (image::ImageOutcome, image::ImagePlan) {
    let config = Config::load(root).unwrap();
    let workspace = Workspace::load(root).unwrap();
    let git = source::git_facts(root).unwrap();
    let mut plan = image::plan(&workspace, &git, config.image.as_ref(), Path::new("x")).unwrap();
    plan.layout = layout.to_path_buf();
    let outcome = image::build(&plan, &workspace, &Progress::new(Mode::Plain)).unwrap();
    (outcome, plan)
}

/// A build of the example image with `env` added, tagged `tag` in the layout `dir`.
pub fn example_variant(dir: &Path, tag: &str, env: &[&str]) -> wharf::oci::Digest {
    let example = example_image();
    let base = wharf::oci::Layout::open(&example.layout)
        .unwrap()
        .image_by_tag(&example.tag, &wharf::oci::Platform::linux_amd64())
        .unwrap();
    let config = wharf::oci::image::config(&base).unwrap();
    let run_config = config.config.unwrap_or_default();
    let mut spec = wharf::build::BuildSpec::new(0);
    spec.base = Some(wharf::build::Base {
        name: "oci:example".into(),
        image: &base,
    });
    let (uid, gid) = run_config
        .user
        .as_deref()
        .and_then(|u| u.split_once(':'))
        .map(|(u, g)| (u.parse().unwrap(), g.parse().unwrap()))
        .unwrap();
    spec.uid = uid;
    spec.gid = gid;
    spec.env = env.iter().map(|e| e.to_string()).collect();
    let layout = match dir.join("index.json").exists() {
        true => wharf::oci::Layout::open(dir).unwrap(),
        false => wharf::oci::Layout::create(dir).unwrap(),
    };
    wharf::build::build(&spec, &layout, Some(tag))
        .unwrap()
        .descriptor
        .digest
}

/// What CI records for a digest it built and tested (found at `location`), so that
/// `promote` takes it into a first stage.
pub fn record_verified(root: &Path, digest: &wharf::oci::Digest, location: &str) {
    // The default ledger of a git workspace, as the CLI opens it.
    let store = wharf::ledger::Store::git(root.to_path_buf(), "refs/wharf/ledger", None::<String>);
    let evidence = wharf::promote::VerificationEvidence {
        location: Some(location.into()),
        ..Default::default()
    };
    store
        .append(|_| {
            Ok::<_, std::convert::Infallible>(wharf::promote::verification_draft(
                digest.clone(),
                "ci",
                jiff::Timestamp::now(),
                &evidence,
            ))
        })
        .unwrap();
}

/// GET `path` on 127.0.0.1:`port` over a new connection (`Connection: close`, reads
/// bounded by 10 s): the status code and the body, or what went wrong.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// GET `path` on 127.0.0.1:`port`, returning the status code (None if nothing answers).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).ok().map(|(status, _)| status)
}

/// A port that was free a moment ago, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until GET /health on `port` answers, then returns its status.
pub fn wait_for_health(port: u16) -> Option<u16> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(status) = http_status(port, "/health") {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// Pulls the example service's image `name` from a registry with docker (an independent
/// client), runs it on the host network, and returns what GET /health answers; the
/// container and the image are removed after.
pub fn docker_pull_and_probe_health(name: &str, container: &str) -> Option<u16> {
    run(Command::new("docker").args(["pull", "--quiet", name]));
    let port = free_port();
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        container,
        "--network",
        "host",
        "--env",
        &format!("LISTEN_ADDR=127.0.0.1:{port}"),
        name,
    ]));
    let status = wait_for_health(port);
    let _ = Command::new("docker")
        .args(["rm", "--force", container])
        .output();
    let _ = Command::new("docker")
        .args(["rmi", "--force", name])
        .output();
    status
}

/// The Rust build image examples/hello-service/Dockerfile takes as `RUST_IMAGE`, made from
/// this machine's own toolchain and crates by `tests/fixtures/rust-builder.sh` (no image can
/// be pulled here), once per toolchain, lockfile and script: later runs find it in the engine.
pub fn rust_builder_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let root = workspace_root();
            let script = root.join("crates/wharf-e2e/tests/fixtures/rust-builder.sh");
            let mut key = run(Command::new("rustc").arg("-vV")).stdout;
            key.extend(std::fs::read(root.join("Cargo.lock")).unwrap());
            key.extend(std::fs::read(&script).unwrap());
            let digest = Digest::sha256(&key);
            let name = format!("wharf-test/rust-builder:{}", &digest.hex()[..12]);
            let present = Command::new("docker")
                .args(["image", "inspect", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !present {
                run(Command::new("bash").arg(&script).arg(&name));
            }
            name
        })
        .clone()
}

/// The `cargo xtask` binary of this workspace, built once (dev profile, the same target
/// directory as the tests, so usually already fresh).
pub fn xtask_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            // Not with the variables `cargo test` gives this test: ring's build script
            // watches CARGO_MANIFEST_DIR, so the test's value would rebuild ring and all
            // above it in every test binary (and again in the next plain build).
            run(Command::new(cargo)
                .current_dir(&root)
                .env_remove("CARGO_MANIFEST_DIR")
                .args(["build", "--quiet", "--package", "xtask"]));
            let workspace = Workspace::load(&root).unwrap();
            workspace.target_dir.join("debug").join("xtask")
        })
        .clone()
}

/// A one-package workspace in a temporary git repository (one commit, on branch `main`):
/// package `app` with binary `app`, and `pipelines/wharf.toml` holding `config`. For
/// running `cargo xtask` on it (`WHARF_WORKSPACE`, see [`xtask_in`]) without touching this
/// repository.
pub fn fixture_workspace(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.3.1\"\nedition = \"2021\"\nlicense = \"MIT\"\nrepository = \"https://example.com/app\"\n\n[workspace]\n",
    );
    write("src/main.rs", "fn main() {\n    println!(\"app\");\n}\n");
    write(
        "Cargo.lock",
        // As cargo writes it, so that no build rewrites it (and changes the step keys).
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.3.1\"\n",
    );
    write("pipelines/wharf.toml", config);
    write(".gitignore", "/target\n");
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args));
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "fixture"]);
    dir
}

/// The variables that change what wharf reads from CI: the tests set them explicitly.
pub const CI_VARIABLES: &[&str] = wharf::pipeline::steps::IMAGE_ENV;

/// Runs `cargo xtask ARGS` on the workspace at `root`, with the CI variables of this
/// process removed and `env` added.
pub fn xtask_in(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(xtask_binary());
    for name in CI_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("WHARF_WORKSPACE", root)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running cargo xtask {args:?}: {e}"))
}

/// A finished command's exit status and output, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `finished` events of a pipeline run with `--json` (one JSON object a line), in
/// order, with the step ids in that order.
pub fn finished_steps(out: &Output) -> (Vec<serde_json::Value>, Vec<String>) {
    let finished: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .collect();
    let order = finished
        .iter()
        .map(|e| e["step"].as_str().unwrap_or_default().to_string())
        .collect();
    (finished, order)
}

/// Asserts that the command succeeded and parses its stdout as JSON.
pub fn ok_json(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
}

/// The built image's digest, from `ci --json`'s finished image step.
pub fn built_digest(out: &Output) -> String {
    assert!(out.status.success(), "{}", describe(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "finished" && e["step"] == "image")
        .and_then(|e| e["outputs"]["digest"]["value"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no image digest in {}", describe(out)))
}

/// Asserts the exit code and that stderr names every one of `words`.
pub fn fails_with(out: &Output, code: i32, words: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for word in words {
        assert!(stderr.contains(word), "{word:?} not in: {}", describe(out));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn true_values_in_any_case_make_missing_services_fail() {
        for value in ["true", "True", "TRUE", "1", "yes", "YES", " on "] {
            assert!(super::is_true(value), "{value:?}");
        }
        for value in ["", "0", "false", "no", "off", "maybe"] {
            assert!(!super::is_true(value), "{value:?}");
        }
    }
}
