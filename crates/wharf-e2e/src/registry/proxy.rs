//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a registry. Faults are aimed
//! at named requests (method, a piece of the path, and which of the matching requests:
//! "the 2nd PATCH to /blobs/uploads/"), never at connections or moments, so what the
//! registry received when a fault fires does not depend on timing. It forwards request by
//! request on kept-alive connections and rewrites nothing but `Location` headers that
//! point at the upstream host (and what a fault says).

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::http::{self, CopyError, Framing, Head, Server, Tracker};

/// Idle and read timeout on client connections (also bounds a [`Action::Stall`]).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Read timeout on upstream connections (a registry may take a while to finish a blob).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// Most requests served on one connection.
const MAX_REQUESTS_PER_CONNECTION: usize = 100_000;
/// Largest body forwarded (or drained) in one message.
const MAX_BODY: u64 = 8 * 1024 * 1024 * 1024;
/// Largest response body a rewriting fault reads into memory.
const MAX_REWRITTEN: u64 = 64 * 1024 * 1024;
/// Most interim (1xx) responses before the final one.
const MAX_INTERIM: usize = 10;

/// Which requests a fault hits: those with `method` (any if `None`) whose target (path
/// and query) contains `path`, numbered 1, 2, ... in the order the proxy receives them;
/// the fault hits numbers `from` to `from + count - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub method: Option<String>,
    pub path: String,
    pub from: usize,
    pub count: usize,
}

impl Target {
    /// The `n`th (1-based) `method` request whose target contains `path`.
    pub fn nth(method: &str, path: &str, n: usize) -> Target {
        Target {
            method: Some(method.to_string()),
            path: path.to_string(),
            from: n,
            count: 1,
        }
    }

    /// The first `count` such requests.
    pub fn first(method: &str, path: &str, count: usize) -> Target {
        Target {
            count,
            ..Target::nth(method, path, 1)
        }
    }

    /// Every such request.
    pub fn every(method: &str, path: &str) -> Target {
        Target::first(method, path, usize::MAX)
    }

    /// Every request whatever its method and path.
    pub fn all() -> Target {
        Target {
            method: None,
            path: String::new(),
            from: 1,
            count: usize::MAX,
        }
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && target.contains(&self.path)
    }

    fn hits(&self, ordinal: usize) -> bool {
        ordinal >= self.from && ordinal - self.from < self.count
    }
}

/// What happens to a request a fault hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reset the client connection (RST) before any byte of the request (head included)
    /// reaches the registry.
    ResetBeforeForwarding,
    /// Forward the head and the first `n` bytes of the body (as on the wire), let the
    /// registry finish with the broken-off request (its answer is dropped), then reset the
    /// client connection. The registry's state is settled before the client sees the reset.
    ResetAfterBodyBytes(u64),
    /// Answer with this status, headers and body without forwarding anything.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request and never answer; the connection stays open until the client
    /// closes it (or [`CLIENT_TIMEOUT`]).
    Stall,
    /// Forward the request; pass on the response head and the first `n` bytes of its
    /// body, then stall as [`Action::Stall`].
    StallResponseAfter(u64),
    /// Forward the request; pass on the response with this body (Content-Length adjusted).
    ReplaceResponseBody(Vec<u8>),
    /// Forward the request; pass on the response with header `name` set to `value`.
    SetResponseHeader(String, String),
}

impl Action {
    /// [`Action::Respond`] with a registry-style JSON error body.
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Action {
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        headers.push(("Content-Type".into(), "application/json".into()));
        Action::Respond {
            status,
            headers,
            body: format!(
                r#"{{"errors":[{{"code":"INJECTED","message":"status {status} injected by FaultProxy"}}]}}"#
            )
            .into_bytes(),
        }
    }
}

/// One fault: what it hits and what happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub target: Target,
    pub action: Action,
}

impl Fault {
    pub fn new(target: Target, action: Action) -> Fault {
        Fault { target, action }
    }
}

/// What to break. `FaultPlan::default()` breaks nothing. A request hit by several faults
/// gets the first one's action; every fault counts every request it matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
}

impl FaultPlan {
    pub fn new(faults: impl IntoIterator<Item = Fault>) -> FaultPlan {
        FaultPlan {
            faults: faults.into_iter().collect(),
        }
    }
}

/// A request the proxy received, and the index of the fault that hit it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub fault: Option<usize>,
}

/// What the proxy did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// HTTP requests received (faulted or forwarded).
    pub requests: usize,
    /// Requests a fault hit.
    pub faulted: usize,
    /// Requests forwarded upstream in full (head and body).
    pub forwarded: usize,
    /// Client connections accepted.
    pub connections: usize,
}

