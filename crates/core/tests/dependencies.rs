//! `dependencies`: the revocation targets a token's status depends on — what
//! a cache of answers invalidates on. Checked against the status itself: on
//! a 3-hop chain, revoking any target in the set revokes the token, and
//! revoking any other target of the ledger (every client, key, subject and
//! token there is) does not.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{
    Envelope, Event, GrantType, LedgerView, MemoryLedger, RevocationTarget, TokenRef, TokenStatus,
    dependencies, token_status,
};
use common::{AS, CLIENTS, World, client, subject};

#[test]
fn a_revocation_revokes_a_token_exactly_when_it_hits_one_of_its_dependencies() {
    let mut world = World::new();
    let mut chain: Vec<(Envelope, Event)> = Vec::new();
    let root = world.root_grant();
    let root_id = root.0.id();
    chain.push(root);
    let hop = world.narrow(
        "a", root_id, root_id, 1, "alice", "gateway", "server-a", 1, 1, 0, 50,
    );
    let hop_id = hop.0.id();
    chain.push(hop);
    let leaf = world.narrow(
        "b", hop_id, root_id, 2, "alice", "server-a", "server-b", 1, 1, 0, 40,
    );
    let leaf_id = leaf.0.id();
    chain.push(leaf);
    // Another chain, for another subject, that the leaf does not depend on.
    let other = world.issue(
        "o",
        "bob",
        "agent",
        0xff,
        0xff,
        GrantType::AuthorizationCodePkce,
        0,
        100,
    );
    chain.push(other);

    let setup = world.setup.clone();
    let policy = world.policy();
    let ledger_with = |extra: Option<&(Envelope, Event)>| {
        let mut ledger = MemoryLedger::new(policy.clone());
        for (envelope, event) in setup.iter().chain(&chain).chain(extra) {
            ledger.apply(envelope, event).unwrap();
        }
        ledger
    };
    let ledger = ledger_with(None);
    assert!(matches!(
        token_status(&ledger, &policy, &leaf_id, 10).unwrap(),
        TokenStatus::Active { .. }
    ));
    let deps = dependencies(&ledger, &policy, &leaf_id).unwrap().unwrap();

    let mut every = vec![
        RevocationTarget::Subject(subject("alice")),
        RevocationTarget::Subject(subject("bob")),
        RevocationTarget::Client(client(AS)),
        RevocationTarget::Key(world.as_key.key_id()),
        RevocationTarget::Key(world.root.key_id()),
    ];
    for jti in ["r", "a", "b", "o"] {
        every.push(RevocationTarget::Token(TokenRef::jti("t", jti).unwrap()));
    }
    for (id, ..) in CLIENTS {
        every.push(RevocationTarget::Client(client(id)));
        every.push(RevocationTarget::Key(world.key_id_of(id)));
    }
    let mut hit = 0;
    for target in every {
        let revocation = world.revoke_by_root(target.clone());
        let revoked = ledger_with(Some(&revocation));
        let status = token_status(&revoked, &policy, &leaf_id, 10).unwrap();
        let expected = deps.contains(&target);
        assert_eq!(
            matches!(status, TokenStatus::Revoked(_)),
            expected,
            "revoking {target}: {status:?}; dependencies {deps:?}"
        );
        hit += usize::from(expected);
    }
    // Every dependency was among the targets tried.
    assert_eq!(hit, deps.len(), "{deps:?}");
    // Nothing known: no dependencies to watch.
    assert!(
        dependencies(&ledger, &policy, &baton_core::EventId([7; 32]))
            .unwrap()
            .is_none()
    );
    let _ = ledger.token(&leaf_id).unwrap().unwrap();
}
