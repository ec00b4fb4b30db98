//! The `Tag` type and the tag grammar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TagError;

/// An image tag that is known to match the OCI/Docker grammar
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
///
/// The only ways to get one are [`Tag::parse`] (and its `FromStr`/`TryFrom`/`Deserialize`
/// twins), [`slug`](crate::slug) and [`tags`](crate::tags), so a `Tag` never needs
/// checking again before it is sent to a registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// The longest tag a registry accepts, in characters.
    pub const MAX_LEN: usize = 128;

    /// Checks `tag` against the tag grammar.
    pub fn parse(tag: &str) -> Result<Tag, TagError> {
        match check(tag, Tag::MAX_LEN) {
            Ok(()) => Ok(Tag(tag.to_owned())),
            Err(problem) => Err(TagError::Tag {
                tag: tag.to_owned(),
                problem,
            }),
        }
    }

    /// The tag as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For strings this crate built itself: the grammar is re-checked in debug builds
    /// (and so in every test), where a violation is a bug in this crate, not bad input.
    pub(crate) fn new_unchecked(tag: String) -> Tag {
        debug_assert_eq!(
            check(&tag, Tag::MAX_LEN),
            Ok(()),
            "built an invalid tag {tag:?}"
        );
        Tag(tag)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Tag {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Tag, TagError> {
        Tag::parse(s)
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;

    fn try_from(s: String) -> Result<Tag, TagError> {
        // Checked on the borrowed string so the allocation is reused on success.
        match check(&s, Tag::MAX_LEN) {
            Ok(()) => Ok(Tag(s)),
            Err(problem) => Err(TagError::Tag { tag: s, problem }),
        }
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> String {
        tag.0
    }
}

/// What is wrong with a tag, or with a string that becomes part of one (a stage).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The string is empty.
    Empty,
    /// The first character is `.` or `-`.
    Start,
    /// A character outside `[A-Za-z0-9_.-]`.
    Char(char),
    /// More than `max` characters.
    TooLong { len: usize, max: usize },
}

impl Problem {
    /// Describes the problem for a string called `what` ("a tag", "a stage").
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            Problem::Empty => format!("{what} must not be empty"),
            Problem::Start => format!("{what} must start with a letter, digit or underscore"),
            Problem::Char(c) => format!(
                "character {c:?} is not allowed in {what} (use ASCII letters, digits, '_', '.' or '-')"
            ),
            Problem::TooLong { len, max } => {
                format!("{what} has {len} characters, at most {max} are allowed")
            }
        }
    }
}

pub(crate) fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The tag grammar with a length limit, so a stage (which is followed by a date) can be
/// checked against the room it actually has.
pub(crate) fn check(s: &str, max: usize) -> Result<(), Problem> {
    let first = s.chars().next().ok_or(Problem::Empty)?;
    if let Some(bad) = s.chars().find(|&c| !is_tag_char(c)) {
        return Err(Problem::Char(bad));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(Problem::Start);
    }
    // Only ASCII is left, so bytes are characters.
    if s.len() > max {
        return Err(Problem::TooLong { len: s.len(), max });
    }
    Ok(())
}
