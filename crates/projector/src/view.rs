//! A [`LedgerView`] over the sled tree with an overlay of writes not yet
//! committed, so the events of one batch see each other before the batch
//! commits atomically. Queries use it with an empty overlay.
//!
//! [`Memo`] keeps decoded records in memory, bounded whatever the ledger's
//! size ([`crate::bounded`]). Clients, key bindings, token records and the
//! event a token reference names never change once written, so a cached
//! copy is never stale; only committed values (and only found ones) are
//! cached. A fixed-size filter of the revoked targets answers the
//! revocation lookups of a status walk — most of them for targets that were
//! never revoked — without touching sled; a target it cannot rule out is
//! read from sled.

use std::collections::BTreeMap;
use std::hash::Hash;

use baton_core::{
    ClientId, ClientRecord, EventId, KeyId, KeyRecord, KeyTrust, LedgerView, NameKind, Policy,
    RevocationTarget, TokenRecord, TokenRef,
};

use crate::bounded::{Filter, Generations};
use crate::stored::{StoredClient, StoredEvent, StoredKey, decode, key};
use crate::{Error, Result};

/// The default of [`crate::ProjectorOptions::memo_records_max`]: most
/// records each memo map holds (in two generations: no cliff).
pub const MEMO_RECORDS_MAX: usize = 100_000;

/// The revoked-target filter's size (fixed: 16 MiB), and bits per target:
/// at 1M revoked targets about one lookup of a target never revoked in
/// 10^7 reads sled, at 10M about one in 500.
const REVOKED_FILTER_BYTES: usize = 16 << 20;
const REVOKED_FILTER_PROBES: u32 = 6;

/// Signatures this process has verified strictly, by
/// [`crate::apply::verdict_key`]; bounded (two generations).
#[derive(Debug)]
pub struct VerifiedSignatures {
    set: Generations<[u8; 32], ()>,
}

/// Most verdicts [`VerifiedSignatures`] holds (32 bytes each).
const VERIFIED_MAX: usize = 200_000;

impl Default for VerifiedSignatures {
    fn default() -> Self {
        VerifiedSignatures {
            set: Generations::new(VERIFIED_MAX),
        }
    }
}

impl VerifiedSignatures {
    pub fn contains(&self, verdict: &[u8; 32]) -> bool {
        self.set.get(verdict).is_some()
    }

    pub(crate) fn insert_all(&self, verdicts: impl IntoIterator<Item = [u8; 32]>) {
        for verdict in verdicts {
            self.set.insert(verdict, ());
        }
    }
}

/// Decoded records and the revoked-target filter, shared by the projector
/// and every query.
#[derive(Debug)]
pub struct Memo {
    /// Every `v` key (revocation) committed or being committed: a superset of
    /// the committed ones is safe, a missing one is not.
    revoked: Filter,
    clients: Generations<ClientId, ClientRecord>,
    keys: Generations<KeyId, KeyRecord>,
    /// Shared: a hit hands out the record, copying nothing.
    tokens: Generations<EventId, std::sync::Arc<TokenRecord>>,
    /// The event each token reference names (found ones only).
    by_ref: Generations<TokenRef, EventId>,
    /// Per signing key, whether it is untrusted, and the generation the
    /// answer was computed at. A key binding or a key's revocation bumps the
    /// generation (when staged and again when committed), which invalidates
    /// every cached answer: they change rarely, checks ask constantly.
    /// Revocations of tokens, clients and subjects, which come all the
    /// time, do not ([`key::affects_key_trust`]).
    trust: Generations<KeyId, (u64, KeyTrust)>,
    generation: std::sync::atomic::AtomicU64,
    /// Shared by this node's Append and its projector, so the projector does
    /// not verify again the bytes its own node just verified.
    verified: VerifiedSignatures,
}

