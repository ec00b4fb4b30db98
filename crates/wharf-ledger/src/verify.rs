//! Reading a ledger's bytes back into entries, trusting nothing: every line must be the
//! canonical form of an entry whose hash, position and link to the entry before all hold.

use std::fmt;

use serde_json::{Map, Value};
use wharf_oci::Digest;

use crate::entry::{self, Entry, Kind};

/// Why a ledger does not verify, and where: the first line that is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Tamper {
    /// 1-based line number in the ledger file.
    pub line: usize,
    /// The entry's `seq`, when the line could be read that far.
    pub seq: Option<u64>,
    /// The entry's kind, digest and stage, as far as they could be read.
    pub entry: String,
    pub problem: Problem,
}

/// What is wrong with the line [`Tamper::line`].
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The line is not JSON, or not an entry (unknown or missing fields, a float...).
    NotAnEntry(String),
    /// The last line has no newline: a write was cut off (a crash or a full disk).
    Torn,
    /// The entry reads, but the line is not its canonical JSON (whitespace or key order
    /// edited, or a value written another way).
    NotCanonical,
    /// The entry's content does not hash to its `hash`: it was edited.
    Edited { recorded: String, actual: Digest },
    /// The line should hold entry `expected` but holds a later one, which is found later
    /// in the file: the two were swapped.
    Before { expected: u64 },
    /// The line should hold entry `expected`, which is nowhere: it was removed.
    Missing { expected: u64 },
    /// The line holds an entry that belongs earlier: `after` is the entry before it.
    Repeated { after: u64 },
    /// `prev` is not the hash of the entry before: that one was edited or removed.
    BrokenLink {
        recorded: Option<Digest>,
        actual: Option<Digest>,
    },
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        let name = match (self.seq, self.entry.is_empty()) {
            (Some(seq), true) => format!("entry {seq} (line {line})"),
            (Some(seq), false) => format!("entry {seq} (line {line}, {})", self.entry),
            (None, _) => format!("line {line}"),
        };
        match &self.problem {
            Problem::NotAnEntry(why) => match self.seq {
                Some(_) => write!(f, "{name} is not a ledger entry: {why}"),
                None => write!(f, "line {line} is not a ledger entry: {why}"),
            },
            Problem::Torn => write!(
                f,
                "{name} has no newline at its end: a write to the ledger was cut off \
                 (hint: check the line and remove it, it was never part of the ledger)"
            ),
            Problem::NotCanonical => write!(
                f,
                "{name} is not written in canonical JSON: its white space, key order or \
                 escaping was edited"
            ),
            Problem::Edited { recorded, actual } => write!(
                f,
                "{name} was edited: it records the hash {recorded} but its content hashes \
                 to {actual}"
            ),
            Problem::Before { expected } => write!(
                f,
                "{name} comes before entry {expected}: entries were reordered"
            ),
            Problem::Missing { expected } => write!(
                f,
                "entry {expected} is missing: line {line} holds {}",
                name_of(self.seq, &self.entry)
            ),
            Problem::Repeated { after } => write!(
                f,
                "{name} comes after entry {after}: entries were reordered or repeated"
            ),
            Problem::BrokenLink { recorded, actual } => write!(
                f,
                "{name} does not follow the entry before it: its prev is {} but that entry \
                 hashes to {} (an entry before it was edited or removed)",
                show(recorded.as_ref()),
                show(actual.as_ref()),
            ),
        }
    }
}

fn name_of(seq: Option<u64>, entry: &str) -> String {
    match seq {
        Some(seq) if entry.is_empty() => format!("entry {seq}"),
        Some(seq) => format!("entry {seq} ({entry})"),
        None => "an unreadable entry".into(),
    }
}

fn show(digest: Option<&Digest>) -> String {
    digest.map_or_else(|| "nothing (a first entry)".into(), Digest::to_string)
}

