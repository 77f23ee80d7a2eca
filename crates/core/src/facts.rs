//! The ledger's state transition, once: what an event that passed the rules
//! adds to the ledger, as facts. `MemoryLedger` and the sled projector both
//! apply exactly these facts, each to its own storage (and the differential
//! property test in the projector's tests keeps the two equal).

use crate::event::{Body, Event, RevocationTarget};
use crate::ids::EventId;
use crate::keys::KeyId;
use crate::rules::Signer;
use crate::state::{ClientRecord, KeyRecord, LedgerView, NameKind, TokenRecord};

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
/// in `view`; a parent missing there is the view's error or `None`.
pub fn facts<V: LedgerView>(
    view: &V,
    id: EventId,
    signer: &Signer,
    event: &Event,
) -> Result<Option<Vec<Fact>>, V::Error> {
    let key_fact = |client: &crate::ids::ClientId, key: &crate::keys::PublicKey| {
        Fact::Key(KeyRecord {
            client: client.clone(),
            public_key: *key,
            bound_by: id,
            bound_by_key: signer.key(),
        })
    };
    Ok(Some(match &event.body {
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
            let Some(parent) = view.token(&hop.parent)? else {
                return Ok(None);
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
    }))
}

/// Which of two revocations of one target counts: the smaller event id, so
/// the answer does not depend on the order they arrived in.
pub fn earliest(stored: Option<EventId>, new: EventId) -> EventId {
    stored.map_or(new, |stored| stored.min(new))
}
