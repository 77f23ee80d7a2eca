//! The ledger's refusals: narrowing in every dimension (property), and the
//! practitioner rules and signer rules by example, each naming field and reason.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{
    Body, ClientKind, ClientRegistered, ClientRole, GrantType, MemoryLedger, Refusal,
    RegistrationMethod, RevocationTarget, Rule, TokenRef, verify_chain,
};
use common::{AS, SCOPES, TOOLS, World, client, set, sign, test_key};
use proptest::prelude::*;

fn ledger(world: &World) -> MemoryLedger {
    let mut ledger = MemoryLedger::new(world.policy());
    for (envelope, event) in &world.setup {
        ledger.apply(envelope, event).unwrap();
    }
    ledger
}

fn refusal(result: Result<baton_core::Applied, Refusal>) -> Refusal {
    result.expect_err("the event should be refused")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A hop is accepted exactly when it is no wider than its parent in scopes,
    /// tools and expiry; a wider one is refused by the narrowing rule.
    #[test]
    fn narrowing_never_accepts_a_wider_child(
        parent_scopes in any::<u8>(), parent_tools in any::<u8>(), parent_exp in 10i64..1000,
        child_scopes in any::<u8>(), child_tools in any::<u8>(), child_exp in 1i64..1100,
    ) {
        let mut world = World::new();
        let mut ledger = ledger(&world);
        let root = world.issue("root", "alice", "gateway", parent_scopes, parent_tools, GrantType::AuthorizationCodePkce, 0, parent_exp);
        ledger.apply(&root.0, &root.1).unwrap();
        let root_id = root.0.id();
        let hop = world.narrow("hop", root_id, root_id, 1, "alice", "gateway", "server-a", child_scopes, child_tools, 0, child_exp);
        let narrower = child_scopes & !parent_scopes & 0x3f == 0
            && child_tools & !parent_tools & 0x3f == 0
            && child_exp <= parent_exp;
        match ledger.apply(&hop.0, &hop.1) {
            Ok(_) => prop_assert!(narrower, "a wider child was accepted"),
            Err(refusal) => {
                prop_assert!(!narrower, "a narrower child was refused: {refusal}");
                prop_assert_eq!(refusal.rule, Rule::NotNarrower);
                prop_assert!(["scopes", "tools", "expires_at_unix_s"].contains(&refusal.field));
            }
        }
    }
}

#[test]
fn widened_scope_names_the_scope_and_the_parent() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root = world.issue(
        "root",
        "alice",
        "gateway",
        0b01,
        0b11,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    ledger.apply(&root.0, &root.1).unwrap();
    let id = root.0.id();
    let hop = world.narrow(
        "hop", id, id, 1, "alice", "gateway", "server-a", 0b11, 0b01, 0, 50,
    );
    let refused = refusal(ledger.apply(&hop.0, &hop.1));
    assert_eq!(
        refused.to_string(),
        format!(
            "scopes: scope {:?} is not held by parent token jti:root (rule not-narrower)",
            SCOPES[1]
        )
    );
    let hop = world.narrow(
        "hop", id, id, 1, "alice", "gateway", "server-a", 0b01, 0b111, 0, 50,
    );
    let refused = refusal(ledger.apply(&hop.0, &hop.1));
    assert_eq!(refused.field, "tools");
    assert!(refused.reason.contains(TOOLS[2]));
}

#[test]
fn practitioner_rules_refuse_with_the_rule_named() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    // A tool endpoint may not sign a hop, even for a token it holds.
    let root = world.issue(
        "root",
        "alice",
        "server-b",
        0xff,
        0xff,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    ledger.apply(&root.0, &root.1).unwrap();
    let id = root.0.id();
    let hop = world.narrow(
        "hop", id, id, 1, "alice", "server-b", "server-a", 1, 1, 0, 50,
    );
    let refused = refusal(ledger.apply(&hop.0, &hop.1));
    assert_eq!(
        (refused.rule, refused.field),
        (Rule::Unauthorized, "performed_by")
    );
    assert!(refused.reason.contains("tool endpoint"), "{refused}");
    // A client that does not hold the parent may not exchange it.
    let hop = world.narrow(
        "hop", id, id, 1, "alice", "gateway", "server-a", 1, 1, 0, 50,
    );
    let refused = refusal(ledger.apply(&hop.0, &hop.1));
    assert!(
        refused.reason.contains("does not hold parent token"),
        "{refused}"
    );
    // A client-credentials grant acts for its holder, never for a user.
    let job = world.issue(
        "job",
        "alice",
        "batch-job",
        1,
        1,
        GrantType::ClientCredentials,
        0,
        100,
    );
    let refused = refusal(ledger.apply(&job.0, &job.1));
    assert_eq!(
        (refused.rule, refused.field),
        (Rule::StaticGrant, "subject")
    );
    // ... and a static-API-key client holds only static grants.
    let job = world.issue(
        "job",
        "batch-job",
        "batch-job",
        1,
        1,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    let refused = refusal(ledger.apply(&job.0, &job.1));
    assert_eq!(
        (refused.rule, refused.field),
        (Rule::StaticGrant, "grant_type")
    );
    let job = world.issue(
        "job",
        "batch-job",
        "batch-job",
        1,
        1,
        GrantType::ApiKey,
        0,
        100,
    );
    ledger.apply(&job.0, &job.1).unwrap();
}

#[test]
fn only_trust_roots_register_authorization_servers() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let rogue = Body::ClientRegistered(ClientRegistered {
        client: client("rogue-as"),
        kind: ClientKind::AuthorizationServer,
        role: ClientRole::DelegatingLayer,
        registration: RegistrationMethod::PreRegistered,
        metadata_document_url: None,
        public_keys: vec![test_key(99).public_key()],
        key_proofs: vec![test_key(99).prove_possession(&client("rogue-as"))],
        scopes: set(&SCOPES, 0xff),
        tools: set(&TOOLS, 0xff),
        registered_by: Some(client(AS)),
    });
    let signed = sign(&world.as_key.clone(), world.tick(), rogue.clone());
    let refused = refusal(ledger.apply(&signed.0, &signed.1));
    assert_eq!((refused.rule, refused.field), (Rule::Unauthorized, "kind"));
    // An unknown key is refused as such.
    let signed = sign(&test_key(77), 5, rogue);
    assert_eq!(
        refusal(ledger.apply(&signed.0, &signed.1)).rule,
        Rule::UnknownKey
    );
}

