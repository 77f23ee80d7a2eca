//! The projector's in-memory caches, each bounded whatever the ledger's size:
//! [`Generations`], a map kept in two generations (no cliff: when the young
//! one fills it becomes the old one, and what is still asked for is found
//! there and carried back), and [`Filter`], a fixed-size Bloom filter that
//! says which keys are certainly absent (no false negatives; a false
//! positive costs one store read).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A map bounded to `capacity` entries in two generations: inserts go to
/// the young one; when it holds `capacity / 2` it becomes the old one (the
/// previous old one is dropped). A hit in the old generation is carried
/// into the young one, so what is in use survives every turn; only what
/// nobody asked for during a whole generation is dropped.
#[derive(Debug)]
pub struct Generations<K, V> {
    maps: RwLock<(HashMap<K, V>, HashMap<K, V>)>,
    half: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Generations<K, V> {
    /// At most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        Generations {
            maps: RwLock::new((HashMap::new(), HashMap::new())),
            half: (capacity / 2).max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let found = {
            let maps = self.maps.read().expect("memo lock");
            if let Some(young) = maps.0.get(key) {
                return Some(young.clone());
            }
            maps.1.get(key).cloned()
        };
        if let Some(old) = &found {
            self.insert(key.clone(), old.clone());
        }
        found
    }

    pub fn insert(&self, key: K, value: V) {
        let mut maps = self.maps.write().expect("memo lock");
        if maps.0.len() >= self.half && !maps.0.contains_key(&key) {
            let young = std::mem::take(&mut maps.0);
            maps.1 = young;
        }
        maps.0.insert(key, value);
    }

    /// Entries held now (both generations; a key may be in both).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let maps = self.maps.read().expect("memo lock");
        maps.0.len() + maps.1.len()
    }
}

/// A Bloom filter of a fixed number of bits: `insert` sets a key's bits,
/// `may_contain` is false only for a key never inserted. Its size never
/// changes; as it fills, more absent keys read as "maybe" (a store read
/// each, never a wrong answer).
#[derive(Debug)]
pub struct Filter {
    words: Box<[AtomicU64]>,
    /// Bits per key.
    probes: u32,
    /// Keyed per process (as a `HashSet`'s): nobody outside can choose keys
    /// that collide (a collision costs a store read, never an answer).
    hasher: std::hash::RandomState,
}

impl Filter {
    /// A filter of `bytes` (rounded up to a power of two, 8 to 512 MiB)
    /// setting `probes` bits per key.
    pub fn new(bytes: usize, probes: u32) -> Self {
        // At most 2^32 bits: the probes index with 32-bit halves.
        let words = bytes.div_ceil(8).next_power_of_two().clamp(1, 1 << 26);
        Filter {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            probes: probes.max(1),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The bits of `key`: double hashing over the two halves of one 64-bit
    /// hash (independent enough for a filter of up to 2^32 bits).
    fn bits(&self, key: &[u8]) -> impl Iterator<Item = (usize, u64)> + use<> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let a = hash & 0xffff_ffff;
        let b = (hash >> 32) | 1;
        let mask = (self.words.len() as u64 * 64) - 1;
        (0..u64::from(self.probes)).map(move |i| {
            let bit = a.wrapping_add(i.wrapping_mul(b)) & mask;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    pub fn insert(&self, key: &[u8]) {
        for (word, bit) in self.bits(key) {
            self.words[word].fetch_or(bit, Ordering::SeqCst);
        }
    }

    /// False only when `key` was never inserted.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.bits(key)
            .all(|(word, bit)| self.words[word].load(Ordering::SeqCst) & bit != 0)
    }

    /// Its size in bytes (fixed).
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generations_hold_at_most_their_capacity_and_keep_what_is_in_use() {
        let cache: Generations<u32, u32> = Generations::new(100);
        cache.insert(0, 0);
        for i in 1..10_000u32 {
            // Key 0 is asked for all along: it is never dropped.
            assert_eq!(cache.get(&0), Some(0), "after {i} inserts");
            cache.insert(i, i);
            assert!(cache.len() <= 100, "{} entries", cache.len());
        }
        // What was not asked for during a whole generation is gone; the
        // last half is all there.
        assert_eq!(cache.get(&1), None);
        for i in 9_960..10_000u32 {
            assert_eq!(cache.get(&i), Some(i));
        }
    }

    #[test]
    fn the_filter_never_forgets_a_key_and_keeps_its_size() {
        let filter = Filter::new(1 << 16, 6);
        let bytes = filter.bytes();
        let key = |i: u32| format!("v/token/{i}").into_bytes();
        for i in 0..20_000u32 {
            filter.insert(&key(i));
        }
        assert!((0..20_000u32).all(|i| filter.may_contain(&key(i))));
        assert_eq!(filter.bytes(), bytes);
        // 20k keys in 512k bits, 6 probes: about one absent key in 14,000
        // reads as "maybe". A filter that said "maybe" to everything would
        // be correct and useless: most absent keys must read as absent.
        let maybe = (20_000..120_000u32)
            .filter(|i| filter.may_contain(&key(*i)))
            .count();
        assert!(maybe < 1_000, "{maybe} of 100000 absent keys read as maybe");
    }
}
