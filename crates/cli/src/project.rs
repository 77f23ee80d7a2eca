//! `baton project`: a projector on its own, for operations (rebuilding a
//! projection) and for the crash tests, which kill it mid-stream.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use baton_core::{Policy, PublicKey};
use baton_kafka::KafkaOptions;
use baton_log::{EmbeddedLog, EventLog};
use baton_projector::{Projector, ProjectorOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory: the projection (and the embedded log, without Kafka).
    #[arg(long)]
    data: PathBuf,
    /// Kafka bootstrap servers; without them, the embedded log in the data directory.
    #[arg(long)]
    kafka_brokers: Option<String>,
    #[arg(long, default_value = "baton.events.v1")]
    kafka_topic: String,
    /// Partitions, should the topic need creating.
    #[arg(long, default_value_t = 8)]
    kafka_partitions: u32,
    /// A trust-root ed25519 public key, 64 hex digits; repeatable.
    #[arg(long = "trust-root", required = true)]
    trust_roots: Vec<String>,
    /// Print a JSON progress line to stdout this often (milliseconds; 0: never).
    #[arg(long, default_value_t = 0)]
    progress_ms: u64,
}

pub fn trust_roots(hex_keys: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    hex_keys
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let bytes = hex::decode(text).with_context(|| format!("trust_roots[{i}]: not hex"))?;
            PublicKey::from_slice(&format!("trust_roots[{i}]"), &bytes).map_err(anyhow::Error::from)
        })
        .collect()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let policy = Policy::new(trust_roots(&args.trust_roots)?);
    let projection = args.data.join("projection");
    match &args.kafka_brokers {
        Some(brokers) => {
            let mut options = KafkaOptions::new(brokers.clone());
            options.topic = args.kafka_topic.clone();
            options.partitions = args.kafka_partitions;
            let log = crate::serve::connect_kafka(options, &args.data).await?;
            project(log, &projection, policy, args.progress_ms).await
        }
        None => {
            let log = EmbeddedLog::open(&args.data.join("log"))?;
            project(log, &projection, policy, args.progress_ms).await
        }
    }
}

async fn project<L: EventLog>(
    log: L,
    dir: &std::path::Path,
    policy: Policy,
    progress_ms: u64,
) -> anyhow::Result<()> {
    let projector = Projector::open(log, dir, ProjectorOptions::new(policy))?;
    let handle = projector.handle();
    if progress_ms > 0 {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(progress_ms));
            loop {
                tick.tick().await;
                let count = |name| handle.counter(name).unwrap_or(0);
                println!(
                    "{{\"applied\":{},\"duplicates\":{},\"quarantined\":{},\"offsets\":{:?}}}",
                    count("applied"),
                    count("duplicates"),
                    count("quarantined"),
                    handle.applied()
                );
            }
        });
    }
    projector.run(crate::shutdown_signal()).await?;
    Ok(())
}