impl Memo {
    /// An empty memo holding at most `records_max` records a map.
    pub fn new(records_max: usize) -> Self {
        Memo {
            revoked: Filter::new(REVOKED_FILTER_BYTES, REVOKED_FILTER_PROBES),
            clients: Generations::new(records_max),
            keys: Generations::new(records_max),
            tokens: Generations::new(records_max),
            by_ref: Generations::new(records_max),
            trust: Generations::new(records_max),
            generation: Default::default(),
            verified: Default::default(),
        }
    }

    /// A memo for `tree` (at most `records_max` records a map), with its
    /// revocations in the filter.
    pub fn load(tree: &sled::Tree, records_max: usize) -> Result<Memo> {
        let memo = Memo::new(records_max);
        for entry in tree.scan_prefix([b'v']) {
            memo.revoked.insert(&entry?.0);
        }
        Ok(memo)
    }
}

/// What a savepoint restores: each key staged since, with its previous
/// entry, the counters as they were, and how many index items were staged.
type Savepoint = (
    Vec<(Vec<u8>, Option<Option<Vec<u8>>>)>,
    BTreeMap<(&'static str, &'static str), u64>,
    usize,
);

pub struct Staged<'a> {
    tree: &'a sled::Tree,
    memo: &'a Memo,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Query index items, written as aggregates at commit
    /// ([`crate::index`]).
    index: Vec<(Vec<u8>, crate::index::Item)>,
    /// Counters by (name, label); the label is empty for a plain counter.
    counters: BTreeMap<(&'static str, &'static str), u64>,
    /// Whether this batch stages a key binding or a key's revocation.
    touches_trust: bool,
    /// While a savepoint is open: each staged key's previous entry, and the
    /// counters as they were, to roll back to.
    undo: Option<Savepoint>,
    /// What the events applied here supply to parked records, since last
    /// taken (a rolled-back event's stay: a needless retry, never a missed one).
    supplied: Vec<baton_core::Dependency>,
}

impl std::fmt::Debug for Staged<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("staged_writes", &self.writes.len())
            .finish()
    }
}

impl<'a> Staged<'a> {
    pub fn new(tree: &'a sled::Tree, memo: &'a Memo) -> Self {
        Staged {
            tree,
            memo,
            writes: BTreeMap::new(),
            index: Vec::new(),
            counters: BTreeMap::new(),
            touches_trust: false,
            undo: None,
            supplied: Vec::new(),
        }
    }

    /// Notes what an applied event supplies (see [`Staged::take_supplied`]).
    pub fn supply(&mut self, dependencies: Vec<baton_core::Dependency>) {
        self.supplied.extend(dependencies);
    }

    /// What the events applied since the last call supply.
    pub fn take_supplied(&mut self) -> Vec<baton_core::Dependency> {
        std::mem::take(&mut self.supplied)
    }

    /// Opens a savepoint: what is staged from here can be rolled back (a
    /// batch record applies all its events or none). The memo's revoked-set
    /// and trust generation only ever over-approximate, so they need no undo.
    pub fn savepoint(&mut self) {
        self.undo = Some((Vec::new(), self.counters.clone(), self.index.len()));
    }

    /// Undoes everything staged since the savepoint, and closes it.
    pub fn rollback(&mut self) {
        if let Some((undo, counters, index)) = self.undo.take() {
            self.index.truncate(index);
            for (key, previous) in undo.into_iter().rev() {
                match previous {
                    Some(entry) => self.writes.insert(key, entry),
                    None => self.writes.remove(&key),
                };
            }
            self.counters = counters;
        }
    }

    /// Keeps everything staged since the savepoint, and closes it.
    pub fn release(&mut self) {
        self.undo = None;
    }

    fn stage(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if let Some((undo, _, _)) = &mut self.undo {
            undo.push((key.clone(), self.writes.get(&key).cloned()));
        }
        self.writes.insert(key, value);
    }

