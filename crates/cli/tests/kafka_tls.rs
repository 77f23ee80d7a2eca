//! A node on a Kafka whose listener requires TLS with a client certificate
//! and SASL/SCRAM-SHA-512 (SASL_SSL), certificates from `baton pki`: it
//! appends and checks; `baton project` on the node's own configuration
//! rebuilds its projection, which the node then keeps; with a CA that did
//! not sign the brokers', or without a client certificate, it does not
//! start, and says why.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use baton::pki;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, baton, now_s, settled_status};

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
    // Rules of its own, so that a projector under default rules would
    // build another projection.
    let rules = "[rules]\nfederated_authorization_servers = [\"as-elsewhere\"]\n";
    let good = config(dir.path(), "good", &cluster, &format!("{tls}{rules}"));
    let data = dir.path().join("node");
    let node = Served::start(&data, &root, &["--config", &good]);
    events.push(f.issue("as", "t1", "user:alice", "agent", 3600));
    let token = append(&node.url(), &events).await.consistency_token;
    assert_eq!(
        common::check(&node.url(), "t1", &token).await.unwrap(),
        v1::TokenStatus::Active
    );
    let before = settled_status(&node.url());
    node.stop();

    // `baton project --config` on the node's own configuration rebuilds
    // the projection over SASL_SSL ...
    std::fs::rename(data.join("projection"), dir.path().join("projection.old")).unwrap();
    let project = |config: &str| {
        let mut command = baton();
        command
            .args([
                "project",
                "--config",
                config,
                "--trust-root",
                &root,
                "--data-dir",
            ])
            .arg(&data);
        command
    };
    project_until_applied(project(&good), events.len());
    // ... a projector under other rules (these without the federation)
    // refuses the node's projection rather than drop it ...
    let other = config(dir.path(), "other-rules", &cluster, &tls);
    let said = common::refused_within_a_minute(project(&other));
    assert!(
        said.contains("under other rules") && said.contains("--rebuild"),
        "{said}"
    );
    // ... and the node keeps the rebuilt projection: nothing dropped, the
    // same state digest.
    let node = Served::start(&data, &root, &["--config", &good]);
    let after = settled_status(&node.url());
    assert_eq!(after["state_digest"], before["state_digest"]);
    assert!(
        !node
            .logs()
            .iter()
            .any(|line| line.contains("dropping a projection")),
        "{:?}",
        node.logs()
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

/// Runs `command` (a `baton project`) with progress lines until it has
/// applied `events`, then stops it with SIGTERM; it must exit cleanly.
fn project_until_applied(mut command: std::process::Command, events: usize) {
    use std::io::BufRead as _;
    let mut child = command
        .args(["--progress-ms", "50"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut applied = 0;
    for line in lines.map_while(Result::ok) {
        let progress: serde_json::Value = serde_json::from_str(&line).unwrap();
        applied = progress["applied"].as_u64().unwrap() as usize;
        if applied >= events {
            break;
        }
    }
    assert_eq!(
        applied, events,
        "baton project ended before applying every event"
    );
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "baton project exited with {exit} on SIGTERM"
    );
}
