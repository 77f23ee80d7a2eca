//! Baton's benchmarks: criterion micro-benchmarks (`benches/micro.rs`) and
//! `baton-bench`, a load generator that drives running nodes over gRPC and
//! reports figures next to baselines measured in the same run.

pub mod chains;
pub mod load;
pub mod stats;
