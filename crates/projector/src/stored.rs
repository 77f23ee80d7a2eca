//! What the projection stores, as small protobuf messages (private to this
//! crate, so they can change with a rebuild), and the key layout of the one
//! sled tree that holds it all. One tree, because a sled batch is atomic
//! within a tree: state and log offsets always commit together.
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `o` | partition u32 | next offset to apply, u64 |
//! | `e` | event id | [`StoredEvent`]: the signed bytes, their position and, for a token, its grant type |
//! | `r` | token ref | event id |
//! | `k` | key id | [`StoredKey`] |
//! | `x` | key id | empty: retired |
//! | `l` | client id | [`StoredClient`] |
//! | `v` | revocation target | the smallest event id that revokes it |
//! | `w` | partition, offset | [`StoredRevocation`]: the watch feed |
//! | `q` | partition, offset | [`StoredQuarantine`] |
//! | `p` | partition, offset | a parked record (its dependency not yet seen) |
//! | `i` | kind, first item | index items: events by kind and time |
//! | `I` | client, 0, first item | index items: events naming a client |
//! | `S` | subject, 0, first item | index items: events naming a subject |
//! | `c` | parent id, first item | index items: tokens derived from it |
//! | `m` | counter name [, 0, label] | u64 |
//!
//! All integers are big-endian so that keys sort numerically. The four
//! query indexes hold items (created ms, event id), many per entry: one
//! entry per prefix per committed batch ([`crate::index`]), because sled's
//! costs follow the number of entries.
//!
//! A token's record ([`TokenRecord`]) is not stored: it is the token event's
//! own fields, its key id and the grant type inherited from the root, so it
//! is derived from the `e` entry ([`StoredEvent::token_record`]) and memoised.

use baton_core::{
    Body, ClientKind, ClientRecord, ClientRole, EventId, GrantType, KeyId, KeyRecord, Name,
    PublicKey, RegistrationMethod, RevocationTarget, Subject, TokenRecord, TokenRef,
};
use baton_log::Position;

use crate::{Error, Result};

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredEvent {
    #[prost(bytes = "vec", tag = "1")]
    pub signed: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub partition: u32,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(uint32, tag = "4")]
    pub kind: u32,
    #[prost(int64, tag = "5")]
    pub created_at_ms: i64,
    /// For a token (root grant or hop): the root grant's type, which every
    /// hop inherits (an index into the grant types).
    #[prost(uint32, optional, tag = "6")]
    pub grant: Option<u32>,
}

