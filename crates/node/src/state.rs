//! Where a node stands (what `AdminService.Status` and `/metrics` report),
//! and snapshots of its projection. The node's data directory is locked
//! while it runs, so these answers come from the node itself.

use std::sync::Arc;
use std::time::Duration;

use baton_log::EventLog;

use crate::{Error, Node, Result};

/// The log's end offsets as read at an instant, or why they could not be.
pub(crate) type LogEnd = (std::time::Instant, std::result::Result<Vec<u64>, String>);

/// How long a status or a scrape waits for the log's end offsets.
const LOG_END_WAIT: Duration = Duration::from_secs(2);

/// How long the log's end offsets, once read, answer for scrapes and
/// statuses: one read at a time, at most one a second, however many callers.
const LOG_END_FRESH: Duration = Duration::from_secs(1);

/// The log's end offsets (or why they could not be read), read at most once
/// per [`LOG_END_FRESH`] by one caller at a time; the others wait for it.
async fn log_end<L: EventLog>(node: &Node<L>) -> std::result::Result<Vec<u64>, String> {
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
    pub async fn take<L: EventLog>(node: &Arc<Node<L>>, digest: bool) -> Result<NodeState> {
        let handle = &node.handle;
        let (log_end, log_error) = match log_end(node).await {
            Ok(ends) => (Some(ends), String::new()),
            Err(e) => (None, e),
        };
        let applied_offsets = handle.applied();
        let mut state = NodeState {
            ready: node.caught_up(),
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
}

/// A snapshot file being sent; removed however the stream ends (when this
/// is dropped).
#[derive(Debug)]
pub struct Spool(std::path::PathBuf);

impl Spool {
    /// Where the file is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

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

/// A place for one snapshot (or digest) on this node, and among its open
/// streams: taken when the snapshot is asked for, held until it is sent.
#[derive(Debug)]
pub struct SnapshotSlot {
    _one: tokio::sync::OwnedSemaphorePermit,
    _stream: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A snapshot of the projection, spooled to a file beside it: the file is
/// removed, and the next snapshot may start, once this is dropped.
#[derive(Debug)]
pub struct Snapshot {
    pub spool: Spool,
    pub info: baton_projector::SnapshotInfo,
    _slot: SnapshotSlot,
}

/// A snapshot or digest already being taken: its refusal.
fn one_at_a_time() -> Error {
    Error::Unavailable(
        "a snapshot or a state digest is being taken on this node; retry when it is done".into(),
    )
}

impl<L> Node<L> {
    /// The one place for a snapshot or a digest (refused while another is
    /// being taken: each pauses applying or scans the whole projection),
    /// and, for a snapshot that is streamed, a place among the open streams.
    pub fn snapshot_slot(&self, streamed: bool) -> Result<SnapshotSlot> {
        let one = self
            .one_at_a_time
            .clone()
            .try_acquire_owned()
            .map_err(|_| one_at_a_time())?;
        let stream = streamed.then(|| self.stream_permit()).transpose()?;
        Ok(SnapshotSlot {
            _one: one,
            _stream: stream,
        })
    }
}

impl<L: EventLog> Node<L> {
    /// Where the node stands now (with the projection's digest when
    /// `digest`: a scan of all of it, one at a time like snapshots).
    pub async fn state(self: &Arc<Self>, digest: bool) -> Result<NodeState> {
        let _slot = digest.then(|| self.snapshot_slot(false)).transpose()?;
        NodeState::take(self, digest).await
    }

    /// Writes a snapshot of the projection to a spool file beside it, in
    /// `slot` ([`Node::snapshot_slot`]).
    pub async fn snapshot(self: &Arc<Self>, slot: SnapshotSlot) -> Result<Snapshot> {
        let spool = Spool(spool_path(&self.projection_dir));
        let (node, target) = (self.clone(), spool.0.clone());
        let info = tokio::task::spawn_blocking(move || node.handle.write_snapshot(&target))
            .await
            .map_err(|e| Error::Internal(format!("snapshot task: {e}")))?
            .map_err(|e| Error::Internal(format!("snapshot: {e}")))?;
        tracing::info!(entries = info.entries, read = ?info.read, "snapshot taken");
        Ok(Snapshot {
            spool,
            info,
            _slot: slot,
        })
    }
}
