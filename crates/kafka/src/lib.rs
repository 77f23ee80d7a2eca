//! The Apache Kafka [`EventLog`]: Baton's system of record in production.
//!
//! Writes use an idempotent producer with `acks=all`; a batch's records are
//! enqueued in order and their delivery reports awaited together, never one
//! send at a time. A delivery whose outcome is unknown (a timeout, a lost
//! connection) is reported as [`AppendError::Ambiguous`], never as success.
//! Readers assign every partition explicitly at offsets the projector stores
//! itself: no consumer group, no committed offsets, no transactions.
//!
//! This is the only crate that links rdkafka.

use std::sync::Arc;
use std::time::Duration;

use baton_log::{
    AppendError, EventLog, LogReader, Position, ReadLimit, ReadRecord, Record, check_record,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// How to reach Kafka and how Baton's topic is laid out.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Bootstrap servers, `host:port,host:port`.
    pub brokers: String,
    pub topic: String,
    /// Partitions when Baton creates the topic.
    pub partitions: u32,
    /// Replication factor when Baton creates the topic.
    pub replication: i32,
    /// `min.insync.replicas` when Baton creates the topic (with `acks=all`,
    /// how many replicas must have a write before it is acknowledged).
    pub min_insync_replicas: Option<i32>,
    /// How long a record may take to be acknowledged before its outcome is
    /// reported as unknown (`delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// Deadline for metadata and admin requests.
    pub request_timeout: Duration,
    /// The topic's partition count as this node last saw it (recorded in its
    /// data directory): used when no broker answers at start, so that a node
    /// with a projection starts and says where it stands.
    pub known_partitions: Option<u32>,
    /// How to authenticate to the brokers and encrypt the connection.
    pub security: Security,
}

/// A secret (a password): never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// librdkafka's connection security, passed through as its own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `security.protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL.
    pub protocol: Option<String>,
    /// `ssl.ca.location`: the CA bundle the brokers' certificates chain to.
    pub ssl_ca: Option<std::path::PathBuf>,
    /// `ssl.certificate.location` / `ssl.key.location`: a client certificate.
    pub ssl_cert: Option<std::path::PathBuf>,
    pub ssl_key: Option<std::path::PathBuf>,
    /// `ssl.key.password`.
    pub ssl_key_password: Option<Secret>,
    /// `sasl.mechanism`: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret>,
}

impl KafkaOptions {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaOptions {
            brokers: brokers.into(),
            topic: "baton.events.v1".into(),
            partitions: 8,
            replication: 1,
            min_insync_replicas: None,
            delivery_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            known_partitions: None,
            security: Security::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka at {brokers}: {context}: {source}")]
    Kafka {
        brokers: String,
        context: String,
        source: KafkaError,
    },
    #[error("kafka topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    /// The brokers refused this node's credentials, or TLS with them failed
    /// (either side refused a certificate): retrying will not help, so the
    /// node does not start.
    #[error(
        "kafka at {brokers} authentication failed (SASL or TLS): {reason} (check kafka.security_protocol, the SASL username and password, and the TLS files)"
    )]
    Authentication { brokers: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest record Kafka will take (`max.message.bytes` of the topic and
/// `message.max.bytes` of the producer): room for a maximal value and key.
const MESSAGE_BYTES_MAX: usize = baton_log::RECORD_BYTES_MAX + 64 * 1024;

struct Inner {
    options: KafkaOptions,
    /// The context every client of this log shares (readers too).
    watchful: Watchful,
    producer: FutureProducer<Watchful>,
    metadata: BaseConsumer<Watchful>,
    partitions: u32,
}

/// A handle to Baton's Kafka topic; cheap to clone.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.inner.options.brokers)
            .field("topic", &self.inner.options.topic)
            .field("partitions", &self.inner.partitions)
            .finish()
    }
}

