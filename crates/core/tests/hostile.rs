//! What a hostile client tried against the rules, one regression test each
//! (issue 8): every one of these was accepted before its fix.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{
    Applied, Body, ClientId, ClientKind, ClientRole, Envelope, Event, GrantType, KeysRotated,
    MemoryLedger, PAYLOAD_TYPE_EVENT_V1, Policy, PublicKey, Refusal, RegistrationMethod,
    RevocationTarget, Revoked, Rule, SigningKey, Subject, TokenRef, TokenStatus, check_token,
};
use common::{AS, World, client, sign, subject, test_key};

const AS2: &str = "as-two.example";

fn ledger_with(world: &World, policy: Policy) -> MemoryLedger {
    let mut ledger = MemoryLedger::new(policy);
    for (envelope, event) in &world.setup {
        ledger.apply(envelope, event).unwrap();
    }
    ledger
}

fn ledger(world: &World) -> MemoryLedger {
    ledger_with(world, world.policy())
}

fn refused(result: Result<Applied, Refusal>) -> Refusal {
    result.expect_err("the event should be refused")
}

/// A second authorization server (registered by the trust root) with one
/// client of its own, `tool-two`.
fn second_universe(world: &mut World, ledger: &mut MemoryLedger) -> SigningKey {
    let as2_key = test_key(60);
    let reg = world.registration(
        AS2,
        ClientKind::AuthorizationServer,
        ClientRole::DelegatingLayer,
        RegistrationMethod::PreRegistered,
        None,
        60,
    );
    let signed = world.signed_by_root(reg);
    ledger.apply(&signed.0, &signed.1).unwrap();
    let reg = world.registration(
        "tool-two",
        ClientKind::McpServer,
        ClientRole::DelegatingLayer,
        RegistrationMethod::Dynamic,
        Some(AS2),
        61,
    );
    let signed = sign(&as2_key, world.tick(), reg);
    ledger.apply(&signed.0, &signed.1).unwrap();
    as2_key
}

fn revoke(key: &SigningKey, at: i64, by: &str, target: RevocationTarget) -> (Envelope, Event) {
    let body = Body::Revoked(Revoked {
        target,
        reason: "test".into(),
        revoked_by: Some(client(by)),
        requested_by: None,
    });
    sign(key, at, body)
}

fn grant(world: &mut World, jti: &str, holder: &str) -> (Envelope, Event) {
    world.issue(
        jti,
        "alice",
        holder,
        0xff,
        0xff,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    )
}

/// A root grant `jti` for alice to `holder`, changed by `edit`, signed by `key`.
fn grant_with(
    world: &mut World,
    jti: &str,
    key: &SigningKey,
    at_ms: Option<i64>,
    edit: impl FnOnce(&mut baton_core::TokenIssued),
) -> (Envelope, Event) {
    let Body::TokenIssued(mut issued) = grant(world, jti, "gateway").1.body else {
        unreachable!("a grant")
    };
    edit(&mut issued);
    let at = at_ms.unwrap_or_else(|| world.tick());
    sign(key, at, Body::TokenIssued(issued))
}

/// A hop `jti` from root grant `root` (gateway to server-a), changed by
/// `edit`, signed by `key`.
fn hop_with(
    world: &mut World,
    jti: &str,
    root: baton_core::EventId,
    key: &SigningKey,
    at_ms: Option<i64>,
    edit: impl FnOnce(&mut baton_core::ScopeNarrowed),
) -> (Envelope, Event) {
    let (_, event) = world.narrow(
        jti, root, root, 1, "alice", "gateway", "server-a", 1, 1, 0, 50,
    );
    let Body::ScopeNarrowed(mut hop) = event.body else {
        unreachable!("a hop")
    };
    edit(&mut hop);
    let at = at_ms.unwrap_or_else(|| world.tick());
    sign(key, at, Body::ScopeNarrowed(hop))
}

