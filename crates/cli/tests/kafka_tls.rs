//! A node on a Kafka whose listener requires TLS with a client certificate
//! and SASL/SCRAM-SHA-512 (SASL_SSL), certificates from `baton pki`: it
//! appends and checks; with a CA that did not sign the brokers', or without
//! a client certificate, it does not start, and says why.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use baton::pki;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, now_s};

/// A config file for Kafka security with `lines` appended.
fn config(dir: &Path, name: &str, cluster: &KafkaCluster, lines: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = {:?}\ntopic = \"tls\"\npartitions = 2\nsecurity_protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"baton\"\nsasl_password_file = {:?}\n{lines}",
            cluster.bootstrap(),
            cluster.sasl_password_file(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_kafka_over_mutual_tls_and_scram() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("pki"), dir.path().join("other"));
    pki::init(&ours, &[]).unwrap();
    pki::init(&theirs, &[]).unwrap();
    pki::issue_leaf(
        &ours,
        "kafka",
        pki::Leaf::Peer(vec!["127.0.0.1".into(), "localhost".into()]),
        1,
    )
    .unwrap();
    pki::issue(&ours, "node", "baton-node.test", 1).unwrap();
    let cluster = KafkaCluster::start_tls(1, &ours, true).unwrap();
    let file = |dir: &Path, name: &str| format!("{:?}", dir.join(name));
    let tls = format!(
        "ssl_ca = {}\nssl_cert = {}\nssl_key = {}\n",
        file(&ours, "ca.pem"),
        file(&ours, "node.pem"),
        file(&ours, "node.key")
    );

    let (mut f, mut events) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let good = config(dir.path(), "good", &cluster, &tls);
    let node = Served::start(&dir.path().join("node"), &root, &["--config", &good]);
    events.push(f.issue("as", "t1", "user:alice", "agent", 3600));
    let token = append(&node.url(), &events).await.consistency_token;
    assert_eq!(
        common::check(&node.url(), "t1", &token).await.unwrap(),
        v1::TokenStatus::Active
    );
    node.stop();

    // The brokers' certificate does not chain to this CA; and a node with no
    // client certificate is refused by the brokers. Neither starts.
    let wrong_ca = format!(
        "ssl_ca = {}\nssl_cert = {}\nssl_key = {}\n",
        file(&theirs, "ca.pem"),
        file(&ours, "node.pem"),
        file(&ours, "node.key")
    );
    let no_cert = format!("ssl_ca = {}\n", file(&ours, "ca.pem"));
    for (name, lines) in [("wrong-ca", wrong_ca), ("no-cert", no_cert)] {
        let data = dir.path().join(name).display().to_string();
        let said = common::serve_refused(&[
            "--listen",
            "127.0.0.1:0",
            "--trust-root",
            &root,
            "--data-dir",
            &data,
            "--config",
            &config(dir.path(), name, &cluster, &lines),
        ]);
        assert!(
            said.contains("authentication failed (SASL or TLS)") && said.contains("SSL"),
            "{name}: {said}"
        );
    }
}
