//! HTTP checks: the health probes a new container must pass and the smoke checks a deployed
//! stage must pass.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wharf_promote::{HealthCheck, SmokeCheck};

/// The blocking client both use, rustls with ring for https. `direct`: no proxy from the
/// environment (`HTTP_PROXY` and the like), for this host's loopback, which a proxy would not
/// reach; a stage's own URL goes through them as any client of the stage would.
fn client(direct: bool) -> Result<reqwest::blocking::Client, String> {
    // reqwest is built without a crypto provider (no C code); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none());
    let builder = if direct { builder.no_proxy() } else { builder };
    builder.build().map_err(|e| format!("no HTTP client: {e}"))
}

/// Whether `url` names this host's loopback (`127.x`, `[::1]`, `localhost`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One GET: the status and body, or why there is none, and how long it took.
fn get(
    client: &reqwest::blocking::Client,
    url: &str,
    timeout: Duration,
) -> (Result<(u16, String), String>, Duration) {
    let started = Instant::now();
    let result = client
        .get(url)
        .timeout(timeout)
        .send()
        .and_then(|response| {
            let status = response.status().as_u16();
            response.text().map(|body| (status, body))
        })
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else if e.is_connect() {
                "connection refused".to_string()
            } else {
                e.without_url().to_string()
            }
        });
    (result, started.elapsed())
}

/// How a new container's health check ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub healthy: bool,
    /// What was checked: `GET http://127.0.0.1:PORT/health` or `HEALTHCHECK`.
    pub check: String,
    /// The last probes (at most five), oldest first: `503 failing` or `connection refused`.
    pub probes: Vec<String>,
    /// Why it is unhealthy (empty when healthy).
    #[serde(default)]
    pub reason: String,
}

impl Health {
    /// One line for people: the check, the verdict and the last probe.
    pub fn summary(&self) -> String {
        let last = self.probes.last().map(String::as_str).unwrap_or("no probe");
        if self.healthy {
            format!("{}: healthy ({last})", self.check)
        } else {
            format!("{}: {} (last probe: {last})", self.check, self.reason)
        }
    }
}

/// Probes `GET http://ADDR{path}` as Docker's HEALTHCHECK would: every `interval_ms`, each
/// within `timeout_ms`, healthy at the first 2xx; failures count only after
/// `start_period_ms`, and `retries` of them in a row are unhealthy. `exited` is asked
/// before each probe and ends the wait at once with its reason (the container died).
pub fn wait_healthy(
    addr: SocketAddr,
    check: &HealthCheck,
    exited: &mut dyn FnMut() -> Option<String>,
) -> Health {
    let url = format!("http://{addr}{}", check.path);
    let mut health = Health {
        healthy: false,
        check: format!("GET {url}"),
        probes: Vec::new(),
        reason: String::new(),
    };
    let client = match client(true) {
        Ok(client) => client,
        Err(e) => {
            health.reason = e;
            return health;
        }
    };
    let started = Instant::now();
    let start_period = Duration::from_millis(check.start_period_ms);
    let interval = Duration::from_millis(check.interval_ms);
    let timeout = Duration::from_millis(check.timeout_ms);
    let mut failures = 0;
    loop {
        if let Some(why) = exited() {
            health.reason = why;
            return health;
        }
        let (result, _) = get(&client, &url, timeout);
        let probe = match &result {
            Ok((status, body)) => format!("{status} {}", first_line(body)),
            Err(e) => e.clone(),
        };
        if health.probes.len() == 5 {
            health.probes.remove(0);
        }
        health.probes.push(probe);
        if matches!(result, Ok((200..=299, _))) {
            health.healthy = true;
            return health;
        }
        if started.elapsed() >= start_period {
            failures += 1;
            if failures >= check.retries.max(1) {
                health.reason = format!(
                    "unhealthy: {failures} failed probe(s) in a row after the {} ms start period",
                    check.start_period_ms
                );
                return health;
            }
        }
        std::thread::sleep(interval);
    }
}

fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    line.chars().take(120).collect()
}

