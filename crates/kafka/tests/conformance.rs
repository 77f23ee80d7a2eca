//! The Kafka log passes the same conformance suite as the embedded log,
//! against a real Kafka started through deploy/kafka/kafka.sh.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::conformance::{self, Harness};
use baton_testkit::KafkaCluster;

struct Kafka {
    cluster: Arc<KafkaCluster>,
    count: usize,
}

impl Kafka {
    fn options(&self, topic: &str) -> KafkaOptions {
        let mut options = KafkaOptions::new(self.cluster.bootstrap());
        options.topic = topic.to_owned();
        options.partitions = 4;
        options
    }
}

impl Harness for Kafka {
    type Log = KafkaLog;

    async fn fresh(&mut self) -> KafkaLog {
        self.count += 1;
        let topic = format!("conformance-{}", self.count);
        KafkaLog::connect(self.options(&topic)).await.unwrap()
    }

    async fn reopen(&mut self, log: KafkaLog) -> KafkaLog {
        let topic = log.options().topic.clone();
        drop(log);
        KafkaLog::connect(self.options(&topic)).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_log_passes_the_conformance_suite() {
    let mut harness = Kafka {
        cluster: KafkaCluster::shared(),
        count: 0,
    };
    conformance::run_all(&mut harness).await;
}
