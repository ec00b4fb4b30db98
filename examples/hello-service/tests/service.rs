//! Runs the real binary on a kernel-picked port and talks HTTP to it over a plain TCP
//! socket, the way a container health check or a Prometheus scrape would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// Liveness bound for anything the service must do by itself (start, answer, exit);
/// generous because the machine may be busy, not a performance target.
const PATIENCE: Duration = Duration::from_secs(20);

/// The running binary; killed on drop so a failed test leaves no process behind.
struct Service {
    child: Child,
    addr: SocketAddr,
    stderr: Receiver<String>,
}

impl Service {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hello-service"))
            .args(args)
            .env_remove("LISTEN_ADDR")
            .env_remove("HELLO_VERSION")
            .env_remove("HEALTH_FAIL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting hello-service");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let stderr = lines(child.stderr.take().unwrap());
        let mut service = Service {
            child,
            addr: ([0, 0, 0, 0], 0).into(),
            stderr,
        };
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("no `listening on` line on stdout");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        service.addr = addr
            .trim_end()
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        service
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// Waits, up to `PATIENCE`, for a line on stderr that contains `text`.
    fn wait_stderr(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(e) => panic!("no {text:?} on stderr: {e}"),
            }
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling hello-service") {
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("hello-service did not exit within {PATIENCE:?}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stderr: ChildStderr) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connecting");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Reads a whole response; the request asked for `Connection: close`, so it ends at EOF.
fn read_response(mut stream: TcpStream) -> Response {
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("reading the response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    Response {
        status: status.unwrap_or_else(|| panic!("no status in {head:?}")),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = connect(addr);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sending the request");
    read_response(stream)
}

#[test]
fn hello_version_names_the_build_and_health_fail_fails_the_health_check() {
    let service = Service::start(&["--listen", "127.0.0.1:0"], &[("HELLO_VERSION", "B")]);
    let health = get(service.addr, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok B"));
    let failing = Service::start(&["--listen", "127.0.0.1:0"], &[("HEALTH_FAIL", "1")]);
    let health = get(failing.addr, "/health");
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(get(failing.addr, "/metrics").status, 200);
}

#[test]
fn serves_health_metrics_and_404_then_stops_on_sigterm() {
    let mut service = Service::start(&["--listen", "127.0.0.1:0"], &[]);
    for _ in 0..3 {
        let health = get(service.addr, "/health");
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    }
    assert_eq!(get(service.addr, "/nope").status, 404);
    assert_eq!(get(service.addr, "/nope/../health?x=1").status, 404);

    let metrics = get(service.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .head
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        metrics.head
    );
    for line in [
        r#"hello_service_requests_total{path="/health"} 3"#,
        r#"hello_service_requests_total{path="other"} 2"#,
        r#"hello_service_requests_total{path="/metrics"} 1"#,
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "no line {line:?} in\n{}",
            metrics.body
        );
    }

    service.signal("TERM");
    service.wait_stderr("shutting down");
    let status = service.wait_exit();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn stops_on_sigint() {
    let mut service = Service::start(&["--listen=127.0.0.1:0"], &[]);
    service.signal("INT");
    service.wait_stderr("shutting down");
    let status = service.wait_exit();
    assert!(status.success(), "exit status after SIGINT: {status}");
}

#[test]
fn finishes_a_request_in_flight_and_ignores_idle_connections() {
    let mut service = Service::start(&[], &[("LISTEN_ADDR", "127.0.0.1:0")]);
    // An idle connection must not hold up the exit; a started request must be answered.
    let _idle = connect(service.addr);
    let mut in_flight = connect(service.addr);
    write!(
        in_flight,
        "GET /health HTTP/1.1\r\nHost: {}\r\n",
        service.addr
    )
    .unwrap();
    in_flight.flush().unwrap();
    // The server accepts and polls connections in order, so once a later connection has
    // been answered, the first half above has been read: the request is in flight.
    assert_eq!(get(service.addr, "/health").status, 200);

    service.signal("TERM");
    service.wait_stderr("shutting down");
    write!(in_flight, "Connection: close\r\n\r\n").unwrap();
    let response = read_response(in_flight);
    assert_eq!((response.status, response.body.as_str()), (200, "ok"));

    let status = service.wait_exit();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn listen_flag_wins_over_the_environment() {
    let mut service = Service::start(
        &["--listen", "127.0.0.1:0"],
        &[("LISTEN_ADDR", "not an address")],
    );
    assert_eq!(get(service.addr, "/health").status, 200);
    service.signal("TERM");
    assert!(service.wait_exit().success());
}

/// Runs the binary with arguments it must refuse; returns its stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_hello-service"))
        .args(args)
        .env_remove("LISTEN_ADDR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hello-service");
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx
        .recv_timeout(PATIENCE)
        .expect("hello-service did not exit")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} {env:?}");
    stderr
}

#[test]
fn bad_arguments_exit_with_status_2() {
    let cases = [
        (
            refused(&["--listen", "localhost:8080"], &[]),
            "invalid --listen address \"localhost:8080\"",
        ),
        (
            refused(&[], &[("LISTEN_ADDR", "8080")]),
            "invalid LISTEN_ADDR address \"8080\"",
        ),
        (refused(&["--listen"], &[]), "--listen needs an address"),
        (
            refused(&["--port", "80"], &[]),
            "unexpected argument \"--port\"",
        ),
    ];
    for (stderr, message) in cases {
        assert!(
            stderr.contains(message),
            "expected {message:?} in {stderr:?}"
        );
    }
}

#[test]
fn check_exits_0_for_a_healthy_instance_and_1_otherwise() {
    let check = |addr: SocketAddr| {
        Command::new(env!("CARGO_BIN_EXE_hello-service"))
            .args(["--check", "--listen", &addr.to_string()])
            .env_remove("LISTEN_ADDR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let healthy = Service::start(&["--listen", "127.0.0.1:0"], &[]);
    let out = check(healthy.addr);
    assert!(out.status.success(), "{out:?}");
    let failing = Service::start(&["--listen", "127.0.0.1:0"], &[("HEALTH_FAIL", "1")]);
    let out = check(failing.addr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("503"),
        "{out:?}"
    );
    let gone = failing.addr;
    drop(failing);
    assert_eq!(check(gone).status.code(), Some(1));
}
