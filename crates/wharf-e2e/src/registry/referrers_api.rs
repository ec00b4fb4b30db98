//! A test double for the one registry feature no registry installable here has, the OCI 1.1
//! referrers API (Debian's docker-registry is distribution 2.8, which ignores `subject`). It
//! stands in for that feature, not for the client under test, whose tag fallback and all
//! else is tested against the real distribution. In memory, anonymous, on 127.0.0.1: blobs,
//! manifests (a PUT with `subject` answers `OCI-Subject`) and `GET .../referrers/<digest>`
//! (filtered by `?artifactType=` unless told to ignore the filter, as a registry MAY).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wharf::oci::Digest;

use super::http::{self, Framing, Head, Server};

const MAX_BODY: u64 = 64 << 20;
const MAX_REQUESTS_PER_CONNECTION: usize = 10_000;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Default)]
struct State {
    blobs: BTreeMap<String, Vec<u8>>,
    /// `repo@reference` (tag or digest) -> (content type, bytes).
    manifests: BTreeMap<String, (String, Vec<u8>)>,
    uploads: BTreeMap<String, Vec<u8>>,
    /// `METHOD target` of every request, in order.
    requests: Vec<String>,
}

/// A registry with the referrers API; see the module doc.
pub struct ReferrersRegistry {
    server: Server,
    state: Arc<Mutex<State>>,
}

type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

impl ReferrersRegistry {
    /// Starts the double; with `apply_filter` false it ignores `?artifactType=` (and says so
    /// by leaving out `OCI-Filters-Applied`).
    pub fn start(apply_filter: bool) -> ReferrersRegistry {
        let state = Arc::new(Mutex::new(State::default()));
        let server = Server::start("referrers-registry", {
            let state = state.clone();
            move |stream, _| serve(stream, &state, apply_filter)
        })
        .expect("binding the referrers registry on 127.0.0.1");
        ReferrersRegistry { server, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host().to_string()
    }

    /// `METHOD target` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, apply_filter: bool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let (Ok(reader), mut w) = (stream.try_clone(), &stream) else {
        return;
    };
    let mut r = BufReader::new(reader);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let Ok(Some(head)) = http::read_head(&mut r) else {
            return;
        };
        let mut body = Vec::new();
        let (status, headers, reply) = match http::request_framing(&head) {
            Ok(framing @ (Framing::None | Framing::Length(_)))
                if http::copy_body(&mut r, &mut body, framing, None, MAX_BODY).is_ok() =>
            {
                handle(&mut state.lock().unwrap(), &head, body, apply_filter)
            }
            _ => error(400, "UNSUPPORTED"),
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let close = head.wants_close() || status == 400;
        if http::respond(&mut w, status, "-", &headers, &reply, close).is_err() || close {
            return;
        }
    }
}

fn error(status: u16, code: &str) -> Reply {
    let body = format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#);
    (status, vec![], body.into_bytes())
}

fn handle(state: &mut State, head: &Head, body: Vec<u8>, filter: bool) -> Reply {
    let Ok((method, target)) = head.request_line() else {
        return error(400, "UNSUPPORTED");
    };
    state.requests.push(format!("{method} {target}"));
    let kind = head.header("content-type").unwrap_or_default().to_string();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: BTreeMap<_, _> = http::query_pairs(query).into_iter().collect();
    let rest = path.strip_prefix("/v2/").unwrap_or_default();
    let endpoints = ["/blobs/uploads/", "/blobs/", "/manifests/", "/referrers/"];
    let Some((repo, endpoint, arg)) = endpoints.iter().find_map(|e| {
        let at = rest.find(e)?;
        Some((&rest[..at], *e, &rest[at + e.len()..]))
    }) else {
        return (200, vec![], b"{}".to_vec());
    };
    let key = format!("{repo}@{arg}");
    let upload_url = |id: &str| format!("/v2/{repo}/blobs/uploads/{id}");
    match (method, endpoint) {
        ("HEAD" | "GET", "/blobs/") => match state.blobs.get(arg) {
            Some(blob) if method == "GET" => (200, vec![], blob.clone()),
            found => (if found.is_some() { 200 } else { 404 }, vec![], vec![]),
        },
        ("POST", "/blobs/uploads/") => {
            let id = state.requests.len().to_string();
            state.uploads.insert(id.clone(), Vec::new());
            (202, vec![("Location", upload_url(&id))], vec![])
        }
        ("PATCH", "/blobs/uploads/") => {
            let Some(upload) = state.uploads.get_mut(arg) else {
                return error(404, "BLOB_UPLOAD_UNKNOWN");
            };
            upload.extend_from_slice(&body);
            let headers = vec![
                ("Location", upload_url(arg)),
                ("Range", format!("0-{}", upload.len().saturating_sub(1))),
            ];
            (202, headers, vec![])
        }
        ("PUT", "/blobs/uploads/") => {
            let Some(mut upload) = state.uploads.remove(arg) else {
                return error(404, "BLOB_UPLOAD_UNKNOWN");
            };
            upload.extend_from_slice(&body);
            let digest = Digest::sha256(&upload).to_string();
            if query.get("digest") != Some(&digest) {
                return error(400, "DIGEST_INVALID");
            }
            state.blobs.insert(digest.clone(), upload);
            (201, vec![("Docker-Content-Digest", digest)], vec![])
        }
        ("GET", "/manifests/") => match state.manifests.get(&key) {
            Some((kind, bytes)) => (200, vec![("Content-Type", kind.clone())], bytes.clone()),
            None => error(404, "MANIFEST_UNKNOWN"),
        },
        ("PUT", "/manifests/") => {
            let digest = Digest::sha256(&body).to_string();
            let manifest: Value = serde_json::from_slice(&body).unwrap_or_default();
            let subject = manifest.pointer("/subject/digest").and_then(Value::as_str);
            let mut headers = vec![("Docker-Content-Digest", digest.clone())];
            headers.extend(subject.map(|s| ("OCI-Subject", s.to_string())));
            for key in [key, format!("{repo}@{digest}")] {
                state.manifests.insert(key, (kind.clone(), body.clone()));
            }
            (201, headers, vec![])
        }
        ("GET", "/referrers/") => {
            let wanted = query
                .get("artifactType")
                .filter(|_| filter)
                .map(|w| json!(w));
            let prefix = format!("{repo}@sha256:");
            let mut manifests = Vec::new();
            for (_, (kind, bytes)) in state
                .manifests
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
            {
                let m: Value = serde_json::from_slice(bytes).unwrap_or_default();
                let artifact_type = m.get("artifactType").or(m.pointer("/config/mediaType"));
                if m.pointer("/subject/digest") == Some(&json!(arg))
                    && (wanted.is_none() || wanted.as_ref() == artifact_type)
                {
                    manifests.push(json!({"mediaType": kind, "size": bytes.len(),
                        "digest": Digest::sha256(bytes).to_string(), "artifactType": artifact_type,
                        "annotations": m.get("annotations").unwrap_or(&json!({}))}));
                }
            }
            let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
            let mut headers = vec![("Content-Type", INDEX.to_string())];
            headers.extend(wanted.map(|_| ("OCI-Filters-Applied", "artifactType".into())));
            (200, headers, serde_json::to_vec(&index).unwrap())
        }
        _ => error(405, "UNSUPPORTED"),
    }
}
