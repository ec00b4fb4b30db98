//! Artifacts (an SBOM, a scan report) attached to an image: against the real CNCF
//! distribution (no referrers API, so the tag fallbacks), checked with skopeo and raw HTTP;
//! and the referrers-API branch against `ReferrersRegistry`, a double for the one feature
//! no registry here has.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use wharf::oci::{Descriptor, Digest, Reference, media_type, random_image};
use wharf::registry::credentials::{Credential, CredentialError, CredentialSource};
use wharf::registry::referrers::{fallback_tag, referrers_tag};
use wharf::registry::{Artifact, Client, Config};
use wharf_e2e::registry::{Auth, ReferrersRegistry, Registry, http};
use wharf_e2e::{require_skopeo, run};

struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn get(&self, _registry: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(None)
    }
}

fn client() -> Client {
    let mut config = Config::new();
    config.credentials = Arc::new(NoCredentials);
    Client::new(config).unwrap()
}

fn sbom() -> Artifact {
    Artifact {
        artifact_type: media_type::CYCLONEDX_JSON.into(),
        media_type: media_type::CYCLONEDX_JSON.into(),
        bytes: br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#.to_vec(),
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".into(),
            "2024-05-01T00:00:00Z".into(),
        )]),
        fallback_suffix: "sbom".into(),
    }
}

fn scan() -> Artifact {
    Artifact {
        artifact_type: media_type::WHARF_SCAN.into(),
        media_type: "application/json".into(),
        bytes: br#"{"vulnerabilities":[{"id":"CVE-2024-0001","severity":"high"}]}"#.to_vec(),
        annotations: BTreeMap::new(),
        fallback_suffix: "scan".into(),
    }
}

/// Pushes a random image to `host/repository:v1` and returns it pinned by digest.
fn push_image(client: &Client, host: &str, repository: &str, seed: u64) -> Reference {
    let tagged: Reference = format!("{host}/{repository}:v1").parse().unwrap();
    let report = client
        .push(&random_image(seed, 2, 4096), &tagged, None)
        .unwrap();
    Reference::new(host, repository, None, report.digest).unwrap()
}

fn digests(found: &[Descriptor]) -> Vec<Digest> {
    let mut digests: Vec<_> = found.iter().map(|d| d.digest.clone()).collect();
    digests.sort_by_key(|d| d.to_string());
    digests
}

fn sorted(mut digests: Vec<Digest>) -> Vec<Digest> {
    digests.sort_by_key(|d| d.to_string());
    digests
}

/// Reads every listed artifact back and checks it is byte-for-byte what was attached.
fn check_read_back(client: &Client, subject: &Reference, found: &[Descriptor], sent: &[Artifact]) {
    for descriptor in found {
        let (manifest, bytes) = client.artifact(subject, descriptor).unwrap();
        let artifact = sent
            .iter()
            .find(|a| Some(&a.artifact_type) == descriptor.artifact_type.as_ref())
            .expect("a listed artifact is one that was attached");
        assert_eq!(bytes, artifact.bytes);
        assert_eq!(
            manifest.artifact_type.as_ref(),
            Some(&artifact.artifact_type)
        );
        assert_eq!(manifest.annotations, artifact.annotations);
        assert_eq!(manifest.config.media_type, media_type::OCI_EMPTY);
        assert_eq!(
            manifest.subject.map(|s| s.digest).as_ref(),
            subject.digest()
        );
    }
}