    /// Signatures verified strictly by this process.
    pub fn verified_signatures(&self) -> &VerifiedSignatures {
        &self.memo.verified
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(staged) = self.writes.get(key) {
            return Ok(staged.clone());
        }
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        if let Some(staged) = self.writes.get(key) {
            return Ok(staged.is_some());
        }
        Ok(self.tree.contains_key(key)?)
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if key.first() == Some(&b'v') {
            self.memo.revoked.insert(&key);
        }
        if key::affects_key_trust(&key) {
            self.touches_trust = true;
            self.memo
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.stage(key, Some(value));
    }

    /// Indexes event `id`, created at `ms`, under `prefix` (see
    /// [`crate::index`]).
    pub fn index(&mut self, prefix: Vec<u8>, ms: i64, id: EventId) {
        self.index.push((prefix, crate::index::Item { ms, id }));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.stage(key, None);
    }

    /// Adds to a counter; counters are written once, at commit.
    pub fn add_counter(&mut self, name: &'static str, by: u64) {
        self.add_labelled_counter(name, "", by);
    }

    /// Adds to one label's count of a counter (see [`key::labelled_counter`]).
    pub fn add_labelled_counter(&mut self, name: &'static str, label: &'static str, by: u64) {
        *self.counters.entry((name, label)).or_default() += by;
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.counters.is_empty() && self.index.is_empty()
    }

    /// Commits every staged write in one atomic sled batch. While a
    /// snapshot is being written, `journal` first keeps what each key held
    /// before (see [`crate::snapshot::Journal`]).
    pub fn commit(mut self, journal: &crate::snapshot::Copying) -> Result<()> {
        for ((name, label), by) in std::mem::take(&mut self.counters) {
            let key = if label.is_empty() {
                key::counter(name)
            } else {
                key::labelled_counter(name, label)
            };
            let now = crate::stored::read_u64(self.get(&key)?.as_deref());
            self.writes
                .insert(key, Some((now + by).to_be_bytes().to_vec()));
        }
        for (key, value) in crate::index::aggregates(std::mem::take(&mut self.index)) {
            self.writes.insert(key, Some(value));
        }
        if let Some(journal) = journal.lock().expect("journal lock").as_mut() {
            journal.note(self.tree, self.writes.keys())?;
        }
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch)?;
        if self.touches_trust {
            // Answers computed while the batch was committing are stale now.
            self.memo
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// A record: staged if written in this batch, else memoised, else read
    /// from the tree (and memoised). `decode` may find no record in the
    /// bytes (an event that is not a token).
    fn record<K: Clone + Hash + Eq, T: Clone>(
        &self,
        id: &K,
        sled_key: Vec<u8>,
        map: &Generations<K, T>,
        decode: impl Fn(&[u8]) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        if let Some(staged) = self.writes.get(&sled_key) {
            return Ok(staged.as_deref().map(&decode).transpose()?.flatten());
        }
        if let Some(found) = map.get(id) {
            return Ok(Some(found));
        }
        let Some(bytes) = self.tree.get(&sled_key)? else {
            return Ok(None);
        };
        let Some(value) = decode(&bytes)? else {
            return Ok(None);
        };
        map.insert(id.clone(), value.clone());
        Ok(Some(value))
    }
}

impl LedgerView for Staged<'_> {
    type Error = Error;

    fn contains_event(&self, id: &EventId) -> Result<bool> {
        self.contains(&key::event(id))
    }

    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>> {
        self.record(id, key::signing_key(id), &self.memo.keys, |v| {
            decode::<StoredKey>("stored key", v)?
                .into_record()
                .map(Some)
        })
    }

    fn key_retired(&self, id: &KeyId) -> Result<bool> {
        self.contains(&key::retired(id))
    }

    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>> {
        self.record(id, key::client(id), &self.memo.clients, |v| {
            decode::<StoredClient>("stored client", v)?
                .into_record()
                .map(Some)
        })
    }

    fn token(&self, event: &EventId) -> Result<Option<std::sync::Arc<TokenRecord>>> {
        self.record(event, key::event(event), &self.memo.tokens, |v| {
            Ok(decode::<StoredEvent>("stored event", v)?
                .token_record(*event)?
                .map(std::sync::Arc::new))
        })
    }

    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>> {
        self.record(token, key::by_ref(token), &self.memo.by_ref, |v| {
            EventId::from_slice("stored ref", v)
                .map(Some)
                .map_err(|e| Error::Corrupt(e.to_string()))
        })
    }

    /// Cached per key: a projection is only ever asked under its node's one
    /// policy.
    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust> {
        use std::sync::atomic::Ordering;
        if self.touches_trust {
            // This batch changes trust and is not committed: no cache.
            return baton_core::key_trust(self, policy, *key);
        }
        let generation = self.memo.generation.load(Ordering::SeqCst);
        if let Some((at, answer)) = self.memo.trust.get(key)
            && at == generation
        {
            return Ok(answer);
        }
        let answer = baton_core::key_trust(self, policy, *key)?;
        self.memo.trust.insert(*key, (generation, answer));
        Ok(answer)
    }

    fn case_variant(&self, kind: NameKind, name: &str) -> Result<Option<String>> {
        let folded = baton_core::fold(name);
        if self.contains(&key::name(kind, &folded, name))? {
            return Ok(Some(name.to_owned()));
        }
        // The least variant, staged or committed (names are never removed).
        let prefix = key::name_fold(kind, &folded);
        let staged = self
            .writes
            .range(prefix.clone()..)
            .find(|(k, v)| v.is_some() || !k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with(&prefix));
        let committed = match self.tree.scan_prefix(&prefix).next() {
            Some(entry) => Some(entry?.0.to_vec()),
            None => None,
        };
        let least = match (staged, committed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        least
            .map(|k| {
                String::from_utf8(k[prefix.len()..].to_vec())
                    .map_err(|e| Error::Corrupt(format!("stored name: {e}")))
            })
            .transpose()
    }

    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>> {
        let key = key::revocation(target);
        if !self.writes.contains_key(&key) && !self.memo.revoked.may_contain(&key) {
            return Ok(None);
        }
        self.get(&key)?
            .map(|v| {
                EventId::from_slice("stored revocation", &v)
                    .map_err(|e| Error::Corrupt(e.to_string()))
            })
            .transpose()
    }
}

/// A read-only view of the committed projection: what the append path
/// checks a batch against. It reads through the same memo as the projector
/// and can stage nothing.
pub struct View<'a>(Staged<'a>);

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish()
    }
}

impl<'a> View<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, memo: &'a Memo) -> Self {
        View(Staged::new(tree, memo))
    }

    /// What it reads through.
    pub(crate) fn staged(&self) -> &Staged<'a> {
        &self.0
    }

    /// Signatures verified strictly by this process.
    pub fn verified_signatures(&self) -> &VerifiedSignatures {
        self.0.verified_signatures()
    }
}

impl LedgerView for View<'_> {
    type Error = Error;

    fn contains_event(&self, id: &EventId) -> Result<bool> {
        self.0.contains_event(id)
    }
    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>> {
        self.0.key(id)
    }
    fn key_retired(&self, id: &KeyId) -> Result<bool> {
        self.0.key_retired(id)
    }
    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>> {
        self.0.client(id)
    }
    fn token(&self, event: &EventId) -> Result<Option<std::sync::Arc<TokenRecord>>> {
        self.0.token(event)
    }
    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>> {
        self.0.token_by_ref(token)
    }
    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust> {
        self.0.key_trust(policy, key)
    }
    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>> {
        self.0.revocation(target)
    }
    fn case_variant(&self, kind: NameKind, name: &str) -> Result<Option<String>> {
        self.0.case_variant(kind, name)
    }
}
