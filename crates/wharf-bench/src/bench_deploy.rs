//! `cargo xtask bench-deploy`: a blue-green deploy by `cargo xtask deploy` against the two
//! things a team writes by hand with the docker CLI, on the local Docker engine, while a
//! client polls the service every 20 ms and counts failed requests.
//!
//! Not timed: `examples/hello-service` compiled and built into two images, A and B
//! (`HELLO_VERSION=A`/`B`), in an OCI layout that is the stage's location; a workspace whose
//! `dev` stage deploys to the engine; both images loaded (one deploy of each).
//!
//! Timed, as whole processes, the contenders taking turns, each switching between A and B
//! every round, medians compared:
//! - **wharf**: `cargo xtask deploy dev --digest X` (start the new container, wait for
//!   health, switch the proxy, stop the old one gracefully, append to the ledger);
//! - **script (blue-green)**: what a `deploy.sh` does: `docker run -d` of the new version on
//!   a port of its own, `curl` its health every 100 ms until it answers, `docker stop` and
//!   `docker rm` the old one. It has no stable address: moving the traffic (an nginx reload,
//!   a load balancer) is left out, so it does less than wharf;
//! - **stop, then run**: `docker stop` and `docker rm` the old one, `docker run -d` the new
//!   one on the same port, `curl` until it answers. The simple script, with downtime.
//!
//! Then the floor of wharf's command: `deploy --dry-run` as a process.
//!
//! The poller counts the failed requests each contender caused, on the address the users of
//! that setup would call (wharf's proxy; the one port of stop-then-run).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wharf::oci::{Digest, Layout, Platform};
use wharf::pipeline::{Mode, Progress, image};

use crate::{checked, median, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Timed rounds per contender (medians compared).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// One way to switch versions, run once per round.
type Contender<'a> = Box<dyn Fn() -> Result<()> + 'a>;

/// The containers the docker CLI contenders start (removed before and after).
const SCRIPT_NAMES: [&str; 3] = ["wharf-bench-a", "wharf-bench-b", "wharf-bench-naive"];

/// Counts failed GETs of `/health` on a port, one every 20 ms, each on a new connection.
struct Poller {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    sent.fetch_add(1, Ordering::SeqCst);
                    if !healthy(port) {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Poller {
            stop,
            failed,
            sent,
            thread: Some(thread),
        }
    }

    /// (failed, sent)
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        (
            self.failed.load(Ordering::SeqCst),
            self.sent.load(Ordering::SeqCst),
        )
    }
}

/// Whether GET /health on 127.0.0.1:`port` answers 200 within 2 s.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(2),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .and_then(|()| stream.read_to_string(&mut answer))
        .is_ok_and(|_| answer.starts_with("HTTP/1.1 200 "))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `docker run -d` of `image` (an image ID) on the host's network, listening on `port`.
fn docker_run(name: &str, image: &str, port: u16) -> String {
    format!(
        "docker run -d --name {name} --network host -e LISTEN_ADDR=127.0.0.1:{port} {image} >/dev/null"
    )
}

/// `curl` the port's health every 100 ms until it answers (at most 60 s).
fn wait_healthy(port: u16) -> String {
    format!(
        "for i in $(seq 600); do curl -fsS -o /dev/null http://127.0.0.1:{port}/health && break; sleep 0.1; done"
    )
}

fn sh(script: &str) -> Result<()> {
    checked(Command::new("sh").args(["-ec", script]))?;
    Ok(())
}

fn remove_script_containers() {
    for name in SCRIPT_NAMES {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
    }
}

/// A build of `base` with `env` added, tagged in `layout`; its manifest and config digests.
fn variant(
    layout: &Layout,
    base: &wharf::oci::LayoutImage,
    tag: &str,
    env: &str,
) -> Result<(Digest, Digest)> {
    let config = wharf::oci::image::config(base)?;
    let user = config.config.unwrap_or_default().user.unwrap_or_default();
    let (uid, gid) = wharf::pipeline::config::parse_user(&user).map_err(anyhow::Error::msg)?;
    let mut spec = wharf::build::BuildSpec::new(0);
    spec.base = Some(wharf::build::Base {
        name: "oci:hello-service".into(),
        image: base,
    });
    spec.uid = uid;
    spec.gid = gid;
    spec.env = vec![env.to_string()];
    let built = wharf::build::build(&spec, layout, Some(tag))?;
    let manifest =
        wharf::oci::image::manifest(&layout.image(&built.descriptor, &Platform::linux_amd64())?)?;
    Ok((built.descriptor.digest, manifest.config.digest))
}

