//! Layers larger than one gzip member: valid gzip for independent readers, and the same
//! bytes whatever the number of cores.

use std::process::Command;

use wharf_build::{Content, FileEntry, LayerSpec, Ownership, write_layer};
use wharf_oci::Layout;

const CHILD_ENV: &str = "WHARF_GZIP_CHILD";

/// 3.5 MiB of deterministic, partly compressible data: four members.
fn spec() -> LayerSpec {
    let mut state = 7u64;
    let data: Vec<u8> = (0..7 << 19)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i % 3 == 0 {
                (state >> 59) as u8
            } else {
                b'a' + (i % 7) as u8
            }
        })
        .collect();
    LayerSpec {
        description: "big".into(),
        files: vec![FileEntry {
            path: "/data/blob".into(),
            content: Content::Bytes(data),
            mode: None,
        }],
    }
}

fn layer_digest() -> (String, std::path::PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).unwrap();
    let owner = Ownership {
        uid: 0,
        gid: 0,
        mtime: 0,
    };
    let layer = write_layer(&spec(), owner, &layout, &Default::default()).unwrap();
    let path = layout.blob_path(&layer.descriptor.digest);
    (layer.descriptor.digest.to_string(), path, tmp)
}

#[test]
fn gzip_child_prints_digest() {
    if std::env::var(CHILD_ENV).is_ok() {
        println!("DIGEST {}", layer_digest().0);
    }
}

#[test]
fn same_bytes_on_one_core_as_on_all() {
    let (here, _, _tmp) = layer_digest();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("taskset")
        .args(["--cpu-list", "0"])
        .arg(exe)
        .args([
            "--exact",
            "gzip_child_prints_digest",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("taskset (util-linux) runs the child on one core");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let one_core = stdout
        .lines()
        .find_map(|l| l.split("DIGEST ").nth(1))
        .unwrap_or_else(|| panic!("child printed no digest: {stdout}"));
    assert_eq!(one_core, here);
}

#[test]
fn independent_gzip_reads_every_member() {
    let (_, path, _tmp) = layer_digest();
    // GNU gzip, not flate2: checks the multi-member stream and that it holds the whole tar.
    let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = spec();
    let Content::Bytes(data) = &expected.files[0].content else {
        unreachable!()
    };
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entries = archive.entries().unwrap();
    let _dir = entries.next().unwrap().unwrap();
    let mut file = entries.next().unwrap().unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut content).unwrap();
    assert!(content == *data, "decompressed content differs");
}
