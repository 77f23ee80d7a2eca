//! A [`LedgerView`] over the sled tree with an overlay of writes not yet
//! committed, so the events of one batch see each other before the batch
//! commits atomically. Queries use it with an empty overlay.

use std::collections::BTreeMap;

use baton_core::{
    ClientId, ClientRecord, EventId, KeyId, KeyRecord, LedgerView, RevocationTarget, TokenRecord,
    TokenRef,
};

use crate::stored::{StoredClient, StoredKey, StoredToken, decode, key};
use crate::{Error, Result};

pub struct Staged<'a> {
    tree: &'a sled::Tree,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl std::fmt::Debug for Staged<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("staged_writes", &self.writes.len())
            .finish()
    }
}

impl<'a> Staged<'a> {
    pub fn new(tree: &'a sled::Tree) -> Self {
        Staged {
            tree,
            writes: BTreeMap::new(),
        }
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
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub fn add_counter(&mut self, name: &str, by: u64) -> Result<()> {
        let key = key::counter(name);
        let now = read_u64(self.get(&key)?.as_deref());
        self.put(key, (now + by).to_be_bytes().to_vec());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Commits every staged write in one atomic sled batch.
    pub fn commit(self) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

pub fn read_u64(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl LedgerView for Staged<'_> {
    type Error = Error;

    fn contains_event(&self, id: &EventId) -> Result<bool> {
        self.contains(&key::event(id))
    }

    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>> {
        self.get(&key::signing_key(id))?
            .map(|v| decode::<StoredKey>("stored key", &v)?.into_record())
            .transpose()
    }

    fn key_retired(&self, id: &KeyId) -> Result<bool> {
        self.contains(&key::retired(id))
    }

    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>> {
        self.get(&key::client(id))?
            .map(|v| decode::<StoredClient>("stored client", &v)?.into_record())
            .transpose()
    }

    fn token(&self, event: &EventId) -> Result<Option<TokenRecord>> {
        self.get(&key::token(event))?
            .map(|v| decode::<StoredToken>("stored token", &v)?.into_record())
            .transpose()
    }

    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>> {
        self.get(&key::by_ref(token))?
            .map(|v| {
                EventId::from_slice("stored ref", &v).map_err(|e| Error::Corrupt(e.to_string()))
            })
            .transpose()
    }

    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>> {
        self.get(&key::revocation(target))?
            .map(|v| {
                EventId::from_slice("stored revocation", &v)
                    .map_err(|e| Error::Corrupt(e.to_string()))
            })
            .transpose()
    }
}
