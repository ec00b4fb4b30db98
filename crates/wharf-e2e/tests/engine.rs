//! `docker-daemon:` locations against a real Docker engine, checked with the engine's own
//! view of the image (`docker image inspect`) and with skopeo.

use std::process::Command;

use wharf::oci::{Image, Layout, Location, Platform, image};
use wharf::pipeline::copy::copy;
use wharf::registry::{Client, Config};
use wharf_e2e::registry::{Auth, Registry};
use wharf_e2e::{example_image, require_docker, require_skopeo, run};

fn location(text: &str) -> Location {
    text.parse().unwrap()
}

fn client() -> Client {
    Client::new(Config::new()).unwrap()
}

/// `docker image inspect NAME --format FORMAT`, trimmed.
fn inspect(name: &str, format: &str) -> String {
    let out = run(Command::new("docker").args(["image", "inspect", "--format", format, name]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Removes the engine images a test made, even when it fails.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "--force", name])
                .output();
        }
    }
}

#[test]
fn layout_to_engine_and_back_keeps_config_and_layers() {
    if !require_docker() {
        return;
    }
    let example = example_image();
    let source = Layout::open(&example.layout).unwrap();
    let original = source
        .image_by_tag(&example.tag, &Platform::linux_amd64())
        .unwrap();
    let original_manifest = image::manifest(&original).unwrap();
    let original_config = image::config(&original).unwrap();

    let name = format!("wharf-e2e/engine:{}", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    let loaded = copy(
        &client(),
        &Location::Layout {
            dir: example.layout.clone(),
            tag: Some(example.tag.clone()),
        },
        &location(&format!("docker-daemon:{name}")),
    )
    .unwrap();
    assert_eq!(loaded.digest, Some(example.digest.clone()));
    assert_eq!(loaded.blobs_uploaded, original_manifest.layers.len() + 1);

    // The engine's own view: image ID = config digest, the same layers, the tag.
    assert_eq!(
        inspect(&name, "{{.Id}}"),
        original_manifest.config.digest.to_string()
    );
    let diff_ids: Vec<String> = original_config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        inspect(&name, "{{range .RootFS.Layers}}{{.}} {{end}}"),
        diff_ids.join(" ")
    );
    assert_eq!(inspect(&name, "{{.Config.User}}"), "65532:65532");

    // Back out of the engine, twice: the same image gives the same digest, with the same
    // config and (recompressed with the same settings) the same layer blobs.
    let exported: Vec<_> = (0..2)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            let report = copy(
                &client(),
                &location(&format!("docker-daemon:{name}")),
                &location(&format!("oci:{}:back", dir.path().display())),
            )
            .unwrap();
            let layout = Layout::open(dir.path()).unwrap();
            let back = layout
                .image_by_tag("back", &Platform::linux_amd64())
                .unwrap();
            assert_eq!(
                Some(image::digest(&back).unwrap()),
                report.digest,
                "run {i}"
            );
            (report.digest.unwrap(), image::manifest(&back).unwrap(), dir)
        })
        .collect();
    assert_eq!(exported[0].0, exported[1].0);
    let back = &exported[0].1;
    assert_eq!(back.config, original_manifest.config);
    assert_eq!(back.layers, original_manifest.layers);
}

#[test]
fn an_image_docker_built_is_pushed_from_the_engine_to_a_registry() {
    if !require_docker() || !require_skopeo() {
        return;
    }
    let Some(registry) = Registry::try_start(Auth::None) else {
        return;
    };
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("hello.txt"), "made by docker\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\nUSER 1000\n",
    )
    .unwrap();
    let name = format!("wharf-e2e/built-by-docker:{}", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    run(Command::new("docker")
        .args(["build", "--quiet", "--tag", &name])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0"));
    let image_id = inspect(&name, "{{.Id}}");

    let destination = format!("{}/from-engine/app:v1", registry.host());
    let client = client();
    let report = copy(
        &client,
        &location(&format!("docker-daemon:{name}")),
        &location(&format!("docker://{destination}")),
    )
    .unwrap();
    // skopeo reads the pushed image: wharf's digest, and the engine's config.
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{destination}"),
    ]));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        report.digest.as_ref().unwrap().to_string()
    );
    let pushed = client
        .image(&destination.parse().unwrap(), &Platform::linux_amd64())
        .unwrap();
    assert_eq!(
        image::manifest(&pushed).unwrap().config.digest.to_string(),
        image_id
    );
    let layers = image::manifest(&pushed).unwrap().layers;
    assert_eq!(layers.len(), 1);
    // The layer is gzip: read it back through the registry and find the file docker put in.
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        pushed.blob(&layers[0].digest).unwrap(),
    ));
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "hello.txt"), "{names:?}");
}

