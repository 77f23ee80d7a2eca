//! The ledger's rules as pure functions over a read-only [`LedgerView`].
//!
//! Two layers, because a ledger fed by several Kafka partitions must reach the
//! same verdict on every node whatever order the partitions interleave in:
//!
//! * [`check_event`] decides whether an event is *well-founded*: signed by a key
//!   bound to the right client, authorized for what it does, linked to a parent
//!   that exists, and narrower than that parent. Its answer depends only on
//!   facts that never change once they exist (registrations, bindings, parent
//!   records), so every projector gives the same verdict. A missing fact is a
//!   missing dependency ([`Refusal::is_missing_dependency`]), not a forgery.
//! * [`check_live`] adds what the writer sees at append time: the event is
//!   not dated further ahead of the node's clock than the policy allows, and
//!   the signer, the parent, the holder and the subject must not be revoked or
//!   expired. It depends on the clock and on revocations, which are ordered
//!   differently on different partitions, so projectors do not use it;
//!   revocations reach derived tokens through the status walk in `status.rs`
//!   instead.

use std::collections::BTreeSet;

use crate::envelope::{Envelope, PAYLOAD_TYPE_EVENT_V1};
use crate::error::{Dependency, Refusal, Rule};
use crate::event::{
    Body, ClientKind, ClientRegistered, Event, KeysRotated, RegistrationMethod, RevocationTarget,
    Revoked, ScopeNarrowed, TokenIssued,
};
use crate::ids::{ClientId, Name, TokenRef};
use crate::keys::{KeyId, PublicKey};
use crate::limits::{DEPTH_MAX_CEILING, KEYS_MAX};
use crate::state::{ClientRecord, KeyTrust, LedgerView, NameKind, Policy};
use crate::status::{BINDING_CHAIN_MAX, TokenStatus, binding_depth, token_status};

/// A refusal, or a failure of the view underneath.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckError<E> {
    Refused(Refusal),
    View(E),
}

impl<E> From<Refusal> for CheckError<E> {
    fn from(refusal: Refusal) -> Self {
        CheckError::Refused(refusal)
    }
}

type Checked<T, E> = Result<T, CheckError<E>>;

fn view<T, E>(result: Result<T, E>) -> Checked<T, E> {
    result.map_err(CheckError::View)
}

fn refuse<T, E>(rule: Rule, field: &'static str, reason: impl Into<String>) -> Checked<T, E> {
    Err(CheckError::Refused(Refusal::new(rule, field, reason)))
}

/// A refusal because `dependency` has not been seen (yet): the only way an
/// event is refused for a missing key, client or parent.
fn missing<T, E>(
    dependency: Dependency,
    field: &'static str,
    reason: impl Into<String>,
) -> Checked<T, E> {
    Err(CheckError::Refused(Refusal::missing(
        dependency, field, reason,
    )))
}

/// A hop whose parent is not in the ledger (yet).
pub(crate) fn unknown_parent(hop: &ScopeNarrowed) -> Refusal {
    Refusal::missing(
        Dependency::Event(hop.parent),
        "parent_event_id",
        format!("{} is not a token in the ledger", hop.parent),
    )
}

/// Who signed an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    TrustRoot(KeyId),
    Client { client: ClientId, key: KeyId },
}

impl Signer {
    pub fn key(&self) -> KeyId {
        match self {
            Signer::TrustRoot(key) | Signer::Client { key, .. } => *key,
        }
    }

    fn client(&self) -> Option<&ClientId> {
        match self {
            Signer::TrustRoot(_) => None,
            Signer::Client { client, .. } => Some(client),
        }
    }
}

/// Finds the public key an envelope names: a trust root, or a key bound to a client.
pub fn resolve_signer<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    key: &KeyId,
) -> Checked<(Signer, PublicKey), V::Error> {
    if let Some(public) = policy.trust_roots.get(key) {
        return Ok((Signer::TrustRoot(*key), *public));
    }
    match view(view_.key(key))? {
        Some(record) => Ok((
            Signer::Client {
                client: record.client,
                key: *key,
            },
            record.public_key,
        )),
        None => missing(
            Dependency::Key(*key),
            "key_id",
            format!("{key} is not a trust root or a registered key"),
        ),
    }
}

/// Decides whether an event is well-founded (see the module docs). Call it with
/// the event decoded from `envelope.payload()`; it verifies the signature.
pub fn check_event<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    envelope: &Envelope,
    event: &Event,
) -> Checked<Signer, V::Error> {
    check_event_verified(policy, view_, envelope, event, false)
}

