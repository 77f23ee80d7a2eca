//! The conformance suite every [`EventLog`] passes: the embedded log in this
//! crate's tests, Kafka in `baton-kafka`'s. Each check builds a fresh log
//! through a [`Harness`], so checks do not see each other's records.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use crate::{
    AppendError, EventLog, LogReader, Position, RECORD_BYTES_MAX, ReadLimit, ReadRecord, Record,
};

/// How the suite gets logs to test.
pub trait Harness {
    type Log: EventLog;
    /// A new, empty log.
    fn fresh(&mut self) -> impl Future<Output = Self::Log>;
    /// Another handle to the same log, as a restarted process would open it;
    /// `log` is dropped first.
    fn reopen(&mut self, log: Self::Log) -> impl Future<Output = Self::Log>;
}

/// Runs every check.
pub async fn run_all<H: Harness>(harness: &mut H) {
    empty_batch_is_a_no_op(harness).await;
    positions_are_in_order(harness).await;
    reads_return_what_was_appended(harness).await;
    reads_start_at_the_given_offsets(harness).await;
    reads_stop_at_the_byte_limit(harness).await;
    readers_follow_the_tail(harness).await;
    same_key_same_partition_in_order(harness).await;
    concurrent_appends_all_land_once(harness).await;
    oversized_records_are_refused_alone(harness).await;
    records_survive_a_reopen(harness).await;
}

fn record(key: &str, n: usize) -> Record {
    Record {
        key: key.as_bytes().to_vec(),
        value: format!("{key}:{n}").into_bytes(),
    }
}

fn ok_positions(outcome: Vec<Result<Position, AppendError>>) -> Vec<Position> {
    outcome
        .into_iter()
        .map(|r| r.expect("append acknowledged"))
        .collect()
}

const DEADLINE: Duration = Duration::from_secs(30);

/// Reads until `count` records arrived, failing after a deadline.
pub async fn read_exactly<R: LogReader>(reader: &mut R, count: usize) -> Vec<ReadRecord> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {count} records before the deadline",
            out.len()
        );
        out.extend(
            reader
                .next_batch(
                    ReadLimit::records(count - out.len()),
                    Duration::from_millis(500),
                )
                .await
                .expect("read"),
        );
    }
    assert_eq!(out.len(), count, "read more records than appended");
    out
}

async fn zeros<L: EventLog>(log: &L) -> Vec<u64> {
    vec![0; log.partitions() as usize]
}

pub async fn empty_batch_is_a_no_op<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    assert!(log.append(Vec::new()).await.is_empty());
    assert_eq!(
        log.end_offsets().await.expect("end offsets"),
        zeros(&log).await
    );
}

pub async fn positions_are_in_order<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let positions = ok_positions(log.append((0..10).map(|n| record("k", n)).collect()).await);
    assert!(
        positions
            .iter()
            .all(|p| p.partition == positions[0].partition)
    );
    for pair in positions.windows(2) {
        assert_eq!(
            pair[1].offset,
            pair[0].offset + 1,
            "offsets of one key's batch are consecutive"
        );
    }
    let ends = log.end_offsets().await.expect("end offsets");
    assert_eq!(
        ends[positions[0].partition as usize],
        positions[9].offset + 1
    );
}

pub async fn reads_return_what_was_appended<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let mut expected = BTreeMap::new();
    for batch in 0..3 {
        let records: Vec<Record> = (0..20)
            .map(|n| record(&format!("key-{}", n % 4), batch * 100 + n))
            .collect();
        let positions = ok_positions(log.append(records.clone()).await);
        expected.extend(positions.into_iter().zip(records));
    }
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let read = read_exactly(&mut reader, expected.len()).await;
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for r in read {
        let want = expected
            .get(&r.position)
            .expect("a read position was acknowledged");
        assert_eq!((&r.key, &r.value), (&want.key, &want.value));
        if let Some(prev) = last.insert(r.position.partition, r.position.offset) {
            assert!(
                r.position.offset > prev,
                "offsets increase within a partition"
            );
        }
    }
}

