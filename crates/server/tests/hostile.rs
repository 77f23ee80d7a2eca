//! What a hostile client (and an unlucky operator) did to Append, Check and
//! Watch over the wire, one regression test each (issue 8).

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{
    Body, ClientKind, ClientRegistered, ClientRole, Envelope, KeysRotated, Name,
    RegistrationMethod, SigningKey,
};
use baton_log::EventLog;
use baton_proto::v1;
use baton_server::Limits;
use baton_testkit::Fixture;
use common::{Node, check_request, now_s};
use tokio_stream::StreamExt as _;
use tonic::Code;

fn request(events: &[&Envelope]) -> v1::AppendRequest {
    v1::AppendRequest {
        events: events.iter().map(|e| v1::SignedEvent::from(*e)).collect(),
        ..Default::default()
    }
}

/// The ids of the events ListEvents returns for `client`, once the node has
/// applied `token`.
async fn events_of(node: &Node, client: &str, token: &str) -> Vec<Vec<u8>> {
    let mut stream = node
        .provenance()
        .await
        .list_events(v1::ListEventsRequest {
            client_id: client.into(),
            consistency_token: token.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(entry) = stream.next().await {
        let entry = entry.unwrap();
        ids.push(entry.event.unwrap().event_id);
    }
    ids
}

fn registration(f: &mut Fixture, id: &str, key: &SigningKey) -> Envelope {
    let names = |list: &[&str]| list.iter().map(|n| Name::new("n", n).unwrap()).collect();
    let body = Body::ClientRegistered(ClientRegistered {
        client: Fixture::client_id(id),
        kind: ClientKind::McpServer,
        role: ClientRole::DelegatingLayer,
        registration: RegistrationMethod::PreRegistered,
        metadata_document_url: None,
        public_keys: vec![key.public_key()],
        key_proofs: vec![
            key.prove_registration(&Fixture::client_id(id), Some(&Fixture::client_id("as"))),
        ],
        scopes: names(&["files:read"]),
        tools: names(&["fs/read"]),
        registered_by: Some(Fixture::client_id("as")),
    });
    let as_key = f.client("as").key.clone();
    f.seal_with(&as_key, body)
}

/// Defect 4: concurrent Appends that claim one exclusive name — a client id,
/// a token reference, a key bound by registration or by rotation — were
/// each answered ACCEPTED, and the projector kept only one. In every round,
/// what was ACCEPTED is exactly what was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_on_every_exclusive_claim_accept_only_what_is_applied() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    let mut accepted_total = 0;
    for round in 0..12 {
        let kind = round % 4;
        let shared_key = SigningKey::generate();
        let (a, b, client_a, client_b) = match kind {
            // One client id, two registrations.
            0 => {
                let id = format!("dup{round}");
                let a = registration(&mut f, &id, &SigningKey::generate());
                let b = registration(&mut f, &id, &SigningKey::generate());
                (a, b, id.clone(), id)
            }
            // One token reference, two grants.
            1 => {
                let jti = format!("race{round}");
                let a = f.issue("as", &jti, &format!("user:a{round}"), "agent", 3600);
                let b = f.issue("as", &jti, &format!("user:b{round}"), "agent", 3600);
                (a, b, "agent".into(), "agent".into())
            }
            // One public key, registered to two clients.
            2 => {
                let (ida, idb) = (format!("ka{round}"), format!("kb{round}"));
                let a = registration(&mut f, &ida, &shared_key);
                let b = registration(&mut f, &idb, &shared_key);
                (a, b, ida, idb)
            }
            // One public key, rotated into two clients.
            _ => {
                let (ida, idb) = (format!("ra{round}"), format!("rb{round}"));
                let (ka, kb) = (SigningKey::generate(), SigningKey::generate());
                let (reg_a, reg_b) = (
                    registration(&mut f, &ida, &ka),
                    registration(&mut f, &idb, &kb),
                );
                node.append(&[reg_a, reg_b]).await;
                let rotate = |f: &mut Fixture, id: &str, key: &SigningKey| {
                    let body = Body::KeysRotated(KeysRotated {
                        client: Fixture::client_id(id),
                        add: vec![shared_key.public_key()],
                        add_proofs: vec![shared_key.prove_possession(&Fixture::client_id(id))],
                        retire: vec![],
                    });
                    f.seal_with(key, body)
                };
                let a = rotate(&mut f, &ida, &ka);
                let b = rotate(&mut f, &idb, &kb);
                (a, b, ida, idb)
            }
        };
        let before = node.log.end_offsets().await.unwrap();
        let (mut la, mut lb) = (node.ledger().await, node.ledger().await);
        let (ra, rb) = tokio::join!(la.append(request(&[&a])), lb.append(request(&[&b])));
        let mut accepted = 0;
        for (result, event, client) in [(&ra, &a, &client_a), (&rb, &b, &client_b)] {
            match result {
                Ok(response) => {
                    let response = response.get_ref();
                    assert_eq!(
                        response.results[0].outcome,
                        v1::AppendOutcome::Accepted as i32
                    );
                    let applied = events_of(&node, client, &response.consistency_token).await;
                    assert!(
                        applied.contains(&event.id().0.to_vec()),
                        "round {round} (kind {kind}): ACCEPTED {} but not applied",
                        event.id()
                    );
                    accepted += 1;
                }
                Err(refused) => assert!(
                    matches!(refused.code(), Code::Aborted | Code::AlreadyExists),
                    "round {round} (kind {kind}): {refused:?}"
                ),
            }
        }
        assert_eq!(accepted, 1, "round {round} (kind {kind}): {ra:?} / {rb:?}");
        // The loser was refused before it was written: the log grew by one.
        let after = node.log.end_offsets().await.unwrap();
        assert_eq!(
            after[0],
            before[0] + 1,
            "round {round} (kind {kind}): {ra:?} / {rb:?}"
        );
        accepted_total += accepted;
    }
    assert_eq!(accepted_total, 12);
    node.stop().await;
}

/// Issue 21: concurrent Appends of copies of one event were each answered
/// ACCEPTED, each at its own log offset, though the event is applied at one
/// of them. Now, for every kind of event, in every round: exactly one copy
/// is ACCEPTED, every other is DUPLICATE, all name one position, and that
/// is the position at which the event is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_one_event_get_one_acceptance_and_one_position() {
    const COPIES: usize = 6;
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    for round in 0..15 {
        let kind = round % 5;
        let event = match kind {
            0 => f.issue("as", &format!("copy{round}"), "user:alice", "agent", 3600),
            1 => {
                let parent = f.issue("as", &format!("parent{round}"), "user:alice", "agent", 3600);
                node.append(&[parent]).await;
                f.narrow(
                    &format!("parent{round}"),
                    &format!("hop{round}"),
                    "agent",
                    "gateway",
                    &[],
                    60,
                )
            }
            2 => {
                let grant = f.issue("as", &format!("doomed{round}"), "user:bob", "agent", 3600);
                node.append(&[grant]).await;
                f.revoke(baton_core::RevocationTarget::Token(Fixture::token(
                    &format!("doomed{round}"),
                )))
            }
            3 => registration(&mut f, &format!("reg{round}"), &SigningKey::generate()),
            _ => {
                let id = format!("rot{round}");
                let key = SigningKey::generate();
                node.append(&[registration(&mut f, &id, &key)]).await;
                let added = SigningKey::generate();
                let body = Body::KeysRotated(KeysRotated {
                    client: Fixture::client_id(&id),
                    add: vec![added.public_key()],
                    add_proofs: vec![added.prove_possession(&Fixture::client_id(&id))],
                    retire: vec![],
                });
                f.seal_with(&key, body)
            }
        };
        let mut calls = Vec::new();
        for _ in 0..COPIES {
            let mut client = node.ledger().await;
            let request = request(&[&event]);
            calls.push(async move { client.append(request).await });
        }
        // Each copy on its own connection, all at once.
        let calls: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        let mut accepted = 0;
        let mut positions = std::collections::BTreeSet::new();
        let mut token = String::new();
        for answer in &answers {
            let answer = answer
                .as_ref()
                .unwrap_or_else(|e| panic!("round {round} (kind {kind}): {e:?}"))
                .get_ref();
            let result = &answer.results[0];
            if result.outcome == v1::AppendOutcome::Accepted as i32 {
                accepted += 1;
            } else {
                assert_eq!(
                    result.outcome,
                    v1::AppendOutcome::Duplicate as i32,
                    "round {round} (kind {kind})"
                );
            }
            let at = result.position.as_ref().expect("a position");
            positions.insert((at.partition, at.offset));
            token.clone_from(&answer.consistency_token);
        }
        assert_eq!(accepted, 1, "round {round} (kind {kind}): {answers:?}");
        assert_eq!(
            positions.len(),
            1,
            "round {round} (kind {kind}): {answers:?}"
        );
        // That position is where the event is stored.
        let mut stream = node
            .provenance()
            .await
            .list_events(v1::ListEventsRequest {
                consistency_token: token,
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut stored = None;
        while let Some(entry) = stream.next().await {
            let entry = entry.unwrap().event.unwrap();
            if entry.event_id == event.id().0.to_vec() {
                let at = entry.position.unwrap();
                stored = Some((at.partition, at.offset));
            }
        }
        assert_eq!(
            stored.as_ref(),
            positions.first(),
            "round {round} (kind {kind})"
        );
    }
    node.stop().await;
}

/// Defect 5: a batch whose first event carries a bad signature took the
/// claims of every event before being checked, so garbage naming someone's
/// token reference made their legitimate Append fail with ABORTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_garbage_claims_nothing() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    let stranger = SigningKey::generate();
    for round in 0..20 {
        let jti = format!("victim{round}");
        let legit = f.issue("as", &jti, "user:alice", "agent", 3600);
        // Another grant of the victim's token reference, with a signature
        // by a key the payload does not name: garbage. Padding slows its check.
        let other = f.issue("as", &jti, "user:mallory", "agent", 3600);
        let garbage = Envelope::from_parts(
            other.payload().to_vec(),
            other.payload_type().to_owned(),
            &f.client("as").key.key_id().0,
            &stranger_signature(&stranger, &other),
        )
        .unwrap();
        let padding: Vec<Envelope> = (0..999)
            .map(|i| f.issue("as", &format!("pad{round}-{i}"), "user:bob", "agent", 3600))
            .collect();
        // Last, so that checking the batch up to it takes a while.
        let mut owned = padding;
        owned.push(garbage);
        let (mut lg, mut ll) = (node.ledger().await, node.ledger().await);
        let garbage_call = tokio::spawn(async move {
            let refs: Vec<&Envelope> = owned.iter().collect();
            lg.append(request(&refs)).await
        });
        // The victim appends (and retries, idempotently) while the garbage
        // is in flight: no attempt may be refused.
        loop {
            let attempt = ll.append(request(&[&legit])).await;
            let attempt = attempt
                .unwrap_or_else(|e| panic!("round {round}: the victim's append failed: {e:?}"));
            assert_ne!(
                attempt.get_ref().results[0].outcome,
                v1::AppendOutcome::Unspecified as i32
            );
            if garbage_call.is_finished() {
                break;
            }
        }
        let rl = ll.append(request(&[&legit])).await;
        let rg = garbage_call.await.unwrap();
        let refused = rg.expect_err("the garbage batch is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("events[999]"), "{refused:?}");
        let last =
            rl.unwrap_or_else(|e| panic!("round {round}: the victim's append failed: {e:?}"));
        assert_eq!(
            last.get_ref().results[0].outcome,
            v1::AppendOutcome::Duplicate as i32
        );
    }
    node.stop().await;
}

fn stranger_signature(key: &SigningKey, of: &Envelope) -> Vec<u8> {
    Envelope::sign(key, of.payload_type(), of.payload().to_vec())
        .unwrap()
        .signature()
        .to_vec()
}

/// Defect 9: a megabyte of consistency token, resume token or payload type
/// came back quoted whole in `grpc-message`, which stock clients saw as
/// RESOURCE_EXHAUSTED. Every echo is truncated and every message bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_input_is_refused_with_a_short_message() {
    let (f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    let huge = format!("ct1.{}", "z".repeat(1 << 20));
    let mut check = check_request("anything");
    check.consistency_token = huge.clone();
    let refused = node.revocation().await.check(check).await.unwrap_err();
    short_invalid_argument(&refused, "consistency_token");
    assert!(
        refused.message().starts_with("consistency_token: "),
        "{}",
        refused.message()
    );
    let watch = v1::WatchRequest {
        resume_token: huge,
        ..Default::default()
    };
    let refused = node.revocation().await.watch(watch).await.unwrap_err();
    short_invalid_argument(&refused, "resume_token");
    let mut signed = v1::SignedEvent::from(&setup[0]);
    signed.payload_type = "x".repeat(1 << 20);
    let refused = node
        .ledger()
        .await
        .append(v1::AppendRequest {
            events: vec![signed],
            ..Default::default()
        })
        .await
        .unwrap_err();
    short_invalid_argument(&refused, "payload_type");
    node.stop().await;
}

/// INVALID_ARGUMENT naming `field`, in a message that does not grow with
/// the input.
#[track_caller]
fn short_invalid_argument(refused: &tonic::Status, field: &str) {
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains(field), "{}", refused.message());
    assert!(
        refused.message().len() <= 1100,
        "{} bytes",
        refused.message().len()
    );
}

/// Defect 10: a Watch resumed from beyond the log's end (a token from
/// another cluster or a rebuilt log) was accepted and stayed silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_beyond_the_log_end_is_refused() {
    let (f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    let appended = node.append(&setup).await;
    // The token of what was appended is fine ...
    let watch = v1::WatchRequest {
        resume_token: appended.consistency_token.clone(),
        ..Default::default()
    };
    node.revocation().await.watch(watch).await.unwrap();
    // ... one past the end is not.
    let watch = v1::WatchRequest {
        resume_token: "ct1.ffff".into(),
        ..Default::default()
    };
    let refused = node.revocation().await.watch(watch).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("resume_token"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("beyond the log's end"),
        "{}",
        refused.message()
    );
    node.stop().await;
}

/// Writes `event` straight into the node's log, past its Append (as any
/// writer to the topic could).
async fn write_straight(node: &Node, event: &Envelope) {
    let written = node
        .log
        .append(vec![baton_log::Record {
            key: Vec::new(),
            value: baton_proto::encode_signed(event),
        }])
        .await;
    assert!(written[0].is_ok(), "{written:?}");
}

/// Defect 11: a record waiting for a dependency (written straight into the
/// log) held back every Append on its partition until it was quarantined.
/// Here the dependency comes only after an unrelated Append has answered;
/// had that Append waited for the parked record to settle, the record would
/// have been quarantined (5 s grace) and its token would be UNKNOWN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_record_does_not_hold_back_unrelated_appends() {
    let (mut f, setup) = Fixture::standard(now_s());
    let limits = Limits {
        apply_wait_max: std::time::Duration::from_secs(20),
        ..Limits::default()
    };
    let node = Node::start(&f, limits, None).await;
    node.append(&setup).await;
    let parent = f.issue("as", "parent", "user:alice", "agent", 3600);
    let orphan = f.narrow("parent", "orphan", "agent", "gateway", &[], 60);
    write_straight(&node, &orphan).await;
    let unrelated = f.issue("as", "unrelated", "user:bob", "agent", 3600);
    let answered = node.append(&[unrelated]).await;
    assert_eq!(
        answered.results[0].outcome,
        v1::AppendOutcome::Accepted as i32
    );
    write_straight(&node, &parent).await;
    let later = f.issue("as", "later", "user:bob", "agent", 3600);
    let token = node.append(&[later]).await.consistency_token;
    let mut check = check_request("orphan");
    check.consistency_token = token;
    let answer = node
        .revocation()
        .await
        .check(check)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, v1::TokenStatus::Active as i32, "{answer:?}");
    node.stop().await;
}