#[test]
fn depth_is_bounded_by_policy() {
    let mut world = World::new();
    let mut policy = world.policy();
    policy.depth_max = 3;
    let mut ledger = MemoryLedger::new(policy);
    for (envelope, event) in &world.setup {
        ledger.apply(envelope, event).unwrap();
    }
    let root = world.issue(
        "d0",
        "alice",
        "gateway",
        1,
        1,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    ledger.apply(&root.0, &root.1).unwrap();
    let (root_id, mut parent) = (root.0.id(), root.0.id());
    for depth in 1..=4u32 {
        let hop = world.narrow(
            &format!("d{depth}"),
            parent,
            root_id,
            depth,
            "alice",
            "gateway",
            "gateway",
            1,
            1,
            0,
            100,
        );
        let result = ledger.apply(&hop.0, &hop.1);
        if depth <= 3 {
            result.unwrap();
            parent = hop.0.id();
        } else {
            let refused = refusal(result);
            assert_eq!((refused.rule, refused.field), (Rule::TooDeep, "depth"));
            assert_eq!(refused.reason, "4 exceeds the bound of 3");
        }
    }
}

#[test]
fn liveness_is_checked_on_append_not_on_apply() {
    let mut world = World::new();
    let mut ledger = ledger(&world);
    let root = world.issue(
        "root",
        "alice",
        "gateway",
        1,
        1,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    ledger.append(&root.0, &root.1, 10).unwrap();
    let revoke = world.revoke_by_root(RevocationTarget::Token(TokenRef::jti("t", "root").unwrap()));
    ledger.append(&revoke.0, &revoke.1, 10).unwrap();
    let id = root.0.id();
    let hop = world.narrow(
        "hop", id, id, 1, "alice", "gateway", "server-a", 1, 1, 0, 50,
    );
    let refused = refusal(ledger.append(&hop.0, &hop.1, 10));
    assert_eq!(
        (refused.rule, refused.field),
        (Rule::Revoked, "parent_event_id")
    );
    // A projector applies it (order-independent) and the cascade marks it revoked.
    ledger.apply(&hop.0, &hop.1).unwrap();
    // Appending the same event again is a no-op with the same id.
    assert_eq!(
        ledger.apply(&hop.0, &hop.1).unwrap(),
        baton_core::Applied::Duplicate(hop.0.id())
    );
}

#[test]
fn an_exported_chain_verifies_offline_and_tampering_fails() {
    let mut world = World::new();
    let root = world.issue(
        "root",
        "alice",
        "agent",
        0xff,
        0xff,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    let r = root.0.id();
    let hop1 = world.narrow(
        "h1", r, r, 1, "alice", "agent", "gateway", 0x0f, 0x0f, 0, 90,
    );
    let hop2 = world.narrow(
        "h2",
        hop1.0.id(),
        r,
        2,
        "alice",
        "gateway",
        "server-a",
        0x03,
        0x03,
        0,
        80,
    );
    let mut bundle = world.setup.clone();
    bundle.extend([root, hop1, hop2]);
    let chain = verify_chain(world.policy(), &bundle, 10).unwrap();
    assert_eq!(chain.links.len(), 3);
    assert_eq!(chain.leaf().token, TokenRef::jti("t", "h2").unwrap());
    // Another trust root: the authorization server's registration no longer verifies.
    let other = baton_core::Policy::new([test_key(200).public_key()]);
    assert!(
        verify_chain(other, &bundle, 10)
            .unwrap_err()
            .to_string()
            .starts_with("events[0]:")
    );
    // A link missing from the middle breaks the path.
    let mut gap = bundle.clone();
    gap.remove(gap.len() - 2);
    assert!(verify_chain(world.policy(), &gap, 10).is_err());
}
