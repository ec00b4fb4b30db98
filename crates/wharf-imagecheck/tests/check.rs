//! Each check, on small images made by hand: one image that should trip it, and the
//! neighbouring cases that should not.

mod common;

use std::collections::BTreeSet;

use common::{Layer, Run, Tampered, Tar, image, image_of, pax_record};
use tar::EntryType;
use wharf_imagecheck::{CheckKind, Finding, Level, Limits, Policy, Report, check};
use wharf_oci::{Digest, Image, image as oci_image, media_type};

const KEY_BODY: &str = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
const GITHUB_TOKEN: &str = "ghp_R8vT2qLm9XwZ4kPa7NcYb3HdJf6GsE1uVoQi";
const AWS_KEY_ID: &str = "AKIAZ7QW3ERT5YUI9OPL";
const SLACK_TOKEN: &str = "xoxb-2048-1337-s3cr3tSl4ckT0k3n";

fn private_key() -> String {
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n")
}

fn scan(image: &(impl Image + ?Sized)) -> Report {
    check(image, &Policy::default()).expect("the image can be checked")
}

fn of(report: &Report, kind: CheckKind) -> Vec<&Finding> {
    report.of(kind).collect()
}

/// The paths of the findings of one kind, as a set.
fn paths(report: &Report, kind: CheckKind) -> BTreeSet<String> {
    report
        .of(kind)
        .map(|f| f.path.clone().unwrap_or_default())
        .collect()
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n";

fn base_tar() -> Tar {
    Tar::new()
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, PASSWD.as_bytes())
        .dir("tmp/", 0o1777)
        .dir("app/", 0o755)
        .file("app/service", 0o755, b"\x7fELF not really")
        .file(
            "app/cert.pem",
            0o644,
            b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        )
        .symlink("app/current", "/app/service")
}

#[test]
fn a_clean_image_passes() {
    let tar = base_tar().finish();
    let tar_len = tar.len() as u64;
    let mut run = Run::user("app");
    run.labels
        .insert("org.opencontainers.image.source".into(), "https://x".into());
    let img = image(run, vec![Layer::gz(tar)]);
    let manifest = oci_image::manifest(&img).unwrap();
    let compressed = manifest.config.size + manifest.layers[0].size;
    let policy = Policy {
        max_size: Some(compressed),
        required_labels: vec!["org.opencontainers.image.source".into()],
        ..Policy::default()
    };

    // Any source works, behind a trait object too.
    let report = check(&img as &dyn Image, &policy).unwrap();

    assert!(report.findings.is_empty(), "{report}");
    assert!(report.passed());
    assert_eq!(report.uid, Some(1000));
    assert_eq!(report.size.compressed, compressed);
    assert_eq!(report.size.uncompressed, Some(tar_len));
    assert_eq!(report.layers[0].entries, 7);
    assert_eq!(report.image, oci_image::digest(&img).unwrap());
}

#[test]
fn root_users_are_reported() {
    let root_like = [
        None,
        Some(""),
        Some("root"),
        Some("0"),
        Some("0:0"),
        Some("root:app"),
        Some("toor"),
    ];
    for user in root_like {
        let run = Run {
            user: user.map(String::from),
            ..Run::default()
        };
        let report = scan(&image(run, vec![Layer::gz(base_tar().finish())]));
        let found = of(&report, CheckKind::User);
        assert_eq!(found.len(), 1, "{user:?}: {report}");
        assert_eq!(found[0].level, Level::Error, "{user:?}");
        assert_eq!(report.uid, Some(0), "{user:?}");
        assert!(!report.passed());

        let allowed = Policy {
            allow_root: true,
            ..Policy::default()
        };
        let run = Run {
            user: user.map(String::from),
            ..Run::default()
        };
        let report = check(&image(run, vec![Layer::gz(base_tar().finish())]), &allowed).unwrap();
        assert!(report.passed(), "{user:?} with allow_root: {report}");
    }

    for (user, uid) in [
        ("1000", 1000),
        ("1000:0", 1000),
        ("65532:65532", 65532),
        ("app", 1000),
    ] {
        let report = scan(&image(
            Run::user(user),
            vec![Layer::gz(base_tar().finish())],
        ));
        assert!(of(&report, CheckKind::User).is_empty(), "{user}: {report}");
        assert_eq!(report.uid, Some(uid));
    }

    // A name the image cannot resolve fails at run time, not as root: a warning.
    let report = scan(&image(
        Run::user("ghost"),
        vec![Layer::gz(base_tar().finish())],
    ));
    let found = of(&report, CheckKind::User);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].level, Level::Warning);
    assert!(report.passed());
}

