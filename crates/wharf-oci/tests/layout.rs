//! The OCI layout as sink and source.

use std::fs;
use std::io::Read;

use wharf_oci::{Image, Layout, Platform, image, random_image};

#[test]
fn write_then_read_back_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path().join("layout")).unwrap();
    let img = random_image(1, 3, 10_000);
    let (desc, stats) = layout.write_image(&img, Some("v1")).unwrap();
    assert_eq!(stats.blobs_written, 4, "config and three layers");
    assert_eq!(desc.digest, image::digest(&img).unwrap());

    let reopened = Layout::open(dir.path().join("layout")).unwrap();
    let back = reopened
        .image_by_tag("v1", &Platform::linux_amd64())
        .unwrap();
    assert_eq!(back.raw_manifest().unwrap(), img.raw_manifest().unwrap());
    assert_eq!(back.raw_config().unwrap(), img.raw_config().unwrap());
    for layer in image::manifest(&img).unwrap().layers {
        let mut bytes = Vec::new();
        back.blob(&layer.digest)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        layer.digest.verify(&bytes).unwrap();
    }

    // A second write skips every blob and keeps one entry per tag.
    let (_, again) = layout.write_image(&img, Some("v1")).unwrap();
    assert_eq!((again.blobs_written, again.blobs_skipped), (0, 4));
    assert_eq!(layout.tags().unwrap(), vec!["v1".to_string()]);
}

#[test]
fn retagging_moves_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let (a, _) = layout
        .write_image(&random_image(1, 1, 100), Some("x"))
        .unwrap();
    let (b, _) = layout
        .write_image(&random_image(2, 1, 100), Some("x"))
        .unwrap();
    assert_ne!(a.digest, b.digest);
    layout.tag(&a, "old").unwrap();
    assert_eq!(layout.resolve("x").unwrap().digest, b.digest);
    assert_eq!(layout.resolve("old").unwrap().digest, a.digest);
    let err = layout.resolve("nope").unwrap_err().to_string();
    assert!(err.contains("tags there: x, old"), "{err}");
}

#[test]
fn altered_blob_is_refused_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let img = random_image(3, 1, 1000);
    layout.write_image(&img, Some("t")).unwrap();
    let layer = image::manifest(&img).unwrap().layers.remove(0);
    let path = layout.blob_path(&layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&path, bytes).unwrap();

    let back = layout.image_by_tag("t", &Platform::linux_amd64()).unwrap();
    let err = back
        .blob(&layer.digest)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains(&layer.digest.to_string()), "{err}");

    // Copying the damaged image elsewhere fails and leaves no blob under that digest.
    let other = Layout::create(dir.path().join("copy")).unwrap();
    let err = other.write_image(&back, Some("t")).unwrap_err().to_string();
    assert!(err.contains("refusing blob"), "{err}");
    assert!(!other.blob_path(&layer.digest).exists());
    assert!(
        other.tags().unwrap().is_empty(),
        "no tag may point at an incomplete image"
    );
}

#[test]
fn opening_a_plain_directory_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = Layout::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is not an OCI image layout"), "{err}");
    assert!(err.contains("oci-layout"), "{err}");
}

#[test]
fn tagging_a_missing_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let desc = image::descriptor(&random_image(9, 1, 10)).unwrap();
    let err = layout.tag(&desc, "t").unwrap_err().to_string();
    assert!(err.contains("write the image before tagging it"), "{err}");
}

/// An image whose blobs take a while to start, recording how many are read at once.
struct Slow {
    inner: wharf_oci::MemoryImage,
    open: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl Image for Slow {
    fn raw_manifest(&self) -> wharf_oci::Result<Vec<u8>> {
        self.inner.raw_manifest()
    }

    fn blob(
        &self,
        digest: &wharf_oci::Digest,
    ) -> wharf_oci::Result<wharf_oci::image::BlobReader<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.open.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.open.fetch_sub(1, SeqCst);
        self.inner.blob(digest)
    }
}

#[test]
fn write_image_parallel_reads_blobs_at_once_and_writes_the_same_image() {
    let img = Slow {
        inner: random_image(7, 6, 10_000),
        open: Default::default(),
        peak: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let (descriptor, stats) = layout.write_image_parallel(&img, Some("p"), 4).unwrap();
    assert_eq!(descriptor.digest, image::digest(&img).unwrap());
    assert_eq!((stats.blobs_written, stats.blobs_skipped), (7, 0));
    let peak = img.peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=4).contains(&peak), "{peak} blobs read at once");
    // Read back through the verifying layout source: every blob complete.
    let back = layout
        .image_by_tag("p", &wharf_oci::Platform::linux_amd64())
        .unwrap();
    for layer in image::manifest(&back).unwrap().layers {
        std::io::copy(&mut back.blob(&layer.digest).unwrap(), &mut std::io::sink()).unwrap();
    }
    let (_, again) = layout.write_image_parallel(&img, Some("p"), 4).unwrap();
    assert_eq!((again.blobs_written, again.blobs_skipped), (0, 7));
}
