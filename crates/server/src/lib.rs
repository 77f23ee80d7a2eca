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
use std::time::Duration;

use baton_core::Policy;
use baton_log::EventLog;
use baton_node::{Node, NodeOptions};
use baton_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use baton_access::{identity, jwt, routes};
pub(crate) use baton_node::now_ms;
pub use baton_node::{Limits, freshness, projector_options};

mod admin;
pub mod auth;
pub mod bridge;
mod deadline;
pub mod error;
mod ext_authz;
pub mod http;
mod ledger;
mod listener;
pub mod metrics;
mod provenance;
mod revocation;
mod routes_served;
pub mod tls;
pub mod trace;
mod wire;

pub use error::{Error, Result, rule_code};
pub use listener::bind_unix;

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

/// Keeps gRPC health following whether the node serves, until it stops.
async fn follow_health(
    health: tonic_health::server::HealthReporter,
    mut serving: watch::Receiver<bool>,
) {
    loop {
        let now = *serving.borrow_and_update();
        set_health(&health, now).await;
        if serving.changed().await.is_err() {
            return;
        }
    }
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

/// [`run`], with the HTTP bridges and `/metrics` on their listeners when given.
pub async fn run_with<L: EventLog>(
    options: ServerOptions,
    log: L,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    run_announced(options, log, listeners, shutdown, || {}).await
}

/// [`run_with`], calling `announce` once the node has passed its start-up
/// checks (the log's partitions, the projection: its lock, its rules, a
/// restored snapshot's, not ahead of the log) and is about to serve: where
/// the binary says it is listening, so that line never precedes a refusal.
pub async fn run_announced<L: EventLog>(
    options: ServerOptions,
    log: L,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    announce: impl FnOnce() + Send,
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
    let started = Node::start(
        NodeOptions {
            policy: options.policy.clone(),
            limits: options.limits.clone(),
            projection_dir: options.projection_dir.clone(),
            access: options.access.clone(),
            jwt_issuers: options.jwt_issuers.clone(),
            observe: metrics
                .clone()
                .map(|metrics| metrics as Arc<dyn baton_node::Observe>),
            traces: options.traces,
        },
        log,
    )
    .await?;
    let node = started.node.clone();
    let stop = started.stopper();
    let stopping = node.shutdown.clone();
    let address: SocketAddr = listener.local_addr()?;
    let limits = &options.limits;

    let (health, health_service) = tonic_health::server::health_reporter();
    // Before the first request: a node that starts caught up and fresh
    // serves at once.
    let serving_now = *started.serving.borrow();
    set_health(&health, serving_now).await;
    tokio::spawn(follow_health(health, started.serving.clone()));
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

    let ext_authz = ext_authz::InBand {
        service: envoy_types::ext_authz::v3::pb::AuthorizationServer::new(
            ext_authz::ExtAuthz::new(node.clone(), options.resources.clone(), metrics.clone()),
        )
        .max_decoding_message_size(limits.message_bytes_max),
        metrics: metrics.clone(),
    };
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
            metrics.clone(),
            stopping.clone(),
        ));
    }
    announce();
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
    started.stop();
    // The projector's failure (or the node's own reason to stop) first: it
    // is why serving ended, if it did not end on request.
    started.finish().await?;
    served?;
    tracing::info!("baton node stopped");
    Ok(())
}
