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

    /// sha256 of the entry's canonical JSON (sorted keys, no spaces): what the next entry's
    /// `prev` holds.
    pub fn hash(&self) -> Digest {
        Digest::sha256(&wharf_oci::manifest::canonical_json(self))
    }
}