/// Defect 1: a delegating layer narrows a user's token to a static-API-key
/// client; only static grants may reach such a client, directly or by hop.
#[test]
fn static_grant_a_static_api_key_client_receives_no_user_token_through_a_hop() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root = grant(&mut world, "root", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let id = root.0.id();
    let hop = world.narrow(
        "hop",
        id,
        id,
        1,
        "alice",
        "gateway",
        "batch-job",
        1,
        1,
        0,
        50,
    );
    let refusal = refused(ledger.apply(&hop.0, &hop.1));
    assert_eq!((refusal.rule, refusal.field), (Rule::StaticGrant, "holder"));
    assert!(refusal.reason.contains("static API key"), "{refusal}");
}

fn rotation(
    world: &mut World,
    by: &SigningKey,
    client_: &str,
    add: &SigningKey,
) -> (Envelope, Event) {
    let body = Body::KeysRotated(KeysRotated {
        client: client(client_),
        add: vec![add.public_key()],
        add_proofs: vec![add.prove_possession(&client(client_))],
        retire: vec![],
    });
    sign(by, world.tick(), body)
}

/// Defect 2: 64 rotations, each signed by the key the previous one bound,
/// used to push the original key out of the status walk's reach. Now the
/// chain cannot grow past the bound, and revoking the original key reaches
/// the newest key's signatures.
#[test]
fn too_deep_a_binding_chain_cannot_outgrow_the_walk() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    // gateway's key is 2 bindings from the root (root → AS → gateway).
    let mut signer = world.key_of("gateway");
    let mut refusal = None;
    for n in 0..80u8 {
        let next = SigningKey::from_seed(&[
            n, 0xab, 0xcd, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
            20, 21, 22, 23, 24, 25, 26, 27, 28,
        ]);
        let signed = rotation(&mut world, &signer, "gateway", &next);
        match ledger.apply(&signed.0, &signed.1) {
            Ok(_) => signer = next,
            Err(r) => {
                refusal = Some((n, r));
                break;
            }
        }
    }
    let (n, refusal) = refusal.expect("the chain must stop growing");
    assert_eq!(n as usize, baton_core::BINDING_CHAIN_MAX - 2, "{refusal}");
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::TooDeep, "signer_key_id")
    );
    // The deepest key still signs; revoking the original key distrusts it.
    let body = Body::TokenIssued(baton_core::TokenIssued {
        token: TokenRef::jti("t", "deep").unwrap(),
        subject: subject("gateway"),
        issuer: client(AS),
        holder: client("gateway"),
        audience: "https://gateway.example/mcp".into(),
        scopes: Default::default(),
        tools: Default::default(),
        grant: GrantType::ClientCredentials,
        issued_at_s: 0,
        expires_at_s: 100,
        session_id: None,
        transaction_id: None,
    });
    let issued = sign(&world.as_key.clone(), world.tick(), body);
    ledger.apply(&issued.0, &issued.1).unwrap();
    let root = grant(&mut world, "r", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let hop = hop_with(&mut world, "h", root.0.id(), &signer, None, |_| {});
    ledger.apply(&hop.0, &hop.1).unwrap();
    let token = TokenRef::jti("t", "h").unwrap();
    let policy = world.policy();
    let active = check_token(&ledger, &policy, &token, None, 10).unwrap();
    assert!(
        matches!(active.status, TokenStatus::Active { .. }),
        "{active:?}"
    );
    let original = world.revoke_by_root(RevocationTarget::Key(world.key_id_of("gateway")));
    ledger.apply(&original.0, &original.1).unwrap();
    let check = check_token(&ledger, &policy, &token, None, 10).unwrap();
    assert!(matches!(check.status, TokenStatus::Revoked(_)), "{check:?}");
}

