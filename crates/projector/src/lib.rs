//! The projector: reads every partition of the event log, re-verifies each
//! event with `baton-core`, and applies it exactly once to sled indexes that
//! answer revocation checks, chain queries and history queries.
//!
//! Exactly once, without Kafka transactions: an event's id is the hash of
//! what was signed, so a duplicate is recognised and skipped; and the
//! per-partition offsets are written in the same atomic sled batch as the
//! state derived from the records before them, so after a crash the projector
//! resumes exactly where its state ends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_core::Policy;
use baton_log::{ConsistencyToken, EventLog, LogReader, Position, ReadLimit, ReadRecord};
use tokio::sync::watch;

use crate::parked::Parking;

mod apply;
mod bounded;
mod index;
mod parked;
mod query;
mod snapshot;
mod stored;
mod verify;
mod view;

pub use apply::{Outcome, Why};
pub use query::{ChainAnswer, EventFilter, ListedEvent, Quarantined, RevocationEffect};
pub use snapshot::{SnapshotInfo, restore_snapshot, verify_snapshot};
pub use verify::verdict_key;
pub use view::{MEMO_RECORDS_MAX, VerifiedSignatures, View};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("projection store: {0}")]
    Store(#[from] sled::Error),
    #[error("projection store is corrupt: {0}")]
    Corrupt(String),
    #[error("event log: {0}")]
    Log(#[from] baton_log::Error),
    #[error("timed out after {waited_ms} ms waiting to apply {token} (applied: {applied})")]
    NotYet {
        token: String,
        applied: String,
        waited_ms: u128,
    },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("projector task failed: {0}")]
    Task(String),
    #[error("snapshot: {0}")]
    Snapshot(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a projector runs.
#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    pub policy: Policy,
    /// Most records applied in one atomic batch.
    pub batch_max: usize,
    /// Most bytes of records read for one batch (the record that reaches
    /// it is the last): what bounds a batch's memory, read, verified and
    /// staged, since a record holds 1 to 1000 events.
    pub batch_bytes_max: usize,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// Most decoded records kept in memory per kind (tokens, token
    /// references, clients, keys, key trust), in two generations.
    pub memo_records_max: usize,
    /// How long a read waits for new records when there are none.
    pub idle_wait: Duration,
    /// How long a record may wait for a missing dependency (key, client,
    /// parent) once every partition has been read to its end, before it is
    /// quarantined. Writers append dependencies first, but a batch's records
    /// in different partitions become visible in any order, so a record may
    /// briefly arrive before what it depends on.
    pub park_grace: Duration,
    /// Most bytes a snapshot keeps of what the projection held when it
    /// began, while applying goes on during the copy; past it the snapshot
    /// is abandoned (applying is never paused for one).
    pub snapshot_journal_bytes_max: usize,
    /// What to do with a projection this directory holds that was built by
    /// another layout or under other rules.
    pub other_rules: OtherRules,
}

/// What opening a projection does with one built by another binary's layout
/// or under other rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherRules {
    /// Drop it and rebuild from the log (a node: its rules are what it
    /// serves by, and the log is the system of record).
    Rebuild,
    /// Refuse to open (a tool pointed at a node's data directory with rules
    /// that are not the node's would otherwise drop the node's projection).
    Refuse,
}

/// The default [`ProjectorOptions::batch_bytes_max`].
pub const BATCH_BYTES_MAX: usize = 1 << 20;
/// The default [`ProjectorOptions::cache_bytes`]: sled's own default.
pub const CACHE_BYTES: u64 = 1 << 30;

impl ProjectorOptions {
    /// How much one read of the log may return.
    fn read_limit(&self) -> ReadLimit {
        ReadLimit {
            records: self.batch_max,
            bytes: self.batch_bytes_max,
        }
    }

    pub fn new(policy: Policy) -> Self {
        ProjectorOptions {
            policy,
            batch_max: 512,
            batch_bytes_max: BATCH_BYTES_MAX,
            cache_bytes: CACHE_BYTES,
            memo_records_max: view::MEMO_RECORDS_MAX,
            idle_wait: Duration::from_millis(200),
            park_grace: Duration::from_secs(5),
            snapshot_journal_bytes_max: snapshot::JOURNAL_BYTES_MAX,
            other_rules: OtherRules::Rebuild,
        }
    }
}

