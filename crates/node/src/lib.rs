//! A Baton node without a wire: start-up and catch-up over the event log,
//! Append with claims, Check and Introspect, Watch, provenance, the node's
//! state and snapshots. Its API takes and returns domain types (core events,
//! token references, log positions, [`Error`]); `baton-server` puts gRPC and
//! HTTP in front of it, and a test can drive it in process, without sockets.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_access::{grants::AccessHandle, jwt::JwtIssuers};
use baton_core::Policy;
use baton_log::{ConsistencyToken, EventLog};
use baton_projector::{Handle, Projector, ProjectorOptions};
use tokio::sync::{Semaphore, watch};

pub mod append;
pub mod check;
mod error;
pub mod feed;
pub mod freshness;
pub mod provenance;
pub mod state;

use append::Claims;
pub use append::{AppendOptions, Appended, AppendedEvent, Batch, CONTROL_KEY};
pub use check::{
    CheckAnswer, CheckQuery, Details, IntrospectQuery, Introspection, Presented, Verdict, Walk,
};
pub use error::{Error, Result};
pub use feed::{MayWatch, WatchItem, WatchRequest, WatchStream};
pub use state::{NodeState, Snapshot, SnapshotSlot, Spool};

/// Every bound a node enforces. Defaults suit a small node; all are configurable.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest gRPC message accepted.
    pub message_bytes_max: usize,
    /// Most events in one Append.
    pub batch_events_max: usize,
    /// Most checks in one CheckBatch.
    pub check_batch_max: usize,
    /// Most open server streams (Watch, GetDescendants, ListEvents) at once.
    pub streams_max: usize,
    /// Most connections open at once; past it, new ones wait in the
    /// listener's backlog until one closes.
    pub connections_max: usize,
    /// How long a connection may stay silent (no bytes from the peer, not
    /// even an answer to the server's keepalive pings) before it is closed.
    pub connection_idle_max: Duration,
    /// Most TLS connections open at once whose peer named no principal (no
    /// certificate, or one refused): they leave `connections_max` once the
    /// handshake says so, and past this bound are closed.
    pub anonymous_connections_max: usize,
    /// How long such a connection may stay silent.
    pub anonymous_idle_max: Duration,
    /// Most connections open at once from one remote address; past it, new
    /// ones are closed at once.
    pub connections_per_peer_max: usize,
    /// Most requests in flight on one connection.
    pub requests_per_connection_max: usize,
    /// Deadline for any unary request.
    pub request_timeout: Duration,
    /// Longest wait for a consistency token before answering DEADLINE_EXCEEDED.
    pub consistency_wait_max: Duration,
    /// How long Append waits for this node to apply what it appended.
    pub apply_wait_max: Duration,
    /// Most tokens GetDescendants returns.
    pub descendants_max: u32,
    /// Largest ListEvents page.
    pub page_size_max: u32,
    /// The freshness bound (see [`freshness`]): past it without a confirmed
    /// end of the log, or knowing of records it has not applied for longer,
    /// the node answers only what no record it missed could change.
    pub max_staleness: Duration,
    /// How often the node confirms the log's end.
    pub confirm_interval: Duration,
    /// How long a record may wait for a missing dependency once the log as
    /// of a later moment has been read, before it is quarantined (see
    /// `ProjectorOptions::park_grace`).
    pub park_grace: Duration,
    /// The projection store's page cache, in bytes (sled's cache: one of the
    /// bounds on a node's memory; sled's page table and the allocator's
    /// overhead still grow with the store).
    pub store_cache_bytes: u64,
    /// Most decoded records (tokens, token references, clients, keys, key
    /// trust) the projector keeps in memory per kind.
    pub records_cached_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes_max: 4 * 1024 * 1024,
            batch_events_max: baton_core::limits::BATCH_EVENTS_MAX,
            check_batch_max: 1000,
            streams_max: 256,
            connections_max: 1024,
            connection_idle_max: Duration::from_secs(60),
            anonymous_connections_max: 64,
            anonymous_idle_max: Duration::from_secs(10),
            connections_per_peer_max: 256,
            requests_per_connection_max: 256,
            request_timeout: Duration::from_secs(30),
            consistency_wait_max: Duration::from_secs(10),
            apply_wait_max: Duration::from_secs(5),
            descendants_max: 10_000,
            page_size_max: 1000,
            max_staleness: Duration::from_secs(5),
            confirm_interval: Duration::from_secs(1),
            park_grace: Duration::from_secs(5),
            store_cache_bytes: baton_projector::CACHE_BYTES,
            records_cached_max: baton_projector::MEMO_RECORDS_MAX,
        }
    }
}

