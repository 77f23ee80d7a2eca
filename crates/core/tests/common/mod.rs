//! Test-only fixtures: a small world of keys and clients, and builders that sign
//! events. Keys come from fixed seeds (marked test-only) so failures reproduce.
//!
//! The core does not encode events (that is `baton-proto`'s job), so these
//! tests sign the event's `Debug` text as its payload: unique per event, which
//! is all the rules need, since they check the signature over whatever bytes
//! the envelope holds.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;

use baton_core::{
    Body, ClientId, ClientKind, ClientRegistered, ClientRole, Envelope, Event, EventId, GrantType,
    KeyId, Name, PAYLOAD_TYPE_EVENT_V1, Policy, RegistrationMethod, RevocationTarget, Revoked,
    ScopeNarrowed, SigningKey, Subject, TokenIssued, TokenRef,
};

pub const SCOPES: [&str; 6] = [
    "files:read",
    "files:write",
    "repo:read",
    "repo:write",
    "mail:send",
    "admin",
];
pub const TOOLS: [&str; 6] = [
    "github/search",
    "github/delete_repo",
    "fs/read",
    "fs/write",
    "mail/send",
    "db/query",
];
pub const AS: &str = "as.example";
/// Clients by index: (id, kind, role, registration).
pub const CLIENTS: [(&str, ClientKind, ClientRole, RegistrationMethod); 5] = [
    (
        "gateway",
        ClientKind::Gateway,
        ClientRole::DelegatingLayer,
        RegistrationMethod::PreRegistered,
    ),
    (
        "server-a",
        ClientKind::McpServer,
        ClientRole::MixedTrustBoundary,
        RegistrationMethod::Dynamic,
    ),
    (
        "server-b",
        ClientKind::McpServer,
        ClientRole::ToolEndpoint,
        RegistrationMethod::MetadataDocument,
    ),
    (
        "agent",
        ClientKind::McpClient,
        ClientRole::DelegatingLayer,
        RegistrationMethod::Dynamic,
    ),
    (
        "batch-job",
        ClientKind::Service,
        ClientRole::ToolEndpoint,
        RegistrationMethod::StaticApiKey,
    ),
];

/// A test-only key from a fixed seed.
pub fn test_key(n: u8) -> SigningKey {
    SigningKey::from_seed(&[n; 32])
}

pub fn client(id: &str) -> ClientId {
    ClientId::new("client", id).unwrap()
}

pub fn subject(id: &str) -> Subject {
    Subject::new("subject", id).unwrap()
}

pub fn set(all: &[&str], mask: u8) -> BTreeSet<Name> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| Name::new("name", s).unwrap())
        .collect()
}

pub fn sign(key: &SigningKey, created_at_ms: i64, body: Body) -> (Envelope, Event) {
    let event = Event {
        signer: key.key_id(),
        created_at_ms,
        body,
    };
    let envelope = Envelope::sign(
        key,
        PAYLOAD_TYPE_EVENT_V1,
        format!("{event:?}").into_bytes(),
    )
    .unwrap();
    (envelope, event)
}

/// The trust root, an authorization server and five clients.
pub struct World {
    pub root: SigningKey,
    pub as_key: SigningKey,
    pub client_keys: Vec<SigningKey>,
    pub setup: Vec<(Envelope, Event)>,
    pub clock_ms: i64,
}

impl World {
    pub fn new() -> Self {
        let root = test_key(1);
        let as_key = test_key(2);
        let client_keys: Vec<SigningKey> =
            (0..CLIENTS.len()).map(|i| test_key(10 + i as u8)).collect();
        let mut world = World {
            root,
            as_key,
            client_keys,
            setup: Vec::new(),
            clock_ms: 0,
        };
        let as_reg = world.registration(
            AS,
            ClientKind::AuthorizationServer,
            ClientRole::DelegatingLayer,
            RegistrationMethod::PreRegistered,
            None,
            2,
        );
        let signed = world.signed_by_root(as_reg);
        world.setup.push(signed);
        for (i, (id, kind, role, registration)) in CLIENTS.iter().enumerate() {
            let reg = world.registration(id, *kind, *role, *registration, Some(AS), 10 + i as u8);
            let signed = sign(&world.as_key.clone(), world.tick(), reg);
            world.setup.push(signed);
        }
        world
    }

