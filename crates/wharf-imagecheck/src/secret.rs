//! What looks like a secret: rules on file names and on the first bytes of small files.
//!
//! The patterns are simple enough to match by hand, which keeps a regex engine (and its
//! worst cases on hostile input) out of a scanner of untrusted layers. A rule only says
//! *that* it matched: nothing here returns the bytes it matched.

/// Files larger than this are not read for content rules (binaries, archives, data).
pub(crate) const MAX_SCANNED_FILE: u64 = 1 << 20;
/// Bytes read from the start of each scanned file.
pub(crate) const SCAN_PREFIX: usize = 64 << 10;

/// A rule that matched: its name and what it means, for the finding's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub name: &'static str,
    pub description: &'static str,
}

const fn rule(name: &'static str, description: &'static str) -> Rule {
    Rule { name, description }
}

/// The name rule matching `path` (relative, normalized, `/`-separated), if any.
pub(crate) fn by_name(path: &str) -> Option<Rule> {
    let mut components = path.rsplit('/');
    let name = components.next()?;
    let parent = components.next().unwrap_or("");
    by_last_two(parent, name)
}

/// Name rules look at a file's name and its directory's name only.
pub(crate) fn by_last_two(parent: &str, name: &str) -> Option<Rule> {
    match (parent, name) {
        (_, "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519") => {
            Some(rule("ssh-private-key-file", "an SSH private key file"))
        }
        (".aws", "credentials") => Some(rule("aws-credentials-file", "AWS credentials")),
        (".docker", "config.json") => {
            Some(rule("docker-config-file", "docker registry credentials"))
        }
        (_, ".npmrc") => Some(rule(
            "npmrc",
            "npm configuration, which holds registry tokens",
        )),
        (_, ".pypirc") => Some(rule("pypirc", "PyPI upload credentials")),
        (_, ".netrc") => Some(rule("netrc", "machine passwords for ftp, curl and git")),
        (_, ".git-credentials") => Some(rule("git-credentials", "stored git passwords")),
        (_, ".env") => Some(rule("dotenv", "environment variables file")),
        // `.env.production` and the like; the templates projects commit on purpose are not
        // secrets and are left alone.
        (_, name)
            if name.starts_with(".env.")
                && !matches!(
                    &name[5..],
                    "example" | "sample" | "template" | "dist" | "defaults"
                ) =>
        {
            Some(rule("dotenv", "environment variables file"))
        }
        _ => None,
    }
}

/// Is this a multi-component rule's directory (so a symlink named like it matters)?
pub(crate) fn is_secret_dir(name: &str) -> bool {
    matches!(name, ".aws" | ".docker")
}

/// Every content rule matching `bytes`, each once, in a fixed order.
pub(crate) fn by_content(bytes: &[u8]) -> Vec<Rule> {
    let mut found = Vec::new();
    if private_key(bytes) {
        found.push(rule("private-key", "a PEM private key"));
    }
    if github_token(bytes) {
        found.push(rule("github-token", "a GitHub token"));
    }
    if aws_access_key_id(bytes) {
        found.push(rule("aws-access-key-id", "an AWS access key id"));
    }
    if slack_token(bytes) {
        found.push(rule("slack-token", "a Slack token"));
    }
    found
}

/// Offsets just past each occurrence of `needle` in `haystack`.
fn after<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(move |(i, _)| i + needle.len())
}

/// `-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----`
fn private_key(bytes: &[u8]) -> bool {
    after(bytes, b"-----BEGIN ").any(|at| {
        let rest = &bytes[at..];
        let rest = [&b"RSA "[..], b"EC ", b"OPENSSH ", b"DSA ", b"ENCRYPTED "]
            .iter()
            .find_map(|kind| rest.strip_prefix(*kind))
            .unwrap_or(rest);
        rest.starts_with(b"PRIVATE KEY-----")
    })
}

/// Does the token start at a word boundary (not inside a longer identifier)?
fn starts_word(bytes: &[u8], start: usize) -> bool {
    start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_')
}

fn run_len(bytes: &[u8], allowed: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|b| allowed(**b)).count()
}

