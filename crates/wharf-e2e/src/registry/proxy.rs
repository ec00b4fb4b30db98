//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a registry: answers the first
//! requests with 503 and `Retry-After`, and resets (RST) chosen connections in the middle
//! of a request body. It forwards request by request on kept-alive connections and
//! rewrites nothing but `Location` headers that point at the upstream host.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::http::{self, CopyError, Framing, Head, Server, Tracker};

/// Idle and read timeout on client connections.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Read timeout on upstream connections (a registry may take a while to finish a blob).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// Most requests served on one connection.
const MAX_REQUESTS_PER_CONNECTION: usize = 100_000;
/// Largest body forwarded (or drained) in one message.
const MAX_BODY: u64 = 8 * 1024 * 1024 * 1024;
/// Most interim (1xx) responses before the final one.
const MAX_INTERIM: usize = 10;

/// What to break. `FaultPlan::default()` breaks nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Answer `503 Service Unavailable` with `Retry-After: retry_after_secs` to the first
    /// N requests (counted over all connections), without forwarding them.
    pub unavailable_first: usize,
    pub retry_after_secs: u64,
    /// Reset every Kth connection that forwards a request body (the Kth, 2Kth, ...
    /// connection to reach a request with a body; connections that only GET or HEAD are
    /// not counted, so a reset always hits an upload): after reading `reset_after_bytes`
    /// of that body, close the client socket with SO_LINGER 0 (RST).
    pub reset_every: Option<usize>,
    /// Body bytes read before the reset (as on the wire, chunk framing included). Default:
    /// half the Content-Length (at least 1), or 1 byte of a chunked body.
    pub reset_after_bytes: Option<u64>,
}

/// What the proxy did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// HTTP requests received (answered with 503, forwarded, or reset).
    pub requests: usize,
    /// Requests answered with an injected 503.
    pub injected_503: usize,
    /// Connections reset in the middle of a request body.
    pub resets: usize,
    /// Requests forwarded upstream in full (head and body).
    pub forwarded: usize,
    /// Client connections accepted.
    pub connections: usize,
}

#[derive(Default)]
struct Counters {
    plan: FaultPlan,
    /// Requests since the plan was set.
    plan_requests: usize,
    /// Connections that reached a request body since the plan was set.
    plan_connections: usize,
    stats: FaultStats,
}

struct Shared {
    counters: Mutex<Counters>,
    upstream: String,
    host: OnceLock<String>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy; stops (closing every connection) on drop.
pub struct FaultProxy {
    server: Server,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Proxies `127.0.0.1:PORT` (a new port) to `upstream` (`host:port`) with `plan`.
    pub fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        let shared = Arc::new(Shared {
            counters: Mutex::new(Counters {
                plan,
                ..Counters::default()
            }),
            upstream: upstream.to_string(),
            host: OnceLock::new(),
        });
        let server = Server::start("fault-proxy", {
            let shared = shared.clone();
            move |stream, tracker| serve(stream, tracker, &shared)
        })
        .expect("binding the fault proxy on 127.0.0.1");
        let _ = shared.host.set(server.host().to_string());
        FaultProxy { server, shared }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.server.host().to_string()
    }

    /// The upstream `host:port`.
    pub fn upstream(&self) -> String {
        self.shared.upstream.clone()
    }

    /// Counts so far.
    pub fn stats(&self) -> FaultStats {
        self.shared.lock().stats
    }

    /// Replaces the plan; its counts (first N requests, every Kth connection) start over
    /// from now. Connections that already sent a body keep their reset decision.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut c = self.shared.lock();
        c.plan = plan;
        c.plan_requests = 0;
        c.plan_connections = 0;
    }
}

struct Upstream {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    _guard: http::TrackGuard,
}

fn connect_upstream(shared: &Shared, tracker: &Tracker) -> io::Result<Upstream> {
    let addr = shared
        .upstream
        .parse::<std::net::SocketAddr>()
        .map_err(|e| http::invalid(format!("bad upstream {:?}: {e}", shared.upstream)))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let guard = tracker.track(&stream);
    Ok(Upstream {
        reader: BufReader::new(stream.try_clone()?),
        writer: stream,
        _guard: guard,
    })
}