/// [`check_event`], for a caller that has already verified the envelope
/// strictly (`signature_verified`) against a public key whose key id is the
/// envelope's: a key id is the hash of its public key, so that was the very
/// key this check would resolve. Projectors verify a batch's signatures in
/// parallel this way, then apply the batch in order.
pub fn check_event_verified<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    envelope: &Envelope,
    event: &Event,
    signature_verified: bool,
) -> Checked<Signer, V::Error> {
    check_envelope(envelope, event)?;
    let (signer, public) = resolve_signer(policy, view_, &event.signer)?;
    if !signature_verified {
        envelope.verify(&public)?;
    }
    match &event.body {
        Body::ClientRegistered(reg) => check_registration(policy, view_, &signer, reg)?,
        Body::TokenIssued(issued) => check_issue(policy, view_, &signer, issued)?,
        Body::ScopeNarrowed(hop) => check_hop(policy, view_, &signer, hop)?,
        Body::Revoked(revoked) => check_revocation(policy, view_, &signer, revoked)?,
        Body::KeysRotated(rotation) => check_rotation(policy, view_, &signer, rotation)?,
    }
    Ok(signer)
}

/// Checks a copy of an event already in the ledger (same id): it is a retry
/// only if it carries a valid signature by the key the payload names; any
/// other copy is a forgery (the id covers what was signed, not the signature
/// or the envelope's key id). `signature_verified` as in
/// [`check_event_verified`].
pub fn check_copy<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    envelope: &Envelope,
    event: &Event,
    signature_verified: bool,
) -> Checked<(), V::Error> {
    check_envelope(envelope, event)?;
    if !signature_verified {
        let (_, public) = resolve_signer(policy, view_, &event.signer)?;
        envelope.verify(&public)?;
    }
    Ok(())
}

/// What an envelope must say of itself before its signature means anything:
/// the payload type, and the key id the payload names as its signer.
fn check_envelope<E>(envelope: &Envelope, event: &Event) -> Checked<(), E> {
    if envelope.payload_type() != PAYLOAD_TYPE_EVENT_V1 {
        return refuse(
            Rule::Signature,
            "payload_type",
            format!(
                "{:?} is not {PAYLOAD_TYPE_EVENT_V1:?}",
                crate::echo(envelope.payload_type())
            ),
        );
    }
    if event.signer != envelope.key_id() {
        return refuse(
            Rule::Signature,
            "signer_key_id",
            format!(
                "payload names {} but the envelope is signed by {}",
                event.signer,
                envelope.key_id()
            ),
        );
    }
    Ok(())
}

fn registered<V: LedgerView>(
    view_: &V,
    field: &'static str,
    client: &ClientId,
) -> Checked<ClientRecord, V::Error> {
    match view(view_.client(client))? {
        Some(record) => Ok(record),
        None => missing(
            Dependency::Client(client.clone()),
            field,
            format!("client {client:?} is not registered"),
        ),
    }
}

fn signed_by<E>(signer: &Signer, field: &'static str, client: &ClientId) -> Checked<(), E> {
    if signer.client() == Some(client) {
        return Ok(());
    }
    refuse(
        Rule::Unauthorized,
        field,
        format!(
            "event is signed by {} which is not a key of client {client:?}",
            signer.key()
        ),
    )
}

/// Keys newly bound by an event: each one not bound yet (nor a trust root,
/// nor listed twice), and the signer's binding chain short enough that the new
/// keys' chains stay within [`BINDING_CHAIN_MAX`] — so every chain a status
/// walk follows ends at a trust root within its bound.
fn unbound_keys<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    client: &ClientId,
    (field, proofs_field): (&'static str, &'static str),
    (keys, proofs): (&[PublicKey], &[[u8; 64]]),
    registration: Option<Option<&ClientId>>,
) -> Checked<(), V::Error> {
    if proofs.len() != keys.len() {
        return refuse(
            Rule::Inconsistent,
            proofs_field,
            format!(
                "has {} proofs for {} keys: one per key",
                proofs.len(),
                keys.len()
            ),
        );
    }
    if let Some((i, key)) = keys
        .iter()
        .zip(proofs)
        .enumerate()
        .find_map(|(i, (key, proof))| {
            // A registration's proof names its registrar (v2); a v1 proof,
            // which names only the client, is still taken from the log so
            // that ledgers written before v2 replay as they were (at append,
            // `registration_proofs_name_the_registrar` refuses it).
            let proven = registration
                .is_some_and(|registrar| key.verify_registration(client, registrar, proof))
                || key.verify_possession(client, proof);
            (!proven).then_some((i, key))
        })
    {
        return refuse(
            Rule::Signature,
            proofs_field,
            format!(
                "[{i}] does not prove possession of {} for client {client:?}",
                key.key_id()
            ),
        );
    }
    match view(binding_depth(view_, policy, signer.key()))? {
        Some(depth) if depth < BINDING_CHAIN_MAX => {}
        depth => {
            return refuse(
                Rule::TooDeep,
                "signer_key_id",
                format!(
                    "{} is {} from a trust root; a key it binds would be more than {BINDING_CHAIN_MAX} bindings away: rotate through the client's registrar or a trust root",
                    signer.key(),
                    depth.map_or_else(|| "not anchored".to_owned(), |d| format!("{d} bindings")),
                ),
            );
        }
    }
    if keys.len() > KEYS_MAX {
        return refuse(
            Rule::Inconsistent,
            field,
            format!("has {} keys, more than {KEYS_MAX}", keys.len()),
        );
    }
    let mut seen = BTreeSet::new();
    for key in keys {
        let id = key.key_id();
        if !seen.insert(id)
            || policy.trust_roots.contains_key(&id)
            || view(view_.key(&id))?.is_some()
        {
            return refuse(
                Rule::AlreadyExists,
                field,
                format!("{id} is already bound or listed twice"),
            );
        }
    }
    Ok(())
}

