//! The services end to end in one process: Append (with duplicates), Check and
//! CheckBatch, Watch (from the beginning and resumed), GetChain,
//! GetDescendants, ListEvents (paged), ExportChain verified offline — every
//! single-byte change of the bundle is rejected — and gRPC health.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_server::Limits;
use baton_testkit::Fixture;
use common::{Node, check_request, now_s};
use prost::Message as _;

fn status_of(response: &v1::CheckResponse) -> v1::TokenStatus {
    v1::TokenStatus::try_from(response.status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_answer_end_to_end() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    // Setup and a chain in one batch: the batch's events depend on each other.
    let mut events = setup;
    events.push(f.issue("as", "t0", "user:alice", "agent", 3600));
    events.push(f.narrow("t0", "t1", "agent", "gateway", &["repo:write"], 60));
    events.push(f.narrow("t1", "t2", "gateway", "server-a", &["files:write"], 60));
    events.push(f.narrow("t1", "s2", "gateway", "server-b", &[], 60));
    let first = node.append(&events).await;
    assert!(
        first
            .results
            .iter()
            .all(|r| r.outcome == v1::AppendOutcome::Accepted as i32)
    );
    // The same batch again: every event is a duplicate, nothing new is written.
    let again = node.append(&events).await;
    assert!(
        again
            .results
            .iter()
            .all(|r| r.outcome == v1::AppendOutcome::Duplicate as i32)
    );
    assert_eq!(
        again.results.iter().map(|r| r.position).collect::<Vec<_>>(),
        first.results.iter().map(|r| r.position).collect::<Vec<_>>()
    );

    // Watch from the beginning, before the revocation exists.
    let mut watch = node
        .revocation()
        .await
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("t1")));
    let revoked = node.append(std::slice::from_ref(&revoke)).await;
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.revocation_event_id, revoke.id().0.to_vec());
    assert!(matches!(
        seen.revoked.unwrap().target,
        Some(v1::revoked::Target::Token(_))
    ));
    // Resuming after it yields nothing more until something new is revoked.
    let mut resumed = node
        .revocation()
        .await
        .watch(v1::WatchRequest {
            resume_token: seen.resume_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resumed.message())
            .await
            .is_err()
    );

    // Check with the revocation's consistency token.
    let mut request = check_request("t2");
    request.consistency_token = revoked.consistency_token.clone();
    let answer = node
        .revocation()
        .await
        .check(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&answer), v1::TokenStatus::Revoked);
    let cause = answer.cause.unwrap();
    assert_eq!(
        (cause.distance, cause.via),
        (1, v1::RevocationVia::Token as i32)
    );
    assert_eq!(cause.revocation_event_id, revoke.id().0.to_vec());

    // CheckBatch answers in order, with the audience check.
    let mut presented = check_request("t0");
    presented.presented_to = "https://elsewhere.example/".into();
    let batch = v1::CheckBatchRequest {
        checks: vec![
            check_request("t0"),
            check_request("t1"),
            check_request("nope"),
            presented,
        ],
    };
    let answers = node
        .revocation()
        .await
        .check_batch(batch)
        .await
        .unwrap()
        .into_inner()
        .results;
    let statuses: Vec<_> = answers.iter().map(status_of).collect();
    assert_eq!(
        statuses,
        [
            v1::TokenStatus::Active,
            v1::TokenStatus::Revoked,
            v1::TokenStatus::Unknown,
            v1::TokenStatus::AudienceMismatch
        ]
    );

    // GetChain and GetDescendants.
    let chain = node
        .provenance()
        .await
        .get_chain(v1::GetChainRequest {
            token: check_request("t2").token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(chain.events.len() >= 3);
    let mut below = node
        .provenance()
        .await
        .get_descendants(v1::GetDescendantsRequest {
            token: check_request("t0").token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut found = Vec::new();
    while let Some(item) = below.message().await.unwrap() {
        found.push(
            baton_proto::token_ref("t", item.token.unwrap().token)
                .unwrap()
                .to_string(),
        );
    }
    // Breadth first: t1, then its children (siblings in event-id order).
    assert_eq!(found[0], "jti:t1");
    found[1..].sort();
    assert_eq!(found, ["jti:t1", "jti:s2", "jti:t2"]);

    // ListEvents, paged by kind.
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = v1::ListEventsRequest {
            kind: v1::EventKind::ScopeNarrowed as i32,
            page_size: 2,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let mut stream = node
            .provenance()
            .await
            .list_events(request)
            .await
            .unwrap()
            .into_inner();
        let mut page = Vec::new();
        while let Some(item) = stream.message().await.unwrap() {
            page_token = item.page_token.clone();
            page.push(item.event.unwrap().event_id);
        }
        if page.is_empty() {
            break;
        }
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let bad_kind = v1::ListEventsRequest {
        kind: 99,
        ..Default::default()
    };
    let status = node
        .provenance()
        .await
        .list_events(bad_kind)
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::InvalidArgument, "kind: unknown enum value 99")
    );

    // ExportChain verifies offline; any single changed byte does not.
    let bundle = node
        .provenance()
        .await
        .export_chain(v1::ExportChainRequest {
            token: check_request("t2").token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bundle
        .unwrap()
        .encode_to_vec();
    let verified = baton_proto::verify_bundle(&bundle, f.policy(), now_s()).unwrap();
    assert_eq!(verified.leaf().token, Fixture::token("t2"));
    for i in 0..bundle.len() {
        for flip in [0x01u8, 0x80] {
            let mut tampered = bundle.clone();
            tampered[i] ^= flip;
            assert!(
                baton_proto::verify_bundle(&tampered, f.policy(), now_s()).is_err(),
                "byte {i} ^ {flip:#x} went unnoticed"
            );
        }
    }
    let other_root = baton_core::Policy::new([baton_core::SigningKey::generate().public_key()]);
    assert!(baton_proto::verify_bundle(&bundle, other_root, now_s()).is_err());

    // Standard gRPC health.
    let channel = tonic::transport::Channel::from_shared(node.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "baton.v1.RevocationService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    node.stop().await;
}

/// A node that starts on a log it has not read yet answers nothing from the
/// partial projection it is building: the first Check, without a consistency
/// token, already sees the revocation that comes last in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_answers_only_once_it_has_read_the_log() {
    let (mut f, mut events) = Fixture::standard(now_s());
    // Enough history that applying it takes a while.
    for i in 0..300 {
        events.push(f.issue("as", &format!("h{i}"), "user:carol", "agent", 3600));
    }
    events.push(f.issue("as", "t0", "user:alice", "agent", 3600));
    events.push(f.narrow("t0", "t1", "agent", "gateway", &[], 60));
    events.push(f.revoke(RevocationTarget::Token(Fixture::token("t0"))));
    let node = Node::start_on(&f, Limits::default(), None, &events).await;
    let answer = node
        .revocation()
        .await
        .check(check_request("t1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), v1::TokenStatus::Revoked, "{answer:?}");
    node.stop().await;
}

/// Introspect: Check's answer plus what the token is — narrowed scopes and
/// tools, holder, subject, the root grant's issuer and type, times, and the
/// chain of who performed each hop, root to leaf — for a 3-link chain; the
/// same answer's status as Check; nothing but the status for a token the
/// ledger does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspect_tells_what_a_token_is_and_where_it_came_from() {
    let (mut f, mut events) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    events.push(f.issue("as", "i0", "user:alice", "agent", 3600));
    events.push(f.narrow("i0", "i1", "agent", "gateway", &["repo:write"], 60));
    events.push(f.narrow("i1", "i2", "gateway", "server-a", &["files:write"], 60));
    let token = node.append(&events).await.consistency_token;
    let mut revocation = node.revocation().await;
    let ask = |jti: &str| v1::IntrospectRequest {
        token: check_request(jti).token,
        consistency_token: token.clone(),
        ..Default::default()
    };
    let answer = revocation.introspect(ask("i2")).await.unwrap().into_inner();
    let check = answer.check.unwrap();
    assert_eq!(status_of(&check), v1::TokenStatus::Active);
    let checked = revocation
        .check(check_request("i2"))
        .await
        .unwrap()
        .into_inner();
    // Each says how fresh the node's view was; a node that answers ACTIVE
    // confirmed the log's end within its bound (5 s; a second more for the
    // way here).
    for answer in [&check, &checked] {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let age = now_ms - answer.view_confirmed_at_unix_ms;
        assert!(
            answer.view_confirmed_at_unix_ms > 0 && (0..6000).contains(&age),
            "{answer:?}"
        );
        baton_log::ConsistencyToken::parse(&answer.view_confirmed_end).unwrap();
        // And its age by the node's own clock, within the same bound.
        assert!(
            answer.view_age_ms.is_some_and(|age| age < 5000),
            "{answer:?}"
        );
    }
    // (A confirmation may land between the two.)
    let without_view = |answer: &v1::CheckResponse| v1::CheckResponse {
        view_confirmed_end: String::new(),
        view_confirmed_at_unix_ms: 0,
        view_age_ms: None,
        ..answer.clone()
    };
    assert_eq!(
        without_view(&check),
        without_view(&checked),
        "Introspect's status is Check's"
    );
    let details = answer.details.unwrap();
    let i2 = f.event_of("i2");
    assert_eq!(details.subject, "user:alice");
    assert_eq!(details.holder, "server-a");
    assert_eq!(details.issuer, "as");
    assert_eq!(details.audience, "https://server-a.example/mcp");
    assert_eq!(details.depth, 2);
    assert_eq!(details.expires_at_unix_s, f.expiry_of("i2"));
    assert_eq!(
        details.grant_type,
        v1::GrantType::AuthorizationCodePkce as i32
    );
    assert!(
        !details.scopes.iter().any(|s| s == "repo:write"),
        "{details:?}"
    );
    assert!(!details.tools.is_empty());
    let links: Vec<(&str, &str, u32)> = details
        .chain
        .iter()
        .map(|l| (l.performed_by.as_str(), l.holder.as_str(), l.depth))
        .collect();
    assert_eq!(
        links,
        [
            ("as", "agent", 0),
            ("agent", "gateway", 1),
            ("gateway", "server-a", 2)
        ]
    );
    assert_eq!(details.chain[2].event_id, i2.0.to_vec());
    assert_eq!(details.chain[0].event_id, f.event_of("i0").0.to_vec());

    // Revoked in the middle: the answer says so and still names the chain.
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("i1")));
    let token = node.append(&[revoke]).await.consistency_token;
    let answer = revocation
        .introspect(v1::IntrospectRequest {
            consistency_token: token,
            ..ask("i2")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&answer.check.unwrap()), v1::TokenStatus::Revoked);
    assert_eq!(answer.details.unwrap().chain.len(), 3);

    let unknown = revocation
        .introspect(ask("nobody"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&unknown.check.unwrap()), v1::TokenStatus::Unknown);
    assert!(unknown.details.is_none());
    node.stop().await;
}

/// Introspect given the token as presented: found by its digest when the
/// writer recorded it that way; a token the ledger knows only by `jti` is
/// UNKNOWN (nobody verified the bytes that would carry that jti); both forms
/// at once, or an oversized bearer, are refused without echoing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspect_finds_a_presented_token_by_its_digest_only() {
    let (mut f, mut events) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    let bearer = b"eyJhbGciOiJFZERTQSJ9.TEST-ONLY.presented-bearer".to_vec();
    // A root grant recorded by the digest of the bearer's bytes.
    let by_jti = f.issue("as", "d0", "user:carol", "agent", 3600);
    let (_, event) = baton_proto::decode_signed(&baton_proto::encode_signed(&by_jti)).unwrap();
    let baton_core::Body::TokenIssued(mut issued) = event.body else {
        panic!("not a grant")
    };
    issued.token = baton_core::token_digest(&bearer);
    let key = f.client("as").key.clone();
    events.push(f.seal_with(&key, baton_core::Body::TokenIssued(issued)));
    // Another grant known only by jti.
    events.push(f.issue("as", "jti-only", "user:carol", "agent", 3600));
    let token = node.append(&events).await.consistency_token;
    let mut revocation = node.revocation().await;
    let presented = |bytes: &[u8]| v1::IntrospectRequest {
        bearer: bytes.to_vec(),
        consistency_token: token.clone(),
        ..Default::default()
    };

    let found = revocation
        .introspect(presented(&bearer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&found.check.unwrap()), v1::TokenStatus::Active);
    assert_eq!(found.details.unwrap().subject, "user:carol");
    // The jti-only grant, presented as bytes that merely contain its jti.
    let unverified = revocation
        .introspect(presented(b"jti-only"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status_of(&unverified.check.unwrap()),
        v1::TokenStatus::Unknown
    );
    assert!(unverified.details.is_none());

    let both = v1::IntrospectRequest {
        token: check_request("d0").token,
        ..presented(&bearer)
    };
    let refused = revocation.introspect(both).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("bearer"), "{refused:?}");
    let huge = vec![b'x'; 16 * 1024 + 1];
    let refused = revocation.introspect(presented(&huge)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().len() < 300 && !refused.message().contains("xxxx"),
        "{refused:?}"
    );
    node.stop().await;
}

/// The next message on a Watch stream, within 10 s.
async fn next(watch: &mut tonic::Streaming<v1::WatchResponse>) -> v1::WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("nothing on the stream within 10 s")
        .unwrap()
        .unwrap()
}

/// A quiet Watch sends checkpoints when asked, so a cache can tell "nothing
/// was revoked" from "cut off"; a checkpoint's position covers everything
/// applied before it, and a revocation arrives before any checkpoint that
/// covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_sends_checkpoints_that_cover_what_was_applied() {
    let (mut f, mut events) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    events.push(f.issue("as", "c1", "user:carol", "agent", 3600));
    let written = node.append(&events).await;
    let mut revocation = node.revocation().await;
    for bad in [1, 99, 60_001] {
        let refused = revocation
            .watch(v1::WatchRequest {
                checkpoint_interval_ms: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{bad}");
        assert!(
            refused.message().contains("checkpoint_interval_ms"),
            "{refused:?}"
        );
    }
    let mut watch = revocation
        .watch(v1::WatchRequest {
            resume_token: written.consistency_token.clone(),
            checkpoint_interval_ms: 200,
        })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut watch).await;
    let checkpoint = first.checkpoint.expect("a checkpoint on a quiet stream");
    assert!(first.revocation_event_id.is_empty() && first.revoked.is_none());
    let covered = baton_log::ConsistencyToken::parse(&checkpoint.consistency_token).unwrap();
    assert!(
        baton_log::ConsistencyToken::parse(&written.consistency_token)
            .unwrap()
            .is_covered_by(covered.next_offsets())
    );
    assert_eq!(first.resume_token, checkpoint.consistency_token);
    // Appends that revoke nothing move the checkpoints along: a cache learns
    // it is current up to them.
    let quiet = node
        .append(&[f.issue("as", "c2", "user:carol", "agent", 3600)])
        .await;
    let quiet_at = baton_log::ConsistencyToken::parse(&quiet.consistency_token).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint covered the append within 10 s"
        );
        let message = next(&mut watch).await;
        let at = message
            .checkpoint
            .expect("only checkpoints: nothing was revoked");
        let at = baton_log::ConsistencyToken::parse(&at.consistency_token).unwrap();
        if quiet_at.is_covered_by(at.next_offsets()) {
            break;
        }
    }
    // A revocation: it comes before any checkpoint past it.
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("c1")));
    let revoked = node.append(std::slice::from_ref(&revoke)).await;
    let revoked_at = baton_log::ConsistencyToken::parse(&revoked.consistency_token).unwrap();
    loop {
        let message = next(&mut watch).await;
        match message.checkpoint {
            Some(checkpoint) => {
                let at = baton_log::ConsistencyToken::parse(&checkpoint.consistency_token).unwrap();
                assert!(
                    !revoked_at.is_covered_by(at.next_offsets()),
                    "a checkpoint covered the revocation before it was sent"
                );
            }
            None => {
                assert_eq!(message.revocation_event_id, revoke.id().0.to_vec());
                break;
            }
        }
    }
    let after = next(&mut watch)
        .await
        .checkpoint
        .expect("a checkpoint again");
    let at = baton_log::ConsistencyToken::parse(&after.consistency_token).unwrap();
    assert!(revoked_at.is_covered_by(at.next_offsets()));
    node.stop().await;
}

