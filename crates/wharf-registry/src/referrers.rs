//! Artifacts attached to an image (SBOMs, scan reports, signatures): OCI 1.1 artifact
//! manifests whose `subject` is the image, found again through the referrers API or, on
//! registries without it, through tags.
//!
//! An artifact is an image manifest with `artifactType`, the empty config (`{}`), one layer
//! holding the artifact's bytes, and `subject` = the image's descriptor. Its bytes depend
//! only on the [`Artifact`] and the subject (no timestamp unless the caller gives one in
//! the annotations), so attaching the same artifact twice stores one manifest.
//!
//! Where the registry processes `subject` (it answers the manifest PUT with `OCI-Subject`),
//! nothing else is written. Otherwise (CNCF distribution 2.x, most self-hosted registries)
//! wharf writes both fallbacks:
//! - the distribution spec's referrers tag schema: an index tagged `sha256-<hex>` listing
//!   every artifact of the subject, read by oras, regclient and notation, and by
//!   [`Client::referrers`];
//! - a tag `sha256-<hex>.<suffix>` (`.sbom`, `.scan`) on the artifact itself, cosign's
//!   convention, so `skopeo inspect` or `crane manifest` find the latest artifact of a kind
//!   by name, and so an artifact whose index entry was lost stays listed (see
//!   [`Client::referrers`]).

use std::collections::BTreeMap;
use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use wharf_oci::{
    Descriptor, Digest, Index, Manifest, Reference, canonical_json, media_type, validate_tag,
};

use crate::client::{Access, Client, Replay, check};
use crate::error::{Error, Result};
use crate::push::PushReport;
use crate::remote::next_page;

/// The OCI empty descriptor's content: the config of an artifact that has none.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// Largest artifact blob [`Client::artifact`] reads into memory (stream bigger ones with
/// [`Client::blob`]).
pub const MAX_ARTIFACT: u64 = 256 << 20;

/// Header by which a registry says it processed a manifest's `subject`.
const OCI_SUBJECT: &str = "oci-subject";
/// Most pages of referrers followed, and most index writes tried, before giving up.
const MAX_PAGES: usize = 1000;
const INDEX_ATTEMPTS: usize = 3;

/// Content to attach to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// What the artifact is, e.g. [`media_type::CYCLONEDX_JSON`] or
    /// [`media_type::WHARF_SCAN`]; what [`Client::referrers`] filters on.
    pub artifact_type: String,
    /// The media type of `bytes` (the layer).
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// The artifact manifest's annotations. `org.opencontainers.image.created` only if the
    /// caller wants one: without it, the same artifact always has the same digest.
    pub annotations: BTreeMap<String, String>,
    /// The tag fallback's suffix: `sha256-<hex>.<suffix>`, e.g. `sbom` or `scan`.
    pub fallback_suffix: String,
}

/// What [`Client::attach`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: Digest,
    /// The tag `sha256-<hex>.<suffix>`, when the registry has no referrers API (the index
    /// tag [`referrers_tag`] was then updated too).
    pub fallback_tag: Option<String>,
    /// True if the registry processed `subject` (it answered `OCI-Subject`).
    pub referrers_api: bool,
}

/// The spec's referrers tag schema: `<alg>-<hex>`, the hex cut at 64 characters.
pub fn referrers_tag(subject: &Digest) -> String {
    let hex = subject.hex();
    format!(
        "{}-{}",
        subject.algorithm().as_str(),
        &hex[..hex.len().min(64)]
    )
}

/// The tag under which an artifact of kind `suffix` is found without the referrers API.
pub fn fallback_tag(subject: &Digest, suffix: &str) -> String {
    format!("{}.{suffix}", referrers_tag(subject))
}

impl Artifact {
    /// The artifact manifest for `subject` (the image's descriptor): plain data, written with
    /// [`canonical_json`].
    pub fn manifest(&self, subject: Descriptor) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: Some(self.artifact_type.clone()),
            config: Descriptor::for_bytes(media_type::OCI_EMPTY, EMPTY_CONFIG),
            layers: vec![Descriptor::for_bytes(&self.media_type, &self.bytes)],
            subject: Some(subject),
            annotations: self.annotations.clone(),
        }
    }
}

/// The descriptor of a referrer as the spec lists it: `artifactType` from the manifest (or
/// its config's media type), and the manifest's annotations.
pub fn referrer_descriptor(manifest: &Manifest, bytes: &[u8]) -> Descriptor {
    let mut descriptor = Descriptor::for_bytes(manifest.media_type(), bytes);
    descriptor.artifact_type = Some(
        manifest
            .artifact_type
            .clone()
            .unwrap_or_else(|| manifest.config.media_type.clone()),
    );
    descriptor.annotations = manifest.annotations.clone();
    descriptor
}

