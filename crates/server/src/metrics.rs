//! Prometheus metrics: the node's counters and histograms (recorded where
//! things happen), a gRPC layer in front of every service (requests by
//! method and code, latency), and, at each scrape, where the node stands
//! (the same [`NodeState`] `AdminService.Status` answers from) and the
//! process's own figures. Served as Prometheus text on `/metrics` of a
//! listener of its own (see [`serve`]); a node without one records nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use baton_node::NodeState;

/// Latency buckets, seconds: a check takes ~0.1 ms, an append to Kafka a
/// few ms, a stream as long as it lasts.
const SECONDS_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A gRPC method, as labels (from the fixed table: see [`method`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Rpc {
    pub grpc_type: &'static str,
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Handled {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppendLabels {
    outcome: &'static str,
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabel {
    log: &'static str,
}

/// An HTTP bridge request, as labels: its route from the route table
/// (`other` for a path not in it), and its status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// A bridge's decision, as labels: its route from the route table, and the
/// decision ([`crate::bridge::Decision`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    route: &'static str,
    decision: &'static str,
}

/// Every metric a node records as things happen. Label values are static
/// strings from fixed tables: nothing a caller sends becomes a label.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    started: Family<Rpc, Counter>,
    handled: Family<Handled, Counter>,
    handling: Histograms<Rpc>,
    appends: Family<AppendLabels, Counter>,
    checks: Family<StatusLabel, Counter>,
    watch_streams: Gauge,
    watch_entries: Family<KindLabel, Counter>,
    log_append: Histograms<LogLabel>,
    log_append_errors: Family<LogLabel, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_handling: Histograms<RouteLabel>,
    bridge_decisions: Family<DecisionLabels, Counter>,
    log: &'static str,
}

impl Metrics {
    /// The metrics of a node following a log of kind `log`.
    pub fn new(log: &'static str) -> Self {
        let mut registry = Registry::default();
        let started = Family::<Rpc, Counter>::default();
        let handled = Family::<Handled, Counter>::default();
        let handling: Histograms<Rpc> = Family::new_with_constructor(seconds_histogram);
        let appends = Family::<AppendLabels, Counter>::default();
        let checks = Family::<StatusLabel, Counter>::default();
        let watch_streams = Gauge::default();
        let watch_entries = Family::<KindLabel, Counter>::default();
        let log_append: Histograms<LogLabel> = Family::new_with_constructor(seconds_histogram);
        let log_append_errors = Family::<LogLabel, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_handling: Histograms<RouteLabel> = Family::new_with_constructor(seconds_histogram);
        let bridge_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "baton_bridge_decisions",
            "Decisions of the bridges, by route: allow, deny, unavailable or error (forward-auth, ext_authz), active or inactive (RFC 7662), revoked or unchanged (RFC 7009)",
            bridge_decisions.clone(),
        );
        registry.register(
            "baton_http_requests",
            "Requests answered by the HTTP bridges (forward-auth, RFC 7662, RFC 7009, /healthz), by route and status code",
            http_requests.clone(),
        );
        registry.register(
            "baton_http_request_seconds",
            "Time an HTTP bridge took to answer, by route",
            http_handling.clone(),
        );
        registry.register(
            "grpc_server_started",
            "RPCs started on the server",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by gRPC code",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from an RPC's start to its status (streams: to their end)",
            handling.clone(),
        );
        registry.register(
            "baton_appends",
            "Events in Append requests, by outcome (accepted, duplicate; a failed call counts each of its events: rejected with the rule, unknown, failed) and rule",
            appends.clone(),
        );
        registry.register(
            "baton_checks",
            "Token checks answered (Check, CheckBatch, Introspect, the gateway bridges), by status",
            checks.clone(),
        );
        registry.register(
            "baton_watch_streams",
            "Watch streams open",
            watch_streams.clone(),
        );
        registry.register(
            "baton_watch_entries",
            "Entries sent on Watch streams, by kind (revocation, checkpoint)",
            watch_entries.clone(),
        );
        registry.register(
            "baton_log_append_seconds",
            "Time for the log to acknowledge an appended record (Kafka: delivery with acks=all)",
            log_append.clone(),
        );
        registry.register(
            "baton_log_append_errors",
            "Appends the log refused or did not acknowledge",
            log_append_errors.clone(),
        );
        // The usual label sets exist from the start (at 0), so a dashboard's
        // rates have a first point before the first event of each kind.
        for outcome in ["accepted", "duplicate"] {
            drop(appends.get_or_create(&AppendLabels { outcome, rule: "" }));
        }
        for status in [
            "active",
            "revoked",
            "expired",
            "unknown",
            "audience_mismatch",
        ] {
            drop(checks.get_or_create(&StatusLabel { status }));
        }
        for kind in ["revocation", "checkpoint"] {
            drop(watch_entries.get_or_create(&KindLabel { kind }));
        }
        drop(log_append.get_or_create(&LogLabel { log }));
        drop(log_append_errors.get_or_create(&LogLabel { log }));
        Metrics {
            registry,
            started,
            handled,
            handling,
            appends,
            checks,
            watch_streams,
            watch_entries,
            log_append,
            log_append_errors,
            http_requests,
            http_handling,
            bridge_decisions,
            log,
        }
    }

    /// An HTTP bridge answered `route` with `code` after `took`.
    pub(crate) fn http_done(&self, route: &'static str, code: u16, took: std::time::Duration) {
        self.http_requests
            .get_or_create(&HttpLabels { route, code })
            .inc();
        self.http_handling
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }

    /// A bridge on `route` decided `decision`.
    pub(crate) fn bridge_decided(&self, route: &'static str, decision: crate::bridge::Decision) {
        self.bridge_decisions
            .get_or_create(&DecisionLabels {
                route,
                decision: decision.label(),
            })
            .inc();
    }

    fn rpc_done(&self, rpc: Rpc, code: &'static str, started: Instant) {
        self.handled
            .get_or_create(&Handled {
                grpc_type: rpc.grpc_type,
                grpc_service: rpc.grpc_service,
                grpc_method: rpc.grpc_method,
                grpc_code: code,
            })
            .inc();
        self.handling
            .get_or_create(&rpc)
            .observe(started.elapsed().as_secs_f64());
    }

    /// The whole exposition: these metrics, `state`'s and the process's.
    pub fn render(&self, state: NodeState) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(Scraped(state)));
        scrape.register_collector(Box::new(ProcessCollector));
        prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape)?;
        Ok(out)
    }
}