    pub fn policy(&self) -> Policy {
        Policy::new([self.root.public_key()])
    }

    pub fn tick(&mut self) -> i64 {
        self.clock_ms += 1;
        self.clock_ms
    }

    pub fn registration(
        &self,
        id: &str,
        kind: ClientKind,
        role: ClientRole,
        registration: RegistrationMethod,
        by: Option<&str>,
        seed: u8,
    ) -> Body {
        Body::ClientRegistered(ClientRegistered {
            client: client(id),
            kind,
            role,
            registration,
            metadata_document_url: (registration == RegistrationMethod::MetadataDocument)
                .then(|| format!("https://{id}.example/client.json")),
            public_keys: vec![test_key(seed).public_key()],
            key_proofs: vec![
                test_key(seed).prove_registration(&client(id), by.map(client).as_ref()),
            ],
            scopes: set(&SCOPES, 0xff),
            tools: set(&TOOLS, 0xff),
            registered_by: by.map(client),
        })
    }

    pub fn signed_by_root(&mut self, body: Body) -> (Envelope, Event) {
        let key = self.root.clone();
        sign(&key, self.tick(), body)
    }

    /// The key of a client by id (the authorization server included).
    pub fn key_of(&self, id: &str) -> SigningKey {
        if id == AS {
            return self.as_key.clone();
        }
        let i = CLIENTS
            .iter()
            .position(|c| c.0 == id)
            .expect("a fixture client");
        self.client_keys[i].clone()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &mut self,
        jti: &str,
        subject_: &str,
        holder: &str,
        scopes: u8,
        tools: u8,
        grant: GrantType,
        issued_at_s: i64,
        expires_at_s: i64,
    ) -> (Envelope, Event) {
        let body = Body::TokenIssued(TokenIssued {
            token: TokenRef::jti("token", jti).unwrap(),
            subject: subject(subject_),
            issuer: client(AS),
            holder: client(holder),
            audience: format!("https://{holder}.example/mcp"),
            scopes: set(&SCOPES, scopes),
            tools: set(&TOOLS, tools),
            grant,
            issued_at_s,
            expires_at_s,
            session_id: None,
            transaction_id: None,
        });
        let key = self.as_key.clone();
        sign(&key, self.tick(), body)
    }

    /// A hop from `parent` (its event id and record fields) performed by `performer`.
    #[allow(clippy::too_many_arguments)]
    pub fn narrow(
        &mut self,
        jti: &str,
        parent: EventId,
        root: EventId,
        depth: u32,
        on_behalf_of: &str,
        performer: &str,
        holder: &str,
        scopes: u8,
        tools: u8,
        issued_at_s: i64,
        expires_at_s: i64,
    ) -> (Envelope, Event) {
        let body = Body::ScopeNarrowed(ScopeNarrowed {
            token: TokenRef::jti("token", jti).unwrap(),
            parent,
            root,
            depth,
            performed_by: client(performer),
            on_behalf_of: subject(on_behalf_of),
            holder: client(holder),
            audience: format!("https://{holder}.example/mcp"),
            scopes: set(&SCOPES, scopes),
            tools: set(&TOOLS, tools),
            issued_at_s,
            expires_at_s,
            transaction_id: None,
        });
        let key = self.key_of(performer);
        sign(&key, self.tick(), body)
    }

    /// The root grant `r`: alice → gateway, every scope and tool, living
    /// from 0 to 100 s.
    pub fn root_grant(&mut self) -> (Envelope, Event) {
        self.issue(
            "r",
            "alice",
            "gateway",
            0xff,
            0xff,
            GrantType::AuthorizationCodePkce,
            0,
            100,
        )
    }

    pub fn revoke_by_root(&mut self, target: RevocationTarget) -> (Envelope, Event) {
        let body = Body::Revoked(Revoked {
            target,
            reason: "test".into(),
            revoked_by: None,
            requested_by: None,
        });
        self.signed_by_root(body)
    }

    pub fn key_id_of(&self, id: &str) -> KeyId {
        self.key_of(id).key_id()
    }
}

/// The bit mask of `names` within `all` (the inverse of [`set`]).
pub fn mask(all: &[&str], names: &BTreeSet<Name>) -> u8 {
    all.iter()
        .enumerate()
        .filter(|(_, s)| names.iter().any(|n| n.as_str() == **s))
        .fold(0, |m, (i, _)| m | (1 << i))
}