/// What a node records as things happen, for whoever exports it (the
/// server's Prometheus metrics). Every method has a default that records
/// nothing.
pub trait Observe: Send + Sync {
    /// `events` events of one Append ended with `outcome` under `rule`
    /// ([`Error::append_outcome`]; `accepted` and `duplicate` otherwise).
    fn appended(&self, _outcome: &'static str, _rule: &'static str, _events: usize) {}
    /// A check was answered.
    fn checked(&self, _verdict: Verdict) {}
    /// A Watch stream opened (`true`) or closed (`false`).
    fn watching(&self, _open: bool) {}
    /// An entry went out on a Watch stream.
    fn watch_sent(&self, _checkpoint: bool) {}
    /// The log answered an append after `took`; `ok` when it acknowledged.
    fn log_appended(&self, _took: Duration, _ok: bool) {}
}

/// How to run a node (the wire's own settings stay in the server).
#[derive(Clone)]
pub struct NodeOptions {
    pub policy: Policy,
    pub limits: Limits,
    /// Where the projection lives (snapshots are spooled beside it).
    pub projection_dir: PathBuf,
    /// The grants now (streams check again that their caller may go on).
    pub access: AccessHandle,
    /// Issuers whose JWTs a check verifies for a token the ledger knows
    /// only by `jti`.
    pub jwt_issuers: JwtIssuers,
    /// What the node records; None: nothing.
    pub observe: Option<Arc<dyn Observe>>,
    /// Make spans for traces (see [`TRACE_TARGET`]).
    pub traces: bool,
}

impl NodeOptions {
    /// A node with default limits and no grants, issuers or observer.
    pub fn new(policy: Policy, projection_dir: PathBuf) -> Self {
        NodeOptions {
            policy,
            limits: Limits::default(),
            projection_dir,
            access: Default::default(),
            jwt_issuers: Default::default(),
            observe: None,
            traces: false,
        }
    }
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .field("projection_dir", &self.projection_dir)
            .field("observed", &self.observe.is_some())
            .field("traces", &self.traces)
            .finish_non_exhaustive()
    }
}

/// The target of every span Baton makes for traces (what the exporter's
/// filter lets through).
pub const TRACE_TARGET: &str = "baton::trace";

/// A span for `name` (`append` or `log.append`) under the current one when
/// traces are on; a disabled span (no cost) otherwise.
pub(crate) fn child_span(on: bool, name: &'static str) -> tracing::Span {
    if !on {
        return tracing::Span::none();
    }
    match name {
        "append" => tracing::info_span!(target: TRACE_TARGET, "append"),
        _ => tracing::info_span!(target: TRACE_TARGET, "log.append"),
    }
}

