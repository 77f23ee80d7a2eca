//! Projector scenarios on the embedded log.

#![allow(clippy::unwrap_used)]

mod scenarios;

use baton_log::{EmbeddedLog, EventLog, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::cascade(log, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let raw = log.clone();
    scenarios::forgeries(log, dir.path(), move |records| {
        let raw = raw.clone();
        async move {
            let records = records
                .into_iter()
                .map(|(key, value)| Record { key, value })
                .collect();
            assert!(raw.append(records).await.iter().all(Result::is_ok));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::duplicates(log, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::queries(log, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_records_hold_the_settled_offset_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::parked_records_hold_the_settled_offset(log, dir.path()).await;
}