/// The shared state behind a projector and its handles.
struct Shared {
    /// The projection's directory (a snapshot's copy is made beside it).
    dir: std::path::PathBuf,
    tree: sled::Tree,
    memo: view::Memo,
    db: sled::Db,
    /// Next offset to read, per partition, as stored with the state.
    read_next: std::sync::Mutex<Vec<u64>>,
    /// What queries reflect, per partition: every record before this offset
    /// is applied, deduplicated or quarantined. It stops at a parked record,
    /// so consistency tokens and Watch never pass a record whose outcome is
    /// still open.
    applied: watch::Sender<Vec<u64>>,
    /// Next offset to read, per partition, as committed: every record before
    /// it is applied, deduplicated, quarantined or parked. Unlike `applied`
    /// it passes parked records, so a writer waiting for its own records is
    /// not held back by someone else's record waiting for a dependency.
    read: watch::Sender<Vec<u64>>,
    partitions: u32,
    /// The rules' configuration: checks need the trust roots too.
    policy: Policy,
    /// Records waiting for a dependency now.
    parked: std::sync::atomic::AtomicU64,
    /// Parked records applied again, since the process started.
    parked_retries: std::sync::atomic::AtomicU64,
    /// When (this process's clock) a read last found nothing more in the log.
    at_end: std::sync::Mutex<Option<std::time::Instant>>,
    /// Records this process has read from the log (applied, deduplicated,
    /// quarantined or parked).
    records_read: std::sync::atomic::AtomicU64,
    /// Held while a batch commits, and by a snapshot while it begins.
    store: std::sync::Mutex<()>,
    /// While a snapshot is being written: what the keys written since it
    /// began held before.
    copying: snapshot::Copying,
    journal_bytes_max: usize,
    /// Batches committed by this process (counted under `store`).
    commits: std::sync::atomic::AtomicU64,
    /// Spans waiting for the apply of an event (traces): by event id.
    traced: std::sync::Mutex<std::collections::HashMap<baton_core::EventId, tracing::Span>>,
    /// How many are waiting: 0 (always, without traces) skips the lock.
    tracing: std::sync::atomic::AtomicUsize,
    /// The positions of records applied after they were parked, in the
    /// order their batches committed: a watcher that has read past one
    /// still delivers its revocations ([`Handle::late_since`]).
    late: std::sync::Mutex<Late>,
}

/// The most recent late applications, numbered from 0 since the process
/// started. Bounded: a watcher further behind than the ring rescans from
/// its resume point instead.
#[derive(Debug, Default)]
struct Late {
    ring: std::collections::VecDeque<Position>,
    /// The number of the ring's first entry.
    first: u64,
}

/// At most this many late applications are remembered for watchers.
const LATE_MAX: usize = 65_536;

impl Late {
    fn push(&mut self, position: Position, max: usize) {
        if self.ring.len() == max {
            self.ring.pop_front();
            self.first += 1;
        }
        self.ring.push_back(position);
    }

    fn next(&self) -> u64 {
        self.first + self.ring.len() as u64
    }

    fn since(&self, since: u64) -> LateApplied {
        let skip = usize::try_from(since.saturating_sub(self.first)).unwrap_or(usize::MAX);
        LateApplied {
            positions: self.ring.iter().skip(skip).copied().collect(),
            next: self.next(),
            complete: since >= self.first,
        }
    }
}

/// What [`Handle::late_since`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateApplied {
    /// The records applied late since the number asked for, oldest first.
    pub positions: Vec<Position>,
    /// The number to ask with next time.
    pub next: u64,
    /// False: some of them are no longer remembered (the caller was further
    /// behind than the ring holds) and `positions` is incomplete.
    pub complete: bool,
}

/// While held, the apply of its events is traced under its span
/// ([`Handle::trace_apply`]).
pub struct TracedApply {
    shared: Arc<Shared>,
    ids: Vec<baton_core::EventId>,
}

impl std::fmt::Debug for TracedApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedApply")
            .field("events", &self.ids.len())
            .finish()
    }
}

