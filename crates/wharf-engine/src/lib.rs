//! The Docker Engine as a source and a sink of images: what `docker-daemon:REPO:TAG`
//! locations mean.
//!
//! The engine speaks `docker save` / `docker load` archives, not registry manifests, so:
//! - [`Engine::load`] streams any [`Image`] into the engine as a load archive (config, layers
//!   as they are, `manifest.json` naming the tag), then checks that the engine now has the
//!   image under that tag with the image ID it must have (the config's digest).
//! - [`Engine::export`] spools `docker save` into a temporary file, checks the config against
//!   the engine's image ID and every layer against the config's diff ids, and compresses the
//!   (uncompressed) layers with wharf-build's deterministic gzip into a temporary OCI layout.
//!   The same engine image therefore always becomes the same manifest digest, and everything
//!   downstream (registry push, layout) reads a plain [`wharf_oci::LayoutImage`].
//!
//! bollard is async; wharf is blocking. Each [`Engine`] owns one current-thread tokio
//! runtime and blocks on it: there is one connection at a time to drive, so no pool of
//! threads is needed.

mod build;
mod containers;
mod context;

pub use build::BuildRequest;
pub use containers::{Container, ContainerSpec};
pub use context::{DOCKERIGNORE, context_tar};

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use wharf_oci::{
    Descriptor, Digest, Image, Layout, LayoutImage, Manifest, Platform, Reference, VerifyingReader,
    canonical_json, image, media_type,
};

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Docker engine ({host}): {source} (start dockerd, or point DOCKER_HOST at a running engine)"
    )]
    Connect {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker engine has no image {name} (`docker images` lists what it has)")]
    NotFound { name: String },
    #[error("the Docker engine failed to {action} {name}: {why}")]
    Engine {
        action: &'static str,
        name: String,
        why: String,
    },
    #[error("the archive the Docker engine exported for {name} is not valid: {why}")]
    Archive { name: String, why: String },
    #[error(
        "the Docker engine loaded {name} but reports image ID {actual}; expected {expected} (the config's digest)"
    )]
    Loaded {
        name: String,
        expected: Digest,
        actual: String,
    },
    #[error(
        "docker-daemon:{0} has no tag; the engine names images by tag (add :TAG, e.g. docker-daemon:{0}:latest)"
    )]
    NoTag(Reference),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{why}")]
    Context { why: String },
    #[error("{}", build::describe_failure(step, message, output))]
    BuildFailed {
        /// `N/M (INSTRUCTION)`.
        step: String,
        /// The builder's message, e.g. `The command '/bin/sh -c make' returned a non-zero code: 2`.
        message: String,
        /// The step's last lines of output.
        output: Vec<String>,
    },
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error(transparent)]
    Build(#[from] wharf_build::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection to a Docker engine (`DOCKER_HOST`, or the local socket).
pub struct Engine {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
}

/// What loading an image into the engine sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The digest of the image's manifest (the engine keeps no manifest, but this is the
    /// image that was loaded).
    pub digest: Digest,
    /// The engine's image ID: the config's digest.
    pub image_id: Digest,
    /// Blobs sent: the config and every layer.
    pub blobs: usize,
    /// Bytes of blobs sent.
    pub bytes: u64,
}

