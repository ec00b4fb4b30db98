//! The TCP proxy in front of a stage's containers: it listens on the stage's stable address
//! and forwards each connection to the live container's loopback address. A deploy switches
//! it to the new container over a Unix socket (the *control* socket) and waits for the
//! answer, so every connection accepted after the answer goes to the new container and
//! every one accepted before keeps its old one until it closes.
//!
//! Why a proxy and not a published port that moves: a port can only be published when a
//! container is created, so moving it means stopping the old container first, and clients
//! see refused connections until the new one listens. With the proxy, the stable port never
//! closes (see docs/ARCHITECTURE.md, "wharf-deploy").
//!
//! Control protocol, one line each way: `backend` answers `backend ADDR`; `switch ADDR`
//! answers `ok ADDR` once new connections go there; `stop` answers `ok` and the proxy exits.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};

/// How long a control request may take, either side.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the proxy waits for a container to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deploying side of the control socket.
#[derive(Clone, Debug)]
pub struct Control {
    path: PathBuf,
}

impl Control {
    pub fn new(path: impl Into<PathBuf>) -> Control {
        Control { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the proxy sends new connections; `None` when no proxy answers.
    pub fn backend(&self) -> io::Result<Option<SocketAddr>> {
        match self.request("backend") {
            Ok(answer) => parse_answer(&answer, "backend").map(Some),
            Err(e) if no_proxy(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends new connections to `to`; returns once the proxy has switched.
    pub fn switch(&self, to: SocketAddr) -> io::Result<()> {
        let answer = self.request(&format!("switch {to}"))?;
        let now = parse_answer(&answer, "ok")?;
        if now != to {
            return Err(io::Error::other(format!(
                "the proxy switched to {now}, not {to}"
            )));
        }
        Ok(())
    }

    /// Stops the proxy (no error when none runs).
    pub fn stop(&self) -> io::Result<()> {
        match self.request("stop") {
            Ok(_) => Ok(()),
            Err(e) if no_proxy(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn request(&self, line: &str) -> io::Result<String> {
        let mut stream = UnixStream::connect(&self.path)?;
        stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
        stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
        stream.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        if answer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the proxy at {} closed without answering",
                    self.path.display()
                ),
            ));
        }
        Ok(answer.trim_end().to_string())
    }
}

/// Whether the error means "nothing listens on the control socket".
fn no_proxy(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

fn parse_answer(answer: &str, word: &str) -> io::Result<SocketAddr> {
    answer
        .strip_prefix(word)
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected answer from the proxy: {answer:?}")))
}

/// Runs the proxy until a `stop` request: listens on `listen`, forwards to `backend` until
/// switched, and takes requests on the Unix socket `control` (created 0600; a stale one is
/// replaced). Fails at once when either cannot be bound.
pub fn serve(listen: SocketAddr, control: &Path, backend: SocketAddr) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("binding {listen}: {e}")))?;
        // Only a control socket that nothing answers on is stale: a live proxy's is kept
        // and this one gives up (two proxies for one stage would split the traffic).
        if Control::new(control).backend().ok().flatten().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another proxy answers on {}", control.display()),
            ));
        }
        let _ = std::fs::remove_file(control);
        let controller = UnixListener::bind(control)
            .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", control.display())))?;
        std::fs::set_permissions(control, std::fs::Permissions::from_mode(0o600))?;
        let backend = Arc::new(Mutex::new(backend));
        let stop = Arc::new(tokio::sync::Notify::new());
        eprintln!(
            "wharf proxy: {listen} -> {}",
            *backend.lock().expect("not poisoned")
        );
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((client, _)) => {
                        tokio::spawn(forward(client, backend.clone()));
                    }
                    // Out of descriptors, say: keep serving the connections already open.
                    Err(e) => {
                        eprintln!("wharf proxy: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                accepted = controller.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(answer(stream, backend.clone(), stop.clone()));
                    }
                }
                () = stop.notified() => break,
            }
        }
        let _ = std::fs::remove_file(control);
        eprintln!("wharf proxy: stopped");
        Ok(())
    })
}