/// An `InvalidInput` error for a call that cannot work as made.
fn usage(what: String, why: String) -> Error {
    Error::Io {
        what,
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    }
}

/// `subject`'s repository at `tag`.
fn tagged(subject: &Reference, tag: &str) -> Result<Reference> {
    subject
        .with_tag(tag)
        .map_err(|e| usage(format!("naming the tag {tag}"), e.to_string()))
}

fn subject_digest<'r>(subject: &'r Reference, what: &str) -> Result<&'r Digest> {
    subject.digest().ok_or_else(|| {
        usage(
            what.to_string(),
            format!(
                "the subject {subject} names no digest, and a tag may move (hint: pin it as \
                 {}/{}@sha256:..., the digest Client::resolve returns)",
                subject.registry(),
                subject.repository()
            ),
        )
    })
}

impl Client {
    /// Attaches `artifact` to the image `subject` (which must name a digest) in the
    /// subject's repository: pushes the blob and the empty config, then the artifact
    /// manifest by digest, then, if the registry did not process `subject`, the tag
    /// fallbacks (the referrers index `sha256-<hex>` and the tag `sha256-<hex>.<suffix>`).
    pub fn attach(&self, subject: &Reference, artifact: &Artifact) -> Result<Attached> {
        let what = format!("attaching {} to {subject}", artifact.artifact_type);
        let subject_digest = subject_digest(subject, &what)?;
        let (registry, repository) = (subject.registry(), subject.repository());
        // Check everything that can be checked before anything is written.
        let tag = fallback_tag(subject_digest, &artifact.fallback_suffix);
        validate_tag(&tag).map_err(|source| {
            usage(
                what.clone(),
                format!(
                    "fallback suffix {:?} makes the tag {tag:?}: {source} (hint: use a short \
                     suffix such as \"sbom\" or \"scan\")",
                    artifact.fallback_suffix
                ),
            )
        })?;
        if artifact.artifact_type.is_empty() || artifact.media_type.is_empty() {
            return Err(usage(
                what,
                "artifact_type and media_type must both be set (e.g. application/spdx+json)".into(),
            ));
        }
        let found = self.manifest(subject)?;
        let manifest = artifact.manifest(Descriptor::for_bytes(&found.media_type, &found.bytes));
        let bytes = canonical_json(&manifest);

        for (descriptor, content) in [
            (&manifest.config, EMPTY_CONFIG),
            (&manifest.layers[0], artifact.bytes.as_slice()),
        ] {
            let open = || Ok(Box::new(content) as wharf_oci::image::BlobReader<'_>);
            self.push_blob(registry, repository, descriptor, None, &open)?;
        }
        let digest = Digest::sha256(&bytes);
        let referrers_api = self.put_artifact(subject, subject_digest, &digest, &bytes)?;
        if referrers_api {
            return Ok(Attached {
                digest,
                fallback_tag: None,
                referrers_api,
            });
        }
        self.add_to_referrers_index(
            subject,
            subject_digest,
            referrer_descriptor(&manifest, &bytes),
        )?;
        self.put_manifest(registry, repository, &tag, media_type::OCI_MANIFEST, &bytes)?;
        Ok(Attached {
            digest,
            fallback_tag: Some(tag),
            referrers_api,
        })
    }

    /// Copies the artifact `descriptor` (a referrer of `from`, listed by
    /// [`Client::referrers`]) to the same subject digest in `to`'s repository: its blobs
    /// (mounted within one registry, so no byte is sent), its manifest by digest, and where
    /// `to` has no referrers API the same fallbacks [`Client::attach`] writes (the
    /// referrers index and the tag `sha256-<hex>.<suffix>`). The manifest bytes are copied
    /// as they are, so the copy has the original's digest.
    pub fn copy_referrer(
        &self,
        from: &Reference,
        to: &Reference,
        descriptor: &Descriptor,
        suffix: &str,
    ) -> Result<PushReport> {
        let what = format!("copying referrer {} of {from} to {to}", descriptor.digest);
        let subject_digest = subject_digest(to, &what)?;
        let tag = fallback_tag(subject_digest, suffix);
        validate_tag(&tag).map_err(|source| usage(what.clone(), source.to_string()))?;
        let raw = self.manifest(&from.with_digest(descriptor.digest.clone()))?;
        let manifest: Manifest =
            serde_json::from_slice(&raw.bytes).map_err(|e| Error::Protocol {
                what: what.clone(),
                why: format!("the artifact manifest does not parse: {e}"),
            })?;
        if manifest.subject.as_ref().map(|s| &s.digest) != Some(subject_digest) {
            return Err(Error::Protocol {
                what,
                why: "the artifact's subject is not the image being copied".into(),
            });
        }
        let mut report = self.copy_blobs(
            from,
            to,
            std::iter::once(&manifest.config).chain(&manifest.layers),
        )?;
        report.digest = Some(raw.digest.clone());
        if self.put_artifact(to, subject_digest, &raw.digest, &raw.bytes)? {
            return Ok(report);
        }
        self.add_to_referrers_index(
            to,
            subject_digest,
            referrer_descriptor(&manifest, &raw.bytes),
        )?;
        self.put_manifest(
            to.registry(),
            to.repository(),
            &tag,
            &raw.media_type,
            &raw.bytes,
        )?;
        Ok(report)
    }

    /// Copies `blobs` from `from`'s repository to `to`'s: mounted within one registry (no
    /// byte sent), else streamed through, each checked against its digest.
    pub fn copy_blobs<'d>(
        &self,
        from: &Reference,
        to: &Reference,
        blobs: impl IntoIterator<Item = &'d Descriptor>,
    ) -> Result<PushReport> {
        let mount_from = (from.registry() == to.registry()).then_some(from.repository());
        let mut report = PushReport::default();
        for blob in blobs {
            let open = || {
                self.blob(
                    from.registry(),
                    from.repository(),
                    &blob.digest,
                    Some(blob.size),
                )
            };
            report.add(self.push_blob(to.registry(), to.repository(), blob, mount_from, &open)?);
        }
        Ok(report)
    }

