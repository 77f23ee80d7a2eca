//! The ledger's state as the rules read it: the node's [`Policy`], the
//! records events leave behind (keys, clients, tokens), and [`LedgerView`],
//! the read access the in-memory ledger and the sled projection both give.
//! The rules (`rules.rs`) and the status walk (`status.rs`) both depend on
//! this module, and not on each other's internals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::event::{
    ClientKind, ClientRegistered, ClientRole, GrantType, RegistrationMethod, RevocationTarget,
    ScopeNarrowed, TokenIssued,
};
use crate::ids::{ClientId, EventId, Name, Subject, TokenRef};
use crate::keys::{KeyId, PublicKey};
use crate::limits::{DEPTH_MAX_CEILING, DEPTH_MAX_DEFAULT};

/// Node configuration the rules depend on. Every practitioner rule is on by
/// default and can be switched off; the depth bound is capped at
/// [`DEPTH_MAX_CEILING`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Keys allowed to register authorization servers (and anything else).
    pub trust_roots: BTreeMap<KeyId, PublicKey>,
    pub depth_max: u32,
    /// Only delegating layers, mixed trust boundaries and authorization servers sign hops.
    pub require_delegating_role: bool,
    /// Static-key grants act for the client itself and never carry a user.
    pub static_grants_client_only: bool,
    /// Tokens stay within their holder's registered ceiling of scopes and tools.
    pub enforce_ceiling: bool,
    /// How far an event's `created_at` may be ahead of the appending node's
    /// clock. Checked at append only ([`check_live`]): a projector's verdict
    /// must not depend on when it replays.
    pub created_at_skew_max_ms: i64,
    /// How far an event's `created_at` may be behind the appending node's
    /// clock (append only, like the skew).
    pub created_at_age_max_ms: i64,
    /// Authorization servers whose authority spans the whole ledger (a
    /// federation): they act on what other authorization servers registered
    /// and issued, and revoke subjects. Empty by default.
    pub federated: BTreeSet<ClientId>,
    /// Clients that may sign a revocation on behalf of another client (the
    /// `requested_by` of a `Revoked` event): the key a node's RFC 7009
    /// endpoint signs with. Empty by default.
    pub revocation_delegates: BTreeSet<ClientId>,
}

impl Policy {
    pub fn new(trust_roots: impl IntoIterator<Item = PublicKey>) -> Self {
        Policy {
            trust_roots: trust_roots.into_iter().map(|k| (k.key_id(), k)).collect(),
            depth_max: DEPTH_MAX_DEFAULT,
            require_delegating_role: true,
            static_grants_client_only: true,
            enforce_ceiling: true,
            created_at_skew_max_ms: crate::limits::CREATED_AT_SKEW_MAX_MS_DEFAULT,
            created_at_age_max_ms: crate::limits::CREATED_AT_AGE_MAX_MS_DEFAULT,
            federated: BTreeSet::new(),
            revocation_delegates: BTreeSet::new(),
        }
    }

    /// What the configuration reserves `client` for, if anything: the id of
    /// a federated authorization server or of a revocation delegate, which
    /// only a trust root registers (an authorization server that took the
    /// name first would lock the real one out, or speak with its authority).
    /// Compared by [`fold`]: a case variant of a reserved id would lock the
    /// real one out just the same (client ids are unique under it).
    pub fn reserved_for(&self, client: &ClientId) -> Option<&'static str> {
        let folded = fold(client.as_str());
        let among = |ids: &BTreeSet<ClientId>| ids.iter().any(|id| fold(id.as_str()) == folded);
        if among(&self.federated) {
            Some("a federated authorization server, rules.federated_authorization_servers")
        } else if among(&self.revocation_delegates) {
            Some("a revocation delegate, rules.revocation_delegates")
        } else {
            None
        }
    }

    pub fn depth_max(&self) -> u32 {
        self.depth_max.min(DEPTH_MAX_CEILING)
    }

    /// A short hash of everything [`crate::check_event`]'s verdicts depend on
    /// besides the ledger: [`RULES_VERSION`] and the configuration (trust
    /// roots, depth bound, practitioner switches, federation). Not the
    /// append-time clock bounds, which no projector applies. Two projections
    /// of one log with the same fingerprint hold the same verdicts.
    pub fn fingerprint(&self) -> String {
        let mut hasher = blake3::Hasher::new_derive_key("baton.v1 rules fingerprint");
        hasher.update(&RULES_VERSION.to_be_bytes());
        for key in self.trust_roots.keys() {
            hasher.update(&key.0);
        }
        hasher.update(&self.depth_max().to_be_bytes());
        hasher.update(&[
            u8::from(self.require_delegating_role),
            u8::from(self.static_grants_client_only),
            u8::from(self.enforce_ceiling),
        ]);
        for client in &self.federated {
            hasher.update(client.as_str().as_bytes());
            hasher.update(&[0]);
        }
        hasher.update(&[1]);
        for client in &self.revocation_delegates {
            hasher.update(client.as_str().as_bytes());
            hasher.update(&[0]);
        }
        hex::encode(&hasher.finalize().as_bytes()[..8])
    }
}