#[test]
fn passwd_is_read_from_the_final_file_system() {
    // A later layer makes "app" uid 0; a whiteout of passwd leaves nothing to resolve with.
    let promote = Tar::new()
        .file("etc/passwd", 0o644, b"app:x:0:0::/:/bin/sh\n")
        .finish();
    let report = scan(&image(
        Run::user("app"),
        vec![Layer::gz(base_tar().finish()), Layer::gz(promote)],
    ));
    let found = of(&report, CheckKind::User);
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0].path.as_deref(), Some("/etc/passwd"));
    assert_eq!(found[0].layer, Some(report.layers[1].digest.clone()));

    let deleted = Tar::new().file("etc/.wh.passwd", 0o644, b"").finish();
    let report = scan(&image(
        Run::user("app"),
        vec![Layer::gz(base_tar().finish()), Layer::gz(deleted)],
    ));
    assert_eq!(of(&report, CheckKind::User)[0].level, Level::Warning);
    assert_eq!(report.uid, None);
}

#[test]
fn size_budget() {
    let img = image_of(vec![Layer::gz(base_tar().finish())]);
    let manifest = oci_image::manifest(&img).unwrap();
    let compressed = manifest.config.size + manifest.layers[0].size;

    let over = Policy {
        max_size: Some(compressed - 1),
        ..Policy::default()
    };
    let report = check(&img, &over).unwrap();
    let found = of(&report, CheckKind::Size);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains(&compressed.to_string()));
    assert!(
        report
            .to_string()
            .contains(&format!("(budget {})", compressed - 1))
    );

    let exact = Policy {
        max_size: Some(compressed),
        ..Policy::default()
    };
    assert!(check(&img, &exact).unwrap().passed());
}

#[test]
fn required_labels() {
    let mut run = Run::user("1000");
    run.labels
        .insert("org.example.present".into(), "yes".into());
    run.labels.insert("org.example.blank".into(), " ".into());
    let img = image(run, vec![Layer::gz(base_tar().finish())]);
    let policy = Policy {
        required_labels: vec![
            "org.example.present".into(),
            "org.example.blank".into(),
            "org.example.absent".into(),
        ],
        ..Policy::default()
    };
    let report = check(&img, &policy).unwrap();
    let found = of(&report, CheckKind::Labels);
    assert_eq!(found.len(), 1, "{report}");
    assert!(
        found[0]
            .message
            .ends_with(": org.example.blank, org.example.absent"),
        "{}",
        found[0].message
    );
    assert!(!report.passed());
}

#[test]
fn world_writable_files_and_directories() {
    let lower = Tar::new()
        .file("app/data", 0o666, b"x")
        .dir("app/drop/", 0o777)
        .dir("tmp/", 0o1777)
        .dir("var/tmp/", 0o1777)
        .symlink("app/link", "data")
        .file("app/ok", 0o644, b"x")
        .file("app/fixed-later", 0o666, b"x")
        .finish();
    let upper = Tar::new().file("app/fixed-later", 0o644, b"y").finish();
    let (lower, upper) = (Layer::gz(lower), Layer::gz(upper));
    let lower_digest = lower.digest();
    let report = scan(&image_of(vec![lower, upper]));

    let found = of(&report, CheckKind::WorldWritable);
    let expected = BTreeSet::from(["/app/data".to_string(), "/app/drop".to_string()]);
    assert_eq!(
        paths(&report, CheckKind::WorldWritable),
        expected,
        "{report}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.layer.as_ref() == Some(&lower_digest))
    );
    assert!(found.iter().all(|f| f.level == Level::Error));
}

