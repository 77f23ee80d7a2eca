//! Callers are authenticated and least-privileged: every RPC × every kind
//! of caller (no certificate, a certificate from another CA, an expired
//! one, a principal with no role, each role, admin), over a real TLS
//! listener with certificates from `baton pki`; audience-bound checkers;
//! the plaintext safety default; certificate rotation on SIGHUP.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use baton::pki;
use baton_log::EmbeddedLog;
use baton_proto::v1;
use baton_server::ServerOptions;
use baton_server::auth::{Access, Grant, Role};
use baton_server::tls::{Tls, TlsFiles};
use baton_testkit::Fixture;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const AUDIENCE_A: &str = "https://gateway.example/mcp";

/// A node in this process, serving mTLS with `access`.
struct Node {
    address: std::net::SocketAddr,
    node: baton_server::Spawned,
    tls: Tls,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(fixture: &Fixture, pki_dir: &Path, access: Access) -> Node {
        let cas = vec![baton_server::tls::ClientCa::any(pki_dir.join("ca.pem"))];
        Node::start_with(fixture, pki_dir, cas, access, Default::default()).await
    }

    /// A node serving `pki_dir`'s server certificate, trusting `cas`.
    async fn start_with(
        fixture: &Fixture,
        pki_dir: &Path,
        cas: Vec<baton_server::tls::ClientCa>,
        access: Access,
        limits: baton_server::Limits,
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
        let tls = Tls::load(TlsFiles {
            cert: pki_dir.join("server.pem"),
            key: pki_dir.join("server.key"),
            client_ca: cas,
        })
        .unwrap();
        let options = ServerOptions {
            tls: Some(tls.clone()),
            access: baton_server::auth::AccessHandle::new(access),
            limits,
            ..ServerOptions::new(fixture.policy(), dir.path().join("projection"))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = baton_server::spawn(options, log, listener).unwrap();
        Node {
            address: node.address,
            node,
            tls,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.node.stop().await.unwrap();
    }
}

/// A TLS channel trusting `ca`, presenting `name`'s certificate from `dir`
/// if given.
async fn channel(
    address: std::net::SocketAddr,
    ca: &Path,
    client: Option<(&Path, &str)>,
) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name("localhost");
    if let Some((dir, name)) = client {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(dir.join(format!("{name}.pem"))).unwrap(),
            std::fs::read(dir.join(format!("{name}.key"))).unwrap(),
        ));
    }
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Append,
    Check,
    CheckBatch,
    Watch,
    Introspect,
    GetChain,
    GetDescendants,
    ListEvents,
    ExportChain,
}

impl Rpc {
    const ALL: [Rpc; 9] = [
        Rpc::Append,
        Rpc::Check,
        Rpc::CheckBatch,
        Rpc::Watch,
        Rpc::Introspect,
        Rpc::GetChain,
        Rpc::GetDescendants,
        Rpc::ListEvents,
        Rpc::ExportChain,
    ];

    fn role(self) -> Role {
        match self {
            Rpc::Append => Role::Writer,
            Rpc::Check | Rpc::CheckBatch | Rpc::Watch | Rpc::Introspect => Role::Checker,
            _ => Role::Auditor,
        }
    }
}

fn token(jti: &str) -> Option<v1::TokenRef> {
    Some(baton_proto::token_ref_to_wire(&Fixture::token(jti)))
}

