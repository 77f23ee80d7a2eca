//! Two `baton serve` processes sharing one real Kafka whose clients must
//! authenticate (SASL/SCRAM-SHA-512, credentials from a file): a 4-hop chain appended
//! on node A, hop 2 revoked on A; node B answers REVOKED for hops 2–4 and
//! ACTIVE for hop 1 at once when given A's consistency token, and within a
//! bounded wait without it; node B serves the chain; `baton verify` accepts
//! B's export and rejects every copy with one byte changed. A node with the
//! wrong password does not start, and says why.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, baton, now_s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_kafka() {
    let cluster = KafkaCluster::start_sasl(1).unwrap();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let sasl = |password: &std::path::Path| {
        let config = dir.path().join(format!(
            "{}.toml",
            password.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(
            &config,
            format!(
                "[kafka]\nsecurity_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"baton\"\nsasl_password_file = {password:?}\n"
            ),
        )
        .unwrap();
        config.display().to_string()
    };
    let config = sasl(&cluster.sasl_password_file());
    let kafka = [
        "--kafka-brokers",
        cluster.bootstrap(),
        "--kafka-topic",
        "two-nodes",
        "--kafka-partitions",
        "4",
        "--config",
        &config,
    ];

    // The wrong password: the node fails at once, saying what to check.
    let wrong = dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let refused_dir = dir.path().join("refused").display().to_string();
    let wrong_config = sasl(&wrong);
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--trust-root",
        &root,
        "--data-dir",
        &refused_dir,
    ];
    args.extend_from_slice(&kafka[..6]);
    args.extend(["--config", &wrong_config]);
    let said = common::serve_refused(&args);
    assert!(
        said.contains("authentication failed (SASL or TLS)")
            && said.contains("SASL authentication error")
            && !said.contains("not-the-password"),
        "{said}"
    );

    let a = Served::start(&dir.path().join("a"), &root, &kafka);
    let b = Served::start(&dir.path().join("b"), &root, &kafka);

    let mut chain = setup;
    chain.push(f.issue("as", "h1", "user:alice", "agent", 3600));
    chain.push(f.narrow("h1", "h2", "agent", "gateway", &["repo:write"], 60));
    chain.push(f.narrow("h2", "h3", "gateway", "server-a", &["files:write"], 60));
    chain.push(f.narrow("h3", "h4", "server-a", "server-b", &[], 60));
    append(&a.url(), &chain).await;
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("h2")));
    let token = append(&a.url(), &[revoke]).await.consistency_token;

    // With A's consistency token, B answers with the revocation at once.
    assert_eq!(
        common::check(&b.url(), "h1", &token).await.unwrap(),
        v1::TokenStatus::Active
    );
    for hop in ["h2", "h3", "h4"] {
        assert_eq!(
            common::check(&b.url(), hop, &token).await.unwrap(),
            v1::TokenStatus::Revoked,
            "{hop} on node B"
        );
    }

    // Without a token, B converges within a bounded wait.
    let more = [
        f.issue("as", "x1", "user:bob", "agent", 3600),
        f.narrow("x1", "x2", "agent", "gateway", &[], 60),
    ];
    append(&a.url(), &more).await;
    // B's Watch says when B has applied the revocation; then its Check answers.
    let mut watch = common::watch(&b.url()).await;
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("x1")));
    let revoke_id = revoke.id().0.to_vec();
    append(&a.url(), &[revoke]).await;
    let acknowledged = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(effect) = watch.message().await.unwrap() {
            if effect.revocation_event_id == revoke_id {
                return;
            }
        }
        panic!("node B's Watch ended");
    })
    .await
    .expect("node B did not see the revocation within 10 s");
    assert_eq!(
        common::check(&b.url(), "x2", "").await.unwrap(),
        v1::TokenStatus::Revoked
    );
    eprintln!(
        "revocation acknowledged on A was REVOKED on B after {:?}",
        acknowledged.elapsed()
    );

    // B serves the chain, and its export verifies offline.
    let output = baton()
        .args(["chain", "jti:h4", "--server", &b.url()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("jti:h4  for user:alice: server-a -> server-b"),
        "{text}"
    );
    let bundle = dir.path().join("h4.bundle");
    let output = baton()
        .args(["export", "jti:h4", "--server", &b.url(), "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let verify = |path: &std::path::Path| {
        baton()
            .arg("verify")
            .arg(path)
            .args(["--trust-root", &root])
            .output()
            .unwrap()
    };
    let accepted = verify(&bundle);
    assert_eq!(accepted.status.code(), Some(0), "{accepted:?}");
    assert!(String::from_utf8_lossy(&accepted.stdout).starts_with("verified: 4 link(s)"));
    let bytes = std::fs::read(&bundle).unwrap();
    let tampered = dir.path().join("tampered.bundle");
    for i in 0..bytes.len() {
        let mut copy = bytes.clone();
        copy[i] ^= 0x01;
        std::fs::write(&tampered, &copy).unwrap();
        let rejected = verify(&tampered);
        assert_eq!(
            rejected.status.code(),
            Some(3),
            "a copy with byte {i} changed was not rejected: {rejected:?}"
        );
    }

    a.stop();
    b.stop();
}