fn base_config(options: &KafkaOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("client.id", "baton")
        .set(
            "socket.timeout.ms",
            options.request_timeout.as_millis().to_string(),
        );
    let security = &options.security;
    let path = |p: &std::path::PathBuf| p.display().to_string();
    for (key, value) in [
        ("security.protocol", security.protocol.clone()),
        ("ssl.ca.location", security.ssl_ca.as_ref().map(path)),
        (
            "ssl.certificate.location",
            security.ssl_cert.as_ref().map(path),
        ),
        ("ssl.key.location", security.ssl_key.as_ref().map(path)),
        (
            "ssl.key.password",
            security.ssl_key_password.as_ref().map(|s| s.0.clone()),
        ),
        ("sasl.mechanism", security.sasl_mechanism.clone()),
        ("sasl.username", security.sasl_username.clone()),
        (
            "sasl.password",
            security.sasl_password.as_ref().map(|s| s.0.clone()),
        ),
    ] {
        if let Some(value) = value {
            config.set(key, value);
        }
    }
    config
}

/// A configuration error without the value librdkafka refused (it may be a
/// password).
fn without_value(error: KafkaError) -> KafkaError {
    match error {
        KafkaError::ClientConfig(code, description, key, _) => {
            KafkaError::ClientConfig(code, description, key, "<not shown>".into())
        }
        other => other,
    }
}

/// The context of every Kafka client of a log (producer, metadata, readers,
/// admin): remembers the first time the brokers refused this node's
/// credentials, so that `connect` fails at once instead of waiting out its
/// metadata deadline, and passes librdkafka's errors and logs on through
/// [`Quiet`], so a broker that is down is one line now and then, not one per
/// retry per broker per client.
#[derive(Clone)]
struct Watchful {
    refused: Arc<tokio::sync::watch::Sender<Option<String>>>,
    quiet: Arc<Quiet>,
}

impl Watchful {
    fn new() -> (Self, tokio::sync::watch::Receiver<Option<String>>) {
        let (refused, refusal) = tokio::sync::watch::channel(None);
        let watchful = Watchful {
            refused: Arc::new(refused),
            quiet: Arc::new(Quiet::new(QUIET_WINDOW)),
        };
        (watchful, refusal)
    }

    fn refusal(&self) -> Option<String> {
        self.refused.borrow().clone()
    }
}

/// How often one kind of librdkafka message is logged at most.
const QUIET_WINDOW: Duration = Duration::from_secs(30);
/// Most kinds remembered; past it, the kind logged longest ago is
/// forgotten (and logged once more should it recur), so odd messages cannot
/// grow the memory.
const QUIET_KINDS_MAX: usize = 256;

/// Rate-limits log lines by kind: the first of a kind is logged; more of it
/// within the window are counted, and the next one after the window is
/// logged with that count. A kind is the message with its digits removed
/// (ports, broker ids, milliseconds), so every broker's "connection
/// refused" is one kind.
#[derive(Debug)]
struct Quiet {
    window: Duration,
    kinds: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl Quiet {
    fn new(window: Duration) -> Self {
        Quiet {
            window,
            kinds: Default::default(),
        }
    }

    /// Whether to log this message now, and if so how many of its kind were
    /// held back since the last line.
    fn admit(&self, message: &str) -> Option<u64> {
        let kind: String = message.chars().filter(|c| !c.is_ascii_digit()).collect();
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if let Some((logged, held)) = kinds.get_mut(&kind) {
            if now.duration_since(*logged) < self.window {
                *held += 1;
                return None;
            }
            let was = *held;
            (*logged, *held) = (now, 0);
            return Some(was);
        }
        if kinds.len() >= QUIET_KINDS_MAX
            && let Some(oldest) = kinds
                .iter()
                .min_by_key(|(_, (logged, _))| *logged)
                .map(|(kind, _)| kind.clone())
        {
            kinds.remove(&oldest);
        }
        kinds.insert(kind, (now, 0));
        Some(0)
    }
}

/// " (N more like it in the last W s)", or nothing.
fn held_back(held: u64, window: Duration) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more like it in the last {} s)", window.as_secs())
    }
}