#[test]
fn secrets_by_name_and_by_content() {
    let tar = Tar::new()
        .file("root/.ssh/id_rsa", 0o600, b"anything")
        .file("root/.ssh/id_rsa.pub", 0o644, b"ssh-ed25519 AAAA")
        .file("app/server.key", 0o600, private_key().as_bytes())
        .file(
            "app/cert.pem",
            0o644,
            b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        )
        .file("app/.env", 0o644, b"MODE=prod\n")
        .file("app/.env.production", 0o644, b"MODE=prod\n")
        .file("app/.env.example", 0o644, b"TOKEN=\n")
        .file("app/empty/.env", 0o644, b"")
        .file(
            "app/config.yml",
            0o644,
            format!("token: {GITHUB_TOKEN}\n").as_bytes(),
        )
        .file(
            "app/aws.txt",
            0o644,
            format!("key={AWS_KEY_ID}\n").as_bytes(),
        )
        .file("app/docs.txt", 0o644, b"key=AKIAIOSFODNN7EXAMPLE\n")
        .file("app/slack.txt", 0o644, SLACK_TOKEN.as_bytes())
        .file("root/.aws/credentials", 0o600, b"[default]\n")
        .file("root/.docker/config.json", 0o600, b"{}")
        .file("home/u/.npmrc", 0o600, b"registry=x")
        .file("home/u/.pypirc", 0o600, b"[pypi]")
        .file("home/u/.netrc", 0o600, b"machine x")
        .file("home/u/.git-credentials", 0o600, b"https://x")
        .finish();
    let layer = Layer::gz(tar);
    let digest = layer.digest();
    let report = scan(&image_of(vec![layer]));

    let found: BTreeSet<(String, &str)> = report
        .of(CheckKind::Secret)
        .map(|f| (f.path.clone().unwrap(), f.rule.unwrap()))
        .collect();
    let expected: BTreeSet<(String, &str)> = [
        ("/root/.ssh/id_rsa", "ssh-private-key-file"),
        ("/app/server.key", "private-key"),
        ("/app/.env", "dotenv"),
        ("/app/.env.production", "dotenv"),
        ("/app/config.yml", "github-token"),
        ("/app/aws.txt", "aws-access-key-id"),
        ("/app/slack.txt", "slack-token"),
        ("/root/.aws/credentials", "aws-credentials-file"),
        ("/root/.docker/config.json", "docker-config-file"),
        ("/home/u/.npmrc", "npmrc"),
        ("/home/u/.pypirc", "pypirc"),
        ("/home/u/.netrc", "netrc"),
        ("/home/u/.git-credentials", "git-credentials"),
    ]
    .into_iter()
    .map(|(p, r)| (p.to_string(), r))
    .collect();
    assert_eq!(found, expected, "{report}");
    assert!(
        report
            .of(CheckKind::Secret)
            .all(|f| f.layer.as_ref() == Some(&digest) && f.level == Level::Error)
    );
}

#[test]
fn a_deleted_secret_is_still_in_the_pushed_blob() {
    let lower = Layer::gz(
        Tar::new()
            .file("app/.env", 0o644, b"PASSWORD=x\n")
            .file("app/keys/deploy.pem", 0o600, private_key().as_bytes())
            .finish(),
    );
    let upper = Layer::gz(
        Tar::new()
            .file("app/.wh..env", 0o644, b"")
            .file("app/keys/.wh..wh..opq", 0o644, b"")
            .finish(),
    );
    let lower_digest = lower.digest();
    let report = scan(&image_of(vec![lower, upper]));

    let found = of(&report, CheckKind::Secret);
    assert_eq!(
        paths(&report, CheckKind::Secret),
        BTreeSet::from(["/app/.env".into(), "/app/keys/deploy.pem".into()]),
        "{report}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.layer.as_ref() == Some(&lower_digest))
    );
}