/// Calls `rpc` with a request that succeeds for a caller allowed it.
async fn call(
    channel: &Channel,
    rpc: Rpc,
    duplicate: &v1::SignedEvent,
) -> Result<(), tonic::Status> {
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::new(channel.clone());
    let mut revocation =
        v1::revocation_service_client::RevocationServiceClient::new(channel.clone());
    let mut provenance =
        v1::provenance_service_client::ProvenanceServiceClient::new(channel.clone());
    let check = v1::CheckRequest {
        token: token("t0"),
        ..Default::default()
    };
    match rpc {
        Rpc::Append => {
            let response = ledger
                .append(v1::AppendRequest {
                    events: vec![duplicate.clone()],
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(
                response.results[0].outcome,
                v1::AppendOutcome::Duplicate as i32
            );
        }
        Rpc::Check => {
            let answer = revocation.check(check).await?.into_inner();
            assert_eq!(answer.status, v1::TokenStatus::Active as i32);
        }
        Rpc::CheckBatch => {
            let answer = revocation
                .check_batch(v1::CheckBatchRequest {
                    checks: vec![check],
                })
                .await?
                .into_inner();
            assert_eq!(answer.results[0].status, v1::TokenStatus::Active as i32);
        }
        Rpc::Watch => {
            let mut stream = revocation
                .watch(v1::WatchRequest::default())
                .await?
                .into_inner();
            // The setup revoked nothing: the stream opens and stays quiet.
            let quiet =
                tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
            assert!(quiet.is_err(), "{quiet:?}");
        }
        Rpc::Introspect => {
            let answer = revocation
                .introspect(v1::IntrospectRequest {
                    token: token("t1"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(answer.details.unwrap().chain.len(), 2);
        }
        Rpc::GetChain => {
            let chain = provenance
                .get_chain(v1::GetChainRequest {
                    token: token("t1"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert!(chain.events.len() >= 2);
        }
        Rpc::GetDescendants => {
            let mut stream = provenance
                .get_descendants(v1::GetDescendantsRequest {
                    token: token("t0"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert!(stream.next().await.unwrap()?.token.is_some());
        }
        Rpc::ListEvents => {
            let mut stream = provenance
                .list_events(v1::ListEventsRequest::default())
                .await?
                .into_inner();
            assert!(stream.next().await.unwrap().is_ok());
        }
        Rpc::ExportChain => {
            let bundle = provenance
                .export_chain(v1::ExportChainRequest {
                    token: token("t1"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert!(bundle.bundle.is_some());
        }
    }
    Ok(())
}

fn grant(principal: &str, roles: &[Role], audiences: &[&str]) -> Grant {
    Grant {
        secret: None,
        client: None,
        uid: None,
        principal: principal.into(),
        roles: roles.iter().copied().collect(),
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_vouches_only_for_the_principals_it_is_configured_for() {
    use baton_server::tls::ClientCa;
    let dir = tempfile::tempdir().unwrap();
    let (ours, partner) = (dir.path().join("pki"), dir.path().join("partner"));
    pki::init(&ours, &[]).unwrap();
    pki::init(&partner, &[]).unwrap();
    pki::issue(&ours, "admin", "spiffe://corp.test/admin", 1).unwrap();
    // The partner's CA issues for its own gateway, and tries our admin.
    pki::issue(&partner, "gw", "spiffe://partner.test/gw", 1).unwrap();
    pki::issue(&partner, "admin", "spiffe://corp.test/admin", 1).unwrap();
    let access = Access::new(vec![
        grant("spiffe://corp.test/admin", &[Role::Admin], &[]),
        grant("spiffe://partner.test/gw", &[Role::Checker], &[]),
    ])
    .unwrap();
    let (fixture, _) = Fixture::standard(common::now_s());
    let cas = vec![
        ClientCa {
            file: ours.join("ca.pem"),
            principals: Some(vec!["spiffe://corp.test/*".into()]),
        },
        ClientCa {
            file: partner.join("ca.pem"),
            principals: Some(vec!["spiffe://partner.test/*".into()]),
        },
    ];
    let node = Node::start_with(&fixture, &ours, cas, access, Default::default()).await;
    let ca = ours.join("ca.pem");
    let status = |channel: Channel| async move {
        v1::admin_service_client::AdminServiceClient::new(channel)
            .status(v1::StatusRequest::default())
            .await
    };
    let check = |channel: Channel| async move {
        v1::revocation_service_client::RevocationServiceClient::new(channel)
            .check(v1::CheckRequest {
                token: token("nothing"),
                ..Default::default()
            })
            .await
    };
    let ours_admin = channel(node.address, &ca, Some((&ours, "admin"))).await;
    assert!(status(ours_admin).await.is_ok());
    let partner_gw = channel(node.address, &ca, Some((&partner, "gw"))).await;
    assert!(check(partner_gw).await.is_ok());
    let partner_admin = channel(node.address, &ca, Some((&partner, "admin"))).await;
    for refused in [
        status(partner_admin.clone()).await.unwrap_err(),
        check(partner_admin).await.unwrap_err(),
    ] {
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        assert!(
            refused.message().contains("may not vouch for"),
            "{refused:?}"
        );
    }
    node.stop().await;

    // Two CAs, one of which may name anyone: refused at load.
    let loose = Tls::load(TlsFiles {
        cert: ours.join("server.pem"),
        key: ours.join("server.key"),
        client_ca: vec![
            ClientCa::any(ours.join("ca.pem")),
            ClientCa {
                file: partner.join("ca.pem"),
                principals: Some(vec!["spiffe://partner.test/*".into()]),
            },
        ],
    })
    .unwrap_err();
    assert!(loose.contains("tls.client_ca[0]"), "{loose}");
    // A pattern that spans trust domains: refused.
    let spanning = Tls::load(TlsFiles {
        cert: ours.join("server.pem"),
        key: ours.join("server.key"),
        client_ca: vec![ClientCa {
            file: partner.join("ca.pem"),
            principals: Some(vec!["spiffe://partner.test*".into()]),
        }],
    })
    .unwrap_err();
    assert!(
        spanning.contains("tls.client_ca[0].principals"),
        "{spanning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connections_have_a_small_pool_of_their_own() {
    use tokio::io::AsyncReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("pki");
    pki::init(&ours, &[]).unwrap();
    pki::issue(&ours, "admin", "spiffe://corp.test/admin", 1).unwrap();
    let access = Access::new(vec![grant("spiffe://corp.test/admin", &[Role::Admin], &[])]).unwrap();
    let (fixture, _) = Fixture::standard(common::now_s());
    let cas = vec![baton_server::tls::ClientCa::any(ours.join("ca.pem"))];
    let limits = baton_server::Limits {
        connections_max: 2,
        anonymous_connections_max: 3,
        ..Default::default()
    };
    let node = Node::start_with(&fixture, &ours, cas, access, limits).await;
    let (address, ca) = (node.address.to_string(), ours.join("ca.pem"));
    // Three peers without a certificate, more than connections_max...
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(anonymous_tls(&address, &ca).await);
    }
    // ...hold none of its slots once their handshake says who they are
    // not: two callers with a role are served, on connections of their own.
    for _ in 0..2 {
        let admin = channel(node.address, &ca, Some((&ours, "admin"))).await;
        v1::admin_service_client::AdminServiceClient::new(admin)
            .status(v1::StatusRequest::default())
            .await
            .unwrap();
    }
    // A fourth anonymous peer finds the anonymous pool full: closed.
    let mut fourth = anonymous_tls(&address, &ca).await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), fourth.read(&mut buf))
        .await
        .expect("the fourth anonymous connection was kept open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    drop(idle);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_exactly_the_roles_allowed_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("pki"), dir.path().join("other"));
    pki::init(&ours, &[]).unwrap();
    pki::init(&theirs, &[]).unwrap();
    let p = |name: &str| format!("spiffe://baton.test/{name}");
    for name in ["writer", "checker", "auditor", "admin", "nobody", "bound"] {
        pki::issue(&ours, name, &p(name), 1).unwrap();
    }
    // The admin's principal, from a CA the node does not trust...
    pki::issue(&theirs, "admin", &p("admin"), 1).unwrap();
    // ...and from the right CA, but expired yesterday.
    let now = time::OffsetDateTime::now_utc();
    pki::sign(
        &ours,
        "expired",
        pki::Leaf::Client(p("admin")),
        now - time::Duration::days(2),
        now - time::Duration::days(1),
    )
    .unwrap();
    let access = Access::new(vec![
        grant(&p("writer"), &[Role::Writer], &[]),
        grant(&p("checker"), &[Role::Checker], &[]),
        grant(&p("auditor"), &[Role::Auditor], &[]),
        grant(&p("admin"), &[Role::Admin], &[]),
        grant(&p("bound"), &[Role::Checker], &[AUDIENCE_A]),
    ])
    .unwrap();

    let (mut fixture, mut events) = Fixture::standard(common::now_s());
    events.push(fixture.issue("as", "t0", "alice", "agent", 3600));
    events.push(fixture.narrow("t0", "t1", "agent", "gateway", &[], 60));
    let node = Node::start(&fixture, &ours, access).await;
    let ca = ours.join("ca.pem");
    let admin = channel(node.address, &ca, Some((&ours, "admin"))).await;
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::new(admin.clone());
    let written = ledger
        .append(v1::AppendRequest {
            events: events.iter().map(v1::SignedEvent::from).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        written
            .results
            .iter()
            .all(|r| r.outcome == v1::AppendOutcome::Accepted as i32)
    );
    let duplicate = v1::SignedEvent::from(&events[events.len() - 2]);

    // (caller, its roles, or the refusal every non-health call gets)
    enum Expect {
        Roles(&'static [Role]),
        Unauthenticated(&'static str),
    }
    let callers: Vec<(&str, Channel, Expect)> = vec![
        (
            "no certificate",
            channel(node.address, &ca, None).await,
            Expect::Unauthenticated("no client certificate"),
        ),
        (
            "another CA's certificate",
            channel(node.address, &ca, Some((&theirs, "admin"))).await,
            Expect::Unauthenticated("UnknownIssuer"),
        ),
        (
            "an expired certificate",
            channel(node.address, &ca, Some((&ours, "expired"))).await,
            Expect::Unauthenticated("expired"),
        ),
        (
            "a principal with no role",
            channel(node.address, &ca, Some((&ours, "nobody"))).await,
            Expect::Roles(&[]),
        ),
        (
            "writer",
            channel(node.address, &ca, Some((&ours, "writer"))).await,
            Expect::Roles(&[Role::Writer]),
        ),
        (
            "checker",
            channel(node.address, &ca, Some((&ours, "checker"))).await,
            Expect::Roles(&[Role::Checker]),
        ),
        (
            "auditor",
            channel(node.address, &ca, Some((&ours, "auditor"))).await,
            Expect::Roles(&[Role::Auditor]),
        ),
        ("admin", admin.clone(), Expect::Roles(&Role::ALL)),
    ];
    let mut answered = 0;
    for (who, channel, expect) in &callers {
        for rpc in Rpc::ALL {
            let needed = format!("role {}", rpc.role());
            let got = call(channel, rpc, &duplicate).await;
            match (expect, got) {
                (Expect::Roles(roles), Ok(())) => {
                    assert!(roles.contains(&rpc.role()), "{who} was allowed {rpc:?}");
                    answered += 1;
                }
                (Expect::Roles(roles), Err(status)) => {
                    assert!(
                        !roles.contains(&rpc.role()),
                        "{who} was refused {rpc:?}: {status:?}"
                    );
                    assert_eq!(
                        status.code(),
                        Code::PermissionDenied,
                        "{who} {rpc:?}: {status:?}"
                    );
                    assert!(
                        status.message().contains(&needed),
                        "{who} {rpc:?}: {status:?}"
                    );
                    assert!(status.message().len() < 400, "{status:?}");
                }
                (Expect::Unauthenticated(why), got) => {
                    let status = got.expect_err(who);
                    assert_eq!(
                        status.code(),
                        Code::Unauthenticated,
                        "{who} {rpc:?}: {status:?}"
                    );
                    assert!(
                        status.message().contains(&needed) && status.message().contains(why),
                        "{who} {rpc:?}: {status:?}"
                    );
                }
            }
        }
        // Health answers every caller, with or without a certificate.
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let serving = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            serving.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    // writer 1 + checker 4 + auditor 4 + admin 9.
    assert_eq!(answered, 18);

    // A checker bound to one audience: details for its tokens, a bare
    // status for others.
    let bound = channel(node.address, &ca, Some((&ours, "bound"))).await;
    let mut checks = v1::revocation_service_client::RevocationServiceClient::new(bound);
    let mut full = v1::revocation_service_client::RevocationServiceClient::new(admin.clone());
    let ask = |jti: &str| v1::CheckRequest {
        token: token(jti),
        ..Default::default()
    };
    let own = checks.check(ask("t1")).await.unwrap().into_inner();
    assert_eq!(own.audience, AUDIENCE_A);
    // The same answer (a confirmation of the log's end may land between
    // the two, so not the same view of it).
    let unviewed = |answer: v1::CheckResponse| v1::CheckResponse {
        view_confirmed_end: String::new(),
        view_confirmed_at_unix_ms: 0,
        view_age_ms: None,
        ..answer
    };
    assert_eq!(
        unviewed(own),
        unviewed(full.check(ask("t1")).await.unwrap().into_inner())
    );
    let other = checks.check(ask("t0")).await.unwrap().into_inner();
    assert_eq!(other.status, v1::TokenStatus::Active as i32);
    assert!(
        other.audience.is_empty()
            && other.event_id.is_empty()
            && other.expires_at_unix_s == 0
            && other.depth == 0,
        "{other:?}"
    );
    let batch = checks
        .check_batch(v1::CheckBatchRequest {
            checks: vec![ask("t0"), ask("t1")],
        })
        .await
        .unwrap()
        .into_inner();
    let hidden = &batch.results[0];
    assert!(
        hidden.event_id.is_empty()
            && hidden.audience.is_empty()
            && hidden.expires_at_unix_s == 0
            && hidden.depth == 0
            && hidden.cause.is_none(),
        "{hidden:?}"
    );
    assert_eq!(batch.results[1].audience, AUDIENCE_A);
    // Introspect: what the token is, only for its own audience.
    let introspect = |jti: &str| v1::IntrospectRequest {
        token: token(jti),
        ..Default::default()
    };
    let own = checks
        .introspect(introspect("t1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.details.unwrap().holder, "gateway");
    let other = checks
        .introspect(introspect("t0"))
        .await
        .unwrap()
        .into_inner();
    assert!(other.details.is_none(), "{other:?}");
    assert!(other.check.unwrap().audience.is_empty());
    // Revoked elsewhere: still only the status, not who revoked it or why.
    let revoke = fixture.revoke(baton_core::RevocationTarget::Token(Fixture::token("t0")));
    let revoked = ledger
        .append(v1::AppendRequest {
            events: vec![v1::SignedEvent::from(&revoke)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let after = v1::CheckRequest {
        consistency_token: revoked.consistency_token,
        ..ask("t0")
    };
    let other = checks.check(after.clone()).await.unwrap().into_inner();
    assert_eq!(other.status, v1::TokenStatus::Revoked as i32);
    assert!(other.cause.is_none(), "{other:?}");
    assert!(
        full.check(after)
            .await
            .unwrap()
            .into_inner()
            .cause
            .is_some()
    );
    // The bound checker is still only a checker.
    let mut provenance = v1::provenance_service_client::ProvenanceServiceClient::new(
        channel(node.address, &ca, Some((&ours, "bound"))).await,
    );
    let refused = provenance
        .get_chain(v1::GetChainRequest {
            token: token("t1"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // It may not ask about tokens presented to someone else (that would
    // tell it their audience), nor open the feed of every revocation.
    let elsewhere = v1::CheckRequest {
        presented_to: "https://agent.example/mcp".into(),
        ..ask("t0")
    };
    let refused = checks.check(elsewhere.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().starts_with("presented_to:"),
        "{refused:?}"
    );
    let refused = checks
        .check_batch(v1::CheckBatchRequest {
            checks: vec![ask("t1"), elsewhere],
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().starts_with("checks[1].presented_to:"),
        "{refused:?}"
    );
    let own = v1::CheckRequest {
        presented_to: AUDIENCE_A.into(),
        ..ask("t1")
    };
    // (t1 is revoked through t0 by now; its own checker sees why.)
    let own = checks.check(own).await.unwrap().into_inner();
    assert!(own.cause.is_some(), "{own:?}");
    assert_eq!(own.status, v1::TokenStatus::Revoked as i32);
    let refused = checks
        .watch(v1::WatchRequest::default())
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The CAs reloaded without ours: an open connection is refused at its
    // next request, not at its next handshake, and an open Watch ends.
    let mut watching = v1::revocation_service_client::RevocationServiceClient::new(
        channel(node.address, &ca, Some((&ours, "checker"))).await,
    )
    .watch(v1::WatchRequest::default())
    .await
    .unwrap()
    .into_inner();
    std::fs::copy(theirs.join("ca.pem"), ours.join("ca.pem")).unwrap();
    node.tls.reload().unwrap();
    let refused = full.check(ask("t1")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("UnknownIssuer"), "{refused:?}");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match watching.message().await {
                Ok(Some(_revocation)) => continue,
                Ok(None) => panic!("the Watch ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the open Watch went on after its caller's CA was removed");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    node.stop().await;
}

#[test]
fn plaintext_is_refused_off_loopback_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let root = hex::encode(baton_core::SigningKey::generate().public_key().to_bytes());
    let data = dir.path().join("data").display().to_string();
    let said = common::serve_refused(&[
        "--listen",
        "0.0.0.0:0",
        "--trust-root",
        &root,
        "--data-dir",
        &data,
    ]);
    assert!(
        said.contains("refusing to serve plaintext on 0.0.0.0:0")
            && said.contains("--tls-cert")
            && said.contains("baton pki init")
            && said.contains("--insecure"),
        "{said}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "it refused after touching the data directory"
    );
}

/// The leaf certificate a fresh TLS connection to `address` is served.
async fn served_certificate(address: &str, ca: &Path) -> Vec<u8> {
    let tls = anonymous_tls(address, ca).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A TLS connection to `address` (handshake done, within 10 s) that
/// presents no client certificate.
async fn anonymous_tls(
    address: &str,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    };
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .expect("no TLS handshake within 10 s")
}

/// `baton serve` with `config` and a fresh trust root, data in `dir/node`.
fn served(dir: &Path, config: &Path) -> common::Served {
    let root = baton_core::SigningKey::generate().public_key();
    common::Served::start(
        &dir.join("node"),
        &hex::encode(root.to_bytes()),
        &["--config", &config.display().to_string()],
    )
}

/// Signs a new server certificate for localhost and 127.0.0.1 as `name`,
/// renames its key and then its chain over the server's files (as a
/// certificate manager does), and returns the new certificate (DER).
fn replace_server_certificate(pki_dir: &Path, name: &str) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    pki::sign(
        pki_dir,
        name,
        pki::Leaf::Server(vec!["localhost".into(), "127.0.0.1".into()]),
        now - time::Duration::minutes(1),
        now + time::Duration::days(1),
    )
    .unwrap();
    let der = pem_der(&pki_dir.join(format!("{name}.pem")));
    std::fs::rename(
        pki_dir.join(format!("{name}.key")),
        pki_dir.join("server.key"),
    )
    .unwrap();
    std::fs::rename(
        pki_dir.join(format!("{name}.pem")),
        pki_dir.join("server.pem"),
    )
    .unwrap();
    der
}

fn pem_der(path: &Path) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject as _};
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// Replacing the server certificate's files and sending SIGHUP serves the
/// new certificate to new connections, while a client checking all along
/// (on its open connection and on new ones) sees no failed request; files
/// that do not load leave the node serving the certificate it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_after_sighup_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    // The file watch off: what changes here changes on SIGHUP alone.
    let config = common::mtls_config(
        &pki_dir,
        "poll_ms = 0",
        "[[access]]\nprincipal = \"spiffe://baton.test/gw\"\nroles = [\"checker\"]\n",
    );
    pki::issue(&pki_dir, "gw", "spiffe://baton.test/gw", 1).unwrap();
    let node = served(dir.path(), &config);
    let ca = pki_dir.join("ca.pem");
    let old = pem_der(&pki_dir.join("server.pem"));
    assert_eq!(served_certificate(&node.address, &ca).await, old);

    let address: std::net::SocketAddr = node.address.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let checking = tokio::spawn({
        let (stop, done, failed, ca, pki_dir) = (
            stop.clone(),
            done.clone(),
            failed.clone(),
            ca.clone(),
            pki_dir.clone(),
        );
        async move {
            let open = channel(address, &ca, Some((&pki_dir, "gw"))).await;
            while !stop.load(Ordering::SeqCst) {
                for channel in [
                    open.clone(),
                    channel(address, &ca, Some((&pki_dir, "gw"))).await,
                ] {
                    let mut client =
                        v1::revocation_service_client::RevocationServiceClient::new(channel);
                    let answer = client
                        .check(v1::CheckRequest {
                            token: token("nothing"),
                            ..Default::default()
                        })
                        .await;
                    match answer {
                        Ok(answer)
                            if answer.get_ref().status == v1::TokenStatus::Unknown as i32 =>
                        {
                            done.fetch_add(1, Ordering::SeqCst)
                        }
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            }
        }
    });
    let hangup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &node.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // Broken files first: the node keeps serving the old certificate.
    std::fs::write(pki_dir.join("broken.pem"), "not a certificate").unwrap();
    std::fs::rename(pki_dir.join("server.pem"), pki_dir.join("old.pem")).unwrap();
    std::fs::rename(pki_dir.join("broken.pem"), pki_dir.join("server.pem")).unwrap();
    hangup();
    node.wait_for_log(
        "SIGHUP: TLS files not reloaded",
        std::time::Duration::from_secs(30),
    );
    assert_eq!(served_certificate(&node.address, &ca).await, old);

    // Then a new certificate and key, each renamed into place.
    let new = replace_server_certificate(&pki_dir, "next");
    assert_ne!(new, old);
    let before = done.load(Ordering::SeqCst);
    hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while served_certificate(&node.address, &ca).await != new {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Let the checker run on both certificates' connections for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < before + 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the checker stopped answering"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    checking.await.unwrap();
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during the rotation"
    );
    assert!(done.load(Ordering::SeqCst) > before);

    // The CLI over mTLS, by flags and by BATON_* variables; refused without
    // a certificate, and told to give a CA for https://.
    let url = node.url();
    assert!(url.starts_with("https://"));
    let file = |name: &str| pki_dir.join(name).display().to_string();
    let check = |extra: &[&str], env: &[(&str, String)]| {
        common::baton()
            .args(["check", "jti:nothing"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    let (ca, cert, key) = (file("ca.pem"), file("gw.pem"), file("gw.key"));
    let by_flags = check(
        &[
            "--server",
            &url,
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--cert-key",
            &key,
        ],
        &[],
    );
    assert_eq!(by_flags.status.code(), Some(5), "{by_flags:?}");
    let by_env = check(
        &[],
        &[
            ("BATON_SERVER", url.clone()),
            ("BATON_CA", ca.clone()),
            ("BATON_CERT", cert.clone()),
            ("BATON_CERT_KEY", key.clone()),
        ],
    );
    assert_eq!(by_env.status.code(), Some(5), "{by_env:?}");
    let anonymous = check(&["--server", &url, "--ca", &ca], &[]);
    assert_eq!(anonymous.status.code(), Some(1));
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        said.contains("UNAUTHENTICATED") && said.contains("role checker"),
        "{said}"
    );
    let no_ca = check(&["--server", &url], &[]);
    assert_eq!(no_ca.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_ca.stderr).contains("--ca"),
        "{no_ca:?}"
    );

    // SIGHUP also re-reads the grants: without its grant, gw is refused.
    let text = std::fs::read_to_string(&config).unwrap();
    let without = text.split("[[access]]").next().unwrap().to_owned();
    std::fs::write(&config, without).unwrap();
    hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let refused = check(
            &[
                "--server",
                &url,
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--cert-key",
                &key,
            ],
            &[],
        );
        if refused.status.code() == Some(1) {
            let said = String::from_utf8_lossy(&refused.stderr);
            assert!(
                said.contains("PERMISSION_DENIED") && said.contains("has no role"),
                "{said}"
            );
            break;
        }
        assert_eq!(refused.status.code(), Some(5), "{refused:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was never withdrawn"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    node.stop();
}

/// A certificate manager replaces the files and sends nothing: the node
/// notices the change (once it has held still) and serves the new
/// certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_is_served_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let config = common::mtls_config(&pki_dir, "poll_ms = 100", "");
    let node = served(dir.path(), &config);
    // A certificate manager replaces the files and sends nothing: the node
    // notices the change and serves the new certificate.
    let third = replace_server_certificate(&pki_dir, "third");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while served_certificate(&node.address, &pki_dir.join("ca.pem")).await != third {
        assert!(
            std::time::Instant::now() < deadline,
            "a changed certificate was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    node.stop();
}

/// A connection that fails says so once, with the likely cause and the
/// fix: nothing listening, no scheme, plaintext to a TLS node, TLS to a
/// plaintext one, a CA that did not sign the node's certificate; and a
/// node's refusal is printed once.
#[test]
fn connection_failures_name_the_cause_and_the_fix_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let config = common::mtls_config(&pki_dir, "", "");
    let tls = served(dir.path(), &config);
    let root = baton_core::SigningKey::generate().public_key();
    let plain = common::Served::start(
        &dir.path().join("plain"),
        &hex::encode(root.to_bytes()),
        &[],
    );
    baton::pki::init(&dir.path().join("other-pki"), &[]).unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nothing = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let plain_address = plain.address.clone();
    let said = |server: &str, ca: Option<&Path>, args: &[&str]| -> String {
        let mut command = common::baton();
        command.env("BATON_SERVER", server).env_remove("BATON_CA");
        if let Some(ca) = ca {
            command.env("BATON_CA", ca);
        }
        let out = command.args(args).output().unwrap();
        assert!(!out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let check = ["check", "jti:anything"];
    for (server, ca, cause, fix) in [
        (
            nothing.as_str(),
            None,
            "Connection refused",
            "nothing is listening there",
        ),
        (
            plain_address.as_str(),
            None,
            "scheme is missing",
            "write the address with its scheme",
        ),
        (
            &format!("http://{}", tls.address),
            None,
            "",
            "if the node serves TLS, use https://",
        ),
        (
            &format!("https://{plain_address}"),
            Some(pki_dir.join("ca.pem")),
            "InvalidContentType",
            "does not speak TLS on this port: use http://",
        ),
        (
            &format!("https://{}", tls.address),
            Some(dir.path().join("other-pki/ca.pem")),
            "UnknownIssuer",
            "does not chain to the CA given",
        ),
    ] {
        let said = said(server, ca.as_deref(), &check);
        assert!(
            said.contains(cause) && said.contains(fix),
            "{server}: {said}"
        );
        // Said once: no cause repeated by the error's chain.
        assert_eq!(said.lines().count(), 1, "{server}: {said}");
        if !cause.is_empty() {
            assert_eq!(said.matches(cause).count(), 1, "{server}: {said}");
        }
    }
    // A refusal from the node, once (through the SDK's append).
    let key = dir.path().join("writer.key");
    let out = common::baton()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = key.display().to_string();
    let refusal = said(
        &plain.url(),
        None,
        &[
            "narrow",
            "--key",
            &key,
            "--parent",
            "jti:not-in-the-ledger",
            "--token",
            "jti:hop",
            "--performed-by",
            "someone",
            "--holder",
            "someone-else",
            "--audience",
            "https://mcp.example/",
            "--scopes",
            "a",
        ],
    );
    assert!(refusal.starts_with("error: NOT_FOUND: "), "{refusal}");
    assert_eq!(refusal.matches("not-in-the-ledger").count(), 1, "{refusal}");
    // With --json, errors are JSON too: the node's code when it refused,
    // null when no node answered.
    let as_json = |said: String| -> serde_json::Value {
        serde_json::from_str(said.trim()).unwrap_or_else(|e| panic!("{e}: {said}"))
    };
    let refused = as_json(
        common::baton()
            .env("BATON_SERVER", plain.url())
            .args(["chain", "--json", "jti:not-in-the-ledger"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
            .unwrap(),
    );
    assert_eq!(refused["code"], "NOT_FOUND", "{refused}");
    assert_eq!(refused["exit_code"], 1, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not-in-the-ledger")
    );
    let unreachable = as_json(said(&nothing, None, &["check", "--json", "jti:x"]));
    assert!(unreachable["code"].is_null(), "{unreachable}");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains("nothing is listening there"),
        "{unreachable}"
    );
}