/// (service, method, kind) of a gRPC path, from the route table; `unknown`
/// for anything else (a path is never a label).
pub(crate) fn method(path: &str) -> (&'static str, &'static str, &'static str) {
    match crate::routes::route(path) {
        Some(route) if !matches!(route.kind, crate::routes::Kind::Http(_)) => {
            (route.service, route.method, route.kind.grpc_type())
        }
        _ => ("unknown", "unknown", "unary"),
    }
}

fn rpc(path: &str) -> Rpc {
    let (grpc_service, grpc_method, grpc_type) = method(path);
    Rpc {
        grpc_type,
        grpc_service,
        grpc_method,
    }
}

/// gRPC codes by number, as go-grpc-middleware names them.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The gRPC status number of a trailers-only answer (most errors), from
/// its headers.
fn status_in(headers: &http::HeaderMap) -> Option<usize> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

fn code_name(code: usize) -> &'static str {
    CODES.get(code).copied().unwrap_or("Unknown")
}

fn code_of(headers: &http::HeaderMap) -> Option<&'static str> {
    status_in(headers).map(code_name)
}

/// The tower layer that observes every gRPC call (outermost: calls the
/// authorization layer refuses are observed too): counts and times it for
/// `/metrics` when there are metrics, and puts it in a span continuing the
/// caller's trace when traces are on ([`crate::trace`]). With neither, it
/// passes calls through untouched.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Option<Arc<Metrics>>,
    traces: bool,
}