/// The namespace of subjects that name users (`user:alice@example.com`),
/// which client ids may not use, so that a client's own (static) chain can
/// never read as a user's.
pub const SUBJECT_NAMESPACE: &str = "user:";

/// Whether `id` starts with [`SUBJECT_NAMESPACE`], in any case.
fn in_subject_namespace(id: &str) -> bool {
    id.get(..SUBJECT_NAMESPACE.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(SUBJECT_NAMESPACE))
}

fn check_registration<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    reg: &ClientRegistered,
) -> Checked<(), V::Error> {
    if view(view_.client(&reg.client))?.is_some() {
        return refuse(
            Rule::AlreadyExists,
            "client_id",
            format!("client {:?} is already registered", reg.client),
        );
    }
    if let Some(known) = view(view_.case_variant(NameKind::Client, reg.client.as_str()))? {
        return refuse(
            Rule::AlreadyExists,
            "client_id",
            format!(
                "client {known:?} is registered, and client ids that differ only in case are one id"
            ),
        );
    }
    if in_subject_namespace(reg.client.as_str()) {
        return refuse(
            Rule::Unauthorized,
            "client_id",
            format!(
                "{:?} is in the namespace {SUBJECT_NAMESPACE:?}, which names users: no client may be registered in it (its static grants would read as a user's)",
                reg.client
            ),
        );
    }
    if reg.public_keys.is_empty() {
        return refuse(
            Rule::Inconsistent,
            "public_keys",
            "a client needs at least one key",
        );
    }
    unbound_keys(
        policy,
        view_,
        signer,
        &reg.client,
        ("public_keys", "public_key_proofs"),
        (&reg.public_keys, &reg.key_proofs),
        Some(reg.registered_by.as_ref()),
    )?;
    let wants_url = reg.registration == RegistrationMethod::MetadataDocument;
    if wants_url != reg.metadata_document_url.is_some() {
        return refuse(
            Rule::Inconsistent,
            "metadata_document_url",
            "is required for, and only for, metadata-document registration",
        );
    }
    match (signer, &reg.registered_by) {
        (Signer::TrustRoot(_), None) => Ok(()),
        (Signer::TrustRoot(_), Some(by)) => refuse(
            Rule::Unauthorized,
            "registered_by",
            format!("names {by:?} but a trust root signed"),
        ),
        (Signer::Client { .. }, None) => refuse(
            Rule::Unauthorized,
            "registered_by",
            "is empty but a client key signed, not a trust root",
        ),
        (Signer::Client { .. }, Some(by)) => {
            signed_by(signer, "registered_by", by)?;
            let registrar = registered(view_, "registered_by", by)?;
            if registrar.kind != ClientKind::AuthorizationServer {
                return refuse(
                    Rule::Unauthorized,
                    "registered_by",
                    format!("client {by:?} is not an authorization server"),
                );
            }
            if reg.kind == ClientKind::AuthorizationServer {
                return refuse(
                    Rule::Unauthorized,
                    "kind",
                    "only a trust-root key registers an authorization server",
                );
            }
            within_ceiling(policy, &registrar, "registrar", &reg.scopes, &reg.tools)
        }
    }
}

