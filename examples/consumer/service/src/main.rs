//! A small HTTP/1.1 service on the standard library alone: `GET /` greets, `GET /healthz`
//! answers `ok`, anything else is 404. It listens on `LISTEN_ADDR` (default 0.0.0.0:8080).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// The status line and body for a request line such as `GET / HTTP/1.1`.
fn respond(request_line: &str) -> (&'static str, String) {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/")) => ("200 OK", "hello from greeter\n".to_string()),
        (Some("GET"), Some("/healthz")) => ("200 OK", "ok\n".to_string()),
        (Some("GET"), Some(path)) => ("404 Not Found", format!("no page at {path}\n")),
        _ => ("405 Method Not Allowed", "only GET is served\n".to_string()),
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (status, body) = respond(&request_line);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> std::io::Result<()> {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("greeter listening on {addr}");
    for stream in listener.incoming() {
        if let Err(e) = stream.and_then(serve) {
            eprintln!("greeter: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::respond;

    #[test]
    fn routes() {
        assert_eq!(respond("GET / HTTP/1.1").0, "200 OK");
        assert_eq!(respond("GET /healthz HTTP/1.1").1, "ok\n");
        assert_eq!(respond("GET /nope HTTP/1.1").0, "404 Not Found");
        assert_eq!(respond("POST / HTTP/1.1").0, "405 Method Not Allowed");
    }
}
