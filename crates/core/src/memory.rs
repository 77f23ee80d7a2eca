//! An in-memory ledger: the reference implementation of [`LedgerView`] and of
//! applying events, optionally layered over another view. Offline verification
//! builds one from a bundle; the server layers one over its projection to check
//! a batch whose events depend on each other; the property tests compare its
//! incremental answers with a naive recomputation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::Arc;

use crate::envelope::Envelope;
use crate::error::Refusal;
use crate::event::{Event, RevocationTarget};
use crate::facts::{Fact, Transition, earliest, transition};
use crate::ids::{ClientId, EventId, TokenRef};
use crate::keys::KeyId;
use crate::rules::CheckError;
use crate::state::{ClientRecord, KeyRecord, KeyTrust, LedgerView, NameKind, Policy, TokenRecord};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New(EventId),
    /// The same event (same id) was applied before: nothing changed.
    Duplicate(EventId),
}

/// An empty view: what a ledger with no base sees below itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Empty;

impl LedgerView for Empty {
    type Error = Infallible;

    fn contains_event(&self, _: &EventId) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn key(&self, _: &KeyId) -> Result<Option<KeyRecord>, Infallible> {
        Ok(None)
    }
    fn key_retired(&self, _: &KeyId) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn client(&self, _: &ClientId) -> Result<Option<ClientRecord>, Infallible> {
        Ok(None)
    }
    fn token(&self, _: &EventId) -> Result<Option<Arc<TokenRecord>>, Infallible> {
        Ok(None)
    }
    fn token_by_ref(&self, _: &TokenRef) -> Result<Option<EventId>, Infallible> {
        Ok(None)
    }
    fn revocation(&self, _: &RevocationTarget) -> Result<Option<EventId>, Infallible> {
        Ok(None)
    }
    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust, Infallible> {
        crate::status::key_trust(self, policy, *key)
    }
    fn case_variant(&self, _: NameKind, _: &str) -> Result<Option<String>, Infallible> {
        Ok(None)
    }
}

/// Events applied in memory, over a base view `B` (nothing, by default).
#[derive(Debug)]
pub struct MemoryLedger<B = Empty> {
    base: B,
    policy: Policy,
    seen: BTreeSet<EventId>,
    keys: HashMap<KeyId, KeyRecord>,
    retired: BTreeSet<KeyId>,
    clients: HashMap<ClientId, ClientRecord>,
    tokens: HashMap<EventId, Arc<TokenRecord>>,
    by_ref: HashMap<TokenRef, EventId>,
    children: HashMap<EventId, Vec<EventId>>,
    revocations: BTreeMap<RevocationTarget, EventId>,
    /// Known names by kind and case fold.
    names: BTreeSet<(NameKind, String, String)>,
    /// Accepted events in the order applied.
    log: Vec<(Envelope, Event)>,
}

impl MemoryLedger {
    pub fn new(policy: Policy) -> Self {
        MemoryLedger::over(Empty, policy)
    }

    /// Applies a well-founded event, as a projector does (no liveness checks).
    pub fn apply(&mut self, envelope: &Envelope, event: &Event) -> Result<Applied, Refusal> {
        self.try_apply(envelope, event, None)
            .map_err(unwrap_refusal)
    }

    /// Appends an event as a writer-facing node does: well-founded and live at `now_s`.
    pub fn append(
        &mut self,
        envelope: &Envelope,
        event: &Event,
        now_s: i64,
    ) -> Result<Applied, Refusal> {
        self.try_apply(envelope, event, Some(now_s))
            .map_err(unwrap_refusal)
    }
}

