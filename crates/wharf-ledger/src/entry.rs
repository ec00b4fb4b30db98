//! One ledger entry and how it is hashed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wharf_oci::Digest;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// CI built and tested `digest` (at a commit): what the tests gate reads.
    Verification,
    /// `who` approved `digest` for the stage `to`.
    Approval,
    /// `digest` moved from the stage `from` (none for the first stage) into `to`.
    Promotion,
    /// The stage `to` went back to `digest`, its previous one.
    Rollback,
    /// A deploy of `digest` to the stage `to` ended; the evidence says how.
    Deploy,
}

/// What a caller asks to append: an [`Entry`] without its place in the chain.
///
/// `evidence` holds no floating-point numbers (use integers: milliseconds, per-mille, or
/// strings), so that canonical JSON, and with it the hash, is the same on every machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub kind: Kind,
    /// Who asked for it: `GITHUB_ACTOR` or `git config user.email` (asserted, not proven,
    /// unless `signature` is there).
    pub who: String,
    pub when: Timestamp,
    pub digest: Digest,
    /// The stage the digest came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The stage the entry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Gate results, the commit, the tags moved: a JSON object.
    #[serde(default)]
    pub evidence: serde_json::Value,
    /// An armored SSH signature (`ssh-keygen -Y sign`) over the approval, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// An entry in the ledger: a [`Draft`] with its position and the hash of the entry before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1 for the first entry, then one more for each.
    pub seq: u64,
    /// `sha256:<hex>` of the previous entry (see [`Entry::hash`]); `None` for the first.
    #[serde(default)]
    pub prev: Option<Digest>,
    pub kind: Kind,
    pub who: String,
    pub when: Timestamp,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default)]
    pub evidence: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Entry {
    /// The entry that follows `prev` (none: the first entry).
    pub fn after(prev: Option<&Entry>, draft: Draft) -> Entry {
        Entry {
            seq: prev.map_or(1, |p| p.seq + 1),
            prev: prev.map(Entry::hash),
            kind: draft.kind,
            who: draft.who,
            when: draft.when,
            digest: draft.digest,
            from: draft.from,
            to: draft.to,
            evidence: draft.evidence,
            signature: draft.signature,
        }
    }

    /// [`Entry::after`] for a draft that is checked first: its evidence must hold no
    /// floating-point number, which canonical JSON cannot write (see [`FloatInEvidence`]).
    /// Every entry a store appends is made this way.
    pub fn try_after(prev: Option<&Entry>, draft: Draft) -> Result<Entry, FloatInEvidence> {
        if let Some(path) = float_path(&draft.evidence, "evidence") {
            return Err(FloatInEvidence { path });
        }
        Ok(Entry::after(prev, draft))
    }

    /// sha256 of the entry's canonical JSON (sorted keys, no spaces): what the next entry's
    /// `prev` holds.
    ///
    /// Panics when `evidence` holds a float; entries made by [`Entry::try_after`] or read by
    /// [`crate::verify`] never do.
    pub fn hash(&self) -> Digest {
        Digest::sha256(&wharf_oci::manifest::canonical_json(self))
    }

    /// The entry's line in the ledger: its canonical JSON with the field `hash` added, and a
    /// newline.
    pub fn line(&self) -> Vec<u8> {
        self.line_with_hash(&self.hash().to_string())
    }

    /// The line as it would read with `hash` recorded, whatever that is: what verify
    /// compares a line with to tell a reformatted line from an edited one.
    pub(crate) fn line_with_hash(&self, hash: &str) -> Vec<u8> {
        let mut record = serde_json::to_value(self).expect("an entry serializes to a JSON object");
        record
            .as_object_mut()
            .expect("an entry serializes to a JSON object")
            .insert("hash".into(), hash.into());
        let mut line = wharf_oci::manifest::canonical_json(&record);
        line.push(b'\n');
        line
    }

    /// `promotion sha256:ab12cd34ef56… to production`: what messages call the entry.
    pub fn summary(&self) -> String {
        summary(Some(self.kind), Some(&self.digest), self.to.as_deref())
    }
}

/// How messages name an entry from what of it could be read.
pub(crate) fn summary(kind: Option<Kind>, digest: Option<&Digest>, to: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(kind) = kind {
        parts.push(format!("{kind:?}").to_lowercase());
    }
    if let Some(digest) = digest {
        parts.push(short(digest));
    }
    if let Some(to) = to {
        parts.push(format!("to {to}"));
    }
    parts.join(" ")
}

/// `sha256:` and the first 12 hex digits: enough to tell entries apart in a message.
fn short(digest: &Digest) -> String {
    let text = digest.to_string();
    match text
        .char_indices()
        .nth(text.find(':').map_or(0, |c| c + 13))
    {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A draft's evidence held a floating-point number: canonical JSON (the olpc flavour the
/// hashes are made from) has no way to write one, so the same value could hash differently
/// on two machines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ledger entry's {path} is a floating-point number, which canonical JSON cannot \
     write (hint: record an integer, e.g. milliseconds or per-mille, or a string)"
)]
pub struct FloatInEvidence {
    /// Where the float is, e.g. `evidence.gates[2].p95_ms`.
    pub path: String,
}

/// The JSON path of the first float in `value` (sorted key order, so the answer is stable).
pub(crate) fn float_path(value: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Some(at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| float_path(item, &format!("{at}[{i}]"))),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .find_map(|k| float_path(&map[k], &format!("{at}.{k}")))
        }
        _ => None,
    }
}
