//! An in-process node on a free loopback port, over the embedded log.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use baton_core::Envelope;
use baton_log::EmbeddedLog;
use baton_proto::v1;
use baton_server::{Limits, ServerOptions};
use baton_testkit::Fixture;
use tonic::transport::Channel;

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The embedded log, with a switch that stalls appends (they never answer),
/// as a Kafka cluster that lost its quorum does: fault injection.
#[derive(Clone)]
pub struct TestLog {
    inner: EmbeddedLog,
    stalled: Arc<AtomicBool>,
}

impl TestLog {
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

impl baton_log::EventLog for TestLog {
    type Reader = <EmbeddedLog as baton_log::EventLog>::Reader;

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }

    async fn append(
        &self,
        records: Vec<baton_log::Record>,
    ) -> Vec<Result<baton_log::Position, baton_log::AppendError>> {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.append(records).await
    }

    async fn end_offsets(&self) -> baton_log::Result<Vec<u64>> {
        self.inner.end_offsets().await
    }

    fn reader(&self, start: &[u64]) -> baton_log::Result<Self::Reader> {
        self.inner.reader(start)
    }
}

pub struct Node {
    pub address: SocketAddr,
    pub log: TestLog,
    node: Option<baton_server::Spawned>,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start(fixture: &Fixture, limits: Limits, depth_max: Option<u32>) -> Node {
        Node::start_on(fixture, limits, depth_max, &[]).await
    }

    /// A node over a log that already holds `events` (written straight to
    /// the log, in one batch) before the node starts.
    pub async fn start_on(
        fixture: &Fixture,
        limits: Limits,
        depth_max: Option<u32>,
        events: &[Envelope],
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let log = TestLog {
            inner: EmbeddedLog::open(&dir.path().join("log")).unwrap(),
            stalled: Arc::default(),
        };
        if !events.is_empty() {
            let records = events
                .iter()
                .map(|e| baton_log::Record {
                    key: Vec::new(),
                    value: baton_proto::encode_signed(e),
                })
                .collect();
            let written = baton_log::EventLog::append(&log, records).await;
            assert!(written.iter().all(Result::is_ok), "{written:?}");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut policy = fixture.policy();
        if let Some(depth) = depth_max {
            policy.depth_max = depth;
        }
        let options = ServerOptions {
            limits,
            ..ServerOptions::new(policy, dir.path().join("projection"))
        };
        let node = baton_server::spawn(options, log.clone(), listener).unwrap();
        Node {
            address: node.address,
            log,
            node: Some(node),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn ledger(&self) -> v1::ledger_service_client::LedgerServiceClient<Channel> {
        v1::ledger_service_client::LedgerServiceClient::connect(self.url())
            .await
            .unwrap()
    }

    pub async fn revocation(
        &self,
    ) -> v1::revocation_service_client::RevocationServiceClient<Channel> {
        v1::revocation_service_client::RevocationServiceClient::connect(self.url())
            .await
            .unwrap()
    }

    pub async fn provenance(
        &self,
    ) -> v1::provenance_service_client::ProvenanceServiceClient<Channel> {
        v1::provenance_service_client::ProvenanceServiceClient::connect(self.url())
            .await
            .unwrap()
    }

    /// Appends events in one batch.
    pub async fn send(&self, events: &[Envelope]) -> Result<v1::AppendResponse, tonic::Status> {
        let request = v1::AppendRequest {
            events: events.iter().map(v1::SignedEvent::from).collect(),
            ..Default::default()
        };
        self.ledger()
            .await
            .append(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Appends events in one batch; panics on refusal.
    pub async fn append(&self, events: &[Envelope]) -> v1::AppendResponse {
        self.send(events).await.unwrap()
    }

    /// Appends and returns the refusal's status.
    pub async fn refused(&self, events: &[Envelope]) -> tonic::Status {
        self.send(events)
            .await
            .expect_err("the append should be refused")
    }

    pub async fn stop(mut self) {
        self.node.take().unwrap().stop().await.unwrap();
    }
}

pub fn check_request(jti: &str) -> v1::CheckRequest {
    v1::CheckRequest {
        token: Some(baton_proto::token_ref_to_wire(&Fixture::token(jti))),
        ..Default::default()
    }
}
