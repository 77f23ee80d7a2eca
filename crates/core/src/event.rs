//! The delegation events as plain Rust types. They derive no wire traits: the
//! protobuf form lives in `baton-proto`, which converts explicitly and is the
//! only place that knows field numbers.

use std::collections::BTreeSet;

use crate::error::{Dependency, Error, Result};
use crate::ids::{ClientId, EventId, Name, Subject, TokenRef, check_text};
use crate::keys::{KeyId, PublicKey};
use crate::limits::{LIST_LEN_MAX, TEXT_LEN_MAX};

/// One decoded, not yet checked, event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The key that signed it; must equal the envelope's key id.
    pub signer: KeyId,
    pub created_at_ms: i64,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    ClientRegistered(ClientRegistered),
    TokenIssued(TokenIssued),
    ScopeNarrowed(ScopeNarrowed),
    Revoked(Revoked),
    KeysRotated(KeysRotated),
}

impl Body {
    pub fn kind(&self) -> EventKind {
        match self {
            Body::ClientRegistered(_) => EventKind::ClientRegistered,
            Body::TokenIssued(_) => EventKind::TokenIssued,
            Body::ScopeNarrowed(_) => EventKind::ScopeNarrowed,
            Body::Revoked(_) => EventKind::Revoked,
            Body::KeysRotated(_) => EventKind::KeysRotated,
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }

    /// The root of the delegation tree this event belongs to, given its own id:
    /// a root grant is its own root, a hop names its root. Other events belong to
    /// no tree (a token revocation's tree is found by looking the token up).
    pub fn tree_root(&self, own_id: EventId) -> Option<EventId> {
        match &self.body {
            Body::TokenIssued(_) => Some(own_id),
            Body::ScopeNarrowed(hop) => Some(hop.root),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ClientRegistered,
    TokenIssued,
    ScopeNarrowed,
    Revoked,
    KeysRotated,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::ClientRegistered,
        EventKind::TokenIssued,
        EventKind::ScopeNarrowed,
        EventKind::Revoked,
        EventKind::KeysRotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ClientRegistered => "client_registered",
            EventKind::TokenIssued => "token_issued",
            EventKind::ScopeNarrowed => "scope_narrowed",
            EventKind::Revoked => "revoked",
            EventKind::KeysRotated => "keys_rotated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    McpClient,
    Gateway,
    McpServer,
    AuthorizationServer,
    Service,
}

/// The identity-control-point role: may this client mint tokens for the next hop?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientRole {
    ToolEndpoint,
    DelegatingLayer,
    MixedTrustBoundary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationMethod {
    PreRegistered,
    /// RFC 7591.
    Dynamic,
    /// A client-ID metadata document.
    MetadataDocument,
    StaticApiKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCodePkce,
    DeviceCode,
    ClientCredentials,
    ApiKey,
    RefreshToken,
}

impl GrantType {
    /// Grants made with a static credential act for the client itself, never for a user.
    pub fn is_static(self) -> bool {
        matches!(self, GrantType::ClientCredentials | GrantType::ApiKey)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistered {
    pub client: ClientId,
    pub kind: ClientKind,
    pub role: ClientRole,
    pub registration: RegistrationMethod,
    pub metadata_document_url: Option<String>,
    pub public_keys: Vec<PublicKey>,
    /// Per key, in order: its proof of possession for this client.
    pub key_proofs: Vec<[u8; 64]>,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    /// `None` when a trust-root key registers.
    pub registered_by: Option<ClientId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssued {
    pub token: TokenRef,
    pub subject: Subject,
    pub issuer: ClientId,
    pub holder: ClientId,
    pub audience: String,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    pub grant: GrantType,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
    pub session_id: Option<String>,
    pub transaction_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeNarrowed {
    pub token: TokenRef,
    pub parent: EventId,
    pub root: EventId,
    pub depth: u32,
    pub performed_by: ClientId,
    pub on_behalf_of: Subject,
    pub holder: ClientId,
    pub audience: String,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
    pub transaction_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevocationTarget {
    Token(TokenRef),
    Client(ClientId),
    Subject(Subject),
    Key(KeyId),
}

impl std::fmt::Display for RevocationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RevocationTarget::Token(t) => write!(f, "token {t}"),
            RevocationTarget::Client(c) => write!(f, "client {c:?}"),
            RevocationTarget::Subject(s) => write!(f, "subject {s:?}"),
            RevocationTarget::Key(k) => write!(f, "key {k}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub target: RevocationTarget,
    pub reason: String,
    /// `None` when a trust-root key revokes.
    pub revoked_by: Option<ClientId>,
    /// The client that asked for this revocation, when `revoked_by` signed
    /// it for another (a node's RFC 7009 endpoint): then `revoked_by` must be
    /// one of the policy's revocation delegates, and what may be revoked is
    /// what `requested_by` could revoke by signing itself.
    pub requested_by: Option<ClientId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysRotated {
    pub client: ClientId,
    pub add: Vec<PublicKey>,
    /// Per added key, in order: its proof of possession for this client.
    pub add_proofs: Vec<[u8; 64]>,
    pub retire: Vec<KeyId>,
}

/// Reads a list of scope or tool names: bounded, each valid, no duplicates.
pub fn names<S: AsRef<str>>(field: &str, values: &[S]) -> Result<BTreeSet<Name>> {
    if values.len() > LIST_LEN_MAX {
        return Err(Error::invalid(
            field,
            format!("has {} entries, more than {LIST_LEN_MAX}", values.len()),
        ));
    }
    let mut out = BTreeSet::new();
    for (i, value) in values.iter().enumerate() {
        // The indexed field name is only made for a refusal.
        let name = Name::new(field, value.as_ref()).map_err(|refused| crate::invalid::Invalid {
            field: format!("{field}[{i}]"),
            ..refused
        })?;
        if !out.insert(name) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("{:?} is listed twice", value.as_ref()),
            ));
        }
    }
    Ok(out)
}

/// An RFC 8707 resource indicator: an absolute URI without a fragment.
pub fn audience(field: &str, value: &str) -> Result<String> {
    check_text(field, value, TEXT_LEN_MAX)?;
    let scheme_ok = value.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return Err(Error::invalid(
            field,
            format!("{value:?} is not an absolute URI"),
        ));
    }
    if value.contains('#') || value.contains(char::is_whitespace) {
        return Err(Error::invalid(
            field,
            format!("{value:?} must have no fragment and no white space"),
        ));
    }
    Ok(value.to_owned())
}

/// An optional bounded text: empty means absent.
pub fn optional_text(field: &str, value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    check_text(field, value, TEXT_LEN_MAX)?;
    Ok(Some(value.to_owned()))
}

impl Dependency {
    /// Everything applying event `id` supplies that another event may wait
    /// for: over-approximating costs a retry, never an outcome.
    pub fn supplied_by(id: EventId, event: &Event) -> Vec<Dependency> {
        let mut out = vec![Dependency::Event(id)];
        match &event.body {
            Body::ClientRegistered(reg) => {
                out.push(Dependency::Client(reg.client.clone()));
                out.extend(reg.public_keys.iter().map(|k| Dependency::Key(k.key_id())));
            }
            Body::KeysRotated(rotation) => {
                out.push(Dependency::Client(rotation.client.clone()));
                out.extend(rotation.add.iter().map(|k| Dependency::Key(k.key_id())));
            }
            Body::TokenIssued(issued) => out.push(Dependency::Token(issued.token.clone())),
            Body::ScopeNarrowed(hop) => out.push(Dependency::Token(hop.token.clone())),
            Body::Revoked(_) => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_duplicates_and_long_lists() {
        let err = names("scopes", &["a", "b", "a"]).unwrap_err();
        assert_eq!(err.to_string(), "scopes[2]: \"a\" is listed twice");
        let many: Vec<String> = (0..=LIST_LEN_MAX).map(|i| format!("s{i}")).collect();
        assert_eq!(
            names("tools", &many).unwrap_err().to_string(),
            "tools: has 257 entries, more than 256"
        );
    }

    #[test]
    fn audiences_are_absolute_uris() {
        assert!(audience("audience", "https://mcp.example.com/github").is_ok());
        assert!(audience("audience", "urn:example:server").is_ok());
        assert!(audience("audience", "mcp.example.com").is_err());
        assert!(audience("audience", "https://a.example/#frag").is_err());
        assert!(audience("audience", "").is_err());
    }
}