/// A running node: what every surface over it shares.
pub struct Node<L> {
    pub log: L,
    pub handle: Handle,
    pub policy: Policy,
    pub limits: Limits,
    streams: Arc<Semaphore>,
    /// Becomes true when the node stops (on its own or asked to).
    pub shutdown: watch::Receiver<bool>,
    /// Client ids and token references being appended right now: two
    /// concurrent Appends must not both claim one (see [`Claims`]).
    claims: Claims,
    /// The log's end when the node started (unset until the log first
    /// answers). Until the projection covers it, every read and write waits
    /// for it, as if the caller had passed it as a consistency token: a node
    /// that is (re)building its projection must not answer ACTIVE for a token
    /// whose revocation it has not read yet.
    startup: std::sync::OnceLock<ConsistencyToken>,
    caught_up: AtomicBool,
    /// How fresh the node's view of the log is (see [`freshness`]).
    pub freshness: freshness::Freshness,
    /// The grants now.
    pub access: AccessHandle,
    pub jwt_issuers: JwtIssuers,
    observe: Option<Arc<dyn Observe>>,
    /// When the node started.
    pub started: Instant,
    /// Where the projection lives (snapshots are spooled beside it).
    pub projection_dir: PathBuf,
    /// The log's end offsets as last read for a status or a scrape.
    log_end: tokio::sync::Mutex<Option<state::LogEnd>>,
    /// One snapshot or digest at a time: each pauses applying or scans all.
    one_at_a_time: Arc<Semaphore>,
    /// Why the node stopped on its own, if it did.
    fatal: std::sync::OnceLock<String>,
    /// Spans for traces are made.
    pub traces: bool,
}

impl<L> std::fmt::Debug for Node<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("projection_dir", &self.projection_dir)
            .field("caught_up", &self.caught_up())
            .field("applied", &self.handle.applied())
            .finish_non_exhaustive()
    }
}

/// A node started by [`Node::start`]: the node, whether it serves now, and
/// how to stop it and learn how it ended.
pub struct Started<L> {
    pub node: Arc<Node<L>>,
    /// True exactly while the node has caught up with the log and is fresh
    /// (what gRPC health and `/healthz` report).
    pub serving: watch::Receiver<bool>,
    stop: Arc<watch::Sender<bool>>,
    projector: tokio::task::JoinHandle<
        std::result::Result<
            std::result::Result<(), baton_projector::Error>,
            tokio::task::JoinError,
        >,
    >,
}

impl<L> std::fmt::Debug for Started<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("node", &self.node)
            .field("serving", &*self.serving.borrow())
            .finish_non_exhaustive()
    }
}

impl<L> Started<L> {
    /// Asks the node to stop: the projector, streams and background tasks end.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// A handle that stops the node when sent `true`.
    pub fn stopper(&self) -> Arc<watch::Sender<bool>> {
        self.stop.clone()
    }

    /// Stops the node and returns how it ended: an error when its projector
    /// failed or it stopped on its own.
    pub async fn finish(self) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = self.stop.send(true);
        let projected = self.projector.await?;
        if let Err(e) = projected? {
            tracing::error!(error = %e, "the projector failed; the node stopped");
            return Err(e.into());
        }
        if let Some(reason) = self.node.fatal.get() {
            return Err(reason.clone().into());
        }
        Ok(())
    }
}