impl Engine {
    /// Connects to the engine `DOCKER_HOST` names (unix:// or tcp://), or the local socket,
    /// and agrees on an API version with it.
    pub fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let connect = |source| Error::Connect {
            host: host.clone(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                context: "starting the runtime for Docker engine calls".into(),
                source,
            })?;
        let docker = Docker::connect_with_defaults().map_err(connect)?;
        // Older engines (Debian's 20.10 speaks API 1.41) refuse bollard's newer default.
        let docker = runtime
            .block_on(docker.negotiate_version())
            .map_err(connect)?;
        Ok(Engine { docker, runtime })
    }

    /// The engine's image ID for `name`, or `None` if it has no such image.
    pub fn image_id(&self, name: &Reference) -> Result<Option<String>> {
        let name = engine_name(name)?;
        match self.runtime.block_on(self.docker.inspect_image(&name)) {
            Ok(inspect) => Ok(inspect.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(Error::Engine {
                action: "inspect",
                name,
                why: e.to_string(),
            }),
        }
    }

    /// Loads `image` into the engine under `name` (which must have a tag), streaming the
    /// blobs without holding them in memory, and checks the result.
    pub fn load(&self, image: &(dyn Image + Sync), name: &Reference) -> Result<Loaded> {
        let engine_name = engine_name(name)?;
        let manifest = image::manifest(image)?;
        let digest = image::digest(image)?;
        // The engine names the image after whatever config it receives: check it first.
        let config = read_verified(image, &manifest.config)?;
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));

        let (produced, answer) = std::thread::scope(|scope| {
            let producer = scope.spawn(|| {
                let mut out = ChannelWriter {
                    chunk: Vec::with_capacity(CHUNK),
                    sender,
                };
                let written = write_load_archive(image, &manifest, &config, &engine_name, &mut out)
                    .and_then(|n| out.send_chunk().map(|()| n));
                if let Err(e) = &written {
                    // End the body with an error, not with a shorter archive the engine might
                    // still load: the request is aborted and nothing is loaded.
                    out.abort(e);
                }
                // Dropping the writer (and its sender) ends the request body.
                written
            });
            let options = ImportImageOptions {
                quiet: true,
                ..Default::default()
            };
            let answer = self.runtime.block_on(async {
                let mut messages = Vec::new();
                let mut replies = self.docker.import_image_stream(options, body, None);
                while let Some(reply) = replies.next().await {
                    match reply {
                        Ok(info) => {
                            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                                return Err(error);
                            }
                            messages.extend(info.stream);
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(messages)
            });
            (producer.join().expect("archive writer panicked"), answer)
        });
        // A failure to read the source is the cause of whatever the engine said after it.
        let bytes = produced?;
        answer.map_err(|why| Error::Engine {
            action: "load",
            name: engine_name.clone(),
            why,
        })?;

        let image_id = manifest.config.digest.clone();
        match self.image_id(name)? {
            Some(id) if id == image_id.to_string() => Ok(Loaded {
                digest,
                image_id,
                blobs: manifest.layers.len() + 1,
                bytes,
            }),
            actual => Err(Error::Loaded {
                name: engine_name,
                expected: image_id,
                actual: actual.unwrap_or_else(|| "no image".into()),
            }),
        }
    }

    /// Exports `name` from the engine into a temporary OCI layout (see the crate docs).
    pub fn export(&self, name: &Reference) -> Result<Exported> {
        let engine_name = engine_name(name)?;
        let Some(image_id) = self.image_id(name)? else {
            return Err(Error::NotFound { name: engine_name });
        };
        let dir = tempfile::Builder::new()
            .prefix("wharf-engine-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "creating a temporary directory for the exported image".into(),
                source,
            })?;
        let archive = self.save(&engine_name, dir.path())?;
        from_saved_archive(archive, &image_id, &engine_name, dir)
    }

    /// Streams `docker save NAME` into a file in `dir`.
    fn save(&self, name: &str, dir: &Path) -> Result<File> {
        let path = dir.join(SAVED);
        let io_error = |source| Error::Io {
            context: format!("writing the exported image to {}", path.display()),
            source,
        };
        let mut file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        self.runtime.block_on(async {
            let mut chunks = self.docker.export_image(name);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| Error::Engine {
                    action: "export",
                    name: name.to_string(),
                    why: e.to_string(),
                })?;
                file.write_all(&chunk).map_err(io_error)?;
            }
            Ok::<_, Error>(())
        })?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        Ok(file)
    }
}