/// A record parked for a parent the log does not hold (written straight into
/// it) does not hold back a Check carrying a consistency token past it: the
/// answer is the ledger as of the token's prefix, where the record waits. The
/// Check waits at most 1 s here, the record's park grace is 5 s: had the
/// Check waited for it to settle, it would answer UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_record_does_not_hold_back_a_consistent_check() {
    let (mut f, setup) = Fixture::standard(now_s());
    let limits = Limits {
        consistency_wait_max: std::time::Duration::from_secs(1),
        ..Limits::default()
    };
    let node = Node::start(&f, limits, None).await;
    node.append(&setup).await;
    let _never = f.issue("as", "never", "user:alice", "agent", 3600);
    let orphan = f.narrow("never", "orphan", "agent", "gateway", &[], 60);
    write_straight(&node, &orphan).await;
    let grant = f.issue("as", "mine", "user:bob", "agent", 3600);
    let token = node.append(&[grant]).await.consistency_token;
    let mut revocation = node.revocation().await;
    for (jti, status) in [
        ("mine", v1::TokenStatus::Active),
        ("orphan", v1::TokenStatus::Unknown),
    ] {
        let mut check = check_request(jti);
        check.consistency_token = token.clone();
        let answer = revocation.check(check).await.unwrap().into_inner();
        assert_eq!(answer.status, status as i32, "{jti}: {answer:?}");
    }
    node.stop().await;
}

