//! Property: on random delegation trees with random revocations of every target
//! kind, the status the ledger computes incrementally (walking ancestors) equals
//! a naive recomputation from the full list of accepted events (propagating
//! every revocation down its subtree).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};

use baton_core::{
    Body, Cause, Event, EventId, GrantType, LedgerView, MemoryLedger, RevocationHit,
    RevocationTarget, TokenRef, TokenStatus, Via, check_token,
};
use common::{AS, CLIENTS, World, client, subject};
use proptest::prelude::*;

const SUBJECTS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Debug, Clone)]
enum Op {
    Issue {
        holder: usize,
        subject: usize,
        scopes: u8,
        tools: u8,
        ttl_s: i64,
    },
    Narrow {
        parent: usize,
        holder: usize,
        scopes: u8,
        tools: u8,
        shrink_s: i64,
        via_as: bool,
    },
    Revoke {
        kind: u8,
        index: usize,
    },
}

fn op() -> impl Strategy<Value = (Op, bool)> {
    let issue = (
        0..CLIENTS.len() - 1,
        0..SUBJECTS.len(),
        any::<u8>(),
        any::<u8>(),
        1i64..100,
    )
        .prop_map(|(holder, subject, scopes, tools, ttl_s)| Op::Issue {
            holder,
            subject,
            scopes,
            tools,
            ttl_s,
        });
    let narrow = (
        any::<usize>(),
        0..CLIENTS.len() - 1,
        any::<u8>(),
        any::<u8>(),
        0i64..30,
        any::<bool>(),
    )
        .prop_map(
            |(parent, holder, scopes, tools, shrink_s, via_as)| Op::Narrow {
                parent,
                holder,
                scopes,
                tools,
                shrink_s,
                via_as,
            },
        );
    let revoke = (0u8..4, any::<usize>()).prop_map(|(kind, index)| Op::Revoke { kind, index });
    // `true`: append with liveness checks (as a writer-facing node); `false`: apply (as a projector).
    (
        prop_oneof![3 => issue, 5 => narrow, 2 => revoke],
        any::<bool>(),
    )
}

/// A token as the naive recomputation sees it.
#[derive(Debug, Clone)]
struct Node {
    token: TokenRef,
    parent: Option<EventId>,
    depth: u32,
    subject: String,
    holder: String,
    performer: String,
    signer: baton_core::KeyId,
    expires_at_s: i64,
}