#[derive(Default)]
struct Counters {
    plan: FaultPlan,
    /// Per fault of the plan: requests it matched so far.
    matched: Vec<usize>,
    received: Vec<Received>,
    stats: FaultStats,
}

impl Counters {
    /// Counts a request and picks the fault that hits it.
    fn receive(&mut self, method: &str, target: &str) -> Option<Action> {
        self.stats.requests += 1;
        let mut chosen = None;
        for (i, fault) in self.plan.faults.iter().enumerate() {
            if fault.target.matches(method, target) {
                self.matched[i] += 1;
                if chosen.is_none() && fault.target.hits(self.matched[i]) {
                    chosen = Some(i);
                }
            }
        }
        if chosen.is_some() {
            self.stats.faulted += 1;
        }
        self.received.push(Received {
            method: method.to_string(),
            target: target.to_string(),
            fault: chosen,
        });
        chosen.map(|i| self.plan.faults[i].action.clone())
    }
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
            counters: Mutex::new(Counters::default()),
            upstream: upstream.to_string(),
            host: OnceLock::new(),
        });
        let server = Server::start("fault-proxy", {
            let shared = shared.clone();
            move |stream, tracker| serve(stream, tracker, &shared)
        })
        .expect("binding the fault proxy on 127.0.0.1");
        let _ = shared.host.set(server.host().to_string());
        let proxy = FaultProxy { server, shared };
        proxy.set_plan(plan);
        proxy
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

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Requests received so far with `method` whose target contains `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|r| r.method == method && r.target.contains(path))
            .count()
    }

    /// Replaces the plan; request numbers start over from now.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut c = self.shared.lock();
        c.matched = vec![0; plan.faults.len()];
        c.plan = plan;
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

/// Holds a connection without answering until the client closes it (bounded by the
/// socket's read timeout and MAX_BODY).
fn stall(client_r: &mut impl Read) {
    let _ = io::copy(&mut client_r.take(MAX_BODY), &mut io::sink());
}

/// Resets the client connection: SO_LINGER 0, and the caller returns, closing every
/// descriptor of the socket.
fn reset(client: &TcpStream) {
    let _ = http::set_linger_zero(client);
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
    let proxy_host = shared.host.get().cloned().unwrap_or_default();

    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        // Anything that is not HTTP (e.g. a TLS ClientHello from a client probing for
        // https first) ends the connection without counting as a request.
        let Ok(Some(head)) = http::read_head(&mut client_r) else {
            return;
        };
        let Ok((method, target)) = head.request_line() else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let Ok(framing) = http::request_framing(&head) else {
            let _ = http::respond(&mut client_w, 400, "Bad Request", &[], b"", true);
            return;
        };
        let close_after = head.wants_close();
        let expect_continue = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let action = shared.lock().receive(&method, &target);

        match &action {
            Some(Action::ResetBeforeForwarding) => return reset(&client),
            Some(Action::Stall) => return stall(&mut client_r),
            Some(Action::Respond {
                status,
                headers,
                body,
            }) => {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                // A client waiting for 100 Continue has not sent its body: answer and close.
                let drained =
                    !expect_continue && http::drain_body(&mut client_r, framing, MAX_BODY).is_ok();
                let close = close_after || !drained;
                // An answer to HEAD has no body: bytes after its head would be read as the
                // next answer on the connection.
                let body: &[u8] = if method == "HEAD" { b"" } else { body };
                let _ = http::respond(&mut client_w, *status, "Injected", &headers, body, close);
                if close {
                    return;
                }
                continue;
            }
            _ => {}
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
        if up.writer.write_all(&head.raw).is_err() {
            let _ = http::respond(&mut client_w, 502, "Bad Gateway", &[], b"", true);
            return;
        }

        if expect_continue && framing != Framing::None {
            // Let upstream decide: 100 Continue lets the body through, anything else is
            // the final answer and the body is never sent.
            match read_upstream_head(up, shared, &proxy_host)
                .and_then(|h| write_head(&mut client_w, &h).map(|()| h))
            {
                Ok(head) if head.status().is_ok_and(|s| s == 100) => {}
                Ok(head) => {
                    let _ = forward_body(up, &mut client_w, &head, &method);
                    return;
                }
                Err(_) => return,
            }
        }

        if let Some(Action::ResetAfterBodyBytes(n)) = action {
            let _ = http::copy_body(&mut client_r, &mut up.writer, framing, Some(n), MAX_BODY);
            settle_broken_request(up);
            return reset(&client);
        }

        match http::copy_body(&mut client_r, &mut up.writer, framing, None, MAX_BODY) {
            Ok(_) => {}
            Err(CopyError::Read(_)) => return,
            Err(CopyError::Write(_)) => {
                // Upstream stopped reading: pass on whatever it answered, then close.
                let _ = forward_response(up, &mut client_w, &method, shared, &proxy_host, None);
                return;
            }
        }
        shared.lock().stats.forwarded += 1;

        if let Some(Action::StallResponseAfter(n)) = action {
            if let Ok(head) = read_final_head(up, &mut client_w, shared, &proxy_host)
                && write_head(&mut client_w, &head).is_ok()
                && let Ok(framing) = http::response_framing(&head, &method)
            {
                let _ = http::copy_body(&mut up.reader, &mut client_w, framing, Some(n), MAX_BODY);
            }
            return stall(&mut client_r);
        }
        match forward_response(up, &mut client_w, &method, shared, &proxy_host, action) {
            Ok(true) if !close_after => {}
            _ => return,
        }
    }
}

/// Ends the upstream request that was cut short (no more body will come) and waits until
/// the registry answered it or closed, so whatever it stored of the partial body is
/// stored before the client hears of the failure.
fn settle_broken_request(up: &mut Upstream) {
    let _ = up.writer.shutdown(Shutdown::Write);
    let _ = io::copy(&mut (&mut up.reader).take(MAX_BODY), &mut io::sink());
}

/// Reads one response head from upstream, with `Location` rewritten from the upstream
/// host to the proxy's.
fn read_upstream_head(up: &mut Upstream, shared: &Shared, proxy_host: &str) -> io::Result<Head> {
    let mut head = http::read_head(&mut up.reader)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed before a response",
        )
    })?;
    head.status()?;
    let from = format!("//{}", shared.upstream);
    for (name, value) in &mut head.headers {
        if name.eq_ignore_ascii_case("location") && value.contains(&from) {
            *value = value.replacen(&from, &format!("//{proxy_host}"), 1);
        }
    }
    Ok(head)
}

fn write_head(client_w: &mut impl Write, head: &Head) -> io::Result<()> {
    client_w.write_all(&head.serialize())?;
    client_w.flush()
}

/// Passes interim responses on and returns the final response's head (not yet written).
fn read_final_head(
    up: &mut Upstream,
    client_w: &mut impl Write,
    shared: &Shared,
    proxy_host: &str,
) -> io::Result<Head> {
    for _ in 0..MAX_INTERIM {
        let head = read_upstream_head(up, shared, proxy_host)?;
        let status = head.status()?;
        if (100..200).contains(&status) && status != 101 {
            write_head(client_w, &head)?;
            continue;
        }
        return Ok(head);
    }
    Err(http::invalid("too many interim responses".into()))
}

/// Forwards interim responses and the final response, applying a rewriting `action`;
/// `Ok(true)` if both connections can carry another request.
fn forward_response(
    up: &mut Upstream,
    client_w: &mut impl Write,
    method: &str,
    shared: &Shared,
    proxy_host: &str,
    action: Option<Action>,
) -> io::Result<bool> {
    let mut head = read_final_head(up, client_w, shared, proxy_host)?;
    match action {
        Some(Action::ReplaceResponseBody(body)) => {
            let framing = http::response_framing(&head, method)?;
            http::drain_body(&mut up.reader, framing, MAX_REWRITTEN).map_err(copy_error)?;
            head.headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("content-length")
                    && !n.eq_ignore_ascii_case("transfer-encoding")
            });
            head.headers
                .push(("Content-Length".into(), body.len().to_string()));
            write_head(client_w, &head)?;
            client_w.write_all(&body)?;
            client_w.flush()?;
            Ok(!head.wants_close() && framing != Framing::UntilClose)
        }
        Some(Action::SetResponseHeader(name, value)) => {
            head.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            head.headers.push((name, value));
            write_head(client_w, &head)?;
            forward_body(up, client_w, &head, method)
        }
        _ => {
            write_head(client_w, &head)?;
            forward_body(up, client_w, &head, method)
        }
    }
}

fn copy_error(e: CopyError) -> io::Error {
    match e {
        CopyError::Read(e) | CopyError::Write(e) => e,
    }
}

fn forward_body(
    up: &mut Upstream,
    client_w: &mut impl Write,
    head: &Head,
    method: &str,
) -> io::Result<bool> {
    let framing = http::response_framing(head, method)?;
    http::copy_body(&mut up.reader, client_w, framing, None, MAX_BODY).map_err(copy_error)?;
    Ok(!head.wants_close() && framing != Framing::UntilClose && head.status()? != 101)
}