#[test]
fn scan_results_attach_to_an_image_with_the_tag_fallback_and_read_back() {
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let (client, host) = (client(), registry.host());
    let subject = push_image(&client, &host, "wharf/scanned", 7);
    let image = subject.digest().unwrap().clone();

    let sbom_attached = client.attach(&subject, &sbom()).unwrap();
    let scan_attached = client.attach(&subject, &scan()).unwrap();
    assert!(
        !sbom_attached.referrers_api,
        "distribution 2.8 ignores subject"
    );
    assert_eq!(
        sbom_attached.fallback_tag.as_deref(),
        Some(fallback_tag(&image, "sbom").as_str())
    );
    assert_eq!(
        scan_attached.fallback_tag,
        Some(format!("sha256-{}.scan", image.hex()))
    );
    // The same artifact again: the same manifest, listed once.
    assert_eq!(client.attach(&subject, &sbom()).unwrap(), sbom_attached);

    let all = client.referrers(&subject, None).unwrap();
    assert_eq!(
        digests(&all),
        sorted(vec![
            sbom_attached.digest.clone(),
            scan_attached.digest.clone()
        ]),
        "{all:?}"
    );
    let sboms = client
        .referrers(&subject, Some(media_type::CYCLONEDX_JSON))
        .unwrap();
    assert_eq!(digests(&sboms), vec![sbom_attached.digest.clone()]);
    assert_eq!(
        sboms[0].annotations["org.opencontainers.image.created"],
        "2024-05-01T00:00:00Z"
    );
    assert!(
        client
            .referrers(&subject, Some(media_type::SARIF_JSON))
            .unwrap()
            .is_empty()
    );
    check_read_back(&client, &subject, &all, &[sbom(), scan()]);

    let mut tags = client.list_tags(&host, "wharf/scanned").unwrap();
    tags.sort();
    let index_tag = referrers_tag(&image);
    assert_eq!(
        tags,
        [
            index_tag.clone(),
            fallback_tag(&image, "sbom"),
            fallback_tag(&image, "scan"),
            "v1".to_string()
        ]
    );

    // Independent clients see the same: skopeo reads the suffix tag, raw HTTP the index.
    if require_skopeo() {
        let out = run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{host}/wharf/scanned:{}",
                fallback_tag(&image, "sbom")
            ),
        ]));
        assert_eq!(Digest::sha256(&out.stdout), sbom_attached.digest);
        let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(manifest["subject"]["digest"], image.to_string());
        assert_eq!(manifest["artifactType"], media_type::CYCLONEDX_JSON);
        assert_eq!(
            manifest["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            manifest["layers"][0]["digest"],
            Digest::sha256(&sbom().bytes).to_string()
        );
    }
    let index = http::request(
        &host,
        "GET",
        &format!("/v2/wharf/scanned/manifests/{index_tag}"),
        &[("Accept", media_type::OCI_INDEX)],
        b"",
    )
    .unwrap();
    assert_eq!(index.status, 200, "{}", index.text());
    let index = index.json();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{index}");
    assert!(listed.iter().any(|d| {
        d["digest"] == scan_attached.digest.to_string()
            && d["artifactType"] == media_type::WHARF_SCAN
    }));

    // Another writer replaces the index with one that lacks the SBOM (the tag schema has no
    // atomic update): the SBOM is still listed, found by its suffix tag.
    let mut lossy = index.clone();
    lossy["manifests"] = serde_json::Value::Array(
        listed
            .iter()
            .filter(|d| d["digest"] == scan_attached.digest.to_string())
            .cloned()
            .collect(),
    );
    let put = http::request(
        &host,
        "PUT",
        &format!("/v2/wharf/scanned/manifests/{index_tag}"),
        &[("Content-Type", media_type::OCI_INDEX)],
        &serde_json::to_vec(&lossy).unwrap(),
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        digests(&client.referrers(&subject, None).unwrap()),
        digests(&all)
    );
    // Attaching again repairs the index.
    client.attach(&subject, &sbom()).unwrap();
    let index_bytes = client
        .manifest(&subject.with_tag(&index_tag).unwrap())
        .unwrap();
    let repaired: serde_json::Value = serde_json::from_slice(&index_bytes.bytes).unwrap();
    assert_eq!(repaired["manifests"].as_array().unwrap().len(), 2);

    // An image with nothing attached has no referrers; a tag is not a subject.
    let bare = push_image(&client, &host, "wharf/scanned", 8);
    assert!(client.referrers(&bare, None).unwrap().is_empty());
    let tagged: Reference = format!("{host}/wharf/scanned:v1").parse().unwrap();
    let err = client.attach(&tagged, &sbom()).unwrap_err().to_string();
    assert!(
        err.contains("names no digest") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn a_registry_with_the_referrers_api_gets_no_fallback_tags() {
    let registry = ReferrersRegistry::start(true);
    let (client, host) = (client(), registry.host());
    let subject = push_image(&client, &host, "app", 9);
    let image = subject.digest().unwrap().clone();

    let sbom_attached = client.attach(&subject, &sbom()).unwrap();
    let scan_attached = client.attach(&subject, &scan()).unwrap();
    assert!(sbom_attached.referrers_api && scan_attached.referrers_api);
    assert_eq!(sbom_attached.fallback_tag, None);
    assert_eq!(client.attach(&subject, &sbom()).unwrap(), sbom_attached);

    let all = client.referrers(&subject, None).unwrap();
    assert_eq!(
        digests(&all),
        sorted(vec![
            sbom_attached.digest.clone(),
            scan_attached.digest.clone()
        ])
    );
    let scans = client
        .referrers(&subject, Some(media_type::WHARF_SCAN))
        .unwrap();
    assert_eq!(digests(&scans), vec![scan_attached.digest.clone()]);
    check_read_back(&client, &subject, &all, &[sbom(), scan()]);

    let requests = registry.requests();
    let fallback = referrers_tag(&image);
    assert!(
        !requests
            .iter()
            .any(|r| r.contains(&fallback) || r.contains("/tags/list")),
        "no tag fallback with the referrers API: {requests:#?}"
    );
    assert!(
        requests.contains(&format!(
            "GET /v2/app/referrers/{image}?artifactType=application%2Fvnd.wharf.scan.v1%2Bjson"
        )),
        "{requests:#?}"
    );
}

#[test]
fn referrers_are_filtered_by_type_when_the_registry_ignores_the_filter() {
    let registry = ReferrersRegistry::start(false);
    let (client, host) = (client(), registry.host());
    let subject = push_image(&client, &host, "app", 10);
    let sbom_attached = client.attach(&subject, &sbom()).unwrap();
    client.attach(&subject, &scan()).unwrap();
    let sboms = client
        .referrers(&subject, Some(media_type::CYCLONEDX_JSON))
        .unwrap();
    assert_eq!(digests(&sboms), [sbom_attached.digest]);
}
