//! Explicit conversions between `baton.v1` wire messages and `baton-core`
//! types. From the wire, every field is validated and a refusal names it
//! (`token_issued.scopes[3]: ...`); to the wire, conversion cannot fail.

use baton_core::{
    Body, ClientId, ClientKind, ClientRegistered, ClientRole, Envelope, Error, Event, EventId,
    GrantType, KeyId, KeysRotated, PAYLOAD_TYPE_EVENT_V1, PublicKey, RegistrationMethod, Result,
    RevocationTarget, Revoked, ScopeNarrowed, SigningKey, Subject, TokenIssued, TokenRef, audience,
    limits, names, optional_text,
};
use prost::Message as _;

use crate::v1;

/// Reads a received signed event: checks the envelope's fields and decodes the
/// event from the payload bytes. The signature is checked by the ledger rules
/// (`baton_core::check_event`), against the key the ledger has for the signer.
pub fn open(signed: v1::SignedEvent) -> Result<(Envelope, Event)> {
    if signed.payload_type != PAYLOAD_TYPE_EVENT_V1 {
        return Err(Error::invalid(
            "payload_type",
            format!(
                "{:?} is not supported; expected {PAYLOAD_TYPE_EVENT_V1:?}",
                baton_core::echo(&signed.payload_type)
            ),
        ));
    }
    let envelope = Envelope::from_parts(
        signed.payload,
        signed.payload_type,
        &signed.key_id,
        &signed.signature,
    )?;
    let wire = v1::Event::decode(envelope.payload())
        .map_err(|e| Error::invalid("payload", format!("is not a baton.v1.Event: {e}")))?;
    let event = Event::try_from(wire)?;
    Ok((envelope, event))
}

/// The log record form of a signed event: the encoded `SignedEvent`.
pub fn encode_signed(envelope: &Envelope) -> Vec<u8> {
    v1::SignedEvent::from(envelope).encode_to_vec()
}

/// The first byte of a log record holding a batch (see `LogBatch` in
/// `events.proto`).
pub const BATCH_RECORD_TAG: u8 = 0x00;

/// Encodes the log record for `envelopes`: one `SignedEvent`, or a tagged
/// `LogBatch` when there are several, which the log stores (and projectors
/// apply) as one.
pub fn encode_record(envelopes: &[&Envelope]) -> Vec<u8> {
    match envelopes {
        [one] => encode_signed(one),
        many => {
            let batch = v1::LogBatch {
                events: many.iter().map(|e| v1::SignedEvent::from(*e)).collect(),
            };
            let mut out = Vec::with_capacity(1 + batch.encoded_len());
            out.push(BATCH_RECORD_TAG);
            batch.encode(&mut out).expect("a Vec grows as needed");
            out
        }
    }
}

/// Reads a log record: its events in order, each decoded and [`open`]ed.
pub fn decode_record(bytes: &[u8]) -> Result<Vec<(Envelope, Event)>> {
    let Some(body) = bytes.strip_prefix(&[BATCH_RECORD_TAG]) else {
        return Ok(vec![decode_signed(bytes)?]);
    };
    let batch = v1::LogBatch::decode(body)
        .map_err(|e| Error::invalid("log_batch", format!("is not a baton.v1.LogBatch: {e}")))?;
    if batch.events.len() < 2 || batch.events.len() > limits::BATCH_EVENTS_MAX {
        return Err(Error::invalid(
            "log_batch.events",
            format!(
                "holds {} events; a batch record holds 2 to {}",
                batch.events.len(),
                limits::BATCH_EVENTS_MAX
            ),
        ));
    }
    batch
        .events
        .into_iter()
        .enumerate()
        .map(|(i, signed)| open(signed).map_err(|e| e.within(&format!("log_batch.events[{i}]"))))
        .collect()
}

/// Reads a log record holding one event: decodes the `SignedEvent`, then
/// [`open`]s it.
pub fn decode_signed(bytes: &[u8]) -> Result<(Envelope, Event)> {
    if bytes.len() > limits::PAYLOAD_BYTES_MAX + 1024 {
        return Err(Error::invalid(
            "signed_event",
            format!("is {} bytes, larger than an event can be", bytes.len()),
        ));
    }
    let signed = v1::SignedEvent::decode(bytes).map_err(|e| {
        Error::invalid(
            "signed_event",
            format!("is not a baton.v1.SignedEvent: {e}"),
        )
    })?;
    open(signed)
}