#[test]
fn secrets_reached_through_symlinks() {
    let tar = Tar::new()
        .file("config/settings", 0o644, b"MODE=prod\n")
        .symlink("app/.env", "/config/settings")
        .file("opt/aws/credentials", 0o600, b"[default]\n")
        .symlink("root/.aws", "../opt/aws")
        // A secret mounted at run time: the link dangles in the image, which is right.
        .symlink("home/app/.ssh/id_rsa", "/run/secrets/deploy_key")
        .finish();
    let report = scan(&image_of(vec![Layer::gz(tar)]));
    let found: BTreeSet<(String, &str)> = report
        .of(CheckKind::Secret)
        .map(|f| (f.path.clone().unwrap(), f.rule.unwrap()))
        .collect();
    assert_eq!(
        found,
        BTreeSet::from([
            ("/app/.env".to_string(), "dotenv"),
            ("/root/.aws/credentials".to_string(), "aws-credentials-file"),
        ]),
        "{report}"
    );
}

#[test]
fn secret_values_never_appear_in_the_report() {
    let tar = Tar::new()
        .file("app/id.key", 0o600, private_key().as_bytes())
        .file(
            "app/.env",
            0o644,
            format!("GITHUB={GITHUB_TOKEN}\n").as_bytes(),
        )
        .file(
            "app/tokens",
            0o644,
            format!("{AWS_KEY_ID}\n{SLACK_TOKEN}\n").as_bytes(),
        )
        .finish();
    let report = scan(&image_of(vec![Layer::gz(tar)]));
    let rules: BTreeSet<&str> = report
        .of(CheckKind::Secret)
        .filter_map(|f| f.rule)
        .collect();
    assert_eq!(
        rules,
        BTreeSet::from([
            "private-key",
            "dotenv",
            "github-token",
            "aws-access-key-id",
            "slack-token"
        ]),
        "{report}"
    );

    let renderings = [
        format!("{report:?}"),
        format!("{report:#?}"),
        report.to_string(),
        serde_json::to_string(&report).unwrap(),
    ];
    // The values, and any tell-tale part of them longer than a rule's prefix.
    let secrets = [
        KEY_BODY,
        &KEY_BODY[..12],
        GITHUB_TOKEN,
        &GITHUB_TOKEN[4..16],
        AWS_KEY_ID,
        &AWS_KEY_ID[4..],
        SLACK_TOKEN,
        &SLACK_TOKEN[5..],
    ];
    for rendering in &renderings {
        for secret in secrets {
            assert!(
                !rendering.contains(secret),
                "{secret:?} leaked into {rendering}"
            );
        }
    }
}

#[test]
fn path_traversal_entries() {
    let evil_passwd = b"app:x:0:0::/:/bin/sh\n";
    let tar = Tar::new()
        .file("../../etc/passwd", 0o644, evil_passwd)
        .file("/etc/shadow", 0o644, b"root::0:0")
        .symlink("app/escape", "../../../etc/shadow")
        .symlink("usr/lib/libz.so", "../../lib/libz.so.1")
        .symlink("usr/bin/python", "/usr/bin/python3")
        .hardlink("app/hard", "../../etc/shadow")
        .hardlink("app/hard-abs", "/etc/shadow")
        .hardlink("app/hard-ok", "etc/shadow")
        .file("app/.wh...", 0o644, b"")
        .finish();
    let report = scan(&image(Run::user("app"), vec![Layer::gz(tar)]));

    assert_eq!(
        paths(&report, CheckKind::PathTraversal),
        BTreeSet::from([
            "../../etc/passwd".into(),
            "/etc/shadow".into(),
            "/app/escape".into(),
            "/app/hard".into(),
            "/app/hard-abs".into(),
            "app/.wh...".into(),
        ]),
        "{report}"
    );
    // The escaping passwd was not taken as the image's: "app" stays unresolved, not root.
    let user = of(&report, CheckKind::User);
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].level, Level::Warning, "{report}");
}