/// Rebuilds the image of a `docker save` archive (spooled in `dir`, which the result keeps)
/// as an OCI layout in `dir`, checking the config against the engine's `image_id` and
/// every layer against the config's diff ids. Apart from [`Engine::export`] so tests can
/// feed it archives no engine would make.
fn from_saved_archive(
    mut archive: File,
    image_id: &str,
    engine_name: &str,
    dir: tempfile::TempDir,
) -> Result<Exported> {
    let invalid = |why: String| Error::Archive {
        name: engine_name.to_string(),
        why,
    };
    let entries = index_archive(&mut archive).map_err(|e| invalid(e.to_string()))?;
    let read = |archive: &mut File, path: &str| -> Result<Vec<u8>> {
        let (offset, size) = *entries
            .get(path)
            .ok_or_else(|| invalid(format!("it lists {path} but does not contain it")))?;
        let mut bytes = Vec::with_capacity(size as usize);
        archive
            .seek(SeekFrom::Start(offset))
            .and_then(|_| Read::take(&mut *archive, size).read_to_end(&mut bytes))
            .map_err(|e| invalid(format!("reading {path}: {e}")))?;
        Ok(bytes)
    };

    let listed: Vec<SaveManifest> = serde_json::from_slice(&read(&mut archive, "manifest.json")?)
        .map_err(|e| invalid(format!("manifest.json: {e}")))?;
    let [listed] = listed.as_slice() else {
        return Err(invalid(format!(
            "manifest.json lists {} images, expected 1",
            listed.len()
        )));
    };
    let config_bytes = read(&mut archive, &listed.config)?;
    let config_descriptor = Descriptor::for_bytes(media_type::OCI_CONFIG, &config_bytes);
    if config_descriptor.digest.to_string() != image_id {
        return Err(invalid(format!(
            "its config has digest {}, but the engine's image ID is {image_id}",
            config_descriptor.digest
        )));
    }
    let config = image::parse_config(&config_bytes)?;
    if config.rootfs.diff_ids.len() != listed.layers.len() {
        return Err(invalid(format!(
            "the config lists {} layers, manifest.json {}",
            config.rootfs.diff_ids.len(),
            listed.layers.len()
        )));
    }

    let layout = Layout::create(dir.path().join("layout"))?;
    let mut layers = Vec::with_capacity(listed.layers.len());
    for (path, diff_id) in listed.layers.iter().zip(&config.rootfs.diff_ids) {
        let (offset, size) = *entries
            .get(path.as_str())
            .ok_or_else(|| invalid(format!("it lists {path} but does not contain it")))?;
        archive
            .seek(SeekFrom::Start(offset))
            .map_err(|e| invalid(format!("reading {path}: {e}")))?;
        let layer = wharf_build::compress_tar(&mut Read::take(&mut archive, size), &layout)?;
        if &layer.diff_id != diff_id {
            return Err(invalid(format!(
                "layer {path} has digest {}, but the config says {diff_id}",
                layer.diff_id
            )));
        }
        layers.push(layer.descriptor);
    }
    layout.write_blob_bytes(media_type::OCI_CONFIG, &config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: config_descriptor,
        layers,
        subject: None,
        annotations: Default::default(),
    };
    let descriptor =
        layout.write_blob_bytes(media_type::OCI_MANIFEST, &canonical_json(&manifest))?;
    // The spooled archive is no longer needed: free the disk before the caller copies.
    drop(archive);
    let _ = std::fs::remove_file(dir.path().join(SAVED));
    Ok(Exported {
        image: layout.image(&descriptor, &Platform::linux_amd64())?,
        descriptor,
        _dir: dir,
    })
}

/// An image exported from the engine, in a temporary OCI layout removed on drop.
pub struct Exported {
    image: LayoutImage,
    descriptor: Descriptor,
    _dir: tempfile::TempDir,
}

impl Exported {
    pub fn image(&self) -> &LayoutImage {
        &self.image
    }

    /// The manifest's descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }
}

/// Name of the spooled `docker save` archive inside the temporary directory.
const SAVED: &str = "saved.tar";
/// Bytes per chunk of the load request body, and how many may wait to be sent.
const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;

/// The one entry of a `docker save` `manifest.json` that wharf reads.
#[derive(Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The name the engine knows the image by: `REPO:TAG` exactly as docker prints it
/// (`docker.io/library/` dropped), so `docker images` shows what the user typed.
fn engine_name(reference: &Reference) -> Result<String> {
    let Some(tag) = reference.tag() else {
        return Err(Error::NoTag(reference.clone()));
    };
    let repository = match reference.registry() {
        "docker.io" => reference
            .repository()
            .strip_prefix("library/")
            .unwrap_or(reference.repository())
            .to_string(),
        registry => format!("{registry}/{}", reference.repository()),
    };
    Ok(format!("{repository}:{tag}"))
}