impl Drop for TracedApply {
    fn drop(&mut self) {
        let mut traced = self.shared.traced.lock().expect("traced lock");
        for id in &self.ids {
            if traced.remove(id).is_some() {
                self.shared
                    .tracing
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

/// The span (a child of the span registered for the record's first event)
/// under which to apply `record`, if any.
fn apply_span(shared: &Shared, record: &ReadRecord, item: &apply::Decoded) -> tracing::Span {
    if shared.tracing.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        return tracing::Span::none();
    }
    let Ok(events) = &item.opened else {
        return tracing::Span::none();
    };
    let Some((envelope, _)) = events.first() else {
        return tracing::Span::none();
    };
    let traced = shared.traced.lock().expect("traced lock");
    match traced.get(&envelope.id()) {
        Some(parent) => tracing::info_span!(
            target: "baton::trace",
            parent: parent,
            "apply",
            partition = record.position.partition,
            offset = record.position.offset,
            events = events.len(),
        ),
        None => tracing::Span::none(),
    }
}

/// A projector over one log, storing its projection in a sled database.
pub struct Projector<L: EventLog> {
    log: L,
    shared: Arc<Shared>,
    options: ProjectorOptions,
    /// A restored projection's mark, removed once the projector runs on it
    /// (every start-up check passed): from then on it is a projection like
    /// any other, and a later change of rules rebuilds it.
    restored: Option<PathBuf>,
}

impl<L: EventLog> std::fmt::Debug for Projector<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("partitions", &self.shared.partitions)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle for queries and consistency waits.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("applied", &*self.shared.applied.borrow())
            .finish()
    }
}

impl<L: EventLog> Projector<L> {
    /// Opens (or creates) the projection in `dir` for `log`.
    pub fn open(log: L, dir: &Path, options: ProjectorOptions) -> Result<Self> {
        let restored = restored_under(dir, &options.policy)?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .cache_capacity(options.cache_bytes)
            .open()?;
        let tree = open_layout(&db, &options.policy, options.other_rules)?;
        let partitions = log.partitions();
        // A projection (a restored snapshot) of a log with more partitions
        // is of another log.
        for entry in tree.scan_prefix([b'o']) {
            let (key, _) = entry?;
            let partition = stored::key::parse_offset(&key)
                .ok_or_else(|| Error::Corrupt("offset key".into()))?;
            if partition >= partitions {
                return Err(Error::Invalid {
                    field: "projection",
                    reason: format!(
                        "holds a position in partition {partition}, but the log has {partitions} partitions: it was made from another log"
                    ),
                });
            }
        }
        let applied = (0..partitions)
            .map(|p| {
                Ok(stored::read_u64(
                    tree.get(stored::key::offset(p))?.as_deref(),
                ))
            })
            .collect::<Result<Vec<u64>>>()?;
        let memo = view::Memo::load(&tree, options.memo_records_max)?;
        let parked = Parking::load(&tree)?;
        let published = settled(&applied, parked.positions());
        let shared = Arc::new(Shared {
            parked: std::sync::atomic::AtomicU64::new(parked.len() as u64),
            parked_retries: std::sync::atomic::AtomicU64::new(0),
            at_end: std::sync::Mutex::new(None),
            records_read: std::sync::atomic::AtomicU64::new(0),
            store: std::sync::Mutex::new(()),
            copying: Default::default(),
            journal_bytes_max: options.snapshot_journal_bytes_max,
            commits: std::sync::atomic::AtomicU64::new(0),
            traced: Default::default(),
            tracing: std::sync::atomic::AtomicUsize::new(0),
            late: Default::default(),
            dir: dir.to_path_buf(),
            tree,
            memo,
            db,
            read: watch::Sender::new(applied.clone()),
            read_next: std::sync::Mutex::new(applied),
            applied: watch::Sender::new(published),
            partitions,
            policy: options.policy.clone(),
        });
        Ok(Projector {
            log,
            shared,
            options,
            restored: restored.then(|| dir.join(snapshot::RESTORED)),
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Applies `records` now, on this thread, exactly as `run` applies one
    /// batch read from the log (records must continue from where the
    /// projection is). For tools and benchmarks that feed records directly.
    pub fn apply_records(&self, records: &[ReadRecord]) -> Result<()> {
        let mut parked = Parking::load(&self.shared.tree)?;
        apply_batch(
            &self.shared,
            &self.options.policy,
            records,
            None,
            &mut parked,
            None,
        )
    }

    /// Applies the log from where the projection is up to `until` (the next
    /// offset per partition: records at or past it are not applied), then
    /// returns. For `baton snapshot restore --verify-full`: a projection of
    /// exactly the positions a snapshot reflects, from the log alone.
    pub async fn replay_until(&self, until: &[u64]) -> Result<()> {
        if until.len() != self.shared.partitions as usize {
            return Err(Error::Invalid {
                field: "until",
                reason: format!(
                    "names {} partitions; the log has {}",
                    until.len(),
                    self.shared.partitions
                ),
            });
        }
        let start = self.shared.read_next.lock().expect("offsets lock").clone();
        let mut reader = self.log.reader(&start)?;
        let reached = |shared: &Shared| {
            let read = shared.read_next.lock().expect("offsets lock");
            read.iter().zip(until).all(|(read, until)| read >= until)
        };
        while !reached(&self.shared) {
            let batch = reader
                .next_batch(self.options.read_limit(), self.options.idle_wait)
                .await?;
            if batch.is_empty() {
                let ends = self.log.end_offsets().await?;
                if let Some((p, (end, until))) = ends
                    .iter()
                    .zip(until)
                    .enumerate()
                    .find(|(_, (end, until))| end < until)
                {
                    return Err(Error::Invalid {
                        field: "until",
                        reason: format!(
                            "partition {p} ends at offset {end}, before {until}: not this log's positions"
                        ),
                    });
                }
                continue;
            }
            let wanted: Vec<ReadRecord> = batch
                .into_iter()
                .filter(|r| r.position.offset < until[r.position.partition as usize])
                .collect();
            if !wanted.is_empty() {
                // On this task: a tool's replay, nothing else waits on it.
                self.apply_records(&wanted)?;
            }
        }
        Ok(())
    }

    /// Applies the log until `shutdown` resolves. Returns an error only for a
    /// failure of the log or the store; invalid events are quarantined.
    ///
    /// Two stages, one batch apart: a feeder task reads the next batch and
    /// verifies its signatures (on every core) while this loop applies and
    /// commits the one before it (on one core), so verification and the
    /// store's write path overlap instead of taking turns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        if let Some(marker) = &self.restored {
            std::fs::remove_file(marker)
                .map_err(|e| Error::Snapshot(format!("{}: {e}", marker.display())))?;
        }
        let start = self.shared.read_next.lock().expect("offsets lock").clone();
        tracing::info!(?start, "projector starting");
        let reader = self.log.reader(&start)?;
        let mut parked = Parking::load(&self.shared.tree)?;
        let (verified, mut next_batch) = tokio::sync::mpsc::channel(1);
        let feeder = tokio::spawn(feed(
            reader,
            self.shared.clone(),
            self.options.clone(),
            verified,
        ));
        tokio::pin!(shutdown);
        // A snapshot of the log's end offsets while records are parked, and
        // when it was last taken (see below).
        let mut horizon: Option<(std::time::Instant, Vec<u64>)> = None;
        let mut last_snapshot: Option<std::time::Instant> = None;
        let outcome = loop {
            let prepared = tokio::select! {
                () = &mut shutdown => break Ok(()),
                prepared = next_batch.recv() => prepared,
            };
            let (batch, decoded, short) = match prepared {
                Some(Ok(prepared)) => prepared,
                Some(Err(e)) => break Err(e),
                None => break Err(Error::Task("the log feeder stopped".into())),
            };
            // A short batch: the reader had nothing more to give (the
            // brokers had sent everything they had), so the node was at the
            // log's end as of this read.
            if short {
                *self.shared.at_end.lock().expect("at_end lock") = Some(std::time::Instant::now());
            }
            if batch.is_empty() && parked.is_empty() {
                horizon = None;
                continue;
            }
            // Parked records wait for a dependency. Once everything that was
            // in the log at some instant has been read (and, the feeder being
            // FIFO, applied), a record parked before that instant cannot be
            // completed by anything already in the log: after `park_grace` it
            // is quarantined. A busy log is never "at its end", so the instant
            // is a snapshot of the end offsets (the horizon), not an idle moment.
            if !parked.is_empty()
                && horizon.is_none()
                && last_snapshot.is_none_or(|at| at.elapsed() >= self.options.idle_wait)
            {
                last_snapshot = Some(std::time::Instant::now());
                match self.log.end_offsets().await {
                    Ok(ends) => horizon = Some((std::time::Instant::now(), ends)),
                    Err(e) => tracing::warn!(error = %e, "reading the log's end offsets failed"),
                }
            }
            let reached = horizon.as_ref().is_some_and(|(_, ends)| {
                let read = self.shared.read_next.lock().expect("offsets lock");
                read.len() == ends.len() && read.iter().zip(ends).all(|(r, e)| r >= e)
            });
            let expire = if reached {
                horizon
                    .take()
                    .map(|(taken, _)| (self.options.park_grace, taken))
            } else {
                None
            };
            if batch.is_empty() && expire.is_none() {
                continue;
            }
            let (shared, policy) = (self.shared.clone(), self.options.policy.clone());
            let applied = tokio::task::spawn_blocking(move || {
                apply_batch(&shared, &policy, &batch, Some(decoded), &mut parked, expire)?;
                Ok::<_, Error>(parked)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()));
            parked = match applied {
                Ok(Ok(parked)) => parked,
                Ok(Err(e)) | Err(e) => break Err(e),
            };
        };
        // Closing the channel stops the feeder at its next step. It is not
        // aborted: a verification it started finishes first, so nothing of
        // this projector (the sled database and its lock) outlives `run`.
        drop(next_batch);
        let _ = feeder.await;
        self.shared.db.flush_async().await?;
        tracing::info!(applied = ?*self.shared.applied.borrow(), "projector stopped");
        outcome
    }
}

/// A batch read from the log, decoded, with its signatures verified; and
/// whether the read was short (it stopped for want of records, not at its
/// limit).
type Prepared = (Vec<ReadRecord>, Vec<apply::Decoded>, bool);

/// The projector's first stage: reads batches and verifies them ahead of the
/// apply loop, against the committed projection. A key registered by a batch
/// still being applied is not found here, so such a record's signature is
/// verified again in order by the rules; a verdict never changes an outcome
/// (see [`verify::verify_in_parallel`]). A log that fails to answer (a broker
/// restarting, a leader moving, every broker down for hours) is retried for
/// as long as it fails, backing off to [`READ_RETRY_MAX`]: the node stays
/// up, and its freshness bound (the server's) makes it fail closed
/// meanwhile.
async fn feed<R: LogReader>(
    mut reader: R,
    shared: Arc<Shared>,
    options: ProjectorOptions,
    out: tokio::sync::mpsc::Sender<Result<Prepared>>,
) {
    // Since when reads fail, how many, and when that was last logged.
    let mut failing: Option<(tokio::time::Instant, u64, tokio::time::Instant)> = None;
    let mut pause = READ_RETRY_MIN;
    loop {
        let read = tokio::select! {
            () = out.closed() => return,
            read = reader.next_batch(options.read_limit(), options.idle_wait) => read,
        };
        let batch = match read {
            Ok(batch) => {
                // A read that times out is an empty batch, between errors
                // of one outage: only records say the log is back.
                if !batch.is_empty()
                    && let Some((since, count, _)) = failing.take()
                {
                    tracing::info!(
                        failed_for_s = since.elapsed().as_secs(),
                        failures = count,
                        "reading the log works again"
                    );
                }
                pause = READ_RETRY_MIN;
                batch
            }
            Err(e) => {
                let now = tokio::time::Instant::now();
                let (since, count, logged) = failing.get_or_insert((now, 0, now));
                *count += 1;
                // The first failure, then a line a minute: an outage of
                // hours must not be a line every retry.
                if *count == 1 || logged.elapsed() >= READ_FAILURE_LOG_EVERY {
                    *logged = now;
                    tracing::warn!(
                        error = %e,
                        failing_for_s = since.elapsed().as_secs(),
                        failures = *count,
                        "reading the log failed; retrying for as long as it fails"
                    );
                }
                tokio::select! {
                    () = out.closed() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(READ_RETRY_MAX);
                continue;
            }
        };
        if out.is_closed() {
            return;
        }
        let short = !options.read_limit().reached(&batch);
        let prepared = if batch.is_empty() {
            Ok((batch, Vec::new(), short))
        } else {
            let (shared, policy) = (shared.clone(), options.policy.clone());
            tokio::task::spawn_blocking(move || {
                let view = view::Staged::new(&shared.tree, &shared.memo);
                let decoded = apply::decode_batch(&policy, &view, &batch)?;
                Ok((batch, decoded, short))
            })
            .await
            .unwrap_or_else(|e| Err(Error::Task(e.to_string())))
        };
        let failed = prepared.is_err();
        if out.send(prepared).await.is_err() || failed {
            return;
        }
    }
}

/// The pause after a failed read of the log, doubling up to the most.
const READ_RETRY_MIN: Duration = Duration::from_millis(200);
const READ_RETRY_MAX: Duration = Duration::from_secs(5);
/// How often an outage is logged again while it lasts.
const READ_FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Per partition, the offset up to which every record is settled: the read
/// position, or the first parked record if one comes before it.
fn settled<'a>(read_next: &[u64], parked: impl Iterator<Item = &'a Position>) -> Vec<u64> {
    let mut out = read_next.to_vec();
    for position in parked {
        if let Some(slot) = out.get_mut(position.partition as usize) {
            *slot = (*slot).min(position.offset);
        }
    }
    out
}

/// Applies one batch (`decoded` if the feeder already verified it) and its
/// offsets atomically, then publishes the offsets.
/// `expire` = (grace, instant): everything in the log at that instant has
/// been read, so records parked before it and for longer than the grace can
/// never be completed by anything in the log; they are quarantined.
fn apply_batch(
    shared: &Shared,
    policy: &Policy,
    batch: &[ReadRecord],
    decoded: Option<Vec<apply::Decoded>>,
    parked: &mut Parking,
    expire: Option<(Duration, std::time::Instant)>,
) -> Result<()> {
    let mut staged = view::Staged::new(&shared.tree, &shared.memo);
    let decoded = match decoded {
        Some(decoded) => decoded,
        None => apply::decode_batch(policy, &staged, batch)?,
    };
    let mut decoded = decoded.into_iter();
    let mut next = shared.read_next.lock().expect("offsets lock").clone();
    let mut read_now = 0u64;
    for record in batch {
        let item = decoded.next().expect("one decoded item per record");
        let p = record.position.partition as usize;
        if p >= next.len() || record.position.offset < next[p] {
            // Already applied (a reader may redeliver after a reconnect).
            continue;
        }
        read_now += 1;
        let span = apply_span(shared, record, &item);
        let verified = item.verified.clone();
        let outcome = span.in_scope(|| apply::apply_record(policy, &mut staged, record, item))?;
        if let Outcome::Parked(why) = outcome {
            match parked.full(record.value.len()) {
                Some(full) => {
                    staged.delete(stored::key::position(b'p', record.position));
                    apply::quarantine(&mut staged, record, why.and(full))?;
                }
                None => parked.park(
                    record.position,
                    record.value.clone(),
                    verified,
                    why.missing,
                    std::time::Instant::now(),
                ),
            }
        }
        next[p] = record.position.offset + 1;
        staged.put(
            stored::key::offset(record.position.partition),
            next[p].to_be_bytes().to_vec(),
        );
    }
    // Only the records waiting for what this batch supplied are tried again.
    parked.retry_ready(policy, &mut staged)?;
    if let Some((grace, horizon)) = expire {
        for position in parked.expired(grace, horizon) {
            // Only a record that is still missing its dependency is
            // quarantined; one that applied (or was refused) has its outcome.
            if let Some(Outcome::Parked(missing)) = parked.retry(policy, &mut staged, position)? {
                let value = parked.remove(position).map(|p| p.value).unwrap_or_default();
                staged.delete(stored::key::position(b'p', position));
                let record = ReadRecord {
                    position,
                    key: Vec::new(),
                    value,
                };
                let why =
                    missing.and("still missing after the whole log as of a later moment was read");
                apply::quarantine(&mut staged, &record, why)?;
            }
        }
        // What an expired record supplied when it applied at last.
        parked.retry_ready(policy, &mut staged)?;
    }
    if !staged.is_empty() {
        let _store = shared.store.lock().expect("store lock");
        staged.commit(&shared.copying)?;
        shared
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    shared
        .records_read
        .fetch_add(read_now, std::sync::atomic::Ordering::Relaxed);
    // Committed, and remembered before the offsets move past them: a
    // watcher that sees the new offsets also sees these.
    let late = parked.take_late();
    let late_applied = !late.is_empty();
    if late_applied {
        let mut ring = shared.late.lock().expect("late lock");
        for position in late {
            ring.push(position, LATE_MAX);
        }
    }
    let published = settled(&next, parked.positions());
    shared
        .parked
        .store(parked.len() as u64, std::sync::atomic::Ordering::Relaxed);
    shared
        .parked_retries
        .fetch_add(parked.take_retries(), std::sync::atomic::Ordering::Relaxed);
    *shared.read_next.lock().expect("offsets lock") = next.clone();
    // The settled offsets first: a watcher that sees the new read offsets
    // and then asks for the settled ones sees them settled too (so its
    // resume token passes a record it has just sent).
    shared.applied.send_if_modified(|applied| {
        let changed = *applied != published;
        *applied = published;
        changed
    });
    // A late application is news to watchers even when no offset moved
    // (a record applied at its expiry, in a batch that read nothing).
    shared.read.send_if_modified(|read| {
        let changed = *read != next || late_applied;
        *read = next;
        changed
    });
    Ok(())
}

impl Handle {
    /// Next offset to apply per partition: what answers reflect.
    pub fn applied(&self) -> Vec<u64> {
        self.shared.applied.borrow().clone()
    }

    /// Next offset to read per partition: every record before it is
    /// applied, deduplicated, quarantined or parked.
    pub fn read(&self) -> Vec<u64> {
        self.shared.read.borrow().clone()
    }

    /// The records applied after they were parked, from the `since`th on
    /// (0 the first time; then the previous answer's `next`). Each is in
    /// the projection by the time it is listed, at its own position: a
    /// watcher that has read past that position delivers its revocations
    /// from here (`revocations_at`).
    pub fn late_since(&self, since: u64) -> LateApplied {
        self.shared.late.lock().expect("late lock").since(since)
    }

    /// The number [`Handle::late_since`] would answer next with: a watcher
    /// starting now asks from here.
    pub fn late_next(&self) -> u64 {
        self.shared.late.lock().expect("late lock").next()
    }

    /// The consistency token of what this node has applied.
    pub fn applied_token(&self) -> ConsistencyToken {
        ConsistencyToken::new(self.applied())
    }

    /// Waits until the projection covers `token`, for at most `deadline`.
    pub async fn wait_for(&self, token: &ConsistencyToken, deadline: Duration) -> Result<()> {
        self.wait_on(&self.shared.applied, token, deadline).await
    }

    /// Waits until the projector has read past every position in `token`
    /// (each record applied, deduplicated, quarantined or parked), for at
    /// most `deadline`. A writer waits on this for its own records: records
    /// parked earlier in a partition hold back [`Handle::wait_for`] until
    /// they settle, but not this.
    pub async fn wait_for_read(&self, token: &ConsistencyToken, deadline: Duration) -> Result<()> {
        self.wait_on(&self.shared.read, token, deadline).await
    }

    async fn wait_on(
        &self,
        offsets: &watch::Sender<Vec<u64>>,
        token: &ConsistencyToken,
        deadline: Duration,
    ) -> Result<()> {
        if token.next_offsets().len() > self.shared.partitions as usize {
            return Err(Error::Invalid {
                field: "consistency_token",
                reason: format!(
                    "names {} partitions; the log has {}",
                    token.next_offsets().len(),
                    self.shared.partitions
                ),
            });
        }
        let mut applied = offsets.subscribe();
        let started = tokio::time::Instant::now();
        let covered =
            tokio::time::timeout(deadline, applied.wait_for(|now| token.is_covered_by(now))).await;
        match covered {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::NotYet {
                token: token.to_string(),
                applied: ConsistencyToken::new(offsets.borrow().clone()).to_string(),
                waited_ms: started.elapsed().as_millis(),
            }),
        }
    }

    /// A read view of the committed projection, for running the core rules.
    pub fn view(&self) -> View<'_> {
        View::new(&self.shared.tree, &self.shared.memo)
    }