impl ObserveLayer {
    pub fn new(metrics: Option<Arc<Metrics>>, traces: bool) -> Self {
        ObserveLayer { metrics, traces }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
            traces: self.traces,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
    traces: bool,
}

type Answer<E> =
    Pin<Box<dyn std::future::Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.metrics.is_none() && !self.traces {
            return Box::pin(self.inner.call(request));
        }
        let rpc = rpc(request.uri().path());
        let span = if self.traces {
            crate::trace::grpc_span(rpc.grpc_service, rpc.grpc_method, request.headers())
        } else {
            tracing::Span::none()
        };
        let pending = self.metrics.clone().map(|metrics| {
            metrics.started.get_or_create(&rpc).inc();
            Pending {
                metrics: Some(metrics),
                rpc,
                started: Instant::now(),
            }
        });
        let answer = span.in_scope(|| self.inner.call(request));
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = answer.await?;
                let status = status_in(response.headers());
                crate::trace::record_status(status);
                let Some(mut pending) = pending else {
                    return Ok(response);
                };
                if let Some(code) = status {
                    pending.done(code_name(code));
                    return Ok(response);
                }
                Ok(response.map(|body| tonic::body::Body::new(Observed { body, pending })))
            },
            span,
        ))
    }
}

/// A call whose status is not known yet: recorded once, with its code, or
/// as `Canceled` if it is dropped first (the caller went away).
struct Pending {
    metrics: Option<Arc<Metrics>>,
    rpc: Rpc,
    started: Instant,
}