/// Defect 2, the other end of a binding chain: a trust root removed from the
/// configuration no longer vouches for anything bound under it.
#[test]
fn revoked_a_removed_trust_root_vouches_for_nothing() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root = grant(&mut world, "r", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let token = TokenRef::jti("t", "r").unwrap();
    let other_root = Policy::new([test_key(200).public_key()]);
    let check = check_token(&ledger, &other_root, &token, None, 10).unwrap();
    assert_eq!(check.status, TokenStatus::Unknown);
    // And an append signed under it is refused.
    let mut stale = MemoryLedger::over(&ledger, other_root);
    let hop = world.narrow(
        "h",
        root.0.id(),
        root.0.id(),
        1,
        "alice",
        "gateway",
        "server-a",
        1,
        1,
        0,
        50,
    );
    let refusal = match stale.try_apply(&hop.0, &hop.1, Some(10)) {
        Err(baton_core::CheckError::Refused(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Revoked, "signer_key_id")
    );
    assert!(
        refusal.reason.contains("not a configured trust root"),
        "{refusal}"
    );
}

/// Defect 3: an authorization server revokes a trust root's key.
#[test]
fn unauthorized_no_authorization_server_revokes_a_trust_root() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root_key = world.root.key_id();
    let attempt = revoke(
        &world.as_key.clone(),
        world.tick(),
        AS,
        RevocationTarget::Key(root_key),
    );
    let refusal = refused(ledger.apply(&attempt.0, &attempt.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Unauthorized, "target")
    );
    assert!(refusal.reason.contains("trust root"), "{refusal}");
    // A trust root may.
    let retire = world.revoke_by_root(RevocationTarget::Key(root_key));
    ledger.apply(&retire.0, &retire.1).unwrap();
}

/// Defect 3: an authorization server acts only within its own universe.
#[test]
fn unauthorized_an_authorization_server_stays_in_its_universe() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let as2 = second_universe(&mut world, &mut ledger);
    let root = grant(&mut world, "r", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let at = world.tick();
    let cases = [
        RevocationTarget::Client(client("gateway")),
        RevocationTarget::Client(client(AS)),
        RevocationTarget::Key(world.key_id_of("gateway")),
        RevocationTarget::Token(TokenRef::jti("t", "r").unwrap()),
        RevocationTarget::Subject(subject("alice")),
    ];
    for target in cases {
        let attempt = revoke(&as2, at, AS2, target.clone());
        let refusal = refused(ledger.apply(&attempt.0, &attempt.1));
        assert_eq!(
            (refusal.rule, refusal.field),
            (Rule::Unauthorized, "revoked_by"),
            "{target}"
        );
    }
    // Its own client and key: yes. A subject: not without federation.
    for target in [
        RevocationTarget::Key(test_key(61).key_id()),
        RevocationTarget::Client(client("tool-two")),
    ] {
        let own = revoke(&as2, at, AS2, target);
        ledger.apply(&own.0, &own.1).unwrap();
    }
    // It may not issue to another universe's client ...
    let cross = grant_with(&mut world, "cross", &as2, None, |issued| {
        issued.issuer = client(AS2);
    });
    let refusal = refused(ledger.apply(&cross.0, &cross.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Unauthorized, "holder")
    );
    // ... nor exchange a token of a chain it did not issue.
    let hop = hop_with(&mut world, "x", root.0.id(), &as2, None, |hop| {
        hop.performed_by = client(AS2);
    });
    let refusal = refused(ledger.apply(&hop.0, &hop.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Unauthorized, "performed_by")
    );
    // The chain's own authorization server may.
    let as_key = world.as_key.clone();
    let own_hop = hop_with(&mut world, "y", root.0.id(), &as_key, None, |hop| {
        hop.performed_by = client(AS);
    });
    ledger.apply(&own_hop.0, &own_hop.1).unwrap();
}

