//! The SDK's builders and signer against a real node: register with a key
//! file, issue, exchange (the hop's parent, root, depth, subject and
//! lifetime from the chain), rotate keys (the new key signs, the retired one
//! is refused), revoke; and key files that others can read are refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use baton_client::events::{self, Hop, Signer};
use baton_client::{Error, Exchange, exchange};
use baton_core::{
    Body, ClientId, ClientKind, ClientRole, RevocationTarget, Subject, TokenIssued, TokenRef,
};
use baton_testkit::Fixture;
use common::{Node, append, now_s};

fn id(text: &str) -> ClientId {
    ClientId::new("client_id", text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builders_make_events_the_node_accepts_and_rules_still_apply() {
    let root_key = baton_core::SigningKey::generate();
    let f = Fixture::with_root(root_key.clone(), now_s());
    let node = Node::start(&f).await;
    let client = node.client().await;
    let dir = tempfile::tempdir().unwrap();
    // Key files, as `baton keygen` writes them.
    let file = |name: &str| {
        let path = dir.path().join(format!("{name}.key"));
        baton_client::keys::generate(&path).unwrap();
        Signer::from_key_file(&path).unwrap()
    };
    let (root, auth, gateway, server) = (
        Signer::from_key(root_key),
        file("as"),
        file("gw"),
        file("srv"),
    );
    let names = |list: &[&str]| events::names("names", list).unwrap();
    let setup = [
        root.sign(events::register(
            id("as"),
            ClientKind::AuthorizationServer,
            ClientRole::DelegatingLayer,
            &[auth.registered_by(&id("as"), None)],
            names(&["kb:read", "kb:write"]),
            names(&["lookup", "write"]),
            None,
        ))
        .unwrap(),
        auth.sign(events::register(
            id("gw"),
            ClientKind::Gateway,
            ClientRole::DelegatingLayer,
            &[gateway.registered_by(&id("gw"), Some(&id("as")))],
            names(&["kb:read", "kb:write"]),
            names(&["lookup", "write"]),
            Some(id("as")),
        ))
        .unwrap(),
        auth.sign(events::register(
            id("srv"),
            ClientKind::McpServer,
            ClientRole::ToolEndpoint,
            &[server.registered_by(&id("srv"), Some(&id("as")))],
            names(&["kb:read"]),
            names(&["lookup"]),
            Some(id("as")),
        ))
        .unwrap(),
    ];
    let written = append(&client, &setup).await.unwrap();
    let now = now_s();
    let root_token = TokenRef::jti("t", "root-1").unwrap();
    let grant = auth
        .sign(Body::TokenIssued(TokenIssued {
            token: root_token.clone(),
            subject: Subject::new("subject", "user:bo").unwrap(),
            issuer: id("as"),
            holder: id("gw"),
            audience: "https://gw.example/mcp".into(),
            scopes: names(&["kb:read", "kb:write"]),
            tools: names(&["lookup", "write"]),
            grant: baton_core::GrantType::AuthorizationCodePkce,
            issued_at_s: now,
            expires_at_s: now + 600,
            session_id: None,
            transaction_id: None,
        }))
        .unwrap();
    let written = client
        .append(&[grant], Some(&written))
        .await
        .unwrap()
        .consistency_token;

    let hop = |token: &str, tools: &[&str]| Exchange {
        parent: root_token.clone(),
        hop: Hop {
            token: TokenRef::jti("t", token).unwrap(),
            performed_by: id("gw"),
            holder: id("srv"),
            audience: "https://srv.example/mcp".into(),
            scopes: names(&["kb:read"]),
            tools: names(tools),
        },
        ttl_s: 3600,
        after: Some(written.clone()),
    };
    let done = exchange(&client, &gateway, hop("hop-1", &["lookup"]))
        .await
        .unwrap();
    assert!(done.accepted);
    assert_eq!(done.depth, 1);
    assert_eq!(
        done.expires_at_s,
        now + 600,
        "capped at the parent's expiry"
    );
    let chain = client
        .chain(
            &TokenRef::jti("t", "hop-1").unwrap(),
            Some(&done.consistency_token),
        )
        .await
        .unwrap();
    let leaf = events::Parent::of_chain(&chain).unwrap();
    assert_eq!(
        (leaf.depth, leaf.subject.to_string()),
        (1, "user:bo".to_owned())
    );
    // The same exchange again (a new event claiming the same token) is
    // refused: one token, one hop.
    let again = exchange(&client, &gateway, hop("hop-1", &["lookup"])).await;
    assert!(
        matches!(&again, Err(Error::Status(s)) if s.code() == tonic::Code::AlreadyExists),
        "{again:?}"
    );
    // Widening is refused by the node, naming the field.
    let wide = exchange(&client, &gateway, hop("hop-2", &["lookup", "admin"]))
        .await
        .unwrap_err();
    assert!(wide.to_string().contains("tools"), "{wide}");

    // Rotation: a new gateway key signs; the retired one is refused.
    let fresh = file("gw2");
    let rotated = auth
        .sign(events::rotate(
            id("gw"),
            &[fresh.bound_to(&id("gw"))],
            vec![gateway.key_id()],
        ))
        .unwrap();
    let at = client
        .append(&[rotated], Some(&done.consistency_token))
        .await
        .unwrap()
        .consistency_token;
    let retired = exchange(
        &client,
        &gateway,
        Exchange {
            after: Some(at.clone()),
            ..hop("hop-3", &["lookup"])
        },
    )
    .await
    .unwrap_err();
    assert!(retired.to_string().contains("retired"), "{retired}");
    let by_new = exchange(
        &client,
        &fresh,
        Exchange {
            after: Some(at.clone()),
            ..hop("hop-4", &["lookup"])
        },
    )
    .await
    .unwrap();
    assert!(by_new.accepted);

    // Revocation by the trust root ends the chain.
    let revoked = root
        .sign(events::revoke(
            RevocationTarget::Token(root_token.clone()),
            "test",
            None,
        ))
        .unwrap();
    let at = client
        .append(&[revoked], Some(&by_new.consistency_token))
        .await
        .unwrap()
        .consistency_token;
    let answer = client
        .revocation()
        .check(baton_proto::v1::CheckRequest {
            token: Some(baton_proto::token_ref_to_wire(
                &TokenRef::jti("t", "hop-4").unwrap(),
            )),
            consistency_token: at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, baton_proto::v1::TokenStatus::Revoked as i32);

    // A key file others can read is refused, naming the file and the fix.
    let loose = dir.path().join("gw2.key");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = Signer::from_key_file(&loose).unwrap_err().to_string();
    assert!(
        refused.contains("gw2.key") && refused.contains("chmod 600"),
        "{refused}"
    );
    node.stop().await;
}
