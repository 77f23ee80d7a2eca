//! Baton's benchmarks: criterion micro-benchmarks (`benches/micro.rs`) and
//! `baton-bench`, a load generator that drives running nodes over gRPC and
//! reports figures next to baselines measured in the same run.

pub mod chains;
pub mod load;
pub mod scale;
pub mod sled_entries;
pub mod stats;

/// Runs `main` on a multi-threaded runtime: the load generators' `main`.
pub fn run(main: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main)
}