/// Defect 3: a federation (configuration) widens an authorization server's
/// authority, subjects included.
#[test]
fn unauthorized_a_federated_authorization_server_acts_across() {
    let mut world = World::new();
    let mut policy = world.policy();
    policy.federated.insert(client(AS2));
    let mut ledger = ledger_with(&world, policy);
    let as2 = second_universe(&mut world, &mut ledger);
    let root = grant(&mut world, "r", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let at = world.tick();
    for target in [
        RevocationTarget::Token(TokenRef::jti("t", "r").unwrap()),
        RevocationTarget::Subject(subject("alice")),
        RevocationTarget::Client(client("gateway")),
    ] {
        let attempt = revoke(&as2, at, AS2, target);
        ledger.apply(&attempt.0, &attempt.1).unwrap();
    }
}

/// Defect 5: a stored payload re-signed by another registered key is a
/// forgery, not a duplicate.
#[test]
fn signature_a_copy_re_signed_by_another_key_is_not_a_duplicate() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root = grant(&mut world, "r", "gateway");
    ledger.apply(&root.0, &root.1).unwrap();
    let forged = Envelope::sign(
        &world.key_of("agent"),
        PAYLOAD_TYPE_EVENT_V1,
        root.0.payload().to_vec(),
    )
    .unwrap();
    assert_eq!(forged.id(), root.0.id());
    let refusal = refused(ledger.apply(&forged, &root.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Signature, "signer_key_id")
    );
    assert_eq!(
        ledger.apply(&root.0, &root.1).unwrap(),
        Applied::Duplicate(root.0.id())
    );
}

/// Defect 6: identifiers that render alike but compare unequal.
#[test]
fn identifiers_have_one_spelling() {
    let nfc = "jos\u{e9}@example.com";
    let nfd = "jose\u{301}@example.com";
    assert!(Subject::new("subject", nfc).is_ok());
    let error = Subject::new("subject", nfd).unwrap_err().to_string();
    assert!(error.contains("identifier-nfc"), "{error}");
    for (bad, rule) in [
        ("gate\u{200b}way", "identifier-charset"),
        ("gateway\u{202e}lmth", "identifier-charset"),
        ("gate\u{2066}way", "identifier-charset"),
        ("p\u{430}ypal", "identifier-script"),
    ] {
        let error = ClientId::new("client_id", bad).unwrap_err().to_string();
        assert!(error.starts_with("client_id: "), "{error}");
        assert!(error.contains(rule), "{bad:?}: {error}");
    }
    for (bad, rule) in [
        (
            "\u{ff50}\u{ff41}\u{ff59}\u{ff50}\u{ff41}\u{ff4c}",
            "identifier-nfkc",
        ),
        ("\u{1d429}\u{1d41a}\u{1d432}", "identifier-nfkc"),
        ("alice\u{a0}smith", "identifier-nfkc"),
        ("\u{fb01}nance", "identifier-nfkc"),
        ("user\u{e000}", "identifier-charset"),
        ("a\u{fffb}b", "identifier-charset"),
    ] {
        let error = Subject::new("subject", bad).unwrap_err().to_string();
        assert!(error.contains(rule), "{bad:?}: {error}");
    }
    for good in [
        "https://app.example/client.json",
        "spiffe://corp.example/gateway-eu",
        "user:alice",
        "user:山田太郎",
        "дмитрий@yandex.ru",
        "jos\u{e9}@example.com",
    ] {
        assert!(ClientId::new("client_id", good).is_ok(), "{good:?}");
        assert!(Subject::new("subject", good).is_ok(), "{good:?}");
    }
}

/// Defect 7: a second encoding of one key would be a second key id.
#[test]
fn keys_have_one_encoding() {
    // p = 2^255 - 19; y and y + p encode the same point when y < 19.
    let mut tried = 0;
    for y in 2u8..19 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        let Ok(key) = PublicKey::from_slice("k", &canonical) else {
            continue;
        };
        let mut alias = [0xffu8; 32];
        alias[31] = 0x7f;
        alias[0] = 0xed + y; // p = 0x7fff…ffed, so p + y
        assert_ne!(alias, key.to_bytes());
        let error = PublicKey::from_slice("public_keys[0]", &alias)
            .unwrap_err()
            .to_string();
        assert!(error.contains("canonical"), "{error}");
        tried += 1;
    }
    assert!(tried > 0, "no usable small y: the test checks nothing");
}