/// Recomputes every token's status from scratch: each revocation is pushed down
/// the subtree of every link it hits; the cause is the nearest hit, in the
/// documented order (token, holder, performer, signing key; the subject last).
fn naive(events: &[(baton_core::Envelope, Event)], now_s: i64) -> HashMap<TokenRef, TokenStatus> {
    let mut nodes: BTreeMap<EventId, Node> = BTreeMap::new();
    let mut revoked: BTreeMap<RevocationTarget, EventId> = BTreeMap::new();
    // Who bound each key: revoking a key distrusts the keys it bound, too.
    let mut binder: HashMap<baton_core::KeyId, baton_core::KeyId> = HashMap::new();
    for (envelope, event) in events {
        let id = envelope.id();
        match &event.body {
            Body::ClientRegistered(reg) => {
                binder.extend(reg.public_keys.iter().map(|k| (k.key_id(), event.signer)));
            }
            Body::TokenIssued(t) => {
                nodes.insert(
                    id,
                    Node {
                        token: t.token.clone(),
                        parent: None,
                        depth: 0,
                        subject: t.subject.to_string(),
                        holder: t.holder.to_string(),
                        performer: t.issuer.to_string(),
                        signer: event.signer,
                        expires_at_s: t.expires_at_s,
                    },
                );
            }
            Body::ScopeNarrowed(h) => {
                let depth = nodes[&h.parent].depth + 1;
                nodes.insert(
                    id,
                    Node {
                        token: h.token.clone(),
                        parent: Some(h.parent),
                        depth,
                        subject: h.on_behalf_of.to_string(),
                        holder: h.holder.to_string(),
                        performer: h.performed_by.to_string(),
                        signer: event.signer,
                        expires_at_s: h.expires_at_s,
                    },
                );
            }
            Body::Revoked(r) => {
                let slot = revoked.entry(r.target.clone()).or_insert(id);
                *slot = (*slot).min(id);
            }
            _ => {}
        }
    }
    let subtree = |from: EventId| -> Vec<EventId> {
        let mut out = vec![from];
        let mut i = 0;
        while i < out.len() {
            let at = out[i];
            out.extend(
                nodes
                    .iter()
                    .filter(|(_, n)| n.parent == Some(at))
                    .map(|(id, _)| *id),
            );
            i += 1;
        }
        out
    };
    // The keys a signer's trust rests on, nearest first: itself, its binder, …
    let chain = |signer: baton_core::KeyId| -> Vec<baton_core::KeyId> {
        let mut out = vec![signer];
        while let Some(next) = binder.get(out.last().expect("non-empty")) {
            out.push(*next);
        }
        out
    };
    let mut best: HashMap<EventId, (Cause, usize)> = HashMap::new();
    let offer = |best: &mut HashMap<EventId, (Cause, usize)>,
                 leaf: EventId,
                 link: EventId,
                 via: Via,
                 level: usize,
                 target: &RevocationTarget,
                 revocation: EventId| {
        let distance = nodes[&leaf].depth - nodes[&link].depth;
        let cause = Cause {
            revocation,
            target: target.clone(),
            hit: RevocationHit {
                link: nodes[&link].token.clone(),
                distance,
                via,
            },
        };
        let better = best
            .get(&leaf)
            .is_none_or(|(b, l)| (distance, via, level) < (b.hit.distance, b.hit.via, *l));
        if better {
            best.insert(leaf, (cause, level));
        }
    };
    for (target, &revocation) in &revoked {
        for (&link, node) in &nodes {
            let vias: Vec<(Via, usize)> = match target {
                RevocationTarget::Token(t) if *t == node.token => vec![(Via::Token, 0)],
                RevocationTarget::Client(c) => {
                    let mut v = Vec::new();
                    if c.as_str() == node.holder {
                        v.push((Via::Holder, 0))
                    }
                    if c.as_str() == node.performer {
                        v.push((Via::Performer, 0))
                    }
                    v
                }
                RevocationTarget::Key(k) => chain(node.signer)
                    .iter()
                    .position(|key| key == k)
                    .map(|level| vec![(Via::SigningKey, level)])
                    .unwrap_or_default(),
                // The subject is found at the root and reaches the whole tree.
                RevocationTarget::Subject(s)
                    if s.as_str() == node.subject && node.parent.is_none() =>
                {
                    vec![(Via::Subject, 0)]
                }
                _ => vec![],
            };
            for (via, level) in vias {
                for leaf in subtree(link) {
                    offer(&mut best, leaf, link, via, level, target, revocation);
                }
            }
        }
    }
    nodes
        .iter()
        .map(|(id, node)| {
            let status = match best.remove(id) {
                Some((cause, _)) => TokenStatus::Revoked(cause),
                None if node.expires_at_s <= now_s => TokenStatus::Expired {
                    expired_at_s: node.expires_at_s,
                },
                None => TokenStatus::Active {
                    expires_at_s: node.expires_at_s,
                },
            };
            (node.token.clone(), status)
        })
        .collect()
}

