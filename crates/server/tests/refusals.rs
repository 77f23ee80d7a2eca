//! Every refusal path of Append, with the gRPC status code and the message
//! that names the field and the reason; and a refused batch appends nothing.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{EventId, RevocationTarget, SigningKey};
use baton_log::EventLog;
use baton_proto::v1;
use baton_server::Limits;
use baton_testkit::Fixture;
use common::{Node, now_s};
use tonic::Code;

fn assert_refusal(status: &tonic::Status, code: Code, parts: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    for part in parts {
        assert!(
            status.message().contains(part),
            "message {:?} lacks {part:?}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_names_the_field_and_the_reason() {
    let (mut f, setup) = Fixture::standard(now_s());
    let limits = Limits {
        batch_events_max: 20,
        message_bytes_max: 256 * 1024,
        ..Limits::default()
    };
    let node = Node::start(&f, limits, Some(3)).await;
    node.append(&setup).await;
    let t0 = f.issue("as", "t0", "user:alice", "agent", 3600);
    let t1 = f.narrow(
        "t0",
        "t1",
        "agent",
        "gateway",
        &["repo:write", "github/delete_repo"],
        60,
    );
    node.append(&[t0, t1]).await;
    let before = node.log.end_offsets().await.unwrap();
    let t1_exp = f.expiry_of("t1");
    let all_scopes = ["files:read", "files:write", "repo:read"];

    // Widened scope: t1 dropped repo:write.
    let wide = f.hop_unchecked(
        "t1",
        "w1",
        "gateway",
        "server-a",
        &["repo:write"],
        &[],
        t1_exp,
        None,
    );
    let status = node.refused(&[wide]).await;
    assert_refusal(
        &status,
        Code::InvalidArgument,
        &[
            "events[0]: scopes: scope \"repo:write\" is not held by parent token jti:t1",
            "not-narrower",
        ],
    );
    assert_eq!(status.metadata().get("baton-rule").unwrap(), "not-narrower");

    // Widened tools: t1 dropped github/delete_repo.
    let wide = f.hop_unchecked(
        "t1",
        "w2",
        "gateway",
        "server-a",
        &all_scopes,
        &["github/delete_repo"],
        t1_exp,
        None,
    );
    assert_refusal(
        &node.refused(&[wide]).await,
        Code::InvalidArgument,
        &["tools: tool \"github/delete_repo\" is not held by parent token jti:t1"],
    );

    // Extended expiry.
    let late = f.hop_unchecked(
        "t1",
        "w3",
        "gateway",
        "server-a",
        &all_scopes,
        &[],
        t1_exp + 1,
        None,
    );
    assert_refusal(
        &node.refused(&[late]).await,
        Code::InvalidArgument,
        &[
            "expires_at_unix_s:",
            "is later than parent token jti:t1 expiry",
        ],
    );

    // Unknown parent: a hop whose parent id is no event.
    let mut orphan = f.hop_unchecked(
        "t1",
        "w4",
        "gateway",
        "server-a",
        &all_scopes,
        &[],
        t1_exp,
        None,
    );
    {
        let (_, mut event) = baton_proto::open(v1::SignedEvent::from(&orphan)).unwrap();
        if let baton_core::Body::ScopeNarrowed(hop) = &mut event.body {
            hop.parent = EventId([7; 32]);
        }
        orphan = baton_proto::seal(&f.client("gateway").key, &event).unwrap();
    }
    assert_refusal(
        &node.refused(&[orphan]).await,
        Code::FailedPrecondition,
        &["parent_event_id: ev:0707", "is not a token in the ledger"],
    );

    // Unknown key.
    let stranger = SigningKey::generate();
    let (_, event) = baton_proto::open(v1::SignedEvent::from(&f.hop_unchecked(
        "t1",
        "w5",
        "gateway",
        "server-a",
        &all_scopes,
        &[],
        t1_exp,
        None,
    )))
    .unwrap();
    let event = baton_core::Event {
        signer: stranger.key_id(),
        ..event
    };
    let unknown = baton_proto::seal(&stranger, &event).unwrap();
    assert_refusal(
        &node.refused(&[unknown]).await,
        Code::FailedPrecondition,
        &["key_id: key:", "is not a trust root or a registered key"],
    );

    // Bad signature.
    let good = f.hop_unchecked(
        "t1",
        "w6",
        "gateway",
        "server-a",
        &all_scopes,
        &[],
        t1_exp,
        None,
    );
    let mut wire = v1::SignedEvent::from(&good);
    wire.signature[0] ^= 0x40;
    let status = node
        .ledger()
        .await
        .append(v1::AppendRequest {
            events: vec![wire],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refusal(
        &status,
        Code::InvalidArgument,
        &["events[0]: signature: does not verify under key:"],
    );

    // Too deep: the node's bound is 3 (t1 is depth 1).
    let d2 = f.narrow("t1", "d2", "gateway", "server-a", &[], 1);
    let d3 = f.narrow("d2", "d3", "server-a", "server-b", &[], 1);
    node.append(&[d2, d3]).await;
    let d4 = f.narrow("d3", "d4", "server-b", "server-a", &[], 1);
    assert_refusal(
        &node.refused(&[d4]).await,
        Code::InvalidArgument,
        &["depth: 4 exceeds the bound of 3"],
    );
    let before = node
        .log
        .end_offsets()
        .await
        .unwrap()
        .iter()
        .sum::<u64>()
        .max(before.iter().sum());

    // Revoked parent.
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("d2")));
    node.append(&[revoke]).await;
    let after_revoke = node.log.end_offsets().await.unwrap().iter().sum::<u64>();
    let child = f.narrow("d2", "r1", "server-a", "server-b", &[], 1);
    assert_refusal(
        &node.refused(&[child]).await,
        Code::FailedPrecondition,
        &["parent_event_id:", "is revoked"],
    );

    // Future-dated: created an hour ahead of the node's clock (5 min allowed).
    f.shift_clock_ms(3_600_000);
    let ahead = f.issue("as", "ahead", "user:bob", "agent", 60);
    f.shift_clock_ms(-3_600_000);
    let status = node.refused(&[ahead]).await;
    assert_refusal(
        &status,
        Code::InvalidArgument,
        &[
            "events[0]: created_at_unix_ms:",
            "ms ahead of this node's clock",
            "at most 300000 ms is allowed",
        ],
    );
    assert_eq!(status.metadata().get("baton-rule").unwrap(), "future-dated");

    // Too large a batch: 21 events against a limit of 20.
    let many: Vec<_> = (0..21)
        .map(|i| f.issue("as", &format!("b{i}"), "user:bob", "agent", 60))
        .collect();
    assert_refusal(
        &node.refused(&many).await,
        Code::InvalidArgument,
        &["events: 21 events, more than the limit of 20"],
    );

    // Oversized message: over the node's 256 KiB message limit.
    let mut huge = v1::SignedEvent::from(&f.issue("as", "huge", "user:bob", "agent", 60));
    huge.payload.extend(std::iter::repeat_n(0u8, 300 * 1024));
    let status = node
        .ledger()
        .await
        .append(v1::AppendRequest {
            events: vec![huge],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("message length too large"),
        "{status:?}"
    );

    // A refused batch appends nothing, even its valid events.
    let valid = f.issue("as", "ok", "user:bob", "agent", 60);
    let invalid = f.hop_unchecked(
        "t1",
        "w7",
        "gateway",
        "server-a",
        &["repo:write"],
        &[],
        t1_exp,
        None,
    );
    let status = node.refused(&[valid, invalid]).await;
    assert!(
        status.message().starts_with("events[1]: scopes:"),
        "{status:?}"
    );
    assert_eq!(
        node.log.end_offsets().await.unwrap().iter().sum::<u64>(),
        after_revoke
    );
    assert!(after_revoke == before + 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_never_both_claim_one_token() {
    let (mut f, setup) = Fixture::standard(now_s());
    let node = Node::start(&f, Limits::default(), None).await;
    node.append(&setup).await;
    for round in 0..20 {
        // Two different events naming the same token reference.
        let jti = format!("race{round}");
        let a = f.issue("as", &jti, "user:alice", "agent", 3600);
        let b = f.issue("as", &jti, "user:bob", "agent", 3600);
        let request = |e: &baton_core::Envelope| v1::AppendRequest {
            events: vec![v1::SignedEvent::from(e)],
            ..Default::default()
        };
        let (mut la, mut lb) = (node.ledger().await, node.ledger().await);
        let (ra, rb) = tokio::join!(la.append(request(&a)), lb.append(request(&b)));
        let accepted = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {ra:?} / {rb:?}");
        let refused = match (ra, rb) {
            (Err(refused), _) | (_, Err(refused)) => refused,
            (Ok(_), Ok(_)) => unreachable!("counted one acceptance above"),
        };
        assert!(
            matches!(refused.code(), Code::Aborted | Code::AlreadyExists),
            "round {round}: {refused:?}"
        );
    }
    node.stop().await;
}