/// The sled tree of this layout; change the name whenever what is stored
/// changes meaning. A projection in another layout is dropped and rebuilt from
/// the log when opened. `projection`: token records under `t`;
/// `projection.v2`: token records derived from `e`; `projection.v3`: batch
/// records, watch feed keyed by position and index; `projection.v4`: the rule
/// of each quarantined record, and quarantine counters by rule;
/// `projection.v5`: query indexes as aggregates of items.
pub const TREE: &str = "projection.v5";

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredKey {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub bound_by: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub bound_by_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredClient {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    #[prost(uint32, tag = "3")]
    pub role: u32,
    #[prost(uint32, tag = "4")]
    pub registration: u32,
    #[prost(string, repeated, tag = "5")]
    pub scopes: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub tools: Vec<String>,
    #[prost(string, tag = "7")]
    pub registered_by: String,
    #[prost(bytes = "vec", tag = "8")]
    pub event: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRevocation {
    #[prost(bytes = "vec", tag = "1")]
    pub event: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub target: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredQuarantine {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// The rule that refused it (a core rule's name, or `undecodable`).
    #[prost(string, tag = "3")]
    pub rule: String,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {detail}"))
}

pub fn decode<M: prost::Message + Default>(what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| corrupt(what, e))
}

fn names(what: &str, values: &[String]) -> Result<std::collections::BTreeSet<Name>> {
    values
        .iter()
        .map(|v| Name::new(what, v).map_err(|e| corrupt(what, e)))
        .collect()
}

const GRANTS: [GrantType; 5] = [
    GrantType::AuthorizationCodePkce,
    GrantType::DeviceCode,
    GrantType::ClientCredentials,
    GrantType::ApiKey,
    GrantType::RefreshToken,
];
const KINDS: [ClientKind; 5] = [
    ClientKind::McpClient,
    ClientKind::Gateway,
    ClientKind::McpServer,
    ClientKind::AuthorizationServer,
    ClientKind::Service,
];
const ROLES: [ClientRole; 3] = [
    ClientRole::ToolEndpoint,
    ClientRole::DelegatingLayer,
    ClientRole::MixedTrustBoundary,
];
const REGISTRATIONS: [RegistrationMethod; 4] = [
    RegistrationMethod::PreRegistered,
    RegistrationMethod::Dynamic,
    RegistrationMethod::MetadataDocument,
    RegistrationMethod::StaticApiKey,
];

fn index_of<T: PartialEq>(all: &[T], value: &T) -> u32 {
    all.iter()
        .position(|v| v == value)
        .expect("every variant is listed") as u32
}

fn from_index<T: Copy>(what: &str, all: &[T], index: u32) -> Result<T> {
    all.get(index as usize)
        .copied()
        .ok_or_else(|| corrupt(what, format!("unknown variant {index}")))
}

fn event_id(what: &str, bytes: &[u8]) -> Result<EventId> {
    EventId::from_slice(what, bytes).map_err(|e| corrupt(what, e))
}

pub fn grant_index(grant: GrantType) -> u32 {
    index_of(&GRANTS, &grant)
}

impl StoredEvent {
    /// The token record of a stored token event (`id` is its key); `None`
    /// for every other kind of event.
    pub fn token_record(&self, id: EventId) -> Result<Option<TokenRecord>> {
        let w = "stored event";
        let is_token = matches!(
            baton_core::EventKind::ALL.get(self.kind as usize),
            Some(baton_core::EventKind::TokenIssued | baton_core::EventKind::ScopeNarrowed)
        );
        let grant = match (self.grant, is_token) {
            (None, false) => return Ok(None),
            (Some(grant), true) => grant,
            (None, true) => return Err(corrupt(w, format!("token {id} has no grant type"))),
            (Some(_), false) => {
                return Err(corrupt(
                    w,
                    format!("{id} has a grant type but is not a token"),
                ));
            }
        };
        let (envelope, event) =
            baton_proto::decode_signed(&self.signed).map_err(|e| corrupt(w, e))?;
        let signer = envelope.key_id();
        Ok(match &event.body {
            Body::TokenIssued(issued) => Some(TokenRecord::root(id, signer, issued)),
            Body::ScopeNarrowed(hop) => Some(TokenRecord::hop(
                id,
                signer,
                hop,
                from_index(w, &GRANTS, grant)?,
            )),
            _ => {
                return Err(corrupt(
                    w,
                    format!("{id} has a grant type but is not a token"),
                ));
            }
        })
    }
}

impl StoredClient {
    pub fn from_record(record: &ClientRecord) -> Self {
        StoredClient {
            client: record.client.to_string(),
            kind: index_of(&KINDS, &record.kind),
            role: index_of(&ROLES, &record.role),
            registration: index_of(&REGISTRATIONS, &record.registration),
            scopes: record.scopes.iter().map(ToString::to_string).collect(),
            tools: record.tools.iter().map(ToString::to_string).collect(),
            registered_by: record
                .registered_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            event: record.event.0.to_vec(),
        }
    }

    pub fn into_record(self) -> Result<ClientRecord> {
        let w = "stored client";
        Ok(ClientRecord {
            client: baton_core::ClientId::new(w, &self.client).map_err(|e| corrupt(w, e))?,
            kind: from_index(w, &KINDS, self.kind)?,
            role: from_index(w, &ROLES, self.role)?,
            registration: from_index(w, &REGISTRATIONS, self.registration)?,
            scopes: names(w, &self.scopes)?,
            tools: names(w, &self.tools)?,
            registered_by: if self.registered_by.is_empty() {
                None
            } else {
                Some(baton_core::ClientId::new(w, &self.registered_by).map_err(|e| corrupt(w, e))?)
            },
            event: event_id(w, &self.event)?,
        })
    }
}

impl StoredKey {
    pub fn into_record(self) -> Result<KeyRecord> {
        let w = "stored key";
        Ok(KeyRecord {
            client: baton_core::ClientId::new(w, &self.client).map_err(|e| corrupt(w, e))?,
            public_key: PublicKey::from_slice(w, &self.public_key).map_err(|e| corrupt(w, e))?,
            bound_by: event_id(w, &self.bound_by)?,
            bound_by_key: KeyId::from_slice(w, &self.bound_by_key).map_err(|e| corrupt(w, e))?,
        })
    }
}

/// Key builders. Every key starts with its one-byte prefix.
pub mod key {
    use super::*;

    fn with(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![prefix];
        for part in parts {
            out.extend_from_slice(part);
        }
        out
    }

    pub fn position(prefix: u8, position: Position) -> Vec<u8> {
        with(
            prefix,
            &[
                &position.partition.to_be_bytes(),
                &position.offset.to_be_bytes(),
            ],
        )
    }

    /// The watch feed's key of the `index`th revocation of the record at
    /// `position` (a batch record may hold several).
    pub fn feed(position: Position, index: u32) -> Vec<u8> {
        let mut out = self::position(b'w', position);
        out.extend_from_slice(&index.to_be_bytes());
        out
    }

    pub fn parse_position(key: &[u8]) -> Option<Position> {
        let partition = u32::from_be_bytes(key.get(1..5)?.try_into().ok()?);
        let offset = u64::from_be_bytes(key.get(5..13)?.try_into().ok()?);
        Some(Position { partition, offset })
    }

    pub fn offset(partition: u32) -> Vec<u8> {
        with(b'o', &[&partition.to_be_bytes()])
    }

    /// The partition of an [`offset`] key.
    pub fn parse_offset(key: &[u8]) -> Option<u32> {
        Some(u32::from_be_bytes(key.get(1..5)?.try_into().ok()?))
    }

    pub fn event(id: &EventId) -> Vec<u8> {
        with(b'e', &[&id.0])
    }

    pub fn token_ref(token: &TokenRef) -> Vec<u8> {
        match token {
            TokenRef::Jti(jti) => with(1, &[jti.as_bytes()]),
            TokenRef::Digest(d) => with(2, &[d]),
        }
    }

    pub fn parse_token_ref(bytes: &[u8]) -> Result<TokenRef> {
        let w = "stored token ref";
        match bytes.split_first() {
            Some((1, jti)) => {
                let jti = std::str::from_utf8(jti).map_err(|e| corrupt(w, e))?;
                TokenRef::jti(w, jti).map_err(|e| corrupt(w, e))
            }
            Some((2, digest)) => TokenRef::digest(w, digest).map_err(|e| corrupt(w, e)),
            _ => Err(corrupt(w, "unknown form")),
        }
    }

    pub fn by_ref(token: &TokenRef) -> Vec<u8> {
        with(b'r', &[&token_ref(token)])
    }

    pub fn signing_key(id: &KeyId) -> Vec<u8> {
        with(b'k', &[&id.0])
    }

    pub fn retired(id: &KeyId) -> Vec<u8> {
        with(b'x', &[&id.0])
    }

    pub fn client(id: &baton_core::ClientId) -> Vec<u8> {
        with(b'l', &[id.as_str().as_bytes()])
    }

    pub fn target(target: &RevocationTarget) -> Vec<u8> {
        match target {
            RevocationTarget::Token(t) => with(b'T', &[&token_ref(t)]),
            RevocationTarget::Client(c) => with(b'C', &[c.as_str().as_bytes()]),
            RevocationTarget::Subject(s) => with(b'S', &[s.as_str().as_bytes()]),
            RevocationTarget::Key(k) => with(b'K', &[&k.0]),
        }
    }

    pub fn parse_target(bytes: &[u8]) -> Result<RevocationTarget> {
        let w = "stored revocation target";
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| corrupt(w, e))
        };
        match bytes.split_first() {
            Some((b'T', rest)) => Ok(RevocationTarget::Token(parse_token_ref(rest)?)),
            Some((b'C', rest)) => Ok(RevocationTarget::Client(
                baton_core::ClientId::new(w, &text(rest)?).map_err(|e| corrupt(w, e))?,
            )),
            Some((b'S', rest)) => Ok(RevocationTarget::Subject(
                Subject::new(w, &text(rest)?).map_err(|e| corrupt(w, e))?,
            )),
            Some((b'K', rest)) => Ok(RevocationTarget::Key(
                KeyId::from_slice(w, rest).map_err(|e| corrupt(w, e))?,
            )),
            _ => Err(corrupt(w, "unknown form")),
        }
    }

    pub fn revocation(target: &RevocationTarget) -> Vec<u8> {
        with(b'v', &[&self::target(target)])
    }

    /// Whether writing `key` can change a key's trust
    /// ([`baton_core::key_trust`] reads only key bindings and revocations of
    /// keys): a binding (`k`) or a key's revocation (`v` `K`). Revocations
    /// of tokens, clients and subjects leave every cached trust answer
    /// standing.
    pub fn affects_key_trust(key: &[u8]) -> bool {
        matches!(key, [b'k', ..] | [b'v', b'K', ..])
    }

    /// A known name of `kind` under its case fold: the fold, a zero byte,
    /// the name (identifiers hold no control characters). Every variant of
    /// one fold sorts together, the least first.
    pub fn name(kind: baton_core::NameKind, folded: &str, name: &str) -> Vec<u8> {
        let mut out = name_fold(kind, folded);
        out.extend_from_slice(name.as_bytes());
        out
    }

    /// The prefix of every known name of `kind` that folds to `folded`.
    pub fn name_fold(kind: baton_core::NameKind, folded: &str) -> Vec<u8> {
        with(b'N', &[&[kind.code()], folded.as_bytes(), &[0]])
    }

    pub fn counter(name: &str) -> Vec<u8> {
        with(b'm', &[name.as_bytes()])
    }

    /// One label's count of a counter (quarantined records by rule): the
    /// counter's key, a zero byte, the label.
    pub fn labelled_counter(name: &str, label: &str) -> Vec<u8> {
        with(b'm', &[name.as_bytes(), &[0], label.as_bytes()])
    }
}

/// A big-endian u64 as stored (an offset, a counter); 0 when absent or
/// not eight bytes.
pub fn read_u64(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::{ClientId, Subject};

    #[test]
    fn only_bindings_and_key_revocations_affect_key_trust() {
        let k = KeyId([3; 32]);
        assert!(key::affects_key_trust(&key::signing_key(&k)));
        assert!(key::affects_key_trust(&key::revocation(
            &RevocationTarget::Key(k)
        )));
        for target in [
            RevocationTarget::Token(TokenRef::jti("t", "a").unwrap()),
            RevocationTarget::Client(ClientId::new("c", "agent").unwrap()),
            RevocationTarget::Subject(Subject::new("s", "user:alice").unwrap()),
        ] {
            assert!(
                !key::affects_key_trust(&key::revocation(&target)),
                "{target}"
            );
        }
        assert!(!key::affects_key_trust(&key::retired(&k)));
        assert!(!key::affects_key_trust(b""));
    }
}