/// Whether `scopes` and `tools` stay within the registered ceiling of
/// `client`, which is the `role` of the event (its holder, its registrar,
/// its issuer).
fn within_ceiling<E>(
    policy: &Policy,
    client: &ClientRecord,
    role: &str,
    scopes: &BTreeSet<Name>,
    tools: &BTreeSet<Name>,
) -> Checked<(), E> {
    if !policy.enforce_ceiling {
        return Ok(());
    }
    let whose = format!("the ceiling of {role} {:?}", client.client);
    subset("scopes", "scope", scopes, &client.scopes, &whose)?;
    subset("tools", "tool", tools, &client.tools, &whose)
}

fn subset<E>(
    field: &'static str,
    noun: &str,
    child: &BTreeSet<Name>,
    parent: &BTreeSet<Name>,
    whose: &str,
) -> Checked<(), E> {
    match child.difference(parent).next() {
        None => Ok(()),
        Some(extra) => refuse(
            Rule::NotNarrower,
            field,
            format!("{noun} {:?} is not held by {whose}", extra.as_str()),
        ),
    }
}

fn check_issue<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    issued: &TokenIssued,
) -> Checked<(), V::Error> {
    if view(view_.token_by_ref(&issued.token))?.is_some() {
        return refuse(
            Rule::AlreadyExists,
            "token",
            format!("token {} is already in the ledger", issued.token),
        );
    }
    if issued.expires_at_s <= issued.issued_at_s {
        return refuse(
            Rule::Inconsistent,
            "expires_at_unix_s",
            "must be later than issued_at_unix_s",
        );
    }
    signed_by(signer, "issuer", &issued.issuer)?;
    let issuer = registered(view_, "issuer", &issued.issuer)?;
    if issuer.kind != ClientKind::AuthorizationServer {
        return refuse(
            Rule::Unauthorized,
            "issuer",
            format!("client {:?} is not an authorization server", issued.issuer),
        );
    }
    let holder = registered(view_, "holder", &issued.holder)?;
    in_universe(policy, &holder, &issued.issuer)?;
    within_ceiling(policy, &issuer, "issuer", &issued.scopes, &issued.tools)?;
    within_ceiling(policy, &holder, "holder", &issued.scopes, &issued.tools)?;
    if policy.static_grants_client_only {
        if issued.grant.is_static() && issued.subject.as_str() != issued.holder.as_str() {
            return refuse(
                Rule::StaticGrant,
                "subject",
                format!(
                    "a {:?} grant acts for its holder {:?} and cannot carry subject {:?}",
                    issued.grant, issued.holder, issued.subject
                ),
            );
        }
        if holder.registration == RegistrationMethod::StaticApiKey && !issued.grant.is_static() {
            return refuse(
                Rule::StaticGrant,
                "grant_type",
                format!(
                    "holder {:?} is registered with a static API key and may only hold static grants",
                    issued.holder
                ),
            );
        }
    }
    Ok(())
}

