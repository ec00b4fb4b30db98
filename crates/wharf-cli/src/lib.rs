//! wharf's command line as a library: `cargo xtask ci`, `image`, `push`, `scan`, ... for any
//! repository. A repository's `xtask/src/main.rs` is one call:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     wharf_cli::main()
//! }
//! ```
//!
//! or, with commands of its own (this repository adds its benchmarks), [`main_with`].
//!
//! Exit codes: 0 success, 1 a step or build failed, 2 bad usage or config, 3 a gate failed
//! (the scan's policy gate, a promotion's gates, or `verify`: no signature verifies).

mod ci;
pub mod codegen;
mod copy;
mod image;
mod matrix;
mod promote;
mod push;
mod referrers;
mod scan;
mod session;
mod sign;
pub mod steps;

use std::marker::PhantomData;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args as _, FromArgMatches, Parser, Subcommand};

pub use ci::{Composed, PipelineDef};

pub use image::plan as image_plan;
pub use scan::GateFailed;
pub use session::{Session, find_workspace_root};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "wharf's pipelines for this repository",
    version
)]
struct Cli {
    /// Show debug logs on stderr: each registry request and each process started (-vv:
    /// trace). RUST_LOG (tracing's env-filter syntax) overrides it. Never shows credentials.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// The workspace to work on (default: the cargo workspace around the current directory).
    #[arg(long, value_name = "DIR", global = true, env = "WHARF_WORKSPACE")]
    workspace: Option<PathBuf>,
    /// The pipeline config (default: pipelines/wharf.toml in the workspace).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image of pipelines/wharf.toml into its OCI layout (no Docker needed).
    Image(image::Args),
    /// Copy an image between locations (oci:DIR:TAG, docker://HOST/REPO:TAG), digest kept.
    Copy(copy::Args),
    /// Push the image `cargo xtask image` built, under all its tags.
    Push(push::Args),
    /// Point a new tag at an image in a registry (only the manifest moves).
    Tag(push::TagArgs),
    /// SBOM, RustSec advisories, image checks and the policy gate ([scan]).
    Scan(scan::Args),
    /// Plan and run the test matrix of [matrix]: features x toolchains x targets, retries,
    /// JUnit; or print the plan (--dry-run) or the GitHub Actions matrix (--emit).
    Matrix(matrix::Args),
    /// List (or read) what is attached to an image in a registry: SBOMs and scan reports.
    Referrers(referrers::Args),
    /// Write .github/workflows (ci.yml, release.yml, promote.yml) from the pipelines and the config, or
    /// check (--check) that the committed ones are up to date.
    Codegen(codegen::Args),
    /// Promote a digest into a stage of [[stages]]: gates checked, copied by digest, tags
    /// moved, recorded in the ledger (exit 3 when a gate fails).
    Promote(promote::PromoteArgs),
    /// Approve a digest for a stage (recorded in the ledger; optionally SSH-signed).
    Approve(promote::ApproveArgs),
    /// Move a stage back to its previous digest, from the ledger.
    Rollback(promote::RollbackArgs),
    /// Which digest is in each stage, since when, by whom, and what awaits approval.
    Status(promote::StatusArgs),
    /// The ledger's entries for a stage.
    History(promote::HistoryArgs),
    /// The promotion ledger: `ledger verify` checks its hash chain.
    Ledger(promote::LedgerArgs),
    /// DORA figures from the ledger: deployment frequency, lead time, change failure rate,
    /// recovery time.
    Dora(promote::DoraArgs),
    /// Run a stage's digest on its [stages.deploy] target (blue-green on a Docker engine:
    /// health checked, smoke checked, recorded in the ledger); `--rollback` goes back to the
    /// last healthy deploy; `deploy status` shows what runs.
    Deploy(promote::deploy::DeployArgs),
    /// Write the Kubernetes manifests (kustomize base, one overlay per stage pinned to its
    /// digest) for GitOps; --check fails when the committed ones differ.
    #[command(name = "render-k8s")]
    RenderK8s(promote::k8s::RenderArgs),
    /// Run a stage's [[stages.deploy.smoke]] HTTP checks (status, body, latency).
    Smoke(promote::deploy::SmokeArgs),
    /// The TCP proxy a Docker deploy starts in front of a stage (internal).
    #[command(hide = true)]
    DeployProxy(promote::deploy::ProxyArgs),
    /// Write an ECDSA P-256 key pair for signing (cosign.key, cosign.pub).
    Keygen(sign::KeygenArgs),
    /// Sign an image in a registry, in cosign's format (the tag sha256-<hex>.sig).
    Sign(sign::SignArgs),
    /// Check an image's cosign signatures against public keys (exit 3 when none verifies).
    Verify(sign::VerifyArgs),
}

/// Commands a repository adds to its own `cargo xtask` (see [`main_with`]).
pub trait Extension: Subcommand {
    fn run(self, session: &Session) -> anyhow::Result<()>;
}

/// No commands of one's own.
#[derive(Subcommand)]
pub enum NoExtension {}

impl Extension for NoExtension {
    fn run(self, _: &Session) -> anyhow::Result<()> {
        match self {}
    }
}

/// The whole command line: parses `std::env::args`, runs the command, maps the outcome to
/// the exit code (printing the error, with its causes, on one line).
pub fn main() -> ExitCode {
    App::new().main()
}

/// [`main`] with the repository's own subcommands `E` beside wharf's.
pub fn main_with<E: Extension>() -> ExitCode {
    App::new().commands::<E>().main()
}

