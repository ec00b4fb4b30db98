use super::*;

const SHA: &str = "3f2a9c1d5e7b8a6f4c3d2e1f0a9b8c7d6e5f4a3b";

fn facts(version: &str, release: bool, branch: Option<&str>) -> Facts {
    Facts {
        version: version.parse().unwrap(),
        release,
        sha: SHA.to_owned(),
        branch: branch.map(str::to_owned),
        default_branch: "main".to_owned(),
        date: jiff::civil::date(2024, 6, 1),
        stage: None,
        build_number: None,
    }
}

fn check(facts: Facts, expected: &[&str]) {
    let got = tags(&facts).unwrap_or_else(|e| panic!("tags failed: {e}\nfacts: {facts:?}"));
    let got: Vec<&str> = got.iter().map(Tag::as_str).collect();
    assert_eq!(got, expected, "\nfacts: {facts:?}");
}

#[test]
fn tag_rules() {
    let staged = |stage: &str, build: Option<u64>, f: Facts| Facts {
        stage: Some(stage.to_owned()),
        build_number: build,
        ..f
    };
    let on = |default: &str, f: Facts| Facts {
        default_branch: default.to_owned(),
        ..f
    };
    let cases: Vec<(Facts, &[&str])> = vec![
        // Releases.
        (
            facts("1.2.3", true, Some("main")),
            &["1.2.3", "1.2", "1", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            facts("1.2.3", true, Some("refs/heads/main")),
            &["1.2.3", "1.2", "1", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            on("refs/heads/main", facts("1.2.3", true, Some("main"))),
            &["1.2.3", "1.2", "1", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            on("develop", facts("1.2.3", true, Some("develop"))),
            &["1.2.3", "1.2", "1", "latest", "sha-3f2a9c1", "develop"],
        ),
        (
            facts("1.0.0", true, Some("main")),
            &["1.0.0", "1.0", "1", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            facts("1.2.3", true, Some("release/1.x")),
            &["1.2.3", "1.2", "1", "sha-3f2a9c1", "release-1.x"],
        ),
        (
            facts("1.2.3", true, None),
            &["1.2.3", "1.2", "1", "sha-3f2a9c1"],
        ),
        (
            facts("0.4.1", true, Some("main")),
            &["0.4.1", "0.4", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            facts("0.0.3", true, Some("main")),
            &["0.0.3", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            facts("1.3.0-rc.1", true, Some("main")),
            &["1.3.0-rc.1", "sha-3f2a9c1", "main"],
        ),
        (
            facts("0.5.0-alpha", true, None),
            &["0.5.0-alpha", "sha-3f2a9c1"],
        ),
        // `+` is not allowed in a tag; build metadata does not change compatibility.
        (
            facts("1.2.3+build.7", true, Some("main")),
            &["1.2.3-build.7", "1.2", "1", "latest", "sha-3f2a9c1", "main"],
        ),
        (
            facts("1.3.0-rc.1+exp.5114f85", true, None),
            &["1.3.0-rc.1-exp.5114f85", "sha-3f2a9c1"],
        ),
        // Not releases: the version never shows up.
        (
            facts("1.2.4", false, Some("main")),
            &["sha-3f2a9c1", "main"],
        ),
        (
            facts("1.2.4", false, Some("feature/Login-Page")),
            &["sha-3f2a9c1", "feature-login-page"],
        ),
        (facts("1.2.4", false, None), &["sha-3f2a9c1"]),
        (facts("1.2.4", false, Some("///")), &["sha-3f2a9c1"]),
        // Stage and build number.
        (
            staged("dev", None, facts("1.2.4", false, Some("main"))),
            &["sha-3f2a9c1", "main", "dev-2024-06-01"],
        ),
        (
            staged("Staging_2", Some(42), facts("1.2.4", false, None)),
            &["sha-3f2a9c1", "Staging_2-2024-06-01", "build-42-3f2a9c1"],
        ),
        (
            Facts {
                build_number: Some(0),
                ..facts("1.2.4", false, None)
            },
            &["sha-3f2a9c1", "build-0-3f2a9c1"],
        ),
        (
            staged("prod", Some(7), facts("2.0.0", true, Some("main"))),
            &[
                "2.0.0",
                "2.0",
                "2",
                "latest",
                "sha-3f2a9c1",
                "main",
                "prod-2024-06-01",
                "build-7-3f2a9c1",
            ],
        ),
        // Branches that look like another rule's tags get a prefix.
        (
            facts("1.2.4", false, Some("latest")),
            &["sha-3f2a9c1", "branch-latest"],
        ),
        (
            facts("1.2.4", false, Some("1.2")),
            &["sha-3f2a9c1", "branch-1.2"],
        ),
        (
            facts("1.2.4", false, Some("2fa")),
            &["sha-3f2a9c1", "branch-2fa"],
        ),
        (
            facts("1.2.4", false, Some("sha-3f2a9c1")),
            &["sha-3f2a9c1", "branch-sha-3f2a9c1"],
        ),
        (
            facts("1.2.4", false, Some("build-42-3f2a9c1")),
            &["sha-3f2a9c1", "branch-build-42-3f2a9c1"],
        ),
        (
            facts("1.2.4", false, Some("dev-2024-06-01")),
            &["sha-3f2a9c1", "branch-dev-2024-06-01"],
        ),
        (
            facts("1.2.4", false, Some("Latest")),
            &["sha-3f2a9c1", "branch-latest"],
        ),
        (
            facts("1.2.4", false, Some("latest-fix")),
            &["sha-3f2a9c1", "latest-fix"],
        ),
        (
            facts("1.2.4", false, Some("shampoo")),
            &["sha-3f2a9c1", "shampoo"],
        ),
        (
            facts("1.2.4", false, Some("dev-2024-06")),
            &["sha-3f2a9c1", "dev-2024-06"],
        ),
    ];
    for (facts, expected) in cases {
        check(facts, expected);
    }
}

#[test]
fn prefixed_branch_tag_stays_within_limit() {
    let branch = format!("1{}", "a".repeat(200));
    let got = tags(&facts("1.0.0", false, Some(&branch))).unwrap();
    let want = format!("branch-1{}", "a".repeat(120));
    assert_eq!(got[1], want.as_str());
    assert_eq!(got[1].as_str().len(), Tag::MAX_LEN);
}

#[test]
fn invalid_facts() {
    for sha in [
        "",
        "3f2a9c1",
        &SHA.to_uppercase(),
        &format!("{SHA}0"),
        &SHA.replace('f', "g"),
    ] {
        let f = Facts {
            sha: sha.to_owned(),
            ..facts("1.0.0", true, None)
        };
        assert_eq!(
            tags(&f),
            Err(TagError::Sha {
                sha: sha.to_owned()
            })
        );
    }
    let f = Facts {
        sha: "abc".to_owned(),
        ..facts("1.0.0", true, None)
    };
    assert_eq!(
        tags(&f).unwrap_err().to_string(),
        "invalid commit sha \"abc\": expected 40 lowercase hex characters (the output of `git rev-parse HEAD`)"
    );

    let stage = |s: &str| {
        tags(&Facts {
            stage: Some(s.to_owned()),
            ..facts("1.0.0", false, None)
        })
    };
    assert_eq!(
        stage("").unwrap_err(),
        TagError::Stage {
            stage: "".into(),
            problem: Problem::Empty
        }
    );
    assert_eq!(
        stage("-dev").unwrap_err(),
        TagError::Stage {
            stage: "-dev".into(),
            problem: Problem::Start
        }
    );
    assert_eq!(
        stage("dev env").unwrap_err().to_string(),
        "invalid stage \"dev env\": character ' ' is not allowed in a stage (use ASCII letters, digits, '_', '.' or '-') (the stage starts the tag \"<stage>-YYYY-MM-DD\")"
    );
    // The stage shares 128 characters with "-YYYY-MM-DD".
    let longest = "s".repeat(117);
    assert_eq!(stage(&longest).unwrap()[1].as_str().len(), 128);
    assert_eq!(
        stage(&"s".repeat(118)).unwrap_err(),
        TagError::Stage {
            stage: "s".repeat(118),
            problem: Problem::TooLong { len: 118, max: 117 }
        }
    );

    let long_pre = format!("1.0.0-{}", "x".repeat(123));
    assert!(matches!(
        tags(&facts(&long_pre, true, None)),
        Err(TagError::Tag {
            problem: Problem::TooLong { len: 129, max: 128 },
            ..
        })
    ));
    // The same version is fine when it is not a release: no version tag is made, only the
    // commit's (its first 7 characters, as `git rev-parse --short=7` prints them).
    check(
        facts(&long_pre, false, None),
        &[&format!("sha-{}", &SHA[..7])],
    );
}

#[test]
fn tag_grammar() {
    let max = "a".repeat(128);
    let accepted = [
        "a",
        "Z",
        "0",
        "_",
        "latest",
        "1.2.3",
        "v1.2.3-rc.1",
        "a_b.c-d",
        "_x",
        "__",
        "a..b",
        "a--",
        "x.",
        &max,
    ];
    for tag in accepted {
        assert_eq!(
            Tag::parse(tag).map(|t| t.to_string()),
            Ok(tag.to_owned()),
            "{tag:?}"
        );
    }
    let too_long = "a".repeat(129);
    let rejected = [
        ("", Problem::Empty),
        ("-x", Problem::Start),
        (".x", Problem::Start),
        ("-", Problem::Start),
        ("a b", Problem::Char(' ')),
        ("1.2.3+build", Problem::Char('+')),
        ("a/b", Problem::Char('/')),
        ("repo:tag", Problem::Char(':')),
        ("é", Problem::Char('é')),
        ("-é", Problem::Char('é')),
        ("tag\n", Problem::Char('\n')),
        (&too_long, Problem::TooLong { len: 129, max: 128 }),
    ];
    for (tag, problem) in rejected {
        assert_eq!(
            Tag::parse(tag),
            Err(TagError::Tag {
                tag: tag.to_owned(),
                problem
            }),
            "{tag:?}"
        );
    }
}

#[test]
fn tag_error_messages() {
    let msg = |s: &str| Tag::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("-x"),
        "invalid tag \"-x\": a tag must start with a letter, digit or underscore"
    );
    assert_eq!(msg(""), "invalid tag \"\": a tag must not be empty");
    assert_eq!(
        msg("a:b"),
        "invalid tag \"a:b\": character ':' is not allowed in a tag (use ASCII letters, digits, '_', '.' or '-')"
    );
    assert!(msg(&"a".repeat(129)).ends_with(": a tag has 129 characters, at most 128 are allowed"));
}

#[test]
fn tag_serde() {
    let tag = Tag::parse("1.2.3").unwrap();
    assert_eq!(serde_json::to_string(&tag).unwrap(), r#""1.2.3""#);
    assert_eq!(serde_json::from_str::<Tag>(r#""1.2.3""#).unwrap(), tag);
    let err = serde_json::from_str::<Tag>(r#""-x""#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a tag must start with"), "{err}");
    assert_eq!("1.2.3".parse::<Tag>(), Ok(tag.clone()));
    assert_eq!(Tag::try_from("1.2.3".to_owned()), Ok(tag.clone()));
    assert_eq!(String::from(tag), "1.2.3");
}

#[test]
fn facts_json() {
    let f = Facts {
        stage: Some("dev".into()),
        build_number: Some(42),
        ..facts("1.2.3-rc.1", true, Some("main"))
    };
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["version"], "1.2.3-rc.1");
    assert_eq!(json["date"], "2024-06-01");
    assert_eq!(serde_json::from_value::<Facts>(json).unwrap(), f);

    // Optional facts may be left out; unknown ones are typos.
    let minimal = serde_json::json!({
        "version": "1.0.0", "release": false, "sha": SHA, "default_branch": "main", "date": "2024-06-01"
    });
    assert_eq!(
        serde_json::from_value::<Facts>(minimal).unwrap(),
        Facts {
            branch: None,
            ..facts("1.0.0", false, None)
        }
    );
    let typo = serde_json::json!({
        "version": "1.0.0", "release": false, "sha": SHA, "default_branch": "main", "date": "2024-06-01", "stages": "dev"
    });
    assert!(serde_json::from_value::<Facts>(typo).is_err());
}

#[test]
fn slug_cases() {
    let max = "a".repeat(128);
    let cases: &[(&str, Option<&str>)] = &[
        ("feature/Login-Page", Some("feature-login-page")),
        (
            "refs/heads/dependabot/cargo/serde-1.0.200",
            Some("dependabot-cargo-serde-1.0.200"),
        ),
        ("___", Some("___")),
        ("///", None),
        ("", None),
        ("refs/heads/", None),
        ("-._.-", Some("_")),
        ("..-x", Some("x")),
        ("x-.", Some("x")),
        ("x_", Some("x_")),
        ("UPPER", Some("upper")),
        ("a  b\t\tc", Some("a-b-c")),
        // Only runs of invalid characters collapse; existing dashes are kept.
        ("feature/ÄÖÜ-fix", Some("feature--fix")),
        // `refs/heads/` is stripped only at the start, and other refs are just names.
        ("foo/refs/heads/x", Some("foo-refs-heads-x")),
        ("refs/tags/v1.0", Some("refs-tags-v1.0")),
        // Unicode: non-ASCII characters are replaced, never transliterated.
        ("Ünïcødé/ブランチ", Some("n-c-d")),
        ("日本語", None),
        ("café", Some("caf")),
        ("\u{212A}elvin", Some("elvin")),
        ("emoji-🚀-launch", Some("emoji---launch")),
        // Long names are cut to 128 characters without a trailing `-` or `.`.
        (&"a".repeat(200), Some(&max)),
        (&format!("{}/b", "a".repeat(127)), Some(&max[..127])),
        (&format!("{}...", "a".repeat(127)), Some(&max[..127])),
        (&format!("//////{}", "a".repeat(130)), Some(&max)),
    ];
    for &(branch, want) in cases {
        assert_eq!(
            slug(branch).as_ref().map(Tag::as_str),
            want,
            "slug({branch:?})"
        );
    }
}

/// A tiny deterministic generator, so the property tests need no extra dependency and
/// a failure reproduces exactly.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn branch(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "q",
            "0",
            "9",
            "_",
            ".",
            "-",
            "/",
            " ",
            "+",
            "@",
            ":",
            "~",
            "é",
            "ß",
            "ブ",
            "🚀",
            "\u{212A}",
            "\t",
            "feature",
            "refs/heads/",
            "latest",
            "1.2",
            "sha-",
            "build-",
            "-2024-06-01",
        ];
        let len = match self.below(10) {
            0 => 40 + self.below(200), // long names, to reach the length limit
            _ => self.below(12),
        };
        (0..len).map(|_| self.pick(PIECES)).collect()
    }
}

#[test]
fn slug_always_yields_a_valid_tag_or_none() {
    let mut rng = Lcg(0x5eed);
    let (mut none, mut longest) = (0, 0);
    for _ in 0..5000 {
        let branch = rng.branch();
        let kept = strip_heads(&branch)
            .chars()
            .any(|c| c.is_ascii_alphanumeric() || c == '_');
        match slug(&branch) {
            Some(tag) => {
                assert_eq!(
                    Tag::parse(tag.as_str()).as_ref(),
                    Ok(&tag),
                    "slug({branch:?})"
                );
                assert!(kept, "slug({branch:?}) = {tag:?} from nothing to keep");
                assert!(
                    !tag.as_str().ends_with(['-', '.']),
                    "slug({branch:?}) = {tag:?}"
                );
                assert_eq!(
                    slug(tag.as_str()).as_ref(),
                    Some(&tag),
                    "slug is not idempotent on {branch:?}"
                );
                longest = longest.max(tag.as_str().len());
            }
            None => {
                assert!(!kept, "slug({branch:?}) dropped every character");
                none += 1;
            }
        }
    }
    // The generator must reach both edges, or the loop above proves little.
    assert!(none > 100, "only {none} names gave no slug");
    assert_eq!(longest, Tag::MAX_LEN);
}

#[test]
fn every_generated_tag_is_valid() {
    let mut rng = Lcg(0xfac7);
    let versions = [
        "0.0.1",
        "0.4.1",
        "1.2.3",
        "10.20.30",
        "1.3.0-rc.1",
        "2.0.0+build.5",
        "0.9.0-beta.2+x",
    ];
    let stages = [
        None,
        Some("dev"),
        Some("staging"),
        Some("_"),
        Some("qa.eu-1"),
    ];
    for _ in 0..3000 {
        let branch = rng.branch();
        let f = Facts {
            stage: rng
                .pick(&stages[..].iter().collect::<Vec<_>>())
                .map(str::to_owned),
            build_number: (rng.below(2) == 0).then(|| u64::from(rng.next()) * 1_000_003),
            ..facts(
                rng.pick(&versions),
                rng.below(2) == 0,
                (rng.below(5) > 0).then_some(branch.as_str()),
            )
        };
        let got = tags(&f).unwrap_or_else(|e| panic!("{e}\nfacts: {f:?}"));
        for (i, tag) in got.iter().enumerate() {
            assert_eq!(Tag::parse(tag.as_str()).as_ref(), Ok(tag), "facts: {f:?}");
            assert!(!got[..i].contains(tag), "duplicate {tag} for {f:?}");
        }
        assert!(got.iter().any(|t| *t == "sha-3f2a9c1"), "{got:?}");
        assert_eq!(
            got.iter().filter(|t| **t == "latest").count(),
            usize::from(
                f.release
                    && f.version.pre.is_empty()
                    && f.branch.as_deref().map(strip_heads) == Some("main")
            )
        );
    }
}