#[test]
fn symlink_loops_are_reported_and_do_not_hang() {
    let tar = Tar::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("d1", "d2/sub")
        .symlink("d2", "/d1")
        .symlink("self", "self")
        .dir("usr/bin/", 0o755)
        // Debian's old `/usr/bin/X11 -> .`: a cycle for tree walkers, but it resolves.
        .symlink("usr/bin/X11", ".")
        .symlink("usr/bin/sh", "X11/X11/X11/dash")
        .file("usr/bin/dash", 0o755, b"x")
        .finish();
    let report = scan(&image_of(vec![Layer::gz(tar)]));
    assert_eq!(
        paths(&report, CheckKind::SymlinkLoop),
        BTreeSet::from([
            "/a".into(),
            "/b".into(),
            "/d1".into(),
            "/d2".into(),
            "/self".into()
        ]),
        "{report}"
    );
    assert!(
        report
            .of(CheckKind::SymlinkLoop)
            .all(|f| f.level == Level::Warning)
    );
}

#[test]
fn an_entry_claiming_a_terabyte() {
    let huge = |kind: fn(Vec<u8>) -> Layer| {
        kind(
            Tar::new()
                .raw(EntryType::Regular, b"big", b"", 0o644, 1 << 40, &[7; 100])
                .file("after", 0o666, b"never read")
                .finish(),
        )
    };
    for layer in [huge(Layer::gz), huge(Layer::tar)] {
        let digest = layer.digest();
        let report = scan(&image_of(vec![
            Layer::gz(Tar::new().file("app/.env", 0o644, b"A=1").finish()),
            layer,
        ]));
        let found = of(&report, CheckKind::EntrySize);
        assert_eq!(found.len(), 1, "{report}");
        assert_eq!(found[0].path.as_deref(), Some("big"));
        assert_eq!(found[0].layer.as_ref(), Some(&digest));
        assert!(found[0].message.contains(&(1u64 << 40).to_string()));
        // Findings of other layers are still there; nothing after the entry was read.
        assert_eq!(of(&report, CheckKind::Secret).len(), 1);
        assert!(of(&report, CheckKind::WorldWritable).is_empty());
        assert_eq!(report.size.uncompressed, None);
    }
}

#[test]
fn an_entry_over_the_configured_cap() {
    let tar = Tar::new().file("data", 0o644, &[0; 10_000]).finish();
    let policy = Policy {
        limits: Limits {
            max_layer_bytes: 5_000,
            ..Limits::default()
        },
        ..Policy::default()
    };
    let report = check(&image_of(vec![Layer::gz(tar)]), &policy).unwrap();
    let found = of(&report, CheckKind::EntrySize);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains("the limit for a layer"));
}

#[test]
fn a_truncated_gzip_layer_is_a_finding_not_an_error() {
    let mut tar = Tar::new();
    for i in 0..50 {
        tar = tar.file(
            &format!("data/{i}"),
            0o644,
            format!("{i}").repeat(300).as_bytes(),
        );
    }
    let full = Layer::gz(tar.finish());
    let half = full.blob[..full.blob.len() / 2].to_vec();
    let truncated = Layer { blob: half, ..full };
    let truncated_digest = truncated.digest();
    let secret = Layer::gz(Tar::new().file("app/.env", 0o644, b"A=1").finish());
    let img = image_of(vec![secret, truncated]);
    let policy = Policy {
        required_labels: vec!["org.opencontainers.image.source".into()],
        ..Policy::default()
    };
    let report = check(&img, &policy).unwrap();

    let found = of(&report, CheckKind::CorruptLayer);
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0].layer.as_ref(), Some(&truncated_digest));
    assert!(
        found[0].message.contains("tar+gzip"),
        "{}",
        found[0].message
    );
    // The other checks still ran.
    assert_eq!(of(&report, CheckKind::Secret).len(), 1);
    assert_eq!(of(&report, CheckKind::Labels).len(), 1);
    assert_eq!(report.layers[1].uncompressed, None);
    assert!(
        report.layers[1].entries > 0,
        "entries before the cut were read"
    );
}