/// The command line, put together: wharf's commands, the pipelines (each a subcommand:
/// `cargo xtask ci`, `cargo xtask release`) and the repository's own commands `E`.
pub struct App<E: Extension = NoExtension> {
    pipelines: Vec<PipelineDef>,
    commands: PhantomData<E>,
}

impl App<NoExtension> {
    /// wharf's commands and pipelines (`ci`, `release`).
    pub fn new() -> App<NoExtension> {
        App {
            pipelines: ci::builtin(),
            commands: PhantomData,
        }
    }
}

impl Default for App<NoExtension> {
    fn default() -> Self {
        App::new()
    }
}

impl<E: Extension> App<E> {
    /// Adds the repository's own subcommands.
    pub fn commands<F: Extension>(self) -> App<F> {
        App {
            pipelines: self.pipelines,
            commands: PhantomData,
        }
    }

    /// Adds pipelines, each replacing wharf's of the same name.
    pub fn pipelines(self, defs: Vec<PipelineDef>) -> App<E> {
        defs.into_iter().fold(self, App::pipeline)
    }

    /// Adds a pipeline, or replaces wharf's of the same name.
    pub fn pipeline(mut self, def: PipelineDef) -> App<E> {
        self.pipelines.retain(|p| p.name != def.name);
        self.pipelines.push(def);
        self
    }

    pub fn main(self) -> ExitCode {
        let mut command = E::augment_subcommands(<Cli as clap::CommandFactory>::command())
            .bin_name("cargo xtask");
        for def in &self.pipelines {
            command = command.subcommand(ci::Args::augment_args(
                clap::Command::new(def.name).about(def.about),
            ));
        }
        let matches = command.get_matches();
        let (verbose, workspace, config) = global_options(&matches);
        init_logging(verbose);
        let name = matches.subcommand_name().unwrap_or_default().to_string();
        let result = Session::new(workspace.as_deref(), config.as_deref())
            .map(Arc::new)
            .and_then(|session| {
                if let Some(def) = self.pipelines.iter().find(|p| p.name == name) {
                    let (_, sub) = matches.subcommand().expect("a subcommand");
                    let args = ci::Args::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
                    ci::run(def, args, &session)
                } else if E::has_subcommand(&name) {
                    let extension = E::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
                    extension.run(&session)
                } else {
                    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
                    match cli.command {
                        Command::Codegen(args) => codegen::run(args, &session, &self.pipelines),
                        command => run(command, &session),
                    }
                }
            });
        exit_code(result)
    }
}

/// The global options, read from the matches whichever command was given.
fn global_options(matches: &clap::ArgMatches) -> (u8, Option<PathBuf>, Option<PathBuf>) {
    (
        matches.get_count("verbose"),
        matches.get_one::<PathBuf>("workspace").cloned(),
        matches.get_one::<PathBuf>("config").cloned(),
    )
}

fn run(command: Command, session: &Session) -> anyhow::Result<()> {
    match command {
        Command::Image(args) => image::run(args, session),
        Command::Copy(args) => copy::run(args),
        Command::Push(args) => push::run(args, session),
        Command::Tag(args) => push::tag(args),
        Command::Scan(args) => scan::run(args, session),
        Command::Referrers(args) => referrers::run(args),
        Command::Matrix(args) => matrix::run(args, session),
        Command::Promote(args) => promote::promote(args, session),
        Command::Approve(args) => promote::approve(args, session),
        Command::Rollback(args) => promote::rollback(args, session),
        Command::Status(args) => promote::status(args, session),
        Command::History(args) => promote::history(args, session),
        Command::Ledger(args) => promote::ledger(args, session),
        Command::Dora(args) => promote::dora(args, session),
        Command::Deploy(args) => promote::deploy::deploy(args, session),
        Command::RenderK8s(args) => promote::k8s::render(args, session),
        Command::Smoke(args) => promote::deploy::smoke(args, session),
        Command::DeployProxy(args) => promote::deploy::proxy(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Sign(args) => sign::sign(args, session),
        Command::Verify(args) => sign::verify(args),
        Command::Codegen(_) => unreachable!("needs the pipelines: App::main runs it"),
    }
}

/// Prints the error and picks the exit code: 2 for the user's mistakes, 3 for the scan gate.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else if e.downcast_ref::<GateFailed>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// An error that is the user's to fix (usage, config): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl std::error::Error for UsageError {}

/// A message as a usage error (exit code 2).
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    UsageError(anyhow::anyhow!("{message}")).into()
}

/// An error and its causes on one line, each once: wharf's errors often name their cause
/// in their own message (`invalid tag "...": tag is 200 characters ...`), which anyhow's
/// `{:#}` would then print a second time.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Debug logs to stderr, off unless asked for: `RUST_LOG` (env-filter syntax) wins, else
/// `-v` shows wharf's debug events and `-vv` its trace events.
fn init_logging(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => directives,
        _ => match verbose {
            0 => "warn",
            1 => "warn,wharf=debug",
            _ => "warn,wharf=trace",
        }
        .to_string(),
    };
    // A bad RUST_LOG is the user's to fix, but not worth failing the command for.
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: ignoring RUST_LOG={filter:?}: {e}");
        tracing_subscriber::EnvFilter::new("warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Writes `text` to stdout. A reader that stopped early (`| head`) is not an error:
/// print! would panic there. (Restoring SIGPIPE's default instead would also kill the
/// registry client when a server resets a connection.)
pub fn stdout(text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