fn check_hop<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    hop: &ScopeNarrowed,
) -> Checked<(), V::Error> {
    if view(view_.token_by_ref(&hop.token))?.is_some() {
        return refuse(
            Rule::AlreadyExists,
            "token",
            format!("token {} is already in the ledger", hop.token),
        );
    }
    let Some(parent) = view(view_.token(&hop.parent))? else {
        return Err(CheckError::Refused(unknown_parent(hop)));
    };
    if hop.root != parent.root {
        return refuse(
            Rule::Inconsistent,
            "root_event_id",
            format!("is {} but the parent's root is {}", hop.root, parent.root),
        );
    }
    if hop.depth != parent.depth + 1 {
        return refuse(
            Rule::Inconsistent,
            "depth",
            format!(
                "is {} but the parent's depth is {}",
                hop.depth, parent.depth
            ),
        );
    }
    if hop.depth > policy.depth_max() {
        return refuse(
            Rule::TooDeep,
            "depth",
            format!("{} exceeds the bound of {}", hop.depth, policy.depth_max()),
        );
    }
    if hop.on_behalf_of != parent.subject {
        return refuse(
            Rule::Inconsistent,
            "on_behalf_of",
            format!(
                "is {:?} but the chain acts for {:?}",
                hop.on_behalf_of, parent.subject
            ),
        );
    }
    signed_by(signer, "performed_by", &hop.performed_by)?;
    let performer = registered(view_, "performed_by", &hop.performed_by)?;
    if policy.require_delegating_role && !performer.may_delegate() {
        return refuse(
            Rule::Unauthorized,
            "performed_by",
            format!(
                "client {:?} is registered as a tool endpoint and may not sign a delegation hop",
                hop.performed_by
            ),
        );
    }
    // The chain's issuer: the authorization server whose universe it is.
    let issuer = match parent.parent {
        None => parent.performed_by.clone(),
        Some(_) => match view(view_.token(&parent.root))? {
            Some(root) => root.performed_by.clone(),
            None => {
                return missing(
                    Dependency::Event(parent.root),
                    "root_event_id",
                    format!("{} is not a token in the ledger", parent.root),
                );
            }
        },
    };
    if performer.client != parent.holder {
        // Only the chain's own authorization server exchanges a token it
        // does not hold.
        if !(performer.kind == ClientKind::AuthorizationServer
            && acts_for(policy, &performer.client, &issuer))
        {
            return refuse(
                Rule::Unauthorized,
                "performed_by",
                format!(
                    "client {:?} does not hold parent token {} and is not the authorization server that issued its chain",
                    hop.performed_by, parent.token
                ),
            );
        }
    }
    let holder = registered(view_, "holder", &hop.holder)?;
    in_universe(policy, &holder, &issuer)?;
    if policy.static_grants_client_only
        && holder.registration == RegistrationMethod::StaticApiKey
        && !parent.grant.is_static()
    {
        return refuse(
            Rule::StaticGrant,
            "holder",
            format!(
                "holder {:?} is registered with a static API key and may only hold static grants, but the chain starts from a {:?} grant",
                hop.holder, parent.grant
            ),
        );
    }
    let whose = format!("parent token {}", parent.token);
    subset("scopes", "scope", &hop.scopes, &parent.scopes, &whose)?;
    subset("tools", "tool", &hop.tools, &parent.tools, &whose)?;
    within_ceiling(policy, &holder, "holder", &hop.scopes, &hop.tools)?;
    if hop.expires_at_s > parent.expires_at_s {
        return refuse(
            Rule::NotNarrower,
            "expires_at_unix_s",
            format!(
                "{} is later than parent token {} expiry {}",
                hop.expires_at_s, parent.token, parent.expires_at_s
            ),
        );
    }
    if hop.issued_at_s < parent.issued_at_s || hop.expires_at_s <= hop.issued_at_s {
        return refuse(
            Rule::Inconsistent,
            "issued_at_unix_s",
            format!(
                "{} must be at or after the parent's {} and before expires_at_unix_s",
                hop.issued_at_s, parent.issued_at_s
            ),
        );
    }
    Ok(())
}

/// A token of a chain issued by `issuer` may only be held by a client of
/// `issuer`'s universe: the issuer itself, a client it (or, federated, a
/// peer) registered, or a client a trust root registered.
fn in_universe<E>(policy: &Policy, holder: &ClientRecord, issuer: &ClientId) -> Checked<(), E> {
    let inside = &holder.client == issuer
        || holder
            .registered_by
            .as_ref()
            .is_none_or(|by| acts_for(policy, issuer, by));
    if inside {
        return Ok(());
    }
    refuse(
        Rule::Unauthorized,
        "holder",
        format!(
            "client {:?} was registered by another authorization server than {issuer:?}, which issued the chain",
            holder.client
        ),
    )
}

/// Whether authorization server `actor` may act in the universe of
/// authorization server `owner`: its own, or any when it is federated.
fn acts_for(policy: &Policy, actor: &ClientId, owner: &ClientId) -> bool {
    actor == owner || policy.federated.contains(actor)
}