#[test]
fn a_truncated_tar_layer() {
    let tar = Tar::new()
        .file("a", 0o644, &[1; 2000])
        .file("b", 0o644, &[2; 2000])
        .finish();
    // Cut in the second file's data: the stream ends early.
    let report = scan(&image_of(vec![Layer::tar(tar[..3500].to_vec())]));
    assert_eq!(of(&report, CheckKind::CorruptLayer).len(), 1, "{report}");
    assert_eq!(report.layers[0].entries, 2);
    // Cut in the first file's data: its size alone is more than the blob holds.
    let report = scan(&image_of(vec![Layer::tar(tar[..1300].to_vec())]));
    let found = of(&report, CheckKind::EntrySize);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains("more than the layer can hold"));
}

#[test]
fn a_blob_that_is_not_gzip_but_says_it_is() {
    let tar = base_tar().finish();
    let report = scan(&image_of(vec![Layer::blob(
        media_type::OCI_LAYER_GZIP,
        tar,
    )]));
    let found = of(&report, CheckKind::CorruptLayer);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains("not a valid tar+gzip stream"));

    // And gzip labelled as plain tar.
    let gz = common::gzip(&base_tar().finish());
    let report = scan(&image_of(vec![Layer::blob(media_type::OCI_LAYER_TAR, gz)]));
    assert_eq!(of(&report, CheckKind::CorruptLayer).len(), 1, "{report}");
}

#[test]
fn zstd_and_unknown_media_types_are_unsupported() {
    let zstd = Layer::blob(
        media_type::OCI_LAYER_ZSTD,
        vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0],
    );
    let odd = Layer::blob("application/x-mystery", vec![1, 2, 3]);
    let ok = Layer::gz(base_tar().finish());
    let report = scan(&image_of(vec![zstd, ok, odd]));
    let found = of(&report, CheckKind::UnsupportedMediaType);
    assert_eq!(found.len(), 2, "{report}");
    assert!(found[0].message.contains("zstd"));
    assert_eq!(found[0].layer, Some(report.layers[0].digest.clone()));
    assert_eq!(found[1].layer, Some(report.layers[2].digest.clone()));
    assert!(!report.passed());
    assert_eq!(report.size.uncompressed, None);
}

#[test]
fn a_blob_that_does_not_match_its_digest() {
    let honest = Layer::gz(base_tar().finish());
    let digest = honest.digest();
    let inner = image_of(vec![honest]);
    // Same length, one byte changed inside the compressed data; and a different blob.
    let mut flipped = inner.blob(&digest).map(read_all).unwrap();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let other = common::gzip(&Tar::new().file("app/x", 0o644, b"x").finish());
    for bytes in [flipped, other] {
        let tampered = Tampered {
            inner: inner.clone(),
            digest: digest.clone(),
            bytes,
        };
        let report = scan(&tampered);
        let found = of(&report, CheckKind::Integrity);
        assert!(!found.is_empty(), "{report}");
        assert!(
            found
                .iter()
                .any(|f| f.message.contains(&digest.to_string())),
            "{report}"
        );
        assert!(found.iter().all(|f| f.layer.as_ref() == Some(&digest)));
        assert!(!report.passed());
    }
}

fn read_all(mut reader: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn a_diff_id_that_does_not_match() {
    let mut layer = Layer::gz(base_tar().finish());
    layer.diff_id = Digest::sha256(b"something else");
    let report = scan(&image_of(vec![layer]));
    let found = of(&report, CheckKind::Integrity);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains("diff id"));
}