pub fn run(args: Args, session: &wharf::cli::Session) -> Result<()> {
    let runs = args.runs.max(1);
    if !Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!("bench-deploy needs a Docker engine (bash pipelines/test.sh starts one)");
    }
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().join("workspace");
    let images = root.join("images");

    let (mut plan, workspace) = wharf::cli::image_plan(session)?;
    eprintln!("building {} and images A and B (not timed)", plan.binary);
    plan.layout = scratch.path().join("example");
    let built = image::build(&plan, &workspace, &Progress::new(Mode::Quiet))?;
    let base =
        Layout::open(&built.layout)?.image_by_tag(&built.tags[0], &Platform::linux_amd64())?;
    let layout = Layout::create(&images)?;
    let a = variant(&layout, &base, "a", "HELLO_VERSION=A")?;
    let b = variant(&layout, &base, "b", "HELLO_VERSION=B")?;

    let proxy_port = free_port()?;
    let naive_port = free_port()?;
    std::fs::create_dir_all(root.join("pipelines"))?;
    std::fs::write(root.join("Cargo.toml"), "[workspace]\n")?;
    std::fs::write(
        root.join("pipelines/wharf.toml"),
        format!(
            r#"[[stages]]
name = "dev"
location = "oci:images"
[stages.deploy.docker]
listen = "127.0.0.1:{proxy_port}"
health = {{ path = "/health", interval_ms = 100, start_period_ms = 30000 }}
"#
        ),
    )?;
    let git = |args: &[&str]| checked(Command::new("git").args(args).current_dir(&root));
    git(&["init", "-q", "-b", "main"])?;
    git(&["add", "-A"])?;
    git(&[
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "commit",
        "-qm",
        "bench",
    ])?;
    let xtask = std::env::current_exe().context("finding this xtask binary")?;
    let deploy = |digest: &Digest| -> Result<()> {
        checked(
            Command::new(&xtask)
                .args(["deploy", "dev", "--digest", &digest.to_string(), "--json"])
                .env("WHARF_WORKSPACE", &root)
                .env("GITHUB_ACTOR", "bench"),
        )?;
        Ok(())
    };
    let down = || {
        let _ = Command::new(&xtask)
            .args(["deploy", "dev", "--down"])
            .env("WHARF_WORKSPACE", &root)
            .output();
        remove_script_containers();
    };
    down();
    let result = (|| -> Result<()> {
        // Loads both images into the engine (wharf reuses them by image ID after).
        deploy(&a.0)?;
        deploy(&b.0)?;
        let (mut wharf_times, mut script_times, mut naive_times) = (vec![], vec![], vec![]);
        let (mut wharf_failed, mut naive_failed, mut sent) = (0, 0, 0);
        let ports = [free_port()?, free_port()?];
        // The script and stop-then-run start from a version running, as wharf does.
        sh(&docker_run(SCRIPT_NAMES[1], &b.1.to_string(), ports[1]))?;
        sh(&(docker_run(SCRIPT_NAMES[2], &b.1.to_string(), naive_port)
            + " && "
            + &wait_healthy(naive_port)))?;
        for round in 0..runs {
            let (to, new, old) = match round % 2 {
                0 => (&a, 0, 1),
                _ => (&b, 1, 0),
            };
            let mut contenders: Vec<(&str, Contender)> = vec![
                ("wharf", Box::new(|| deploy(&to.0))),
                (
                    "script",
                    Box::new(move || {
                        sh(&format!(
                            "{} && {} && docker stop -t 10 {old} >/dev/null && docker rm {old} >/dev/null",
                            docker_run(SCRIPT_NAMES[new], &to.1.to_string(), ports[new]),
                            wait_healthy(ports[new]),
                            old = SCRIPT_NAMES[old]
                        ))
                    }),
                ),
                (
                    "naive",
                    Box::new(move || {
                        let name = SCRIPT_NAMES[2];
                        sh(&format!(
                            "docker stop -t 10 {name} >/dev/null && docker rm {name} >/dev/null && {} && {}",
                            docker_run(name, &to.1.to_string(), naive_port),
                            wait_healthy(naive_port)
                        ))
                    }),
                ),
            ];
            contenders.rotate_left(round % 3);
            for (name, contender) in contenders {
                let poller = match name {
                    "wharf" => Some(Poller::start(proxy_port)),
                    "naive" => Some(Poller::start(naive_port)),
                    _ => None,
                };
                let took = timed(contender)?;
                let (failed, count) = poller.map(Poller::finish).unwrap_or_default();
                sent += count;
                match name {
                    "wharf" => {
                        wharf_times.push(took);
                        wharf_failed += failed;
                    }
                    "script" => script_times.push(took),
                    _ => {
                        naive_times.push(took);
                        naive_failed += failed;
                    }
                }
            }
        }
        // The floor of a deploy command: start, config, ledger read, the engine's containers
        // and the proxy asked, the plan printed.
        let mut dry_runs = Vec::new();
        for _ in 0..runs {
            dry_runs.push(timed(|| -> Result<()> {
                checked(
                    Command::new(&xtask)
                        .args(["deploy", "dev", "--digest", &a.0.to_string(), "--dry-run"])
                        .env("WHARF_WORKSPACE", &root),
                )?;
                Ok(())
            })?);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (w, s, n) = (
            median(&mut wharf_times),
            median(&mut script_times),
            median(&mut naive_times),
        );
        println!("bench-deploy: {runs} rounds, each a switch between A and B (medians)");
        println!(
            "  wharf deploy (proxy, health, graceful stop, ledger) {:8.0} ms   failed requests: {wharf_failed}",
            ms(w)
        );
        println!(
            "    its floor, deploy --dry-run (start, config, ledger, engine, proxy) {:8.0} ms",
            ms(median(&mut dry_runs))
        );
        println!(
            "  script: docker run, curl health, stop + rm old      {:8.0} ms   (no stable address: traffic not moved)",
            ms(s)
        );
        println!(
            "  stop, then run, curl health                        {:8.0} ms   failed requests: {naive_failed}",
            ms(n)
        );
        println!(
            "  ratios: wharf / script {:.2}x, wharf / stop-then-run {:.2}x ({sent} requests polled, every 20 ms)",
            ms(w) / ms(s),
            ms(w) / ms(n)
        );
        Ok(())
    })();
    down();
    result
}
