//! The embedded log passes the conformance suite, refuses a second writer, and
//! recovers from a torn tail.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use baton_log::conformance::{self, Harness};
use baton_log::{EmbeddedLog, EventLog, LogReader, Record};

struct Embedded {
    root: tempfile::TempDir,
    count: usize,
    dirs: Vec<(PathBuf, EmbeddedLog)>,
}

impl Harness for Embedded {
    type Log = EmbeddedLog;

    async fn fresh(&mut self) -> EmbeddedLog {
        self.count += 1;
        let dir = self.root.path().join(format!("log-{}", self.count));
        let log = EmbeddedLog::open(&dir).unwrap();
        self.dirs.push((dir, log.clone()));
        log
    }

    async fn reopen(&mut self, log: EmbeddedLog) -> EmbeddedLog {
        let dir = self
            .dirs
            .iter()
            .position(|(_, l)| l.same_log(&log))
            .map(|i| self.dirs.remove(i).0)
            .unwrap();
        log.close().await;
        EmbeddedLog::open(&dir).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_log_passes_the_conformance_suite() {
    let mut harness = Embedded {
        root: tempfile::tempdir().unwrap(),
        count: 0,
        dirs: Vec::new(),
    };
    conformance::run_all(&mut harness).await;
}

#[tokio::test]
async fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedLog::open(dir.path()).unwrap();
    let err = EmbeddedLog::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("in use"), "{err}");
}

/// A log directory holding three 100-byte records, its writer closed.
async fn three_records_then_closed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    let records: Vec<Record> = (0..3)
        .map(|n| Record {
            key: b"k".to_vec(),
            value: vec![n; 100],
        })
        .collect();
    assert!(log.append(records).await.iter().all(Result::is_ok));
    log.close().await;
    dir
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_the_rest_kept() {
    let dir = three_records_then_closed().await;
    // A crash mid-write leaves half a frame behind.
    let path = dir.path().join("events.log");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 50).unwrap();
    drop(file);
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.end_offsets().await.unwrap(), vec![2]);
    let mut reader = log.reader(&[0]).unwrap();
    let read = conformance::read_exactly(&mut reader, 2).await;
    assert_eq!(read[1].value, vec![1; 100]);
    let next = log
        .append(vec![Record {
            key: b"k".to_vec(),
            value: b"after".to_vec(),
        }])
        .await;
    assert_eq!(next[0].as_ref().unwrap().offset, 2);
    assert!(
        reader
            .next_batch(
                baton_log::ReadLimit::records(10),
                std::time::Duration::from_secs(5),
            )
            .await
            .unwrap()[0]
            .value
            == b"after"
    );
}

#[tokio::test]
async fn damage_in_the_middle_is_refused_not_truncated() {
    let dir = three_records_then_closed().await;
    // Flip a byte inside the first record's value.
    let path = dir.path().join("events.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = EmbeddedLog::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("followed by intact ones"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was changed");
}