/// A stream that is never quiet (a revocation every 20 ms, checkpoints
/// asked every 100 ms) still gets checkpoints, each after every revocation
/// it covers: a cache behind a flood knows where it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_watch_still_sends_checkpoints() {
    let (mut f, mut events) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    for i in 0..60 {
        events.push(f.issue("as", &format!("busy-{i}"), "user:busy", "agent", 3600));
    }
    let written = node.append(&events).await;
    let mut watch = node
        .revocation()
        .await
        .watch(v1::WatchRequest {
            resume_token: written.consistency_token.clone(),
            checkpoint_interval_ms: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let revocations: Vec<_> = (0..60)
        .map(|i| {
            f.revoke(RevocationTarget::Token(Fixture::token(&format!(
                "busy-{i}"
            ))))
        })
        .collect();
    let writer = {
        let url = node.url();
        let revocations = revocations.clone();
        tokio::spawn(async move {
            let mut ledger = v1::ledger_service_client::LedgerServiceClient::connect(url)
                .await
                .unwrap();
            for revocation in revocations {
                let request = v1::AppendRequest {
                    events: vec![v1::SignedEvent::from(&revocation)],
                    ..Default::default()
                };
                ledger.append(request).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // (revocations sent before it, its position) per checkpoint; the
    // position of every revocation, in order.
    let mut checkpoints = Vec::new();
    let mut positions = Vec::new();
    while positions.len() < revocations.len() {
        let message = next(&mut watch).await;
        match message.checkpoint {
            Some(checkpoint) => checkpoints.push((
                positions.len(),
                baton_log::ConsistencyToken::parse(&checkpoint.consistency_token).unwrap(),
            )),
            None => {
                let p = message.position.unwrap();
                positions.push(baton_log::Position {
                    partition: p.partition,
                    offset: p.offset,
                });
            }
        }
    }
    writer.await.unwrap();
    for (sent, at) in &checkpoints {
        for position in &positions[*sent..] {
            let unsent = baton_log::ConsistencyToken::covering([*position]).unwrap();
            assert!(
                !unsent.is_covered_by(at.next_offsets()),
                "a checkpoint after {sent} revocations covered one not yet sent"
            );
        }
    }
    let between = checkpoints
        .iter()
        .filter(|(sent, _)| *sent > 0 && *sent < revocations.len())
        .count();
    assert!(
        between >= 2,
        "only {between} checkpoint(s) while revocations kept coming"
    );
    node.stop().await;
}

/// A Check answer can say what the token's status depends on; a Watch
/// message about any of them is what invalidates it in a cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_answer_names_the_revocations_that_would_end_it() {
    let (mut f, mut events) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    events.push(f.issue("as", "d1", "user:dana", "agent", 3600));
    events.push(f.narrow("d1", "d2", "agent", "gateway", &[], 10));
    let written = node.append(&events).await;
    let mut revocation = node.revocation().await;
    let mut request = check_request("d2");
    request.consistency_token = written.consistency_token.clone();
    let plain = revocation
        .check(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(plain.depends_on.is_empty(), "only when asked");
    request.with_dependencies = true;
    let answer = revocation.check(request).await.unwrap().into_inner();
    assert_eq!(status_of(&answer), v1::TokenStatus::Active);
    use v1::revocation_target::Target;
    let names = |target: Target| {
        answer.depends_on.contains(&v1::RevocationTarget {
            target: Some(target),
        })
    };
    let token = |jti: &str| Target::Token(baton_proto::token_ref_to_wire(&Fixture::token(jti)));
    for (what, target) in [
        ("the token", token("d2")),
        ("its parent", token("d1")),
        (
            "its holder",
            Target::ClientId(Fixture::client_id("gateway").to_string()),
        ),
        (
            "the performer",
            Target::ClientId(Fixture::client_id("agent").to_string()),
        ),
        ("the subject", Target::Subject("user:dana".into())),
        (
            "the root's signing key",
            Target::KeyId(f.client("as").key.key_id().as_bytes().to_vec()),
        ),
        (
            "the trust root",
            Target::KeyId(f.root.key_id().as_bytes().to_vec()),
        ),
    ] {
        assert!(
            names(target),
            "{what} is missing from {:?}",
            answer.depends_on
        );
    }
    assert!(!names(token("d0")) && !names(Target::Subject("user:erin".into())));
    // The Watch message of a revocation of one of them names it the same way.
    let mut watch = revocation
        .watch(v1::WatchRequest {
            resume_token: written.consistency_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let revoke = f.revoke(RevocationTarget::Client(Fixture::client_id("agent")));
    node.append(std::slice::from_ref(&revoke)).await;
    let message = next(&mut watch).await;
    let Some(v1::revoked::Target::ClientId(client)) = message.revoked.unwrap().target else {
        panic!("not a client revocation")
    };
    assert!(names(Target::ClientId(client)));
    // Revoked now: nothing to depend on any more.
    let mut again = check_request("d2");
    again.with_dependencies = true;
    let revoked = revocation.check(again).await.unwrap().into_inner();
    assert_eq!(status_of(&revoked), v1::TokenStatus::Revoked);
    assert!(revoked.depends_on.is_empty());
    node.stop().await;
}
