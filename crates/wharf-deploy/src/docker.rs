//! Blue-green on a Docker engine. Each stage has at most two containers, `APP-STAGE-blue`
//! and `APP-STAGE-green`, on the host's network, each listening on a loopback port of its
//! own (given in `listen_env`); wharf's [`proxy`](crate::proxy) listens on the stage's
//! stable address and forwards to the live one.
//!
//! A deploy: start the new color next to the live one, wait for health (the image's
//! HEALTHCHECK as the engine runs it, else HTTP probes), switch the proxy, run the smoke
//! checks through the proxy, then stop the old color gracefully. Until the switch nothing
//! that serves has changed, so a failed health check only removes the new container; a
//! failed smoke check switches back before the old one was ever stopped.
//!
//! The containers carry what the deploy knows as labels (stage, digest, address), so the
//! engine is the only state: nothing is kept on disk but the proxy's control socket, its
//! log and a lock that keeps two deploys of a stage apart.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use wharf_engine::{Container, ContainerSpec, Engine};
use wharf_oci::{Digest, image};
use wharf_promote::{DockerDeploy, SmokeCheck};

use crate::http::{self, Health};
use crate::proxy::Control;
use crate::{Error, ImageSource, Instance, Outcome, Report, Result, Status, Target};

/// The label that names a container's stage: `APP/STAGE`.
pub const LABEL_STAGE: &str = "dev.wharf.deploy";
/// The manifest digest the container runs.
pub const LABEL_DIGEST: &str = "dev.wharf.digest";
/// The container's own loopback address.
pub const LABEL_ADDRESS: &str = "dev.wharf.address";

/// How long a starting proxy gets to answer on its control socket.
const PROXY_START: Duration = Duration::from_secs(10);
/// A bound on waiting for the engine's own HEALTHCHECK verdict (the engine decides when;
/// this only keeps a stuck engine from hanging the deploy).
const ENGINE_HEALTH_LIMIT: Duration = Duration::from_secs(600);
/// Unix socket paths are limited to 108 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

/// A stage on a Docker engine.
pub struct DockerTarget {
    engine: Engine,
    app: String,
    stage: String,
    config: DockerDeploy,
    smoke: Vec<SmokeCheck>,
    state_dir: PathBuf,
    proxy_command: Vec<OsString>,
}

/// What a deploy will do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DockerPlan {
    pub stage: String,
    pub digest: Digest,
    /// The engine's name for the image (`APP:sha256-HEX`).
    pub image: String,
    /// The container to start.
    pub container: String,
    /// The live container, stopped once the new one serves.
    pub retire: Option<String>,
    /// What serves now.
    pub previous: Option<Digest>,
    /// Leftovers (a stopped container, one a crashed deploy left) removed first.
    pub remove_first: Vec<String>,
    /// The stable address (the proxy's).
    pub listen: String,
    pub proxy_running: bool,
    /// The digest already serves from a running container: only the proxy is checked.
    pub unchanged: bool,
    pub health: String,
    pub smoke: Vec<String>,
}

impl fmt::Display for DockerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deploy {} to {} (docker, {})",
            self.digest, self.stage, self.listen
        )?;
        if self.unchanged {
            writeln!(
                f,
                "  {} already serves it: nothing to start",
                self.container
            )?;
            if !self.proxy_running {
                writeln!(f, "  start the proxy on {}", self.listen)?;
            }
            return Ok(());
        }
        for name in &self.remove_first {
            writeln!(f, "  remove leftover container {name}")?;
        }
        writeln!(f, "  start {} from {}", self.container, self.image)?;
        writeln!(f, "  wait for health: {}", self.health)?;
        match self.proxy_running {
            true => writeln!(f, "  switch the proxy on {} to it", self.listen)?,
            false => writeln!(f, "  start the proxy on {}", self.listen)?,
        }
        for check in &self.smoke {
            writeln!(f, "  smoke: {check}")?;
        }
        if let Some(old) = &self.retire {
            writeln!(f, "  stop {old} (SIGTERM, then wait) and remove it")?;
        }
        Ok(())
    }
}