/// Who may revoke what. A trust root revokes anything. An authorization server
/// revokes within its universe: itself and the clients it registered, their
/// keys, and chains it issued or is on; never a trust root's key, and a
/// subject (which names a user across every issuer) only when federated.
/// Any other client revokes itself, its own keys, and chains it holds or
/// performed a link of.
fn check_revocation<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    revoked: &Revoked,
) -> Checked<(), V::Error> {
    let Some(by) = &revoked.revoked_by else {
        if revoked.requested_by.is_some() {
            return refuse(
                Rule::Unauthorized,
                "requested_by",
                "is set but revoked_by is empty: only a revocation delegate revokes for another client",
            );
        }
        if let Signer::TrustRoot(_) = signer {
            return Ok(());
        }
        return refuse(
            Rule::Unauthorized,
            "revoked_by",
            "is empty but a client key signed, not a trust root",
        );
    };
    signed_by(signer, "revoked_by", by)?;
    let mut revoker = registered(view_, "revoked_by", by)?;
    // Signed for another client: a delegate's signature, that client's authority.
    let (by, field) = match &revoked.requested_by {
        None => (by, "revoked_by"),
        Some(requester) => {
            if !policy.revocation_delegates.contains(by) {
                return refuse(
                    Rule::Unauthorized,
                    "requested_by",
                    format!(
                        "client {by:?} is not a revocation delegate: it may not revoke for another client"
                    ),
                );
            }
            // A delegate speaks for a client about tokens only: never a
            // client, key or subject (a whole universe) on someone's word.
            if !matches!(revoked.target, RevocationTarget::Token(_)) {
                return refuse(
                    Rule::Unauthorized,
                    "requested_by",
                    format!(
                        "a revocation delegate revokes tokens only, not {}",
                        revoked.target
                    ),
                );
            }
            revoker = registered(view_, "requested_by", requester)?;
            (requester, "requested_by")
        }
    };
    let authority = revoker.kind == ClientKind::AuthorizationServer;
    // Whether client `c` is `by` itself or, for an authorization server, one
    // it registered (or may act for).
    let owns = |c: &ClientRecord| {
        &c.client == by
            || (authority
                && c.registered_by
                    .as_ref()
                    .is_some_and(|r| acts_for(policy, by, r)))
    };
    let allowed = match &revoked.target {
        RevocationTarget::Client(client) => owns(&registered(view_, "target", client)?),
        RevocationTarget::Key(key) => {
            if policy.trust_roots.contains_key(key) {
                return refuse(
                    Rule::Unauthorized,
                    "target",
                    format!(
                        "{key} is a trust root: only a trust root or the configuration retires one"
                    ),
                );
            }
            let Some(record) = view(view_.key(key))? else {
                return missing(
                    Dependency::Key(*key),
                    "target",
                    format!("{key} is not a registered key"),
                );
            };
            owns(&registered(view_, "target", &record.client)?)
        }
        RevocationTarget::Token(token) => {
            on_chain(view_, token, by)? || (authority && issued_by_peer(policy, view_, token, by)?)
        }
        RevocationTarget::Subject(_) => authority && policy.federated.contains(by),
    };
    if allowed {
        return Ok(());
    }
    refuse(
        Rule::Unauthorized,
        field,
        format!(
            "client {by:?} may not revoke {}: outside what it registered, holds or issued",
            revoked.target
        ),
    )
}

/// Whether `token`'s chain was issued by an authorization server that `by`
/// (federated) may act for.
fn issued_by_peer<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    token: &TokenRef,
    by: &ClientId,
) -> Checked<bool, V::Error> {
    if !policy.federated.contains(by) {
        return Ok(false);
    }
    Ok(view(view_.token_by_ref(token))?.is_some())
}

/// Whether `client` holds or performed any link of `token`'s chain. A token not
/// (yet) in the ledger is a missing dependency.
fn on_chain<V: LedgerView>(
    view_: &V,
    token: &TokenRef,
    client: &ClientId,
) -> Checked<bool, V::Error> {
    let Some(mut at) = view(view_.token_by_ref(token))? else {
        return missing(
            Dependency::Token(token.clone()),
            "target",
            format!("token {token} is not in the ledger"),
        );
    };
    for _ in 0..=DEPTH_MAX_CEILING {
        let Some(link) = view(view_.token(&at))? else {
            break;
        };
        if &link.holder == client || &link.performed_by == client {
            return Ok(true);
        }
        match link.parent {
            Some(parent) => at = parent,
            None => break,
        }
    }
    Ok(false)
}

fn check_rotation<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    rotation: &KeysRotated,
) -> Checked<(), V::Error> {
    let client = registered(view_, "client_id", &rotation.client)?;
    let authorized = match signer {
        Signer::TrustRoot(_) => true,
        Signer::Client { client: by, .. } => {
            by == &rotation.client || client.registered_by.as_ref() == Some(by)
        }
    };
    if !authorized {
        return refuse(
            Rule::Unauthorized,
            "client_id",
            format!(
                "{} may not rotate the keys of client {:?}",
                signer.key(),
                rotation.client
            ),
        );
    }
    if rotation.add.is_empty() && rotation.retire.is_empty() {
        return refuse(
            Rule::Inconsistent,
            "add_public_keys",
            "a rotation must add or retire at least one key",
        );
    }
    unbound_keys(
        policy,
        view_,
        signer,
        &rotation.client,
        ("add_public_keys", "add_public_key_proofs"),
        (&rotation.add, &rotation.add_proofs),
        None,
    )?;
    for key in &rotation.retire {
        if view(view_.key(key))?.is_none_or(|k| k.client != rotation.client) {
            return refuse(
                Rule::Inconsistent,
                "retire_key_ids",
                format!("{key} is not a key of client {:?}", rotation.client),
            );
        }
    }
    Ok(())
}

