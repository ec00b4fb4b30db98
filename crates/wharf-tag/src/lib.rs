//! Image tags computed from a version, git facts, a date and a build number.
//!
//! [`tags`] turns [`Facts`] (what CI knows about a build) into the list of [`Tag`]s to push,
//! following the rules in `docs/TAGS.md`; [`slug`] makes a tag from a branch name.
//!
//! This crate is pure: it never runs git, reads the environment or a file, looks at the clock
//! or touches the network. Gathering the facts is the caller's job, which is what keeps every
//! rule here testable from a table.

mod tag;

use jiff::civil::Date;
use semver::Version;
use serde::{Deserialize, Serialize};

pub use tag::{Problem, Tag};

/// Why a tag, or the facts a tag is made from, is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// A string does not match the tag grammar.
    #[error("invalid tag {tag:?}: {}", problem.describe("a tag"))]
    Tag { tag: String, problem: Problem },
    /// [`Facts::stage`] cannot start a tag of the form `<stage>-YYYY-MM-DD`.
    #[error("invalid stage {stage:?}: {} (the stage starts the tag \"<stage>-YYYY-MM-DD\")", problem.describe("a stage"))]
    Stage { stage: String, problem: Problem },
    /// [`Facts::sha`] is not a full commit id.
    #[error(
        "invalid commit sha {sha:?}: expected 40 lowercase hex characters (the output of `git rev-parse HEAD`)"
    )]
    Sha { sha: String },
}

/// What CI knows about a build: everything [`tags`] needs, and nothing it has to look up.
///
/// Serializes to and from JSON so a pipeline can print the inputs next to the tags it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// The package version, from `Cargo.toml`.
    pub version: Version,
    /// True when HEAD carries the git tag `v<version>`.
    pub release: bool,
    /// The commit id: 40 lowercase hex characters.
    pub sha: String,
    /// The branch being built, with or without `refs/heads/`; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// The repository's default branch, e.g. `main`.
    pub default_branch: String,
    /// The build date, for `<stage>-YYYY-MM-DD` tags. Passed in, never read from the clock.
    pub date: Date,
    /// The stage the image is built for, e.g. `dev` or `staging`.
    pub stage: Option<String>,
    /// The CI run number.
    pub build_number: Option<u64>,
}

/// Length of the short commit id in `sha-<sha7>` and `build-<N>-<sha7>` (git's default).
const SHORT_SHA: usize = 7;

/// Length of `-YYYY-MM-DD`, the part of a stage tag after the stage.
const DATE_SUFFIX: usize = 11;

/// Prefix for a branch tag that could be mistaken for a tag made by another rule.
const BRANCH_PREFIX: &str = "branch-";

/// The tags for one build, in this order and without duplicates:
///
/// 1. **Version** (release builds only, `release == true`): the full version, `1.2.3`, with
///    build metadata's `+` turned into `-` because `+` is not allowed in a tag
///    (`1.2.3+7` gives `1.2.3-7`). For a version without a prerelease part, also the moving
///    tags a user can pin to and still receive compatible fixes, following Cargo's
///    compatibility rules: `1.2` and `1` for `1.2.3`; only `0.4` for `0.4.1`, never a bare `0`,
///    because 0.x minor versions are not compatible with each other; none for `0.0.3`, because
///    every 0.0.x version is its own compatibility range. A prerelease (`1.3.0-rc.1`) gets
///    only its full version, so it never moves a tag that users of stable versions follow.
/// 2. **`latest`**: only for a release without a prerelease part built from the default
///    branch, so `latest` never goes backwards to a maintenance release or a release
///    candidate. A release built on a detached HEAD does not get it: a caller that checks out
///    the git tag should pass the branch the tag was made on.
/// 3. **`sha-<sha7>`**: always; the first 7 characters of the commit id, so any image can be
///    traced to its commit.
/// 4. **Branch**: the [`slug`] of the branch, when on a branch and the slug is not empty.
///    A slug that looks like a tag of another rule (`latest`, starts with a digit like a
///    version, starts with `sha-` or `build-`, or ends in `-YYYY-MM-DD` like a stage tag)
///    gets a `branch-` prefix, so pushing a branch named `latest` or `1.2` can never
///    overwrite a release tag.
/// 5. **`<stage>-YYYY-MM-DD`**: when a stage is given; names the day's image for the stage.
/// 6. **`build-<N>-<sha7>`**: when a build number is given; the short commit id keeps the tag
///    unique when a CI run number is re-run on another commit.
///
/// Fails when the sha is not 40 lowercase hex characters, when the stage is not a valid
/// start of a tag, or when the version is too long to fit in a tag.
pub fn tags(facts: &Facts) -> Result<Vec<Tag>, TagError> {
    let sha7 = short_sha(&facts.sha)?;
    if let Some(stage) = &facts.stage {
        tag::check(stage, Tag::MAX_LEN - DATE_SUFFIX).map_err(|problem| TagError::Stage {
            stage: stage.clone(),
            problem,
        })?;
    }

    let mut out = Vec::new();
    let mut push = |tag: Tag| {
        if !out.contains(&tag) {
            out.push(tag);
        }
    };

    let version = &facts.version;
    let stable = version.pre.is_empty();
    if facts.release {
        push(Tag::parse(&version.to_string().replace('+', "-"))?);
        if stable && version.major > 0 {
            push(Tag::new_unchecked(format!(
                "{}.{}",
                version.major, version.minor
            )));
            push(Tag::new_unchecked(version.major.to_string()));
        } else if stable && version.minor > 0 {
            push(Tag::new_unchecked(format!("0.{}", version.minor)));
        }
        if stable && on_default_branch(facts) {
            push(Tag::new_unchecked("latest".to_owned()));
        }
    }
    push(Tag::new_unchecked(format!("sha-{sha7}")));
    if let Some(branch) = &facts.branch
        && let Some(slug) = slug(branch)
    {
        push(branch_tag(slug));
    }
    if let Some(stage) = &facts.stage {
        push(Tag::parse(&format!("{stage}-{}", facts.date))?);
    }
    if let Some(n) = facts.build_number {
        push(Tag::new_unchecked(format!("build-{n}-{sha7}")));
    }
    Ok(out)
}

