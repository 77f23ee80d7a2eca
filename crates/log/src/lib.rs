//! The event log: Baton's system of record, as a trait with two
//! implementations — the embedded log here (one partition, in the node's data
//! directory) and Apache Kafka in `baton-kafka` — and one conformance suite
//! that both pass.
//!
//! The log stores opaque bytes. It knows nothing of signatures or events: what
//! a record means is decided by the projector, which re-verifies everything it
//! reads.

use std::future::Future;
use std::time::Duration;

mod consistency;
mod embedded;

/// The generic suite every log implementation's tests run.
pub mod conformance;

pub use consistency::{ConsistencyToken, PARTITIONS_MAX};
pub use embedded::{EmbeddedLog, EmbeddedReader};

/// Largest record value a log accepts.
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Largest record key (a delegation tree's root id, or a control key).
pub const KEY_BYTES_MAX: usize = 256;
/// Most records in one append.
pub const BATCH_LEN_MAX: usize = 4096;

/// Where a record landed: a partition and its offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// A record to append. Records with the same key land in the same partition,
/// in append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A record read back, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub position: Position,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl ReadRecord {
    /// Its size as a [`ReadLimit`] counts it: key and value.
    pub fn bytes(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// How much one read may return: at most `records` records, taken only
/// while the bytes already taken ([`ReadRecord::bytes`]) are under `bytes`
/// (so the record that reaches it is the last; a read returns at least one
/// record when one is there). A projector bounds its batches by bytes as
/// well as by count: a record holds 1 to 1000 events, up to 1 MiB, so a
/// count alone bounds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    pub records: usize,
    pub bytes: usize,
}

impl ReadLimit {
    /// At most `records` records, of any size.
    pub fn records(records: usize) -> Self {
        ReadLimit {
            records,
            bytes: usize::MAX,
        }
    }

    /// Whether a read holding `count` records of `bytes` bytes may take one
    /// more: the one rule every reader applies.
    pub fn room(&self, count: usize, bytes: usize) -> bool {
        count < self.records.max(1) && bytes < self.bytes
    }

    /// Whether a read that returned `batch` stopped at this limit rather
    /// than for want of records: only a read that did not may be taken as
    /// having reached the log's end.
    pub fn reached(&self, batch: &[ReadRecord]) -> bool {
        !self.room(batch.len(), batch.iter().map(ReadRecord::bytes).sum())
    }
}

/// Why one record of an append was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Definitely not written (too large, refused by the log).
    #[error("not written: {0}")]
    Refused(String),
    /// Perhaps written, perhaps not (a timeout, a lost connection). Never
    /// reported as success; a retry is safe because event ids are content
    /// hashes and the projector deduplicates.
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("log i/o at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("log file {path} is corrupt at byte {at}: {reason}")]
    Corrupt {
        path: String,
        at: u64,
        reason: String,
    },
    #[error("log file {path} is in use by another process")]
    InUse { path: String },
    #[error("partition {partition} does not exist (the log has {partitions})")]
    NoSuchPartition { partition: u32, partitions: u32 },
    #[error("consistency token: {0}")]
    Token(String),
    #[error("the log is closed")]
    Closed,
    #[error("{0}")]
    Backend(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An append-only, partitioned log of opaque records.
pub trait EventLog: Clone + Send + Sync + 'static {
    type Reader: LogReader;

    /// What kind of log this is, for operators ("kafka", "embedded").
    const KIND: &'static str = "log";

    /// How many partitions the log has; fixed for its lifetime.
    fn partitions(&self) -> u32;

    /// Appends a batch and reports, per record in order, where it landed. The
    /// records are sent concurrently; an acknowledgement means durable
    /// (fsync for the embedded log, `acks=all` for Kafka).
    fn append(
        &self,
        records: Vec<Record>,
    ) -> impl Future<Output = Vec<Result<Position, AppendError>>> + Send;

    /// The next offset to be written in each partition (the high watermark).
    fn end_offsets(&self) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// A reader starting at `start[p]` in each partition `p`.
    fn reader(&self, start: &[u64]) -> Result<Self::Reader>;
}

/// Reads every partition of a log from given offsets, following its tail.
pub trait LogReader: Send + 'static {
    /// Records within `limit`; waits up to `wait` when there are none yet,
    /// then returns an empty batch. Within a partition, records come in
    /// offset order.
    fn next_batch(
        &mut self,
        limit: ReadLimit,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<ReadRecord>>> + Send;
}

/// Checks a record against the limits every log enforces.
pub fn check_record(record: &Record) -> Result<(), AppendError> {
    if record.value.len() > RECORD_BYTES_MAX {
        return Err(AppendError::Refused(format!(
            "record value is {} bytes, larger than {RECORD_BYTES_MAX}",
            record.value.len()
        )));
    }
    if record.key.len() > KEY_BYTES_MAX {
        return Err(AppendError::Refused(format!(
            "record key is {} bytes, larger than {KEY_BYTES_MAX}",
            record.key.len()
        )));
    }
    Ok(())
}