/// Where each regular file of a tar archive starts, and its size, by path.
fn index_archive(file: &mut File) -> io::Result<HashMap<String, (u64, u64)>> {
    let mut entries = HashMap::new();
    let mut archive = tar::Archive::new(&mut *file);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            let path = entry.path()?.to_string_lossy().into_owned();
            entries.insert(path, (entry.raw_file_position(), entry.size()));
        }
    }
    Ok(entries)
}

/// Writes the archive `docker load` reads: `manifest.json`, then the config and the layers
/// under `blobs/sha256/`. Returns the blob bytes written.
fn write_load_archive(
    image: &(dyn Image + Sync),
    manifest: &Manifest,
    config: &[u8],
    name: &str,
    out: &mut ChannelWriter,
) -> Result<u64> {
    let path = |digest: &Digest| format!("blobs/{}", digest.to_string().replacen(':', "/", 1));
    let listed = serde_json::json!([{
        "Config": path(&manifest.config.digest),
        "RepoTags": [name],
        "Layers": manifest.layers.iter().map(|l| path(&l.digest)).collect::<Vec<_>>(),
    }]);
    let io_error = |context: String| move |source| Error::Io { context, source };
    let mut archive = tar::Builder::new(out);
    let mut append = |entry: &str, size: u64, content: &mut dyn Read| {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, entry, content)
            .map_err(|source: io::Error| {
                let doing = if source.kind() == io::ErrorKind::InvalidData {
                    "refusing"
                } else {
                    "sending"
                };
                io_error(format!("{doing} {entry} for the Docker engine"))(source)
            })
    };
    let listed = serde_json::to_vec(&listed).expect("JSON values serialize");
    append("manifest.json", listed.len() as u64, &mut listed.as_slice())?;
    append(
        &path(&manifest.config.digest),
        manifest.config.size,
        &mut &config[..],
    )?;
    let mut bytes = manifest.config.size;
    for layer in &manifest.layers {
        // Checked at the end of each layer: a mismatch fails the `read` that would end it.
        let mut content = VerifyingReader::new(
            image.blob(&layer.digest)?,
            layer.digest.clone(),
            Some(layer.size),
        );
        append(&path(&layer.digest), layer.size, &mut content)?;
        bytes += layer.size;
    }
    archive
        .into_inner()
        .and_then(|out| out.flush())
        .map_err(io_error(
            "finishing the archive for the Docker engine".into(),
        ))?;
    Ok(bytes)
}

/// The config's bytes, checked against its descriptor whatever the image's own
/// `raw_config` checks.
fn read_verified(image: &(dyn Image + Sync), config: &Descriptor) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(config.size as usize);
    VerifyingReader::new(
        image.blob(&config.digest)?,
        config.digest.clone(),
        Some(config.size),
    )
    .read_to_end(&mut bytes)
    .map_err(|source| Error::Io {
        context: format!(
            "refusing config {} for the Docker engine (nothing was sent)",
            config.digest
        ),
        source,
    })?;
    Ok(bytes)
}

/// One piece of the load request's body; an error aborts the request.
type Chunk = std::result::Result<Bytes, io::Error>;

/// Sends what is written through a channel, in chunks, as the body of the load request.
struct ChannelWriter {
    chunk: Vec<u8>,
    sender: tokio::sync::mpsc::Sender<Chunk>,
}

impl ChannelWriter {
    /// Ends the request body with an error (what is still buffered is never sent).
    fn abort(&mut self, error: &Error) {
        self.chunk.clear();
        // If the engine stopped reading, the request has failed already.
        let _ = self
            .sender
            .blocking_send(Err(io::Error::other(error.to_string())));
    }