/// A record parked for a parent the log does not hold (written straight
/// into it) holds back neither a Watch's revocations nor its checkpoints:
/// the stream follows what the node has read, as the node's own answers do.
/// The parked record — a hop and a revocation of it — is delivered when its
/// parent arrives and it applies, at its own, earlier position; and a
/// stream resumed with a token sent while it was parked delivers it too
/// (resume tokens never pass a parked record: another node may hold it
/// applied at its position), also when the stream it came from started past
/// the record (a token from a node that had applied it). The park grace is
/// ten minutes, so nothing here waits for the record to be quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_record_holds_back_neither_watch_nor_its_checkpoints() {
    use std::time::Duration;
    let (mut f, setup) = Fixture::standard(now_s());
    let limits = Limits {
        park_grace: Duration::from_secs(600),
        ..Limits::default()
    };
    let node = Node::start(&f, limits, None).await;
    node.append(&setup).await;
    let grant = f.issue("as", "held", "user:alice", "agent", 3600);
    node.append(&[grant]).await;
    let watch = |resume_token: String| {
        let node = &node;
        async move {
            node.revocation()
                .await
                .watch(v1::WatchRequest {
                    checkpoint_interval_ms: 100,
                    resume_token,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    // The first message within 20 s that `wanted` takes (each message before
    // it is shown to `wanted` too).
    async fn until(
        stream: &mut tonic::Streaming<v1::WatchResponse>,
        what: &'static str,
        mut wanted: impl FnMut(&v1::WatchResponse) -> bool,
    ) -> v1::WatchResponse {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let message = stream.next().await.unwrap().unwrap();
                if wanted(&message) {
                    return message;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}"))
    }
    let mut stream = watch(String::new()).await;
    until(&mut stream, "a first checkpoint", |m| {
        m.checkpoint.is_some()
    })
    .await;

    let parent = f.issue("as", "later", "user:alice", "agent", 3600);
    let hop = f.narrow("later", "orphan", "agent", "gateway", &[], 600);
    let orphan_revoked = f.revoke(baton_core::RevocationTarget::Token(Fixture::token(
        "orphan",
    )));
    let written = node
        .log
        .append(vec![baton_log::Record {
            key: Vec::new(),
            value: baton_proto::encode_record(&[&hop, &orphan_revoked]),
        }])
        .await;
    let parked_at = written[0].clone().unwrap();
    let revocation = f.revoke(baton_core::RevocationTarget::Token(Fixture::token("held")));
    node.append(std::slice::from_ref(&revocation)).await;
    let applied_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(
        node.revocation()
            .await
            .check(check_request("held"))
            .await
            .unwrap()
            .into_inner()
            .status,
        v1::TokenStatus::Revoked as i32
    );
    // The revocation after the parked record comes, and then a checkpoint
    // vouching for a view confirmed after it was applied.
    let resume_while_parked = until(&mut stream, "the revocation after the parked record", |m| {
        assert_ne!(m.revocation_event_id, orphan_revoked.id().0.to_vec());
        m.revocation_event_id == revocation.id().0.to_vec()
    })
    .await
    .resume_token;
    until(
        &mut stream,
        "a checkpoint while the record is parked",
        |m| {
            m.checkpoint.as_ref().is_some_and(|checkpoint| {
                checkpoint.sent_at_unix_ms - checkpoint.view_age_ms.unwrap() as i64 > applied_ms
            })
        },
    )
    .await;
    // Still parked: its hop is not in the ledger.
    assert_eq!(
        node.revocation()
            .await
            .check(check_request("orphan"))
            .await
            .unwrap()
            .into_inner()
            .status,
        v1::TokenStatus::Unknown as i32
    );

    // A stream resumed from a token past the parked record (as one from a
    // node that applied it would be) gives resume tokens before it.
    let end = node.log.end_offsets().await.unwrap();
    let mut foreign = watch(baton_log::ConsistencyToken::new(end).to_string()).await;
    let foreign_resume = until(&mut foreign, "a checkpoint past the parked record", |m| {
        m.checkpoint.is_some()
    })
    .await
    .resume_token;

    // Its parent arrives: the parked revocation applies at its own position,
    // which the streams have passed, and is delivered.
    node.append(&[parent]).await;
    let late = until(&mut stream, "the parked revocation once it applies", |m| {
        m.revocation_event_id == orphan_revoked.id().0.to_vec()
    })
    .await;
    let position = late.position.unwrap();
    assert_eq!(
        (position.partition, position.offset),
        (parked_at.partition, parked_at.offset)
    );
    until(
        &mut foreign,
        "the parked revocation on the stream from past it",
        |m| m.revocation_event_id == orphan_revoked.id().0.to_vec(),
    )
    .await;
    // Streams resumed where those were while the record was parked deliver
    // it too.
    for (token, what) in [
        (
            resume_while_parked,
            "the parked revocation on a resumed stream",
        ),
        (foreign_resume, "the parked revocation resumed from past it"),
    ] {
        let mut resumed = watch(token).await;
        until(&mut resumed, what, |m| {
            m.revocation_event_id == orphan_revoked.id().0.to_vec()
        })
        .await;
    }
    node.stop().await;
}

/// Defect 13: with the log stalled (a Kafka cluster without quorum), Append
/// ended in the transport's `CANCELLED "Timeout expired"`; the outcome is
/// unknown and must be reported as such, before the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_answers_outcome_unknown_before_the_deadline() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    node.log.stall();
    let grant = f.issue("as", "stalled", "user:alice", "agent", 3600);
    let mut call = tonic::Request::new(request(&[&grant]));
    call.set_timeout(std::time::Duration::from_secs(2));
    let refused = node.ledger().await.append(call).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("outcome unknown"),
        "{}",
        refused.message()
    );
    assert!(
        refused
            .message()
            .contains("retrying the whole batch is safe"),
        "{}",
        refused.message()
    );
    // The write may still land: its claims stay held, so another event
    // naming the same token cannot be accepted meanwhile.
    let rival = f.issue("as", "stalled", "user:bob", "agent", 3600);
    let refused = node.refused(&[rival]).await;
    assert_eq!(refused.code(), Code::Aborted, "{refused:?}");
    node.stop().await;
}

/// Review: revocations appended in one batch share a log record; a watcher
/// that resumes with the token of the first must still receive the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_inside_a_batch_record_loses_nothing() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    let a = f.issue("as", "wa", "user:alice", "agent", 3600);
    let b = f.issue("as", "wb", "user:bob", "agent", 3600);
    node.append(&[a, b]).await;
    let first = f.revoke(baton_core::RevocationTarget::Token(Fixture::token("wa")));
    let second = f.revoke(baton_core::RevocationTarget::Token(Fixture::token("wb")));
    node.append(&[first.clone(), second.clone()]).await;
    let mut stream = node
        .revocation()
        .await
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let message = stream.next().await.unwrap().unwrap();
    assert_eq!(message.revocation_event_id, first.id().0.to_vec());
    drop(stream);
    let mut resumed = node
        .revocation()
        .await
        .watch(v1::WatchRequest {
            resume_token: message.resume_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while !seen.contains(&second.id().0.to_vec()) {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), resumed.next())
            .await
            .expect("the second revocation never came")
            .unwrap()
            .unwrap();
        seen.push(next.revocation_event_id);
    }
    node.stop().await;
}
