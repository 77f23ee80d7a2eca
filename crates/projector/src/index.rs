//! The query indexes (events by kind, by client, by subject, and each
//! token's children), written as aggregates: one sled entry per index
//! prefix per committed batch, not one per event.
//!
//! sled's costs follow the number of entries, not their bytes: an entry
//! costs about 10 µs to insert, 350–450 bytes on disk and its share of the
//! page cache whatever its size (`baton-bench-sled`, docs/benchmarks.md).
//! An event names a kind, two clients and a subject, and a token its
//! parent: five index entries per event when each is its own entry, most of
//! a node's cost. Events of one batch that share a prefix (a gateway's
//! client, a popular subject, a kind) share one entry instead.
//!
//! An index item is (created ms, event id) under a prefix (`i` + kind;
//! `I` + client + 0; `S` + subject + 0; `c` + parent id, whose items carry
//! time 0 so that children come in id order). An aggregate's key is its
//! prefix, then its first item (the least: ms big-endian, id), which is
//! unique because an item is written once; its value is its items in
//! order, [`ITEM`] bytes each. An aggregate's items lie within
//! [`SPAN_MS`] of its first, so a reader that starts [`SPAN_MS`] before
//! the time it wants sees every aggregate that can hold it, and a reader
//! that merges aggregates in key order ([`Ordered`]) yields the items in
//! (ms, id) order: the order of the per-event layout before it.
//!
//! Which events share an aggregate depends on where a batch ended, which is
//! no part of the state: [`crate::snapshot::Digest`] folds in an index
//! entry's items, each on its own and order-free, not the entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use baton_core::EventId;

use crate::{Error, Result};

/// How far apart in created time the items of one aggregate may be.
///
/// Times are compared as big-endian bytes in keys, which orders them only
/// because they are positive: the wire decoder refuses a `created_at` at or
/// before the epoch.
pub const SPAN_MS: i64 = 60_000;

/// Bytes of one item in an aggregate's value: ms (8, big-endian), id (32).
pub const ITEM: usize = 40;

/// One index item: an event and the time it was created. Items order by
/// time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub ms: i64,
    pub id: EventId,
}

impl Item {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ms.to_be_bytes());
        out.extend_from_slice(&self.id.0);
    }

    /// The items of an aggregate's value.
    pub fn decode_all(value: &[u8]) -> Result<impl Iterator<Item = Item> + '_> {
        if value.is_empty() || !value.len().is_multiple_of(ITEM) {
            return Err(Error::Corrupt(format!(
                "an index entry of {} bytes (items are {ITEM})",
                value.len()
            )));
        }
        Ok(value.chunks_exact(ITEM).map(|chunk| Item {
            ms: i64::from_be_bytes(chunk[..8].try_into().expect("8 bytes")),
            id: EventId(chunk[8..].try_into().expect("32 bytes")),
        }))
    }
}

/// The items of an aggregate (`key`, `value`) if it is well formed: its
/// key's item is its first, its items strictly ascend, and all lie within
/// [`SPAN_MS`] of the first. What readers rely on, so the digest folds in
/// only such aggregates (any other entry is hashed as it is, and differs).
pub fn well_formed(key: &[u8], value: &[u8]) -> Option<Vec<Item>> {
    if !is_index(key) {
        return None;
    }
    let first = parse_item_key(prefix_of(key), key)?;
    let items: Vec<Item> = Item::decode_all(value).ok()?.collect();
    let ordered = items.windows(2).all(|pair| pair[0] < pair[1]);
    let within = items
        .last()
        .is_some_and(|last| last.ms < first.ms.saturating_add(SPAN_MS));
    (items.first() == Some(&first) && ordered && within).then_some(items)
}

/// Whether `key` is an index aggregate's.
pub fn is_index(key: &[u8]) -> bool {
    matches!(key.first(), Some(b'i' | b'I' | b'S' | b'c')) && key.len() > ITEM
}

/// The prefix of an aggregate's key (its key without the first item).
pub fn prefix_of(key: &[u8]) -> &[u8] {
    &key[..key.len() - ITEM]
}

/// Events of a kind (its code).
pub fn kind(code: u8) -> Vec<u8> {
    vec![b'i', code]
}

/// Events naming a client (`b'I'`) or a subject (`b'S'`): identifiers hold
/// no control character, so the zero byte ends the name.
pub fn name(prefix: u8, name: &str) -> Vec<u8> {
    let mut out = vec![prefix];
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out
}

/// The tokens derived directly from `parent`.
pub fn children(parent: &EventId) -> Vec<u8> {
    let mut out = vec![b'c'];
    out.extend_from_slice(&parent.0);
    out
}