/// The projector a node runs under `policy` and `limits`: `baton project`
/// and snapshot restore build theirs with this too, so that a projection
/// they make is the one the node keeps.
pub fn projector_options(policy: Policy, limits: &Limits) -> ProjectorOptions {
    ProjectorOptions {
        park_grace: limits.park_grace,
        cache_bytes: limits.store_cache_bytes,
        memo_records_max: limits.records_cached_max,
        ..ProjectorOptions::new(policy)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<L: EventLog> Node<L> {
    /// Opens the projection, reads the log's end once, and starts the
    /// projector, the confirmations of the log's end, the freshness watch
    /// and (when behind) the catch-up. A node that cannot reach the log
    /// starts anyway (not serving), answers what its projection can answer
    /// safely, and keeps trying (see [`Node::consistent`]).
    pub async fn start(
        options: NodeOptions,
        log: L,
    ) -> std::result::Result<Started<L>, Box<dyn std::error::Error + Send + Sync>> {
        // Every answer carries a consistency token, which names each
        // partition: a log with more than a token may name is refused at
        // start, not by every Append after its write.
        if log.partitions() as usize > baton_log::PARTITIONS_MAX {
            return Err(format!(
                "log: has {} partitions, more than the {} a consistency token may name",
                log.partitions(),
                baton_log::PARTITIONS_MAX
            )
            .into());
        }
        state::remove_stale_spools(&options.projection_dir);
        let projector = Projector::open(
            log.clone(),
            &options.projection_dir,
            projector_options(options.policy.clone(), &options.limits),
        )?;
        let handle = projector.handle();
        let startup = std::sync::OnceLock::new();
        let freshness = freshness::Freshness::new(options.limits.max_staleness);
        let asked = (Instant::now(), now_ms());
        match log.end_offsets().await {
            Ok(ends) => {
                ahead_of_the_log(&handle.read(), &ends)?;
                freshness.confirm(asked.0, asked.1, ConsistencyToken::new(ends.clone()));
                let _ = startup.set(ConsistencyToken::new(ends));
            }
            Err(e) => tracing::warn!(
                error = %e,
                applied = %handle.applied_token(),
                "the log is unreachable: NOT_SERVING; answering from the projection only what no later event can change (REVOKED, EXPIRED, AUDIENCE_MISMATCH)"
            ),
        }
        let caught_up = startup
            .get()
            .is_some_and(|s: &ConsistencyToken| s.is_covered_by(&handle.applied()));
        let (stop, stopping) = watch::channel(false);
        let stop = Arc::new(stop);
        let mut for_projector = stopping.clone();
        let projector_task = tokio::spawn(projector.run(async move {
            let _ = for_projector.wait_for(|stop| *stop).await;
        }));
        // A node whose projector has stopped would answer from stale state:
        // when the projector ends for any reason, the node stops too.
        let projector_task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let result = projector_task.await;
                let _ = stop.send(true);
                result
            }
        });
        let node = Arc::new(Node {
            log,
            handle,
            policy: options.policy,
            limits: options.limits.clone(),
            streams: Arc::new(Semaphore::new(options.limits.streams_max)),
            shutdown: stopping.clone(),
            claims: Claims::default(),
            startup,
            caught_up: AtomicBool::new(caught_up),
            freshness,
            access: options.access,
            jwt_issuers: options.jwt_issuers,
            observe: options.observe,
            started: Instant::now(),
            projection_dir: options.projection_dir,
            log_end: Default::default(),
            one_at_a_time: Arc::new(Semaphore::new(1)),
            fatal: Default::default(),
            traces: options.traces,
        });
        // Before the first request: a node that starts caught up and fresh
        // serves at once.
        let serving_now = caught_up
            && node
                .freshness
                .view(&node.handle.read(), Instant::now())
                .fresh;
        let (serving_tx, serving) = watch::channel(serving_now);
        tokio::spawn(confirm_ends(node.clone(), stopping.clone()));
        tokio::spawn(watch_freshness(node.clone(), serving_tx, stopping.clone()));
        if !caught_up {
            tokio::spawn(catch_up(node.clone(), stopping, stop.clone()));
        }
        Ok(Started {
            node,
            serving,
            stop,
            projector: projector_task,
        })
    }
}

impl<L> Node<L> {
    /// Whether the node has read the log as it was when it started.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Whether the node serves: caught up and fresh now.
    pub fn serving(&self) -> bool {
        self.caught_up() && self.freshness.is_fresh(Instant::now())
    }