/// Defect 8: dates are bounded at append.
#[test]
fn back_dated_future_dated_and_expired_events_are_refused_at_append() {
    let now_s = 10_000;
    let mut world = World::new();
    let mut ledger = ledger(&world);
    // created_at far behind the node's clock.
    let old = grant(&mut world, "old", "gateway");
    let refusal = refused(ledger.append(&old.0, &old.1, now_s + 3601));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::BackDated, "created_at_unix_ms")
    );
    // A root grant issued in the future.
    let as_key = world.as_key.clone();
    let future = grant_with(
        &mut world,
        "future",
        &as_key,
        Some(now_s * 1000),
        |issued| {
            issued.issued_at_s = now_s + 3600;
            issued.expires_at_s = now_s + 7200;
        },
    );
    let refusal = refused(ledger.append(&future.0, &future.1, now_s));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::FutureDated, "issued_at_unix_s")
    );
    // A hop that has already expired.
    let as_key = world.as_key.clone();
    let live = grant_with(&mut world, "live", &as_key, Some(now_s * 1000), |issued| {
        issued.issued_at_s = now_s - 10;
        issued.expires_at_s = now_s + 100;
    });
    ledger.append(&live.0, &live.1, now_s).unwrap();
    let gateway = world.key_of("gateway");
    let gone = hop_with(
        &mut world,
        "gone",
        live.0.id(),
        &gateway,
        Some(now_s * 1000),
        |hop| {
            hop.issued_at_s = now_s - 10;
            hop.expires_at_s = now_s - 1;
        },
    );
    let refusal = refused(ledger.append(&gone.0, &gone.1, now_s));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Expired, "expires_at_unix_s")
    );
}

/// Review of defect 3: an authorization server grants a token to itself,
/// then hops it to a client of another universe — the cross-universe grant
/// the issue rule refuses, by a detour.
#[test]
fn unauthorized_a_hop_does_not_carry_a_chain_into_another_universe() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    second_universe(&mut world, &mut ledger);
    let as_key = world.as_key.clone();
    let own = grant_with(&mut world, "own", &as_key, None, |issued| {
        issued.holder = client(AS);
    });
    ledger.apply(&own.0, &own.1).unwrap();
    let as_key = world.as_key.clone();
    let hop = hop_with(&mut world, "x", own.0.id(), &as_key, None, |hop| {
        hop.performed_by = client(AS);
        hop.holder = client("tool-two");
        hop.audience = "https://tool-two.example/mcp".into();
    });
    let refusal = refused(ledger.apply(&hop.0, &hop.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Unauthorized, "holder")
    );
}

/// A revocation signed long ago (kept ready for an emergency) is taken
/// whenever it comes: lateness never makes a revocation harmful.
#[test]
fn back_dated_does_not_apply_to_revocations() {
    let now_s = 100_000;
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let revoke = world.revoke_by_root(RevocationTarget::Subject(subject("mallory")));
    assert!(revoke.1.created_at_ms < 1_000_000);
    ledger.append(&revoke.0, &revoke.1, now_s).unwrap();
}