fn run(ops: &[(Op, bool)], now_s: i64) -> (MemoryLedger, usize) {
    let mut world = World::new();
    let mut ledger = MemoryLedger::new(world.policy());
    for (envelope, event) in world.setup.clone() {
        ledger.apply(&envelope, &event).unwrap();
    }
    let mut tokens: Vec<EventId> = Vec::new();
    let mut refused = 0;
    for (n, (op, live)) in ops.iter().enumerate() {
        let jti = format!("t{n}");
        let signed = match op {
            Op::Issue {
                holder,
                subject: s,
                scopes,
                tools,
                ttl_s,
            } => world.issue(
                &jti,
                SUBJECTS[*s],
                CLIENTS[*holder].0,
                *scopes,
                *tools,
                GrantType::AuthorizationCodePkce,
                0,
                *ttl_s,
            ),
            Op::Narrow {
                parent,
                holder,
                scopes,
                tools,
                shrink_s,
                via_as,
            } => {
                if tokens.is_empty() {
                    continue;
                }
                let parent = ledger
                    .token(&tokens[parent % tokens.len()])
                    .unwrap()
                    .unwrap();
                let holder_may_delegate = CLIENTS.iter().any(|c| {
                    c.0 == parent.holder.as_str() && c.2 != baton_core::ClientRole::ToolEndpoint
                });
                let performer = if *via_as || !holder_may_delegate {
                    AS.to_owned()
                } else {
                    parent.holder.to_string()
                };
                let scopes = *scopes & common::mask(&common::SCOPES, &parent.scopes);
                let tools = *tools & common::mask(&common::TOOLS, &parent.tools);
                let expires = (parent.expires_at_s - shrink_s).max(parent.issued_at_s + 1);
                world.narrow(
                    &jti,
                    parent.event,
                    parent.root,
                    parent.depth + 1,
                    parent.subject.as_str(),
                    &performer,
                    CLIENTS[*holder].0,
                    scopes,
                    tools,
                    parent.issued_at_s,
                    expires,
                )
            }
            Op::Revoke { kind, index } => {
                let target = match kind {
                    0 if !tokens.is_empty() => RevocationTarget::Token(
                        ledger
                            .token(&tokens[index % tokens.len()])
                            .unwrap()
                            .unwrap()
                            .token
                            .clone(),
                    ),
                    1 => RevocationTarget::Client(client(CLIENTS[index % CLIENTS.len()].0)),
                    2 => RevocationTarget::Subject(subject(SUBJECTS[index % SUBJECTS.len()])),
                    _ => {
                        let ids: Vec<&str> = CLIENTS.iter().map(|c| c.0).chain([AS]).collect();
                        RevocationTarget::Key(world.key_id_of(ids[index % ids.len()]))
                    }
                };
                world.revoke_by_root(target)
            }
        };
        let result = if *live {
            ledger.append(&signed.0, &signed.1, now_s)
        } else {
            ledger.apply(&signed.0, &signed.1)
        };
        match result {
            Ok(_) => {
                if matches!(signed.1.body, Body::TokenIssued(_) | Body::ScopeNarrowed(_)) {
                    tokens.push(signed.0.id());
                }
            }
            Err(refusal) => {
                // Only liveness refusals are expected: the ops build well-founded events.
                assert!(*live, "apply refused a well-founded event: {refusal}");
                refused += 1;
            }
        }
    }
    (ledger, refused)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incremental_status_equals_naive_recomputation(ops in proptest::collection::vec(op(), 1..60), now_s in 0i64..120) {
        let (ledger, _) = run(&ops, now_s);
        let expected = naive(ledger.events(), now_s);
        for record in ledger.tokens() {
            let check = check_token(&ledger, ledger.policy(), &record.token, None, now_s).unwrap();
            prop_assert_eq!(&check.status, &expected[&record.token], "token {}", record.token);
        }
        let unknown = TokenRef::jti("t", "never-issued").unwrap();
        prop_assert_eq!(check_token(&ledger, ledger.policy(), &unknown, None, now_s).unwrap().status, TokenStatus::Unknown);
    }
}

#[test]
fn the_naive_recomputation_sees_cascades_at_all() {
    // Guard against a vacuous property: a fixed sequence must produce revoked,
    // active and expired tokens, so both sides have something to disagree on.
    let ops = vec![
        (
            Op::Issue {
                holder: 3,
                subject: 0,
                scopes: 0xff,
                tools: 0xff,
                ttl_s: 1000,
            },
            false,
        ),
        (
            Op::Narrow {
                parent: 0,
                holder: 0,
                scopes: 0x0f,
                tools: 0x0f,
                shrink_s: 10,
                via_as: false,
            },
            false,
        ),
        (
            Op::Narrow {
                parent: 1,
                holder: 1,
                scopes: 0x07,
                tools: 0x07,
                shrink_s: 10,
                via_as: false,
            },
            false,
        ),
        (
            Op::Issue {
                holder: 0,
                subject: 1,
                scopes: 0x01,
                tools: 0x01,
                ttl_s: 5,
            },
            false,
        ),
        (Op::Revoke { kind: 0, index: 1 }, false),
    ];
    let (ledger, _) = run(&ops, 100);
    let statuses = naive(ledger.events(), 100);
    let count = |f: fn(&TokenStatus) -> bool| statuses.values().filter(|s| f(s)).count();
    assert_eq!(count(|s| matches!(s, TokenStatus::Revoked(_))), 2);
    assert_eq!(count(|s| matches!(s, TokenStatus::Active { .. })), 1);
    assert_eq!(count(|s| matches!(s, TokenStatus::Expired { .. })), 1);
    let t2 = TokenRef::jti("t", "t2").unwrap();
    match &statuses[&t2] {
        TokenStatus::Revoked(cause) => {
            assert_eq!(cause.hit.distance, 1);
            assert_eq!(cause.hit.via, Via::Token);
        }
        other => panic!("t2 should be revoked through its parent, got {other:?}"),
    }
}
