//! `--shard K/N`: which cells one of N runners executes.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::{Cell, Plan};

/// Shard `index` of `count`, 1-based as in nextest's `--partition count:K/N`.
///
/// Always valid: `1 <= index <= count` (build one with [`Shard::new`] or parse `"K/N"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// Why `--shard K/N` is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    #[error("invalid shard {input:?}: expected K/N, two whole numbers such as 2/5")]
    Syntax { input: String },
    #[error("invalid shard {index}/{count}: N must be at least 1")]
    NoShards { index: usize, count: usize },
    #[error("invalid shard {index}/{count}: shards are numbered from 1 to {count}")]
    OutOfRange { index: usize, count: usize },
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if count == 0 {
            Err(ShardError::NoShards { index, count })
        } else if index == 0 || index > count {
            Err(ShardError::OutOfRange { index, count })
        } else {
            Ok(Shard { index, count })
        }
    }

    /// Parses `"K/N"` (spaces around either number are allowed).
    pub fn parse(input: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax {
            input: input.to_string(),
        };
        let (k, n) = input.split_once('/').ok_or_else(syntax)?;
        let number = |s: &str| {
            let s = s.trim();
            // usize::from_str takes a leading `+`; a shard is plain digits.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            s.parse::<usize>().map_err(|_| syntax())
        };
        Shard::new(number(k)?, number(n)?)
    }

    /// 1-based.
    pub fn index(self) -> usize {
        self.index
    }

    pub fn count(self) -> usize {
        self.count
    }

    /// The positions of this shard's cells among `len` cells: contiguous, and the first
    /// `len % count` shards hold one cell more, so sizes differ by at most one.
    ///
    /// Contiguous rather than round-robin (nextest deals tests out one by one): the plan
    /// orders cells so that neighbours share a package, toolchain, target and profile, and a
    /// runner that gets neighbours compiles the dependencies once.
    pub fn range(self, len: usize) -> Range<usize> {
        let base = len / self.count;
        let extra = len % self.count;
        let i = self.index - 1;
        let start = i * base + i.min(extra);
        let size = base + usize::from(i < extra);
        start..start + size
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        Shard::parse(s)
    }
}

/// The cells of `plan` that shard `shard` runs, in plan order. Every cell is in exactly
/// one of the `shard.count()` shards.
pub fn shard(plan: &Plan, shard: Shard) -> Vec<Cell> {
    plan.cells[shard.range(plan.cells.len())].to_vec()
}
