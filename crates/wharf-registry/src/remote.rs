//! Registry operations: blobs (HEAD, mount, chunked resumable upload, verified download),
//! manifests (get, put, resolve, delete), tags, and the registry as an [`Image`] source.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use wharf_oci::image::BlobReader;
use wharf_oci::{
    Descriptor, Digest, Image, Index, Platform, Reference, VerifyingReader, media_type,
};

use crate::client::{Access, Client, Replay, check, error_chain};
use crate::error::{Error, Result};
use crate::events::{BlobOutcome, Event};
use crate::retry::Attempts;

/// Every manifest type wharf reads, for the Accept header.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests are small; anything larger is refused rather than read into memory.
const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest as the registry stores it.
#[derive(Clone, Debug)]
pub struct RawManifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Client {
    fn url(&self, registry: &str, repository: &str, tail: &str) -> Result<String> {
        Ok(format!(
            "{}/v2/{repository}/{tail}",
            self.base_url(registry)?
        ))
    }

    /// Does the repository have this blob?
    pub fn blob_exists(&self, registry: &str, repository: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(registry, repository, &format!("blobs/{digest}"))?;
        let what = format!(
            "checking for blob {} in {registry}/{repository}",
            digest.short()
        );
        let response = self.send(
            &Access::pull(registry, repository),
            &what,
            Replay::Safe,
            &|http| http.head(&url),
        )?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(response, &what).map(|_| false),
        }
    }

    /// Puts a blob into `repository`: skipped if present, mounted from `mount_from` (same
    /// registry) if the registry agrees, else uploaded in chunks from `open()`. An upload
    /// broken off resumes where the registry says it stands.
    pub fn push_blob<'a>(
        &self,
        registry: &str,
        repository: &str,
        descriptor: &Descriptor,
        mount_from: Option<&str>,
        open: &(dyn Fn() -> Result<BlobReader<'a>> + Sync),
    ) -> Result<BlobOutcome> {
        let digest = &descriptor.digest;
        let events = self.events().clone();
        let mount_from = mount_from.filter(|from| *from != repository);
        // With a mount source, ask for the mount straight away: it succeeds whether or not
        // the blob is already here, and saves a round trip per blob. Without one, HEAD
        // first so present blobs are never sent.
        if mount_from.is_none() && self.blob_exists(registry, repository, digest)? {
            events(&Event::BlobDone {
                digest: digest.clone(),
                how: BlobOutcome::Skipped,
            });
            return Ok(BlobOutcome::Skipped);
        }
        events(&Event::BlobStart {
            digest: digest.clone(),
            size: descriptor.size,
        });
        let access = Access::push(registry, repository, mount_from);
        let what = format!(
            "uploading blob {} to {registry}/{repository}",
            digest.short()
        );
        let start_url = match mount_from {
            Some(from) => format!(
                "{}?mount={digest}&from={from}",
                self.url(registry, repository, "blobs/uploads/")?
            ),
            None => self.url(registry, repository, "blobs/uploads/")?,
        };
        let base = self.base_url(registry)?;
        let start = |url: &str| -> Result<std::result::Result<String, BlobOutcome>> {
            let response = self.send(&access, &what, Replay::Safe, &|http| {
                http.post(url).header(CONTENT_LENGTH, 0)
            })?;
            if response.status() == StatusCode::CREATED && url.contains("mount=") {
                return Ok(Err(BlobOutcome::Mounted));
            }
            let response = check(response, &what)?;
            // 202: a new upload session (also what a declined mount falls back to).
            Ok(Ok(location(&base, &response, &what)?))
        };
        let mut session = match start(&start_url)? {
            Err(mounted) => {
                events(&Event::BlobDone {
                    digest: digest.clone(),
                    how: mounted,
                });
                return Ok(mounted);
            }
            Ok(session) => session,
        };
        if mount_from.is_some() && self.blob_exists(registry, repository, digest)? {
            // The mount was declined but the blob is here already: drop the session.
            let _ = self.send(&access, &what, Replay::Safe, &|http| http.delete(&session));
            events(&Event::BlobDone {
                digest: digest.clone(),
                how: BlobOutcome::Skipped,
            });
            return Ok(BlobOutcome::Skipped);
        }
        let plain_start = self.url(registry, repository, "blobs/uploads/")?;

        let size = descriptor.size;
        let chunk_size = self.config.chunk_size.max(1) as u64;
        let mut attempts = Attempts::new(&self.config.retry);
        let mut sent_bytes = 0u64;
        let mut offset = 0u64;
        // The source stream and how far into it we are; reopened when we must go back.
        let mut source: Option<(BlobReader<'a>, u64)> = None;
        while offset < size {
            let len = chunk_size.min(size - offset);
            // Position the source at `offset`.
            let (reader, position) = match source.take() {
                Some((reader, position)) if position <= offset => (reader, position),
                _ => (verified(open()?, descriptor), 0),
            };
            let mut reader = reader;
            let skip = offset - position;
            std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink()).map_err(
                |source| Error::Io {
                    what: what.clone(),
                    source,
                },
            )?;
            // A fresh buffer per chunk, shared (not copied) with each send attempt, so a
            // worker holds one chunk at a time.
            let mut buffer = Vec::with_capacity(len as usize);
            (&mut reader)
                .take(len)
                .read_to_end(&mut buffer)
                .map_err(|source| Error::Io {
                    what: what.clone(),
                    source,
                })?;
            if buffer.len() as u64 != len {
                return Err(Error::Protocol {
                    what: what.clone(),
                    why: format!(
                        "the source blob ended at {} of {size} bytes",
                        offset + buffer.len() as u64
                    ),
                });
            }
            source = Some((reader, offset + len));
            let chunk = bytes::Bytes::from(buffer);
            attempts.start();
            let range = format!("{offset}-{}", offset + len - 1);
            let result = self.send(&access, &what, Replay::Never, &|http| {
                http.patch(&session)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, &range)
                    .header(CONTENT_LENGTH, len)
                    .body(chunk.clone())
            });
            sent_bytes += len;
            // Whether the registry refused the chunk's offset, from the status (a message
            // can hold "416" anywhere, in an upload URL's state for one).
            let mut offset_rejected = false;
            let failure = match result {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {
                    session = location(&base, &response, &what)?;
                    offset = confirmed_end(&response).unwrap_or(offset + len);
                    events(&Event::BlobProgress {
                        digest: digest.clone(),
                        done: offset,
                        size,
                    });
                    continue;
                }
                Ok(response)
                    if response.status().is_server_error()
                        || response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status() == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    offset_rejected = response.status() == StatusCode::RANGE_NOT_SATISFIABLE;
                    format!("registry answered {}", response.status())
                }
                Ok(response) => {
                    return Err(check(response, &what).err().unwrap_or(Error::Protocol {
                        what: what.clone(),
                        why: "unexpected success status for a chunk".into(),
                    }));
                }
                Err(Error::Interrupted { reason, .. }) => reason,
                Err(Error::Transport { source, .. }) => error_chain(&source),
                Err(other) => return Err(other),
            };
            self.wait_before_retry(&attempts, &what, failure, None)?;
            // Ask the registry how much it has; resume there, or start a new session if it
            // forgot this one (restarted without a shared secret, or cancelled it).
            let status = if offset_rejected {
                // The registry disagrees with our offset: its own state is the truth, but
                // an upload in that state cannot continue, so start over.
                None
            } else {
                self.upload_status(&access, &base, &session, &what)?
            };
            match status {
                Some((new_session, confirmed)) => {
                    session = new_session;
                    offset = confirmed;
                    events(&Event::Resume {
                        digest: digest.clone(),
                        offset,
                    });
                }
                None => {
                    events(&Event::Restart {
                        digest: digest.clone(),
                        reason: "the registry no longer knows the upload".into(),
                    });
                    session = match start(&plain_start)? {
                        Ok(session) => session,
                        Err(outcome) => return Ok(outcome),
                    };
                    offset = 0;
                }
            }
        }
        // Read past the end so the source's digest check runs: never finish an upload of
        // content that does not match its digest.
        if let Some((mut reader, _)) = source {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).map_err(|source| Error::Io {
                what: what.clone(),
                source,
            })?;
        } else if size == 0 {
            let mut reader = verified(open()?, descriptor);
            reader
                .read_to_end(&mut Vec::new())
                .map_err(|source| Error::Io {
                    what: what.clone(),
                    source,
                })?;
        }
        let separator = if session.contains('?') { '&' } else { '?' };
        let finish = format!("{session}{separator}digest={digest}");
        let response = self.send(&access, &what, Replay::Safe, &|http| {
            http.put(&finish).header(CONTENT_LENGTH, 0)
        })?;
        check(response, &what)?;
        let outcome = BlobOutcome::Uploaded { bytes: sent_bytes };
        events(&Event::BlobDone {
            digest: digest.clone(),
            how: outcome,
        });
        Ok(outcome)
    }

    /// Where an upload stands: its session URL and the next offset, or `None` if the
    /// registry no longer knows it.
    fn upload_status(
        &self,
        access: &Access,
        base: &str,
        session: &str,
        what: &str,
    ) -> Result<Option<(String, u64)>> {
        let response = self.send(access, what, Replay::Safe, &|http| http.get(session))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let offset = confirmed_end(&response).unwrap_or(0);
                let session =
                    location(base, &response, what).unwrap_or_else(|_| session.to_string());
                Ok(Some((session, offset)))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => check(response, what).map(|_| None),
        }
    }

    /// Streams a blob, verifying size and digest at end of stream.
    pub fn blob(
        &self,
        registry: &str,
        repository: &str,
        descriptor_digest: &Digest,
        size: Option<u64>,
    ) -> Result<BlobReader<'static>> {
        let url = self.url(registry, repository, &format!("blobs/{descriptor_digest}"))?;
        let what = format!(
            "downloading blob {} from {registry}/{repository}",
            descriptor_digest.short()
        );
        let response = self.send(
            &Access::pull(registry, repository),
            &what,
            Replay::Safe,
            &|http| http.get(&url),
        )?;
        let response = check(response, &what)?;
        Ok(Box::new(VerifyingReader::new(
            response,
            descriptor_digest.clone(),
            size,
        )))
    }

    /// Fetches a manifest by tag or digest; checks it against the digest asked for, or the
    /// registry's `Docker-Content-Digest`.
    pub fn manifest(&self, reference: &Reference) -> Result<RawManifest> {
        let (registry, repository) = (reference.registry(), reference.repository());
        let target = manifest_target(reference);
        let url = self.url(registry, repository, &format!("manifests/{target}"))?;
        let what = format!("fetching manifest {reference}");
        // The body is read inside the retry loop: an answer that breaks off (or goes
        // silent past the read timeout) is one more failed attempt, not the end.
        let mut attempts = Attempts::new(&self.config.retry);
        let (header_digest, content_type, bytes) = loop {
            attempts.start();
            let response = self.send(
                &Access::pull(registry, repository),
                &what,
                Replay::Safe,
                &|http| http.get(&url).header(ACCEPT, MANIFEST_TYPES),
            )?;
            let response = check(response, &what)?;
            let header_digest = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let mut bytes = Vec::new();
            match response.take(MAX_MANIFEST + 1).read_to_end(&mut bytes) {
                Ok(_) => break (header_digest, content_type, bytes),
                Err(e) => {
                    let reason = format!("the manifest broke off: {}", error_chain(&e));
                    self.wait_before_retry(&attempts, &what, reason, None)?;
                }
            }
        };
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(Error::Protocol {
                what,
                why: format!("manifest larger than {MAX_MANIFEST} bytes"),
            });
        }
        let digest = Digest::sha256(&bytes);
        if let Some(expected) = reference.digest().or(header_digest.as_ref()) {
            digest.expect(expected).map_err(|source| Error::Verify {
                what: what.clone(),
                source,
            })?;
        }
        let media_type = match serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            }) {
            Some(declared) => declared,
            None => content_type.unwrap_or_else(|| media_type::OCI_MANIFEST.to_string()),
        };
        Ok(RawManifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// [`Client::manifest`], or `None` when the registry has no manifest there (404): a
    /// tag that does not exist yet, such as an image's `.sig` before its first signature.
    pub fn manifest_if_present(&self, reference: &Reference) -> Result<Option<RawManifest>> {
        match self.manifest(reference) {
            Ok(raw) => Ok(Some(raw)),
            Err(Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves a tag (or digest) to the manifest's descriptor.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor> {
        let manifest = self.manifest(reference)?;
        Ok(Descriptor::for_bytes(&manifest.media_type, &manifest.bytes))
    }

    /// Stores manifest bytes under `tag_or_digest`, exactly as given.
    pub fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        self.put_manifest_answer(registry, repository, tag_or_digest, media_type, bytes)
            .map(|(digest, _)| digest)
    }

    /// [`Client::put_manifest`], also returning the registry's answer headers (where it
    /// says, e.g., that it processed the manifest's `subject`).
    pub(crate) fn put_manifest_answer(
        &self,
        registry: &str,
        repository: &str,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(Digest, reqwest::header::HeaderMap)> {
        let url = self.url(registry, repository, &format!("manifests/{tag_or_digest}"))?;
        let what = format!("putting manifest {registry}/{repository}:{tag_or_digest}");
        let digest = Digest::sha256(bytes);
        let response = self.send(
            &Access::push(registry, repository, None),
            &what,
            Replay::Safe,
            &|http| {
                http.put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            },
        )?;
        let response = check(response, &what)?;
        if let Some(stored) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && stored != digest
        {
            return Err(Error::Protocol {
                what,
                why: format!("the registry stored {stored}, wharf sent {digest}"),
            });
        }
        Ok((digest, response.headers().clone()))
    }

    /// Tags in a repository, following pagination.
    pub fn list_tags(&self, registry: &str, repository: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let what = format!("listing tags of {registry}/{repository}");
        let base = self.base_url(registry)?;
        let mut url = self.url(registry, repository, "tags/list?n=1000")?;
        let mut tags = Vec::new();
        for _ in 0..10_000 {
            let response = self.send(
                &Access::pull(registry, repository),
                &what,
                Replay::Safe,
                &|http| http.get(&url),
            )?;
            let response = check(response, &what)?;
            let next = next_page(&base, &response);
            let page: Tags = response.json().map_err(|source| Error::Transport {
                what: what.clone(),
                source,
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
        Err(Error::Protocol {
            what,
            why: "more than 10000 pages of tags".into(),
        })
    }

    /// Deletes a manifest by digest, or a tag where the registry supports deleting tags.
    pub fn delete(&self, reference: &Reference) -> Result<()> {
        let (registry, repository) = (reference.registry(), reference.repository());
        let target = manifest_target(reference);
        let url = self.url(registry, repository, &format!("manifests/{target}"))?;
        let what = format!("deleting {reference}");
        let response = self.send(
            &Access::delete(registry, repository),
            &what,
            Replay::Safe,
            &|http| http.delete(&url),
        )?;
        if reference.digest().is_none() && matches!(response.status().as_u16(), 400 | 405) {
            return Err(Error::Status {
                what,
                status: response.status().as_u16(),
                code: None,
                message: Some("this registry deletes manifests only by digest".into()),
                hint: Some(format!(
                    "delete {registry}/{repository}@<digest> instead; that removes every tag pointing at it"
                )),
            });
        }
        check(response, &what).map(drop)
    }

    /// The single-platform image `reference` names; an index is resolved to `platform`.
    pub fn image(&self, reference: &Reference, platform: &Platform) -> Result<RemoteImage<'_>> {
        let manifest = self.manifest(reference)?;
        let manifest = if media_type::is_index(&manifest.media_type) {
            let index: Index =
                serde_json::from_slice(&manifest.bytes).map_err(|e| Error::Protocol {
                    what: format!("reading index {reference}"),
                    why: e.to_string(),
                })?;
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        p.os == platform.os && p.architecture == platform.architecture
                    })
                })
                .ok_or_else(|| Error::Protocol {
                    what: format!("choosing a platform from {reference}"),
                    why: format!("no manifest for {}/{}", platform.os, platform.architecture),
                })?;
            self.manifest(&reference.with_digest(chosen.digest.clone()))?
        } else {
            manifest
        };
        wharf_oci::image::parse_manifest(&manifest.bytes)?;
        Ok(RemoteImage {
            client: self,
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            manifest,
        })
    }
}