/// Defect 7: binding someone else's public key (and so blocking its
/// owner's registration) needs its private key now: a proof of possession
/// per key, for exactly this client.
#[test]
fn signature_a_key_is_bound_only_with_proof_of_possession() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let victim = test_key(77);
    let register = |world: &mut World, proofs: Vec<[u8; 64]>| {
        let mut body = world.registration(
            "squatter",
            ClientKind::McpServer,
            ClientRole::DelegatingLayer,
            RegistrationMethod::Dynamic,
            Some(AS),
            77,
        );
        if let Body::ClientRegistered(reg) = &mut body {
            reg.key_proofs = proofs;
        }
        sign(&world.as_key.clone(), world.tick(), body)
    };
    // No proof, and a proof made for another client: refused, naming the field.
    let none = register(&mut world, vec![]);
    let refusal = refused(ledger.apply(&none.0, &none.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Inconsistent, "public_key_proofs")
    );
    let elsewhere = register(&mut world, vec![victim.prove_possession(&client("victim"))]);
    let refusal = refused(ledger.apply(&elsewhere.0, &elsewhere.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Signature, "public_key_proofs")
    );
    // By rotation too.
    let body = Body::KeysRotated(KeysRotated {
        client: client("gateway"),
        add: vec![victim.public_key()],
        add_proofs: vec![world.key_of("gateway").prove_possession(&client("gateway"))],
        retire: vec![],
    });
    let rotation = sign(&world.key_of("gateway"), world.tick(), body);
    let refusal = refused(ledger.apply(&rotation.0, &rotation.1));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Signature, "add_public_key_proofs")
    );
    // The key's holder can still register it.
    let own = register(
        &mut world,
        vec![victim.prove_possession(&client("squatter"))],
    );
    ledger.apply(&own.0, &own.1).unwrap();
}

/// A view that has applied everything `inner` has, but read at the moment
/// just before a copy of the event committed: its first `contains_event`
/// answers "not seen", every later read sees the commit. The server's check
/// reads its projection key by key while the projector commits, so this
/// interleaving happens (a fresh-clone CI run saw it: a copy of a key
/// rotation refused `already-exists` for the key it binds itself).
struct ReadBeforeCommit<'a> {
    inner: &'a MemoryLedger,
    lied: std::cell::Cell<bool>,
}

impl baton_core::LedgerView for ReadBeforeCommit<'_> {
    type Error = <MemoryLedger as baton_core::LedgerView>::Error;
    fn contains_event(&self, id: &baton_core::EventId) -> Result<bool, Self::Error> {
        if !self.lied.replace(true) {
            return Ok(false);
        }
        self.inner.contains_event(id)
    }
    fn key(&self, id: &baton_core::KeyId) -> Result<Option<baton_core::KeyRecord>, Self::Error> {
        self.inner.key(id)
    }
    fn key_retired(&self, id: &baton_core::KeyId) -> Result<bool, Self::Error> {
        self.inner.key_retired(id)
    }
    fn client(&self, id: &ClientId) -> Result<Option<baton_core::ClientRecord>, Self::Error> {
        self.inner.client(id)
    }
    fn token(
        &self,
        event: &baton_core::EventId,
    ) -> Result<Option<std::sync::Arc<baton_core::TokenRecord>>, Self::Error> {
        self.inner.token(event)
    }
    fn token_by_ref(&self, token: &TokenRef) -> Result<Option<baton_core::EventId>, Self::Error> {
        self.inner.token_by_ref(token)
    }
    fn revocation(
        &self,
        target: &RevocationTarget,
    ) -> Result<Option<baton_core::EventId>, Self::Error> {
        self.inner.revocation(target)
    }
    fn key_trust(
        &self,
        policy: &Policy,
        key: &baton_core::KeyId,
    ) -> Result<baton_core::KeyTrust, Self::Error> {
        self.inner.key_trust(policy, key)
    }
    fn case_variant(
        &self,
        kind: baton_core::NameKind,
        name: &str,
    ) -> Result<Option<String>, Self::Error> {
        self.inner.case_variant(kind, name)
    }
}

