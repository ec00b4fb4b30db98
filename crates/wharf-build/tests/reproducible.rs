//! Reproducibility: the same inputs give the same digests, whatever the host did to them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wharf_build::{
    BuildSpec, Content, FileEntry, LayerCache, LayerSpec, Ownership, build, diff_id, label,
};
use wharf_oci::{Image, Layout, Platform, image};

const EPOCH: i64 = 1_700_000_000;

fn owner() -> Ownership {
    Ownership {
        uid: 65532,
        gid: 65532,
        mtime: EPOCH as u64,
    }
}

/// Writes the two input files in the given order with the given modes and mtime.
fn make_inputs(dir: &Path, order: &[&str], bin_mode: u32, conf_mode: u32, mtime_secs: u64) {
    fs::create_dir_all(dir.join("conf")).unwrap();
    for name in order {
        match *name {
            "bin" => {
                fs::write(dir.join("service"), b"\x7fELF pretend binary").unwrap();
                fs::set_permissions(dir.join("service"), fs::Permissions::from_mode(bin_mode))
                    .unwrap();
            }
            _ => {
                fs::write(dir.join("conf/b.toml"), b"b = 2\n").unwrap();
                fs::write(dir.join("conf/a.toml"), b"a = 1\n").unwrap();
                for f in ["conf/a.toml", "conf/b.toml"] {
                    fs::set_permissions(dir.join(f), fs::Permissions::from_mode(conf_mode))
                        .unwrap();
                }
            }
        }
    }
    let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(mtime_secs);
    for f in ["service", "conf/a.toml", "conf/b.toml"] {
        fs::File::options()
            .write(true)
            .open(dir.join(f))
            .unwrap()
            .set_modified(time)
            .unwrap();
    }
}

fn spec_for(dir: &Path) -> BuildSpec<'static> {
    let mut spec = BuildSpec::new(EPOCH);
    spec.layers.push(LayerSpec {
        description: "binary service".into(),
        files: vec![FileEntry {
            path: "/app/service".into(),
            content: Content::File(dir.join("service")),
            mode: None,
        }],
    });
    spec.layers.push(
        LayerSpec {
            description: "files conf".into(),
            files: vec![],
        }
        .with_path(&dir.join("conf"), "/etc/service")
        .unwrap(),
    );
    spec.entrypoint = vec!["/app/service".into()];
    spec.exposed_ports = vec!["8080/tcp".into()];
    spec.labels.insert(label::TITLE.into(), "service".into());
    spec
}

#[test]
fn same_inputs_give_same_digest_despite_mtime_umask_and_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make_inputs(&a, &["bin", "conf"], 0o755, 0o644, 1_000);
    make_inputs(&b, &["conf", "bin"], 0o700, 0o600, 2_000_000_000);

    let layout_a = Layout::create(tmp.path().join("la")).unwrap();
    let layout_b = Layout::create(tmp.path().join("lb")).unwrap();
    let built_a = build(&spec_for(&a), &layout_a, Some("t")).unwrap();
    let built_b = build(&spec_for(&b), &layout_b, Some("t")).unwrap();
    assert_eq!(built_a.descriptor.digest, built_b.descriptor.digest);
    assert_eq!(built_a.config.digest, built_b.config.digest);
}

#[test]
fn a_known_input_gives_a_pinned_layer_digest() {
    // If this fails, every image digest wharf produces has changed: the tar writer, the gzip
    // backend or its settings moved (see docs/ARCHITECTURE.md, "Reproducibility").
    let spec = LayerSpec {
        description: "pinned".into(),
        files: vec![FileEntry {
            path: "/app/hello".into(),
            content: Content::Bytes(b"hello, wharf\n".to_vec()),
            mode: Some(0o755),
        }],
    };
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).unwrap();
    let layer = wharf_build::write_layer(&spec, owner(), &layout, &Default::default()).unwrap();
    assert_eq!(
        layer.diff_id.to_string(),
        "sha256:53f2b983246cd35f2cd9ddb0313db3dae61f3325fb8632575246022bbc9cb50e",
        "uncompressed tar changed"
    );
    assert_eq!(
        layer.descriptor.digest.to_string(),
        "sha256:c2bb214d4df47c23f3b9b124e4bb97e6b5f9d93299162717bd70c40fa4f5e507",
        "compressed layer changed"
    );
}

#[test]
fn unchanged_layers_are_reused_and_only_the_changed_one_is_compressed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    make_inputs(&dir, &["bin", "conf"], 0o755, 0o644, 1_000);
    let layout = Layout::create(tmp.path().join("layout")).unwrap();
    let first = build(&spec_for(&dir), &layout, Some("t")).unwrap();
    assert!(first.layers.iter().all(|l| !l.reused));

    fs::write(dir.join("conf/a.toml"), b"a = 3\n").unwrap();
    let second = build(&spec_for(&dir), &layout, Some("t")).unwrap();
    assert_ne!(first.descriptor.digest, second.descriptor.digest);
    assert_eq!(
        first.layers[0].descriptor.digest,
        second.layers[0].descriptor.digest
    );
    assert!(second.layers[0].reused, "the binary layer did not change");
    assert!(!second.layers[1].reused, "the config layer changed");
    assert_ne!(
        first.layers[1].descriptor.digest,
        second.layers[1].descriptor.digest
    );
}

