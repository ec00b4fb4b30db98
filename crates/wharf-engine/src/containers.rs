//! Containers on the engine: the few calls a blue-green deploy makes (create and start,
//! inspect, list by label, stop gracefully, remove, read the last log lines).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HealthStatusEnum, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;

use crate::{Engine, Error, Result};

/// What to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    /// An image the engine has: its ID (`sha256:...`) or a name.
    pub image: String,
    /// `NAME=VALUE`, added to the image's own.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `no`, `always`, `unless-stopped` or `on-failure`; `None`: the engine's default (no).
    pub restart: Option<String>,
    pub memory_bytes: Option<i64>,
    /// CPU quota in billionths of a CPU (`docker run --cpus 0.5` is 500_000_000).
    pub nano_cpus: Option<i64>,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_timeout_secs: Option<i64>,
    /// Share the host's network namespace (`--network host`): the container listens on the
    /// host's loopback, where nothing but the host reaches it.
    pub host_network: bool,
}

/// A container as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The engine's image ID (the config's digest).
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
    /// `created`, `running`, `exited`, ... as the engine says it.
    pub state: String,
    pub exit_code: Option<i64>,
    /// The engine's verdict on the image's HEALTHCHECK: `starting`, `healthy` or
    /// `unhealthy`; `None` when the container has no health check.
    pub health: Option<String>,
    /// The last health check outputs (the engine keeps five), for error messages.
    pub health_log: Vec<String>,
}

impl Engine {
    /// Creates the container and starts it.
    pub fn start_container(&self, spec: &ContainerSpec) -> Result<String> {
        let restart = spec
            .restart
            .as_deref()
            .map(|name| {
                let name = match name {
                    "no" => RestartPolicyNameEnum::NO,
                    "always" => RestartPolicyNameEnum::ALWAYS,
                    "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                    "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                    other => {
                        return Err(Error::Engine {
                            action: "start",
                            name: spec.name.clone(),
                            why: format!(
                                "unknown restart policy {other:?} (no, always, unless-stopped, on-failure)"
                            ),
                        });
                    }
                };
                Ok(RestartPolicy {
                    name: Some(name),
                    maximum_retry_count: None,
                })
            })
            .transpose()?;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone().into_iter().collect::<HashMap<_, _>>()),
            stop_timeout: spec.stop_timeout_secs,
            host_config: Some(HostConfig {
                network_mode: spec.host_network.then(|| "host".to_string()),
                restart_policy: restart,
                memory: spec.memory_bytes,
                nano_cpus: spec.nano_cpus,
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let failed = |action, e: bollard::errors::Error| Error::Engine {
            action,
            name: spec.name.clone(),
            why: e.to_string(),
        };
        let created = self
            .runtime
            .block_on(self.docker.create_container(Some(options), body))
            .map_err(|e| failed("create", e))?;
        self.runtime
            .block_on(self.docker.start_container(&created.id, None))
            .map_err(|e| failed("start", e))?;
        Ok(created.id)
    }

    /// The container `name` (or ID), or `None` when the engine has none.
    pub fn container(&self, name: &str) -> Result<Option<Container>> {
        let inspect = match self
            .runtime
            .block_on(self.docker.inspect_container(name, None))
        {
            Ok(inspect) => inspect,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => {
                return Err(Error::Engine {
                    action: "inspect",
                    name: name.to_string(),
                    why: e.to_string(),
                });
            }
        };
        let state = inspect.state.unwrap_or_default();
        let health = state.health.unwrap_or_default();
        let health_status = match health.status {
            Some(HealthStatusEnum::STARTING) => Some("starting"),
            Some(HealthStatusEnum::HEALTHY) => Some("healthy"),
            Some(HealthStatusEnum::UNHEALTHY) => Some("unhealthy"),
            _ => None,
        };
        Ok(Some(Container {
            id: inspect.id.unwrap_or_default(),
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image_id: inspect.image.unwrap_or_default(),
            labels: inspect
                .config
                .and_then(|c| c.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            running: state.running.unwrap_or(false),
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            exit_code: state.exit_code,
            health: health_status.map(str::to_string),
            health_log: health
                .log
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    format!(
                        "exit {}: {}",
                        r.exit_code.unwrap_or(-1),
                        r.output.unwrap_or_default().trim()
                    )
                })
                .collect(),
        }))
    }

    /// Every container (running or not) with the label `key=value`, by name.
    pub fn containers_labelled(&self, key: &str, value: &str) -> Result<Vec<Container>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{key}={value}")],
            )])),
            ..Default::default()
        };
        let listed = self
            .runtime
            .block_on(self.docker.list_containers(Some(options)))
            .map_err(|e| Error::Engine {
                action: "list containers labelled",
                name: format!("{key}={value}"),
                why: e.to_string(),
            })?;
        let mut out = Vec::new();
        for summary in listed {
            // Gone between the list and the inspect: not there any more.
            if let Some(id) = summary.id
                && let Some(container) = self.container(&id)?
            {
                out.push(container);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Stops the container: its stop signal (SIGTERM unless the image says otherwise), then
    /// SIGKILL after `timeout_secs`. Stopping a stopped container is not an error.
    pub fn stop_container(&self, name: &str, timeout_secs: i64) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(timeout_secs.clamp(0, i32::MAX as i64) as i32),
            signal: None,
        };
        match self
            .runtime
            .block_on(self.docker.stop_container(name, Some(options)))
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(Error::Engine {
                action: "stop",
                name: name.to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// Removes the container (killing it if it still runs); a missing one is not an error.
    pub fn remove_container(&self, name: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self
            .runtime
            .block_on(self.docker.remove_container(name, Some(options)))
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(Error::Engine {
                action: "remove",
                name: name.to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// The last `lines` lines the container wrote (stdout and stderr), for error messages.
    pub fn container_logs(&self, name: &str, lines: usize) -> Result<String> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let mut out = String::new();
            let mut stream = self.docker.logs(name, Some(options));
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::Engine {
                    action: "read the logs of",
                    name: name.to_string(),
                    why: e.to_string(),
                })?;
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
            Ok(out)
        })
    }
}