fn serve(client: TcpStream, tracker: &Tracker, shared: &Shared) {
    shared.lock().stats.connections += 1;
    let _ = client.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = client.set_write_timeout(Some(CLIENT_TIMEOUT));
    let _ = client.set_nodelay(true);
    let Ok(reader) = client.try_clone() else {
        return;
    };
    let mut client_r = BufReader::new(reader);
    let mut client_w = &client;
    let mut upstream: Option<Upstream> = None;
    let mut reset_this: Option<bool> = None;
    let proxy_host = shared.host.get().cloned().unwrap_or_default();

    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        // Anything that is not HTTP (e.g. a TLS ClientHello from a client probing for
        // https first) ends the connection without counting as a request.
        let Ok(Some(head)) = http::read_head(&mut client_r) else {
            return;
        };
        let Ok((method, _)) = head.request_line() else {
            return;
        };
        let method = method.to_string();
        let Ok(framing) = http::request_framing(&head) else {
            let _ = http::respond(&mut client_w, 400, "Bad Request", &[], b"", true);
            return;
        };
        let close_after = head.wants_close();
        let expect_continue = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

        let (inject, plan) = {
            let mut c = shared.lock();
            c.stats.requests += 1;
            c.plan_requests += 1;
            let inject = c.plan_requests <= c.plan.unavailable_first;
            if inject {
                c.stats.injected_503 += 1;
            }
            (inject, c.plan.clone())
        };
        if inject {
            let retry_after = plan.retry_after_secs.to_string();
            let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable (injected by FaultProxy)"}]}"#;
            let headers = [
                ("Retry-After", retry_after.as_str()),
                ("Content-Type", "application/json"),
            ];
            // A client waiting for 100 Continue has not sent its body: answer and close.
            let drained =
                !expect_continue && http::drain_body(&mut client_r, framing, MAX_BODY).is_ok();
            let close = close_after || !drained;
            let _ = http::respond(
                &mut client_w,
                503,
                "Service Unavailable",
                &headers,
                body,
                close,
            );
            if close {
                return;
            }
            continue;
        }

        if upstream.is_none() {
            match connect_upstream(shared, tracker) {
                Ok(u) => upstream = Some(u),
                Err(e) => {
                    let msg = format!("fault proxy: connecting to upstream: {e}\n");
                    let _ =
                        http::respond(&mut client_w, 502, "Bad Gateway", &[], msg.as_bytes(), true);
                    return;
                }
            }
        }
        let up = upstream.as_mut().expect("connected above");
        if reset_this.is_none() && framing != Framing::None {
            let mut c = shared.lock();
            c.plan_connections += 1;
            let n = c.plan_connections;
            reset_this = Some(
                c.plan
                    .reset_every
                    .is_some_and(|k| k > 0 && n.is_multiple_of(k)),
            );
        }
        let reset = reset_this == Some(true);

        if up.writer.write_all(&head.raw).is_err() {
            let _ = http::respond(&mut client_w, 502, "Bad Gateway", &[], b"", true);
            return;
        }

        if expect_continue && framing != Framing::None {
            // Let upstream decide: 100 Continue lets the body through, anything else is
            // the final answer and the body is never sent.
            match forward_head(up, &mut client_w, &shared.upstream, &proxy_host) {
                Ok(head) if head.status().is_ok_and(|s| s == 100) => {}
                Ok(head) => {
                    let _ = forward_body(up, &mut client_w, &head, &method);
                    return;
                }
                Err(_) => return,
            }
        }

        if reset && framing != Framing::None {
            let after = plan.reset_after_bytes.unwrap_or(match framing {
                Framing::Length(n) => (n / 2).max(1),
                _ => 1,
            });
            let _ = http::copy_body(
                &mut client_r,
                &mut up.writer,
                framing,
                Some(after),
                MAX_BODY,
            );
            let _ = http::set_linger_zero(&client);
            shared.lock().stats.resets += 1;
            // Returning closes every descriptor of the client socket: RST.
            return;
        }

        match http::copy_body(&mut client_r, &mut up.writer, framing, None, MAX_BODY) {
            Ok(_) => {}
            Err(CopyError::Read(_)) => return,
            Err(CopyError::Write(_)) => {
                // Upstream stopped reading: pass on whatever it answered, then close.
                let _ = forward_response(up, &mut client_w, &method, shared, &proxy_host);
                return;
            }
        }
        shared.lock().stats.forwarded += 1;

        match forward_response(up, &mut client_w, &method, shared, &proxy_host) {
            Ok(true) if !close_after => {}
            _ => return,
        }
    }
}

/// Forwards interim responses and the final response; `Ok(true)` if both connections can
/// carry another request.
fn forward_response(
    up: &mut Upstream,
    client_w: &mut impl Write,
    method: &str,
    shared: &Shared,
    proxy_host: &str,
) -> io::Result<bool> {
    for _ in 0..MAX_INTERIM {
        let head = forward_head(up, client_w, &shared.upstream, proxy_host)?;
        let status = head.status()?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        return forward_body(up, client_w, &head, method);
    }
    Err(http::invalid("too many interim responses".into()))
}

/// Reads one response head from upstream and writes it to the client, with `Location`
/// rewritten from the upstream host to the proxy's.
fn forward_head(
    up: &mut Upstream,
    client_w: &mut impl Write,
    upstream_host: &str,
    proxy_host: &str,
) -> io::Result<Head> {
    let mut head = http::read_head(&mut up.reader)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed before a response",
        )
    })?;
    head.status()?;
    let mut rewritten = false;
    for (name, value) in &mut head.headers {
        if name.eq_ignore_ascii_case("location") {
            let from = format!("//{upstream_host}");
            if value.contains(&from) {
                *value = value.replacen(&from, &format!("//{proxy_host}"), 1);
                rewritten = true;
            }
        }
    }
    if rewritten {
        client_w.write_all(&head.serialize())?;
    } else {
        client_w.write_all(&head.raw)?;
    }
    client_w.flush()?;
    Ok(head)
}

fn forward_body(
    up: &mut Upstream,
    client_w: &mut impl Write,
    head: &Head,
    method: &str,
) -> io::Result<bool> {
    let framing = http::response_framing(head, method)?;
    http::copy_body(&mut up.reader, client_w, framing, None, MAX_BODY).map_err(|e| match e {
        CopyError::Read(e) | CopyError::Write(e) => e,
    })?;
    Ok(!head.wants_close() && framing != Framing::UntilClose && head.status()? != 101)
}
