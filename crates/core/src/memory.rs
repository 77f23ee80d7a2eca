//! An in-memory ledger: the reference implementation of [`LedgerView`] and of
//! applying events. Offline verification builds one from a bundle; the property
//! tests compare its incremental answers with a naive recomputation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;

use crate::envelope::Envelope;
use crate::error::Refusal;
use crate::event::{Body, Event, RevocationTarget};
use crate::ids::{ClientId, EventId, TokenRef};
use crate::keys::KeyId;
use crate::rules::{
    CheckError, ClientRecord, KeyRecord, LedgerView, Policy, Signer, TokenRecord, check_event,
    check_live,
};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New(EventId),
    /// The same event (same id) was applied before: nothing changed.
    Duplicate(EventId),
}

#[derive(Debug)]
pub struct MemoryLedger {
    policy: Policy,
    seen: BTreeSet<EventId>,
    keys: HashMap<KeyId, KeyRecord>,
    retired: BTreeSet<KeyId>,
    clients: HashMap<ClientId, ClientRecord>,
    tokens: HashMap<EventId, TokenRecord>,
    by_ref: HashMap<TokenRef, EventId>,
    children: HashMap<EventId, Vec<EventId>>,
    revocations: BTreeMap<RevocationTarget, EventId>,
    /// Accepted events in the order applied.
    log: Vec<(Envelope, Event)>,
}

impl MemoryLedger {
    pub fn new(policy: Policy) -> Self {
        MemoryLedger {
            policy,
            seen: BTreeSet::new(),
            keys: HashMap::new(),
            retired: BTreeSet::new(),
            clients: HashMap::new(),
            tokens: HashMap::new(),
            by_ref: HashMap::new(),
            children: HashMap::new(),
            revocations: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies a well-founded event, as a projector does (no liveness checks).
    pub fn apply(&mut self, envelope: &Envelope, event: &Event) -> Result<Applied, Refusal> {
        self.apply_with(envelope, event, None)
    }

    /// Appends an event as a writer-facing node does: well-founded and live at `now_s`.
    pub fn append(
        &mut self,
        envelope: &Envelope,
        event: &Event,
        now_s: i64,
    ) -> Result<Applied, Refusal> {
        self.apply_with(envelope, event, Some(now_s))
    }

    fn apply_with(
        &mut self,
        envelope: &Envelope,
        event: &Event,
        now_s: Option<i64>,
    ) -> Result<Applied, Refusal> {
        let id = envelope.id();
        if self.seen.contains(&id) {
            return Ok(Applied::Duplicate(id));
        }
        let signer = check_event(&self.policy, self, envelope, event).map_err(unwrap_refusal)?;
        if let Some(now_s) = now_s {
            check_live(self, &signer, event, now_s).map_err(unwrap_refusal)?;
        }
        self.record(id, &signer, event);
        self.log.push((envelope.clone(), event.clone()));
        Ok(Applied::New(id))
    }

    fn record(&mut self, id: EventId, signer: &Signer, event: &Event) {
        self.seen.insert(id);
        match &event.body {
            Body::ClientRegistered(reg) => {
                for key in &reg.public_keys {
                    let record = KeyRecord {
                        client: reg.client.clone(),
                        public_key: *key,
                        bound_by: id,
                    };
                    self.keys.insert(key.key_id(), record);
                }
                self.clients
                    .insert(reg.client.clone(), ClientRecord::from_event(id, reg));
            }
            Body::TokenIssued(issued) => {
                self.by_ref.insert(issued.token.clone(), id);
                self.tokens
                    .insert(id, TokenRecord::root(id, signer.key(), issued));
            }
            Body::ScopeNarrowed(hop) => {
                let grant = self.tokens[&hop.parent].grant;
                self.by_ref.insert(hop.token.clone(), id);
                self.tokens
                    .insert(id, TokenRecord::hop(id, signer.key(), hop, grant));
                self.children.entry(hop.parent).or_default().push(id);
            }
            Body::Revoked(revoked) => {
                let slot = self.revocations.entry(revoked.target.clone()).or_insert(id);
                *slot = (*slot).min(id);
            }
            Body::KeysRotated(rotation) => {
                for key in &rotation.add {
                    let record = KeyRecord {
                        client: rotation.client.clone(),
                        public_key: *key,
                        bound_by: id,
                    };
                    self.keys.insert(key.key_id(), record);
                }
                self.retired.extend(rotation.retire.iter().copied());
            }
        }
    }

    /// Accepted events, in the order they were applied.
    pub fn events(&self) -> &[(Envelope, Event)] {
        &self.log
    }

    /// Every token recorded, by event id.
    pub fn tokens(&self) -> impl Iterator<Item = &TokenRecord> {
        self.tokens.values()
    }

    /// The record of a token this ledger applied.
    pub(crate) fn token_record(&self, event: &EventId) -> TokenRecord {
        self.tokens[event].clone()
    }

    /// Direct children of a token, in the order applied.
    pub fn children(&self, event: &EventId) -> &[EventId] {
        self.children.get(event).map_or(&[], Vec::as_slice)
    }
}

fn unwrap_refusal(error: CheckError<Infallible>) -> Refusal {
    match error {
        CheckError::Refused(refusal) => refusal,
        CheckError::View(never) => match never {},
    }
}

impl LedgerView for MemoryLedger {
    type Error = Infallible;

    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Infallible> {
        Ok(self.keys.get(id).cloned())
    }

    fn key_retired(&self, id: &KeyId) -> Result<bool, Infallible> {
        Ok(self.retired.contains(id))
    }

    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Infallible> {
        Ok(self.clients.get(id).cloned())
    }

    fn token(&self, event: &EventId) -> Result<Option<TokenRecord>, Infallible> {
        Ok(self.tokens.get(event).cloned())
    }

    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>, Infallible> {
        Ok(self.by_ref.get(token).copied())
    }

    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>, Infallible> {
        Ok(self.revocations.get(target).copied())
    }
}
