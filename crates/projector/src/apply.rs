//! Applying log records: decode, deduplicate, re-verify with baton-core, and
//! stage the derived state together with the new log offsets.
//!
//! Architecture invariant: nothing reaches the projection without passing
//! `baton_core::check_event` on the bytes read from the log — a record written
//! straight into Kafka by someone else is verified like any other.

use baton_core::{Body, Envelope, Event, EventId, EventKind, Fact, Policy, Signer, Transition};
use baton_log::{Position, ReadRecord};
use prost::Message as _;

use crate::stored::{
    StoredClient, StoredEvent, StoredQuarantine, StoredRevocation, grant_index, key,
};
use crate::view::Staged;
use crate::{Error, Result};

pub fn kind_code(kind: EventKind) -> u8 {
    EventKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is listed") as u8
}

/// What one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(EventId),
    Duplicate(EventId),
    /// Its key, client or parent has not been seen (yet).
    Parked(Why),
    Quarantined(Why),
}

/// Why a record was parked or quarantined: the rule (a core rule's name, or
/// `undecodable`) and the reason, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub rule: &'static str,
    pub reason: String,
    /// What a parked record waits for.
    pub missing: Option<baton_core::Dependency>,
}

impl Why {
    /// A record that is not a signed event or a batch of them.
    pub const UNDECODABLE: &'static str = "undecodable";

    fn refused(refusal: &baton_core::Refusal, reason: String) -> Why {
        Why {
            rule: refusal.rule.as_str(),
            reason,
            missing: refusal.missing.clone(),
        }
    }

    /// The same rule, the reason extended.
    pub fn and(self, more: impl std::fmt::Display) -> Why {
        Why {
            reason: format!("{}; {more}", self.reason),
            ..self
        }
    }
}

/// A record decoded (one event, or a batch record's events in order), and
/// per event whether its signature was already verified strictly.
#[derive(Debug)]
pub struct Decoded {
    pub opened: Result<Vec<(Envelope, Event)>, String>,
    pub verified: Vec<bool>,
}

impl Decoded {
    pub fn of(record: &ReadRecord) -> Decoded {
        let opened = baton_proto::decode_record(&record.value).map_err(|e| e.to_string());
        let verified = vec![false; opened.as_ref().map_or(0, Vec::len)];
        Decoded { opened, verified }
    }
}

/// Decodes a batch and verifies its signatures in parallel (see
/// [`crate::verify::verify_in_parallel`]).
pub fn decode_batch(
    policy: &Policy,
    staged: &Staged<'_>,
    records: &[ReadRecord],
) -> Result<Vec<Decoded>> {
    let mut decoded: Vec<Decoded> = records.iter().map(Decoded::of).collect();
    let events: Vec<Option<&(Envelope, Event)>> = decoded
        .iter()
        .flat_map(|d| d.opened.as_ref().map_or(&[][..], Vec::as_slice))
        .map(Some)
        .collect();
    let mut verdicts = crate::verify::verify_in_parallel(policy, staged, &events)?.into_iter();
    for item in &mut decoded {
        for slot in &mut item.verified {
            *slot = verdicts.next().expect("one verdict per event");
        }
    }
    Ok(decoded)
}

/// What applying one event of a record did.
enum Verdict {
    Applied(EventId),
    Duplicate(EventId),
    /// A key, client or parent it needs has not been seen (yet).
    Missing(Why),
    Refused(Why),
}

/// Applies one record to the staged state: all its events in order, or —
/// when one is refused or waits for a dependency — none of them, and the
/// whole record is quarantined or parked.
pub fn apply_record(
    policy: &Policy,
    staged: &mut Staged<'_>,
    record: &ReadRecord,
    decoded: Decoded,
) -> Result<Outcome> {
    let events = match decoded.opened {
        Ok(events) => events,
        Err(e) => {
            let why = Why {
                rule: Why::UNDECODABLE,
                reason: format!("undecodable: {e}"),
                missing: None,
            };
            return quarantine(staged, record, why);
        }
    };
    let batch = events.len() > 1;
    if batch {
        staged.savepoint();
    }
    let (mut last, mut applied) = (None, false);
    for (index, ((envelope, event), verified)) in events.iter().zip(decoded.verified).enumerate() {
        let at = |why: Why| {
            if batch {
                Why {
                    reason: format!("log_batch.events[{index}]: {}", why.reason),
                    ..why
                }
            } else {
                why
            }
        };
        match apply_event(
            policy,
            staged,
            record.position,
            index,
            envelope,
            event,
            verified,
        )? {
            Verdict::Applied(id) => (last, applied) = (Some(id), true),
            Verdict::Duplicate(id) => last = Some(id),
            Verdict::Missing(reason) => {
                staged.rollback();
                staged.put(key::position(b'p', record.position), record.value.clone());
                return Ok(Outcome::Parked(at(reason)));
            }
            Verdict::Refused(reason) => {
                staged.rollback();
                return quarantine(staged, record, at(reason));
            }
        }
    }
    staged.release();
    let last = last.expect("a record holds at least one event");
    Ok(if applied {
        Outcome::Applied(last)
    } else {
        Outcome::Duplicate(last)
    })
}

