//! A node restarts while Kafka cannot serve it (issue 8, defect 14): on a
//! 3-broker cluster with two brokers down (no controller quorum) the node
//! finds its topic by metadata, without the admin API, starts, reports
//! NOT_SERVING, answers REVOKED from its projection and UNAVAILABLE for what
//! it cannot vouch for; once a broker returns it catches up and serves. With
//! every broker down it starts from the partition count it recorded, and its
//! log stays readable: librdkafka's retries are summarised, not a line each.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, health, health_client, now_s, whole_node};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// Waits, on gRPC health's Watch stream, until the node says SERVING.
async fn serving(url: &str, deadline: Duration) {
    let mut changes = health_client(url)
        .await
        .watch(whole_node())
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(deadline, async {
        while let Some(change) = changes.message().await.unwrap() {
            if ServingStatus::try_from(change.status) == Ok(ServingStatus::Serving) {
                return;
            }
        }
        panic!("the health stream ended");
    })
    .await
    .expect("the node did not reach the log");
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
    serving(&node.url(), Duration::from_secs(90)).await;
    assert_eq!(
        common::check(&node.url(), "h1", "").await.unwrap(),
        v1::TokenStatus::Active
    );
    node.stop();

    // Every broker down: the node starts from the partition count it recorded.
    cluster.kill_broker(2).unwrap();
    cluster.kill_broker(1).unwrap();
    let started = Instant::now();
    let node = Served::start(&data, &root, &kafka);
    answers_what_it_safely_can(&node.url()).await;
    // Readable logs meanwhile: librdkafka retries every broker from every
    // client every second or so; each kind of its complaint is logged once
    // per 30 s, not once per retry. Watched for a while (time passing is
    // what is measured here).
    std::thread::sleep(Duration::from_secs(8));
    let lines: Vec<String> = node
        .logs()
        .into_iter()
        .filter(|line| line.contains("librdkafka"))
        .collect();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for line in &lines {
        let kind: String = line.chars().filter(|c| !c.is_ascii_digit()).collect();
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(
        !lines.is_empty(),
        "librdkafka said nothing with every broker down"
    );
    // Once per kind per 30 s: a slow start may span a window or two.
    let allowed = 1 + (started.elapsed().as_secs() / 30) as usize;
    assert!(
        kinds.values().all(|n| *n <= allowed),
        "a kind of librdkafka line repeated more than {allowed} time(s):\n{}",
        lines.join("\n")
    );
    eprintln!(
        "{} librdkafka line(s) in {:?} with every broker down",
        lines.len(),
        started.elapsed()
    );
    node.stop();
}
