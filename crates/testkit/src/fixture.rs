//! TEST-ONLY fixtures: keys generated at test time, clients, and delegation
//! chains, sealed with `baton-proto` exactly as a real writer seals them.

use std::collections::BTreeMap;

use baton_client::events::{self, Hop, Parent, Signer};
use baton_core::{
    Body, ClientId, ClientKind, ClientRole, Envelope, EventId, GrantType, Name, Policy,
    RevocationTarget, SigningKey, Subject, TokenIssued, TokenRef,
};

/// A registered fixture client and its (test-only) key.
#[derive(Debug, Clone)]
pub struct FixtureClient {
    pub id: ClientId,
    pub key: SigningKey,
    pub kind: ClientKind,
}

/// A trust root, clients, and the tokens issued so far.
#[derive(Debug)]
pub struct Fixture {
    pub root: SigningKey,
    clients: BTreeMap<String, FixtureClient>,
    tokens: BTreeMap<String, Parent>,
    clock_ms: i64,
    /// The issue time of every token (unix seconds); tokens live from here.
    pub now_s: i64,
    /// Prefixed to every client id and jti on the wire.
    prefix: String,
}

/// Every scope and tool the standard fixture's clients may hold.
pub const SCOPES: [&str; 4] = ["files:read", "files:write", "repo:read", "repo:write"];
pub const TOOLS: [&str; 4] = ["fs/read", "fs/write", "github/search", "github/delete_repo"];

fn names(values: &[&str]) -> std::collections::BTreeSet<Name> {
    values
        .iter()
        .map(|v| Name::new("fixture", v).expect("fixture name"))
        .collect()
}

impl Fixture {
    /// A fixture whose tokens are issued at `now_s`.
    pub fn new(now_s: i64) -> Self {
        Fixture::with_root(SigningKey::generate(), now_s)
    }

    /// A fixture signing as the trust root `root`.
    pub fn with_root(root: SigningKey, now_s: i64) -> Self {
        Fixture {
            root,
            clients: BTreeMap::new(),
            tokens: BTreeMap::new(),
            clock_ms: now_s * 1000,
            now_s,
            prefix: String::new(),
        }
    }

    /// The fixture plus its standard setup: an authorization server `as`, a
    /// gateway, two delegating MCP servers and a tool endpoint, each with a
    /// fresh key. Returns the registration events in order.
    pub fn standard(now_s: i64) -> (Fixture, Vec<Envelope>) {
        Fixture::standard_with(Fixture::new(now_s), "")
    }

    /// The standard setup on `fixture`, with every client id and jti prefixed
    /// by `prefix` (so several runs can share one ledger).
    pub fn standard_with(mut fixture: Fixture, prefix: &str) -> (Fixture, Vec<Envelope>) {
        fixture.prefix = prefix.to_owned();
        let mut events = vec![fixture.register(
            "as",
            ClientKind::AuthorizationServer,
            ClientRole::DelegatingLayer,
            None,
        )];
        for (id, kind, role) in [
            ("agent", ClientKind::McpClient, ClientRole::DelegatingLayer),
            ("gateway", ClientKind::Gateway, ClientRole::DelegatingLayer),
            (
                "server-a",
                ClientKind::McpServer,
                ClientRole::MixedTrustBoundary,
            ),
            (
                "server-b",
                ClientKind::McpServer,
                ClientRole::MixedTrustBoundary,
            ),
            ("server-c", ClientKind::McpServer, ClientRole::ToolEndpoint),
        ] {
            events.push(fixture.register(id, kind, role, Some("as")));
        }
        (fixture, events)
    }

    pub fn policy(&self) -> Policy {
        Policy::new([self.root.public_key()])
    }

    pub fn client(&self, id: &str) -> &FixtureClient {
        &self.clients[id]
    }

    /// Moves the clock that dates the events this fixture signs next
    /// (`created_at`) by `by_ms`; token times are unaffected.
    pub fn shift_clock_ms(&mut self, by_ms: i64) {
        self.clock_ms += by_ms;
    }

    fn tick(&mut self) -> i64 {
        self.clock_ms += 1;
        self.clock_ms
    }

    fn seal(&mut self, key: &SigningKey, body: Body) -> Envelope {
        let created_at_ms = self.tick();
        Signer::from_key(key.clone())
            .sign_at(body, created_at_ms)
            .expect("fixture events seal")
    }

    /// Registers a client with a fresh key; `by` is the registering
    /// authorization server, or `None` for the trust root.
    pub fn register(
        &mut self,
        id: &str,
        kind: ClientKind,
        role: ClientRole,
        by: Option<&str>,
    ) -> Envelope {
        self.register_with_ceiling(id, kind, role, by, &SCOPES, &TOOLS)
    }

    /// [`Fixture::register`] with another ceiling of scopes and tools.
    pub fn register_with_ceiling(
        &mut self,
        id: &str,
        kind: ClientKind,
        role: ClientRole,
        by: Option<&str>,
        scopes: &[&str],
        tools: &[&str],
    ) -> Envelope {
        let key = SigningKey::generate();
        let client =
            ClientId::new("fixture", &format!("{}{id}", self.prefix)).expect("fixture client id");
        let registrar = by.map(|b| self.clients[b].id.clone());
        let body = events::register(
            client.clone(),
            kind,
            role,
            &[Signer::from_key(key.clone()).registered_by(&client, registrar.as_ref())],
            names(scopes),
            names(tools),
            by.map(|b| self.clients[b].id.clone()),
        );
        let signer = match by {
            None => self.root.clone(),
            Some(b) => self.clients[b].key.clone(),
        };
        let envelope = self.seal(&signer, body);
        self.clients.insert(
            id.to_owned(),
            FixtureClient {
                id: client,
                key,
                kind,
            },
        );
        envelope
    }