/// Signs `body` as an event of `key`'s made at `created_at_ms`: how every
/// writer (the client SDK, a node's RFC 7009 delegate, the test kit) makes
/// an event.
pub fn sign(key: &SigningKey, created_at_ms: i64, body: baton_core::Body) -> Result<Envelope> {
    seal(
        key,
        &Event {
            signer: key.key_id(),
            created_at_ms,
            body,
        },
    )
}

/// Encodes and signs an event. The event must name `key` as its signer.
pub fn seal(key: &SigningKey, event: &Event) -> Result<Envelope> {
    if event.signer != key.key_id() {
        return Err(Error::invalid(
            "signer_key_id",
            format!(
                "names {} but the signing key is {}",
                event.signer,
                key.key_id()
            ),
        ));
    }
    Envelope::sign(
        key,
        PAYLOAD_TYPE_EVENT_V1,
        v1::Event::from(event).encode_to_vec(),
    )
}

impl From<&Envelope> for v1::SignedEvent {
    fn from(envelope: &Envelope) -> Self {
        v1::SignedEvent {
            payload: envelope.payload().to_vec(),
            payload_type: envelope.payload_type().to_owned(),
            key_id: envelope.key_id().as_bytes().to_vec(),
            signature: envelope.signature().to_vec(),
        }
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::invalid(field, "is missing"))
}

/// Reads a proto enum: unknown numbers and the unspecified zero are refused.
fn enumeration<P, C>(field: &str, raw: i32, convert: impl Fn(P) -> Option<C>) -> Result<C>
where
    P: TryFrom<i32>,
{
    let parsed =
        P::try_from(raw).map_err(|_| Error::invalid(field, format!("unknown enum value {raw}")))?;
    convert(parsed).ok_or_else(|| Error::invalid(field, "must be set (it is unspecified)"))
}

fn client_id(field: &str, value: &str) -> Result<ClientId> {
    Ok(ClientId::new(field, value)?)
}

fn optional_client(field: &str, value: &str) -> Result<Option<ClientId>> {
    if value.is_empty() {
        Ok(None)
    } else {
        Ok(Some(ClientId::new(field, value)?))
    }
}