/// The version of the rules [`crate::check_event`] applies; bump it whenever a
/// change would give another verdict on some event, so every projection is
/// re-derived under the new rules (see [`Policy::fingerprint`]).
pub const RULES_VERSION: u32 = 6;

/// A public key bound to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub client: ClientId,
    pub public_key: PublicKey,
    /// The registration or rotation event that bound it.
    pub bound_by: EventId,
    /// The key that signed that event: revoking it distrusts this binding
    /// too, and so everything this key signed.
    pub bound_by_key: KeyId,
}

/// A registered client as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client: ClientId,
    pub kind: ClientKind,
    pub role: ClientRole,
    pub registration: RegistrationMethod,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    pub registered_by: Option<ClientId>,
    pub event: EventId,
}

impl ClientRecord {
    pub fn from_event(event: EventId, reg: &ClientRegistered) -> Self {
        ClientRecord {
            client: reg.client.clone(),
            kind: reg.kind,
            role: reg.role,
            registration: reg.registration,
            scopes: reg.scopes.clone(),
            tools: reg.tools.clone(),
            registered_by: reg.registered_by.clone(),
            event,
        }
    }

    pub(crate) fn may_delegate(&self) -> bool {
        self.kind == ClientKind::AuthorizationServer
            || matches!(
                self.role,
                ClientRole::DelegatingLayer | ClientRole::MixedTrustBoundary
            )
    }
}

/// One link of a chain: a root grant (depth 0) or a hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub event: EventId,
    pub token: TokenRef,
    pub parent: Option<EventId>,
    pub root: EventId,
    pub depth: u32,
    pub subject: Subject,
    pub holder: ClientId,
    /// The issuer of a root grant, the acting client of a hop.
    pub performed_by: ClientId,
    pub signer: KeyId,
    pub audience: String,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    /// The root grant's type, inherited by every hop.
    pub grant: GrantType,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
}

impl TokenRecord {
    pub fn root(event: EventId, signer: KeyId, issued: &TokenIssued) -> Self {
        TokenRecord {
            event,
            token: issued.token.clone(),
            parent: None,
            root: event,
            depth: 0,
            subject: issued.subject.clone(),
            holder: issued.holder.clone(),
            performed_by: issued.issuer.clone(),
            signer,
            audience: issued.audience.clone(),
            scopes: issued.scopes.clone(),
            tools: issued.tools.clone(),
            grant: issued.grant,
            issued_at_s: issued.issued_at_s,
            expires_at_s: issued.expires_at_s,
        }
    }

    pub fn hop(event: EventId, signer: KeyId, hop: &ScopeNarrowed, grant: GrantType) -> Self {
        TokenRecord {
            event,
            token: hop.token.clone(),
            parent: Some(hop.parent),
            root: hop.root,
            depth: hop.depth,
            subject: hop.on_behalf_of.clone(),
            holder: hop.holder.clone(),
            performed_by: hop.performed_by.clone(),
            signer,
            audience: hop.audience.clone(),
            scopes: hop.scopes.clone(),
            tools: hop.tools.clone(),
            grant,
            issued_at_s: hop.issued_at_s,
            expires_at_s: hop.expires_at_s,
        }
    }
}