/// Classic tokens `gh[pousr]_` + 36 base62 characters; fine-grained `github_pat_` + 22 or
/// more of `[A-Za-z0-9_]`.
fn github_token(bytes: &[u8]) -> bool {
    let classic = [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"]
        .iter()
        .any(|prefix| {
            after(bytes, *prefix).any(|at| {
                starts_word(bytes, at - 4)
                    && run_len(&bytes[at..], |b| b.is_ascii_alphanumeric()) >= 36
            })
        });
    classic
        || after(bytes, b"github_pat_").any(|at| {
            starts_word(bytes, at - 11)
                && run_len(&bytes[at..], |b| b.is_ascii_alphanumeric() || b == b'_') >= 22
        })
}

/// `AKIA[0-9A-Z]{16}` as a whole word, except AWS's documentation key `...EXAMPLE`, which
/// SDKs ship in their docs.
fn aws_access_key_id(bytes: &[u8]) -> bool {
    let key_char = |b: u8| b.is_ascii_digit() || b.is_ascii_uppercase();
    after(bytes, b"AKIA").any(|at| {
        let start = at - 4;
        let boundary_before = start == 0 || !key_char(bytes[start - 1]);
        let run = run_len(&bytes[at..], key_char);
        boundary_before && run == 16 && !bytes[at..at + 16].ends_with(b"EXAMPLE")
    })
}

/// `xox[baprs]-` followed by at least 10 token characters.
fn slack_token(bytes: &[u8]) -> bool {
    after(bytes, b"xox").any(|at| {
        starts_word(bytes, at - 3)
            && bytes.get(at).is_some_and(|b| b"baprs".contains(b))
            && bytes.get(at + 1) == Some(&b'-')
            && run_len(&bytes[at + 2..], |b| b.is_ascii_alphanumeric() || b == b'-') >= 10
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bytes: &[u8]) -> Vec<&'static str> {
        by_content(bytes).iter().map(|r| r.name).collect()
    }

    #[test]
    fn private_key_headers() {
        for kind in ["", "RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED "] {
            let pem = format!("junk\n-----BEGIN {kind}PRIVATE KEY-----\nMIIE\n");
            assert_eq!(names(pem.as_bytes()), ["private-key"], "{kind:?}");
        }
        assert!(names(b"-----BEGIN CERTIFICATE-----\nMIIB").is_empty());
        assert!(names(b"-----BEGIN PUBLIC KEY-----\nMIIB").is_empty());
        assert!(names(b"-----BEGIN FOO PRIVATE KEY-----").is_empty());
    }

    #[test]
    fn tokens_need_their_full_shape() {
        let ghp = format!("token={}{}", "ghp_", "a".repeat(36));
        assert_eq!(names(ghp.as_bytes()), ["github-token"]);
        assert!(names(format!("ghp_{}", "a".repeat(35)).as_bytes()).is_empty());
        assert!(names(format!("xghp_{}", "a".repeat(36)).as_bytes()).is_empty());
        let pat = format!("github_pat_{}", "A1_".repeat(10));
        assert_eq!(names(pat.as_bytes()), ["github-token"]);

        assert_eq!(names(b"id=AKIAABCDEFGHIJKLMNOP\n"), ["aws-access-key-id"]);
        assert!(names(b"AKIAABCDEFGHIJKLMNOPQ").is_empty(), "21 characters");
        assert!(names(b"AKIAABCDEFGHIJKLMNO").is_empty(), "19 characters");
        assert!(
            names(b"AKIAIOSFODNN7EXAMPLE").is_empty(),
            "documentation key"
        );

        assert_eq!(names(b"xoxb-1234567890-abc"), ["slack-token"]);
        assert!(names(b"xoxq-1234567890-abc").is_empty());
        assert!(names(b"xoxb-123").is_empty());
        assert!(names(b"\xff\xfe binary xox").is_empty());
    }

    #[test]
    fn name_rules() {
        for path in [
            "root/.ssh/id_rsa",
            "home/a/.ssh/id_ed25519",
            "app/.env",
            "app/.env.production",
            ".npmrc",
            "root/.pypirc",
            "root/.netrc",
            "root/.git-credentials",
            "root/.aws/credentials",
            "root/.docker/config.json",
        ] {
            assert!(by_name(path).is_some(), "{path}");
        }
        for path in [
            "root/.ssh/id_rsa.pub",
            "app/.env.example",
            "app/env",
            "etc/credentials",
            "app/config.json",
            "app/server.pem",
        ] {
            assert!(by_name(path).is_none(), "{path}");
        }
    }
}
