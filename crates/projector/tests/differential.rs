//! The ledger's state transition exists twice: `MemoryLedger::record` in
//! baton-core (offline verification, the append path's overlay) and the
//! projector's `apply` over sled. This property test drives random histories
//! through both — every event kind, revocations of every target kind,
//! duplicates, forgeries (a flipped signature bit), refusals (among them
//! registrations and grants beyond the registrar's or issuer's ceiling, and
//! registrations of a registered id in another case or of an id in
//! `user:`; a reserved id
//! registered by an authorization server, refused at append only, is taken
//! by both), and records
//! ahead of their dependencies (parked, then applied) — and compares every
//! answer: which events are applied, and every token's status and cause.
//! The reference model parks and retries exactly as the projector promises
//! to: a record missing a dependency waits and is retried after every event
//! that applies.

#![allow(clippy::unwrap_used)]

use baton_core::{
    Applied, Body, CheckError, ClientKind, ClientRole, Envelope, Event, MemoryLedger, Name, Policy,
    RevocationTarget, check_token,
};
use baton_log::{EmbeddedLog, Position, ReadRecord};
use baton_projector::{Projector, ProjectorOptions};
use baton_testkit::Fixture;
use baton_testkit::{SCOPES, TOOLS};
use proptest::prelude::*;

const NOW_S: i64 = 1_800_000_000;
const HOLDERS: [&str; 5] = ["agent", "gateway", "server-a", "server-b", "server-c"];
const SUBJECTS: [&str; 2] = ["user:alice", "user:bob"];
/// An id the history's configuration reserves (a revocation delegate's).
const RESERVED: &str = "node";
/// A client a trust root registered with a scope beyond the authorization
/// server's ceiling.
const WIDE_HOLDER: &str = "wide";
const WIDE_SCOPE: &str = "wide:extra";

#[derive(Debug, Clone)]
enum Op {
    Issue {
        subject: usize,
        holder: usize,
    },
    /// A hop from an earlier token, performed by `performer` (the parent's
    /// holder when `performer` is `None`, else possibly unauthorized).
    Narrow {
        parent: usize,
        performer: Option<usize>,
        holder: usize,
        drop: bool,
    },
    RevokeToken(usize),
    RevokeClient(usize),
    RevokeSubject(usize),
    RevokeKey(usize),
    /// A client registered by the authorization server (or a trust root),
    /// with a ceiling beyond the authorization server's (`wide`), under a
    /// fresh id, an id the configuration reserves, a registered id in
    /// another case, or an id in the users' namespace (`name` 0, 1, 2, 3).
    Register {
        wide: bool,
        name: u8,
        by_root: bool,
    },
    /// A grant by the authorization server carrying a scope beyond its own
    /// ceiling, to the holder a trust root registered with that scope.
    IssueWide,
    Duplicate(usize),
    Forge(usize),
    /// Moves the last event two places earlier: it may now come before what
    /// it depends on.
    Swap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..SUBJECTS.len(), 0..HOLDERS.len()).prop_map(|(subject, holder)| Op::Issue { subject, holder }),
        5 => (any::<usize>(), proptest::option::weighted(0.2, 0..HOLDERS.len()), 0..HOLDERS.len(), any::<bool>())
            .prop_map(|(parent, performer, holder, drop)| Op::Narrow { parent, performer, holder, drop }),
        1 => any::<usize>().prop_map(Op::RevokeToken),
        1 => (0..HOLDERS.len()).prop_map(Op::RevokeClient),
        1 => (0..SUBJECTS.len()).prop_map(Op::RevokeSubject),
        1 => (0..HOLDERS.len()).prop_map(Op::RevokeKey),
        1 => (any::<bool>(), 0u8..4, any::<bool>()).prop_map(|(wide, name, by_root)| Op::Register { wide, name, by_root }),
        1 => Just(Op::IssueWide),
        1 => any::<usize>().prop_map(Op::Duplicate),
        1 => any::<usize>().prop_map(Op::Forge),
        1 => Just(Op::Swap),
    ]
}

