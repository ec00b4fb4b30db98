//! The small HTTP service wharf ships as its own example image.
//!
//! `GET /health` answers `ok` (see [`health_response`] for `HELLO_VERSION` and `HEALTH_FAIL`), `GET /metrics` serves request counts in the OpenMetrics text
//! format, any other path is a 404. SIGTERM or SIGINT stop it gracefully: it stops
//! accepting, lets in-flight requests finish and exits with status 0.
//!
//! It is built to run as PID 1 in an empty (`FROM scratch`) image, linked statically, so it
//! never links C code or TLS, never reads a file or resolves a host name, and installs its
//! own signal handlers (the kernel gives PID 1 no default action for SIGTERM or SIGINT).
//!
//! Usage: `hello-service [--check] [--listen ADDR]`. `--check` asks a running instance at
//! ADDR for `/health` and exits 0 on a 200 (a HEALTHCHECK for an image with no shell). ADDR is `IP:PORT`; without the flag, `LISTEN_ADDR`
//! is used, and `0.0.0.0:8080` without either. Once bound, the service prints one line
//! `listening on <addr>` to stdout, which is how tests learn a port picked by the kernel.
//!
//! Exit status: 0 after a signal, 1 when it cannot start or serve, or when requests were
//! still running [`DRAIN_TIMEOUT`] after the signal; 2 for bad arguments.

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: hello-service [--check] [--listen IP:PORT]  (default: $LISTEN_ADDR, then 0.0.0.0:8080; --check: exit 0 when GET /health there answers 200)";
const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// How long in-flight requests get after a signal. Below the 30 s that Docker and
/// Kubernetes wait before SIGKILL, so the service exits on its own terms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Requests by `path` label: `/health`, `/metrics` or `other`.
type Requests = Family<[(&'static str, &'static str); 1], Counter>;

struct Metrics {
    registry: Registry,
    requests: Requests,
}

// One thread: the multi-thread runtime reads cgroup and /proc files to size its pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let env = std::env::var("LISTEN_ADDR").ok().filter(|v| !v.is_empty());
    // A container health check (HEALTHCHECK CMD ["/app/hello-service", "--check"]): the
    // image has no shell and no curl, so the binary asks itself.
    if args.first().is_some_and(|a| a == "--check") {
        return match listen_addr(args[1..].to_vec(), env) {
            Ok(addr) => check(addr),
            Err(msg) => {
                eprintln!("hello-service: {msg}\n{USAGE}");
                ExitCode::from(2)
            }
        };
    }
    let addr = match listen_addr(args, env) {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("hello-service: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("hello-service: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `GET /health` on the service's own address (loopback when it listens on every address):
/// exit 0 on a 200, 1 otherwise, within a few seconds.
fn check(addr: SocketAddr) -> ExitCode {
    use std::io::Read;
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip => ip,
    };
    let target = SocketAddr::new(ip, addr.port());
    let timeout = Duration::from_secs(3);
    let answer = std::net::TcpStream::connect_timeout(&target, timeout).and_then(|mut stream| {
        stream.set_read_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    });
    match answer {
        Ok(response) if response.starts_with("HTTP/1.1 200 ") => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!(
                "unhealthy: {}",
                response.lines().next().unwrap_or("no answer")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {target}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--listen` wins over `LISTEN_ADDR`, which wins over the default.
fn listen_addr(args: Vec<String>, env: Option<String>) -> Result<SocketAddr, String> {
    let mut flag = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            flag = Some(
                args.next()
                    .ok_or("--listen needs an address, e.g. --listen 127.0.0.1:8080")?,
            );
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            flag = Some(value.to_owned());
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    let (value, from) = match (flag, env) {
        (Some(v), _) => (v, "--listen"),
        (None, Some(v)) => (v, "LISTEN_ADDR"),
        (None, None) => (DEFAULT_LISTEN.to_owned(), "default"),
    };
    value.parse().map_err(|_| {
        format!("invalid {from} address {value:?}: expected IP:PORT such as 0.0.0.0:8080 (host names are not resolved)")
    })
}

async fn serve(addr: SocketAddr) -> Result<(), String> {
    // Installed before the port is announced: a signal sent by whoever read that line must
    // find a handler, and as PID 1 an unhandled SIGTERM would simply be ignored.
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| format!("installing the SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| format!("installing the SIGINT handler: {e}"))?;

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    let mut out = std::io::stdout().lock();
    // Flushed because stdout is a pipe under tests and a container runtime; a closed stdout
    // is no reason to stop serving, so a write error is ignored.
    let _ = writeln!(out, "listening on {local}").and_then(|()| out.flush());
    drop(out);

    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("shutting down");
        // A client that keeps a request open must not keep the process alive until SIGKILL.
        tokio::spawn(async {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
            eprintln!(
                "hello-service: requests still running after {DRAIN_TIMEOUT:?}, exiting anyway"
            );
            std::process::exit(1);
        });
    };
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown)
        .into_future()
        .await
        .map_err(|e| format!("serving on {local}: {e}"))
}

/// What `GET /health` answers: `ok`, or `ok VERSION` with `HELLO_VERSION` set (so two
/// deploys of the same binary are told apart); `HEALTH_FAIL=1` makes it fail with 503 (for
/// testing what a deploy does with a container that never becomes healthy).
fn health_response() -> (StatusCode, String) {
    if std::env::var("HEALTH_FAIL").is_ok_and(|v| v == "1") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "failing: HEALTH_FAIL=1".to_string(),
        );
    }
    match std::env::var("HELLO_VERSION") {
        Ok(version) if !version.is_empty() => (StatusCode::OK, format!("ok {version}")),
        _ => (StatusCode::OK, "ok".to_string()),
    }
}

fn app() -> Router {
    let health = health_response();
    let mut registry = Registry::default();
    let requests = Requests::default();
    registry.register(
        "hello_service_requests",
        "HTTP requests received, by path",
        requests.clone(),
    );
    // Every series exists from the start, so a scrape never sees a counter appear late.
    for path in ["/health", "/metrics", "other"] {
        let _ = requests.get_or_create(&[("path", path)]);
    }
    let metrics = Arc::new(Metrics { registry, requests });
    Router::new()
        .route(
            "/health",
            get(move || {
                let health = health.clone();
                async move { health }
            }),
        )
        .route("/metrics", get(metrics_text))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        // `layer`, not `route_layer`, so the fallback's 404s are counted too.
        .layer(middleware::from_fn_with_state(metrics.clone(), count))
        .with_state(metrics)
}

async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    // A fixed set of labels: one per raw path would let any client grow memory without bound.
    let path = match req.uri().path() {
        "/health" => "/health",
        "/metrics" => "/metrics",
        _ => "other",
    };
    metrics.requests.get_or_create(&[("path", path)]).inc();
    next.run(req).await
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut body = String::new();
    match encode(&mut body, &metrics.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
