//! Event builders and the signer: the one place events are assembled and
//! signed (the CLI, the test kit, the load generator and the token-exchange
//! helper all build on it).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use baton_core::{
    Body, ClientId, ClientKind, ClientRegistered, ClientRole, Envelope, Event, EventId, GrantType,
    KeyId, KeysRotated, Name, PublicKey, RegistrationMethod, RevocationTarget, Revoked,
    ScopeNarrowed, SigningKey, Subject, TokenRef,
};

use crate::{Error, Result};

/// Unix time now: (seconds, milliseconds).
pub fn now() -> (i64, i64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.as_millis() as i64)
}

/// Signs events with one key. Made from a key file (never an inline key);
/// [`Signer::from_key`] is for a key this process made itself.
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// The key of a key file (`baton keygen`; mode 0600).
    pub fn from_key_file(path: &Path) -> Result<Signer> {
        Ok(Signer {
            key: crate::keys::load(path)?,
        })
    }

    /// A key this process generated (tests, a key about to be written).
    pub fn from_key(key: SigningKey) -> Signer {
        Signer { key }
    }

    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// This key bound to `client` by a rotation: its public half and proof
    /// of possession.
    pub fn bound_to(&self, client: &ClientId) -> (PublicKey, [u8; 64]) {
        (self.key.public_key(), self.key.prove_possession(client))
    }

    /// This key registered to `client` by `registrar` (`None`: a trust
    /// root): its public half and the proof naming both, as a registration
    /// carries it.
    pub fn registered_by(
        &self,
        client: &ClientId,
        registrar: Option<&ClientId>,
    ) -> (PublicKey, [u8; 64]) {
        (
            self.key.public_key(),
            self.key.prove_registration(client, registrar),
        )
    }

    /// Signs `body`, created now.
    pub fn sign(&self, body: Body) -> Result<Envelope> {
        self.sign_at(body, now().1)
    }

    /// Signs `body`, created at `created_at_ms`.
    pub fn sign_at(&self, body: Body, created_at_ms: i64) -> Result<Envelope> {
        Ok(baton_proto::sign(&self.key, created_at_ms, body)?)
    }
}

/// Scope or tool names from a list (each trimmed; commas split; empties
/// dropped), refused naming `field` and the rule.
pub fn names<S: AsRef<str>>(field: &str, values: &[S]) -> Result<BTreeSet<Name>> {
    let flat: Vec<&str> = values
        .iter()
        .flat_map(|v| v.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    Ok(baton_core::names(field, &flat)?)
}

/// A client's registration, pre-registered (set `registration` and
/// `metadata_document_url` on the result for other methods).
#[allow(clippy::too_many_arguments)]
pub fn register(
    client: ClientId,
    kind: ClientKind,
    role: ClientRole,
    keys: &[(PublicKey, [u8; 64])],
    scopes: BTreeSet<Name>,
    tools: BTreeSet<Name>,
    registered_by: Option<ClientId>,
) -> Body {
    Body::ClientRegistered(ClientRegistered {
        client,
        kind,
        role,
        registration: RegistrationMethod::PreRegistered,
        metadata_document_url: None,
        public_keys: keys.iter().map(|(key, _)| *key).collect(),
        key_proofs: keys.iter().map(|(_, proof)| *proof).collect(),
        scopes,
        tools,
        registered_by,
    })
}

/// A token a hop narrows from: what the next link must name and stay within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub token: TokenRef,
    /// Its event.
    pub event: EventId,
    /// Its tree's root grant.
    pub root: EventId,
    pub depth: u32,
    pub subject: Subject,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
}

impl Parent {
    /// The token of a root grant or hop event (None for other events).
    pub fn of(envelope: &Envelope, event: &Event) -> Option<Parent> {
        Parent::of_body(envelope.id(), &event.body)
    }

    /// The token of the root grant or hop `body` of event `id`.
    pub fn of_body(id: EventId, body: &Body) -> Option<Parent> {
        match body {
            Body::TokenIssued(t) => Some(Parent {
                token: t.token.clone(),
                event: id,
                root: id,
                depth: 0,
                subject: t.subject.clone(),
                scopes: t.scopes.clone(),
                tools: t.tools.clone(),
                issued_at_s: t.issued_at_s,
                expires_at_s: t.expires_at_s,
            }),
            Body::ScopeNarrowed(n) => Some(Parent {
                token: n.token.clone(),
                event: id,
                root: n.root,
                depth: n.depth,
                subject: n.on_behalf_of.clone(),
                scopes: n.scopes.clone(),
                tools: n.tools.clone(),
                issued_at_s: n.issued_at_s,
                expires_at_s: n.expires_at_s,
            }),
            _ => None,
        }
    }

    /// The leaf of a chain (root grant first), as the node's GetChain
    /// returns it.
    pub fn of_chain(chain: &[(Envelope, Event)]) -> Option<Parent> {
        chain
            .iter()
            .rev()
            .find_map(|(envelope, event)| Parent::of(envelope, event))
    }

