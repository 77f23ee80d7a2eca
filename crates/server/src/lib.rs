//! Baton's gRPC server: `LedgerService` (writes), `RevocationService` (checks
//! and watch), `ProvenanceService` (chains, history, export), plus standard
//! health and reflection, over a projector that follows the event log.
//!
//! Callers are identified by their TLS client certificate (`tls`) and
//! authorized by role in a tower layer in front of every service (`auth`);
//! no message carries an identity.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_core::Policy;
use baton_log::{ConsistencyToken, EventLog};
use baton_projector::{Handle, Projector, ProjectorOptions};
use baton_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use baton_access::{identity, jwt, routes};

mod admin;
pub mod auth;
pub mod bridge;
mod deadline;
mod error;
mod ext_authz;
pub mod freshness;
pub mod http;
mod ledger;
mod listener;
pub mod metrics;
mod provenance;
mod revocation;
mod routes_served;
pub mod tls;
pub mod trace;

pub use error::{Error, Result, rule_code};
pub use listener::bind_unix;

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
        }
    }
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub policy: Policy,
    pub limits: Limits,
    /// Where the projection lives.
    pub projection_dir: PathBuf,
    /// TLS and client certificates; None: plaintext.
    pub tls: Option<tls::Tls>,
    /// On plaintext, every caller is admin (the operator's choice:
    /// `loopback_admin`, `insecure`); off, a plaintext caller is nobody, and
    /// local callers use the Unix socket.
    pub plaintext_admin: bool,
    /// Roles by principal (used with `tls`); replaceable while serving.
    pub access: auth::AccessHandle,
    /// What the gateway bridges (ext_authz, forward-auth) map requests to.
    pub resources: bridge::Resources,
    /// The gateway in front of forward-auth: which headers carry the
    /// request it asks about.
    pub gateway: bridge::Gateway,
    /// The key RFC 7009 revocations are signed with; None: the endpoint
    /// answers that it is not configured.
    pub revocation_delegate: Option<http::RevocationDelegate>,
    /// Issuers whose JWTs a bridge verifies to answer for a token the
    /// ledger knows only by `jti`.
    pub jwt_issuers: jwt::JwtIssuers,
    /// Make spans for traces (`trace`): on when the binary exports them.
    pub traces: bool,
}

impl ServerOptions {
    /// A plaintext node whose every caller is admin (a test's node, an
    /// embedded one), with default limits and nothing else configured.
    pub fn new(policy: Policy, projection_dir: PathBuf) -> Self {
        ServerOptions {
            policy,
            limits: Limits::default(),
            projection_dir,
            tls: None,
            plaintext_admin: true,
            access: Default::default(),
            resources: Default::default(),
            gateway: Default::default(),
            revocation_delegate: None,
            jwt_issuers: Default::default(),
            traces: false,
        }
    }
}

/// What every service shares.
pub(crate) struct Node<L> {
    pub log: L,
    pub handle: Handle,
    pub policy: Policy,
    pub limits: Limits,
    pub streams: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    /// Client ids and token references being appended right now: two
    /// concurrent Appends must not both claim one (see `ledger::Claims`).
    pub claims: ledger::Claims,
    /// The log's end when the node started (unset until the log first
    /// answers). Until the projection covers it, every read and write waits
    /// for it, as if the caller had passed it as a consistency token: a node
    /// that is (re)building its projection must not answer ACTIVE for a token
    /// whose revocation it has not read yet.
    pub startup: std::sync::OnceLock<ConsistencyToken>,
    pub caught_up: std::sync::atomic::AtomicBool,
    /// How fresh the node's view of the log is (see [`freshness`]).
    pub freshness: freshness::Freshness,
    /// The grants now (streams check again that their caller may go on).
    pub access: auth::AccessHandle,
    pub jwt_issuers: jwt::JwtIssuers,
    /// What the node records for `/metrics`; None: no metrics listener,
    /// nothing recorded.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// When the node started.
    pub started: std::time::Instant,
    /// Where the projection lives (snapshots are spooled beside it).
    pub projection_dir: PathBuf,
    /// The log's end offsets as last read for a status or a scrape.
    pub log_end: tokio::sync::Mutex<Option<LogEnd>>,
    /// Why the node stopped on its own, if it did: it exits with an error.
    pub fatal: std::sync::OnceLock<String>,
    /// Spans for traces are made (`trace`).
    pub traces: bool,
}