/// A read takes records only while the bytes it holds are under the limit
/// (so it holds at most one record past it), never more records than asked
/// and never none when some are there; what it leaves, the next read
/// returns, in order.
pub async fn reads_stop_at_the_byte_limit<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let records: Vec<Record> = (0..10)
        .map(|n| Record {
            key: b"k".to_vec(),
            value: vec![n as u8; 100],
        })
        .collect();
    let appended = ok_positions(log.append(records).await);
    let limit = ReadLimit {
        records: 100,
        bytes: 250,
    };
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut read = Vec::new();
    while read.len() < appended.len() {
        assert!(tokio::time::Instant::now() < deadline, "read {read:?}");
        let batch = reader
            .next_batch(limit, Duration::from_millis(500))
            .await
            .expect("read");
        if let Some((_, before_last)) = batch.split_last() {
            let held: usize = before_last.iter().map(ReadRecord::bytes).sum();
            assert!(held < limit.bytes, "a read went on past the byte limit");
            assert!(
                batch.len() <= 3,
                "101-byte records under 250 bytes: 3 at most"
            );
        }
        read.extend(batch);
    }
    assert_eq!(
        read.iter().map(|r| r.position).collect::<Vec<_>>(),
        appended
    );
    assert!(
        read.iter()
            .enumerate()
            .all(|(n, r)| r.value == vec![n as u8; 100])
    );
    // A limit smaller than any record still reads one.
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let one = ReadLimit {
        records: 100,
        bytes: 1,
    };
    let first = loop {
        assert!(tokio::time::Instant::now() < deadline);
        let batch = reader
            .next_batch(one, Duration::from_millis(500))
            .await
            .expect("read");
        if !batch.is_empty() {
            break batch;
        }
    };
    assert_eq!(first.len(), 1);
    assert!(one.reached(&first));
}

pub async fn reads_start_at_the_given_offsets<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    ok_positions(log.append((0..10).map(|n| record("a", n)).collect()).await);
    let middle = log.end_offsets().await.expect("end offsets");
    let later = ok_positions(log.append((10..15).map(|n| record("a", n)).collect()).await);
    let mut reader = log.reader(&middle).expect("reader");
    let read = read_exactly(&mut reader, 5).await;
    assert_eq!(read.iter().map(|r| r.position).collect::<Vec<_>>(), later);
    assert!(
        reader
            .next_batch(ReadLimit::records(10), Duration::from_millis(200))
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn readers_follow_the_tail<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let waiting = tokio::spawn(async move {
        let records = read_exactly(&mut reader, 3).await;
        records.into_iter().map(|r| r.value).collect::<Vec<_>>()
    });
    ok_positions(
        log.append((0..3).map(|n| record("tail", n)).collect())
            .await,
    );
    let values = waiting.await.expect("reader task");
    assert_eq!(
        values,
        (0..3).map(|n| record("tail", n).value).collect::<Vec<_>>()
    );
}

pub async fn same_key_same_partition_in_order<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let mut by_key: BTreeMap<String, Vec<Position>> = BTreeMap::new();
    for round in 0..5 {
        let records: Vec<Record> = (0..8)
            .map(|k| record(&format!("tree-{k}"), round))
            .collect();
        let positions = ok_positions(log.append(records.clone()).await);
        for (record, position) in records.iter().zip(positions) {
            by_key
                .entry(String::from_utf8_lossy(&record.key).into_owned())
                .or_default()
                .push(position);
        }
    }
    for (key, positions) in by_key {
        assert!(
            positions
                .iter()
                .all(|p| p.partition == positions[0].partition),
            "{key} spans partitions"
        );
        assert!(
            positions.windows(2).all(|w| w[1].offset > w[0].offset),
            "{key} is out of order"
        );
    }
}

pub async fn concurrent_appends_all_land_once<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut positions = Vec::new();
                for batch in 0..5 {
                    let records = (0..10)
                        .map(|n| record(&format!("writer-{t}-{}", n % 3), batch * 10 + n))
                        .collect();
                    positions.extend(ok_positions(log.append(records).await));
                }
                positions
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for task in tasks {
        for position in task.await.expect("writer task") {
            assert!(
                all.insert(position),
                "position {position:?} acknowledged twice"
            );
        }
    }
    assert_eq!(all.len(), 400);
    let ends = log.end_offsets().await.expect("end offsets");
    assert_eq!(ends.iter().sum::<u64>(), 400);
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let read: BTreeSet<Position> = read_exactly(&mut reader, 400)
        .await
        .into_iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(read, all);
}

pub async fn oversized_records_are_refused_alone<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let big = Record {
        key: b"big".to_vec(),
        value: vec![7; RECORD_BYTES_MAX + 1],
    };
    let outcome = log
        .append(vec![record("small", 1), big, record("small", 2)])
        .await;
    assert!(outcome[0].is_ok() && outcome[2].is_ok(), "{outcome:?}");
    assert!(
        matches!(&outcome[1], Err(AppendError::Refused(reason)) if reason.contains("larger than")),
        "{outcome:?}"
    );
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    assert_eq!(read_exactly(&mut reader, 2).await.len(), 2);
}

pub async fn records_survive_a_reopen<H: Harness>(harness: &mut H) {
    let log = harness.fresh().await;
    let positions = ok_positions(
        log.append((0..25).map(|n| record(&format!("r{}", n % 5), n)).collect())
            .await,
    );
    let log = harness.reopen(log).await;
    let mut reader = log.reader(&zeros(&log).await).expect("reader");
    let read: BTreeSet<Position> = read_exactly(&mut reader, 25)
        .await
        .into_iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(read, positions.into_iter().collect());
    let more = ok_positions(log.append(vec![record("after", 0)]).await);
    assert!(
        !read.contains(&more[0]),
        "a reopened log appends after what it holds"
    );
}