/// Issue 21: a copy of an event checked while the event itself commits is
/// a duplicate, not a refusal for the names the event claims itself.
#[test]
fn a_copy_checked_while_the_event_commits_is_a_duplicate() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let issued = grant(&mut world, "raced", "gateway");
    let added = test_key(70);
    let rotation = sign(
        &world.key_of("gateway"),
        world.tick(),
        Body::KeysRotated(KeysRotated {
            client: client("gateway"),
            add: vec![added.public_key()],
            add_proofs: vec![added.prove_possession(&client("gateway"))],
            retire: vec![],
        }),
    );
    for (envelope, event) in [&issued, &rotation] {
        ledger.apply(envelope, event).unwrap();
        let racing = ReadBeforeCommit {
            inner: &ledger,
            lied: std::cell::Cell::new(false),
        };
        let mut overlay = MemoryLedger::over(racing, world.policy());
        let answer = overlay.try_apply_verified(envelope, event, None, false);
        assert!(
            matches!(answer, Ok(Applied::Duplicate(id)) if id == envelope.id()),
            "{:?}: {answer:?}",
            event.body
        );
        // A copy with a broken signature is still refused, raced or not.
        let forged = Envelope::from_parts(
            envelope.payload().to_vec(),
            envelope.payload_type().to_owned(),
            &envelope.key_id().0,
            &[0; 64],
        )
        .unwrap();
        let racing = ReadBeforeCommit {
            inner: &ledger,
            lied: std::cell::Cell::new(false),
        };
        let mut overlay = MemoryLedger::over(racing, world.policy());
        assert!(
            overlay
                .try_apply_verified(&forged, event, None, false)
                .is_err()
        );
    }
}

/// Issue 21: a registration's proof of possession names its registrar
/// (key-proof v2), so a proof shared with one authorization server cannot
/// register the client under another. A proof naming only the client (v1)
/// is refused at append and still taken from the log, so ledgers written
/// before v2 replay as they were.
#[test]
fn signature_a_registration_proof_names_its_registrar() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let as2_key = second_universe(&mut world, &mut ledger);
    let owner = test_key(71);
    let registration =
        |world: &mut World, signer: &SigningKey, by: Option<&str>, id: &str, proof| {
            let Body::ClientRegistered(mut reg) = world.registration(
                id,
                ClientKind::McpServer,
                ClientRole::ToolEndpoint,
                RegistrationMethod::Dynamic,
                by,
                71,
            ) else {
                unreachable!()
            };
            reg.key_proofs = vec![proof];
            let at = world.tick();
            sign(signer, at, Body::ClientRegistered(reg))
        };
    // Made for as.example; AS2 takes it first: refused, by append and log.
    let meant = owner.prove_registration(&client("svc"), Some(&client(AS)));
    let taken = registration(&mut world, &as2_key, Some(AS2), "svc", meant);
    for refusal in [
        refused(ledger.append(&taken.0, &taken.1, 0)),
        refused(ledger.apply(&taken.0, &taken.1)),
    ] {
        assert_eq!(
            (refusal.rule, refusal.field),
            (Rule::Signature, "public_key_proofs"),
            "{refusal}"
        );
    }
    // Through the registrar it was meant for: applied.
    let as_key = world.as_key.clone();
    let right = registration(&mut world, &as_key, Some(AS), "svc", meant);
    ledger.append(&right.0, &right.1, 0).unwrap();
    // A v1 proof (the client only): refused at append, naming the fix;
    // taken by a projector (a registration made before v2).
    let owner2 = test_key(72);
    let v1 = owner2.prove_possession(&client("old-svc"));
    let Body::ClientRegistered(mut reg) = world.registration(
        "old-svc",
        ClientKind::McpServer,
        ClientRole::ToolEndpoint,
        RegistrationMethod::Dynamic,
        Some(AS),
        72,
    ) else {
        unreachable!()
    };
    reg.key_proofs = vec![v1];
    let old = sign(&as_key, world.tick(), Body::ClientRegistered(reg));
    let refusal = refused(ledger.append(&old.0, &old.1, 0));
    assert_eq!(
        (refusal.rule, refusal.field),
        (Rule::Signature, "public_key_proofs"),
        "{refusal}"
    );
    assert!(
        refusal.reason.contains("--registrar as.example"),
        "{refusal}"
    );
    ledger.apply(&old.0, &old.1).unwrap();
    // A trust root's registration: the proof names no registrar.
    let owner3 = test_key(73);
    let Body::ClientRegistered(mut reg) = world.registration(
        "root-svc",
        ClientKind::McpServer,
        ClientRole::ToolEndpoint,
        RegistrationMethod::PreRegistered,
        None,
        73,
    ) else {
        unreachable!()
    };
    reg.key_proofs = vec![owner3.prove_registration(&client("root-svc"), None)];
    let by_root = world.signed_by_root(Body::ClientRegistered(reg));
    ledger.append(&by_root.0, &by_root.1, 0).unwrap();
}

