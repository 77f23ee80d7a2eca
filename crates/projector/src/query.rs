//! Queries on the projection: revocation checks, chains with what is needed
//! to verify them offline, the blast radius of a token, history by client,
//! subject, kind and time, the revocation feed, and the quarantine.
//!
//! Every walk and scan is bounded: chains by the depth ceiling, the rest by
//! a caller's limit.

use std::collections::{BTreeSet, VecDeque};

use baton_core::{
    Body, Check, ClientId, Envelope, Event, EventId, EventKind, RevocationTarget, TokenRef,
    check_token,
};
use baton_log::Position;

use crate::apply::kind_code;
use crate::index;
use crate::stored::{StoredEvent, StoredQuarantine, StoredRevocation, decode, key};
use crate::{Error, Handle, Result};

/// Most events one chain (with its registrations and key bindings) holds:
/// what an exported bundle may hold.
const CHAIN_EVENTS_MAX: usize = 1024;

/// Most index items one `list_events` call examines.
const EXAMINED_MAX: usize = 100_000;

/// A chain root → leaf, and every event an offline verifier needs first.
#[derive(Debug, Clone)]
pub struct ChainAnswer {
    /// In an order a fresh ledger accepts: each event after what it depends on.
    /// The token events among them run root → leaf.
    pub events: Vec<(Envelope, Event)>,
    /// The log position of each event, in the same order.
    pub positions: Vec<Position>,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub client: Option<ClientId>,
    pub subject: Option<baton_core::Subject>,
    /// Created at or after, in unix milliseconds.
    pub since_ms: Option<i64>,
    /// Created before, in unix milliseconds.
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ListedEvent {
    pub envelope: Envelope,
    pub event: Event,
    pub position: Position,
    /// Pass back to continue after this event.
    pub cursor: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEffect {
    pub position: Position,
    pub revocation: EventId,
    pub target: RevocationTarget,
}

#[derive(Debug, Clone)]
pub struct Quarantined {
    pub position: Position,
    /// The rule that refused it (a core rule's name, or `undecodable`).
    pub rule: String,
    pub reason: String,
    pub value: Vec<u8>,
}

impl Handle {
    /// A resource server's check of `token` at `now_s`.
    pub fn check(&self, token: &TokenRef, presented_to: Option<&str>, now_s: i64) -> Result<Check> {
        check_token(
            &self.view(),
            &self.shared.policy,
            token,
            presented_to,
            now_s,
        )
    }

    /// The revocation targets the status of the token recorded by `event`
    /// depends on ([`baton_core::dependencies`]); None when it cannot be
    /// vouched for.
    pub fn dependencies(
        &self,
        event: &EventId,
    ) -> Result<Option<Vec<baton_core::RevocationTarget>>> {
        baton_core::dependencies(&self.view(), &self.shared.policy, event)
    }

    /// The records of `leaf`'s chain, root grant first, `leaf` last (bounded
    /// by the depth ceiling; a longer walk means a corrupt projection).
    pub fn lineage(&self, leaf: &baton_core::TokenRecord) -> Result<Vec<baton_core::TokenRecord>> {
        let view = self.view();
        let mut chain = vec![leaf.clone()];
        while let Some(parent) = chain.last().and_then(|record| record.parent) {
            if chain.len() > baton_core::limits::DEPTH_MAX_CEILING as usize {
                return Err(Error::Corrupt(format!(
                    "the chain of {} is longer than the depth ceiling",
                    leaf.event
                )));
            }
            let record = baton_core::LedgerView::token(&view, &parent)?.ok_or_else(|| {
                Error::Corrupt(format!(
                    "token {parent}, a parent on the chain of {}, is missing",
                    leaf.event
                ))
            })?;
            chain.push(std::sync::Arc::unwrap_or_clone(record));
        }
        chain.reverse();
        Ok(chain)
    }

    /// The stored event `id`, decoded, with its position.
    pub fn event(&self, id: &EventId) -> Result<Option<(Envelope, Event, Position)>> {
        let Some(bytes) = self.shared.tree.get(key::event(id))? else {
            return Ok(None);
        };
        let stored: StoredEvent = decode("stored event", &bytes)?;
        let (envelope, event) = baton_proto::decode_signed(&stored.signed)
            .map_err(|e| Error::Corrupt(format!("stored event {id} no longer decodes: {e}")))?;
        // Integrity: what was stored must still be what was verified.
        if envelope.id() != *id {
            return Err(Error::Corrupt(format!(
                "stored event {id} hashes to {}",
                envelope.id()
            )));
        }
        Ok(Some((
            envelope,
            event,
            Position {
                partition: stored.partition,
                offset: stored.offset,
            },
        )))
    }

    fn token_event(&self, token: &TokenRef) -> Result<Option<EventId>> {
        baton_core::LedgerView::token_by_ref(&self.view(), token)
    }

    /// The chain of `token`, with the registrations and key bindings its
    /// signers and clients depend on, ready for offline verification.
    pub fn chain(&self, token: &TokenRef) -> Result<Option<ChainAnswer>> {
        let Some(leaf) = self.token_event(token)? else {
            return Ok(None);
        };
        let mut answer = ChainAnswer {
            events: Vec::new(),
            positions: Vec::new(),
        };
        let mut done = BTreeSet::new();
        self.with_dependencies(leaf, &mut done, &mut answer)?;
        Ok(Some(answer))
    }

    /// Adds `leaf` after everything it depends on, each event after its own
    /// dependencies (an iterative depth-first walk, so a long history of key
    /// rotations cannot overflow the stack), at most `CHAIN_EVENTS_MAX` events.
    fn with_dependencies(
        &self,
        leaf: EventId,
        done: &mut BTreeSet<EventId>,
        answer: &mut ChainAnswer,
    ) -> Result<()> {
        let view = self.view();
        let mut pending: std::collections::HashMap<EventId, (Envelope, Event, Position)> =
            std::collections::HashMap::new();
        let mut stack: Vec<(EventId, bool)> = vec![(leaf, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                if let Some((envelope, event, position)) = pending.remove(&id) {
                    answer.events.push((envelope, event));
                    answer.positions.push(position);
                }
                continue;
            }
            if !done.insert(id) {
                continue;
            }
            if done.len() > CHAIN_EVENTS_MAX {
                return Err(Error::Invalid {
                    field: "token",
                    reason: format!("its chain depends on more than {CHAIN_EVENTS_MAX} events"),
                });
            }
            let Some((envelope, event, position)) = self.event(&id)? else {
                return Err(Error::Corrupt(format!(
                    "event {id} is referenced but not stored"
                )));
            };
            let mut needs: Vec<EventId> = Vec::new();
            if let Some(key) = baton_core::LedgerView::key(&view, &envelope.key_id())? {
                needs.push(key.bound_by);
            }
            let mut clients: Vec<&ClientId> = Vec::new();
            match &event.body {
                Body::ClientRegistered(reg) => clients.extend(reg.registered_by.iter()),
                Body::TokenIssued(t) => clients.extend([&t.issuer, &t.holder]),
                Body::ScopeNarrowed(h) => {
                    needs.push(h.parent);
                    clients.extend([&h.performed_by, &h.holder]);
                }
                Body::KeysRotated(r) => clients.push(&r.client),
                Body::Revoked(_) => {}
            }
            for client in clients {
                if let Some(record) = baton_core::LedgerView::client(&view, client)? {
                    needs.push(record.event);
                }
            }
            stack.push((id, true));
            // Reversed, so the first dependency is walked (and emitted) first.
            stack.extend(
                needs
                    .into_iter()
                    .rev()
                    .filter(|n| !done.contains(n))
                    .map(|n| (n, false)),
            );
            pending.insert(id, (envelope, event, position));
        }
        Ok(())
    }

    /// Everything derived from `token` (its subtree, breadth-first, itself
    /// excluded; siblings in event-id order), at most `limit` tokens.
    pub fn descendants(
        &self,
        token: &TokenRef,
        limit: usize,
    ) -> Result<Vec<baton_core::TokenRecord>> {
        let Some(root) = self.token_event(token)? else {
            return Ok(Vec::new());
        };
        let view = self.view();
        let mut out = Vec::new();
        let mut queue = VecDeque::from([root]);
        while let Some(at) = queue.pop_front() {
            let from = index::Item {
                ms: 0,
                id: EventId([0; 32]),
            };
            for item in index::Ordered::new(&self.shared.tree, index::children(&at), from, false)? {
                let child = item?.id;
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(record) = baton_core::LedgerView::token(&view, &child)? {
                    out.push(std::sync::Arc::unwrap_or_clone(record));
                }
                queue.push_back(child);
            }
        }
        Ok(out)
    }

    /// Events matching `filter`, oldest first, after `cursor`, at most `limit`.
    pub fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ListedEvent>> {
        // Pick the narrowest index the filter allows; check the rest per event.
        // Under each prefix the items come in time order, so the time range
        // is a seek and a stop, not a filter.
        let prefixes: Vec<Vec<u8>> = match (&filter.client, &filter.subject, filter.kind) {
            (Some(client), _, _) => vec![index::name(b'I', client.as_str())],
            (None, Some(subject), _) => vec![index::name(b'S', subject.as_str())],
            (None, None, Some(kind)) => vec![index::kind(kind_code(kind))],
            (None, None, None) => EventKind::ALL
                .iter()
                .map(|k| index::kind(kind_code(*k)))
                .collect(),
        };
        // A cursor is the last item returned, under its prefix.
        let resume = match cursor {
            None => None,
            Some(c) => match prefixes
                .iter()
                .enumerate()
                .find_map(|(at, p)| Some((at, index::parse_item_key(p, c)?)))
            {
                Some(found) => Some(found),
                None => {
                    return Err(Error::Invalid {
                        field: "page_token",
                        reason: "does not belong to this query".into(),
                    });
                }
            },
        };
        let mut out = Vec::new();
        let mut examined = 0usize;
        for (at, prefix) in prefixes.iter().enumerate() {
            let since = index::Item {
                ms: filter.since_ms.unwrap_or(0).max(0),
                id: EventId([0; 32]),
            };
            let (from, exclusive) = match resume {
                Some((resume_at, _)) if at < resume_at => continue,
                Some((resume_at, after)) if at == resume_at && after >= since => (after, true),
                _ => (since, false),
            };
            for item in index::Ordered::new(&self.shared.tree, prefix.clone(), from, exclusive)? {
                let item = item?;
                if out.len() >= limit || filter.until_ms.is_some_and(|u| item.ms >= u) {
                    break;
                }
                examined += 1;
                if examined > EXAMINED_MAX {
                    return Err(Error::Invalid {
                        field: "filter",
                        reason: format!(
                            "examined {EXAMINED_MAX} indexed events without filling a page of {limit}; narrow the query (a time range, or fewer filters beyond the client or subject)"
                        ),
                    });
                }
                let Some((envelope, event, position)) = self.event(&item.id)? else {
                    return Err(Error::Corrupt(format!(
                        "index names {}, which is not stored",
                        item.id
                    )));
                };
                if filter.kind.is_some_and(|k| k != event.kind()) {
                    continue;
                }
                if let Some(subject) = &filter.subject
                    && !names_subject(&event, subject)
                {
                    continue;
                }
                out.push(ListedEvent {
                    envelope,
                    event,
                    position,
                    cursor: index::item_key(prefix, &item),
                });
            }
        }
        Ok(out)
    }

    /// Revocations at or after `from` (next offset per partition) and before
    /// the settled offsets, in partition order, at most `limit`. A watcher
    /// that stops here never moves past a record whose outcome is still
    /// open (a parked revocation applied later).
    pub fn revocations_since(&self, from: &[u64], limit: usize) -> Result<Vec<RevocationEffect>> {
        self.revocations_between(from, &self.applied(), limit)
    }

    /// Revocations at or after `from` and before `until` (next offsets per
    /// partition), in partition order, at most `limit` (a record's
    /// revocations are never split). Past the settled offsets, a record
    /// parked now that applies later is not here: [`Handle::late_since`]
    /// names it then.
    pub fn revocations_between(
        &self,
        from: &[u64],
        until: &[u64],
        limit: usize,
    ) -> Result<Vec<RevocationEffect>> {
        let mut out = Vec::new();
        for partition in 0..self.shared.partitions {
            let offset = from.get(partition as usize).copied().unwrap_or(0);
            let until = until.get(partition as usize).copied().unwrap_or(0);
            if offset >= until {
                continue;
            }
            let start = key::position(b'w', Position { partition, offset });
            let end = key::position(
                b'w',
                Position {
                    partition,
                    offset: until,
                },
            );
            for entry in self.shared.tree.range(start..end) {
                let (k, v) = entry?;
                let effect = revocation_effect(&k, &v)?;
                // A watcher resumes after a whole record: never split one.
                if out.len() >= limit
                    && out
                        .last()
                        .is_none_or(|e: &RevocationEffect| e.position != effect.position)
                {
                    return Ok(out);
                }
                out.push(effect);
            }
        }
        Ok(out)
    }

    /// The revocations of the record at `position` (none if it revoked
    /// nothing, or is not applied).
    pub fn revocations_at(&self, position: Position) -> Result<Vec<RevocationEffect>> {
        self.shared
            .tree
            .scan_prefix(key::position(b'w', position))
            .map(|entry| {
                let (k, v) = entry?;
                revocation_effect(&k, &v)
            })
            .collect()
    }

    /// Why the record at `position` was quarantined, if it was.
    pub fn quarantine_reason(&self, position: Position) -> Result<Option<String>> {
        match self.shared.tree.get(key::position(b'q', position))? {
            None => Ok(None),
            Some(v) => Ok(Some(
                decode::<StoredQuarantine>("stored quarantine", &v)?.reason,
            )),
        }
    }

    /// Quarantined records, oldest first, at most `limit`.
    pub fn quarantined(&self, limit: usize) -> Result<Vec<Quarantined>> {
        self.quarantined_from(
            Position {
                partition: 0,
                offset: 0,
            },
            limit,
        )
    }

    /// Quarantined records from `from` on (inclusive), oldest first, at most
    /// `limit`: a page of the forensic trail.
    pub fn quarantined_from(&self, from: Position, limit: usize) -> Result<Vec<Quarantined>> {
        let mut out = Vec::new();
        let start = key::position(b'q', from);
        for entry in self.shared.tree.range(start..).take(limit) {
            let (k, v) = entry?;
            if k.first() != Some(&b'q') {
                break;
            }
            let stored: StoredQuarantine = decode("stored quarantine", &v)?;
            let position =
                key::parse_position(&k).ok_or_else(|| Error::Corrupt("quarantine key".into()))?;
            out.push(Quarantined {
                position,
                rule: stored.rule,
                reason: stored.reason,
                value: stored.value,
            });
        }
        Ok(out)
    }
}

fn names_subject(event: &Event, subject: &baton_core::Subject) -> bool {
    match &event.body {
        Body::TokenIssued(t) => &t.subject == subject,
        Body::ScopeNarrowed(h) => &h.on_behalf_of == subject,
        Body::Revoked(r) => r.target == RevocationTarget::Subject(subject.clone()),
        _ => false,
    }
}

/// A watch feed entry, read.
fn revocation_effect(k: &[u8], v: &[u8]) -> Result<RevocationEffect> {
    let position = key::parse_position(k).ok_or_else(|| Error::Corrupt("watch key".into()))?;
    let stored: StoredRevocation = decode("stored revocation", v)?;
    Ok(RevocationEffect {
        position,
        revocation: EventId::from_slice("watch", &stored.event)
            .map_err(|e| Error::Corrupt(e.to_string()))?,
        target: key::parse_target(&stored.target)?,
    })
}