/// One control request.
async fn answer(
    stream: tokio::net::UnixStream,
    backend: Arc<Mutex<SocketAddr>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut read = tokio::io::BufReader::new(read);
    match tokio::time::timeout(CONTROL_TIMEOUT, read.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    let line = line.trim();
    let reply = if line == "backend" {
        format!("backend {}", *backend.lock().expect("not poisoned"))
    } else if let Some(to) = line.strip_prefix("switch ") {
        match to.trim().parse::<SocketAddr>() {
            Ok(to) => {
                let from = std::mem::replace(&mut *backend.lock().expect("not poisoned"), to);
                eprintln!("wharf proxy: switched {from} -> {to}");
                format!("ok {to}")
            }
            Err(_) => format!("error: {to:?} is not IP:PORT"),
        }
    } else if line == "stop" {
        stop.notify_one();
        "ok".to_string()
    } else {
        format!("error: unknown request {line:?} (backend, switch ADDR, stop)")
    };
    let _ = tokio::time::timeout(
        CONTROL_TIMEOUT,
        write.write_all(format!("{reply}\n").as_bytes()),
    )
    .await;
}

/// Forwards one connection to the backend as it was when the connection came in.
async fn forward(mut client: TcpStream, backend: Arc<Mutex<SocketAddr>>) {
    let first = *backend.lock().expect("not poisoned");
    let mut upstream = match connect_either(first, &backend).await {
        Ok(upstream) => upstream,
        Err(e) => return eprintln!("wharf proxy: {e}"),
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Connects to `first`; if it refuses (it was being stopped as a switch happened), to the
/// backend now current, when that is another one.
async fn connect_either(first: SocketAddr, backend: &Mutex<SocketAddr>) -> io::Result<TcpStream> {
    let error = match connect(first).await {
        Ok(upstream) => return Ok(upstream),
        Err(e) => e,
    };
    let now = *backend.lock().expect("not poisoned");
    if now == first {
        return Err(io::Error::new(
            error.kind(),
            format!("connecting to {first}: {error}"),
        ));
    }
    connect(now)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to {now}: {e}")))
}

async fn connect(to: SocketAddr) -> io::Result<TcpStream> {
    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to))
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A backend that answers every connection with `word` and closes.
    fn backend(word: &'static str) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let _ = stream.write_all(word.as_bytes());
            }
        });
        addr
    }

    fn read_through(addr: SocketAddr) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn forwards_switches_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("proxy.sock");
        let (a, b) = (backend("A"), backend("B"));
        let listen: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let path = control.clone();
        let proxy = std::thread::spawn(move || serve(listen, &path, a));
        let client = Control::new(&control);
        // Ready when the control socket answers (bounded by the test harness's timeout).
        while client.backend().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(client.backend().unwrap(), Some(a));
        assert_eq!(read_through(listen), "A");
        client.switch(b).unwrap();
        assert_eq!(client.backend().unwrap(), Some(b));
        assert_eq!(read_through(listen), "B");
        // A second proxy for the same control socket refuses to start.
        let second = serve(listen, &control, a);
        assert!(second.is_err());
        client.stop().unwrap();
        proxy.join().unwrap().unwrap();
        assert_eq!(client.backend().unwrap(), None, "no proxy answers any more");
        assert!(!control.exists());
    }

    #[test]
    fn a_refused_backend_is_retried_on_the_current_one() {
        let dead: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let live = backend("live");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // The switch landed between the accept (which read `dead`) and the connect.
            let switched = Mutex::new(live);
            let stream = connect_either(dead, &switched).await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), live);
            // Not switched: the refusal is the answer, naming the address.
            let unswitched = Mutex::new(dead);
            let error = connect_either(dead, &unswitched).await.unwrap_err();
            assert!(error.to_string().contains(&dead.to_string()), "{error}");
        });
    }
}
