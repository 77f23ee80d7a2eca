//! The log a configuration names, opened one way for every command that
//! reads it (`serve`, `project`, `snapshot restore`): the embedded log in
//! the data directory, or Kafka with the configuration's topic, TLS and SASL.

use std::future::Future;

use anyhow::Context as _;
use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::{EmbeddedLog, EventLog};

use crate::config::Config;

/// What a command does with the log, whichever kind it is.
pub trait OnLog {
    type Output;

    /// Runs on `log`; `described` says which log it is, for a person.
    fn run<L: EventLog>(
        self,
        log: L,
        described: String,
    ) -> impl Future<Output = anyhow::Result<Self::Output>>;
}

/// Opens the log `config` names and runs `then` on it.
pub async fn open_log<T: OnLog>(config: &Config, then: T) -> anyhow::Result<T::Output> {
    if config.kafka.brokers.is_empty() {
        let log = EmbeddedLog::open(&config.data_dir.join("log"))?;
        let described = format!("embedded log in {}", config.data_dir.display());
        then.run(log, described).await
    } else {
        let log = connect_kafka(config.kafka_options()?, &config.data_dir).await?;
        let described = format!(
            "kafka {} topic {}",
            config.kafka.brokers, config.kafka.topic
        );
        then.run(log, described).await
    }
}

/// Where a node records its topic's partition count, so that it can start
/// (and answer what it safely can) when no broker answers.
const KAFKA_TOPIC_FILE: &str = "kafka-topic";

/// Connects to Kafka with the partition count this data directory recorded
/// for the topic, and records the count the log reports.
async fn connect_kafka(
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