/// A tag made from a branch name, or `None` when no character of the name can be kept.
///
/// Strips a leading `refs/heads/`, lowercases ASCII letters, replaces every run of characters
/// outside `[a-z0-9_.-]` by one `-`, trims `.` and `-` from both ends (`_` is kept), and cuts
/// the result to [`Tag::MAX_LEN`] characters without leaving a `-` or `.` at the end.
///
/// ```
/// # use wharf_tag::slug;
/// assert_eq!(slug("feature/Login-Page").unwrap(), "feature-login-page");
/// assert_eq!(slug("refs/heads/dependabot/cargo/serde-1.0.200").unwrap(), "dependabot-cargo-serde-1.0.200");
/// assert_eq!(slug("___").unwrap(), "___");
/// assert_eq!(slug("///"), None);
/// ```
pub fn slug(branch: &str) -> Option<Tag> {
    let branch = strip_heads(branch);
    let mut out = String::with_capacity(branch.len());
    let mut in_run = false;
    for c in branch.chars() {
        // ASCII only: full Unicode lowercasing changes between Unicode versions (and maps
        // a few non-ASCII letters such as the Kelvin sign to ASCII), and a branch must get
        // the same tag whichever toolchain built the pipeline.
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let trimmed = trim_end(out.trim_start_matches(['.', '-']));
    (!trimmed.is_empty()).then(|| Tag::new_unchecked(trimmed.to_owned()))
}

/// Cuts `s` (ASCII, so bytes are characters) to the tag length limit and trims the end.
fn trim_end(s: &str) -> &str {
    s[..s.len().min(Tag::MAX_LEN)].trim_end_matches(['.', '-'])
}

fn branch_tag(slug: Tag) -> Tag {
    let s = slug.as_str();
    let reserved = s == "latest"
        || s.starts_with(|c: char| c.is_ascii_digit())
        || s.starts_with("sha-")
        || s.starts_with("build-")
        || ends_in_date(s);
    if !reserved {
        return slug;
    }
    Tag::new_unchecked(trim_end(&format!("{BRANCH_PREFIX}{s}")).to_owned())
}

/// Whether `s` ends in `-YYYY-MM-DD`, the shape of a stage tag.
fn ends_in_date(s: &str) -> bool {
    let Some(tail) = s.len().checked_sub(DATE_SUFFIX).map(|i| &s.as_bytes()[i..]) else {
        return false;
    };
    tail.iter().enumerate().all(|(i, b)| match i {
        0 | 5 | 8 => *b == b'-',
        _ => b.is_ascii_digit(),
    })
}

fn short_sha(sha: &str) -> Result<&str, TagError> {
    let valid = sha.len() == 40 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return Err(TagError::Sha {
            sha: sha.to_owned(),
        });
    }
    Ok(&sha[..SHORT_SHA])
}

fn on_default_branch(facts: &Facts) -> bool {
    let default = strip_heads(&facts.default_branch);
    facts
        .branch
        .as_deref()
        .is_some_and(|b| strip_heads(b) == default)
}

fn strip_heads(branch: &str) -> &str {
    branch.strip_prefix("refs/heads/").unwrap_or(branch)
}

#[cfg(test)]
mod tests;