    /// A root grant from `issuer` to `holder` for `subject`, living `ttl_s`,
    /// by authorization code with PKCE.
    pub fn issue(
        &mut self,
        issuer: &str,
        jti: &str,
        subject: &str,
        holder: &str,
        ttl_s: i64,
    ) -> Envelope {
        let grant = GrantType::AuthorizationCodePkce;
        self.issue_with_grant(issuer, jti, subject, holder, ttl_s, grant)
    }

    /// [`Fixture::issue`] with another grant type.
    pub fn issue_with_grant(
        &mut self,
        issuer: &str,
        jti: &str,
        subject: &str,
        holder: &str,
        ttl_s: i64,
        grant: GrantType,
    ) -> Envelope {
        let token =
            TokenRef::jti("fixture", &format!("{}{jti}", self.prefix)).expect("fixture jti");
        let subject = Subject::new("fixture", subject).expect("fixture subject");
        let body = Body::TokenIssued(TokenIssued {
            token,
            subject,
            issuer: self.clients[issuer].id.clone(),
            holder: self.clients[holder].id.clone(),
            audience: format!("https://{holder}.example/mcp"),
            scopes: names(&SCOPES),
            tools: names(&TOOLS),
            grant,
            issued_at_s: self.now_s,
            expires_at_s: self.now_s + ttl_s,
            session_id: None,
            transaction_id: None,
        });
        let key = self.clients[issuer].key.clone();
        self.seal_token(jti, &key, body)
    }

    /// One hop from token `parent`: `performer` exchanges it for a token held
    /// by `holder`, keeping the parent's scopes and tools minus `drop`, and
    /// expiring `shorter_s` seconds before the parent.
    pub fn narrow(
        &mut self,
        parent: &str,
        jti: &str,
        performer: &str,
        holder: &str,
        drop: &[&str],
        shorter_s: i64,
    ) -> Envelope {
        let parent = self.tokens[parent].clone();
        let keep = |set: &std::collections::BTreeSet<Name>| {
            set.iter()
                .filter(|s| !drop.contains(&s.as_str()))
                .cloned()
                .collect()
        };
        let hop = self.hop(
            jti,
            performer,
            holder,
            keep(&parent.scopes),
            keep(&parent.tools),
        );
        let body = parent.narrow(hop, parent.issued_at_s, parent.expires_at_s - shorter_s);
        let key = self.clients[performer].key.clone();
        self.seal_token(jti, &key, body)
    }

    /// What a hop to `holder`, performed by `performer`, makes.
    fn hop(
        &self,
        jti: &str,
        performer: &str,
        holder: &str,
        scopes: std::collections::BTreeSet<Name>,
        tools: std::collections::BTreeSet<Name>,
    ) -> Hop {
        Hop {
            token: TokenRef::jti("fixture", &format!("{}{jti}", self.prefix)).expect("fixture jti"),
            performed_by: self.clients[performer].id.clone(),
            holder: self.clients[holder].id.clone(),
            audience: format!("https://{holder}.example/mcp"),
            scopes,
            tools,
        }
    }

    /// A hop from `parent` with explicit scopes, tools, expiry and depth, not
    /// checked here: for tests of what the ledger refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn hop_unchecked(
        &mut self,
        parent: &str,
        jti: &str,
        performer: &str,
        holder: &str,
        scopes: &[&str],
        tools: &[&str],
        expires_at_s: i64,
        depth: Option<u32>,
    ) -> Envelope {
        let hop = self.hop(jti, performer, holder, names(scopes), names(tools));
        let parent = &self.tokens[parent];
        let mut body = parent.narrow(hop, parent.issued_at_s, expires_at_s);
        if let (Body::ScopeNarrowed(hop), Some(depth)) = (&mut body, depth) {
            hop.depth = depth;
        }
        let key = self.clients[performer].key.clone();
        self.seal(&key, body)
    }

    /// The expiry of token `jti`.
    pub fn expiry_of(&self, jti: &str) -> i64 {
        self.tokens[jti].expires_at_s
    }

    /// A revocation signed by the trust root.
    pub fn revoke(&mut self, target: RevocationTarget) -> Envelope {
        let body = events::revoke(target, "test", None);
        let key = self.root.clone();
        self.seal(&key, body)
    }

    pub fn token(jti: &str) -> TokenRef {
        TokenRef::jti("fixture", jti).expect("fixture jti")
    }

    pub fn client_id(id: &str) -> ClientId {
        ClientId::new("fixture", id).expect("fixture client id")
    }

    pub fn subject(id: &str) -> Subject {
        Subject::new("fixture", id).expect("fixture subject")
    }

    /// The event id of token `jti`'s event.
    pub fn event_of(&self, jti: &str) -> EventId {
        self.tokens[jti].event
    }

    /// The reference of token `jti`.
    pub fn token_of(&self, jti: &str) -> TokenRef {
        self.tokens[jti].token.clone()
    }

    /// Seals a root grant or hop and records its token under `jti`.
    fn seal_token(&mut self, jti: &str, key: &SigningKey, body: Body) -> Envelope {
        let envelope = self.seal(key, body.clone());
        let parent = Parent::of_body(envelope.id(), &body).expect("a token event");
        self.tokens.insert(jti.to_owned(), parent);
        envelope
    }

    /// The tree root (partition key) of token `jti`.
    pub fn root_of(&self, jti: &str) -> EventId {
        self.tokens[jti].root
    }

    /// Signs any event body with the given key, for forgery tests.
    pub fn seal_with(&mut self, key: &SigningKey, body: Body) -> Envelope {
        self.seal(key, body)
    }
}