/// Applies one event: a duplicate (a retry, or a forgery if its signature
/// does not hold), or checked by the rules and recorded.
fn apply_event(
    policy: &Policy,
    staged: &mut Staged<'_>,
    position: Position,
    index: usize,
    envelope: &Envelope,
    event: &Event,
    verified: bool,
) -> Result<Verdict> {
    // The driver every ledger runs (`baton_core::transition`); a copy's
    // refusal is worded as if read before the event (order-free, like the
    // rest).
    Ok(
        match baton_core::transition(policy, &*staged, envelope, event, verified, None)? {
            Transition::Duplicate(id) => {
                staged.add_counter("duplicates", 1);
                settle_copy(staged, id, position, index, event)?;
                Verdict::Duplicate(id)
            }
            Transition::Facts { id, signer, facts } => {
                record_event(staged, position, index, id, envelope, event, &signer, facts)?;
                staged.add_counter("applied", 1);
                Verdict::Applied(id)
            }
            Transition::Missing(refusal) => {
                Verdict::Missing(Why::refused(&refusal, refusal.to_string()))
            }
            Transition::Refused(refusal) => {
                let id = envelope.id();
                Verdict::Refused(Why::refused(&refusal, format!("{id}: {refusal}")))
            }
        },
    )
}

/// A copy of a stored event, read at `position` (a retry written through a
/// node that had not read the first copy, or a record copied into another
/// partition). Where an event lives must not depend on the order in which
/// a node reads partitions, so both answers are functions of the set of
/// copies read, not of their order:
/// - the event's position is the least (partition, then offset) of its
///   copies' positions;
/// - a revocation is in the Watch feed at every copy's position (a stream
///   may deliver it twice, never miss it: moving its entry back would skip
///   a stream already past the new place and not yet at the old).
fn settle_copy(
    staged: &mut Staged<'_>,
    id: EventId,
    position: Position,
    index: usize,
    event: &Event,
) -> Result<()> {
    let slot = key::event(&id);
    let bytes = staged
        .get(&slot)?
        .ok_or_else(|| Error::Corrupt(format!("stored event {id} vanished")))?;
    let mut stored =
        StoredEvent::decode(bytes.as_slice()).map_err(|e| Error::Corrupt(e.to_string()))?;
    if (position.partition, position.offset) < (stored.partition, stored.offset) {
        stored.partition = position.partition;
        stored.offset = position.offset;
        staged.put(slot, stored.encode_to_vec());
    }
    if let Body::Revoked(revoked) = &event.body {
        feed(staged, position, index, &revoked.target, id);
    }
    Ok(())
}

/// The Watch feed's entry for revocation `by` of `target`, read in the
/// record at `position` as its `index`th event.
fn feed(
    staged: &mut Staged<'_>,
    position: Position,
    index: usize,
    target: &baton_core::RevocationTarget,
    by: EventId,
) {
    let feed = StoredRevocation {
        event: by.0.to_vec(),
        target: key::target(target),
    };
    let index = u32::try_from(index).expect("a record holds at most 1000 events");
    staged.put(key::feed(position, index), feed.encode_to_vec());
}

pub fn quarantine(staged: &mut Staged<'_>, record: &ReadRecord, why: Why) -> Result<Outcome> {
    tracing::warn!(partition = record.position.partition, offset = record.position.offset, rule = why.rule, reason = %why.reason, "quarantined a log record");
    let stored = StoredQuarantine {
        reason: why.reason.clone(),
        value: record.value.clone(),
        rule: why.rule.to_string(),
    };
    staged.put(key::position(b'q', record.position), stored.encode_to_vec());
    staged.add_counter("quarantined", 1);
    staged.add_labelled_counter("quarantined", why.rule, 1);
    Ok(Outcome::Quarantined(why))
}