/// One smoke check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub url: String,
    pub passed: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// What failed: the status, the missing text, the latency, or the connection.
    #[serde(default)]
    pub problem: String,
}

/// Runs every check against `base` (e.g. `http://127.0.0.1:8080`), one GET each.
pub fn smoke(base: &str, checks: &[SmokeCheck]) -> Vec<SmokeResult> {
    let base = base.trim_end_matches('/');
    let client = client(is_loopback(base));
    checks
        .iter()
        .map(|check| {
            let url = format!("{base}{}", check.path);
            let mut result = SmokeResult {
                url: url.clone(),
                passed: false,
                status: None,
                latency_ms: 0,
                problem: String::new(),
            };
            let client = match &client {
                Ok(client) => client,
                Err(e) => {
                    result.problem = e.clone();
                    return result;
                }
            };
            let limit = Duration::from_millis(check.max_latency_ms);
            let (answer, took) = get(client, &url, limit);
            result.latency_ms = took.as_millis() as u64;
            result.problem = match answer {
                Err(e) => e,
                Ok((status, body)) => {
                    result.status = Some(status);
                    if status != check.status {
                        format!("status {status}, expected {}", check.status)
                    } else if let Some(text) = check
                        .body_contains
                        .as_ref()
                        .filter(|text| !body.contains(text.as_str()))
                    {
                        format!(
                            "the body does not contain {text:?}: {:?}",
                            first_line(&body)
                        )
                    } else if took > limit {
                        format!(
                            "took {} ms, the limit is {} ms",
                            took.as_millis(),
                            limit.as_millis()
                        )
                    } else {
                        String::new()
                    }
                }
            };
            result.passed = result.problem.is_empty();
            result
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Answers every request with `status` and `body`, counting requests.
    fn server(status: u16, body: &'static str) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        addr
    }

    fn quick(retries: u32) -> HealthCheck {
        HealthCheck {
            path: "/health".into(),
            interval_ms: 10,
            timeout_ms: 2000,
            retries,
            start_period_ms: 0,
        }
    }

    #[test]
    fn a_2xx_is_healthy_and_retries_failures_are_not() {
        let ok = wait_healthy(server(200, "ok"), &quick(3), &mut || None);
        assert!(ok.healthy, "{ok:?}");
        assert_eq!(ok.probes, ["200 ok"]);

        let failing = wait_healthy(server(503, "failing"), &quick(3), &mut || None);
        assert!(!failing.healthy);
        assert_eq!(failing.probes.len(), 3, "{failing:?}");
        assert!(
            failing.summary().contains("503 failing"),
            "{}",
            failing.summary()
        );
    }

    #[test]
    fn an_exited_container_ends_the_wait_with_its_reason() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut asked = 0;
        let health = wait_healthy(dead, &quick(100), &mut || {
            asked += 1;
            (asked > 2).then(|| "exited with code 1".to_string())
        });
        assert!(!health.healthy);
        assert_eq!(health.reason, "exited with code 1");
        assert_eq!(health.probes, ["connection refused", "connection refused"]);
    }

    #[test]
    fn loopback_urls_are_told_from_others() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://localhost",
            "http://[::1]:80/x",
            "http://user@127.0.0.2:1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://staging.example.com",
            "http://10.0.0.1:80",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn smoke_checks_status_body_and_latency() {
        let addr = server(200, "ok B");
        let check = |path: &str, status, body: Option<&str>, ms| SmokeCheck {
            path: path.into(),
            status,
            body_contains: body.map(str::to_string),
            max_latency_ms: ms,
        };
        let results = smoke(
            &format!("http://{addr}/"),
            &[
                check("/health", 200, Some("ok B"), 5000),
                check("/health", 204, None, 5000),
                check("/health", 200, Some("ok A"), 5000),
            ],
        );
        assert_eq!(results[0].url, format!("http://{addr}/health"));
        assert!(results[0].passed, "{:?}", results[0]);
        assert_eq!(results[1].problem, "status 200, expected 204");
        assert!(results[2].problem.contains("\"ok A\""), "{:?}", results[2]);
    }
}