    fn send_chunk(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(full)))
            .map_err(|_| Error::Io {
                context: "sending the image to the Docker engine".into(),
                source: io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the engine stopped reading (its answer follows)",
                ),
            })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.send_chunk().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_drop_docker_hub_defaults_and_need_a_tag() {
        let name = |s: &str| engine_name(&s.parse().unwrap()).map_err(|e| e.to_string());
        assert_eq!(name("hello:1").unwrap(), "hello:1");
        assert_eq!(name("someone/hello:1").unwrap(), "someone/hello:1");
        assert_eq!(
            name("127.0.0.1:5000/a/b:dev").unwrap(),
            "127.0.0.1:5000/a/b:dev"
        );
        let error = name(&format!("hello@sha256:{}", "0".repeat(64))).unwrap_err();
        assert!(error.contains("add :TAG"), "{error}");
    }

    /// The content of a `docker save` archive as the engine writes one: `manifest.json`,
    /// the config and one layer tar.
    struct Saved {
        config: Vec<u8>,
        layer: Vec<u8>,
    }

    impl Saved {
        fn new() -> Saved {
            let layer = b"pretend layer tar".to_vec();
            let mut config = wharf_oci::ImageConfig {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..Default::default()
            };
            config.rootfs.diff_ids.push(Digest::sha256(&layer));
            Saved {
                config: canonical_json(&config),
                layer,
            }
        }

        fn image_id(&self) -> String {
            Digest::sha256(&self.config).to_string()
        }

        /// Spools the archive into `dir` as `export` does, and rebuilds it.
        fn export(&self, image_id: &str) -> Result<Exported> {
            let dir = tempfile::tempdir().unwrap();
            let mut archive = tar::Builder::new(Vec::new());
            let listed =
                br#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l1/layer.tar"]}]"#;
            for (path, bytes) in [
                ("manifest.json", &listed[..]),
                ("config.json", &self.config[..]),
                ("l1/layer.tar", &self.layer[..]),
            ] {
                let mut header = tar::Header::new_ustar();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                archive.append_data(&mut header, path, bytes).unwrap();
            }
            std::fs::write(dir.path().join(SAVED), archive.into_inner().unwrap()).unwrap();
            let file = File::open(dir.path().join(SAVED)).unwrap();
            from_saved_archive(file, image_id, "x:1", dir)
        }
    }

    #[test]
    fn an_exported_archive_becomes_a_layout_image_with_the_same_config() {
        let saved = Saved::new();
        let exported = saved.export(&saved.image_id()).unwrap();
        let config = exported.image().raw_config().unwrap();
        assert_eq!(config, saved.config);
        let manifest = image::manifest(exported.image()).unwrap();
        assert_eq!(manifest.layers.len(), 1);
        let mut compressed = Vec::new();
        exported
            .image()
            .blob(&manifest.layers[0].digest)
            .unwrap()
            .read_to_end(&mut compressed)
            .unwrap();
        let mut layer = Vec::new();
        flate2::read::MultiGzDecoder::new(&compressed[..])
            .read_to_end(&mut layer)
            .unwrap();
        assert_eq!(layer, saved.layer);
    }

    /// Issue 10, item 6: export refuses an archive whose config is not the image the engine
    /// named (its ID is the config's digest).
    #[test]
    fn export_refuses_a_config_that_is_not_the_engine_image() {
        let mut saved = Saved::new();
        let image_id = saved.image_id();
        saved.config.push(b' ');
        let error = saved.export(&image_id).err().unwrap().to_string();
        assert!(
            error.contains(&format!(
                "its config has digest {}, but the engine's image ID is {image_id}",
                Digest::sha256(&saved.config)
            )),
            "{error}"
        );
    }

    /// Issue 10, item 6: export refuses a layer that does not match the config's diff id.
    #[test]
    fn export_refuses_a_layer_that_does_not_match_its_diff_id() {
        let mut saved = Saved::new();
        let diff_id = Digest::sha256(&saved.layer);
        saved.layer[3] ^= 0x01;
        let error = saved.export(&saved.image_id()).err().unwrap().to_string();
        assert!(
            error.contains(&format!(
                "layer l1/layer.tar has digest {}, but the config says {diff_id}",
                Digest::sha256(&saved.layer)
            )),
            "{error}"
        );
    }
}
