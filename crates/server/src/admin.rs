//! `AdminService`: where a node stands and what it quarantined, for
//! operators (`baton status`, `baton quarantine`). The node's data directory
//! is locked while it runs, so these answers come over its API, behind the
//! admin role. [`NodeState`] is also what `/metrics` reports at each scrape.

use std::sync::Arc;
use std::time::Duration;

use baton_log::{EventLog, Position};
use baton_proto::v1;
use tonic::{Request, Response, Status};

use crate::{Error, Node, Result};

/// How long a status or a scrape waits for the log's end offsets.
const LOG_END_WAIT: Duration = Duration::from_secs(2);

/// How long the log's end offsets, once read, answer for scrapes and
/// statuses: one read at a time, at most one a second, however many callers.
const LOG_END_FRESH: Duration = Duration::from_secs(1);

/// The log's end offsets (or why they could not be read), read at most once
/// per [`LOG_END_FRESH`] by one caller at a time; the others wait for it.
async fn log_end<L: EventLog>(node: &Node<L>) -> Result<Vec<u64>, String> {
    let mut cached = node.log_end.lock().await;
    if let Some((at, ends)) = &*cached
        && at.elapsed() < LOG_END_FRESH
    {
        return ends.clone();
    }
    let ends = match tokio::time::timeout(LOG_END_WAIT, node.log.end_offsets()).await {
        Ok(Ok(ends)) => Ok(ends),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the log did not answer within {LOG_END_WAIT:?}")),
    };
    *cached = Some((std::time::Instant::now(), ends.clone()));
    ends
}

/// Bytes of records one `ListQuarantined` answer carries at most (one
/// record more when the first alone is larger); ids listed per record.
const QUARANTINE_PAGE_BYTES: usize = 1024 * 1024;
const QUARANTINE_EVENT_IDS_MAX: usize = 100;

/// Default and largest page of `ListQuarantined`.
const QUARANTINE_PAGE: u32 = 100;
const QUARANTINE_PAGE_MAX: u32 = 1000;

/// Where a node stands, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub ready: bool,
    pub applied_offsets: Vec<u64>,
    pub read_offsets: Vec<u64>,
    /// The log's end offsets; None when the log did not answer.
    pub log_end: Option<Vec<u64>>,
    pub log_error: String,
    pub seconds_behind: f64,
    /// The node's freshness now.
    pub freshness: Option<crate::freshness::View>,
    pub max_staleness: std::time::Duration,
    pub applied: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub quarantined_by_rule: Vec<(String, u64)>,
    pub parked: u64,
    pub parked_retries: u64,
    pub records_read: u64,
    pub projection_bytes: u64,
    /// The projection's digest and whether it was settled, when asked.
    pub digest: Option<([u8; 32], bool)>,
}

impl NodeState {
    /// Reads it now (and the projection's digest, when `digest`).
    pub(crate) async fn take<L: EventLog>(node: &Arc<Node<L>>, digest: bool) -> Result<NodeState> {
        let handle = &node.handle;
        let (log_end, log_error) = match log_end(node).await {
            Ok(ends) => (Some(ends), String::new()),
            Err(e) => (None, e),
        };
        let applied_offsets = handle.applied();
        let mut state = NodeState {
            ready: node.caught_up.load(std::sync::atomic::Ordering::Acquire),
            read_offsets: handle.read(),
            log_end,
            log_error,
            applied: handle.counter("applied")?,
            duplicates: handle.counter("duplicates")?,
            quarantined: handle.counter("quarantined")?,
            quarantined_by_rule: handle.labelled_counter("quarantined")?,
            parked: handle.parked(),
            parked_retries: handle.parked_retries(),
            records_read: handle.records_read(),
            projection_bytes: handle.size_on_disk()?,
            freshness: Some(
                node.freshness
                    .view(&handle.read(), std::time::Instant::now()),
            ),
            max_staleness: node.limits.max_staleness,
            applied_offsets,
            ..Default::default()
        };
        if state.lag().iter().any(|lag| *lag > 0) {
            // Never at the end since start: behind for as long as it ran.
            state.seconds_behind = handle
                .since_at_end()
                .unwrap_or_else(|| node.started.elapsed())
                .as_secs_f64();
        }
        if digest {
            let node = node.clone();
            state.digest = Some(
                tokio::task::spawn_blocking(move || {
                    let before = node.handle.commits();
                    let digest = node.handle.state_digest()?;
                    Ok::<_, Error>((digest, node.handle.commits() == before))
                })
                .await
                .map_err(|e| Error::Internal(format!("digest task: {e}")))??,
            );
        }
        Ok(state)
    }

