//! Test harness shared by Baton's tests: a real Apache Kafka started through
//! `deploy/kafka/kafka.sh` (never a mock), and TEST-ONLY fixture keys and
//! delegation chains signed exactly as a writer would sign them.

mod fixture;
pub mod fuzz;
mod kafka;
mod proxy;
pub mod tools;

pub use fixture::{Fixture, FixtureClient};
pub use kafka::KafkaCluster;
pub use proxy::Proxy;

/// The repository root, for scripts under `deploy/`.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
