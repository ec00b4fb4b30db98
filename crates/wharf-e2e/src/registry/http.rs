//! Just enough HTTP/1.1 for the harness: message heads, body framing (Content-Length,
//! chunked, until close), a one-shot client for assertions that must not depend on the
//! client under test, and a small thread-per-connection server that stops on drop.
//!
//! Every read is bounded in size, every socket has a timeout, every loop has a limit.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest message head (request or status line plus headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one head.
const MAX_HEADERS: usize = 200;
/// Largest chunk-size line or trailer line.
const MAX_LINE: usize = 8 * 1024;
/// Most chunks in one chunked body.
const MAX_CHUNKS: usize = 1_000_000;
/// Largest body the one-shot client reads into memory.
const MAX_CLIENT_BODY: u64 = 256 * 1024 * 1024;

/// A request or response head, exactly as received.
#[derive(Clone, Debug)]
pub struct Head {
    /// The raw bytes, request/status line through the blank line.
    pub raw: Vec<u8>,
    /// The request line or status line, without CRLF.
    pub start_line: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(method, target)` of a request line.
    pub fn request_line(&self) -> io::Result<(&str, &str)> {
        let mut parts = self.start_line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v)) if !m.is_empty() && v.starts_with("HTTP/1.") => Ok((m, t)),
            _ => Err(invalid(format!("bad request line {:?}", self.start_line))),
        }
    }

    /// The status code of a status line.
    pub fn status(&self) -> io::Result<u16> {
        let mut parts = self.start_line.split(' ');
        match (parts.next(), parts.next()) {
            (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
                .parse()
                .map_err(|_| invalid(format!("bad status line {:?}", self.start_line))),
            _ => Err(invalid(format!("bad status line {:?}", self.start_line))),
        }
    }

    /// True if either side asked to close the connection after this message.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            || self.start_line.starts_with("HTTP/1.0")
            || self.start_line.ends_with("HTTP/1.0")
    }

    /// Re-serializes the head with `headers` (used when a header is rewritten).
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + 64);
        out.extend_from_slice(self.start_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

pub(crate) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one line (through `\n`) of at most `max` bytes; empty on EOF.
fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.take(max as u64 + 1).read_until(b'\n', &mut line)?;
    if line.len() > max {
        return Err(invalid(format!("line longer than {max} bytes")));
    }
    Ok(line)
}

/// Reads a message head. `Ok(None)` on a clean end of stream before its first byte.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    // Bounded: MAX_HEADERS lines plus the start line and one tolerated leading blank line.
    for _ in 0..MAX_HEADERS + 2 {
        let line = read_line(r, MAX_HEAD - raw.len())?;
        if line.is_empty() {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        if !line.ends_with(b"\n") {
            return Err(invalid(format!(
                "message head longer than {MAX_HEAD} bytes"
            )));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| invalid("message head is not UTF-8".into()))?
            .trim_end_matches(['\r', '\n'])
            .to_string();
        raw.extend_from_slice(&line);
        if text.is_empty() {
            if lines.is_empty() {
                // RFC 9112 2.2: ignore at least one empty line before a request line.
                raw.clear();
                continue;
            }
            let start_line = lines.remove(0);
            let mut headers = Vec::with_capacity(lines.len());
            for l in lines {
                let (n, v) = l
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("bad header line {l:?}")))?;
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            return Ok(Some(Head {
                raw,
                start_line,
                headers,
            }));
        }
        lines.push(text);
    }
    Err(invalid(format!("more than {MAX_HEADERS} header lines")))
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn content_framing(head: &Head) -> io::Result<Option<Framing>> {
    if let Some(te) = head.header("transfer-encoding") {
        if te
            .rsplit(',')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
        {
            return Ok(Some(Framing::Chunked));
        }
        return Err(invalid(format!("unsupported transfer-encoding {te:?}")));
    }
    if let Some(cl) = head.header("content-length") {
        let n = cl
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("bad content-length {cl:?}")))?;
        return Ok(Some(Framing::Length(n)));
    }
    Ok(None)
}

/// Body framing of a request (no length and not chunked: no body).
pub fn request_framing(head: &Head) -> io::Result<Framing> {
    Ok(match content_framing(head)? {
        Some(Framing::Length(0)) | None => Framing::None,
        Some(f) => f,
    })
}

/// Body framing of a response to a request with method `method`.
pub fn response_framing(head: &Head, method: &str) -> io::Result<Framing> {
    let status = head.status()?;
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(Framing::None);
    }
    Ok(match content_framing(head)? {
        Some(Framing::Length(0)) => Framing::None,
        Some(f) => f,
        None => Framing::UntilClose,
    })
}

/// Why copying a body stopped early.
#[derive(Debug)]
pub enum CopyError {
    /// Reading from the source failed (or it ended early).
    Read(io::Error),
    /// Writing to the destination failed.
    Write(io::Error),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "reading body: {e}"),
            CopyError::Write(e) => write!(f, "writing body: {e}"),
        }
    }
}

/// Copies a body verbatim (chunk framing included) from `r` to `w`. With `stop_after`,
/// stops once that many body bytes have been copied and returns `Ok(false)`; returns
/// `Ok(true)` when the whole body was copied. `max` bounds the bytes copied in total.
pub fn copy_body(
    r: &mut impl BufRead,
    w: &mut impl Write,
    framing: Framing,
    stop_after: Option<u64>,
    max: u64,
) -> Result<bool, CopyError> {
    let mut copied = 0u64;
    let limit = stop_after.unwrap_or(u64::MAX).min(max);
    // Copies up to `n` bytes; false if the limit was reached first.
    let copy_n = |r: &mut dyn BufRead, w: &mut dyn Write, n: u64, copied: &mut u64| {
        let mut left = n;
        while left > 0 {
            if *copied >= limit {
                return Ok(false);
            }
            let buf = r.fill_buf().map_err(CopyError::Read)?;
            if buf.is_empty() {
                return Err(CopyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a body",
                )));
            }
            let take = (buf.len() as u64).min(left).min(limit - *copied) as usize;
            w.write_all(&buf[..take]).map_err(CopyError::Write)?;
            r.consume(take);
            left -= take as u64;
            *copied += take as u64;
        }
        Ok(true)
    };
    let result = match framing {
        Framing::None => Ok(true),
        Framing::Length(n) => copy_n(r, w, n, &mut copied),
        Framing::UntilClose => {
            // Bounded by `max`; ends at end of stream.
            loop {
                let buf = r.fill_buf().map_err(CopyError::Read)?;
                if buf.is_empty() {
                    break Ok(true);
                }
                if copied >= limit {
                    break Ok(false);
                }
                let take = (buf.len() as u64).min(limit - copied) as usize;
                w.write_all(&buf[..take]).map_err(CopyError::Write)?;
                r.consume(take);
                copied += take as u64;
            }
        }
        Framing::Chunked => 'chunks: {
            for _ in 0..MAX_CHUNKS {
                let line = read_line(r, MAX_LINE).map_err(CopyError::Read)?;
                if !line.ends_with(b"\n") {
                    break 'chunks Err(CopyError::Read(invalid("bad chunk-size line".into())));
                }
                let text = String::from_utf8_lossy(&line);
                let size_text = text.trim().split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_text, 16).map_err(|_| {
                    CopyError::Read(invalid(format!("bad chunk size {size_text:?}")))
                })?;
                w.write_all(&line).map_err(CopyError::Write)?;
                copied += line.len() as u64;
                if size == 0 {
                    // Trailers, then the final empty line.
                    for _ in 0..MAX_HEADERS {
                        let t = read_line(r, MAX_LINE).map_err(CopyError::Read)?;
                        if !t.ends_with(b"\n") {
                            break 'chunks Err(CopyError::Read(invalid("bad trailer".into())));
                        }
                        w.write_all(&t).map_err(CopyError::Write)?;
                        if t == b"\r\n" || t == b"\n" {
                            break 'chunks Ok(true);
                        }
                    }
                    break 'chunks Err(CopyError::Read(invalid("too many trailers".into())));
                }
                if !copy_n(r, w, size + 2, &mut copied)? {
                    break 'chunks Ok(false);
                }
            }
            Err(CopyError::Read(invalid("too many chunks".into())))
        }
    }?;
    w.flush().map_err(CopyError::Write)?;
    if !result && stop_after.is_none() {
        return Err(CopyError::Read(invalid(format!(
            "body larger than {max} bytes"
        ))));
    }
    Ok(result)
}

/// Reads and discards a body of at most `max` bytes.
pub fn drain_body(r: &mut impl BufRead, framing: Framing, max: u64) -> Result<(), CopyError> {
    copy_body(r, &mut io::sink(), framing, None, max).map(|_| ())
}

/// A response read by [`request`].
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), independent of any
/// client under test: for readiness checks and for assertions on registry state.
/// `host` is `127.0.0.1:PORT`; `target` is the path and query.
pub fn request(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    request_with_timeout(host, method, target, headers, body, Duration::from_secs(30))
}

pub(crate) fn request_with_timeout(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let addr = host
        .parse::<std::net::SocketAddr>()
        .map_err(|e| invalid(format!("bad host {host:?} (want 127.0.0.1:PORT): {e}")))?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut w = &stream;
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    let mut r = BufReader::new(&stream);
    // Skip interim 1xx responses (bounded).
    for _ in 0..10 {
        let head = read_head(&mut r)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )
        })?;
        let status = head.status()?;
        if (100..200).contains(&status) {
            continue;
        }
        let framing = response_framing(&head, method)?;
        let mut body = Vec::new();
        copy_body(&mut r, &mut body, framing, None, MAX_CLIENT_BODY).map_err(|e| match e {
            CopyError::Read(e) | CopyError::Write(e) => e,
        })?;
        if framing == Framing::Chunked {
            body = dechunk(&body)?;
        }
        return Ok(Response {
            status,
            headers: head.headers,
            body,
        });
    }
    Err(invalid("too many interim responses".into()))
}

/// Decodes a chunked body (as copied verbatim by `copy_body`).
fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..MAX_CHUNKS {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("bad chunk".into()))?;
        let line = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size".into()))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err(invalid("short chunk".into()));
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
    Err(invalid("too many chunks".into()))
}

/// Writes a complete small response.
pub fn respond(
    w: &mut impl Write,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Decodes `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded `(key, value)` pairs, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Sets SO_LINGER to 0 so that closing the socket sends RST instead of FIN.
#[cfg(target_os = "linux")]
pub fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // std's `TcpStream::set_linger` is unstable (`tcp_linger`); libc's setsockopt is
    // always linked, so declare it rather than add a dependency for one call.
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd owned by `stream`, a pointer to a live `struct linger` and its size.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere the reset degrades to a plain close.
#[cfg(not(target_os = "linux"))]
pub fn set_linger_zero(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}

/// A thread-per-connection TCP server on 127.0.0.1 that stops (and shuts down every open
/// connection) on drop.
pub struct Server {
    host: String,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    shared: Arc<ServerShared>,
}

struct ServerShared {
    open: Mutex<BTreeMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

/// Most connections served at once; beyond that new ones are closed at once.
const MAX_OPEN_CONNECTIONS: usize = 256;
/// How often the acceptor checks for stop.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Registers extra sockets of a connection (e.g. the proxy's upstream) so that they are
/// shut down when the server stops.
#[derive(Clone)]
pub struct Tracker {
    shared: Arc<ServerShared>,
    stop: Arc<AtomicBool>,
}

impl Tracker {
    /// Tracks `stream` until the returned guard drops.
    pub fn track(&self, stream: &TcpStream) -> TrackGuard {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            self.shared.open.lock().unwrap().insert(id, clone);
        }
        if self.stop.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        TrackGuard {
            shared: self.shared.clone(),
            id,
        }
    }
}

pub struct TrackGuard {
    shared: Arc<ServerShared>,
    id: u64,
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        self.shared.open.lock().unwrap().remove(&self.id);
    }
}

