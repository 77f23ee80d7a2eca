//! Logs (stderr, `BATON_LOG`) and, for `baton serve`, traces: OpenTelemetry
//! spans exported over OTLP/gRPC when the standard variables ask for it
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! `OTEL_SERVICE_NAME`, default `baton`; `OTEL_SDK_DISABLED=true` turns them
//! off). Off by default: no exporter, and the node makes no spans.

use std::collections::BTreeMap;

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Whether the environment asks for traces.
pub fn wanted(env: &BTreeMap<String, String>) -> bool {
    let set = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Sets up logging with `filter`, and traces when `traces` (within
/// `runtime`: the exporter's gRPC channel lives on it). The provider must be
/// shut down before the runtime, to send what is buffered.
pub fn init(
    filter: tracing_subscriber::EnvFilter,
    traces: bool,
    service_name_set: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    if !traces {
        tracing_subscriber::registry().with(logs).init();
        return Ok(None);
    }
    let _runtime = runtime.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !service_name_set {
        resource = resource.with_service_name("baton");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("baton"))
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(baton_server::trace::TARGET, tracing::Level::INFO),
        );
    tracing_subscriber::registry().with(logs).with(spans).init();
    Ok(Some(provider))
}
