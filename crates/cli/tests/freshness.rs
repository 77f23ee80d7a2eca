//! A node cut off from Kafka while another keeps appending (issue 20): two
//! `baton serve` nodes on a real 3-broker cluster (the topic replicated 3
//! times), node B's every connection to each broker through proxies the test
//! cuts (`KafkaCluster::start_detoured`). B is cut,
//! A revokes 20 tokens; once B's freshness bound (plus a second) has passed
//! since the cut, B answers none of them ACTIVE — Check, Introspect, a
//! `Checker` fed by B's Watch — its forward-auth answers 503, gRPC health
//! says NOT_SERVING and `/healthz` 503, and a token B knew revoked still
//! answers REVOKED. Healed, B catches up, turns SERVING, and answers as A.
//! Both ways a link fails: connections reset (reads fail) and connections
//! that stay open and carry nothing (reads time out, no error). And a node
//! restarted while no broker answers stays up (NOT_SERVING) through an
//! outage longer than a failing reader used to be allowed, then serves by
//! itself.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use baton_client::{Checker, CheckerConfig, Source, Status};
use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, baton, health, now_s};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// B's bound, short so the test is quick; A keeps the default.
const MAX_STALENESS: Duration = Duration::from_secs(2);
const TOKENS: usize = 20;
const CHECKER_STALENESS: Duration = Duration::from_secs(1);