    /// PUTs the artifact manifest by digest; true if the registry answered `OCI-Subject`.
    fn put_artifact(
        &self,
        subject: &Reference,
        subject_digest: &Digest,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<bool> {
        let (registry, repository) = (subject.registry(), subject.repository());
        let what = format!("putting artifact manifest {registry}/{repository}@{digest}");
        let (_, headers) = self.put_manifest_answer(
            registry,
            repository,
            &digest.to_string(),
            media_type::OCI_MANIFEST,
            bytes,
        )?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match header(OCI_SUBJECT) {
            None => Ok(false),
            Some(processed) if processed == subject_digest.to_string() => Ok(true),
            Some(processed) => Err(Error::Protocol {
                what,
                why: format!(
                    "OCI-Subject says {processed}, the manifest's subject is {subject_digest}"
                ),
            }),
        }
    }

    /// The spec's client-side fallback: read the index under the referrers tag (or start
    /// an empty one), add `descriptor` unless it is there, and put it back. The tag schema
    /// has no atomic update, so the write is read back and redone if another writer's
    /// replaced it; [`Client::referrers`] also reads the suffix tags, which no race loses.
    fn add_to_referrers_index(
        &self,
        subject: &Reference,
        subject_digest: &Digest,
        descriptor: Descriptor,
    ) -> Result<()> {
        let (registry, repository) = (subject.registry(), subject.repository());
        let tag = referrers_tag(subject_digest);
        for _ in 0..INDEX_ATTEMPTS {
            let mut index = self
                .referrers_index(subject, subject_digest)?
                .unwrap_or_default();
            if index
                .manifests
                .iter()
                .any(|m| m.digest == descriptor.digest)
            {
                return Ok(());
            }
            index.manifests.push(descriptor.clone());
            let bytes = canonical_json(&index);
            self.put_manifest(registry, repository, &tag, media_type::OCI_INDEX, &bytes)?;
        }
        let listed = self
            .referrers_index(subject, subject_digest)?
            .is_some_and(|index| {
                index
                    .manifests
                    .iter()
                    .any(|m| m.digest == descriptor.digest)
            });
        if listed {
            return Ok(());
        }
        Err(Error::Protocol {
            what: format!("updating the referrers index {registry}/{repository}:{tag}"),
            why: format!(
                "another writer replaced it {INDEX_ATTEMPTS} times in a row (hint: attach \
                 again; the artifact is also tagged by its suffix)"
            ),
        })
    }

    /// The index under the referrers tag, or `None` if there is none.
    fn referrers_index(
        &self,
        subject: &Reference,
        subject_digest: &Digest,
    ) -> Result<Option<Index>> {
        let tag = referrers_tag(subject_digest);
        let reference = tagged(subject, &tag)?;
        let Some(found) = self.manifest_if_present(&reference)? else {
            return Ok(None);
        };
        if !media_type::is_index(&found.media_type) {
            return Err(Error::Protocol {
                what: format!("reading the referrers index {reference}"),
                why: format!(
                    "the tag holds a {}, not an image index (hint: the tag {tag} is reserved for \
                     the referrers of {subject_digest}; delete or move what is there)",
                    found.media_type
                ),
            });
        }
        serde_json::from_slice(&found.bytes)
            .map(Some)
            .map_err(|e| Error::Protocol {
                what: format!("reading the referrers index {reference}"),
                why: e.to_string(),
            })
    }

    /// The artifacts attached to `subject` (which must name a digest), optionally only those
    /// of `artifact_type`: from the referrers API, or where the registry has none (it
    /// answers 404), from the referrers index tag and the `sha256-<hex>.*` suffix tags whose
    /// manifests have this subject. Filtered here too, as registries may ignore the filter.
    pub fn referrers(
        &self,
        subject: &Reference,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let what = format!("listing the referrers of {subject}");
        let subject_digest = subject_digest(subject, &what)?;
        let mut found = match self.referrers_api(subject, subject_digest, artifact_type, &what)? {
            Some(listed) => listed,
            None => self.referrers_by_tags(subject, subject_digest)?,
        };
        if let Some(wanted) = artifact_type {
            found.retain(|d| d.artifact_type.as_deref() == Some(wanted));
        }
        Ok(found)
    }

    /// `GET /v2/<name>/referrers/<digest>`, following `Link` pages; `None` on 404.
    fn referrers_api(
        &self,
        subject: &Reference,
        subject_digest: &Digest,
        artifact_type: Option<&str>,
        what: &str,
    ) -> Result<Option<Vec<Descriptor>>> {
        let (registry, repository) = (subject.registry(), subject.repository());
        let base = self.base_url(registry)?;
        let mut url = reqwest::Url::parse(&format!(
            "{base}/v2/{repository}/referrers/{subject_digest}"
        ))
        .map_err(|e| usage(what.to_string(), format!("not a URL: {e}")))?;
        if let Some(wanted) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", wanted);
        }
        let mut url = url.to_string();
        let mut found = Vec::new();
        for page in 0..MAX_PAGES {
            let response = self.send(
                &Access::pull(registry, repository),
                what,
                Replay::Safe,
                &|http| http.get(&url).header(ACCEPT, media_type::OCI_INDEX),
            )?;
            if page == 0 && response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let response = check(response, what)?;
            let next = next_page(&base, &response);
            let mut body = Vec::new();
            response
                .take(4 << 20)
                .read_to_end(&mut body)
                .map_err(|source| Error::Io {
                    what: what.to_string(),
                    source,
                })?;
            let index: Index = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                what: what.to_string(),
                why: format!("the referrers answer is not an image index: {e}"),
            })?;
            found.extend(index.manifests);
            match next {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
        Err(Error::Protocol {
            what: what.to_string(),
            why: format!("more than {MAX_PAGES} pages of referrers"),
        })
    }