/// Issue 22: one driver decides what an event does to any ledger
/// (`baton_core::transition`), and `MemoryLedger` answers exactly what it
/// says. Each of its four answers, read straight from the driver over a
/// ledger's view: a new event's facts, a missing parent, a refusal, a copy
/// that is a duplicate, and a re-signed copy that is a forgery, not one.
/// (The projector runs the same driver; its differential test against
/// `MemoryLedger` keeps the two equal.)
#[test]
fn the_transition_driver_has_four_answers_and_the_memory_ledger_follows_it() {
    use baton_core::{Fact, Transition, transition};
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let policy = world.policy();
    let root = world.root_grant();
    let Transition::Facts { id, facts, .. } =
        transition(&policy, &ledger, &root.0, &root.1, false, None).unwrap()
    else {
        panic!("a new root grant yields facts");
    };
    assert_eq!(id, root.0.id());
    assert!(
        facts
            .iter()
            .any(|fact| matches!(fact, Fact::Token(record) if record.event == id)),
        "{facts:?}"
    );
    assert_eq!(
        ledger.apply(&root.0, &root.1).unwrap(),
        Applied::New(root.0.id())
    );
    assert_eq!(
        transition(&policy, &ledger, &root.0, &root.1, false, None).unwrap(),
        Transition::Duplicate(root.0.id())
    );
    let forged = Envelope::sign(
        &world.key_of("agent"),
        PAYLOAD_TYPE_EVENT_V1,
        root.0.payload().to_vec(),
    )
    .unwrap();
    assert!(matches!(
        transition(&policy, &ledger, &forged, &root.1, false, None).unwrap(),
        Transition::Refused(refusal) if refusal.rule == Rule::Signature
    ));
    let orphan = world.narrow(
        "orphan",
        baton_core::EventId([9; 32]),
        root.0.id(),
        1,
        "alice",
        "gateway",
        "server-a",
        1,
        1,
        0,
        50,
    );
    let Transition::Missing(refusal) =
        transition(&policy, &ledger, &orphan.0, &orphan.1, false, None).unwrap()
    else {
        panic!("a hop of an unknown parent waits for it");
    };
    assert_eq!(
        refusal.missing,
        Some(baton_core::Dependency::Event(baton_core::EventId([9; 32])))
    );
    assert_eq!(refused(ledger.apply(&orphan.0, &orphan.1)), refusal);
    // Live at append: the same event, refused by a writer once expired.
    let as_key = world.key_of(AS);
    let late = grant_with(&mut world, "late", &as_key, None, |issued| {
        issued.expires_at_s = 10;
    });
    let Transition::Refused(refusal) =
        transition(&policy, &ledger, &late.0, &late.1, false, Some(1_000)).unwrap()
    else {
        panic!("an expired grant is refused at append");
    };
    assert_eq!(refused(ledger.append(&late.0, &late.1, 1_000)), refusal);
    assert!(matches!(
        transition(&policy, &ledger, &late.0, &late.1, false, None).unwrap(),
        Transition::Facts { .. }
    ));
}
