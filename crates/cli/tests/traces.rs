//! Traces: a node started with the standard OpenTelemetry variables exports
//! over OTLP/gRPC to a collector stand-in (an OTLP TraceService receiver
//! built from the OpenTelemetry protos, in this test); one Append that
//! carries a W3C `traceparent` gives one trace, continuing it: the RPC's
//! span, its `append`, the Kafka write (`log.append`) and the projector's
//! `apply`. An HTTP bridge request continues its `traceparent` too.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, now_s};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// A span as received: its trace, id, parent, name, and service name.
#[derive(Debug, Clone)]
struct Received {
    trace: String,
    id: String,
    parent: String,
    name: String,
    service: String,
}

#[derive(Default, Clone)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        trace: hex::encode(&span.trace_id),
                        id: hex::encode(&span.span_id),
                        parent: hex::encode(&span.parent_span_id),
                        name: span.name,
                        service: service.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Waits (at most 30 s) until the spans of `trace` include every name
    /// in `names`; returns them.
    fn wait_for(&self, trace: &str, names: &[&str]) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans: Vec<Received> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace == trace)
                .cloned()
                .collect();
            if names.iter().all(|n| spans.iter().any(|s| s.name == *n)) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace}: wanted {names:?}, got {spans:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn one<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_one_trace_from_the_rpc_to_the_apply() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let cluster = KafkaCluster::shared();
    let (f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let node = Served::start_with_env(
        &dir.path().join("node"),
        &root,
        &[
            "--kafka-brokers",
            cluster.bootstrap(),
            "--kafka-topic",
            "traces",
            "--http-listen",
            "127.0.0.1:0",
        ],
        "warn",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "baton-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );

    // An Append continuing the caller's trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::connect(node.url())
        .await
        .unwrap();
    let mut request = tonic::Request::new(v1::AppendRequest {
        events: setup.iter().map(v1::SignedEvent::from).collect(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01").parse().unwrap(),
    );
    ledger.append(request).await.unwrap();
    // The RPC's span is named by its method (OpenTelemetry's RPC convention).
    const RPC: &str = "baton.v1.LedgerService/Append";
    let spans = collector.wait_for(trace, &[RPC, "append", "log.append", "apply"]);
    let rpc = one(&spans, RPC);
    let append = one(&spans, "append");
    let write = one(&spans, "log.append");
    let apply = one(&spans, "apply");
    assert_eq!(
        rpc.parent, caller_span,
        "the RPC continues the caller's span"
    );
    assert_eq!(append.parent, rpc.id);
    assert_eq!(write.parent, append.id, "the Kafka write is the append's");
    assert_eq!(apply.parent, append.id, "the apply is the append's");
    assert!(spans.iter().all(|s| s.service == "baton-under-test"));

    // An HTTP bridge request continues its traceparent too.
    let http_trace = "0af7651916cd43dd8448eb211c80319c";
    let http_caller = "b7ad6b7169203331";
    let address = node.http_address.clone().unwrap();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {address}\r\ntraceparent: 00-{http_trace}-{http_caller}-01\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let spans = collector.wait_for(http_trace, &["GET /healthz"]);
    assert_eq!(one(&spans, "GET /healthz").parent, http_caller);
    node.stop();
}