/// Waits (at most 60 s) until `node` says SERVING and `/healthz` 200.
async fn serves(node: &Served, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while health(&node.url()).await != ServingStatus::Serving || healthz(node) != 200 {
        assert!(Instant::now() < deadline, "{when}: not serving within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn healthz(node: &Served) -> u16 {
    http_get(node, "/healthz", None).0
}

/// A plain HTTP/1.1 request to the node's HTTP listener; its status code
/// and the whole answer.
fn http_get(node: &Served, path: &str, headers: Option<&str>) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let address = node.http_address.as_deref().unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{}Connection: close\r\n\r\n",
        headers.unwrap_or_default()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (code, answer)
}

async fn introspect(url: &str, jti: &str) -> Result<v1::TokenStatus, tonic::Status> {
    let mut client =
        v1::revocation_service_client::RevocationServiceClient::connect(url.to_owned())
            .await
            .unwrap();
    let answer = client
        .introspect(v1::IntrospectRequest {
            token: Some(baton_proto::token_ref_to_wire(&Fixture::token(jti))),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(v1::TokenStatus::try_from(answer.check.unwrap().status).unwrap())
}

fn jti(round: usize, i: usize) -> String {
    format!("r{round}-t{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_log_stops_vouching_within_its_bound_and_recovers() {
    let cluster = KafkaCluster::start_detoured(3).unwrap();
    let detour = cluster.detour().unwrap();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let kafka = |bootstrap: &str| {
        vec![
            "--kafka-brokers".to_owned(),
            bootstrap.to_owned(),
            "--kafka-topic".to_owned(),
            "freshness".to_owned(),
            "--kafka-partitions".to_owned(),
            "2".to_owned(),
            "--kafka-replication".to_owned(),
            "3".to_owned(),
            "--http-listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ]
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let a_args = kafka(cluster.bootstrap());
    let a = Served::start(&dir.path().join("a"), &root, &args(&a_args));
    let config = dir.path().join("b.toml");
    std::fs::write(
        &config,
        format!(
            "[freshness]\nmax_staleness_ms = {}\nconfirm_interval_ms = 500\n\
             [[resource]]\nurl = \"https://mcp.example/mcp\"\naudience = \"https://mcp.example/\"\n",
            MAX_STALENESS.as_millis()
        ),
    )
    .unwrap();
    let mut b_args = kafka(detour.bootstrap());
    b_args.extend(["--config".to_owned(), config.display().to_string()]);
    let b = Served::start(&dir.path().join("b"), &root, &args(&b_args));

    // The ledger: tokens for two rounds, and one revoked before any cut.
    let mut events = setup;
    for round in 0..2 {
        for i in 0..TOKENS {
            events.push(f.issue("as", &jti(round, i), "user:alice", "agent", 3600));
        }
    }
    events.push(f.issue("as", "known-revoked", "user:alice", "agent", 3600));
    append(&a.url(), &events).await;
    let written = append(
        &a.url(),
        &[f.revoke(RevocationTarget::Token(Fixture::token("known-revoked")))],
    )
    .await;
    let token = written.consistency_token;
    assert_eq!(
        common::check(&b.url(), "known-revoked", &token)
            .await
            .unwrap(),
        v1::TokenStatus::Revoked
    );
    serves(&b, "at start").await;

    let client = baton_client::Endpoint::new(b.url())
        .connect()
        .await
        .unwrap();
    let checker = Checker::start(
        client,
        CheckerConfig {
            staleness: CHECKER_STALENESS,
            checkpoint_interval: Duration::from_millis(250),
            ..CheckerConfig::default()
        },
    )
    .await
    .unwrap();

    for (round, (how, fail)) in [("cut", true), ("stalled", false)].into_iter().enumerate() {
        // Before: B and the Checker (fresh again after a round) hold this
        // round's tokens ACTIVE.
        tokio::time::timeout(Duration::from_secs(30), async {
            while !checker.is_fresh() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{how}: the Checker did not turn fresh"));
        for i in 0..TOKENS {
            let answer = checker.check(&Fixture::token(&jti(round, i)), None).await;
            assert_eq!(answer.status, Status::Active, "{how}: {answer:?}");
        }
        let cut = Instant::now();
        if fail {
            detour.cut();
        } else {
            detour.stall();
        }
        let revoked: Vec<_> = (0..TOKENS)
            .map(|i| f.revoke(RevocationTarget::Token(Fixture::token(&jti(round, i)))))
            .collect();
        let written = append(&a.url(), &revoked).await;
        assert!(
            written
                .results
                .iter()
                .all(|r| r.outcome == v1::AppendOutcome::Accepted as i32),
            "{how}: {written:?}"
        );
        // B's bound, the Checker's own after B's last checkpoint, and a
        // second, from the cut (a behaviour at a point in time: what B and
        // the Checker say once their bounds have passed).
        tokio::time::sleep_until(
            (cut + MAX_STALENESS + CHECKER_STALENESS + Duration::from_secs(1)).into(),
        )
        .await;
        for i in 0..TOKENS {
            let token = jti(round, i);
            let checked = common::check(&b.url(), &token, "").await;
            assert!(
                matches!(&checked, Err(status) if status.code() == Code::Unavailable),
                "{how}: B's Check of {token}: {checked:?}"
            );
            let introspected = introspect(&b.url(), &token).await;
            assert!(
                matches!(&introspected, Err(status) if status.code() == Code::Unavailable),
                "{how}: B's Introspect of {token}: {introspected:?}"
            );
            let answer = checker.check(&Fixture::token(&token), None).await;
            assert!(
                answer.status != Status::Active && answer.source == Source::Stale,
                "{how}: the Checker on B's Watch: {answer:?}"
            );
        }
        let refused = common::check(&b.url(), &jti(round, 0), "")
            .await
            .unwrap_err();
        assert!(refused.message().contains("stale"), "{how}: {refused:?}");
        // What stays true whatever the log holds is still answered.
        assert_eq!(
            common::check(&b.url(), "known-revoked", "").await.unwrap(),
            v1::TokenStatus::Revoked,
            "{how}"
        );
        assert_eq!(health(&b.url()).await, ServingStatus::NotServing, "{how}");
        assert_eq!(healthz(&b), 503, "{how}");
        // A gateway's request: a denial it cannot vouch for is a 503.
        let (forward_auth, answer) = http_get(
            &b,
            "/authz",
            Some(
                "X-Original-URI: /mcp\r\nX-Original-Method: GET\r\nX-Forwarded-Proto: https\r\n\
                 X-Forwarded-Host: mcp.example\r\nAuthorization: Bearer test-only-unknown\r\n",
            ),
        );
        assert_eq!(forward_auth, 503, "{how}: forward-auth: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nretry-after: 1\r\n"),
            "{how}: forward-auth: {answer}"
        );
        let status = baton()
            .args(["status", "--json", "--server", &b.url()])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["fresh"], false, "{how}: {status}");

        // Healed: until B has read what it missed it still vouches for
        // nothing it missed (a confirmation of the log's end alone does not
        // make it fresh); then it serves again and answers as A.
        detour.restore();
        let deadline = Instant::now() + Duration::from_secs(60);
        while health(&b.url()).await != ServingStatus::Serving {
            assert!(
                Instant::now() < deadline,
                "{how}: B did not serve again within 60 s"
            );
            for i in 0..TOKENS {
                let checked = common::check(&b.url(), &jti(round, i), "").await;
                assert!(
                    !matches!(checked, Ok(v1::TokenStatus::Active)),
                    "{how}: healing, B answered ACTIVE for {}",
                    jti(round, i)
                );
            }
        }
        for i in 0..TOKENS {
            let token = jti(round, i);
            let on_a = common::check(&a.url(), &token, "").await.unwrap();
            let on_b = common::check(&b.url(), &token, "").await.unwrap();
            assert_eq!(
                (on_a, on_b),
                (v1::TokenStatus::Revoked, v1::TokenStatus::Revoked),
                "{how}: {token}"
            );
        }
        serves(&b, how).await;
    }
    drop(checker);
    a.stop();
    b.stop();
}

/// Every broker unreachable this long (issue 20's "long outage"; a reader
/// used to give up, and its node exit, after 60 s of errors).
const OUTAGE: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_without_the_log_outlasts_the_outage_and_serves_by_itself() {
    let cluster = KafkaCluster::start_detoured(1).unwrap();
    let detour = cluster.detour().unwrap();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let kafka = [
        "--kafka-brokers",
        detour.bootstrap(),
        "--kafka-topic",
        "outage",
        "--kafka-partitions",
        "2",
    ];
    let data = dir.path().join("node");
    let node = Served::start(&data, &root, &kafka);
    let mut events = setup;
    events.push(f.issue("as", "live", "user:alice", "agent", 3600));
    append(&node.url(), &events).await;
    node.stop();

    // Restarted with no broker reachable, for longer than a reader used to
    // be allowed to fail: still up, NOT_SERVING, vouching for nothing.
    detour.cut();
    let node = Served::start(&data, &root, &kafka);
    let outage = Instant::now();
    assert_eq!(health(&node.url()).await, ServingStatus::NotServing);
    while outage.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let checked = common::check(&node.url(), "live", "").await;
        assert!(
            matches!(&checked, Err(status) if status.code() == Code::Unavailable),
            "{:?} into the outage: {checked:?}",
            outage.elapsed()
        );
    }
    assert_eq!(health(&node.url()).await, ServingStatus::NotServing);

    // The brokers answer again: the node serves by itself.
    detour.restore();
    tokio::time::timeout(Duration::from_secs(60), async {
        while health(&node.url()).await != ServingStatus::Serving {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the node did not serve again within 60 s of the log's return");
    assert_eq!(
        common::check(&node.url(), "live", "").await.unwrap(),
        v1::TokenStatus::Active
    );
    node.stop();
}
