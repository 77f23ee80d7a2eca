//! Projector scenarios on a real Kafka (started through deploy/kafka/kafka.sh):
//! the cascade seen by two projectors of one topic, deduplication, and
//! forgeries written with a raw Kafka producer, bypassing Baton entirely.

#![allow(clippy::unwrap_used)]

mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use baton_kafka::{KafkaLog, KafkaOptions};
use baton_testkit::KafkaCluster;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn log(cluster: &KafkaCluster, topic: &str) -> KafkaLog {
    let mut options = KafkaOptions::new(cluster.bootstrap());
    options.topic = topic.to_owned();
    options.partitions = 4;
    KafkaLog::connect(options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_on_kafka() {
    let cluster = KafkaCluster::shared();
    let dir = tempfile::tempdir().unwrap();
    scenarios::cascade(log(&cluster, "cascade").await, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_on_kafka() {
    let cluster = KafkaCluster::shared();
    let dir = tempfile::tempdir().unwrap();
    scenarios::duplicates(log(&cluster, "duplicates").await, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_on_kafka_written_by_a_raw_producer() {
    let cluster: Arc<KafkaCluster> = KafkaCluster::shared();
    let dir = tempfile::tempdir().unwrap();
    let topic = "forgeries";
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .create()
        .unwrap();
    scenarios::forgeries(log(&cluster, topic).await, dir.path(), move |records| {
        let producer = producer.clone();
        async move {
            for (key, value) in records {
                let record = FutureRecord::to(topic).key(&key).payload(&value);
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_kafka() {
    let cluster = KafkaCluster::shared();
    let dir = tempfile::tempdir().unwrap();
    scenarios::queries(log(&cluster, "queries").await, dir.path()).await;
}