    /// A receiver that sees every change of the applied positions. Subscribe
    /// before reading the projection, then wait on it, to miss nothing.
    pub fn subscribe_applied(&self) -> watch::Receiver<Vec<u64>> {
        self.shared.applied.subscribe()
    }

    /// Changes when the read offsets move, or a parked record is applied.
    pub fn subscribe_read(&self) -> watch::Receiver<Vec<u64>> {
        self.shared.read.subscribe()
    }

    /// How many partitions the log has.
    pub fn partitions(&self) -> u32 {
        self.shared.partitions
    }

    /// A counter: `applied`, `duplicates` or `quarantined`.
    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(stored::read_u64(
            self.shared.tree.get(stored::key::counter(name))?.as_deref(),
        ))
    }

    /// One counter's counts by label (quarantined records by rule), from
    /// the projection: every label ever counted, in label order.
    pub fn labelled_counter(&self, name: &str) -> Result<Vec<(String, u64)>> {
        let prefix = stored::key::labelled_counter(name, "");
        let mut out = Vec::new();
        for entry in self.shared.tree.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let label = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push((label, stored::read_u64(Some(&value))));
        }
        Ok(out)
    }

    /// Records this process has read from the log (a node started from a
    /// snapshot reads only the log's tail).
    pub fn records_read(&self) -> u64 {
        self.shared
            .records_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Traces the apply of the record holding `ids` (its first event's id)
    /// under `span`, for as long as the guard is held.
    pub fn trace_apply(&self, ids: &[baton_core::EventId], span: tracing::Span) -> TracedApply {
        let mut traced = self.shared.traced.lock().expect("traced lock");
        let mut added = Vec::new();
        for id in ids {
            if traced.insert(*id, span.clone()).is_none() {
                added.push(*id);
            }
        }
        self.shared
            .tracing
            .fetch_add(added.len(), std::sync::atomic::Ordering::SeqCst);
        TracedApply {
            shared: self.shared.clone(),
            ids: added,
        }
    }

    /// Batches this process has committed: equal before and after a scan
    /// of the projection, the scan saw one state.
    pub fn commits(&self) -> u64 {
        self.shared
            .commits
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records waiting for a dependency now.
    pub fn parked(&self) -> u64 {
        self.shared
            .parked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Parked records applied again since the process started: each one
    /// after an event it waits for arrived, at its expiry, or once after a
    /// restart (the store keeps the records, not what they wait for).
    pub fn parked_retries(&self) -> u64 {
        self.shared
            .parked_retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long ago a read of the log last found nothing more to read (None:
    /// not yet since this process started). While the log's end is ahead of
    /// what is applied, this is how far behind the node is in time.
    pub fn since_at_end(&self) -> Option<Duration> {
        self.shared
            .at_end
            .lock()
            .expect("at_end lock")
            .map(|at| at.elapsed())
    }

    /// A digest of the whole projection (state, indexes, offsets, quarantine):
    /// two projections of the same log are equal exactly when this is.
    pub fn state_digest(&self) -> Result<[u8; 32]> {
        Ok(snapshot::parallel_digest(&self.shared.tree)?.0)
    }

    /// Bytes of keys and values the projection holds (what Baton writes,
    /// before the store's own overhead).
    pub fn logical_bytes(&self) -> Result<u64> {
        let mut total = 0u64;
        for entry in self.shared.tree.iter() {
            let (key, value) = entry?;
            total += (key.len() + value.len()) as u64;
        }
        Ok(total)
    }

    /// Bytes the projection's store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.shared.db.size_on_disk()?)
    }
}

/// The name of the projection tree of this binary's layout under `policy`'s
/// rules (a snapshot records it).
pub fn tree_name(policy: &Policy) -> String {
    format!("{}.{}", stored::TREE, policy.fingerprint())
}

/// Whether `dir` holds a projection restored from a snapshot and not opened
/// since; refused when that snapshot was made under other rules than
/// `policy`'s: opening would drop it and rebuild from the log, and a node
/// would come up as if the restore had never happened (on an empty log:
/// ready, and empty).
fn restored_under(dir: &Path, policy: &Policy) -> Result<bool> {
    let marker = dir.join(snapshot::RESTORED);
    let made_under = match std::fs::read_to_string(&marker) {
        Ok(made_under) => made_under,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::Snapshot(format!("{}: {e}", marker.display()))),
    };
    let current = tree_name(policy);
    if made_under != current {
        return Err(Error::Invalid {
            field: "projection",
            reason: format!(
                "was restored from a snapshot made under other rules ({}; this configuration makes {current}): serving it would drop it and rebuild from the log. Restore a snapshot taken from a node with this configuration (trust roots, federation, revocation delegates), or remove {} to rebuild from the log",
                baton_core::echo(&made_under),
                dir.display()
            ),
        });
    }
    Ok(true)
}

/// Opens the projection tree of this layout ([`stored::TREE`]) and of these
/// rules (`policy`'s fingerprint), and drops every other projection tree.
/// Each layout and rule set has its own tree, so a binary of another version
/// (after a rollback, say) never reads or writes this one, and a node whose
/// rules changed (a trust root removed, a federation changed, a new binary's
/// rules) re-derives every verdict from the log — the system of record —
/// rather than keep verdicts the rules it now runs would not reach: two nodes
/// with the same log and rules always hold the same projection.
/// With [`OtherRules::Refuse`], a directory holding another projection is
/// refused instead, naming both.
fn open_layout(db: &sled::Db, policy: &Policy, other_rules: OtherRules) -> Result<sled::Tree> {
    let current = tree_name(policy);
    for name in db.tree_names() {
        // "projection" (the first layout) and "projection.v<N>[.<rules>]".
        let layout = name.as_ref() == b"projection" || name.starts_with(b"projection.v");
        if layout && name.as_ref() != current.as_bytes() {
            if other_rules == OtherRules::Refuse {
                return Err(Error::Invalid {
                    field: "projection",
                    reason: format!(
                        "holds a projection built by another layout or under other rules ({}; these rules make {current}): give the node's own configuration (--config), or --rebuild to drop it and rebuild from the log",
                        String::from_utf8_lossy(&name)
                    ),
                });
            }
            tracing::warn!(
                tree = %String::from_utf8_lossy(&name),
                %current,
                "dropping a projection written with another layout or other rules; rebuilding from the log"
            );
            db.drop_tree(&name)?;
        }
    }
    Ok(db.open_tree(current)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher asks from the number it was last given; past the ring's
    /// bound it is told the list is incomplete (and rescans), never handed
    /// a list with a silent gap.
    #[test]
    fn late_applications_are_listed_once_and_a_gap_is_said() {
        let at = |offset| Position {
            partition: 0,
            offset,
        };
        let mut late = Late::default();
        assert_eq!(late.since(0).positions, []);
        for offset in 0..3 {
            late.push(at(offset), 4);
        }
        let first = late.since(0);
        assert_eq!(
            (first.positions, first.next, first.complete),
            (vec![at(0), at(1), at(2)], 3, true)
        );
        for offset in 3..6 {
            late.push(at(offset), 4);
        }
        let second = late.since(first.next);
        assert_eq!(
            (second.positions, second.next, second.complete),
            (vec![at(3), at(4), at(5)], 6, true)
        );
        // The ring holds 2..6 now: a watcher still at 1 missed one.
        let behind = late.since(1);
        assert!(!behind.complete);
        assert_eq!((behind.positions.len(), behind.next), (4, 6));
        assert_eq!(late.since(6).positions, []);
    }
}