/// The log's end offsets as read at an instant, or why they could not be.
pub(crate) type LogEnd = (std::time::Instant, Result<Vec<u64>, String>);

impl<L> Node<L> {
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
        use std::sync::atomic::Ordering;
        let caught_up = self.caught_up.load(Ordering::Acquire);
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
        if self.freshness.is_fresh(std::time::Instant::now()) {
            return Ok(());
        }
        // The last look may predate what the projection has read since:
        // look again.
        let view = self
            .freshness
            .view(&self.handle.read(), std::time::Instant::now());
        if view.fresh {
            return Ok(());
        }
        Err(Error::LogUnreachable(stale(
            &view,
            self.freshness.max_staleness(),
        )))
    }

    pub fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy(self.limits.streams_max))
    }
}

/// Why a node that is not fresh cannot vouch for the log.
fn stale(view: &freshness::View, bound: Duration) -> String {
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

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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

/// Confirms the log's end every `confirm_interval` (see [`freshness`]),
/// whether or not records arrive, until the node stops. One request at a
/// time: one that fails confirms nothing, and one that hangs (a cut link:
/// the log's client gives up only after its own timeouts) holds the next
/// back, so the confirmation ages and the node turns not fresh by itself.
async fn confirm_ends<L: EventLog>(node: Arc<Node<L>>, mut stopping: watch::Receiver<bool>) {
    let every = node.limits.confirm_interval;
    let mut failing_logged: Option<std::time::Instant> = None;
    loop {
        let asked = (std::time::Instant::now(), now_ms());
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
                    failing_logged = Some(std::time::Instant::now());
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
/// [`FRESHNESS_LOOK_EVERY`]: gRPC health is SERVING exactly while the node
/// has caught up with the log and is fresh; each change is logged.
async fn watch_freshness<L: EventLog>(
    node: Arc<Node<L>>,
    health: tonic_health::server::HealthReporter,
    mut serving: bool,
    mut stopping: watch::Receiver<bool>,
) {
    let mut applied = node.handle.subscribe_applied();
    loop {
        tokio::select! {
            () = tokio::time::sleep(FRESHNESS_LOOK_EVERY) => {}
            _ = applied.changed() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        let view = node
            .freshness
            .view(&node.handle.read(), std::time::Instant::now());
        let caught_up = node.caught_up.load(std::sync::atomic::Ordering::Acquire);
        if caught_up && view.fresh != serving {
            serving = view.fresh;
            set_health(&health, serving).await;
            if serving {
                tracing::info!("caught up with the log and fresh: SERVING");
            } else {
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
fn ahead_of_the_log(read: &[u64], ends: &[u64]) -> Result<(), String> {
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

/// Marks the node's services (those the route table reports health for)
/// SERVING or NOT_SERVING.
async fn set_health(health: &tonic_health::server::HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for service in routes::health_services() {
        health.set_service_status(service, status).await;
    }
    health.set_service_status("", status).await;
}

/// How often the server pings an HTTP/2 connection, and how long it waits for
/// the answer before closing it.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a node on `listener` until `shutdown` resolves: the projector over
/// `log` and the gRPC services. Returns once both have stopped.
pub async fn run<L: EventLog>(
    options: ServerOptions,
    log: L,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    run_with(options, log, Listeners::grpc(listener), shutdown).await
}

/// Where a node listens.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC (the node's TLS and roles apply).
    pub grpc: TcpListener,
    /// gRPC for local callers too, each named by its user id
    /// ([`bind_unix`]; the `uid` grants apply).
    pub unix: Option<tokio::net::UnixListener>,
    /// The HTTP bridges (`http`), on the same TLS and roles.
    pub http: Option<TcpListener>,
    /// Prometheus `/metrics`, plain HTTP (see [`metrics::serve`]); without
    /// it, the node records no metrics.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// gRPC only.
    pub fn grpc(grpc: TcpListener) -> Self {
        Listeners {
            grpc,
            unix: None,
            http: None,
            metrics: None,
        }
    }
}

/// A node running in this process (see [`spawn`]).
#[derive(Debug)]
pub struct Spawned {
    /// Where it listens.
    pub address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
}

/// Runs a node on `listener` in a task of this process (an embedded node,
/// a test's node) until [`Spawned::stop`].
pub fn spawn<L: EventLog>(
    options: ServerOptions,
    log: L,
    listener: TcpListener,
) -> std::io::Result<Spawned> {
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(options, log, listener, async move {
        let _ = stopped.await;
    }));
    Ok(Spawned {
        address,
        stop,
        task,
    })
}

impl Spawned {
    /// Stops the node (a graceful shutdown) and returns how it ended.
    pub async fn stop(self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| format!("the node's task: {e}"))?
    }
}

/// The projector a node runs under `policy` and `limits`: `baton project`
/// and snapshot restore build theirs with this too, so that a projection
/// they make is the one the node keeps.
pub fn projector_options(policy: baton_core::Policy, limits: &Limits) -> ProjectorOptions {
    ProjectorOptions {
        park_grace: limits.park_grace,
        ..ProjectorOptions::new(policy)
    }
}

/// [`run`], with the HTTP bridges and `/metrics` on their listeners when given.
pub async fn run_with<L: EventLog>(
    options: ServerOptions,
    log: L,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Listeners {
        grpc: listener,
        unix,
        http,
        metrics: metrics_listener,
    } = listeners;
    let metrics = metrics_listener
        .is_some()
        .then(|| Arc::new(metrics::Metrics::new(L::KIND)));
    // Every answer carries a consistency token, which names each partition:
    // a log with more than a token may name is refused at start, not by
    // every Append after its write.
    if log.partitions() as usize > baton_log::PARTITIONS_MAX {
        return Err(format!(
            "log: has {} partitions, more than the {} a consistency token may name",
            log.partitions(),
            baton_log::PARTITIONS_MAX
        )
        .into());
    }
    admin::remove_stale_spools(&options.projection_dir);
    let projector = Projector::open(
        log.clone(),
        &options.projection_dir,
        projector_options(options.policy.clone(), &options.limits),
    )?;
    let handle = projector.handle();
    // One try at the log's end; a node that cannot reach the log starts
    // anyway (NOT_SERVING), answers what its projection can answer safely,
    // and keeps trying (see `Node::consistent`).
    let startup = std::sync::OnceLock::new();
    let freshness = freshness::Freshness::new(options.limits.max_staleness);
    let asked = (std::time::Instant::now(), now_ms());
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
    // A node whose projector has stopped would answer from stale state: when
    // the projector ends for any reason, the node stops serving too.
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
        policy: options.policy.clone(),
        limits: options.limits.clone(),
        streams: Arc::new(Semaphore::new(options.limits.streams_max)),
        shutdown: stopping.clone(),
        claims: ledger::Claims::default(),
        startup,
        caught_up: std::sync::atomic::AtomicBool::new(caught_up),
        freshness,
        access: options.access.clone(),
        jwt_issuers: options.jwt_issuers.clone(),
        metrics: metrics.clone(),
        started: std::time::Instant::now(),
        projection_dir: options.projection_dir.clone(),
        log_end: Default::default(),
        fatal: Default::default(),
        traces: options.traces,
    });
    let address: SocketAddr = listener.local_addr()?;
    let limits = &options.limits;

    let (health, health_service) = tonic_health::server::health_reporter();
    // Before the first request: a node that starts caught up and fresh
    // serves at once.
    let serving = caught_up
        && node
            .freshness
            .view(&node.handle.read(), std::time::Instant::now())
            .fresh;
    set_health(&health, serving).await;
    tokio::spawn(confirm_ends(node.clone(), stopping.clone()));
    tokio::spawn(watch_freshness(
        node.clone(),
        health.clone(),
        serving,
        stopping.clone(),
    ));
    if !caught_up {
        // NOT_SERVING until the projection has read the log as it was at
        // start; requests meanwhile wait for it (see `Node::consistent`).
        tokio::spawn({
            let (node, mut stopping, stop) = (node.clone(), stopping.clone(), stop.clone());
            async move {
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
                    // Health follows at the next look (`watch_freshness`).
                    node.caught_up
                        .store(true, std::sync::atomic::Ordering::Release);
                    tracing::info!("caught up with the log");
                }
            }
        });
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let ledger =
        v1::ledger_service_server::LedgerServiceServer::new(ledger::Ledger::new(node.clone()))
            .max_decoding_message_size(limits.message_bytes_max);
    let revocation = v1::revocation_service_server::RevocationServiceServer::new(
        revocation::Revocation::new(node.clone()),
    )
    .max_decoding_message_size(limits.message_bytes_max);
    let provenance = v1::provenance_service_server::ProvenanceServiceServer::new(
        provenance::Provenance::new(node.clone()),
    )
    .max_decoding_message_size(limits.message_bytes_max)
    .max_encoding_message_size(limits.message_bytes_max);

    let ext_authz = ext_authz::InBand(
        envoy_types::ext_authz::v3::pb::AuthorizationServer::new(ext_authz::ExtAuthz::new(
            node.clone(),
            options.resources.clone(),
        ))
        .max_decoding_message_size(limits.message_bytes_max),
    );
    let admin = v1::admin_service_server::AdminServiceServer::new(admin::Admin::new(node.clone()));
    if let (Some(listener), Some(metrics)) = (metrics_listener, metrics.clone()) {
        tracing::info!(address = %listener.local_addr()?, "metrics serving on /metrics");
        tokio::spawn(metrics::serve(
            node.clone(),
            metrics,
            listener,
            options.limits.clone(),
            stopping.clone(),
        ));
    }
    if let Some(http) = http {
        let http_address = http.local_addr()?;
        tracing::info!(address = %http_address, "HTTP bridges serving");
        tokio::spawn(http::serve(
            node.clone(),
            options.clone(),
            http,
            stopping.clone(),
        ));
    }
    tracing::info!(%address, "baton node serving");
    let incoming = listener::incoming(
        listener,
        unix,
        limits,
        options.tls.clone(),
        options.plaintext_admin,
    );
    let served = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(limits.requests_per_connection_max)
        .max_concurrent_streams(Some(limits.requests_per_connection_max as u32))
        .timeout(limits.request_timeout)
        // Pings keep live peers talking, so a silent one is a dead one.
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        // Outermost: calls the authorization refuses are observed too.
        .layer(metrics::ObserveLayer::new(metrics, options.traces))
        .layer(auth::AuthorizeLayer::new(options.access.clone()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(ledger)
        .add_service(revocation)
        .add_service(provenance)
        .add_service(ext_authz)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, {
            let stop = stop.clone();
            let mut stopping = stopping.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
                let _ = stop.send(true);
            }
        })
        .await;
    // However serving ended, stop the projector and the streams too.
    let _ = stop.send(true);
    let projected = projector_task.await?;
    served?;
    if let Err(e) = projected? {
        tracing::error!(error = %e, "the projector failed; the node stopped");
        return Err(e.into());
    }
    if let Some(reason) = node.fatal.get() {
        return Err(reason.clone().into());
    }
    tracing::info!("baton node stopped");
    Ok(())
}