impl DockerTarget {
    /// `app` and `stage` name the containers; `state_dir` holds the proxy's control socket,
    /// log and the deploy lock; `proxy_command` is a program and arguments that run
    /// [`proxy::serve`](crate::proxy::serve) given `--listen ADDR --control PATH --backend
    /// ADDR` (the CLI's hidden `deploy-proxy` subcommand).
    pub fn new(
        engine: Engine,
        app: &str,
        stage: &str,
        config: DockerDeploy,
        smoke: Vec<SmokeCheck>,
        state_dir: PathBuf,
        proxy_command: Vec<OsString>,
    ) -> Result<DockerTarget> {
        let socket = state_dir.join("proxy.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::Io {
                context: format!("{}", socket.display()),
                source: std::io::Error::other(
                    "the path is too long for a Unix socket (at most 100 bytes): move the \
                     workspace to a shorter path",
                ),
            });
        }
        Ok(DockerTarget {
            engine,
            app: app.to_string(),
            stage: stage.to_string(),
            config,
            smoke,
            state_dir,
            proxy_command,
        })
    }

    fn key(&self) -> String {
        format!("{}/{}", self.app, self.stage)
    }

    fn control(&self) -> Control {
        Control::new(self.state_dir.join("proxy.sock"))
    }

    /// The address smoke checks and clients use (see [`url_of`]).
    pub fn url(&self) -> String {
        url_of(&self.config.listen)
    }

    fn containers(&self) -> Result<Vec<Container>> {
        Ok(self.engine.containers_labelled(LABEL_STAGE, &self.key())?)
    }

    /// The container the traffic goes to: the one the proxy forwards to, or, with no proxy
    /// up, a running one.
    fn live<'c>(
        &self,
        containers: &'c [Container],
        backend: Option<SocketAddr>,
    ) -> Option<&'c Container> {
        let address = |c: &Container| c.labels.get(LABEL_ADDRESS).and_then(|a| a.parse().ok());
        match backend {
            Some(backend) => containers
                .iter()
                .find(|c| c.running && address(c) == Some(backend)),
            None => containers.iter().find(|c| c.running),
        }
    }

    fn lock(&self) -> Result<File> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(|source| Error::Io {
                context: format!("creating {}", self.state_dir.display()),
                source,
            })?;
        // The state is not the project's: keep it out of `git status`, as cargo does for
        // target/.
        let ignore = self.state_dir.join(".gitignore");
        if !ignore.exists() {
            let _ = std::fs::write(&ignore, "*\n");
        }
        let path = self.state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                context: format!("opening {}", path.display()),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(format!(
                "another deploy of {} is running (it holds {}); wait for it and run again",
                self.stage,
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
                context: format!("locking {}", path.display()),
                source,
            }),
        }
    }

    /// Starts the proxy forwarding to `backend` and waits until it answers.
    fn start_proxy(&self, backend: SocketAddr) -> Result<()> {
        let log_path = self.state_dir.join("proxy.log");
        let io = |context: String| move |source| Error::Io { context, source };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(format!("opening {}", log_path.display())))?;
        let (program, args) = self
            .proxy_command
            .split_first()
            .ok_or_else(|| Error::Image("no proxy command".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .arg("--listen")
            .arg(&self.config.listen)
            .arg("--control")
            .arg(self.control().path())
            .arg("--backend")
            .arg(backend.to_string())
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(io("cloning the log handle".into()))?,
            )
            .stderr(log)
            // Its own process group: a Ctrl-C meant for this command does not stop it.
            .process_group(0)
            .spawn()
            .map_err(io(format!(
                "starting the proxy ({})",
                program.to_string_lossy()
            )))?;
        let started = Instant::now();
        loop {
            if self.control().backend().ok().flatten() == Some(backend) {
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > PROXY_START {
                if exited.is_none() {
                    let _ = child.kill();
                }
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(Error::Io {
                    context: format!("starting the proxy on {}", self.config.listen),
                    source: std::io::Error::other(format!(
                        "it {} ({}): {}",
                        match exited {
                            Some(status) => format!("exited with {status}"),
                            None => format!("did not answer within {PROXY_START:?}"),
                        },
                        log_path.display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends the traffic to `backend`, starting the proxy if none runs.
    fn route(&self, backend: SocketAddr) -> Result<()> {
        let control = self.control();
        let running = control.backend().map_err(|source| Error::Io {
            context: format!("asking the proxy ({})", control.path().display()),
            source,
        })?;
        match running {
            Some(_) => control.switch(backend).map_err(|source| Error::Io {
                context: format!("switching the proxy to {backend}"),
                source,
            }),
            None => self.start_proxy(backend),
        }
    }

    /// Waits for the new container's health: the engine's verdict on the image's
    /// HEALTHCHECK when it has one, else HTTP probes on the configured path.
    fn wait_healthy(&self, name: &str, address: SocketAddr) -> Result<Health> {
        let first = self.engine.container(name)?;
        if first.as_ref().is_some_and(|c| c.health.is_some()) {
            return self.wait_engine_health(name);
        }
        let mut exited = || match self.engine.container(name) {
            Ok(Some(c)) if c.running && c.state == "running" => None,
            Ok(Some(c)) => Some(format!(
                "the container {} (exit code {})",
                c.state,
                c.exit_code.unwrap_or(-1)
            )),
            Ok(None) => Some("the container disappeared".to_string()),
            Err(e) => Some(e.to_string()),
        };
        Ok(http::wait_healthy(
            address,
            &self.config.health,
            &mut exited,
        ))
    }

    fn wait_engine_health(&self, name: &str) -> Result<Health> {
        let started = Instant::now();
        let mut health = Health {
            healthy: false,
            check: "HEALTHCHECK (the image's, run by the engine)".to_string(),
            probes: Vec::new(),
            reason: String::new(),
        };
        loop {
            let container = self.engine.container(name)?;
            let Some(container) = container else {
                health.reason = "the container disappeared".into();
                return Ok(health);
            };
            health.probes = container.health_log.clone();
            match container.health.as_deref() {
                Some("healthy") => {
                    health.healthy = true;
                    return Ok(health);
                }
                Some("unhealthy") => {
                    health.reason = "the engine reports it unhealthy".into();
                    return Ok(health);
                }
                _ if !container.running => {
                    health.reason = format!(
                        "the container {} (exit code {})",
                        container.state,
                        container.exit_code.unwrap_or(-1)
                    );
                    return Ok(health);
                }
                _ if started.elapsed() > ENGINE_HEALTH_LIMIT => {
                    health.reason = format!("still starting after {ENGINE_HEALTH_LIMIT:?}");
                    return Ok(health);
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Stops the proxy and removes every container of the stage.
    pub fn down(&self) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        self.control().stop().map_err(|source| Error::Io {
            context: "stopping the proxy".into(),
            source,
        })?;
        for container in self.containers()? {
            self.engine
                .stop_container(&container.name, self.config.stop_timeout_secs as i64)?;
            self.engine.remove_container(&container.name)?;
            removed.push(container.name);
        }
        Ok(removed)
    }

    fn report(&self, plan: &DockerPlan, outcome: Outcome) -> Report {
        Report {
            outcome,
            stage: self.stage.clone(),
            digest: plan.digest.clone(),
            previous: plan.previous.clone(),
            instance: plan.container.clone(),
            address: self.config.listen.clone(),
            health: None,
            smoke: Vec::new(),
            logs: String::new(),
        }
    }
}

impl Target for DockerTarget {
    type Plan = DockerPlan;

    fn plan(&self, digest: &Digest) -> Result<DockerPlan> {
        let containers = self.containers()?;
        let backend = self.control().backend().ok().flatten();
        let live = self.live(&containers, backend);
        let digest_of = |c: &Container| c.labels.get(LABEL_DIGEST).and_then(|d| d.parse().ok());
        let previous = live.and_then(digest_of);
        let unchanged = previous.as_ref() == Some(digest);
        let color = match live {
            Some(c) if c.name.ends_with("-blue") => "green",
            _ => "blue",
        };
        let container = match (unchanged, live) {
            (true, Some(live)) => live.name.clone(),
            _ => format!("{}-{}-{color}", self.app, self.stage),
        };
        let remove_first = if unchanged {
            Vec::new()
        } else {
            containers
                .iter()
                .filter(|c| Some(&c.name) != live.map(|l| &l.name))
                .map(|c| c.name.clone())
                .collect()
        };
        let health = &self.config.health;
        Ok(DockerPlan {
            stage: self.stage.clone(),
            digest: digest.clone(),
            image: format!("{}:{}", self.app, digest.to_string().replace(':', "-")),
            container,
            retire: live.filter(|_| !unchanged).map(|c| c.name.clone()),
            previous,
            remove_first,
            listen: self.config.listen.clone(),
            proxy_running: backend.is_some(),
            unchanged,
            health: format!(
                "the image's HEALTHCHECK, else GET {} every {} ms ({} ms timeout, {} retries after {} ms)",
                health.path,
                health.interval_ms,
                health.timeout_ms,
                health.retries,
                health.start_period_ms
            ),
            smoke: self
                .smoke
                .iter()
                .map(|s| format!("GET {}{} -> {}", self.url(), s.path, s.status))
                .collect(),
        })
    }

    fn apply(
        &self,
        plan: &DockerPlan,
        image_source: &ImageSource<'_>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report> {
        let _lock = self.lock()?;
        // Planned before the lock: another deploy may have finished in between, and this
        // plan would then retire the wrong container.
        let now = self.plan(&plan.digest)?;
        if (&now.retire, &now.container, now.unchanged)
            != (&plan.retire, &plan.container, plan.unchanged)
        {
            return Err(Error::Busy(format!(
                "{} changed since the plan (another deploy ran): run the deploy again",
                self.stage
            )));
        }
        if plan.unchanged {
            let containers = self.containers()?;
            let live = containers
                .iter()
                .find(|c| c.name == plan.container && c.running);
            let address = live
                .and_then(|c| c.labels.get(LABEL_ADDRESS))
                .and_then(|a| a.parse().ok());
            if let (false, Some(address)) = (plan.proxy_running, address) {
                progress(&format!("starting the proxy on {}", self.config.listen));
                self.start_proxy(address)?;
            }
            return Ok(self.report(plan, Outcome::Unchanged));
        }
        for name in &plan.remove_first {
            progress(&format!("removing leftover container {name}"));
            self.engine.remove_container(name)?;
        }

        let image = image_source().map_err(Error::Image)?;
        let config = image::manifest(image.as_ref())?.config.digest;
        let name: wharf_oci::Reference = plan
            .image
            .parse()
            .map_err(|e| Error::Image(format!("{}: {e}", plan.image)))?;
        // Reused only when the engine's image under that name is this config (the engine's
        // image ID is the config digest); anything else is loaded again.
        if self.engine.image_id(&name)?.as_deref() != Some(config.to_string().as_str()) {
            progress(&format!("loading {} into the engine", plan.image));
            self.engine.load(image.as_ref(), &name)?;
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|source| Error::Io {
                context: "finding a free loopback port".into(),
                source,
            })?
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut env = self.config.env.clone();
        env.push(format!("{}={address}", self.config.listen_env));
        let spec = ContainerSpec {
            name: plan.container.clone(),
            image: config.to_string(),
            env,
            labels: BTreeMap::from([
                (LABEL_STAGE.to_string(), self.key()),
                (LABEL_DIGEST.to_string(), plan.digest.to_string()),
                (LABEL_ADDRESS.to_string(), address.to_string()),
            ]),
            restart: Some(self.config.restart.clone()),
            memory_bytes: self.config.memory_bytes().map_err(Error::Image)?,
            nano_cpus: self.config.nano_cpus().map_err(Error::Image)?,
            stop_timeout_secs: Some(self.config.stop_timeout_secs as i64),
            host_network: true,
        };
        progress(&format!("starting {} on {address}", plan.container));
        self.engine.start_container(&spec)?;

        progress("waiting for health");
        let health = self.wait_healthy(&plan.container, address)?;
        let mut report = self.report(plan, Outcome::Healthy);
        if !health.healthy {
            report.outcome = Outcome::Failed;
            report.logs = self
                .engine
                .container_logs(&plan.container, 20)
                .unwrap_or_default();
            report.health = Some(health);
            progress(&format!("unhealthy: removing {}", plan.container));
            self.engine.remove_container(&plan.container)?;
            return Ok(report);
        }
        report.health = Some(health);

        progress(&format!(
            "switching {} to {}",
            self.config.listen, plan.container
        ));
        if let Err(e) = self.route(address) {
            // Nothing switched (a proxy that cannot bind its address, say): the new
            // container goes, the old one still has the traffic.
            let _ = self.engine.remove_container(&plan.container);
            return Err(e);
        }

        if !self.smoke.is_empty() {
            progress("smoke checks");
            report.smoke = http::smoke(&self.url(), &self.smoke);
            if report.smoke.iter().any(|s| !s.passed) {
                let old = plan
                    .retire
                    .as_ref()
                    .and_then(|old| self.engine.container(old).ok().flatten())
                    .and_then(|c| c.labels.get(LABEL_ADDRESS).and_then(|a| a.parse().ok()));
                match old {
                    Some(old) => self.route(old)?,
                    None => self.control().stop().map_err(|source| Error::Io {
                        context: "stopping the proxy".into(),
                        source,
                    })?,
                }
                report.outcome = match plan.retire {
                    Some(_) => Outcome::RolledBack,
                    None => Outcome::Failed,
                };
                report.logs = self
                    .engine
                    .container_logs(&plan.container, 20)
                    .unwrap_or_default();
                self.engine.remove_container(&plan.container)?;
                return Ok(report);
            }
        }

        if let Some(old) = &plan.retire {
            progress(&format!("stopping {old}"));
            self.engine
                .stop_container(old, self.config.stop_timeout_secs as i64)?;
            self.engine.remove_container(old)?;
        }
        Ok(report)
    }

    fn status(&self) -> Result<Status> {
        let containers = self.containers()?;
        let backend = self.control().backend().ok().flatten();
        let live = self.live(&containers, backend).map(|c| c.name.clone());
        let instances: Vec<Instance> = containers
            .iter()
            .map(|c| Instance {
                name: c.name.clone(),
                digest: c.labels.get(LABEL_DIGEST).and_then(|d| d.parse().ok()),
                address: c.labels.get(LABEL_ADDRESS).cloned().unwrap_or_default(),
                state: c.state.clone(),
                health: c.health.clone(),
                live: backend.is_some() && live.as_ref() == Some(&c.name),
            })
            .collect();
        Ok(Status {
            stage: self.stage.clone(),
            target: "docker".into(),
            serving: instances
                .iter()
                .find(|i| i.live)
                .and_then(|i| i.digest.clone()),
            address: self.config.listen.clone(),
            entry_up: backend.is_some(),
            instances,
        })
    }
}

/// The proxy's state directory for `stage` under `root` (the CLI's choice).
pub fn state_dir(root: &Path, stage: &str) -> PathBuf {
    root.join(".wharf").join("deploy").join(stage)
}

/// `http://` and the proxy's `listen` address, with an unspecified IP as loopback: where
/// smoke checks reach a stage on this host.
pub fn url_of(listen: &str) -> String {
    let listen: SocketAddr = listen.parse().unwrap_or(([127, 0, 0, 1], 0).into());
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{ip}:{}", listen.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_url_of_a_wildcard_listen_is_loopback() {
        assert_eq!(super::url_of("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(super::url_of("[::]:80"), "http://127.0.0.1:80");
        assert_eq!(super::url_of("[::1]:80"), "http://[::1]:80");
        assert_eq!(super::url_of("10.0.0.5:9000"), "http://10.0.0.5:9000");
    }
}