/// The history's events, in log order, and the token names it used.
fn history(ops: &[Op]) -> (Policy, Vec<Envelope>, Vec<String>) {
    let (mut f, mut events) = Fixture::standard(NOW_S);
    let mut policy = f.policy();
    policy
        .revocation_delegates
        .insert(Fixture::client_id(RESERVED));
    let wide_scopes: Vec<&str> = SCOPES.iter().copied().chain([WIDE_SCOPE]).collect();
    events.push(f.register_with_ceiling(
        WIDE_HOLDER,
        ClientKind::McpServer,
        ClientRole::ToolEndpoint,
        None,
        &wide_scopes,
        &TOOLS,
    ));
    let mut tokens: Vec<(String, String)> = Vec::new(); // (jti, holder)
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Register {
                wide,
                name,
                by_root,
            } => {
                let id = match name {
                    0 => format!("c{n}"),
                    1 => RESERVED.to_owned(),
                    2 => "Gateway".to_owned(),
                    _ => format!("user:c{n}"),
                };
                let scopes = if *wide { &wide_scopes[..] } else { &SCOPES[..] };
                let by = (!by_root).then_some("as");
                events.push(f.register_with_ceiling(
                    &id,
                    ClientKind::Service,
                    ClientRole::ToolEndpoint,
                    by,
                    scopes,
                    &TOOLS,
                ));
            }
            Op::IssueWide => {
                let jti = format!("t{n}");
                let issued = f.issue("as", &jti, SUBJECTS[0], WIDE_HOLDER, 3600);
                let (_, event) =
                    baton_proto::decode_signed(&baton_proto::encode_signed(&issued)).unwrap();
                let Body::TokenIssued(mut grant) = event.body else {
                    unreachable!("a grant")
                };
                grant.scopes.insert(Name::new("scope", WIDE_SCOPE).unwrap());
                let key = f.client("as").key.clone();
                events.push(f.seal_with(&key, Body::TokenIssued(grant)));
                tokens.push((jti, WIDE_HOLDER.to_owned()));
            }
            Op::Issue { subject, holder } => {
                let jti = format!("t{n}");
                events.push(f.issue("as", &jti, SUBJECTS[*subject], HOLDERS[*holder], 3600));
                tokens.push((jti, HOLDERS[*holder].to_owned()));
            }
            Op::Narrow {
                parent,
                performer,
                holder,
                drop,
            } if !tokens.is_empty() => {
                let (parent, parent_holder) = tokens[parent % tokens.len()].clone();
                let performer = performer.map_or(parent_holder, |p| HOLDERS[p].to_owned());
                let jti = format!("t{n}");
                let dropped: &[&str] = if *drop {
                    &["repo:write", "fs/write"]
                } else {
                    &[]
                };
                events.push(f.narrow(&parent, &jti, &performer, HOLDERS[*holder], dropped, 1));
                tokens.push((jti, HOLDERS[*holder].to_owned()));
            }
            Op::RevokeToken(i) if !tokens.is_empty() => {
                let jti = &tokens[i % tokens.len()].0;
                events.push(f.revoke(RevocationTarget::Token(Fixture::token(jti))));
            }
            Op::RevokeClient(i) => {
                events.push(f.revoke(RevocationTarget::Client(Fixture::client_id(HOLDERS[*i]))));
            }
            Op::RevokeSubject(i) => {
                events.push(f.revoke(RevocationTarget::Subject(Fixture::subject(SUBJECTS[*i]))));
            }
            Op::RevokeKey(i) => {
                let key = f.client(HOLDERS[*i]).key.key_id();
                events.push(f.revoke(RevocationTarget::Key(key)));
            }
            Op::Duplicate(i) => {
                let copy = events[i % events.len()].clone();
                events.push(copy);
            }
            Op::Forge(i) => {
                let original = &events[i % events.len()];
                let mut signature = *original.signature();
                signature[7] ^= 0x20;
                let forged = Envelope::from_parts(
                    original.payload().to_vec(),
                    original.payload_type().to_owned(),
                    &original.key_id().0,
                    &signature,
                )
                .unwrap();
                events.push(forged);
            }
            Op::Swap if events.len() >= 3 => {
                let last = events.pop().unwrap();
                let at = events.len() - 2;
                events.insert(at, last);
            }
            _ => {}
        }
    }
    let names = tokens.into_iter().map(|(jti, _)| jti).collect();
    (policy, events, names)
}

/// The reference: MemoryLedger, parking records that miss a dependency and
/// retrying them after every event that applies.
fn reference(policy: Policy, events: &[Envelope]) -> MemoryLedger {
    let mut ledger = MemoryLedger::new(policy);
    let mut parked: Vec<(Envelope, Event)> = Vec::new();
    for envelope in events {
        let opened = baton_proto::decode_signed(&baton_proto::encode_signed(envelope)).unwrap();
        match ledger.try_apply(&opened.0, &opened.1, None) {
            Ok(Applied::New(_)) => loop {
                let before = parked.len();
                parked.retain(|(envelope, event)| {
                    matches!(
                        ledger.try_apply(envelope, event, None),
                        Err(CheckError::Refused(refusal)) if refusal.is_missing_dependency()
                    )
                });
                if parked.len() == before {
                    break;
                }
            },
            Ok(Applied::Duplicate(_)) => {}
            Err(CheckError::Refused(refusal)) if refusal.is_missing_dependency() => {
                parked.push(opened)
            }
            Err(CheckError::Refused(_)) => {}
            Err(CheckError::View(never)) => match never {},
        }
    }
    ledger
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_ledger_and_projector_agree(ops in proptest::collection::vec(op(), 1..40), batch in 1usize..8) {
        let (policy, events, tokens) = history(&ops);
        let memory = reference(policy.clone(), &events);

        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
        let projector = Projector::open(log, &dir.path().join("projection"), ProjectorOptions::new(policy.clone())).unwrap();
        let records: Vec<ReadRecord> = events
            .iter()
            .enumerate()
            .map(|(offset, envelope)| ReadRecord {
                position: Position { partition: 0, offset: offset as u64 },
                key: Vec::new(),
                value: baton_proto::encode_signed(envelope),
            })
            .collect();
        for chunk in records.chunks(batch) {
            projector.apply_records(chunk).unwrap();
        }
        let handle = projector.handle();

        for envelope in &events {
            let id = envelope.id();
            let in_memory = baton_core::LedgerView::contains_event(&memory, &id).unwrap();
            let projected = handle.event(&id).unwrap().is_some();
            prop_assert_eq!(in_memory, projected, "event {} applied by one side only", id);
        }
        for jti in &tokens {
            let token = Fixture::token(jti);
            for now in [NOW_S, NOW_S + 3599, NOW_S + 7200] {
                let expected = check_token(&memory, &policy, &token, None, now).unwrap();
                let got = handle.check(&token, None, now).unwrap();
                prop_assert_eq!(&expected.status, &got.status, "token {} at {}", jti, now);
                prop_assert_eq!(&expected.record, &got.record, "record of {}", jti);
            }
        }
    }
}