/// Stages everything a well-founded event derives: the stored event, the
/// ledger facts core derived from it (`baton_core::transition`, the one
/// state transition `MemoryLedger` applies too), and the query indexes.
#[allow(clippy::too_many_arguments)]
fn record_event(
    staged: &mut Staged<'_>,
    position: Position,
    index: usize,
    id: EventId,
    envelope: &Envelope,
    event: &Event,
    signer: &Signer,
    facts: Vec<Fact>,
) -> Result<()> {
    // A token's record is derived from the stored event; the grant type is
    // the one field a hop inherits rather than carries.
    let grant = facts.iter().find_map(|fact| match fact {
        Fact::Token(record) => Some(record.grant),
        _ => None,
    });
    let stored = StoredEvent {
        signed: baton_proto::encode_signed(envelope),
        partition: position.partition,
        offset: position.offset,
        kind: u32::from(kind_code(event.kind())),
        created_at_ms: event.created_at_ms,
        grant: grant.map(grant_index),
    };
    staged.put(key::event(&id), stored.encode_to_vec());
    for fact in facts {
        match fact {
            Fact::Key(record) => {
                let stored = crate::stored::StoredKey {
                    client: record.client.to_string(),
                    public_key: record.public_key.to_bytes().to_vec(),
                    bound_by: record.bound_by.0.to_vec(),
                    bound_by_key: record.bound_by_key.0.to_vec(),
                };
                staged.put(
                    key::signing_key(&record.public_key.key_id()),
                    stored.encode_to_vec(),
                );
            }
            Fact::Client(record) => staged.put(
                key::client(&record.client),
                StoredClient::from_record(&record).encode_to_vec(),
            ),
            Fact::Token(record) => staged.put(key::by_ref(&record.token), id.0.to_vec()),
            Fact::Child { parent, child } => {
                staged.index(crate::index::children(&parent), 0, child)
            }
            Fact::Revocation { target, by } => {
                let slot = key::revocation(&target);
                let stored = staged
                    .get(&slot)?
                    .map(|v| EventId::from_slice("stored revocation", &v))
                    .transpose()
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                staged.put(slot, baton_core::earliest(stored, by).0.to_vec());
                feed(staged, position, index, &target, by);
            }
            Fact::Retired(key) => staged.put(key::retired(&key), Vec::new()),
            Fact::Name { kind, name } => {
                staged.put(key::name(kind, &baton_core::fold(&name), &name), Vec::new())
            }
        }
    }
    index_event(staged, id, event, signer);
    staged.supply(baton_core::Dependency::supplied_by(id, event));
    Ok(())
}

/// The query indexes of an event: by kind and time, and by every client and
/// subject it names.
fn index_event(staged: &mut Staged<'_>, id: EventId, event: &Event, signer: &Signer) {
    let at = event.created_at_ms;
    staged.index(crate::index::kind(kind_code(event.kind())), at, id);
    let mut clients: Vec<&str> = Vec::new();
    if let Signer::Client { client, .. } = signer {
        clients.push(client.as_str());
    }
    let mut subjects: Vec<&str> = Vec::new();
    match &event.body {
        Body::ClientRegistered(reg) => clients.push(reg.client.as_str()),
        Body::TokenIssued(issued) => {
            clients.extend([issued.issuer.as_str(), issued.holder.as_str()]);
            subjects.push(issued.subject.as_str());
        }
        Body::ScopeNarrowed(hop) => {
            clients.extend([hop.performed_by.as_str(), hop.holder.as_str()]);
            subjects.push(hop.on_behalf_of.as_str());
        }
        Body::Revoked(revoked) => match &revoked.target {
            baton_core::RevocationTarget::Client(c) => clients.push(c.as_str()),
            baton_core::RevocationTarget::Subject(s) => subjects.push(s.as_str()),
            _ => {}
        },
        Body::KeysRotated(rotation) => clients.push(rotation.client.as_str()),
    }
    clients.sort_unstable();
    clients.dedup();
    for client in clients {
        staged.index(crate::index::name(b'I', client), at, id);
    }
    for subject in subjects {
        staged.index(crate::index::name(b'S', subject), at, id);
    }
}
