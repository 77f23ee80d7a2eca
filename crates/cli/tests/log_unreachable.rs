//! A node restarts while Kafka cannot serve it (issue 8, defect 14): on a
//! 3-broker cluster with two brokers down (no controller quorum) the node
//! finds its topic by metadata, without the admin API, starts, reports
//! NOT_SERVING, answers REVOKED from its projection and UNAVAILABLE for what
//! it cannot vouch for; once a broker returns it catches up and serves. With
//! every broker down it starts from the partition count it recorded.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, now_s};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

async fn health(url: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    let status = client.check(request).await.unwrap().into_inner().status;
    ServingStatus::try_from(status).unwrap()
}

/// While the log is unreachable: NOT_SERVING, the revoked hop REVOKED, the
/// live one UNAVAILABLE (never ACTIVE: a revocation may have been missed).
async fn answers_what_it_safely_can(url: &str) {
    assert_eq!(health(url).await, ServingStatus::NotServing);
    assert_eq!(
        common::check(url, "h2", "").await.unwrap(),
        v1::TokenStatus::Revoked
    );
    let refused = common::check(url, "h1", "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("has not reached the log"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarts_and_answers_what_it_can_while_kafka_is_down() {
    let cluster = KafkaCluster::start(3).unwrap();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let kafka = [
        "--kafka-brokers",
        cluster.bootstrap(),
        "--kafka-topic",
        "unreachable",
        "--kafka-partitions",
        "2",
        "--kafka-replication",
        "3",
    ];
    let node = Served::start(&data, &root, &kafka);
    let mut chain = setup;
    chain.push(f.issue("as", "h1", "user:alice", "agent", 3600));
    chain.push(f.narrow("h1", "h2", "agent", "gateway", &[], 60));
    append(&node.url(), &chain).await;
    append(
        &node.url(),
        &[f.revoke(RevocationTarget::Token(Fixture::token("h2")))],
    )
    .await;
    node.stop();

    // Two of three brokers down: no controller quorum, metadata still answered.
    cluster.kill_broker(3).unwrap();
    cluster.kill_broker(2).unwrap();
    let started = Instant::now();
    let node = Served::start(&data, &root, &kafka);
    eprintln!("started without a controller in {:?}", started.elapsed());
    answers_what_it_safely_can(&node.url()).await;

    // A broker returns: the node reaches the log, catches up and serves.
    cluster.start_broker(2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while health(&node.url()).await != ServingStatus::Serving {
        assert!(Instant::now() < deadline, "the node did not reach the log");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        common::check(&node.url(), "h1", "").await.unwrap(),
        v1::TokenStatus::Active
    );
    node.stop();

    // Every broker down: the node starts from the partition count it recorded.
    cluster.kill_broker(2).unwrap();
    cluster.kill_broker(1).unwrap();
    let node = Served::start(&data, &root, &kafka);
    answers_what_it_safely_can(&node.url()).await;
    node.stop();
}
