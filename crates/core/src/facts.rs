//! The ledger's state transition, once: the driver every ledger runs an event
//! through ([`transition`]: deduplicate, check, derive) and what an event that
//! passed the rules adds to the ledger, as facts. `MemoryLedger` and the sled
//! projector both call [`transition`] and record exactly the facts it
//! returns, each in its own storage (and the differential property test in
//! the projector's tests keeps the two equal).

use crate::envelope::Envelope;
use crate::error::Refusal;
use crate::event::{Body, Event, RevocationTarget};
use crate::ids::EventId;
use crate::keys::KeyId;
use crate::rules::{
    CheckError, Signer, check_copy, check_event_verified, check_live, unknown_parent,
};
use crate::state::{ClientRecord, KeyRecord, LedgerView, NameKind, Policy, TokenRecord};

/// What an event does to a ledger, decided by [`transition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The ledger holds this event already (a retry, or a copy read from
    /// another partition) and this copy's signature holds: nothing changes.
    Duplicate(EventId),
    /// A new event that passed the rules: what it adds, for the ledger to
    /// record.
    Facts {
        id: EventId,
        signer: Signer,
        facts: Vec<Fact>,
    },
    /// A key, client or parent it needs has not been seen (yet): a projector
    /// reading several partitions parks it; a writer refuses it.
    Missing(Refusal),
    /// Refused by a rule (for a copy: its signature does not hold, a forgery
    /// rather than a replay).
    Refused(Refusal),
}

/// Runs one event through the ledger's rules against `view`: a copy of an
/// event already there is a duplicate if its signature holds; a new event
/// must be well-founded (and, when `now_s` is given, live at `now_s`, as a
/// writer-facing node requires) and yields its facts. `signature_verified`
/// says the envelope was already verified strictly against its signer's key
/// (see [`crate::check_event_verified`]). Only the view's own failures are
/// errors; every verdict on the event is a [`Transition`].
pub fn transition<V: LedgerView>(
    policy: &Policy,
    view: &V,
    envelope: &Envelope,
    event: &Event,
    signature_verified: bool,
    now_s: Option<i64>,
) -> Result<Transition, V::Error> {
    let id = envelope.id();
    if view.contains_event(&id)? {
        return copy(policy, view, id, envelope, event, signature_verified);
    }
    let checked = check_event_verified(policy, view, envelope, event, signature_verified)
        .and_then(|signer| match now_s {
            Some(now_s) => check_live(policy, view, &signer, event, now_s).map(|()| signer),
            None => Ok(signer),
        })
        .and_then(|signer| Ok((facts(view, id, &signer, event)?, signer)));
    match checked {
        Ok((facts, signer)) => Ok(Transition::Facts { id, signer, facts }),
        Err(CheckError::View(e)) => Err(e),
        // A view read key by key rather than as one snapshot (a writer's
        // overlay over a live projection): a copy of this event committed
        // between reading "not seen" and reading a name it claims refuses
        // the event for its own effect (`already-exists`). Seen now, it is a
        // duplicate.
        Err(CheckError::Refused(_)) if view.contains_event(&id)? => {
            copy(policy, view, id, envelope, event, signature_verified)
        }
        Err(CheckError::Refused(refusal)) if refusal.is_missing_dependency() => {
            Ok(Transition::Missing(refusal))
        }
        Err(CheckError::Refused(refusal)) => Ok(Transition::Refused(refusal)),
    }
}

/// A copy of an event the ledger holds: the id covers what was signed, not
/// the signature, so a copy whose signature does not verify is a forgery.
fn copy<V: LedgerView>(
    policy: &Policy,
    view: &V,
    id: EventId,
    envelope: &Envelope,
    event: &Event,
    signature_verified: bool,
) -> Result<Transition, V::Error> {
    match check_copy(policy, view, envelope, event, signature_verified) {
        Ok(()) => Ok(Transition::Duplicate(id)),
        Err(CheckError::Refused(refusal)) => Ok(Transition::Refused(refusal)),
        Err(CheckError::View(e)) => Err(e),
    }
}

/// One fact an event adds to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A key bound to a client (by a registration or a rotation).
    Key(KeyRecord),
    /// A registered client.
    Client(ClientRecord),
    /// A token: a root grant or a hop, named by its reference.
    Token(TokenRecord),
    /// `child` was derived from `parent` (the blast-radius index).
    Child { parent: EventId, child: EventId },
    /// `target` revoked by event `by`; where several events revoke one
    /// target, the smallest id counts ([`earliest`]).
    Revocation {
        target: RevocationTarget,
        by: EventId,
    },
    /// A key retired by a rotation: it may sign nothing new.
    Retired(KeyId),
    /// A name now known, for finding names that differ only in case
    /// ([`crate::LedgerView::case_variant`]).
    Name { kind: NameKind, name: String },
}

/// The facts event `id` (signed by `signer`, already checked by the rules
/// against `view`) adds. A hop inherits its root grant's type from its parent
/// in `view`; a parent missing there is missing, as the rules would say.
fn facts<V: LedgerView>(
    view: &V,
    id: EventId,
    signer: &Signer,
    event: &Event,
) -> Result<Vec<Fact>, CheckError<V::Error>> {
    let key_fact = |client: &crate::ids::ClientId, key: &crate::keys::PublicKey| {
        Fact::Key(KeyRecord {
            client: client.clone(),
            public_key: *key,
            bound_by: id,
            bound_by_key: signer.key(),
        })
    };
    Ok(match &event.body {
        Body::ClientRegistered(reg) => {
            let mut out: Vec<Fact> = reg
                .public_keys
                .iter()
                .map(|key| key_fact(&reg.client, key))
                .collect();
            out.push(Fact::Client(ClientRecord::from_event(id, reg)));
            out.push(Fact::Name {
                kind: NameKind::Client,
                name: reg.client.as_str().to_owned(),
            });
            out
        }
        Body::TokenIssued(issued) => vec![
            Fact::Token(TokenRecord::root(id, signer.key(), issued)),
            Fact::Name {
                kind: NameKind::Subject,
                name: issued.subject.as_str().to_owned(),
            },
        ],
        Body::ScopeNarrowed(hop) => {
            let Some(parent) = view.token(&hop.parent).map_err(CheckError::View)? else {
                return Err(CheckError::Refused(unknown_parent(hop)));
            };
            vec![
                Fact::Token(TokenRecord::hop(id, signer.key(), hop, parent.grant)),
                Fact::Child {
                    parent: hop.parent,
                    child: id,
                },
            ]
        }
        Body::Revoked(revoked) => vec![Fact::Revocation {
            target: revoked.target.clone(),
            by: id,
        }],
        Body::KeysRotated(rotation) => {
            let mut out: Vec<Fact> = rotation
                .add
                .iter()
                .map(|key| key_fact(&rotation.client, key))
                .collect();
            out.extend(rotation.retire.iter().copied().map(Fact::Retired));
            out
        }
    })
}

/// Which of two revocations of one target counts: the smaller event id, so
/// the answer does not depend on the order they arrived in.
pub fn earliest(stored: Option<EventId>, new: EventId) -> EventId {
    stored.map_or(new, |stored| stored.min(new))
}