/// The key an item would have on its own: its prefix and the item. A
/// `list_events` cursor is one.
pub fn item_key(prefix: &[u8], item: &Item) -> Vec<u8> {
    let mut out = prefix.to_vec();
    item.encode(&mut out);
    out
}

/// The item a cursor made by [`item_key`] under `prefix` names.
pub fn parse_item_key(prefix: &[u8], key: &[u8]) -> Option<Item> {
    let rest = key.strip_prefix(prefix)?;
    if rest.len() != ITEM {
        return None;
    }
    Item::decode_all(rest).ok()?.next()
}

/// The aggregates of a batch's items (prefix, item): one entry per prefix,
/// or more where its items spread over more than [`SPAN_MS`].
pub fn aggregates(mut items: Vec<(Vec<u8>, Item)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    items.sort_unstable();
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut open: Option<(&[u8], i64)> = None;
    for (prefix, item) in &items {
        let same = open.is_some_and(|(p, first_ms)| {
            p == prefix.as_slice() && item.ms < first_ms.saturating_add(SPAN_MS)
        });
        if !same {
            out.push((item_key(prefix, item), Vec::new()));
            open = Some((prefix, item.ms));
        }
        let (_, value) = out.last_mut().expect("an open aggregate");
        item.encode(value);
    }
    out
}

/// The items under one prefix, in (ms, id) order, from a lower bound: a
/// merge of the aggregates that can hold them.
pub struct Ordered {
    scan: sled::Iter,
    prefix: Vec<u8>,
    /// Items before this (or at it, when `exclusive`) are skipped.
    from: Item,
    exclusive: bool,
    /// The next aggregate in key order, not yet merged: its first item and
    /// its items.
    next: Option<(Item, Vec<Item>)>,
    heap: BinaryHeap<Reverse<Item>>,
}

impl Ordered {
    /// Items under `prefix` at or after `from` (after it, when `exclusive`).
    pub fn new(tree: &sled::Tree, prefix: Vec<u8>, from: Item, exclusive: bool) -> Result<Ordered> {
        // An aggregate holding `from` began at most SPAN_MS before it.
        let mut start = prefix.clone();
        start.extend_from_slice(&from.ms.saturating_sub(SPAN_MS).max(0).to_be_bytes());
        let mut ordered = Ordered {
            scan: tree.range(start..),
            prefix,
            from,
            exclusive,
            next: None,
            heap: BinaryHeap::new(),
        };
        ordered.advance()?;
        Ok(ordered)
    }

    /// Reads the next aggregate under the prefix into `next`.
    fn advance(&mut self) -> Result<()> {
        self.next = None;
        if let Some(entry) = self.scan.next() {
            let (key, value) = entry?;
            if key.starts_with(&self.prefix) {
                // Every key under a prefix is one of its aggregates (a name
                // ends with a zero byte; the other prefixes are of one size).
                let items = well_formed(&key, &value).ok_or_else(|| {
                    Error::Corrupt(format!("index entry of {} key bytes", key.len()))
                })?;
                self.next = Some((items[0], items));
            }
        }
        Ok(())
    }

    fn wanted(&self, item: &Item) -> bool {
        if self.exclusive {
            *item > self.from
        } else {
            *item >= self.from
        }
    }

    fn next_item(&mut self) -> Result<Option<Item>> {
        // Merge every aggregate that can hold an item at or before the least
        // one held: one whose first item is later holds only later items.
        while let Some((first, _)) = &self.next {
            if self.heap.peek().is_some_and(|Reverse(least)| first > least) {
                break;
            }
            let (_, items) = self.next.take().expect("a next aggregate");
            for item in items {
                if self.wanted(&item) {
                    self.heap.push(Reverse(item));
                }
            }
            self.advance()?;
        }
        Ok(self.heap.pop().map(|Reverse(item)| item))
    }
}

impl Iterator for Ordered {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        self.next_item().transpose()
    }
}

/// The index part of the state digest: each prefix's items in (ms, id)
/// order whichever aggregates hold them, so that where a batch ended is no
/// part of it. Fed entries in key order: a prefix's aggregates come
/// together, ordered by their first items, so an item held before the next
/// aggregate's first is final (the merge [`Ordered`] does), and what is held
/// is at most what overlapping aggregates hold.
#[derive(Default)]
pub struct Canonical {
    prefix: Option<Vec<u8>>,
    held: BinaryHeap<Reverse<Item>>,
    count: u64,
}