impl rdkafka::consumer::ConsumerContext for Watchful {}

impl rdkafka::ClientContext for Watchful {
    fn error(&self, error: KafkaError, reason: &str) {
        // SASL refused the credentials, or the TLS handshake failed on
        // this side (the brokers' certificate does not verify); a broker
        // ending the handshake (refusing this node's certificate, or its
        // lack of one) reaches librdkafka only as a transport failure whose
        // reason names the TLS alert.
        let code = error.rdkafka_error_code();
        let refused_by_alert = code == Some(RDKafkaErrorCode::BrokerTransportFailure)
            && reason.contains("SSL alert number");
        if refused_by_alert
            || matches!(
                code,
                Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
            )
        {
            self.refused.send_if_modified(|refused| {
                let first = refused.is_none();
                if first {
                    *refused = Some(reason.to_owned());
                }
                first
            });
            if let Some(held) = self.quiet.admit(&format!("refused {reason}")) {
                let held = held_back(held, self.quiet.window);
                tracing::error!(error = %error, reason, "kafka refused this node's credentials{held}");
            }
        } else if let Some(held) = self.quiet.admit(&format!("{error} {reason}")) {
            let held = held_back(held, self.quiet.window);
            tracing::error!(error = %error, reason, "librdkafka error{held}");
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let Some(held) = self.quiet.admit(&format!("{facility} {message}")) else {
            return;
        };
        let held = held_back(held, self.quiet.window);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}{held}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}{held}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}{held}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}{held}")
            }
        }
    }
}

impl rdkafka::producer::ProducerContext for Watchful {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl KafkaLog {
    /// Connects, learns the topic's partitions from metadata (which any live
    /// broker answers, no controller needed), and creates the topic only if
    /// it does not exist. With no broker answering, a node that knows its
    /// topic (`known_partitions`) starts anyway.
    pub async fn connect(options: KafkaOptions) -> Result<Self> {
        let fail = |context: &str| {
            let brokers = options.brokers.clone();
            let context = context.to_owned();
            move |source| Error::Kafka {
                brokers,
                context,
                source: without_value(source),
            }
        };
        let (watchful, mut refusal) = Watchful::new();
        let producer: FutureProducer<Watchful> = base_config(&options)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", "1")
            .set("message.max.bytes", MESSAGE_BYTES_MAX.to_string())
            .set(
                "delivery.timeout.ms",
                options.delivery_timeout.as_millis().to_string(),
            )
            .create_with_context(watchful.clone())
            .map_err(fail("create producer"))?;
        let metadata: BaseConsumer<Watchful> = base_config(&options)
            .create_with_context(watchful.clone())
            .map_err(fail("create metadata client"))?;
        let authentication = |reason: String| Error::Authentication {
            brokers: options.brokers.clone(),
            reason,
        };
        let (metadata, found) = tokio::select! {
            looked = lookup(metadata, &options) => looked?,
            Ok(reason) = refusal.wait_for(Option::is_some) => {
                return Err(authentication(reason.clone().unwrap_or_default()));
            }
        };
        if let Some(reason) = refusal.borrow().clone() {
            return Err(authentication(reason));
        }
        let (metadata, partitions) = match found {
            Ok(Some(partitions)) => (metadata, partitions),
            Ok(None) => {
                create_topic(&options, &watchful).await?;
                // Metadata may trail the creation by a moment.
                let mut metadata = metadata;
                let mut tries = 0;
                loop {
                    let (m, found) = lookup(metadata, &options).await?;
                    metadata = m;
                    match found {
                        Ok(Some(partitions)) => break (metadata, partitions),
                        _ if tries < 40 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        Ok(None) => {
                            return Err(Error::Topic {
                                topic: options.topic.clone(),
                                reason: "created, but it does not appear in metadata".into(),
                            });
                        }
                        Err(e) => return Err(fail("fetch topic metadata")(e)),
                    }
                }
            }
            Err(e) => match options.known_partitions {
                Some(partitions) => {
                    tracing::warn!(error = %e, partitions, topic = %options.topic,
                        "no broker answered; starting with the topic's partition count recorded in the data directory");
                    (metadata, partitions)
                }
                None => return Err(fail("fetch topic metadata")(e)),
            },
        };
        tracing::info!(brokers = %options.brokers, topic = %options.topic, partitions, "connected to kafka");
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                options,
                watchful,
                producer,
                metadata,
                partitions,
            }),
        })
    }

    pub fn options(&self) -> &KafkaOptions {
        &self.inner.options
    }
}

