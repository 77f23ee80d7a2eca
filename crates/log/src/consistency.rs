//! Consistency tokens: the log positions a write reached, as an opaque string.
//! A query that carries one is answered only once the node has applied at
//! least those positions (Zanzibar's zookie), which gives read-your-writes —
//! and read-your-revocations — across nodes.

use std::fmt;

use crate::{Error, Position, Result};

/// Per partition, the offset *after* the last record covered (0: nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsistencyToken {
    next: Vec<u64>,
}

const PREFIX: &str = "ct1.";
/// More partitions than any deployment has; bounds what a token may claim
/// (and a node refuses a log with more).
pub const PARTITIONS_MAX: usize = 4096;

impl ConsistencyToken {
    pub fn new(next: Vec<u64>) -> Self {
        ConsistencyToken { next }
    }

    /// The token covering `positions` (and, implicitly, everything before them).
    pub fn covering(positions: impl IntoIterator<Item = Position>) -> Result<Self> {
        let mut token = ConsistencyToken::default();
        for position in positions {
            token.include(position)?;
        }
        Ok(token)
    }

    /// Extends the token to cover the record at `position`. A position no
    /// token can hold (a partition past [`PARTITIONS_MAX`], the offset
    /// `u64::MAX`) is refused: a node never writes one, so it is a broken
    /// message, and it must not cost memory or wrap.
    pub fn include(&mut self, position: Position) -> Result<()> {
        let p = position.partition as usize;
        if p >= PARTITIONS_MAX {
            return Err(Error::Token(format!(
                "partition {p} is past the {PARTITIONS_MAX} a token may name"
            )));
        }
        let next = position.offset.checked_add(1).ok_or_else(|| {
            Error::Token(format!("offset {} has no offset after it", position.offset))
        })?;
        if self.next.len() <= p {
            self.next.resize(p + 1, 0);
        }
        self.next[p] = self.next[p].max(next);
        Ok(())
    }

    /// Combines two tokens: covers what either covers.
    pub fn merge(&mut self, other: &ConsistencyToken) {
        if self.next.len() < other.next.len() {
            self.next.resize(other.next.len(), 0);
        }
        for (mine, theirs) in self.next.iter_mut().zip(&other.next) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Per partition, the offset after the last covered record.
    pub fn next_offsets(&self) -> &[u64] {
        &self.next
    }

    /// Whether `applied` (next offset per partition) covers this token.
    pub fn is_covered_by(&self, applied: &[u64]) -> bool {
        self.next
            .iter()
            .enumerate()
            .all(|(p, need)| *need == 0 || applied.get(p).is_some_and(|have| have >= need))
    }

    /// Parses the text form, `ct1.` followed by per-partition offsets in
    /// lowercase hex, separated by `-` (empty for 0); at most
    /// 4096 partitions. `proto/testvectors/sdk/consistency.json` is the
    /// specification both SDKs run.
    pub fn parse(text: &str) -> Result<Self> {
        let body = text.strip_prefix(PREFIX).ok_or_else(|| {
            Error::Token(format!(
                "{:?} does not start with {PREFIX:?}",
                baton_core::echo(text)
            ))
        })?;
        let parts: Vec<&str> = body.split('-').collect();
        if parts.len() > PARTITIONS_MAX {
            return Err(Error::Token(format!(
                "names {} partitions, more than {PARTITIONS_MAX}",
                parts.len()
            )));
        }
        let next = parts
            .iter()
            .map(|part| {
                if part.is_empty() {
                    return Ok(0);
                }
                // One spelling: lowercase hex digits only (from_str_radix
                // alone would take a sign and upper case, which the
                // Python SDK and a token compared as text read otherwise).
                let digits = part.len() <= 16
                    && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !digits {
                    return Err(Error::Token(format!(
                        "offset {:?} is not 1 to 16 lowercase hex digits",
                        baton_core::echo(part)
                    )));
                }
                u64::from_str_radix(part, 16)
                    .map_err(|e| Error::Token(format!("offset {:?}: {e}", baton_core::echo(part))))
            })
            .collect::<Result<Vec<u64>>>()?;
        Ok(ConsistencyToken { next })
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for (i, next) in self.next.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            if *next > 0 {
                write!(f, "{next:x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_compare() {
        let token = ConsistencyToken::covering([
            Position {
                partition: 0,
                offset: 9,
            },
            Position {
                partition: 2,
                offset: 255,
            },
        ])
        .unwrap();
        assert_eq!(token.to_string(), "ct1.a--100");
        assert_eq!(ConsistencyToken::parse("ct1.a--100").unwrap(), token);
        assert!(token.is_covered_by(&[10, 0, 256]));
        assert!(!token.is_covered_by(&[10, 0, 255]));
        assert!(!token.is_covered_by(&[10]));
        assert!(ConsistencyToken::parse("ct1.zz").is_err());
        assert!(ConsistencyToken::parse("x").is_err());
        assert!(ConsistencyToken::default().is_covered_by(&[]));
    }
}