    /// Records in the log not applied yet, per partition (empty when the
    /// log did not answer).
    pub fn lag(&self) -> Vec<u64> {
        let Some(ends) = &self.log_end else {
            return Vec::new();
        };
        ends.iter()
            .enumerate()
            .map(|(p, end)| end.saturating_sub(self.applied_offsets.get(p).copied().unwrap_or(0)))
            .collect()
    }

    fn into_response<L: EventLog>(self) -> v1::StatusResponse {
        let lag = self.lag();
        let partitions = self
            .applied_offsets
            .iter()
            .enumerate()
            .map(|(p, applied)| v1::PartitionStatus {
                partition: p as u32,
                applied: *applied,
                read: self.read_offsets.get(p).copied().unwrap_or(0),
                log_end: self
                    .log_end
                    .as_ref()
                    .and_then(|ends| ends.get(p).copied())
                    .unwrap_or(0),
                lag: lag.get(p).copied().unwrap_or(0),
            })
            .collect();
        let (state_digest, digest_settled) = match self.digest {
            Some((digest, settled)) => (format!("b3:{}", hex::encode(digest)), settled),
            None => (String::new(), false),
        };
        let view = self.freshness;
        v1::StatusResponse {
            ready: self.ready,
            partitions,
            log_error: self.log_error,
            lag: lag.iter().sum(),
            seconds_behind: self.seconds_behind,
            consistency_token: baton_log::ConsistencyToken::new(self.applied_offsets).to_string(),
            events_applied: self.applied,
            duplicates: self.duplicates,
            quarantined: self.quarantined,
            quarantined_by_rule: self.quarantined_by_rule.into_iter().collect(),
            parked: self.parked,
            projection_bytes: self.projection_bytes,
            state_digest,
            digest_settled,
            log: L::KIND.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            records_read: self.records_read,
            fresh: view.as_ref().is_some_and(|view| view.fresh),
            end_confirmed_seconds_ago: seconds_or_never(
                view.as_ref().and_then(|v| v.confirmed_age),
            ),
            unapplied_seconds: view.as_ref().map_or(0.0, |view| view.behind.as_secs_f64()),
            max_staleness_seconds: self.max_staleness.as_secs_f64(),
            view_age_seconds: seconds_or_never(view.as_ref().and_then(|v| v.age)),
            confirmed_end: view
                .and_then(|view| view.confirmed)
                .map(|confirmed| confirmed.end.to_string())
                .unwrap_or_default(),
        }
    }
}

/// Seconds of `age`, or -1 for "never" (the wire's convention).
fn seconds_or_never(age: Option<std::time::Duration>) -> f64 {
    age.map_or(-1.0, |age| age.as_secs_f64())
}

pub struct Admin<L> {
    node: Arc<Node<L>>,
    /// One snapshot at a time: each pauses applying and takes disk space.
    snapshots: Arc<tokio::sync::Semaphore>,
}

impl<L> Admin<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Admin {
            node,
            snapshots: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// The refusal of a snapshot or digest while another is being taken.
fn one_at_a_time() -> Status {
    Error::Unavailable(
        "a snapshot or a state digest is being taken on this node; retry when it is done".into(),
    )
    .into()
}

/// Bytes per `CreateSnapshot` message.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

/// A snapshot file being sent; removed however the stream ends.
struct Spool(std::path::PathBuf);

/// Where a snapshot of the projection in `dir` is spooled: beside it,
/// named so [`remove_stale_spools`] finds it.
fn spool_path(dir: &std::path::Path) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut path = dir.as_os_str().to_owned();
    path.push(format!("{SPOOL_INFIX}{nanos}.tmp"));
    path.into()
}

const SPOOL_INFIX: &str = ".snapshot-";

/// Removes snapshot spools a node that died mid-snapshot left beside the
/// projection in `dir` (run at start, before any snapshot can begin).
pub(crate) fn remove_stale_spools(dir: &std::path::Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let mut prefix = name.to_owned();
    prefix.push(SPOOL_INFIX);
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(file, "removed a snapshot spool left by an earlier run"),
                Err(e) => {
                    tracing::warn!(file, error = %e, "could not remove a stale snapshot spool")
                }
            }
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub type SnapshotStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<v1::CreateSnapshotResponse, Status>> + Send>,
>;

/// One quarantined record as the API shows it: the ids of its events when
/// it decodes.
fn quarantined_record(q: baton_projector::Quarantined, with_value: bool) -> v1::QuarantinedRecord {
    let events = baton_proto::decode_record(&q.value).unwrap_or_default();
    let event_ids = events
        .iter()
        .take(QUARANTINE_EVENT_IDS_MAX)
        .map(|(envelope, _)| envelope.id().0.to_vec())
        .collect();
    v1::QuarantinedRecord {
        position: Some(q.position.into()),
        rule: q.rule,
        reason: q.reason,
        event_ids,
        event_count: events.len() as u32,
        value_bytes: q.value.len() as u64,
        value: if with_value { q.value } else { Vec::new() },
    }
}