impl Canonical {
    /// Takes the entry (`key`, `value`), the next in key order, and writes
    /// to `out` what of the canonical form is final. `false` (nothing
    /// taken) when the entry is not a well-formed aggregate
    /// ([`well_formed`]); the prefix being read is then finished.
    pub fn entry(&mut self, key: &[u8], value: &[u8], out: &mut blake3::Hasher) -> bool {
        let Some(items) = well_formed(key, value) else {
            self.finish(out);
            return false;
        };
        let prefix = prefix_of(key);
        if self.prefix.as_deref() != Some(prefix) {
            self.finish(out);
            out.update(&[1]);
            out.update(&(prefix.len() as u64).to_le_bytes());
            out.update(prefix);
            self.prefix = Some(prefix.to_vec());
        }
        while self
            .held
            .peek()
            .is_some_and(|Reverse(least)| *least < items[0])
        {
            let Reverse(item) = self.held.pop().expect("a held item");
            self.emit(&item, out);
        }
        self.held.extend(items.into_iter().map(Reverse));
        true
    }

    fn emit(&mut self, item: &Item, out: &mut blake3::Hasher) {
        out.update(&item_key(&[], item));
        self.count += 1;
    }

    /// Writes what is held of the prefix being read, and ends it.
    pub fn finish(&mut self, out: &mut blake3::Hasher) {
        if self.prefix.take().is_none() {
            return;
        }
        while let Some(Reverse(item)) = self.held.pop() {
            self.emit(&item, out);
        }
        out.update(&[2]);
        out.update(&self.count.to_le_bytes());
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ms: i64, id: u8) -> Item {
        Item {
            ms,
            id: EventId([id; 32]),
        }
    }

    #[test]
    fn an_aggregate_spans_less_than_the_span() {
        let p = name(b'I', "gw");
        let q = name(b'S', "alice");
        let items = vec![
            (p.clone(), item(SPAN_MS, 3)),
            (p.clone(), item(0, 1)),
            (q.clone(), item(5, 9)),
            (p.clone(), item(SPAN_MS - 1, 2)),
        ];
        let written = aggregates(items);
        let keys: Vec<(Vec<u8>, Vec<Item>)> = written
            .iter()
            .map(|(k, v)| (k.clone(), Item::decode_all(v).unwrap().collect()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (
                    item_key(&p, &item(0, 1)),
                    vec![item(0, 1), item(SPAN_MS - 1, 2)]
                ),
                (item_key(&p, &item(SPAN_MS, 3)), vec![item(SPAN_MS, 3)]),
                (item_key(&q, &item(5, 9)), vec![item(5, 9)]),
            ]
        );
    }

    /// One digest whichever entries hold the items; an aggregate a reader
    /// could not trust (its key not its first item, items out of order or
    /// beyond the span) is not taken as items.
    #[test]
    fn the_digest_is_of_the_items_not_their_grouping() {
        let p = name(b'I', "gw");
        let q = name(b'I', "gx");
        let all = vec![
            (p.clone(), item(1, 1)),
            (p.clone(), item(2, 2)),
            (p.clone(), item(3, 3)),
            (q.clone(), item(1, 1)),
        ];
        let digest = |mut entries: Vec<(Vec<u8>, Vec<u8>)>| {
            entries.sort();
            let (mut canonical, mut out) = (Canonical::default(), blake3::Hasher::new());
            for (key, value) in entries {
                assert!(canonical.entry(&key, &value, &mut out));
            }
            canonical.finish(&mut out);
            *out.finalize().as_bytes()
        };
        let whole = digest(aggregates(all.clone()));
        let apart = digest(
            all.iter()
                .flat_map(|one| aggregates(vec![one.clone()]))
                .collect(),
        );
        // Overlapping: {1, 3} and {2}.
        let overlapping = digest(
            aggregates(vec![all[0].clone(), all[2].clone(), all[3].clone()])
                .into_iter()
                .chain(aggregates(vec![all[1].clone()]))
                .collect(),
        );
        assert_eq!(whole, apart);
        assert_eq!(whole, overlapping);
        assert_ne!(whole, digest(aggregates(all[..3].to_vec())));
        // Item 2 under another prefix.
        let moved = vec![(q.clone(), item(2, 2))];
        assert_ne!(
            whole,
            digest(aggregates(
                [all[..1].to_vec(), all[2..].to_vec(), moved].concat()
            ))
        );

        let [(key, value), _] = &aggregates(all)[..] else {
            panic!("two aggregates");
        };
        assert!(well_formed(key, value).is_some());
        let other_key = item_key(&p, &item(2, 2));
        let swapped = [&value[ITEM..2 * ITEM], &value[..ITEM], &value[2 * ITEM..]].concat();
        let beyond = [&value[..], &item_key(&[], &item(1 + SPAN_MS, 4))].concat();
        for (key, value) in [(&other_key, value), (key, &swapped), (key, &beyond)] {
            assert!(well_formed(key, value).is_none());
            let mut out = blake3::Hasher::new();
            assert!(!Canonical::default().entry(key, value, &mut out));
        }
    }
}