    /// The fallback listing: the referrers index, then artifacts tagged `sha256-<hex>.*`
    /// that the index misses (a lost concurrent update), each read to check its subject.
    fn referrers_by_tags(
        &self,
        subject: &Reference,
        subject_digest: &Digest,
    ) -> Result<Vec<Descriptor>> {
        let mut found = self
            .referrers_index(subject, subject_digest)?
            .map(|index| index.manifests)
            .unwrap_or_default();
        let prefix = format!("{}.", referrers_tag(subject_digest));
        let mut tags: Vec<String> = self
            .list_tags(subject.registry(), subject.repository())?
            .into_iter()
            .filter(|t| t.starts_with(&prefix))
            .collect();
        tags.sort();
        for tag in tags {
            let reference = tagged(subject, &tag)?;
            let raw = self.manifest(&reference)?;
            if found.iter().any(|d| d.digest == raw.digest)
                || !media_type::is_manifest(&raw.media_type)
            {
                continue;
            }
            // Tags of this shape are also cosign's (.sig, .att), which have no subject.
            let Ok(manifest) = serde_json::from_slice::<Manifest>(&raw.bytes) else {
                continue;
            };
            if manifest
                .subject
                .as_ref()
                .is_some_and(|s| &s.digest == subject_digest)
            {
                found.push(referrer_descriptor(&manifest, &raw.bytes));
            }
        }
        Ok(found)
    }