/// The topic's partition count from metadata; `Ok(None)` when the topic
/// does not exist.
/// Asks in slices of a second, serving the client's events in between, so
/// that refused credentials end the wait at once.
async fn lookup(
    metadata: BaseConsumer<Watchful>,
    options: &KafkaOptions,
) -> Result<(BaseConsumer<Watchful>, Result<Option<u32>, KafkaError>)> {
    let (topic, timeout) = (options.topic.clone(), options.request_timeout);
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + timeout;
        let fetched = loop {
            let asked = std::time::Instant::now();
            let left = deadline.saturating_duration_since(asked);
            let fetched = metadata.fetch_metadata(Some(&topic), left.min(Duration::from_secs(1)));
            // Serves error callbacks (no messages: nothing is assigned).
            let _ = metadata.poll(Duration::ZERO);
            if fetched.is_ok() || left.is_zero() || metadata.context().refusal().is_some() {
                break fetched;
            }
            // An error without a wait (no broker resolvable): do not spin.
            std::thread::sleep(Duration::from_millis(100).saturating_sub(asked.elapsed()));
        };
        let found = fetched.and_then(|m| match m.topics().iter().find(|t| t.name() == topic) {
            Some(t) if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as u32)),
            Some(t) => match t.error().map(RDKafkaErrorCode::from) {
                // Absent, or still being created (by another node
                // starting at the same moment): create, then wait for it.
                None
                | Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                | Some(RDKafkaErrorCode::LeaderNotAvailable) => Ok(None),
                Some(code) => Err(KafkaError::MetadataFetch(code)),
            },
            None => Ok(None),
        });
        (metadata, found)
    })
    .await
    .map_err(|e| Error::Topic {
        topic: options.topic.clone(),
        reason: format!("metadata task failed: {e}"),
    })
}

async fn create_topic(options: &KafkaOptions, watchful: &Watchful) -> Result<()> {
    let admin: AdminClient<Watchful> = base_config(options)
        .create_with_context(watchful.clone())
        .map_err(|source| Error::Kafka {
        brokers: options.brokers.clone(),
        context: "create admin client".into(),
        source: without_value(source),
    })?;
    let max_bytes = MESSAGE_BYTES_MAX.to_string();
    let min_isr = options.min_insync_replicas.map(|n| n.to_string());
    let mut topic = NewTopic::new(
        &options.topic,
        options.partitions as i32,
        TopicReplication::Fixed(options.replication),
    )
    .set("max.message.bytes", &max_bytes)
    // The log is the system of record: keep it forever.
    .set("retention.ms", "-1")
    .set("retention.bytes", "-1");
    if let Some(min_isr) = &min_isr {
        topic = topic.set("min.insync.replicas", min_isr);
    }
    let admin_options = AdminOptions::new().operation_timeout(Some(options.request_timeout));
    let results = admin
        .create_topics([&topic], &admin_options)
        .await
        .map_err(|source| Error::Kafka {
            brokers: options.brokers.clone(),
            context: format!("create topic {}", options.topic),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = %options.topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Topic {
                    topic: name,
                    reason: format!("create failed: {code}"),
                });
            }
        }
    }
    Ok(())
}

/// Whether a failed delivery certainly did not write the record.
fn definitely_not_written(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::MessageBatchTooLarge
                | C::TopicAuthorizationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
                | C::InvalidRecord
                | C::QueueFull
        )
    )
}

