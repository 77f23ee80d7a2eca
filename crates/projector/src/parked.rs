//! Records that wait for a dependency, indexed by what each waits for.
//!
//! A record whose event names a key, client or parent not yet applied is
//! parked (its bytes stay in the store under `p`, see `stored.rs`) until an
//! applied event supplies what it names ([`Dependency::supplied_by`]). It is
//! retried only then: a full set of parked records costs an unrelated batch
//! nothing, where retrying every parked record after every batch cost the
//! apply thread ~0.4 s per batch at 10,000 of them. Its signatures' verdicts
//! are kept, so a retry does not verify them again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use baton_core::{Dependency, Policy};
use baton_log::{Position, ReadRecord};

use crate::Result;
use crate::apply::{self, Decoded, Outcome};
use crate::stored::key;
use crate::view::Staged;

/// Most records parked at once; past it, a record missing a dependency is
/// quarantined at once, so garbage written to the log cannot grow memory.
pub const PARKED_MAX: usize = 10_000;
/// Most bytes of parked records held at once (a record may be as large as
/// the log accepts); past it, as past [`PARKED_MAX`].
pub const PARKED_BYTES_MAX: usize = 64 << 20;

/// A record waiting for a dependency.
#[derive(Debug, Clone)]
pub struct Parked {
    pub value: Vec<u8>,
    /// Since when (this process's clock).
    pub since: Instant,
    /// Per event, whether its signature was verified strictly.
    verified: Vec<bool>,
    /// What it waits for; `None` for a record loaded from the store, whose
    /// dependency this process has not learnt yet (retried at the next batch).
    waits_for: Option<Dependency>,
}

/// The parked records of one projection.
#[derive(Debug, Default)]
pub struct Parking {
    records: BTreeMap<Position, Parked>,
    waiting: HashMap<Dependency, BTreeSet<Position>>,
    unindexed: BTreeSet<Position>,
    bytes: usize,
    /// Records applied again since last taken.
    retries: u64,
    /// The positions of parked records applied since last taken.
    late: Vec<Position>,
}

impl Parking {
    /// The records parked in the store, none indexed yet.
    pub fn load(tree: &sled::Tree) -> Result<Parking> {
        let mut parking = Parking::default();
        for entry in tree.scan_prefix([b'p']) {
            let (k, value) = entry?;
            let position = key::parse_position(&k)
                .ok_or_else(|| crate::Error::Corrupt("parked key".into()))?;
            parking.insert(
                position,
                Parked {
                    value: value.to_vec(),
                    since: Instant::now(),
                    verified: Vec::new(),
                    waits_for: None,
                },
            );
        }
        Ok(parking)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.records.keys()
    }

    /// Whether one more record of `bytes` would pass a bound; if so, names it.
    pub fn full(&self, bytes: usize) -> Option<String> {
        if self.records.len() >= PARKED_MAX {
            Some(format!(
                "{PARKED_MAX} records already wait for dependencies"
            ))
        } else if self.bytes + bytes > PARKED_BYTES_MAX {
            Some(format!(
                "records waiting for dependencies already hold {} bytes; at most {PARKED_BYTES_MAX}",
                self.bytes
            ))
        } else {
            None
        }
    }

    /// Parks a record (its `p` entry is staged by `apply_record`).
    pub fn park(
        &mut self,
        position: Position,
        value: Vec<u8>,
        verified: Vec<bool>,
        waits_for: Option<Dependency>,
        since: Instant,
    ) {
        self.insert(
            position,
            Parked {
                value,
                since,
                verified,
                waits_for,
            },
        );
    }

    fn insert(&mut self, position: Position, parked: Parked) {
        self.remove(position);
        self.bytes += parked.value.len();
        match &parked.waits_for {
            Some(dependency) => {
                self.waiting
                    .entry(dependency.clone())
                    .or_default()
                    .insert(position);
            }
            None => {
                self.unindexed.insert(position);
            }
        }
        self.records.insert(position, parked);
    }

    /// Takes a record out, from the index too.
    pub fn remove(&mut self, position: Position) -> Option<Parked> {
        let parked = self.records.remove(&position)?;
        self.bytes -= parked.value.len();
        match &parked.waits_for {
            Some(dependency) => {
                if let Some(set) = self.waiting.get_mut(dependency) {
                    set.remove(&position);
                    if set.is_empty() {
                        self.waiting.remove(dependency);
                    }
                }
            }
            None => {
                self.unindexed.remove(&position);
            }
        }
        Some(parked)
    }

    /// The positions of parked records applied since last asked.
    pub fn take_late(&mut self) -> Vec<Position> {
        std::mem::take(&mut self.late)
    }

    /// How many records were applied again since the last call.
    pub fn take_retries(&mut self) -> u64 {
        std::mem::take(&mut self.retries)
    }

    /// The records parked before `horizon` for at least `grace`.
    pub fn expired(&self, grace: std::time::Duration, horizon: Instant) -> Vec<Position> {
        self.records
            .iter()
            .filter(|(_, p)| p.since < horizon && p.since.elapsed() >= grace)
            .map(|(position, _)| *position)
            .collect()
    }

    /// The records that wait for something in `supplied`, and those not
    /// indexed yet, in log order.
    fn ready(&self, supplied: &[Dependency]) -> BTreeSet<Position> {
        let mut out = self.unindexed.clone();
        for dependency in supplied {
            if let Some(set) = self.waiting.get(dependency) {
                out.extend(set.iter().copied());
            }
        }
        out
    }

    /// Applies one parked record again, as at its position. It stays parked
    /// (indexed by what it now waits for) if it still misses something.
    pub fn retry(
        &mut self,
        policy: &Policy,
        staged: &mut Staged<'_>,
        position: Position,
    ) -> Result<Option<Outcome>> {
        let Some(parked) = self.remove(position) else {
            return Ok(None);
        };
        self.retries += 1;
        staged.delete(key::position(b'p', position));
        let record = ReadRecord {
            position,
            key: Vec::new(),
            value: parked.value,
        };
        let mut decoded = Decoded::of(&record);
        if parked.verified.len() == decoded.verified.len() {
            decoded.verified.clone_from(&parked.verified);
        }
        let verified = decoded.verified.clone();
        let outcome = apply::apply_record(policy, staged, &record, decoded)?;
        if let Outcome::Applied(_) = &outcome {
            self.late.push(position);
        }
        if let Outcome::Parked(why) = &outcome {
            self.park(
                position,
                record.value,
                verified,
                why.missing.clone(),
                parked.since,
            );
        }
        Ok(Some(outcome))
    }

    /// Retries the records that wait for what `staged` has applied since it
    /// was last asked (and any not indexed yet), then those waiting for what
    /// they supply, until none moves. Returns how many were applied.
    pub fn retry_ready(&mut self, policy: &Policy, staged: &mut Staged<'_>) -> Result<usize> {
        let mut applied = 0;
        loop {
            let ready = self.ready(&staged.take_supplied());
            if ready.is_empty() {
                return Ok(applied);
            }
            for position in ready {
                if let Some(Outcome::Applied(_)) = self.retry(policy, staged, position)? {
                    applied += 1;
                }
            }
        }
    }
}
