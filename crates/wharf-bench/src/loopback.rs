//! What the registry benches share: a `docker-registry` on a free loopback port, and a
//! random image of 4 uncompressed layers written into an OCI layout.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wharf::oci::{Descriptor, Digest, ImageConfig, Layout, Manifest, canonical_json, media_type};

/// A docker-registry process on a free loopback port, killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry` on a free port of 127.0.0.1, storing into a temporary directory,
/// and waits (at most 10 s) until it accepts connections.
pub fn start_registry() -> Result<Registry> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: bench\n",
            dir.path().join("data").display()
        ),
    )?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting docker-registry (apt-get install docker-registry, or run bash pipelines/test.sh once)")?;
    let host = format!("127.0.0.1:{port}");
    let registry = Registry {
        child,
        host,
        _dir: dir,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&registry.host).is_ok() {
            return Ok(registry);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("docker-registry did not start on {}", registry.host)
}

/// Deterministic incompressible bytes, streamed (nothing held in memory).
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes a 4-layer image of uncompressed random layers into a layout, tagged `bench`, and
/// returns its manifest's digest. Images of different `seed`s share no layer.
pub fn make_image(dir: &Path, layer_mib: u64, seed: u64) -> Result<Digest> {
    let layout = Layout::create(dir)?;
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let mut layers = Vec::new();
    for layer in 1..=4u64 {
        let (digest, size) = layout.import_blob(Noise {
            state: (seed * 4 + layer).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            left: layer_mib << 20,
        })?;
        config.rootfs.diff_ids.push(digest.clone());
        layers.push(Descriptor::new(media_type::OCI_LAYER_TAR, digest, size));
    }
    let config = layout.write_blob_bytes(media_type::OCI_CONFIG, &canonical_json(&config))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: Default::default(),
    };
    let manifest = layout.write_blob_bytes(media_type::OCI_MANIFEST, &canonical_json(&manifest))?;
    layout.tag(&manifest, "bench")?;
    Ok(manifest.digest)
}