#[tonic::async_trait]
impl<L: EventLog> v1::admin_service_server::AdminService for Admin<L> {
    type CreateSnapshotStream = SnapshotStream;

    async fn create_snapshot(
        &self,
        _request: Request<v1::CreateSnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let Ok(one) = self.snapshots.clone().try_acquire_owned() else {
            return Err(one_at_a_time());
        };
        let permit = self.node.stream_permit()?;
        let spool = Spool(spool_path(&self.node.projection_dir));
        let node = self.node.clone();
        let (send, receive) = tokio::sync::mpsc::channel(4);
        // Everything happens in this task, which owns the guards: the call
        // answers at once (no request deadline cuts a long copy short), and
        // whether the caller stays or goes, the spool file is removed and
        // the next snapshot can start only once this copy has ended.
        tokio::spawn(async move {
            let (_one, _permit) = (one, permit);
            let target = spool.0.clone();
            let taken = tokio::task::spawn_blocking(move || {
                let info = node.handle.write_snapshot(&target)?;
                Ok::<_, baton_projector::Error>(info)
            })
            .await;
            let info = match taken {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => {
                    let failed = Error::Internal(format!("snapshot: {e}"));
                    let _ = send.send(Err(failed.into())).await;
                    return;
                }
                Err(e) => {
                    let failed = Error::Internal(format!("snapshot task: {e}"));
                    let _ = send.send(Err(failed.into())).await;
                    return;
                }
            };
            tracing::info!(entries = info.entries, read = ?info.read, "snapshot taken");
            let mut file = match tokio::fs::File::open(&spool.0).await {
                Ok(file) => file,
                Err(e) => {
                    let failed = Error::Internal(format!("snapshot file: {e}"));
                    let _ = send.send(Err(failed.into())).await;
                    return;
                }
            };
            loop {
                let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
                let read = match tokio::io::AsyncReadExt::read(&mut file, &mut chunk).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let failed = Error::Internal(format!("snapshot file: {e}"));
                        let _ = send.send(Err(failed.into())).await;
                        return;
                    }
                };
                chunk.truncate(read);
                let message = v1::CreateSnapshotResponse { chunk };
                if send.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receive),
        )))
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let digest = request.into_inner().with_digest;
        // A digest scans the whole projection: one at a time, like snapshots.
        let _one = match digest {
            true => match self.snapshots.clone().try_acquire_owned() {
                Ok(one) => Some(one),
                Err(_) => {
                    return Err(one_at_a_time());
                }
            },
            false => None,
        };
        let state = NodeState::take(&self.node, digest).await?;
        Ok(Response::new(state.into_response::<L>()))
    }

    async fn list_quarantined(
        &self,
        request: Request<v1::ListQuarantinedRequest>,
    ) -> Result<Response<v1::ListQuarantinedResponse>, Status> {
        let request = request.into_inner();
        let page = match request.page_size {
            0 => QUARANTINE_PAGE,
            n if n <= QUARANTINE_PAGE_MAX => n,
            n => {
                return Err(Error::Limit {
                    field: "page_size",
                    reason: format!("{n} is more than {QUARANTINE_PAGE_MAX}"),
                }
                .into());
            }
        } as usize;
        let from = request.from.map_or(
            Position {
                partition: 0,
                offset: 0,
            },
            |p| Position {
                partition: p.partition,
                offset: p.offset,
            },
        );
        let node = self.node.clone();
        // One more than the page tells where the next page starts.
        let mut found =
            tokio::task::spawn_blocking(move || node.handle.quarantined_from(from, page + 1))
                .await
                .map_err(|e| Error::Internal(format!("quarantine task: {e}")))?
                .map_err(Error::from)?;
        // A page ends at `page` records or at the byte budget, whichever
        // comes first; `next` is the first record left out.
        let wanted = found.len().min(page);
        let mut records = Vec::with_capacity(wanted);
        let mut bytes = 0usize;
        let mut next = None;
        for (i, q) in found.drain(..).enumerate() {
            let position = v1::LogPosition::from(q.position);
            if i == wanted {
                next = Some(position);
                break;
            }
            let record = quarantined_record(q, request.with_value);
            let size = prost::Message::encoded_len(&record);
            if !records.is_empty() && bytes + size > QUARANTINE_PAGE_BYTES {
                next = Some(position);
                break;
            }
            bytes += size;
            records.push(record);
        }
        Ok(Response::new(v1::ListQuarantinedResponse { records, next }))
    }
}