/// The source of an upload, checked against its descriptor whatever the source is: an
/// upload whose bytes do not hash to the digest is never finished.
fn verified<'a>(reader: BlobReader<'a>, descriptor: &Descriptor) -> BlobReader<'a> {
    Box::new(VerifyingReader::new(
        reader,
        descriptor.digest.clone(),
        Some(descriptor.size),
    ))
}

fn manifest_target(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// The upload session URL from `Location`, made absolute.
fn location(base: &str, response: &reqwest::blocking::Response, what: &str) -> Result<String> {
    let value = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Protocol {
            what: what.to_string(),
            why: format!("{} without a Location header", response.status()),
        })?;
    Ok(if value.starts_with('/') {
        format!("{base}{value}")
    } else {
        value.to_string()
    })
}

/// The next offset from a `Range: 0-N` header (N is the last byte the registry has).
///
/// `0-0` is ambiguous: CNCF distribution sends it for an empty upload as well as for one
/// byte. It is read as empty; if the registry in fact has one byte, the next chunk gets
/// 416 and the upload starts over, which is correct either way.
fn confirmed_end(response: &reqwest::blocking::Response) -> Option<u64> {
    let range = response.headers().get(RANGE)?.to_str().ok()?;
    let end: u64 = range
        .trim_start_matches("bytes=")
        .split('-')
        .nth(1)?
        .parse()
        .ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// An image in a registry, as an [`Image`] source.
pub struct RemoteImage<'c> {
    client: &'c Client,
    registry: String,
    repository: String,
    manifest: RawManifest,
}

impl RemoteImage<'_> {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }
}

impl Image for RemoteImage<'_> {
    fn raw_manifest(&self) -> wharf_oci::Result<Vec<u8>> {
        Ok(self.manifest.bytes.clone())
    }

    fn blob(&self, digest: &Digest) -> wharf_oci::Result<BlobReader<'_>> {
        self.client
            .blob(&self.registry, &self.repository, digest, None)
            .map_err(|e| wharf_oci::Error::Io {
                context: format!(
                    "reading blob {digest} from {}/{}",
                    self.registry, self.repository
                ),
                source: std::io::Error::other(e.to_string()),
            })
    }
}

/// The next page's URL from a `Link: <url>; rel="next"` header (tags and referrers
/// listings), made absolute against `base` when the registry gives a path.
pub(crate) fn next_page(base: &str, response: &reqwest::blocking::Response) -> Option<String> {
    let next = response
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>'))?;
    Some(if next.starts_with('/') {
        format!("{base}{next}")
    } else {
        next.to_string()
    })
}
