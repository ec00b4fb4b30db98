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

/// Flips one byte in the middle of a blob, keeping its size (what `has_blob` checks).
fn damage(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Issue 10, item 7: a blob damaged on disk is written again, not skipped as "already
/// there", by both writers, for layers, config and manifest alike.
#[test]
fn a_damaged_blob_is_rewritten_instead_of_reused() {
    let img = random_image(31, 2, 5000);
    let manifest = image::manifest(&img).unwrap();
    let digest = image::digest(&img).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    layout.write_image(&img, Some("t")).unwrap();

    let layer = &manifest.layers[1];
    for blob in [&manifest.layers[1].digest, &manifest.config.digest, &digest] {
        damage(&layout.blob_path(blob));
    }
    assert!(
        layout.has_blob(layer),
        "same size: only the content differs"
    );
    assert!(!layout.has_intact_blob(layer));
    let (_, stats) = layout.write_image(&img, Some("t")).unwrap();
    assert_eq!(
        (stats.blobs_written, stats.blobs_skipped),
        (2, 1),
        "the damaged layer and config are written again, the intact layer skipped"
    );
    let original = |d: &wharf_oci::Digest| -> Vec<u8> {
        let mut bytes = Vec::new();
        img.blob(d).unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    };
    assert_eq!(
        fs::read(layout.blob_path(&layer.digest)).unwrap(),
        original(&layer.digest)
    );
    assert_eq!(
        fs::read(layout.blob_path(&manifest.config.digest)).unwrap(),
        img.raw_config().unwrap()
    );
    assert_eq!(
        fs::read(layout.blob_path(&digest)).unwrap(),
        img.raw_manifest().unwrap()
    );

    // The parallel writer (pulls from a registry) repairs the same way.
    damage(&layout.blob_path(&layer.digest));
    let (_, stats) = layout.write_image_parallel(&img, Some("t"), 2).unwrap();
    assert_eq!((stats.blobs_written, stats.blobs_skipped), (1, 2));
    assert!(layout.has_intact_blob(layer));
}

/// Names in `blobs/sha256/` that are not a sha256 digest.
fn not_digests(layout: &Layout) -> Vec<String> {
    fs::read_dir(layout.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| {
            format!("sha256:{name}")
                .parse::<wharf_oci::Digest>()
                .is_err()
        })
        .collect()
}

fn temp_files(layout: &Layout) -> Vec<std::path::PathBuf> {
    match fs::read_dir(layout.root().join(wharf_oci::layout::TEMP_DIR)) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Issue 10, item 8: a blob being written lives in the layout's temporary directory, never
/// in `blobs/sha256/`, and a second writer opening the layout meanwhile leaves it alone
/// (it is locked); once committed it is gone from there.
#[test]
fn a_blob_in_progress_is_outside_blobs_and_safe_from_a_second_writer() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let mut writer = layout.blob_writer().unwrap();
    writer.write_all(&[7; 300_000]).unwrap();
    writer.flush().unwrap();
    assert_eq!(not_digests(&layout), Vec::<String>::new());
    let in_progress = temp_files(&layout);
    assert_eq!(in_progress.len(), 1, "{in_progress:?}");

    let second = Layout::open(dir.path()).unwrap();
    second
        .write_image(&random_image(2, 1, 100), Some("other"))
        .unwrap();
    assert_eq!(
        temp_files(&layout),
        in_progress,
        "a live writer's file stays"
    );

    let (digest, size) = writer.commit().unwrap();
    assert_eq!(
        (digest, size),
        (wharf_oci::Digest::sha256(&[7; 300_000]), 300_000)
    );
    assert_eq!(temp_files(&layout), Vec::<std::path::PathBuf>::new());
}

/// Issue 10, item 8: opening a layout removes the temporary files nobody holds (a killed
/// writer's), and the `.tmp-*` files older wharf versions left beside the blobs once they
/// are old enough that no writer can still be filling them. `tests/crash_safety.rs` has
/// the SIGKILLed writer; the e2e tests run umoci on the result.
#[test]
fn opening_a_layout_removes_abandoned_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let temp_dir = dir.path().join(wharf_oci::layout::TEMP_DIR);
    fs::create_dir_all(&temp_dir).unwrap();
    fs::write(temp_dir.join("abandoned"), b"half a blob").unwrap();
    let held = temp_dir.join("held");
    let holder = fs::File::create(&held).unwrap();
    holder.lock().unwrap();

    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let blobs = dir.path().join("blobs/sha256");
    for (name, modified) in [
        (blobs.join(".tmp-old"), Some(old)),
        (dir.path().join(".tmp-old-index"), Some(old)),
        (blobs.join(".tmp-recent"), None),
    ] {
        let file = fs::File::create(&name).unwrap();
        if let Some(modified) = modified {
            file.set_modified(modified).unwrap();
        }
    }

    Layout::open(dir.path()).unwrap();
    assert_eq!(temp_files(&layout), vec![held.clone()]);
    assert!(!blobs.join(".tmp-old").exists());
    assert!(!dir.path().join(".tmp-old-index").exists());
    assert!(
        blobs.join(".tmp-recent").exists(),
        "an old writer may still be filling it"
    );
    drop(holder);
    Layout::open(dir.path()).unwrap();
    assert_eq!(temp_files(&layout), Vec::<std::path::PathBuf>::new());
}

/// Issue 10, item 10: an image listed without a tag (a copy to `oci:DIR`) is in the index
/// once, a tag for the same manifest takes its place, and tags for other images keep it.
#[test]
fn an_untagged_image_is_listed_by_digest_and_kept_by_later_tags() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let (untagged, _) = layout.write_image(&random_image(41, 1, 100), None).unwrap();
    layout.add_untagged(&untagged).unwrap();
    layout.add_untagged(&untagged).unwrap();
    let entries = |layout: &Layout| -> Vec<(String, Option<String>)> {
        layout
            .index()
            .unwrap()
            .manifests
            .iter()
            .map(|d| (d.digest.to_string(), d.ref_name().map(str::to_string)))
            .collect()
    };
    assert_eq!(entries(&layout), vec![(untagged.digest.to_string(), None)]);

    let (other, _) = layout
        .write_image(&random_image(42, 1, 100), Some("other"))
        .unwrap();
    assert_eq!(
        entries(&layout),
        vec![
            (untagged.digest.to_string(), None),
            (other.digest.to_string(), Some("other".into())),
        ]
    );
    layout.tag(&untagged, "named").unwrap();
    assert_eq!(
        entries(&layout),
        vec![
            (other.digest.to_string(), Some("other".into())),
            (untagged.digest.to_string(), Some("named".into())),
        ]
    );
    layout.add_untagged(&other).unwrap();
    assert_eq!(entries(&layout).len(), 2, "already referenced by its tag");

    let missing = image::descriptor(&random_image(43, 1, 10)).unwrap();
    let err = layout.add_untagged(&missing).unwrap_err().to_string();
    assert!(err.contains("write the image before listing it"), "{err}");
}

/// Issue 10, item 11: a file where the layout directory should be is named in the error.
#[test]
fn a_file_in_place_of_the_layout_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    for err in [
        Layout::create(&file).unwrap_err().to_string(),
        Layout::open(&file).unwrap_err().to_string(),
    ] {
        assert_eq!(
            err,
            format!(
                "{}: is a file, not an OCI layout directory (name a directory; wharf creates it if it does not exist)",
                file.display()
            )
        );
    }
    assert_eq!(fs::read(&file).unwrap(), b"x", "the file is left alone");
}