#[test]
fn a_decompression_bomb_is_cut_off() {
    let mut tar = Tar::new();
    for i in 0..200 {
        tar = tar.file(&format!("zeros/{i}"), 0o644, &[0; 4096]);
    }
    let layer = Layer::gz(tar.finish());
    assert!(layer.blob.len() < 20_000, "compresses well");
    let img = image_of(vec![layer]);
    let small = Policy {
        limits: Limits {
            max_layer_bytes: 64 << 10,
            ..Limits::default()
        },
        ..Policy::default()
    };
    let report = check(&img, &small).unwrap();
    let found = of(&report, CheckKind::DecompressionBomb);
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].message.contains("65536"));
    assert!(of(&report, CheckKind::CorruptLayer).is_empty());

    assert!(
        scan(&img).passed(),
        "the same layer is fine under the default limit"
    );
}

#[test]
fn too_many_entries() {
    let mut tar = Tar::new();
    for i in 0..10 {
        tar = tar.file(&format!("f{i}"), 0o644, b"x");
    }
    let policy = Policy {
        limits: Limits {
            max_entries: 3,
            ..Limits::default()
        },
        ..Policy::default()
    };
    let report = check(&image_of(vec![Layer::gz(tar.finish())]), &policy).unwrap();
    assert_eq!(of(&report, CheckKind::TooManyEntries).len(), 1, "{report}");
    assert_eq!(report.layers[0].entries, 3);
}

#[test]
fn long_names_and_pax_headers() {
    let long = format!("app/{}/.env", "d".repeat(150));
    let mut long_name = long.clone().into_bytes();
    long_name.push(0);
    let names = Layer::gz(
        Tar::new()
            .extension(EntryType::GNULongName, &long_name)
            .file("app/truncated-name", 0o644, b"A=1")
            .extension(EntryType::XHeader, &pax_record("path", "../../escape"))
            .file("innocent", 0o644, b"x")
            .extension(
                EntryType::XHeader,
                &pax_record("linkpath", "../../../../etc"),
            )
            .symlink("app/innocent-link", "/etc")
            .finish(),
    );
    let report = scan(&image_of(vec![names]));
    assert_eq!(
        paths(&report, CheckKind::Secret),
        BTreeSet::from([format!("/{long}")]),
        "{report}"
    );
    assert_eq!(
        paths(&report, CheckKind::PathTraversal),
        BTreeSet::from(["../../escape".into(), "/app/innocent-link".into()]),
        "{report}"
    );

    // Sizes that readers would disagree on, and extension headers too large to hold.
    let disagree = Layer::gz(
        Tar::new()
            .extension(EntryType::XHeader, &pax_record("size", "5"))
            .file("f", 0o644, &[1; 10])
            .finish(),
    );
    let huge = Layer::gz(
        Tar::new()
            .extension(EntryType::GNULongName, &vec![b'a'; 2 << 20])
            .file("f", 0o644, b"x")
            .finish(),
    );
    let report = scan(&image_of(vec![disagree, huge]));
    assert_eq!(
        of(&report, CheckKind::UnsupportedEntry).len(),
        1,
        "{report}"
    );
    let found = of(&report, CheckKind::EntrySize);
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0].layer, Some(report.layers[1].digest.clone()));
}

#[test]
fn a_config_that_does_not_match_its_digest_is_an_error() {
    struct Altered(wharf_oci::MemoryImage);
    impl Image for Altered {
        fn raw_manifest(&self) -> wharf_oci::Result<Vec<u8>> {
            self.0.raw_manifest()
        }
        fn raw_config(&self) -> wharf_oci::Result<Vec<u8>> {
            let mut config = self.0.raw_config()?;
            config.push(b' ');
            Ok(config)
        }
        fn blob(&self, digest: &Digest) -> wharf_oci::Result<wharf_oci::image::BlobReader<'_>> {
            self.0.blob(digest)
        }
    }
    let img = image_of(vec![Layer::gz(base_tar().finish())]);
    let err = check(&Altered(img), &Policy::default()).unwrap_err();
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
}