/// Checks a whole ledger and returns its entries, or names the first line that is wrong.
///
/// An empty input is an empty ledger. Removing the *last* entries leaves a valid, shorter
/// ledger, which no hash chain can tell; the git store catches it by ancestry instead.
pub fn verify(bytes: &[u8]) -> Result<Vec<Entry>, Tamper> {
    let lines = split_lines(bytes);
    let mut entries: Vec<Entry> = Vec::with_capacity(lines.len());
    for (index, &(text, terminated)) in lines.iter().enumerate() {
        let line = index + 1;
        let entry = read_line(text, terminated, line)?;
        let tamper = |problem| Tamper {
            line,
            seq: Some(entry.seq),
            entry: entry.summary(),
            problem,
        };
        let expected = line as u64;
        if entry.seq > expected {
            let later = lines[index + 1..]
                .iter()
                .any(|&(text, _)| seq_of(text) == Some(expected));
            return Err(tamper(if later {
                Problem::Before { expected }
            } else {
                Problem::Missing { expected }
            }));
        }
        if entry.seq < expected {
            return Err(tamper(Problem::Repeated {
                after: expected - 1,
            }));
        }
        let actual = entries.last().map(Entry::hash);
        if entry.prev != actual {
            return Err(tamper(Problem::BrokenLink {
                recorded: entry.prev.clone(),
                actual,
            }));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The lines of `bytes`, each with whether a newline ended it.
fn split_lines(bytes: &[u8]) -> Vec<(&[u8], bool)> {
    let mut lines: Vec<(&[u8], bool)> = bytes.split(|&b| b == b'\n').map(|l| (l, true)).collect();
    // split() yields one more piece after the last newline: empty for a complete file.
    let (last, _) = lines.pop().expect("split yields at least one piece");
    if !last.is_empty() {
        lines.push((last, false));
    }
    lines
}

/// One line as an entry, checked against itself: canonical form and its own hash.
fn read_line(text: &[u8], terminated: bool, line: usize) -> Result<Entry, Tamper> {
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| not_an_entry(line, text, terminated, e.to_string()))?;
    let fail = |problem: Problem| Tamper {
        line,
        seq: value.get("seq").and_then(Value::as_u64),
        entry: readable_summary(&value),
        problem,
    };
    if !terminated {
        return Err(fail(Problem::Torn));
    }
    let Value::Object(mut record) = value.clone() else {
        return Err(fail(Problem::NotAnEntry("it is not a JSON object".into())));
    };
    // Checked before canonical JSON is written, which panics on floats.
    if let Some(path) = entry::float_path(&Value::Object(record.clone()), "entry") {
        return Err(fail(Problem::NotAnEntry(format!(
            "{path} is a floating-point number"
        ))));
    }
    let recorded = take_hash(&mut record).map_err(|why| fail(Problem::NotAnEntry(why)))?;
    let entry: Entry = serde_json::from_value(Value::Object(record))
        .map_err(|e| fail(Problem::NotAnEntry(e.to_string())))?;
    if entry.line_with_hash(&recorded).strip_suffix(b"\n") != Some(text) {
        return Err(fail(Problem::NotCanonical));
    }
    let actual = entry.hash();
    if actual.to_string() != recorded {
        return Err(fail(Problem::Edited { recorded, actual }));
    }
    Ok(entry)
}

/// A line that is not JSON, named by what of it can still be read.
fn not_an_entry(line: usize, text: &[u8], terminated: bool, why: String) -> Tamper {
    let (seq, entry) = scan(text);
    Tamper {
        line,
        seq,
        entry,
        problem: if terminated {
            Problem::NotAnEntry(why)
        } else {
            Problem::Torn
        },
    }
}

fn take_hash(record: &mut Map<String, Value>) -> Result<String, String> {
    match record.remove("hash") {
        Some(Value::String(hash)) => Ok(hash),
        Some(_) => Err("its hash is not a string".into()),
        None => Err("it has no hash".into()),
    }
}

/// The kind, digest and stage of a line that may not be a valid entry, for messages.
fn readable_summary(value: &Value) -> String {
    let kind = value
        .get("kind")
        .and_then(|k| serde_json::from_value::<Kind>(k.clone()).ok());
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok());
    let to = value.get("to").and_then(Value::as_str);
    entry::summary(kind, digest.as_ref(), to)
}

/// The seq and summary of a line that is not JSON (torn or edited), read from its text
/// where those fields are intact, so the message can still name the entry.
fn scan(text: &[u8]) -> (Option<u64>, String) {
    let text = String::from_utf8_lossy(text);
    let field = |key: &str| -> Option<String> {
        let start = text.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = &text[start..];
        let value = match rest.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"')?],
            None => &rest[..rest.find([',', '}'])?],
        };
        Some(value.to_owned())
    };
    let kind = field("kind").and_then(|k| serde_json::from_value::<Kind>(k.into()).ok());
    let digest = field("digest").and_then(|d| d.parse::<Digest>().ok());
    let summary = entry::summary(kind, digest.as_ref(), field("to").as_deref());
    (field("seq").and_then(|s| s.parse().ok()), summary)
}

fn seq_of(text: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(text)
        .ok()?
        .get("seq")?
        .as_u64()
}
