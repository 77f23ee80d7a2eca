//! `baton serve`: one ledger node — the embedded log by default, Kafka when
//! brokers are configured — until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;

use anyhow::Context as _;
use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::{EmbeddedLog, EventLog};
use baton_server::ServerOptions;

use crate::config::{Config, Flags};

pub async fn run(flags: Flags, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let config = Config::load(&flags, env)?;
    let options = ServerOptions {
        policy: config.policy()?,
        limits: config.limits(),
        projection_dir: config.data_dir.join("projection"),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if config.kafka.brokers.is_empty() {
        let log = EmbeddedLog::open(&config.data_dir.join("log"))?;
        announce(
            address,
            &format!("embedded log in {}", config.data_dir.display()),
        );
        serve(options, log, listener).await
    } else {
        let mut kafka = KafkaOptions::new(config.kafka.brokers.clone());
        kafka.topic = config.kafka.topic.clone();
        kafka.partitions = config.kafka.partitions;
        kafka.replication = config.kafka.replication;
        kafka.min_insync_replicas = config.kafka.min_insync_replicas;
        let log = connect_kafka(kafka, &config.data_dir).await?;
        announce(
            address,
            &format!(
                "kafka {} topic {}",
                config.kafka.brokers, config.kafka.topic
            ),
        );
        serve(options, log, listener).await
    }
}

/// One line on stdout that scripts and tests can wait for.
fn announce(address: std::net::SocketAddr, log: &str) {
    println!("baton listening on {address} ({log})");
}

async fn serve<L: EventLog>(
    options: ServerOptions,
    log: L,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    baton_server::run(options, log, listener, crate::shutdown_signal())
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// Where a node records its topic's partition count, so that it can start
/// (and answer what it safely can) when no broker answers.
const KAFKA_TOPIC_FILE: &str = "kafka-topic";

/// Connects to Kafka with the partition count this data directory recorded
/// for the topic, and records the count the log reports.
pub async fn connect_kafka(
    mut options: KafkaOptions,
    data_dir: &std::path::Path,
) -> anyhow::Result<KafkaLog> {
    let recorded = data_dir.join(KAFKA_TOPIC_FILE);
    options.known_partitions = std::fs::read_to_string(&recorded).ok().and_then(|text| {
        let (topic, partitions) = text.trim().rsplit_once(' ')?;
        (topic == options.topic)
            .then(|| partitions.parse().ok())
            .flatten()
    });
    let topic = options.topic.clone();
    let log = KafkaLog::connect(options).await?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("create data directory {}", data_dir.display()))?;
    let temporary = recorded.with_extension("tmp");
    std::fs::write(&temporary, format!("{topic} {}\n", log.partitions()))
        .and_then(|()| std::fs::rename(&temporary, &recorded))
        .with_context(|| format!("record the topic in {}", recorded.display()))?;
    Ok(log)
}