    /// Reads an artifact [`Client::referrers`] listed: its manifest (checked against the
    /// descriptor's digest) and its first layer's bytes (checked against the layer's digest
    /// and size), from the repository of `subject_repo`.
    pub fn artifact(
        &self,
        subject_repo: &Reference,
        descriptor: &Descriptor,
    ) -> Result<(Manifest, Vec<u8>)> {
        let reference = subject_repo.with_digest(descriptor.digest.clone());
        let what = format!("reading artifact {reference}");
        let raw = self.manifest(&reference)?;
        if !media_type::is_manifest(&raw.media_type) {
            return Err(Error::Oci(wharf_oci::Error::MediaType {
                what: format!("artifact {reference}"),
                media_type: raw.media_type,
                expected: media_type::OCI_MANIFEST,
            }));
        }
        let manifest: Manifest =
            serde_json::from_slice(&raw.bytes).map_err(|e| Error::Protocol {
                what: what.clone(),
                why: format!("the manifest does not parse: {e}"),
            })?;
        let Some(layer) = manifest.layers.first() else {
            return Err(Error::Protocol {
                what,
                why: "the artifact manifest has no layers, so no content to read".into(),
            });
        };
        if layer.size > MAX_ARTIFACT {
            return Err(usage(
                what,
                format!(
                    "the artifact is {} bytes, more than the {MAX_ARTIFACT} read into memory \
                     (hint: stream it with Client::blob)",
                    layer.size
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(layer.size as usize);
        self.blob(
            reference.registry(),
            reference.repository(),
            &layer.digest,
            Some(layer.size),
        )?
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io { what, source })?;
        Ok((manifest, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(64)).parse().unwrap()
    }

    #[test]
    fn tags_follow_the_referrers_tag_schema() {
        let subject = digest("a");
        assert_eq!(
            referrers_tag(&subject),
            format!("sha256-{}", "a".repeat(64))
        );
        assert_eq!(
            fallback_tag(&subject, "sbom"),
            format!("sha256-{}.sbom", "a".repeat(64))
        );
        // The distribution spec's tag grammar, `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, checked
        // by hand, and wharf's own validator agreeing on this tag and on a longer one.
        let tag = fallback_tag(&subject, "scan");
        assert_eq!(tag, format!("sha256-{}.scan", "a".repeat(64)));
        assert!(tag.len() <= 128, "{}", tag.len());
        assert!(
            tag.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !tag.starts_with(['.', '-']),
            "{tag}"
        );
        assert_eq!(validate_tag(&tag).ok(), Some(()));
        assert!(validate_tag(&format!("{tag}.{}", "x".repeat(128 - tag.len()))).is_err());
    }

    #[test]
    fn the_artifact_manifest_follows_the_artifact_guidance_and_is_deterministic() {
        let artifact = Artifact {
            artifact_type: media_type::SPDX_JSON.into(),
            media_type: media_type::SPDX_JSON.into(),
            bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
            annotations: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            fallback_suffix: "sbom".into(),
        };
        let subject = Descriptor::new(media_type::OCI_MANIFEST, digest("b"), 512);
        let manifest = artifact.manifest(subject.clone());
        assert_eq!(manifest.config.media_type, media_type::OCI_EMPTY);
        assert_eq!(
            manifest.config.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(manifest.config.size, 2);
        assert_eq!(manifest.subject, Some(subject.clone()));
        assert_eq!(manifest.layers[0].digest, Digest::sha256(&artifact.bytes));
        let bytes = canonical_json(&manifest);
        assert_eq!(bytes, canonical_json(&artifact.manifest(subject)));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""artifactType":"application/spdx+json""#),
            "{text}"
        );

        let listed = referrer_descriptor(&manifest, &bytes);
        assert_eq!(listed.artifact_type.as_deref(), Some(media_type::SPDX_JSON));
        assert_eq!(listed.annotations, artifact.annotations);
        assert_eq!(
            (listed.digest, listed.size),
            (Digest::sha256(&bytes), bytes.len() as u64)
        );
    }

    #[test]
    fn a_manifest_without_artifact_type_is_listed_under_its_config_type() {
        let mut manifest = Artifact {
            artifact_type: "x".into(),
            media_type: "y".into(),
            bytes: vec![],
            annotations: BTreeMap::new(),
            fallback_suffix: "s".into(),
        }
        .manifest(Descriptor::new(media_type::OCI_MANIFEST, digest("c"), 1));
        manifest.artifact_type = None;
        let listed = referrer_descriptor(&manifest, b"{}");
        assert_eq!(listed.artifact_type.as_deref(), Some(media_type::OCI_EMPTY));
    }
}