impl<B: LedgerView> MemoryLedger<B> {
    /// A ledger whose events are layered over `base`.
    pub fn over(base: B, policy: Policy) -> Self {
        MemoryLedger {
            base,
            policy,
            seen: BTreeSet::new(),
            keys: HashMap::new(),
            retired: BTreeSet::new(),
            clients: HashMap::new(),
            tokens: HashMap::new(),
            by_ref: HashMap::new(),
            children: HashMap::new(),
            revocations: BTreeMap::new(),
            names: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies an event: well-founded, and live at `now_s` when given.
    pub fn try_apply(
        &mut self,
        envelope: &Envelope,
        event: &Event,
        now_s: Option<i64>,
    ) -> Result<Applied, CheckError<B::Error>> {
        self.try_apply_verified(envelope, event, now_s, false)
    }

    /// [`MemoryLedger::try_apply`] for an envelope already verified strictly
    /// (see [`crate::check_event_verified`]).
    pub fn try_apply_verified(
        &mut self,
        envelope: &Envelope,
        event: &Event,
        now_s: Option<i64>,
        signature_verified: bool,
    ) -> Result<Applied, CheckError<B::Error>> {
        let (id, facts) = match transition(
            &self.policy,
            &*self,
            envelope,
            event,
            signature_verified,
            now_s,
        )
        .map_err(CheckError::View)?
        {
            Transition::Duplicate(id) => return Ok(Applied::Duplicate(id)),
            Transition::Missing(refusal) | Transition::Refused(refusal) => {
                return Err(CheckError::Refused(refusal));
            }
            Transition::Facts { id, facts, .. } => (id, facts),
        };
        self.record(id, facts);
        self.log.push((envelope.clone(), event.clone()));
        Ok(Applied::New(id))
    }

    fn record(&mut self, id: EventId, facts: Vec<Fact>) {
        self.seen.insert(id);
        for fact in facts {
            match fact {
                Fact::Key(record) => {
                    self.keys.insert(record.public_key.key_id(), record);
                }
                Fact::Client(record) => {
                    self.clients.insert(record.client.clone(), record);
                }
                Fact::Token(record) => {
                    self.by_ref.insert(record.token.clone(), id);
                    self.tokens.insert(id, Arc::new(record));
                }
                Fact::Child { parent, child } => {
                    self.children.entry(parent).or_default().push(child);
                }
                Fact::Revocation { target, by } => {
                    let stored = self.revocations.get(&target).copied();
                    self.revocations.insert(target, earliest(stored, by));
                }
                Fact::Retired(key) => {
                    self.retired.insert(key);
                }
                Fact::Name { kind, name } => {
                    self.names.insert((kind, crate::state::fold(&name), name));
                }
            }
        }
    }

    /// Accepted events, in the order they were applied.
    pub fn events(&self) -> &[(Envelope, Event)] {
        &self.log
    }

    /// Every token recorded, by event id.
    pub fn tokens(&self) -> impl Iterator<Item = &TokenRecord> {
        self.tokens.values().map(|record| &**record)
    }

    /// The record of a token this ledger applied.
    pub(crate) fn token_record(&self, event: &EventId) -> TokenRecord {
        TokenRecord::clone(&self.tokens[event])
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

impl<B: LedgerView> LedgerView for MemoryLedger<B> {
    type Error = B::Error;

    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust, B::Error> {
        crate::status::key_trust(self, policy, *key)
    }

    fn contains_event(&self, id: &EventId) -> Result<bool, B::Error> {
        Ok(self.seen.contains(id) || self.base.contains_event(id)?)
    }

    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, B::Error> {
        match self.keys.get(id) {
            Some(record) => Ok(Some(record.clone())),
            None => self.base.key(id),
        }
    }

    fn key_retired(&self, id: &KeyId) -> Result<bool, B::Error> {
        Ok(self.retired.contains(id) || self.base.key_retired(id)?)
    }

    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, B::Error> {
        match self.clients.get(id) {
            Some(record) => Ok(Some(record.clone())),
            None => self.base.client(id),
        }
    }

    fn token(&self, event: &EventId) -> Result<Option<Arc<TokenRecord>>, B::Error> {
        match self.tokens.get(event) {
            Some(record) => Ok(Some(record.clone())),
            None => self.base.token(event),
        }
    }

    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>, B::Error> {
        match self.by_ref.get(token) {
            Some(id) => Ok(Some(*id)),
            None => self.base.token_by_ref(token),
        }
    }

    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>, B::Error> {
        let mine = self.revocations.get(target).copied();
        let below = self.base.revocation(target)?;
        Ok(match (mine, below) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn case_variant(&self, kind: NameKind, name: &str) -> Result<Option<String>, B::Error> {
        let folded = crate::state::fold(name);
        if self
            .names
            .contains(&(kind, folded.clone(), name.to_owned()))
        {
            return Ok(Some(name.to_owned()));
        }
        let mine = self
            .names
            .range((kind, folded.clone(), String::new())..)
            .next()
            .filter(|(k, f, _)| *k == kind && *f == folded)
            .map(|(_, _, n)| n.clone());
        Ok(match (mine, self.base.case_variant(kind, name)?) {
            (_, Some(below)) if below == name => Some(below),
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}
