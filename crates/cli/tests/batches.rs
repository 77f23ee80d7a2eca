//! A batch is all or nothing (issue 8, defect 12): `baton serve` on a real
//! Kafka with 4 partitions is SIGKILLed while four writers stream
//! multi-event batches — each a client's registration, a root grant to it, a
//! hop it performs and the hop's revocation, which span partitions — and
//! after a restart no batch is partly present, whatever each writer was told.
//! (Appending in dependency waves, as Baton once did, left registration,
//! grant and hop ACTIVE with the revocation missing.)

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use baton_core::{ClientKind, ClientRole, Envelope, RevocationTarget};
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, check, now_s};
use tokio_stream::StreamExt as _;

const WRITERS: usize = 4;
const BATCHES_PER_WRITER: usize = 60;
const KILL_AFTER_ACKNOWLEDGED: usize = 40;

/// Batch `i`: client `c{i}` registered, granted `t{i}`, narrowing it to
/// `h{i}` for the gateway, and `h{i}` revoked.
fn batch(f: &mut Fixture, i: usize) -> Vec<Envelope> {
    let client = format!("c{i}");
    let registration = f.register(
        &client,
        ClientKind::McpServer,
        ClientRole::DelegatingLayer,
        Some("as"),
    );
    let grant = f.issue("as", &format!("t{i}"), "user:alice", &client, 3600);
    let hop = f.narrow(
        &format!("t{i}"),
        &format!("h{i}"),
        &client,
        "gateway",
        &[],
        60,
    );
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token(&format!("h{i}"))));
    vec![registration, grant, hop, revoke]
}

async fn events_naming(url: &str, client: &str) -> usize {
    let mut provenance =
        v1::provenance_service_client::ProvenanceServiceClient::connect(url.to_owned())
            .await
            .unwrap();
    let request = v1::ListEventsRequest {
        client_id: client.to_owned(),
        ..Default::default()
    };
    let mut stream = provenance.list_events(request).await.unwrap().into_inner();
    let mut count = 0;
    while let Some(entry) = stream.next().await {
        entry.unwrap();
        count += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_all_or_nothing_when_the_node_is_killed_mid_stream() {
    let cluster = KafkaCluster::shared();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let kafka = [
        "--kafka-brokers",
        cluster.bootstrap(),
        "--kafka-topic",
        "batches",
        "--kafka-partitions",
        "4",
    ];
    let node = Served::start(&dir.path().join("node"), &root, &kafka);
    let url = node.url();
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::connect(url.clone())
        .await
        .unwrap();
    let setup_request = v1::AppendRequest {
        events: setup.iter().map(v1::SignedEvent::from).collect(),
        ..Default::default()
    };
    ledger.append(setup_request).await.unwrap();
    let total = WRITERS * BATCHES_PER_WRITER;
    let batches: Vec<Vec<Envelope>> = (0..total).map(|i| batch(&mut f, i)).collect();
    // How many batches were acknowledged, watched by the test.
    let acknowledged = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mine: Vec<Vec<Envelope>> = batches.iter().skip(w).step_by(WRITERS).cloned().collect();
        let (url, acknowledged) = (url.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let Ok(mut ledger) = v1::ledger_service_client::LedgerServiceClient::connect(url).await
            else {
                return;
            };
            for events in mine {
                let request = v1::AppendRequest {
                    events: events.iter().map(v1::SignedEvent::from).collect(),
                    ..Default::default()
                };
                if ledger.append(request).await.is_err() {
                    return; // The node is gone.
                }
                acknowledged.send_modify(|n| *n += 1);
            }
        }));
    }
    let mut progress = acknowledged.subscribe();
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        progress.wait_for(|n| *n >= KILL_AFTER_ACKNOWLEDGED),
    )
    .await
    .expect("the writers stalled")
    .unwrap();
    node.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let at_kill = *acknowledged.borrow();
    eprintln!("node SIGKILLed with {at_kill} of {total} batches acknowledged");
    assert!(
        at_kill < total,
        "the node was killed after the stream ended"
    );

    let node = Served::start(&dir.path().join("node"), &root, &kafka);
    let url = node.url();
    let (mut whole, mut absent) = (0, 0);
    for i in 0..total {
        let named = events_naming(&url, &format!("c{i}")).await;
        let hop = check(&url, &format!("h{i}"), "").await.unwrap();
        match (named, hop) {
            // Registration, grant and hop name the client; the revocation
            // is there too, or the hop would be ACTIVE.
            (3, v1::TokenStatus::Revoked) => whole += 1,
            (0, v1::TokenStatus::Unknown) => absent += 1,
            other => panic!("batch {i} is partly present: {other:?}"),
        }
    }
    eprintln!("after the restart: {whole} batches whole, {absent} absent");
    assert!(whole >= at_kill, "an acknowledged batch is missing");
    node.stop();
}