/// Flips one byte in the middle of a file, keeping its size.
fn damage(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Issue 10, item 7: a layer blob damaged in the layout is not reused ("1 layers, 1
/// reused" and a corrupt image): the layer is compressed again and replaces it, and the
/// image reads back whole.
#[test]
fn a_damaged_layer_is_built_again_not_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    make_inputs(&dir, &["bin", "conf"], 0o755, 0o644, 1_000);
    let layout = Layout::create(tmp.path().join("layout")).unwrap();
    let first = build(&spec_for(&dir), &layout, Some("t")).unwrap();
    let damaged = &first.layers[0].descriptor;
    let original = fs::read(layout.blob_path(&damaged.digest)).unwrap();
    damage(&layout.blob_path(&damaged.digest));

    let second = build(&spec_for(&dir), &layout, Some("t")).unwrap();
    assert!(!second.layers[0].reused, "the damaged layer is built again");
    assert!(second.layers[1].reused, "the intact layer is still reused");
    assert_eq!(
        second.descriptor, first.descriptor,
        "same image, same digest"
    );
    assert_eq!(
        fs::read(layout.blob_path(&damaged.digest)).unwrap(),
        original
    );
    let img = layout.image_by_tag("t", &Platform::linux_amd64()).unwrap();
    for layer in image::manifest(&img).unwrap().layers {
        std::io::copy(&mut img.blob(&layer.digest).unwrap(), &mut std::io::sink()).unwrap();
    }
}

/// The layer cache (issue 15): a fresh layout (a fresh CI runner) gets the cached compressed
/// layers copied, not compressed again, and the same image; a damaged cached blob is not
/// trusted: that layer is compressed again, to the same bytes.
#[test]
fn a_restored_layer_cache_is_copied_not_recompressed_and_a_damaged_entry_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    make_inputs(&dir, &["bin", "conf"], 0o755, 0o644, 1_000);
    let build_with_cache = |layout: &str| {
        let cache = LayerCache::open(&tmp.path().join("cache")).unwrap();
        let layout = Layout::create(tmp.path().join(layout)).unwrap();
        let mut spec = spec_for(&dir);
        spec.cache = Some(&cache);
        let built = build(&spec, &layout, Some("t")).unwrap();
        let image = layout
            .image(&built.descriptor, &Platform::linux_amd64())
            .unwrap();
        cache.keep(&image, "service-linux_amd64").unwrap();
        built
    };
    let first = build_with_cache("first");
    assert!(
        first.layers.iter().all(|l| !l.reused),
        "the cache was empty"
    );

    let second = build_with_cache("second");
    assert!(
        second.layers.iter().all(|l| l.reused),
        "{:?}",
        second.layers
    );
    assert_eq!(second.descriptor, first.descriptor);

    let cache = Layout::open(tmp.path().join("cache")).unwrap();
    damage(&cache.blob_path(&first.layers[0].descriptor.digest));
    let third = build_with_cache("third");
    assert!(
        !third.layers[0].reused,
        "a damaged cached layer was trusted"
    );
    assert!(third.layers[1].reused);
    assert_eq!(third.descriptor, first.descriptor);
    // Kept again, the cache holds the layer intact once more.
    assert!(cache.has_intact_blob(&first.layers[0].descriptor));

    // A changed binary: its new layer replaces the old one in the cache, which keeps the
    // last image of each name only.
    fs::write(dir.join("service"), b"\x7fELF another pretend binary").unwrap();
    let fourth = build_with_cache("fourth");
    assert!(!fourth.layers[0].reused && fourth.layers[1].reused);
    assert!(cache.has_intact_blob(&fourth.layers[0].descriptor));
    assert!(!cache.blob_path(&first.layers[0].descriptor.digest).exists());
    assert!(!cache.blob_path(&first.descriptor.digest).exists());
    let blobs = fs::read_dir(cache.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 4, "manifest, config and two layers");
}

/// A base image of one small layer.
fn base_spec() -> BuildSpec<'static> {
    let mut spec = BuildSpec::new(EPOCH);
    spec.layers.push(LayerSpec {
        description: "base files".into(),
        files: vec![FileEntry {
            path: "/etc/os-release".into(),
            content: Content::Bytes(b"ID=test\n".to_vec()),
            mode: None,
        }],
    });
    spec
}