fn classify(error: &KafkaError) -> AppendError {
    if definitely_not_written(error) {
        AppendError::Refused(format!("kafka refused the record: {error}"))
    } else {
        AppendError::Ambiguous(format!("kafka delivery outcome unknown: {error}"))
    }
}

impl EventLog for KafkaLog {
    const KIND: &'static str = "kafka";

    type Reader = KafkaReader;

    fn partitions(&self) -> u32 {
        self.inner.partitions
    }

    async fn append(&self, records: Vec<Record>) -> Vec<Result<Position, AppendError>> {
        let topic = self.inner.options.topic.as_str();
        // Enqueue in order (so one tree's records keep their order), then await
        // every delivery report together.
        let mut pending = Vec::with_capacity(records.len());
        for record in &records {
            if let Err(refused) = check_record(record) {
                pending.push(Err(refused));
                continue;
            }
            let mut message = FutureRecord::to(topic)
                .key(&record.key)
                .payload(&record.value);
            let queued = loop {
                match self.inner.producer.send_result(message) {
                    Ok(delivery) => break Ok(delivery),
                    Err((e, returned))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        // Bounded by librdkafka's queue: wait for room, never drop.
                        message = returned;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => break Err(classify(&e)),
                }
            };
            pending.push(queued);
        }
        let mut outcome = Vec::with_capacity(pending.len());
        for queued in pending {
            outcome.push(match queued {
                Err(e) => Err(e),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(done)) => Ok(Position {
                        partition: done.partition as u32,
                        offset: done.offset as u64,
                    }),
                    Ok(Err((e, _))) => Err(classify(&e)),
                    Err(_) => Err(AppendError::Ambiguous(
                        "kafka producer dropped the delivery report".into(),
                    )),
                },
            });
        }
        outcome
    }

    async fn end_offsets(&self) -> baton_log::Result<Vec<u64>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // Leadership moves when a broker fails; a watermark request may
            // then fail for a moment. Retry until the request timeout, which
            // bounds the whole call: each request gets what is left of it
            // (not a timeout of its own per partition, which let a stalled
            // link hold one call for partitions × the timeout).
            let deadline = std::time::Instant::now() + inner.options.request_timeout;
            let expired = |p: u32, why: String| {
                baton_log::Error::Backend(format!(
                    "kafka watermarks of partition {p}: {why} (request_timeout {:?} for all partitions)",
                    inner.options.request_timeout
                ))
            };
            (0..inner.partitions)
                .map(|p| loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break Err(expired(p, "no answer in time".into()));
                    }
                    match inner.metadata.fetch_watermarks(&inner.options.topic, p as i32, left) {
                        Ok((_, high)) => break Ok(high.max(0) as u64),
                        Err(e) if std::time::Instant::now() < deadline => {
                            tracing::debug!(partition = p, error = %e, "retrying watermark request");
                            std::thread::sleep(Duration::from_millis(100).min(left));
                        }
                        Err(e) => break Err(expired(p, e.to_string())),
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| baton_log::Error::Backend(format!("kafka watermark task failed: {e}")))?
    }

    fn reader(&self, start: &[u64]) -> baton_log::Result<KafkaReader> {
        let options = &self.inner.options;
        if start.len() > self.inner.partitions as usize {
            return Err(baton_log::Error::NoSuchPartition {
                partition: start.len() as u32 - 1,
                partitions: self.inner.partitions,
            });
        }
        let consumer: StreamConsumer<Watchful> = base_config(options)
            // Required by librdkafka even for explicit assignment; nothing is committed.
            .set("group.id", "baton-projector")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "5")
            .set("enable.partition.eof", "false")
            .create_with_context(self.inner.watchful.clone())
            .map_err(|e| {
                baton_log::Error::Backend(format!("kafka consumer: {}", without_value(e)))
            })?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..self.inner.partitions {
            let offset = start.get(p as usize).copied().unwrap_or(0);
            assignment
                .add_partition_offset(&options.topic, p as i32, Offset::Offset(offset as i64))
                .map_err(|e| baton_log::Error::Backend(format!("kafka assignment: {e}")))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| baton_log::Error::Backend(format!("kafka assign: {e}")))?;
        Ok(KafkaReader { consumer })
    }
}

