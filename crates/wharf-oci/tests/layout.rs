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