impl Server {
    /// Binds a free port on 127.0.0.1 and serves each connection with `handle` on its own
    /// thread.
    pub fn start<F>(name: &str, handle: F) -> io::Result<Server>
    where
        F: Fn(TcpStream, &Tracker) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let host = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(ServerShared {
            open: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let handle = Arc::new(handle);
        let tracker = Tracker {
            shared: shared.clone(),
            stop: stop.clone(),
        };
        let acceptor = std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn({
                let stop = stop.clone();
                let shared = shared.clone();
                let name = name.to_string();
                move || {
                    // Runs until the owner drops the server; each pass sleeps at most
                    // ACCEPT_POLL, so stopping takes at most that long.
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                let _ = stream.set_nonblocking(false);
                                let mut workers = shared.workers.lock().unwrap();
                                workers.retain(|w| !w.is_finished());
                                if workers.len() >= MAX_OPEN_CONNECTIONS {
                                    continue;
                                }
                                let handle = handle.clone();
                                let tracker = tracker.clone();
                                let spawned = std::thread::Builder::new()
                                    .name(format!("{name}-conn"))
                                    .spawn(move || {
                                        let _guard = tracker.track(&stream);
                                        handle(stream, &tracker);
                                    });
                                if let Ok(w) = spawned {
                                    workers.push(w);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                std::thread::sleep(ACCEPT_POLL)
                            }
                            Err(_) => std::thread::sleep(ACCEPT_POLL),
                        }
                    }
                }
            })?;
        Ok(Server {
            host,
            stop,
            acceptor: Some(acceptor),
            shared,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self.shared.open.lock().unwrap().values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        // Every worker's sockets are shut down, so each returns promptly; still, wait a
        // bounded time and leave stragglers detached rather than hang a test.
        let deadline = Instant::now() + Duration::from_secs(5);
        for w in workers {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.is_finished() {
                let _ = w.join();
            }
        }
    }
}
