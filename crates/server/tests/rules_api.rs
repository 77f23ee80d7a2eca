//! Every ledger rule through the API, table-driven: one row per rule — the
//! events appended, the gRPC code, the field and the rule in the message and
//! in the `baton-rule` metadata — and no refused batch appends anything.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::{Body, Envelope, EventId, GrantType, Rule, SigningKey};
use baton_log::EventLog;
use baton_server::Limits;
use baton_testkit::Fixture;
use common::{Node, now_s};
use tonic::Code;

/// `envelope`'s body changed by `edit`, sealed again by `key`.
fn edited(
    f: &mut Fixture,
    envelope: &Envelope,
    key: &SigningKey,
    edit: impl FnOnce(&mut Body),
) -> Envelope {
    let (_, mut event) = baton_proto::decode_signed(&baton_proto::encode_signed(envelope)).unwrap();
    edit(&mut event.body);
    f.seal_with(key, event.body)
}

struct Row {
    rule: Rule,
    events: Vec<Envelope>,
    code: Code,
    field: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_is_refused_through_the_api_with_its_code_field_and_name() {
    let now = now_s();
    let (mut f, setup) = Fixture::standard(now);
    let node = Node::start(&f, Limits::default(), Some(3)).await;
    node.append(&setup).await;
    let t0 = f.issue("as", "t0", "user:alice", "agent", 3600);
    let t1 = f.narrow("t0", "t1", "agent", "gateway", &[], 60);
    let t2 = f.narrow("t1", "t2", "gateway", "server-a", &[], 60);
    let t3 = f.narrow("t2", "t3", "server-a", "server-b", &[], 60);
    node.append(&[t0.clone(), t1.clone(), t2, t3]).await;
    let gone = f.issue("as", "gone", "user:alice", "agent", 3600);
    node.append(&[
        gone.clone(),
        f.revoke(baton_core::RevocationTarget::Token(Fixture::token("gone"))),
    ])
    .await;
    let gateway_key = f.client("gateway").key.clone();

    let mut rows = Vec::new();
    let fresh = f.issue("as", "fresh", "user:alice", "agent", 3600);
    let mut signature = *fresh.signature();
    signature[3] ^= 4;
    let bad = Envelope::from_parts(
        fresh.payload().to_vec(),
        fresh.payload_type().into(),
        &fresh.key_id().0,
        &signature,
    )
    .unwrap();
    rows.push(Row {
        rule: Rule::Signature,
        events: vec![bad],
        code: Code::InvalidArgument,
        field: "signature",
    });
    let stranger = SigningKey::generate();
    let unknown = edited(&mut f, &fresh, &stranger, |_| {});
    rows.push(Row {
        rule: Rule::UnknownKey,
        events: vec![unknown],
        code: Code::FailedPrecondition,
        field: "key_id",
    });
    let not_holder = f.hop_unchecked(
        "t1",
        "u1",
        "agent",
        "server-a",
        &[],
        &[],
        f.expiry_of("t1"),
        None,
    );
    rows.push(Row {
        rule: Rule::Unauthorized,
        events: vec![not_holder],
        code: Code::PermissionDenied,
        field: "performed_by",
    });
    let hop = f.narrow("t1", "u2", "gateway", "server-a", &[], 10);
    let to_nobody = edited(&mut f, &hop, &gateway_key, |body| {
        if let Body::ScopeNarrowed(hop) = body {
            hop.holder = Fixture::client_id("nobody");
        }
    });
    rows.push(Row {
        rule: Rule::UnknownClient,
        events: vec![to_nobody],
        code: Code::FailedPrecondition,
        field: "holder",
    });
    let orphan = edited(&mut f, &hop, &gateway_key, |body| {
        if let Body::ScopeNarrowed(hop) = body {
            hop.parent = EventId([5; 32]);
        }
    });
    rows.push(Row {
        rule: Rule::UnknownParent,
        events: vec![orphan],
        code: Code::FailedPrecondition,
        field: "parent_event_id",
    });
    let again = f.issue("as", "t0", "user:bob", "agent", 3600);
    rows.push(Row {
        rule: Rule::AlreadyExists,
        events: vec![again],
        code: Code::AlreadyExists,
        field: "token",
    });
    let wide = f.hop_unchecked(
        "t1",
        "u3",
        "gateway",
        "server-a",
        &["files:read", "admin:all"],
        &[],
        f.expiry_of("t1"),
        None,
    );
    rows.push(Row {
        rule: Rule::NotNarrower,
        events: vec![wide],
        code: Code::InvalidArgument,
        field: "scopes",
    });
    // A registrar's registration beyond its own ceiling (issue 21).
    let beyond = f.register_with_ceiling(
        "beyond",
        baton_core::ClientKind::Service,
        baton_core::ClientRole::ToolEndpoint,
        Some("as"),
        &["files:read"],
        &["fs/read", "shell/exec"],
    );
    rows.push(Row {
        rule: Rule::NotNarrower,
        events: vec![beyond],
        code: Code::InvalidArgument,
        field: "tools",
    });
    let deep = f.narrow("t3", "u4", "server-b", "server-a", &[], 1);
    rows.push(Row {
        rule: Rule::TooDeep,
        events: vec![deep],
        code: Code::InvalidArgument,
        field: "depth",
    });
    let static_user = f.issue_with_grant(
        "as",
        "u5",
        "user:alice",
        "agent",
        3600,
        GrantType::ClientCredentials,
    );
    rows.push(Row {
        rule: Rule::StaticGrant,
        events: vec![static_user],
        code: Code::PermissionDenied,
        field: "subject",
    });
    let other_subject = edited(&mut f, &hop, &gateway_key, |body| {
        if let Body::ScopeNarrowed(hop) = body {
            hop.on_behalf_of = Fixture::subject("user:mallory");
        }
    });
    rows.push(Row {
        rule: Rule::Inconsistent,
        events: vec![other_subject],
        code: Code::InvalidArgument,
        field: "on_behalf_of",
    });
    // A subject the ledger knows only in another case (issue 21).
    let other_case = f.revoke(baton_core::RevocationTarget::Subject(Fixture::subject(
        "user:ALICE",
    )));
    rows.push(Row {
        rule: Rule::Inconsistent,
        events: vec![other_case],
        code: Code::InvalidArgument,
        field: "target",
    });
    let from_revoked = f.narrow("gone", "u6", "agent", "gateway", &[], 10);
    rows.push(Row {
        rule: Rule::Revoked,
        events: vec![from_revoked],
        code: Code::FailedPrecondition,
        field: "parent_event_id",
    });
    f.now_s = now - 600;
    let expired = f.issue("as", "u7", "user:alice", "agent", 300);
    f.now_s = now;
    rows.push(Row {
        rule: Rule::Expired,
        events: vec![expired],
        code: Code::FailedPrecondition,
        field: "expires_at_unix_s",
    });
    f.shift_clock_ms(20 * 60 * 1000);
    let ahead = f.issue("as", "u8", "user:alice", "agent", 3600);
    f.shift_clock_ms(-20 * 60 * 1000 - 2 * 3600 * 1000);
    let behind = f.issue("as", "u9", "user:alice", "agent", 3600);
    f.shift_clock_ms(2 * 3600 * 1000);
    rows.push(Row {
        rule: Rule::FutureDated,
        events: vec![ahead],
        code: Code::InvalidArgument,
        field: "created_at_unix_ms",
    });
    rows.push(Row {
        rule: Rule::BackDated,
        events: vec![behind],
        code: Code::InvalidArgument,
        field: "created_at_unix_ms",
    });

    let mut covered = std::collections::BTreeSet::new();
    for row in rows {
        let before = node.log.end_offsets().await.unwrap();
        // Behind a valid event, so that the whole batch is refused.
        let mut batch = vec![f.issue("as", &format!("ok-{}", row.rule), "user:zed", "agent", 3600)];
        batch.extend(row.events);
        let status = node.refused(&batch).await;
        let rule = row.rule.as_str();
        assert_eq!(status.code(), row.code, "{rule}: {status:?}");
        assert!(
            status
                .message()
                .starts_with(&format!("events[1]: {}: ", row.field)),
            "{rule}: {:?}",
            status.message()
        );
        assert!(
            status.message().ends_with(&format!("(rule {rule})")),
            "{rule}: {:?}",
            status.message()
        );
        assert_eq!(status.metadata().get("baton-rule").unwrap(), rule);
        assert_eq!(
            node.log.end_offsets().await.unwrap(),
            before,
            "{rule}: a refused batch wrote"
        );
        covered.insert(rule);
    }
    assert_eq!(covered.len(), 14, "one row per rule: {covered:?}");
    node.stop().await;
}
