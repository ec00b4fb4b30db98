//! The OCI layout wharf writes, after crashes, damage and untagged copies, checked with
//! umoci and skopeo (issue 10, items 7, 8, 10 and 11).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use wharf::build::{BuildSpec, Content, FileEntry, LayerSpec, build};
use wharf::oci::{Descriptor, Digest, Layout, Platform, image, media_type, random_image};
use wharf_e2e::{require_skopeo, require_umoci, run, xtask_binary};

const CHILD_ENV: &str = "WHARF_E2E_STALLED_LAYOUT_WRITER";
/// What the writer prints once it is in the middle of a blob.
const MID_BLOB: &str = "mid-blob";
/// How long the writer may take to get there (a bound, not a measurement: the test waits
/// for the line, and fails only if it never comes).
const WRITER_TIMEOUT: Duration = Duration::from_secs(120);

/// A blob source that gives 1 MiB, says so on stdout, and then never ends.
struct Stalling {
    given: usize,
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const BEFORE_STALL: usize = 1 << 20;
        if self.given >= BEFORE_STALL {
            println!("{MID_BLOB}");
            loop {
                std::thread::park();
            }
        }
        let n = buf.len().min(BEFORE_STALL - self.given);
        buf[..n].fill(0x5a);
        self.given += n;
        Ok(n)
    }
}

/// The writer: a tagged image, then a 4 MiB blob that stalls after its first MiB.
#[test]
fn stalled_layout_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only does something when started by the test below.
    };
    let layout = Layout::create(&dir).unwrap();
    layout
        .write_image(&random_image(3, 2, 100_000), Some("kept"))
        .unwrap();
    let descriptor = Descriptor::new(
        media_type::OCI_LAYER_GZIP,
        Digest::sha256(b"never finished"),
        4 << 20,
    );
    layout
        .write_blob(&descriptor, Stalling { given: 0 })
        .unwrap();
}

/// Names in `blobs/sha256/` that are not a sha256 digest.
fn not_digests(layout: &Path) -> Vec<String> {
    fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| format!("sha256:{name}").parse::<Digest>().is_err())
        .collect()
}

fn temp_files(layout: &Path) -> Vec<String> {
    fs::read_dir(layout.join(wharf::oci::layout::TEMP_DIR))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads every layer through the layout's verifying reader: each is whole and matches.
fn read_every_layer(img: &wharf::oci::LayoutImage) {
    for layer in image::manifest(img).unwrap().layers {
        std::io::copy(
            &mut wharf::oci::Image::blob(img, &layer.digest).unwrap(),
            &mut std::io::sink(),
        )
        .unwrap();
    }
}

/// Item 8: a writer SIGKILLed in the middle of a blob leaves nothing in `blobs/sha256/`
/// but digests, so `umoci gc` works; opening the layout removes its temporary file.
#[test]
fn a_writer_killed_mid_blob_leaves_a_layout_umoci_can_collect() {
    if !require_umoci() || !require_skopeo() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stalled_layout_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (said, heard) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(MID_BLOB) {
                let _ = said.send(());
            }
        }
    });
    let reached = heard.recv_timeout(WRITER_TIMEOUT);
    child.kill().unwrap();
    child.wait().unwrap();
    reached.expect("the writer never reached the middle of its blob");

    assert_eq!(not_digests(&dir), Vec::<String>::new());
    assert_eq!(
        temp_files(&dir).len(),
        1,
        "the killed writer's temporary file"
    );
    run(Command::new("umoci").args(["gc", "--layout"]).arg(&dir));
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:kept", dir.display())));

    let layout = Layout::open(&dir).unwrap();
    assert_eq!(temp_files(&dir), Vec::<String>::new(), "removed on open");
    let kept = layout
        .image_by_tag("kept", &Platform::linux_amd64())
        .unwrap();
    read_every_layer(&kept);
}

/// Item 7: a layer damaged in the layout is built again, and umoci (which checks every
/// digest) unpacks the repaired image with the file's content.
#[test]
fn a_damaged_layer_is_rebuilt_and_umoci_unpacks_the_image() {
    if !require_umoci() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let layout = Layout::create(&dir).unwrap();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut spec = BuildSpec::new(1_700_000_000);
    spec.layers.push(LayerSpec {
        description: "data".into(),
        files: vec![FileEntry {
            path: "/data/blob.bin".into(),
            content: Content::Bytes(content.clone()),
            mode: None,
        }],
    });
    let first = build(&spec, &layout, Some("t")).unwrap();
    let blob = layout.blob_path(&first.layers[0].descriptor.digest);
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&blob, bytes).unwrap();

    let second = build(&spec, &layout, Some("t")).unwrap();
    assert!(!second.layers[0].reused);
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", dir.display()))
        .arg(&bundle));
    assert_eq!(
        fs::read(bundle.join("rootfs/data/blob.bin")).unwrap(),
        content
    );
}

/// A layout with one tagged image, to copy from.
fn source_layout(dir: &Path) -> Digest {
    let layout = Layout::create(dir).unwrap();
    let (descriptor, _) = layout
        .write_image(&random_image(8, 2, 50_000), Some("src"))
        .unwrap();
    descriptor.digest
}

/// Item 10: `cargo xtask copy SRC oci:DIR` lists the image in the index by digest (as
/// skopeo does), so skopeo finds it with no tag and `umoci gc` keeps its blobs.
#[test]
fn copy_to_a_layout_without_a_tag_lists_the_image_by_digest() {
    if !require_skopeo() || !require_umoci() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let digest = source_layout(&tmp.path().join("src"));
    let destination = tmp.path().join("dst");
    let out = run(Command::new(xtask_binary()).args([
        "copy",
        &format!("oci:{}:src", tmp.path().join("src").display()),
        &format!("oci:{}", destination.display()),
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("oci:{}@{digest}", destination.display())
    );

    let inspected = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}", destination.display())));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.to_string());

    run(Command::new("umoci")
        .args(["gc", "--layout"])
        .arg(&destination));
    let layout = Layout::open(&destination).unwrap();
    let listed = layout.index().unwrap().manifests;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, digest);
    assert_eq!(listed[0].ref_name(), None);
    let copied = layout.image(&listed[0], &Platform::linux_amd64()).unwrap();
    read_every_layer(&copied);
}

/// Item 11: a destination that is a file is named as such, and the file is left alone.
#[test]
fn copy_to_a_file_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    source_layout(&tmp.path().join("src"));
    let file = tmp.path().join("a-file");
    fs::write(&file, b"not a layout").unwrap();
    let out = Command::new(xtask_binary())
        .args([
            "copy",
            &format!("oci:{}:src", tmp.path().join("src").display()),
            &format!("oci:{}:t", file.display()),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: is a file, not an OCI layout directory",
            file.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"not a layout");
}