/// Issue 10, item 7: a damaged copy of a base layer in the output layout is replaced from
/// the base image, not read (and refused) again.
#[test]
fn a_damaged_base_layer_is_copied_again_from_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let base_layout = Layout::create(tmp.path().join("base")).unwrap();
    let base_built = build(&base_spec(), &base_layout, Some("v1")).unwrap();
    let base = base_layout
        .image_by_tag("v1", &Platform::linux_amd64())
        .unwrap();
    let mut spec = BuildSpec::new(EPOCH);
    spec.base = Some(wharf_build::Base {
        name: "oci:base:v1".into(),
        image: &base,
    });
    let out = Layout::create(tmp.path().join("out")).unwrap();
    build(&spec, &out, Some("app")).unwrap();
    let base_layer = &base_built.layers[0].descriptor;
    damage(&out.blob_path(&base_layer.digest));

    build(&spec, &out, Some("app")).unwrap();
    let repaired = fs::read(out.blob_path(&base_layer.digest)).unwrap();
    assert_eq!(wharf_oci::Digest::sha256(&repaired), base_layer.digest);
}

#[test]
fn image_config_has_user_labels_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    make_inputs(&dir, &["bin", "conf"], 0o755, 0o644, 1_000);
    let layout = Layout::create(tmp.path().join("layout")).unwrap();
    build(&spec_for(&dir), &layout, Some("t")).unwrap();
    let img = layout.image_by_tag("t", &Platform::linux_amd64()).unwrap();
    let config = image::config(&img).unwrap();
    let run = config.config.unwrap();
    assert_eq!(run.user.as_deref(), Some("65532:65532"));
    assert_eq!(run.labels[label::TITLE], "service");
    assert_eq!(run.labels[label::CREATED], "2023-11-14T22:13:20Z");
    assert_eq!(config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(config.history.len(), 2);
    assert_eq!(config.rootfs.diff_ids.len(), 2);
    let manifest = image::manifest(&img).unwrap();
    assert_eq!(manifest.annotations[label::TITLE], "service");

    // The tar lists directories first, numeric owners, normalized modes.
    let layer = &manifest.layers[1];
    let gz = img.blob(&layer.digest).unwrap();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gz));
    let entries: Vec<_> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
                h.username().unwrap().unwrap_or("").to_string(),
            )
        })
        .collect();
    let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/service/",
            "etc/service/a.toml",
            "etc/service/b.toml"
        ]
    );
    assert_eq!(entries[2].1, 0o644);
    assert_eq!(entries[2].2, 65532);
    assert!(
        entries
            .iter()
            .all(|e| e.3 == EPOCH as u64 && e.4.is_empty())
    );
}

#[test]
fn builds_on_a_base_image_from_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let base_layout = Layout::create(tmp.path().join("base")).unwrap();
    let mut with_env = base_spec();
    with_env.env = vec!["PATH=/bin".into(), "LANG=C".into()];
    let base_built = build(&with_env, &base_layout, Some("v1")).unwrap();
    let base = base_layout
        .image_by_tag("v1", &Platform::linux_amd64())
        .unwrap();

    let out = Layout::create(tmp.path().join("out")).unwrap();
    let mut spec = BuildSpec::new(EPOCH);
    spec.base = Some(wharf_build::Base {
        name: "oci:base:v1".into(),
        image: &base,
    });
    spec.env = vec!["PATH=/app".into()];
    spec.layers.push(LayerSpec {
        description: "binary".into(),
        files: vec![FileEntry {
            path: "/app/x".into(),
            content: Content::Bytes(b"x".to_vec()),
            mode: Some(0o755),
        }],
    });
    build(&spec, &out, Some("app")).unwrap();
    let img = out.image_by_tag("app", &Platform::linux_amd64()).unwrap();
    let manifest = image::manifest(&img).unwrap();
    let config = image::config(&img).unwrap();
    assert_eq!(manifest.layers.len(), 2);
    assert_eq!(manifest.layers[0], base_built.layers[0].descriptor);
    assert_eq!(
        manifest.annotations[label::BASE_DIGEST],
        base_built.descriptor.digest.to_string()
    );
    assert_eq!(config.config.unwrap().env, vec!["LANG=C", "PATH=/app"]);
    // Every blob the manifest names was copied into the output layout.
    for layer in &manifest.layers {
        assert!(out.has_blob(layer), "missing {}", layer.digest);
    }
}

#[test]
fn paths_that_escape_the_root_are_refused() {
    for bad in ["/", "/app/../etc/passwd", "/app//x", "/app/", "/./x"] {
        let spec = LayerSpec {
            description: "bad".into(),
            files: vec![FileEntry {
                path: bad.into(),
                content: Content::Bytes(vec![]),
                mode: None,
            }],
        };
        let err = diff_id(&spec, owner()).unwrap_err().to_string();
        assert!(
            err.contains("not a clean absolute file path"),
            "{bad}: {err}"
        );
    }
}