    /// A child's lifetime from `now_s` for `ttl_s`, within this token's:
    /// issued no earlier than it, expiring no later.
    pub fn lifetime(&self, now_s: i64, ttl_s: i64) -> (i64, i64) {
        (
            now_s.max(self.issued_at_s),
            now_s.saturating_add(ttl_s).min(self.expires_at_s),
        )
    }

    /// The hop that exchanges this token for `hop.token`, living from
    /// `issued_at_s` to `expires_at_s`: the right parent, root, depth and
    /// subject.
    pub fn narrow(&self, hop: Hop, issued_at_s: i64, expires_at_s: i64) -> Body {
        Body::ScopeNarrowed(ScopeNarrowed {
            token: hop.token,
            parent: self.event,
            root: self.root,
            depth: self.depth + 1,
            performed_by: hop.performed_by,
            on_behalf_of: self.subject.clone(),
            holder: hop.holder,
            audience: hop.audience,
            scopes: hop.scopes,
            tools: hop.tools,
            issued_at_s,
            expires_at_s,
            transaction_id: None,
        })
    }
}

/// What a hop makes: the new token, who exchanged (and signs), who holds it.
#[derive(Debug, Clone)]
pub struct Hop {
    pub token: TokenRef,
    pub performed_by: ClientId,
    pub holder: ClientId,
    pub audience: String,
    pub scopes: BTreeSet<Name>,
    pub tools: BTreeSet<Name>,
}

/// A revocation of `target` (and so of everything that depends on it);
/// `revoked_by` is None when a trust-root key signs.
pub fn revoke(target: RevocationTarget, reason: &str, revoked_by: Option<ClientId>) -> Body {
    Body::Revoked(Revoked {
        target,
        reason: reason.to_owned(),
        revoked_by,
        requested_by: None,
    })
}

/// Binds `add` (each with its proof of possession for `client`) to the
/// client and retires `retire`.
pub fn rotate(client: ClientId, add: &[(PublicKey, [u8; 64])], retire: Vec<KeyId>) -> Body {
    Body::KeysRotated(KeysRotated {
        client,
        add: add.iter().map(|(key, _)| *key).collect(),
        add_proofs: add.iter().map(|(_, proof)| *proof).collect(),
        retire,
    })
}

/// A kind from its CLI/config spelling.
pub fn client_kind(value: &str) -> Result<ClientKind> {
    Ok(match value {
        "mcp-client" => ClientKind::McpClient,
        "gateway" => ClientKind::Gateway,
        "mcp-server" => ClientKind::McpServer,
        "authorization-server" => ClientKind::AuthorizationServer,
        "service" => ClientKind::Service,
        other => {
            return Err(one_of(
                "kind",
                other,
                "mcp-client, gateway, mcp-server, authorization-server, service",
            ));
        }
    })
}

/// A role from its CLI/config spelling.
pub fn client_role(value: &str) -> Result<ClientRole> {
    Ok(match value {
        "tool-endpoint" => ClientRole::ToolEndpoint,
        "delegating-layer" => ClientRole::DelegatingLayer,
        "mixed-trust-boundary" => ClientRole::MixedTrustBoundary,
        other => {
            return Err(one_of(
                "role",
                other,
                "tool-endpoint, delegating-layer, mixed-trust-boundary",
            ));
        }
    })
}

/// A registration method from its CLI/config spelling.
pub fn registration_method(value: &str) -> Result<RegistrationMethod> {
    Ok(match value {
        "pre-registered" => RegistrationMethod::PreRegistered,
        "dynamic" => RegistrationMethod::Dynamic,
        "metadata-document" => RegistrationMethod::MetadataDocument,
        "static-api-key" => RegistrationMethod::StaticApiKey,
        other => {
            return Err(one_of(
                "registration",
                other,
                "pre-registered, dynamic, metadata-document, static-api-key",
            ));
        }
    })
}

/// A grant type's CLI/config spelling (the inverse of [`grant_type`]).
pub fn grant_type_name(grant: GrantType) -> &'static str {
    match grant {
        GrantType::AuthorizationCodePkce => "authorization-code-pkce",
        GrantType::DeviceCode => "device-code",
        GrantType::ClientCredentials => "client-credentials",
        GrantType::ApiKey => "api-key",
        GrantType::RefreshToken => "refresh-token",
    }
}

/// A grant type from its CLI/config spelling.
pub fn grant_type(value: &str) -> Result<GrantType> {
    Ok(match value {
        "authorization-code-pkce" => GrantType::AuthorizationCodePkce,
        "device-code" => GrantType::DeviceCode,
        "client-credentials" => GrantType::ClientCredentials,
        "api-key" => GrantType::ApiKey,
        "refresh-token" => GrantType::RefreshToken,
        other => {
            return Err(one_of(
                "grant",
                other,
                "authorization-code-pkce, device-code, client-credentials, api-key, refresh-token",
            ));
        }
    })
}

fn one_of(field: &'static str, value: &str, allowed: &str) -> Error {
    Error::Config {
        field,
        reason: format!("{:?} is not one of {allowed}", baton_core::echo(value)),
    }
}