/// The append-time checks on top of [`check_event`]: the event is dated
/// within the policy's clock bounds around `now_s`, and nothing it relies on
/// may be revoked, retired, unanchored or expired at `now_s`.
/// The ids the configuration reserves (federated authorization servers,
/// revocation delegates) are registered by a trust root only: an
/// authorization server that took one first would lock the real one out,
/// or speak with its authority. At append only, so a ledger whose delegate
/// an authorization server registered before this rule keeps it (and the
/// revocations it signed) on rebuild.
fn not_reserved<E>(policy: &Policy, signer: &Signer, reg: &ClientRegistered) -> Checked<(), E> {
    match (signer, policy.reserved_for(&reg.client)) {
        (Signer::Client { .. }, Some(reserved)) => refuse(
            Rule::Unauthorized,
            "client_id",
            format!(
                "{:?} is reserved by the configuration ({reserved}): only a trust-root key registers it",
                reg.client
            ),
        ),
        _ => Ok(()),
    }
}

/// A new registration's proofs of possession name its registrar (key-proof
/// v2): a v1 proof names only the client, so anyone it was shown to (a
/// registrar it was meant for) could register the client first under
/// another authorization server. At append only: registrations made before
/// v2 carry v1 proofs and replay as they were.
fn registration_proofs_name_the_registrar<E>(reg: &ClientRegistered) -> Checked<(), E> {
    let registrar = reg.registered_by.as_ref();
    for (i, (key, proof)) in reg.public_keys.iter().zip(&reg.key_proofs).enumerate() {
        if !key.verify_registration(&reg.client, registrar, proof) {
            return refuse(
                Rule::Signature,
                "public_key_proofs",
                format!(
                    "[{i}] does not prove possession of {} for client {:?} registered by {}: make it with `baton pubkey KEYFILE --proof-for {} {}` (a proof naming only the client, key-proof v1, is refused: it would let any registrar take the client)",
                    key.key_id(),
                    reg.client,
                    registrar.map_or_else(
                        || "a trust root".to_owned(),
                        |r| format!("{:?}", r.as_str())
                    ),
                    reg.client,
                    registrar.map_or_else(
                        || "--by-trust-root".to_owned(),
                        |r| format!("--registrar {r}")
                    ),
                ),
            );
        }
    }
    Ok(())
}

/// A revocation names a client or subject as the ledger knows it: one that
/// is unknown as written but known in another case is refused, naming the
/// known one (revoking `user:ALICE@example.com` must not silently miss
/// `user:alice@example.com`). At append only: whether a subject is known
/// depends on grants in other partitions, which projectors read in no fixed
/// order, and a projector's verdict must not depend on that order.
fn named_as_known<V: LedgerView>(view_: &V, target: &RevocationTarget) -> Checked<(), V::Error> {
    let (kind, noun, name) = match target {
        RevocationTarget::Client(client) => (NameKind::Client, "client", client.as_str()),
        RevocationTarget::Subject(subject) => (NameKind::Subject, "subject", subject.as_str()),
        RevocationTarget::Token(_) | RevocationTarget::Key(_) => return Ok(()),
    };
    match view(view_.case_variant(kind, name))? {
        Some(known) if known != name => refuse(
            Rule::Inconsistent,
            "target",
            format!(
                "names {noun} {:?}, which the ledger does not know, but it knows {known:?}: names are compared as written; name the {noun} exactly",
                crate::echo(name)
            ),
        ),
        _ => Ok(()),
    }
}

pub fn check_live<V: LedgerView>(
    policy: &Policy,
    view_: &V,
    signer: &Signer,
    event: &Event,
    now_s: i64,
) -> Checked<(), V::Error> {
    check_dates(policy, event, now_s)?;
    match &event.body {
        Body::Revoked(revoked) => named_as_known(view_, &revoked.target)?,
        Body::ClientRegistered(reg) => {
            not_reserved(policy, signer, reg)?;
            registration_proofs_name_the_registrar(reg)?;
        }
        _ => {}
    }
    let key = signer.key();
    match view(view_.key_trust(policy, &key))? {
        KeyTrust::Trusted => {}
        KeyTrust::Revoked { key: revoked, by } => {
            return refuse(
                Rule::Revoked,
                "signer_key_id",
                format!(
                    "{key} is untrusted: key {revoked} (on its binding chain) is revoked by {by}"
                ),
            );
        }
        KeyTrust::Unanchored { key: top } => {
            return refuse(
                Rule::Revoked,
                "signer_key_id",
                format!(
                    "{key} is untrusted: its binding chain ends at {top}, which is not a configured trust root"
                ),
            );
        }
    }
    if view(view_.key_retired(&key))? {
        return refuse(
            Rule::Revoked,
            "signer_key_id",
            format!("{key} was retired by a rotation"),
        );
    }
    if let Some(client) = signer.client() {
        not_revoked(
            view_,
            "signer_key_id",
            RevocationTarget::Client(client.clone()),
        )?;
    }
    match &event.body {
        Body::TokenIssued(issued) => {
            not_revoked(
                view_,
                "holder",
                RevocationTarget::Client(issued.holder.clone()),
            )?;
            not_revoked(
                view_,
                "subject",
                RevocationTarget::Subject(issued.subject.clone()),
            )?;
        }
        Body::ScopeNarrowed(hop) => {
            not_revoked(
                view_,
                "holder",
                RevocationTarget::Client(hop.holder.clone()),
            )?;
            match view(token_status(view_, policy, &hop.parent, now_s))? {
                TokenStatus::Active { .. } => {}
                TokenStatus::Revoked(cause) => {
                    return refuse(
                        Rule::Revoked,
                        "parent_event_id",
                        format!("parent {} is revoked: {cause}", hop.parent),
                    );
                }
                TokenStatus::Expired { expired_at_s } => {
                    return refuse(
                        Rule::Expired,
                        "parent_event_id",
                        format!("parent {} expired at {expired_at_s}", hop.parent),
                    );
                }
                other => {
                    return missing(
                        Dependency::Event(hop.parent),
                        "parent_event_id",
                        format!("parent {} is {other:?}", hop.parent),
                    );
                }
            }
        }
        Body::ClientRegistered(_) | Body::Revoked(_) | Body::KeysRotated(_) => {}
    }
    Ok(())
}

