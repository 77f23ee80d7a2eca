//! An in-process node on a loopback port, over the embedded log.

#![allow(clippy::unwrap_used, dead_code)]

pub mod gate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_client::{Checker, CheckerConfig, Client, Endpoint, ManualClock};
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

/// A checker's bounds for tests: the default staleness bound (2 s: a busy
/// 2-core machine can delay a checkpoint by hundreds of milliseconds), and
/// a clock the test moves, so going stale is a step of the test rather than
/// a wait. (The feed's own network deadlines are tokio's.)
pub fn config() -> (CheckerConfig, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let config = CheckerConfig {
        capacity: 64,
        checkpoint_interval: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        clock: clock.clone(),
        ..CheckerConfig::default()
    };
    (config, clock)
}

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

/// Moves the checker's clock past its staleness bound until the feed is
/// stale (a checkpoint already on its way when the feed was cut may make
/// it fresh once more).
pub async fn went_stale(checker: &Checker, clock: &ManualClock, staleness: Duration) {
    for _ in 0..50 {
        clock.advance(staleness + Duration::from_millis(1));
        if !checker.is_fresh() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the feed never went stale: is it still delivering checkpoints?");
}