fn public_keys(field: &str, raw: &[Vec<u8>]) -> Result<Vec<PublicKey>> {
    if raw.len() > limits::KEYS_MAX {
        return Err(Error::invalid(
            field,
            format!("has {} keys, more than {}", raw.len(), limits::KEYS_MAX),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, k)| Ok(PublicKey::from_slice(&format!("{field}[{i}]"), k)?))
        .collect()
}

fn proofs(field: &str, raw: &[Vec<u8>]) -> Result<Vec<[u8; 64]>> {
    if raw.len() > limits::KEYS_MAX {
        return Err(Error::invalid(
            field,
            format!("has {} proofs, more than {}", raw.len(), limits::KEYS_MAX),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            <[u8; 64]>::try_from(p.as_slice()).map_err(|_| {
                Error::invalid(
                    format!("{field}[{i}]"),
                    format!("a proof of possession is 64 bytes, got {}", p.len()),
                )
            })
        })
        .collect()
}

fn timestamp_s(field: &str, value: i64) -> Result<i64> {
    if value <= 0 {
        return Err(Error::invalid(
            field,
            format!("{value} is not a positive unix time"),
        ));
    }
    Ok(value)
}

/// Reads a token reference, naming `field` when it is missing or malformed.
pub fn token_ref(field: &str, wire: Option<v1::TokenRef>) -> Result<TokenRef> {
    let wire = required(field, wire)?;
    match required(&format!("{field}.ref"), wire.r#ref)? {
        v1::token_ref::Ref::Jti(jti) => Ok(TokenRef::jti(&format!("{field}.jti"), &jti)?),
        v1::token_ref::Ref::Digest(d) => Ok(TokenRef::digest(&format!("{field}.digest"), &d)?),
    }
}

pub fn token_ref_to_wire(token: &TokenRef) -> v1::TokenRef {
    let r = match token {
        TokenRef::Jti(jti) => v1::token_ref::Ref::Jti(jti.clone()),
        TokenRef::Digest(d) => v1::token_ref::Ref::Digest(d.to_vec()),
    };
    v1::TokenRef { r#ref: Some(r) }
}

impl TryFrom<v1::Event> for Event {
    type Error = Error;

    fn try_from(wire: v1::Event) -> Result<Self> {
        let signer = KeyId::from_slice("signer_key_id", &wire.signer_key_id)?;
        if wire.created_at_unix_ms <= 0 {
            return Err(Error::invalid(
                "created_at_unix_ms",
                format!("{} is not a positive unix time", wire.created_at_unix_ms),
            ));
        }
        let body = match wire.body {
            None => {
                return Err(Error::invalid(
                    "body",
                    "is missing: one of client_registered, token_issued, scope_narrowed, revoked, keys_rotated",
                ));
            }
            Some(v1::event::Body::ClientRegistered(b)) => Body::ClientRegistered(
                b.try_into()
                    .map_err(|e: Error| e.within("client_registered"))?,
            ),
            Some(v1::event::Body::TokenIssued(b)) => {
                Body::TokenIssued(b.try_into().map_err(|e: Error| e.within("token_issued"))?)
            }
            Some(v1::event::Body::ScopeNarrowed(b)) => Body::ScopeNarrowed(
                b.try_into()
                    .map_err(|e: Error| e.within("scope_narrowed"))?,
            ),
            Some(v1::event::Body::Revoked(b)) => {
                Body::Revoked(b.try_into().map_err(|e: Error| e.within("revoked"))?)
            }
            Some(v1::event::Body::KeysRotated(b)) => {
                Body::KeysRotated(b.try_into().map_err(|e: Error| e.within("keys_rotated"))?)
            }
        };
        Ok(Event {
            signer,
            created_at_ms: wire.created_at_unix_ms,
            body,
        })
    }
}

impl From<&Event> for v1::Event {
    fn from(event: &Event) -> Self {
        let body = match &event.body {
            Body::ClientRegistered(b) => v1::event::Body::ClientRegistered(b.into()),
            Body::TokenIssued(b) => v1::event::Body::TokenIssued(b.into()),
            Body::ScopeNarrowed(b) => v1::event::Body::ScopeNarrowed(b.into()),
            Body::Revoked(b) => v1::event::Body::Revoked(b.into()),
            Body::KeysRotated(b) => v1::event::Body::KeysRotated(b.into()),
        };
        v1::Event {
            signer_key_id: event.signer.as_bytes().to_vec(),
            created_at_unix_ms: event.created_at_ms,
            body: Some(body),
        }
    }
}

impl TryFrom<v1::ClientRegistered> for ClientRegistered {
    type Error = Error;

    fn try_from(wire: v1::ClientRegistered) -> Result<Self> {
        use v1::ClientKind as K;
        use v1::ClientRole as R;
        use v1::RegistrationMethod as M;
        Ok(ClientRegistered {
            client: client_id("client_id", &wire.client_id)?,
            kind: enumeration("kind", wire.kind, |k| match k {
                K::Unspecified => None,
                K::McpClient => Some(ClientKind::McpClient),
                K::Gateway => Some(ClientKind::Gateway),
                K::McpServer => Some(ClientKind::McpServer),
                K::AuthorizationServer => Some(ClientKind::AuthorizationServer),
                K::Service => Some(ClientKind::Service),
            })?,
            role: enumeration("role", wire.role, |r| match r {
                R::Unspecified => None,
                R::ToolEndpoint => Some(ClientRole::ToolEndpoint),
                R::DelegatingLayer => Some(ClientRole::DelegatingLayer),
                R::MixedTrustBoundary => Some(ClientRole::MixedTrustBoundary),
            })?,
            registration: enumeration("registration", wire.registration, |m| match m {
                M::Unspecified => None,
                M::PreRegistered => Some(RegistrationMethod::PreRegistered),
                M::Dynamic => Some(RegistrationMethod::Dynamic),
                M::MetadataDocument => Some(RegistrationMethod::MetadataDocument),
                M::StaticApiKey => Some(RegistrationMethod::StaticApiKey),
            })?,
            metadata_document_url: if wire.metadata_document_url.is_empty() {
                None
            } else {
                Some(audience(
                    "metadata_document_url",
                    &wire.metadata_document_url,
                )?)
            },
            public_keys: public_keys("public_keys", &wire.public_keys)?,
            key_proofs: proofs("public_key_proofs", &wire.public_key_proofs)?,
            scopes: names("scopes", &wire.scopes)?,
            tools: names("tools", &wire.tools)?,
            registered_by: optional_client("registered_by", &wire.registered_by)?,
        })
    }
}

impl From<&ClientRegistered> for v1::ClientRegistered {
    fn from(reg: &ClientRegistered) -> Self {
        v1::ClientRegistered {
            client_id: reg.client.to_string(),
            kind: match reg.kind {
                ClientKind::McpClient => v1::ClientKind::McpClient,
                ClientKind::Gateway => v1::ClientKind::Gateway,
                ClientKind::McpServer => v1::ClientKind::McpServer,
                ClientKind::AuthorizationServer => v1::ClientKind::AuthorizationServer,
                ClientKind::Service => v1::ClientKind::Service,
            } as i32,
            role: match reg.role {
                ClientRole::ToolEndpoint => v1::ClientRole::ToolEndpoint,
                ClientRole::DelegatingLayer => v1::ClientRole::DelegatingLayer,
                ClientRole::MixedTrustBoundary => v1::ClientRole::MixedTrustBoundary,
            } as i32,
            registration: match reg.registration {
                RegistrationMethod::PreRegistered => v1::RegistrationMethod::PreRegistered,
                RegistrationMethod::Dynamic => v1::RegistrationMethod::Dynamic,
                RegistrationMethod::MetadataDocument => v1::RegistrationMethod::MetadataDocument,
                RegistrationMethod::StaticApiKey => v1::RegistrationMethod::StaticApiKey,
            } as i32,
            metadata_document_url: reg.metadata_document_url.clone().unwrap_or_default(),
            public_keys: reg
                .public_keys
                .iter()
                .map(|k| k.to_bytes().to_vec())
                .collect(),
            scopes: reg.scopes.iter().map(ToString::to_string).collect(),
            tools: reg.tools.iter().map(ToString::to_string).collect(),
            registered_by: reg
                .registered_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            public_key_proofs: reg.key_proofs.iter().map(|p| p.to_vec()).collect(),
        }
    }
}

fn grant_type(field: &str, raw: i32) -> Result<GrantType> {
    use v1::GrantType as G;
    enumeration(field, raw, |g| match g {
        G::Unspecified => None,
        G::AuthorizationCodePkce => Some(GrantType::AuthorizationCodePkce),
        G::DeviceCode => Some(GrantType::DeviceCode),
        G::ClientCredentials => Some(GrantType::ClientCredentials),
        G::ApiKey => Some(GrantType::ApiKey),
        G::RefreshToken => Some(GrantType::RefreshToken),
    })
}

pub fn grant_type_to_wire(grant: GrantType) -> i32 {
    (match grant {
        GrantType::AuthorizationCodePkce => v1::GrantType::AuthorizationCodePkce,
        GrantType::DeviceCode => v1::GrantType::DeviceCode,
        GrantType::ClientCredentials => v1::GrantType::ClientCredentials,
        GrantType::ApiKey => v1::GrantType::ApiKey,
        GrantType::RefreshToken => v1::GrantType::RefreshToken,
    }) as i32
}

impl TryFrom<v1::TokenIssued> for TokenIssued {
    type Error = Error;

    fn try_from(wire: v1::TokenIssued) -> Result<Self> {
        Ok(TokenIssued {
            token: token_ref("token", wire.token)?,
            subject: Subject::new("subject", &wire.subject)?,
            issuer: client_id("issuer", &wire.issuer)?,
            holder: client_id("holder", &wire.holder)?,
            audience: audience("audience", &wire.audience)?,
            scopes: names("scopes", &wire.scopes)?,
            tools: names("tools", &wire.tools)?,
            grant: grant_type("grant_type", wire.grant_type)?,
            issued_at_s: timestamp_s("issued_at_unix_s", wire.issued_at_unix_s)?,
            expires_at_s: timestamp_s("expires_at_unix_s", wire.expires_at_unix_s)?,
            session_id: optional_text("session_id", &wire.session_id)?,
            transaction_id: optional_text("transaction_id", &wire.transaction_id)?,
        })
    }
}

impl From<&TokenIssued> for v1::TokenIssued {
    fn from(t: &TokenIssued) -> Self {
        v1::TokenIssued {
            token: Some(token_ref_to_wire(&t.token)),
            subject: t.subject.to_string(),
            issuer: t.issuer.to_string(),
            holder: t.holder.to_string(),
            audience: t.audience.clone(),
            scopes: t.scopes.iter().map(ToString::to_string).collect(),
            tools: t.tools.iter().map(ToString::to_string).collect(),
            grant_type: grant_type_to_wire(t.grant),
            issued_at_unix_s: t.issued_at_s,
            expires_at_unix_s: t.expires_at_s,
            session_id: t.session_id.clone().unwrap_or_default(),
            transaction_id: t.transaction_id.clone().unwrap_or_default(),
        }
    }
}

impl TryFrom<v1::ScopeNarrowed> for ScopeNarrowed {
    type Error = Error;

    fn try_from(wire: v1::ScopeNarrowed) -> Result<Self> {
        if wire.depth == 0 {
            return Err(Error::invalid("depth", "a hop has depth 1 or more"));
        }
        Ok(ScopeNarrowed {
            token: token_ref("token", wire.token)?,
            parent: EventId::from_slice("parent_event_id", &wire.parent_event_id)?,
            root: EventId::from_slice("root_event_id", &wire.root_event_id)?,
            depth: wire.depth,
            performed_by: client_id("performed_by", &wire.performed_by)?,
            on_behalf_of: Subject::new("on_behalf_of", &wire.on_behalf_of)?,
            holder: client_id("holder", &wire.holder)?,
            audience: audience("audience", &wire.audience)?,
            scopes: names("scopes", &wire.scopes)?,
            tools: names("tools", &wire.tools)?,
            issued_at_s: timestamp_s("issued_at_unix_s", wire.issued_at_unix_s)?,
            expires_at_s: timestamp_s("expires_at_unix_s", wire.expires_at_unix_s)?,
            transaction_id: optional_text("transaction_id", &wire.transaction_id)?,
        })
    }
}

impl From<&ScopeNarrowed> for v1::ScopeNarrowed {
    fn from(h: &ScopeNarrowed) -> Self {
        v1::ScopeNarrowed {
            token: Some(token_ref_to_wire(&h.token)),
            parent_event_id: h.parent.as_bytes().to_vec(),
            root_event_id: h.root.as_bytes().to_vec(),
            depth: h.depth,
            performed_by: h.performed_by.to_string(),
            on_behalf_of: h.on_behalf_of.to_string(),
            holder: h.holder.to_string(),
            audience: h.audience.clone(),
            scopes: h.scopes.iter().map(ToString::to_string).collect(),
            tools: h.tools.iter().map(ToString::to_string).collect(),
            issued_at_unix_s: h.issued_at_s,
            expires_at_unix_s: h.expires_at_s,
            transaction_id: h.transaction_id.clone().unwrap_or_default(),
        }
    }
}

/// Reads a revocation target (shared by `Revoked` and, later, query messages).
pub fn revocation_target(wire: Option<v1::revoked::Target>) -> Result<RevocationTarget> {
    use v1::revoked::Target;
    match required("target", wire)? {
        Target::Token(t) => Ok(RevocationTarget::Token(token_ref("target.token", Some(t))?)),
        Target::ClientId(c) => Ok(RevocationTarget::Client(client_id("target.client_id", &c)?)),
        Target::Subject(s) => Ok(RevocationTarget::Subject(Subject::new(
            "target.subject",
            &s,
        )?)),
        Target::KeyId(k) => Ok(RevocationTarget::Key(KeyId::from_slice(
            "target.key_id",
            &k,
        )?)),
    }
}

/// A standalone target (a Check answer's `depends_on`) read as a revoked
/// one is: the same oneof, the same rules.
impl TryFrom<v1::RevocationTarget> for RevocationTarget {
    type Error = Error;

    fn try_from(wire: v1::RevocationTarget) -> Result<Self> {
        use v1::revocation_target::Target as Standalone;
        use v1::revoked::Target;
        revocation_target(wire.target.map(|target| match target {
            Standalone::Token(t) => Target::Token(t),
            Standalone::ClientId(c) => Target::ClientId(c),
            Standalone::Subject(s) => Target::Subject(s),
            Standalone::KeyId(k) => Target::KeyId(k),
        }))
    }
}

impl TryFrom<v1::Revoked> for Revoked {
    type Error = Error;

    fn try_from(wire: v1::Revoked) -> Result<Self> {
        Ok(Revoked {
            target: revocation_target(wire.target)?,
            reason: optional_text("reason", &wire.reason)?.unwrap_or_default(),
            revoked_by: optional_client("revoked_by", &wire.revoked_by)?,
            requested_by: optional_client("requested_by", &wire.requested_by)?,
        })
    }
}

impl From<&RevocationTarget> for v1::RevocationTarget {
    fn from(target: &RevocationTarget) -> Self {
        use v1::revocation_target::Target;
        v1::RevocationTarget {
            target: Some(match target {
                RevocationTarget::Token(t) => Target::Token(token_ref_to_wire(t)),
                RevocationTarget::Client(c) => Target::ClientId(c.to_string()),
                RevocationTarget::Subject(s) => Target::Subject(s.to_string()),
                RevocationTarget::Key(k) => Target::KeyId(k.as_bytes().to_vec()),
            }),
        }
    }
}

impl From<&Revoked> for v1::Revoked {
    fn from(r: &Revoked) -> Self {
        use v1::revoked::Target;
        // One mapping of a target to the wire: the standalone message's,
        // moved into the event's oneof.
        let target = match v1::RevocationTarget::from(&r.target).target {
            Some(v1::revocation_target::Target::Token(t)) => Target::Token(t),
            Some(v1::revocation_target::Target::ClientId(c)) => Target::ClientId(c),
            Some(v1::revocation_target::Target::Subject(s)) => Target::Subject(s),
            Some(v1::revocation_target::Target::KeyId(k)) => Target::KeyId(k),
            None => unreachable!("every target maps to one"),
        };
        v1::Revoked {
            target: Some(target),
            reason: r.reason.clone(),
            revoked_by: r
                .revoked_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            requested_by: r
                .requested_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<v1::KeysRotated> for KeysRotated {
    type Error = Error;

    fn try_from(wire: v1::KeysRotated) -> Result<Self> {
        if wire.retire_key_ids.len() > limits::KEYS_MAX {
            return Err(Error::invalid(
                "retire_key_ids",
                format!(
                    "has {} keys, more than {}",
                    wire.retire_key_ids.len(),
                    limits::KEYS_MAX
                ),
            ));
        }
        Ok(KeysRotated {
            client: client_id("client_id", &wire.client_id)?,
            add: public_keys("add_public_keys", &wire.add_public_keys)?,
            add_proofs: proofs("add_public_key_proofs", &wire.add_public_key_proofs)?,
            retire: wire
                .retire_key_ids
                .iter()
                .enumerate()
                .map(|(i, k)| KeyId::from_slice(&format!("retire_key_ids[{i}]"), k))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&KeysRotated> for v1::KeysRotated {
    fn from(r: &KeysRotated) -> Self {
        v1::KeysRotated {
            client_id: r.client.to_string(),
            add_public_keys: r.add.iter().map(|k| k.to_bytes().to_vec()).collect(),
            retire_key_ids: r.retire.iter().map(|k| k.as_bytes().to_vec()).collect(),
            add_public_key_proofs: r.add_proofs.iter().map(|p| p.to_vec()).collect(),
        }
    }
}

/// A record's place in the log, on the wire.
impl From<baton_log::Position> for v1::LogPosition {
    fn from(position: baton_log::Position) -> Self {
        v1::LogPosition {
            partition: position.partition,
            offset: position.offset,
        }
    }
}

/// How a revocation reaches a token, on the wire.
impl From<baton_core::Via> for v1::RevocationVia {
    fn from(via: baton_core::Via) -> Self {
        match via {
            baton_core::Via::Token => v1::RevocationVia::Token,
            baton_core::Via::Holder => v1::RevocationVia::Holder,
            baton_core::Via::Performer => v1::RevocationVia::Performer,
            baton_core::Via::SigningKey => v1::RevocationVia::SigningKey,
            baton_core::Via::Subject => v1::RevocationVia::Subject,
        }
    }
}

/// Why a token is revoked, on the wire: the revocation, its body when the
/// ledger has it, and where it reaches the token's chain.
pub fn revocation_cause(
    cause: &baton_core::Cause,
    revoked: Option<&Revoked>,
) -> v1::RevocationCause {
    v1::RevocationCause {
        revocation_event_id: cause.revocation.0.to_vec(),
        revoked: revoked.map(v1::Revoked::from),
        link: Some(token_ref_to_wire(&cause.hit.link)),
        distance: cause.hit.distance,
        via: v1::RevocationVia::from(cause.hit.via) as i32,
    }
}

fn names_to_wire(set: &std::collections::BTreeSet<baton_core::Name>) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

/// A token's record as one link of a chain.
impl From<&baton_core::TokenRecord> for v1::ChainLink {
    fn from(link: &baton_core::TokenRecord) -> Self {
        v1::ChainLink {
            performed_by: link.performed_by.to_string(),
            holder: link.holder.to_string(),
            token: Some(token_ref_to_wire(&link.token)),
            event_id: link.event.0.to_vec(),
            depth: link.depth,
            audience: link.audience.clone(),
        }
    }
}

/// A token's record as one of a token's descendants.
impl From<&baton_core::TokenRecord> for v1::TokenSummary {
    fn from(r: &baton_core::TokenRecord) -> Self {
        v1::TokenSummary {
            token: Some(token_ref_to_wire(&r.token)),
            event_id: r.event.0.to_vec(),
            parent_event_id: r.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
            depth: r.depth,
            holder: r.holder.to_string(),
            performed_by: r.performed_by.to_string(),
            subject: r.subject.to_string(),
            audience: r.audience.clone(),
            scopes: names_to_wire(&r.scopes),
            tools: names_to_wire(&r.tools),
            expires_at_unix_s: r.expires_at_s,
        }
    }
}

/// What the ledger knows of a token: its record's grant and its chain
/// (root grant first; empty when not walked), whose root names the issuer.
pub fn token_details(
    record: &baton_core::TokenRecord,
    chain: &[baton_core::TokenRecord],
) -> v1::TokenDetails {
    v1::TokenDetails {
        scopes: names_to_wire(&record.scopes),
        tools: names_to_wire(&record.tools),
        holder: record.holder.to_string(),
        subject: record.subject.to_string(),
        issuer: chain
            .first()
            .map_or_else(String::new, |root| root.performed_by.to_string()),
        audience: record.audience.clone(),
        issued_at_unix_s: record.issued_at_s,
        expires_at_unix_s: record.expires_at_s,
        grant_type: grant_type_to_wire(record.grant),
        depth: record.depth,
        chain: chain.iter().map(v1::ChainLink::from).collect(),
    }
}

/// A stored event of a chain or a listing: the signed event, its id and
/// where the log holds it.
pub fn chain_event(envelope: &Envelope, position: baton_log::Position) -> v1::ChainEvent {
    v1::ChainEvent {
        event: Some(v1::SignedEvent::from(envelope)),
        event_id: envelope.id().0.to_vec(),
        position: Some(position.into()),
    }
}

/// An event kind asked for on the wire: None for any (unspecified).
pub fn event_kind(field: &str, raw: i32) -> Result<Option<baton_core::EventKind>> {
    use baton_core::EventKind;
    use v1::EventKind as K;
    let kind =
        K::try_from(raw).map_err(|_| Error::invalid(field, format!("unknown enum value {raw}")))?;
    Ok(match kind {
        K::Unspecified => None,
        K::ClientRegistered => Some(EventKind::ClientRegistered),
        K::TokenIssued => Some(EventKind::TokenIssued),
        K::ScopeNarrowed => Some(EventKind::ScopeNarrowed),
        K::Revoked => Some(EventKind::Revoked),
        K::KeysRotated => Some(EventKind::KeysRotated),
    })
}