/// How long a read waits for one more record while filling a batch.
const BATCH_LINGER: Duration = Duration::from_micros(500);

/// Follows every partition of Baton's topic from given offsets.
pub struct KafkaReader {
    consumer: StreamConsumer<Watchful>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader").finish_non_exhaustive()
    }
}

fn owned(message: &rdkafka::message::BorrowedMessage<'_>) -> ReadRecord {
    ReadRecord {
        position: Position {
            partition: message.partition() as u32,
            offset: message.offset() as u64,
        },
        key: message.key().unwrap_or_default().to_vec(),
        value: message.payload().unwrap_or_default().to_vec(),
    }
}

impl LogReader for KafkaReader {
    async fn next_batch(
        &mut self,
        limit: ReadLimit,
        wait: Duration,
    ) -> baton_log::Result<Vec<ReadRecord>> {
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(Err(e)) => return Err(baton_log::Error::Backend(format!("kafka read: {e}"))),
            Ok(Ok(message)) => owned(&message),
        };
        let mut bytes = first.bytes();
        let mut out = vec![first];
        // Take what follows closely: librdkafka hands messages over one by one
        // as it decodes fetched batches, so waiting a moment for the next one
        // makes batches large (one sled commit and parallel signature checks
        // per batch) at a cost of at most BATCH_LINGER to the newest record.
        while limit.room(out.len(), bytes) {
            match tokio::time::timeout(BATCH_LINGER, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    let record = owned(&message);
                    bytes += record.bytes();
                    out.push(record);
                }
                // The consumer has moved past what `out` holds: hand it over,
                // never drop it. A lasting error is reported by the next call.
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka read error after {} records", out.len());
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_logs_a_kind_once_per_window_and_counts_the_rest() {
        let quiet = Quiet::new(Duration::from_millis(200));
        let refused = |port: u16, ms: u32| {
            format!(
                "127.0.0.1:{port}/bootstrap: Connect to ipv4#127.0.0.1:{port} failed: Connection refused (after {ms}ms in state CONNECT)"
            )
        };
        // Every broker's refusal is one kind: the first is logged.
        assert_eq!(quiet.admit(&refused(9092, 0)), Some(0));
        assert_eq!(quiet.admit(&refused(9093, 1)), None);
        assert_eq!(quiet.admit(&refused(9094, 12)), None);
        // Another kind is logged at once.
        assert_eq!(quiet.admit("Metadata request timed out"), Some(0));
        // Past the window: logged again, with how many were held back.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let held = loop {
            if let Some(held) = quiet.admit(&refused(9092, 7)) {
                break held;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(held >= 2, "{held}");
        assert_eq!(quiet.admit(&refused(9095, 3)), None);
    }

    #[test]
    fn quiet_forgets_past_its_bound() {
        let quiet = Quiet::new(Duration::from_secs(3600));
        for i in 0..QUIET_KINDS_MAX {
            // Distinct without digits: each digit spelled as a letter.
            let kind: String = i
                .to_string()
                .bytes()
                .map(|d| char::from(b'a' + (d - b'0')))
                .collect();
            assert_eq!(quiet.admit(&format!("kind {kind} {i}")), Some(0));
        }
        assert!(quiet.kinds.lock().unwrap().len() <= QUIET_KINDS_MAX);
        assert_eq!(quiet.admit("one more kind"), Some(0));
        assert!(quiet.kinds.lock().unwrap().len() <= QUIET_KINDS_MAX);
        // The newest kind is remembered: held back within its window.
        assert_eq!(quiet.admit("one more kind"), None);
    }
}
