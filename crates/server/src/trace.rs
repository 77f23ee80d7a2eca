//! Traces: OpenTelemetry spans through `tracing` (exported by the binary
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; off otherwise, and then no span
//! is made here). One span per gRPC call and per HTTP bridge request,
//! continuing a W3C `traceparent` the caller sent; an Append's `append`,
//! its `log.append` (the Kafka write) and the projector's `apply` of its
//! record are children of it.

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The target of every span Baton makes for traces (what the exporter's
/// filter lets through).
pub use baton_node::TRACE_TARGET as TARGET;

struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` continue the trace named by `headers` (`traceparent`,
/// `tracestate`), if any.
pub(crate) fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(headers))
    });
    let _ = span.set_parent(parent);
}

/// The span of one HTTP bridge request (routes from a fixed table: a path
/// is never a span name).
pub(crate) fn http_span(request: &http::Request<hyper::body::Incoming>) -> tracing::Span {
    let route = match crate::routes::route(request.uri().path()) {
        Some(route) if matches!(route.kind, crate::routes::Kind::Http(_)) => route.method,
        _ => "other",
    };
    let span = tracing::info_span!(
        target: TARGET,
        "http",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
    );
    continue_from(&span, request.headers());
    span
}

/// The span of one gRPC call, continuing the caller's trace; named by its
/// method (from the fixed table: a path is never a span name).
pub(crate) fn grpc_span(
    service: &'static str,
    method: &'static str,
    headers: &http::HeaderMap,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: TARGET,
        "grpc",
        otel.name = format!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    continue_from(&span, headers);
    span
}

/// Records a call's gRPC status on the current (call's) span: the status of
/// a trailers-only answer, or OK for an answer with a body (a stream that
/// ends in an error says so only in its trailers, not followed here).
pub(crate) fn record_status(status: Option<usize>) {
    let span = tracing::Span::current();
    let code = status.unwrap_or(0);
    span.record("rpc.grpc.status_code", code as i64);
    if code != 0 {
        span.record("otel.status_code", "ERROR");
    }
}
