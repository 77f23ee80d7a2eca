//! An in-process node on a loopback port, over the embedded log.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use baton_client::{Checker, CheckerConfig, Client, Endpoint};
use baton_core::Envelope;
use baton_log::{ConsistencyToken, EmbeddedLog};
use baton_server::ServerOptions;
use baton_testkit::Fixture;

pub fn now_s() -> i64 {
    baton_client::events::now().0
}

pub struct Node {
    pub address: SocketAddr,
    node: baton_server::Spawned,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start(fixture: &Fixture) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = ServerOptions::new(fixture.policy(), dir.path().join("projection"));
        let node = baton_server::spawn(options, log, listener).unwrap();
        Node {
            address: node.address,
            node,
            _dir: dir,
        }
    }

    pub async fn client(&self) -> Client {
        Endpoint::new(format!("http://{}", self.address))
            .connect()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.node.stop().await.unwrap();
    }
}

pub const FAST: CheckerConfig = CheckerConfig {
    capacity: 64,
    staleness: Duration::from_millis(400),
    checkpoint_interval: Duration::from_millis(100),
    request_timeout: Duration::from_secs(5),
};

/// Waits until the checker's feed is fresh and covers `token`.
pub async fn caught_up(checker: &Checker, token: &str) {
    let want = ConsistencyToken::parse(token).unwrap();
    let mut deliveries = checker.deliveries();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = checker.stats();
        let covered = ConsistencyToken::parse(&stats.position)
            .is_ok_and(|at| want.is_covered_by(at.next_offsets()));
        if covered && checker.is_fresh() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the checker never caught up with {token}: {stats:?}"
        );
        let _ = tokio::time::timeout(left, deliveries.changed()).await;
    }
}

pub async fn append(node: &Client, events: &[Envelope]) -> Result<String, tonic::Status> {
    match node.append(events, None).await {
        Ok(appended) => Ok(appended.consistency_token),
        Err(baton_client::Error::Status(status)) => Err(status),
        Err(e) => panic!("{e}"),
    }
}

/// Waits until the checker's feed has gone stale (no checkpoint within its
/// bound): staleness comes with time alone, so this polls, with a deadline.
pub async fn went_stale(checker: &Checker) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while checker.is_fresh() {
        assert!(Instant::now() < deadline, "the feed never went stale");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