#[test]
fn a_missing_engine_image_and_an_unreachable_engine_are_clear_errors() {
    if !require_docker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let error = copy(
        &client(),
        &location("docker-daemon:wharf-e2e/does-not-exist:nope"),
        &location(&format!("oci:{}:x", dir.path().display())),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("has no image wharf-e2e/does-not-exist:nope"),
        "{error}"
    );
    assert!(error.contains("docker images"), "{error}");

    // The unreachable engine is checked through the CLI, whose environment we control.
    let out = Command::new(wharf_e2e::xtask_binary())
        .args([
            "copy",
            "docker-daemon:wharf-e2e/any:thing",
            &format!("oci:{}:x", dir.path().display()),
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Docker engine"),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
}

/// An uncompressed tar layer with one file.
fn tar_layer(content: &[u8]) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    archive
        .append_data(&mut header, "file.txt", content)
        .unwrap();
    archive.into_inner().unwrap()
}

/// An image whose blob for `digest` is `served` instead of what the manifest promises:
/// a source that does not check its own blobs (its `raw_config` trusts them too).
struct Mismatched {
    manifest: Vec<u8>,
    digest: wharf::oci::Digest,
    served: Vec<u8>,
    inner: wharf::oci::MemoryImage,
}

impl Image for Mismatched {
    fn raw_manifest(&self) -> wharf::oci::Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(
        &self,
        digest: &wharf::oci::Digest,
    ) -> wharf::oci::Result<wharf::oci::image::BlobReader<'_>> {
        if *digest == self.digest {
            return Ok(Box::new(&self.served[..]));
        }
        self.inner.blob(digest)
    }

    fn raw_config(&self) -> wharf::oci::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let config = image::manifest(self)?.config.digest;
        std::io::Read::read_to_end(&mut self.blob(&config)?, &mut bytes).unwrap();
        Ok(bytes)
    }
}

/// A label of [`one_layer_image`]'s config.
const LABEL: &str = "wharf.test";

/// A loadable one-layer image for `content`, with the layer's descriptor.
fn one_layer_image(content: &[u8]) -> (wharf::oci::MemoryImage, wharf::oci::Descriptor) {
    let layer = tar_layer(content);
    let descriptor =
        wharf::oci::Descriptor::for_bytes(wharf::oci::media_type::OCI_LAYER_TAR, &layer);
    let mut config = wharf::oci::ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    config.config = Some(wharf::oci::ContainerConfig {
        labels: [(LABEL.to_string(), "original".to_string())].into(),
        ..Default::default()
    });
    config.rootfs.diff_ids.push(descriptor.digest.clone());
    (
        wharf::oci::MemoryImage::new(&config, vec![(descriptor.clone(), layer)]),
        descriptor,
    )
}

/// Loads `image` as `name` and returns the error; the engine must not have `name` after.
fn refused_load(image: &Mismatched, name: &str) -> String {
    let engine = wharf::engine::Engine::connect().unwrap();
    let reference: wharf::oci::Reference = name.parse().unwrap();
    let error = engine.load(image, &reference).unwrap_err().to_string();
    assert_eq!(
        engine.image_id(&reference).unwrap(),
        None,
        "the engine has {name} after a refused load: {error}"
    );
    error
}

/// Issue 10, item 6: a config that does not hash to the manifest's config digest is
/// refused before anything reaches the engine (before, the engine loaded and tagged it,
/// and only the image ID check after the load complained).
#[test]
fn load_refuses_a_config_that_does_not_match_its_digest() {
    if !require_docker() {
        return;
    }
    let (inner, _) = one_layer_image(b"config test\n");
    let manifest = image::manifest(&inner).unwrap();
    // A config the engine would load as it is: valid, and as long as the promised one.
    let altered = String::from_utf8(inner.raw_config().unwrap())
        .unwrap()
        .replace("\"original\"", "\"imposter\"")
        .into_bytes();
    assert_eq!(altered.len() as u64, manifest.config.size);
    let image = Mismatched {
        manifest: inner.raw_manifest().unwrap(),
        digest: manifest.config.digest.clone(),
        served: altered,
        inner,
    };
    let name = format!("wharf-e2e/bad-config:{}", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    let error = refused_load(&image, &name);
    assert!(error.contains("refusing config"), "{error}");
    assert!(
        error.contains(&manifest.config.digest.to_string()),
        "{error}"
    );
}

/// Issue 10, item 6: a layer whose bytes do not match the manifest's digest is refused,
/// even one the engine itself would accept (it matches the config's diff id, which is all
/// `docker load` checks): the request is aborted, so the engine loads nothing.
#[test]
fn load_refuses_a_layer_that_does_not_match_its_digest() {
    if !require_docker() {
        return;
    }
    // The config lists the served layer's diff id; the manifest names another layer of
    // the same size.
    let (inner, served_descriptor) = one_layer_image(b"served layer\n");
    let promised = tar_layer(b"other layer!\n");
    assert_eq!(promised.len() as u64, served_descriptor.size);
    let mut manifest = image::manifest(&inner).unwrap();
    let served = tar_layer(b"served layer\n");
    manifest.layers[0] =
        wharf::oci::Descriptor::for_bytes(wharf::oci::media_type::OCI_LAYER_TAR, &promised);
    let image = Mismatched {
        manifest: wharf::oci::canonical_json(&manifest),
        digest: manifest.layers[0].digest.clone(),
        served,
        inner,
    };
    let name = format!("wharf-e2e/bad-layer:{}", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    let error = refused_load(&image, &name);
    assert!(error.contains("refusing blobs/sha256/"), "{error}");
    assert!(
        error.contains(&manifest.layers[0].digest.to_string()),
        "{error}"
    );
}