impl Pending {
    fn done(&mut self, code: &'static str) {
        if let Some(metrics) = self.metrics.take() {
            metrics.rpc_done(self.rpc.clone(), code, self.started);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.done("Canceled");
    }
}

/// A response body that records its call's status from the trailers.
struct Observed {
    body: tonic::body::Body,
    pending: Pending,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_of) {
                    self.pending.done(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.pending.done("Internal"),
            Poll::Ready(None) => self.pending.done("Unknown"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Encodes one value as a whole metric.
fn one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    value.encode(encoder.encode_descriptor(name, help, None, kind)?)
}

/// Encodes one value per partition.
fn per_partition(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = u64>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (partition, value) in values.into_iter().enumerate() {
        let labels = [("partition", partition.to_string())];
        ConstGauge::new(value as i64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// What the node records, counted here.
impl baton_node::Observe for Metrics {
    /// `events` events of one Append ended with `outcome` under `rule`.
    fn appended(&self, outcome: &'static str, rule: &'static str, events: usize) {
        self.appends
            .get_or_create(&AppendLabels { outcome, rule })
            .inc_by(events as u64);
    }

    /// An entry sent on a Watch stream.
    fn watch_sent(&self, checkpoint: bool) {
        let kind = if checkpoint {
            "checkpoint"
        } else {
            "revocation"
        };
        self.watch_entries.get_or_create(&KindLabel { kind }).inc();
    }

    /// The log answered an append after `took`; `ok` when it acknowledged.
    fn log_appended(&self, took: std::time::Duration, ok: bool) {
        let log = LogLabel { log: self.log };
        self.log_append
            .get_or_create(&log)
            .observe(took.as_secs_f64());
        if !ok {
            self.log_append_errors.get_or_create(&log).inc();
        }
    }

    /// A check answered with `verdict`.
    fn checked(&self, verdict: baton_node::Verdict) {
        use baton_node::Verdict;
        let status = match verdict {
            Verdict::Active => "active",
            Verdict::Revoked => "revoked",
            Verdict::Expired => "expired",
            Verdict::Unknown => "unknown",
            Verdict::AudienceMismatch => "audience_mismatch",
        };
        self.checks.get_or_create(&StatusLabel { status }).inc();
    }

    /// A Watch stream opened or closed.
    fn watching(&self, open: bool) {
        if open {
            self.watch_streams.inc();
        } else {
            self.watch_streams.dec();
        }
    }
}

/// Where the node stands, as a scrape reports it.
#[derive(Debug)]
struct Scraped(NodeState);

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let this = &self.0;
        one(
            e,
            "baton_ready",
            "1 when the node has read the log as it was at start and serves",
            MetricType::Gauge,
            ConstGauge::new(i64::from(this.ready)),
        )?;
        {
            let mut family = e.encode_descriptor(
                "baton_projector_events",
                "Events the projection applied or recognised as duplicates, over its life",
                None,
                MetricType::Counter,
            )?;
            for (outcome, count) in [("applied", this.applied), ("duplicate", this.duplicates)] {
                ConstCounter::new(count).encode(family.encode_family(&[("outcome", outcome)])?)?;
            }
        }
        {
            let mut family = e.encode_descriptor(
                "baton_projector_quarantined",
                "Log records quarantined, by the rule that refused them, over the projection's life",
                None,
                MetricType::Counter,
            )?;
            for (rule, count) in &this.quarantined_by_rule {
                ConstCounter::new(*count)
                    .encode(family.encode_family(&[("rule", rule.as_str())])?)?;
            }
        }
        one(
            e,
            "baton_projector_parked",
            "Log records waiting for a dependency now",
            MetricType::Gauge,
            ConstGauge::new(this.parked as i64),
        )?;
        one(
            e,
            "baton_projector_parked_retries",
            "Parked records applied again because an event they wait for arrived (or at expiry, or once after a restart), since the process started",
            MetricType::Counter,
            ConstCounter::new(this.parked_retries),
        )?;
        per_partition(
            e,
            "baton_projector_applied_offset",
            "Next offset to apply, per partition: every record before it is applied, deduplicated or quarantined",
            this.applied_offsets.iter().copied(),
        )?;
        if let Some(ends) = &this.log_end {
            per_partition(
                e,
                "baton_log_end_offset",
                "The log's end offset (next to be written), per partition",
                ends.iter().copied(),
            )?;
            per_partition(
                e,
                "baton_projector_lag_records",
                "Records in the log not yet applied, per partition",
                this.lag(),
            )?;
        }
        one(
            e,
            "baton_log_reachable",
            "1 when the log answered the latest read of its end offsets (at most a second old)",
            MetricType::Gauge,
            ConstGauge::new(i64::from(this.log_end.is_some())),
        )?;
        // Unknown while the log cannot be reached: left out, not 0.
        if this.log_end.is_some() {
            one(
                e,
                "baton_projector_seconds_behind",
                "While records are unapplied: seconds since a read of the log last had nothing more to give; 0 when caught up",
                MetricType::Gauge,
                ConstGauge::new(this.seconds_behind),
            )?;
        }
        if let Some(view) = &this.freshness {
            one(
                e,
                "baton_fresh",
                "1 while the node vouches for the log: the newest end of the log it confirmed and read was asked for within max_staleness",
                MetricType::Gauge,
                ConstGauge::new(i64::from(view.fresh)),
            )?;
            if let Some(age) = view.confirmed_age {
                one(
                    e,
                    "baton_log_end_confirmed_age_seconds",
                    "Seconds since the node last confirmed the log's end",
                    MetricType::Gauge,
                    ConstGauge::new(age.as_secs_f64()),
                )?;
            }
            if let Some(age) = view.age {
                one(
                    e,
                    "baton_view_age_seconds",
                    "Seconds since the node asked for the newest end of the log its projection has read: the age of what its answers reflect",
                    MetricType::Gauge,
                    ConstGauge::new(age.as_secs_f64()),
                )?;
            }
            one(
                e,
                "baton_unapplied_seconds",
                "Seconds the node has known of records it has not read (the oldest confirmed end not read); 0 when none",
                MetricType::Gauge,
                ConstGauge::new(view.behind.as_secs_f64()),
            )?;
            one(
                e,
                "baton_max_staleness_seconds",
                "The freshness bound (freshness.max_staleness_ms)",
                MetricType::Gauge,
                ConstGauge::new(this.max_staleness.as_secs_f64()),
            )?;
        }
        one(
            e,
            "baton_projection_size_bytes",
            "Bytes the projection's store (sled) takes on disk",
            MetricType::Gauge,
            ConstGauge::new(this.projection_bytes as i64),
        )?;
        Ok(())
    }
}

/// The process's own figures, read from /proc at each scrape (Linux; on
/// other systems, none), under the names every Prometheus client uses.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(process) = process::read() else {
            return Ok(());
        };
        let e = &mut encoder;
        one(
            e,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            MetricType::Counter,
            ConstCounter::new(process.cpu_seconds),
        )?;
        one(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            MetricType::Gauge,
            ConstGauge::new(process.resident_bytes as i64),
        )?;
        one(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            MetricType::Gauge,
            ConstGauge::new(process.virtual_bytes as i64),
        )?;
        one(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            MetricType::Gauge,
            ConstGauge::new(process.open_fds as i64),
        )?;
        if let Some(max) = process.max_fds {
            one(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                MetricType::Gauge,
                ConstGauge::new(max as i64),
            )?;
        }
        one(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            MetricType::Gauge,
            ConstGauge::new(process.start_time_s),
        )?;
        one(
            e,
            "process_threads",
            "Number of OS threads in the process",
            MetricType::Gauge,
            ConstGauge::new(process.threads as i64),
        )?;
        Ok(())
    }
}

mod process {
    //! /proc/self, read the way the Prometheus clients read it.

