//! A webhook receiver on loopback: it records each POSTed JSON body and answers 200. A test
//! double for Slack or any other receiver, which cannot run here.

use std::io::BufReader;
use std::sync::{Arc, Mutex};

use crate::registry::http::{self, Framing, Server};

/// Largest body recorded.
const MAX_BODY: u64 = 1 << 20;

pub struct Receiver {
    server: Server,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = Server::start("webhook", {
            let received = received.clone();
            move |stream, _| {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut writer = stream.try_clone().expect("cloning the connection");
                let mut reader = BufReader::new(stream);
                // One request per connection is all a webhook sender needs; a keep-alive
                // client opens a new one after the close.
                let Ok(Some(head)) = http::read_head(&mut reader) else {
                    return;
                };
                let mut body = Vec::new();
                let framing = http::request_framing(&head).unwrap_or(Framing::None);
                if http::copy_body(&mut reader, &mut body, framing, None, MAX_BODY).is_err() {
                    return;
                }
                // Recorded before the answer: when the sender has its 200, the test sees it.
                if let Ok(value) = serde_json::from_slice(&body) {
                    received.lock().unwrap().push(value);
                }
                let _ = http::respond(&mut writer, 200, "OK", &[], b"ok", true);
            }
        })
        .expect("binding the webhook receiver on 127.0.0.1");
        Receiver { server, received }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.server.host())
    }

    /// Every body received so far, in order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().clone()
    }
}