    /// Waits until the projection covers `token` (empty: no wait) and the
    /// log as it was when the node started.
    ///
    /// Covers = has *read* past every position (`Handle::wait_for_read`):
    /// a record parked there waits for something the log does not hold up to
    /// those positions (whatever it holds there has been read, and supplies
    /// what it names in the same commit), so the answer is the ledger as of
    /// the token's prefix, and someone else's parked record does not hold
    /// a reader back for its park grace any more than it holds back a writer.
    pub async fn consistent(&self, token: &str) -> Result<()> {
        let caught_up = self.caught_up();
        if token.is_empty() && caught_up {
            return Ok(());
        }
        let mut wanted = if token.is_empty() {
            ConsistencyToken::default()
        } else {
            ConsistencyToken::parse(token)?
        };
        if !caught_up {
            let Some(startup) = self.startup.get() else {
                return Err(Error::LogUnreachable(format!(
                    "this node has not reached the log since it started; its projection is as of {}: only REVOKED, EXPIRED and AUDIENCE_MISMATCH are answered until it has",
                    self.handle.applied_token()
                )));
            };
            wanted.merge(startup);
        }
        self.handle
            .wait_for_read(&wanted, self.limits.consistency_wait_max)
            .await?;
        Ok(())
    }

    /// [`Node::consistent`], and then [`Node::fresh`].
    pub async fn vouched(&self, token: &str) -> Result<()> {
        self.consistent(token).await?;
        self.fresh()
    }

    /// Whether the node may vouch for the log now: an answer that depends
    /// on the log not holding something (ACTIVE, UNKNOWN) is given only
    /// while its view is within the freshness bound. Otherwise the error
    /// every check surface turns into "only what stays true" (REVOKED,
    /// EXPIRED, AUDIENCE_MISMATCH) and UNAVAILABLE for the rest.
    pub fn fresh(&self) -> Result<()> {
        if self.freshness.is_fresh(Instant::now()) {
            return Ok(());
        }
        // The last look may predate what the projection has read since:
        // look again.
        let view = self.freshness.view(&self.handle.read(), Instant::now());
        if view.fresh {
            return Ok(());
        }
        Err(Error::LogUnreachable(stale(
            &view,
            self.freshness.max_staleness(),
        )))
    }

    /// A place among the node's open streams (`streams_max`), held while
    /// the stream runs.
    pub fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy(self.limits.streams_max))
    }

    /// What the node records, if anything.
    pub fn observe(&self) -> Option<&dyn Observe> {
        self.observe.as_deref()
    }
}

/// Why a node that is not fresh cannot vouch for the log.
pub fn stale(view: &freshness::View, bound: Duration) -> String {
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let age = match view.age {
        Some(age) => format!("its view of the log is {} old", secs(age)),
        None => "it has not read an end of the log it confirmed".to_owned(),
    };
    let confirmed = match view.confirmed_age {
        Some(age) => format!("the log's end last confirmed {} ago", secs(age)),
        None => "the log's end never confirmed".to_owned(),
    };
    format!(
        "this node's view of the log is stale: {age} (bound: max_staleness {}; {confirmed}; records known and not read for {}); only REVOKED, EXPIRED and AUDIENCE_MISMATCH are answered until it is fresh",
        secs(bound),
        secs(view.behind)
    )
}