    pub struct Process {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub virtual_bytes: u64,
        pub open_fds: u64,
        pub max_fds: Option<u64>,
        pub start_time_s: f64,
        pub threads: u64,
    }

    /// Clock ticks per second (`getconf CLK_TCK`): 100 on every Linux
    /// architecture Rust builds for that is not Alpha or IA-64.
    const TICKS_PER_SECOND: f64 = 100.0;

    pub fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name is in parentheses and may hold spaces: fields
        // are counted after its closing one (field 3 onwards).
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
        let cpu_seconds = (field(14)? + field(15)?) / TICKS_PER_SECOND;
        let threads = field(20)? as u64;
        let started_ticks = field(22)?;
        let virtual_bytes = field(23)? as u64;
        // In bytes from the kernel, whatever the page size.
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024;
        let boot_s: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()?
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3)?.parse().ok());
        Some(Process {
            cpu_seconds,
            resident_bytes,
            virtual_bytes,
            open_fds,
            max_fds,
            start_time_s: boot_s + started_ticks / TICKS_PER_SECOND,
            threads,
        })
    }
}

/// Serves `/metrics` on `listener` (plain HTTP: put it where only the
/// scraper reaches) until the node stops.
pub(crate) async fn serve<L: baton_log::EventLog>(
    node: Arc<crate::Node<L>>,
    metrics: Arc<Metrics>,
    listener: tokio::net::TcpListener,
    limits: crate::Limits,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (node, metrics) = (node.clone(), metrics.clone());
            async move {
                let state = node.state(false).await;
                match state
                    .map_err(|e| e.to_string())
                    .and_then(|state| metrics.render(state).map_err(|e| e.to_string()))
                {
                    Ok(text) => (
                        http::StatusCode::OK,
                        [(
                            http::header::CONTENT_TYPE,
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        )],
                        text,
                    ),
                    Err(e) => (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        format!("metrics: {e}\n"),
                    ),
                }
            }
        }),
    );
    crate::listener::serve_router(router, listener, None, false, &limits, false, stopping).await;
}