/// Read access to ledger state: the in-memory ledger and the sled projection
/// both implement it, so both run exactly these rules.
pub trait LedgerView {
    type Error;
    /// Whether the event with this id has been applied.
    fn contains_event(&self, id: &EventId) -> Result<bool, Self::Error>;
    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Self::Error>;
    /// Whether a key was retired by a rotation (it may sign nothing new).
    fn key_retired(&self, id: &KeyId) -> Result<bool, Self::Error>;
    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Self::Error>;
    /// A token's record, shared: a store that caches records hands out the
    /// cached one, so a status walk copies nothing.
    fn token(&self, event: &EventId) -> Result<Option<Arc<TokenRecord>>, Self::Error>;
    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>, Self::Error>;
    /// The revocation of `target`, if any: the smallest event id among those
    /// that revoke it, so the answer does not depend on arrival order.
    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>, Self::Error>;

    /// Whether `key` may be trusted: [`crate::key_trust`], which a store may
    /// cache.
    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust, Self::Error>;

    /// A known name of `kind` (a registered client id, a token's subject)
    /// that [`fold`]s like `name`: `name` itself when it is known exactly,
    /// else the least such name, else `None`.
    fn case_variant(&self, kind: NameKind, name: &str) -> Result<Option<String>, Self::Error>;
}

/// The kinds of name the ledger compares by [`fold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    /// A registered client id.
    Client,
    /// The subject of a root grant (a hop's is its root's).
    Subject,
}

impl NameKind {
    /// A byte naming the kind in stored keys.
    pub fn code(self) -> u8 {
        match self {
            NameKind::Client => b'c',
            NameKind::Subject => b's',
        }
    }
}

/// How names that differ only in case are found: the Unicode lowercase
/// mapping of the (NFKC) name, with final sigma as sigma (`to_lowercase`
/// maps a word-final `Σ` to `ς`, so `ΑΣ` and `ασ` would fold apart). Client
/// ids are unique under it; subjects are compared exactly (an OpenID `sub`
/// is case-sensitive), and a revocation naming a subject or client that is
/// unknown as written but known in another case is refused.
pub fn fold(name: &str) -> String {
    name.to_lowercase().replace('ς', "σ")
}

/// Whether a signing key may be trusted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTrust {
    /// Bound, binding by binding, to a configured trust root, and nothing on
    /// the way is revoked.
    Trusted,
    /// `key` (the key itself or one on its binding chain, nearest first) is
    /// revoked by event `by`.
    Revoked { key: KeyId, by: EventId },
    /// The chain does not reach a configured trust root within
    /// [`crate::BINDING_CHAIN_MAX`] bindings: a trust root was removed from the
    /// configuration, or a binding is missing. Never trusted.
    Unanchored { key: KeyId },
}

impl<T: LedgerView> LedgerView for &T {
    type Error = T::Error;
    fn key_trust(&self, policy: &Policy, key: &KeyId) -> Result<KeyTrust, Self::Error> {
        (**self).key_trust(policy, key)
    }
    fn contains_event(&self, id: &EventId) -> Result<bool, Self::Error> {
        (**self).contains_event(id)
    }
    fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Self::Error> {
        (**self).key(id)
    }
    fn key_retired(&self, id: &KeyId) -> Result<bool, Self::Error> {
        (**self).key_retired(id)
    }
    fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Self::Error> {
        (**self).client(id)
    }
    fn token(&self, event: &EventId) -> Result<Option<Arc<TokenRecord>>, Self::Error> {
        (**self).token(event)
    }
    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<EventId>, Self::Error> {
        (**self).token_by_ref(token)
    }
    fn revocation(&self, target: &RevocationTarget) -> Result<Option<EventId>, Self::Error> {
        (**self).revocation(target)
    }
    fn case_variant(&self, kind: NameKind, name: &str) -> Result<Option<String>, Self::Error> {
        (**self).case_variant(kind, name)
    }
}