/// The log's end offsets, retried until the log answers (backing off up to
/// 5 s) or the node stops.
async fn startup_offsets<L: EventLog>(
    log: &L,
    stopping: &mut watch::Receiver<bool>,
) -> Option<Vec<u64>> {
    let mut pause = Duration::from_millis(500);
    loop {
        match log.end_offsets().await {
            Ok(ends) => return Some(ends),
            Err(e) => tracing::warn!(error = %e, "reading the log's end offsets failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Until the projection has read the log as it was at start (reaching the
/// log first if start-up could not): requests meanwhile wait for it (see
/// [`Node::consistent`]). A projection ahead of the log stops the node.
async fn catch_up<L: EventLog>(
    node: Arc<Node<L>>,
    mut stopping: watch::Receiver<bool>,
    stop: Arc<watch::Sender<bool>>,
) {
    if node.startup.get().is_none() {
        let Some(ends) = startup_offsets(&node.log, &mut stopping).await else {
            return;
        };
        if let Err(e) = ahead_of_the_log(&node.handle.read(), &ends) {
            tracing::error!(error = %e, "stopping");
            let _ = node.fatal.set(e);
            let _ = stop.send(true);
            return;
        }
        let _ = node.startup.set(ConsistencyToken::new(ends));
        tracing::info!(applied = %node.handle.applied_token(), "reached the log");
    }
    let startup = node.startup.get().expect("set above");
    tracing::info!(%startup, "catching up with the log");
    // No deadline of its own: catching up takes as long as the log is long.
    let progress = node
        .handle
        .wait_for_read(startup, Duration::from_secs(365 * 24 * 3600));
    let caught_up = tokio::select! {
        caught_up = progress => caught_up.is_ok(),
        _ = stopping.wait_for(|stop| *stop) => false,
    };
    if caught_up {
        // Serving follows at the next look (`watch_freshness`).
        node.caught_up.store(true, Ordering::Release);
        tracing::info!("caught up with the log");
    }
}

/// Confirms the log's end every `confirm_interval` (see [`freshness`]),
/// whether or not records arrive, until the node stops. One request at a
/// time: one that fails confirms nothing, and one that hangs (a cut link:
/// the log's client gives up only after its own timeouts) holds the next
/// back, so the confirmation ages and the node turns not fresh by itself.
async fn confirm_ends<L: EventLog>(node: Arc<Node<L>>, mut stopping: watch::Receiver<bool>) {
    let every = node.limits.confirm_interval;
    let mut failing_logged: Option<Instant> = None;
    loop {
        let asked = (Instant::now(), now_ms());
        let answered = tokio::select! {
            answered = node.log.end_offsets() => answered,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        match answered {
            Ok(ends) => {
                node.freshness
                    .confirm(asked.0, asked.1, ConsistencyToken::new(ends));
                if failing_logged.take().is_some() {
                    tracing::info!("the log's end is confirmed again");
                }
            }
            Err(e) => {
                // One line when it starts failing, then at most a minute apart.
                if failing_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    failing_logged = Some(Instant::now());
                    tracing::warn!(error = %e, "confirming the log's end failed");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until((asked.0 + every).into()) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// How often a node looks at its freshness when nothing is applied.
const FRESHNESS_LOOK_EVERY: Duration = Duration::from_millis(100);

/// Looks at the node's freshness whenever it applies and at least every
/// [`FRESHNESS_LOOK_EVERY`]: `serving` is true exactly while the node has
/// caught up with the log and is fresh; each change is logged.
async fn watch_freshness<L>(
    node: Arc<Node<L>>,
    serving: watch::Sender<bool>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut applied = node.handle.subscribe_applied();
    loop {
        tokio::select! {
            () = tokio::time::sleep(FRESHNESS_LOOK_EVERY) => {}
            _ = applied.changed() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        let view = node.freshness.view(&node.handle.read(), Instant::now());
        let now = node.caught_up() && view.fresh;
        if now != *serving.borrow() {
            serving.send_replace(now);
            if now {
                tracing::info!("caught up with the log and fresh: SERVING");
            } else if node.caught_up() {
                tracing::warn!(
                    reason = %stale(&view, node.limits.max_staleness),
                    "not fresh: NOT_SERVING"
                );
            }
        }
    }
}

/// Refuses a projection that has read past the log's end: it was made from
/// another log (a snapshot of another topic or cluster), and answering from
/// it would be answering for events this log never held.
fn ahead_of_the_log(read: &[u64], ends: &[u64]) -> std::result::Result<(), String> {
    match read
        .iter()
        .zip(ends)
        .enumerate()
        .find(|(_, (read, end))| read > end)
    {
        Some((partition, (read, end))) => Err(format!(
            "projection: has read partition {partition} up to offset {read}, but the log ends at {end}: it was made from another log (a snapshot of another topic or cluster?); restore a snapshot of this log, or start with an empty data directory"
        )),
        None => Ok(()),
    }
}