#[test]
fn reports_are_deterministic_json_and_text() {
    let layers = || {
        vec![
            Layer::gz(
                Tar::new()
                    .file("z/.env", 0o666, b"A=1")
                    .file("a/.env", 0o644, b"A=1")
                    .file("../up", 0o644, b"x")
                    .finish(),
            ),
            Layer::blob(media_type::OCI_LAYER_GZIP, b"not gzip".to_vec()),
        ]
    };
    let first = scan(&image(Run::default(), layers()));
    let second = scan(&image(Run::default(), layers()));
    assert_eq!(first, second);
    let order: Vec<(CheckKind, Option<String>)> = first
        .findings
        .iter()
        .map(|f| (f.check, f.path.clone()))
        .collect();
    assert_eq!(
        order,
        [
            (CheckKind::User, None),
            (CheckKind::WorldWritable, Some("/z/.env".into())),
            (CheckKind::Secret, Some("/a/.env".into())),
            (CheckKind::Secret, Some("/z/.env".into())),
            (CheckKind::PathTraversal, Some("../up".into())),
            (CheckKind::CorruptLayer, None),
        ]
    );

    let json: serde_json::Value = serde_json::to_value(&first).unwrap();
    assert_eq!(json["findings"][2]["check"], "secret");
    assert_eq!(json["findings"][2]["level"], "error");
    assert_eq!(json["findings"][2]["rule"], "dotenv");
    assert_eq!(
        json["findings"][2]["layer"],
        first.layers[0].digest.to_string()
    );
    assert_eq!(json["size"]["uncompressed"], serde_json::Value::Null);

    let text = first.to_string();
    assert!(text.starts_with(&format!(
        "image {}: failed (6 errors, 0 warnings)",
        first.image
    )));
    assert!(text.contains(&format!(
        "error[secret] \"/a/.env\" in layer {}: file is named like",
        first.layers[0].digest.short()
    )));
    assert_eq!(text.lines().count(), 4 + first.findings.len());
}

#[test]
fn an_image_built_by_wharf_build_passes() {
    use wharf_build::{BuildSpec, Content, FileEntry, LayerSpec, build, label};
    use wharf_oci::{Layout, Platform};

    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path().join("layout")).unwrap();
    let mut spec = BuildSpec::new(1_700_000_000);
    let mut files = vec![FileEntry {
        path: "/app/service".into(),
        content: Content::Bytes(vec![0x7f; 3 << 20]),
        mode: Some(0o755),
    }];
    spec.layers.push(LayerSpec {
        description: "binary".into(),
        files: files.clone(),
    });
    spec.labels
        .insert(label::SOURCE.into(), "https://example.com/x".into());
    build(&spec, &layout, Some("ok")).unwrap();
    let img = layout.image_by_tag("ok", &Platform::linux_amd64()).unwrap();
    let policy = Policy {
        required_labels: vec![label::SOURCE.into(), label::CREATED.into()],
        ..Policy::default()
    };
    let report = check(&img, &policy).unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(report.uid, Some(wharf_build::DEFAULT_USER));
    assert!(report.size.uncompressed.unwrap() > 3 << 20);

    files.push(FileEntry {
        path: "/app/.env".into(),
        content: Content::Bytes(b"MODE=prod\n".to_vec()),
        mode: None,
    });
    spec.layers[0].files = files;
    build(&spec, &layout, Some("leaky")).unwrap();
    let img = layout
        .image_by_tag("leaky", &Platform::linux_amd64())
        .unwrap();
    let report = check(&img, &policy).unwrap();
    assert_eq!(
        paths(&report, CheckKind::Secret),
        BTreeSet::from(["/app/.env".into()])
    );
}

/// The crate's invariant, checked on its source: no file system, no processes, no network,
/// and no unpacking.
#[test]
fn the_scanner_never_touches_the_host() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "std::fs",
            "File::",
            "std::process",
            "std::net",
            ".unpack(",
            ".unpack_in(",
            "std::env",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
    }
}