/// The clock bounds of an append: `created_at` at most
/// `created_at_skew_max_ms` ahead of `now_s` and at most
/// `created_at_age_max_ms` behind it; a token not issued in the future (same
/// skew), not issued more than `created_at_age_max_ms` before the event that
/// records it was created (a grant made now cannot claim a past), and not
/// already expired.
fn check_dates<E>(policy: &Policy, event: &Event, now_s: i64) -> Checked<(), E> {
    let now_ms = now_s.saturating_mul(1000);
    let ahead_ms = event.created_at_ms.saturating_sub(now_ms);
    if ahead_ms > policy.created_at_skew_max_ms {
        return refuse(
            Rule::FutureDated,
            "created_at_unix_ms",
            format!(
                "{} is {ahead_ms} ms ahead of this node's clock ({now_ms}); at most {} ms is allowed",
                event.created_at_ms, policy.created_at_skew_max_ms
            ),
        );
    }
    // A revocation is never harmful late: one signed ahead of time (an
    // emergency revocation kept ready) is taken whenever it comes.
    let behind_ms = now_ms.saturating_sub(event.created_at_ms);
    let revocation = matches!(event.body, Body::Revoked(_));
    if behind_ms > policy.created_at_age_max_ms && !revocation {
        return refuse(
            Rule::BackDated,
            "created_at_unix_ms",
            format!(
                "{} is {behind_ms} ms behind this node's clock ({now_ms}); at most {} ms is allowed",
                event.created_at_ms, policy.created_at_age_max_ms
            ),
        );
    }
    let token_dates = match &event.body {
        Body::TokenIssued(issued) => Some((issued.issued_at_s, issued.expires_at_s)),
        Body::ScopeNarrowed(hop) => Some((hop.issued_at_s, hop.expires_at_s)),
        _ => None,
    };
    if let Some((issued_at_s, expires_at_s)) = token_dates {
        let ahead_ms = issued_at_s.saturating_mul(1000).saturating_sub(now_ms);
        if ahead_ms > policy.created_at_skew_max_ms {
            return refuse(
                Rule::FutureDated,
                "issued_at_unix_s",
                format!(
                    "{issued_at_s} is {ahead_ms} ms ahead of this node's clock ({now_s}); at most {} ms is allowed",
                    policy.created_at_skew_max_ms
                ),
            );
        }
        let before_ms = event
            .created_at_ms
            .saturating_sub(issued_at_s.saturating_mul(1000));
        if before_ms > policy.created_at_age_max_ms {
            return refuse(
                Rule::BackDated,
                "issued_at_unix_s",
                format!(
                    "{issued_at_s} is {before_ms} ms before the event's created_at ({}); at most {} ms is allowed",
                    event.created_at_ms, policy.created_at_age_max_ms
                ),
            );
        }
        if expires_at_s <= now_s {
            return refuse(
                Rule::Expired,
                "expires_at_unix_s",
                format!("{expires_at_s} is not after now ({now_s})"),
            );
        }
    }
    Ok(())
}

fn not_revoked<V: LedgerView>(
    view_: &V,
    field: &'static str,
    target: RevocationTarget,
) -> Checked<(), V::Error> {
    match view(view_.revocation(&target))? {
        None => Ok(()),
        Some(by) => refuse(Rule::Revoked, field, format!("{target} is revoked by {by}")),
    }
}
