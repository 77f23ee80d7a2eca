//! What an operator sees of a live `baton serve` on real Kafka: `/metrics`
//! read by the Prometheus project's own Python parser, counters moved by
//! exactly what happened (appends by outcome and rule, checks by status, a
//! forged record written straight to Kafka quarantined with its rule, Watch
//! streams and entries, gRPC calls by method and code), lag back to 0;
//! `baton quarantine list|show` naming the forgery; `baton status` showing
//! lag drain to 0 after a burst written while the node was down.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, baton, now_s};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "operations";

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The node's `/metrics`, fetched over a plain socket and parsed by
/// `prometheus_client.parser` (tests/interop/scrape.py).
fn scrape(address: &str) -> Vec<Sample> {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "expected a sized body: {head}"
    );
    let python = baton_testkit::tools::interop_python().unwrap();
    let mut parser = std::process::Command::new(python)
        .arg(baton_testkit::repo_root().join("tests/interop/scrape.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the exposition");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 if none).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied().unwrap_or(0.0)
}

/// How much `name{labels}` moved between two scrapes.
fn moved(before: &[Sample], after: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

/// `baton status --json` against the node.
fn status(url: &str) -> serde_json::Value {
    let out = baton()
        .args(["status", "--json", "--server", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn serve(dir: &std::path::Path, root: &str, brokers: &str) -> Served {
    Served::start(
        dir,
        root,
        &[
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            TOPIC,
            "--kafka-partitions",
            "4",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
}

/// Polls `condition` (every 100 ms, at most 60 s); panics naming `what`.
fn eventually<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(done) = condition() {
            return done;
        }
        assert!(Instant::now() < deadline, "not within 60 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_quarantine_and_status_tell_what_happened() {
    let cluster = KafkaCluster::shared();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = serve(&data, &root, cluster.bootstrap());
    let url = node.url();
    let metrics = node.metrics_address.clone().unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .create()
        .unwrap();

    let before = scrape(&metrics);
    let mut status_calls = 0.0;

    // Appends: accepted, the same again (duplicates), a hop, a conflicting
    // re-issue refused by a rule, a revocation.
    append(&url, &setup).await;
    append(&url, &setup).await;
    let chain = vec![
        f.issue("as", "h1", "user:alice", "agent", 3600),
        f.narrow("h1", "h2", "agent", "gateway", &["repo:write"], 60),
    ];
    append(&url, &chain).await;
    let conflicting = f.issue("as", "h1", "user:alice", "agent", 7200);
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::connect(url.clone())
        .await
        .unwrap();
    let refused = ledger
        .append(v1::AppendRequest {
            events: vec![v1::SignedEvent::from(&conflicting)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    let revoked = append(
        &url,
        &[f.revoke(RevocationTarget::Token(Fixture::token("h2")))],
    )
    .await;

    // Checks: ACTIVE twice (Check, CheckBatch), UNKNOWN once, REVOKED once.
    let mut checks = v1::revocation_service_client::RevocationServiceClient::connect(url.clone())
        .await
        .unwrap();
    let ask = |jti: &str| v1::CheckRequest {
        token: Some(baton_proto::token_ref_to_wire(&Fixture::token(jti))),
        consistency_token: revoked.consistency_token.clone(),
        ..Default::default()
    };
    let one = checks.check(ask("h1")).await.unwrap().into_inner();
    assert_eq!(one.status, v1::TokenStatus::Active as i32);
    let batch = checks
        .check_batch(v1::CheckBatchRequest {
            checks: vec![ask("nobody"), ask("h1")],
        })
        .await
        .unwrap()
        .into_inner();
    let statuses: Vec<i32> = batch.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            v1::TokenStatus::Unknown as i32,
            v1::TokenStatus::Active as i32
        ]
    );
    let gone = checks.check(ask("h2")).await.unwrap().into_inner();
    assert_eq!(gone.status, v1::TokenStatus::Revoked as i32);

    // A Watch from the start: the one revocation, then the watcher leaves.
    let mut watch = checks
        .watch(v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert!(first.revoked.is_some(), "{first:?}");
    let watching = scrape(&metrics);
    assert_eq!(value(&watching, "baton_watch_streams", &[]), 1.0);
    drop(watch);

    // A forgery written straight to Kafka: a valid event, one signature bit flipped.
    let good = f.issue("as", "forged", "user:mallory", "agent", 3600);
    let mut wire = v1::SignedEvent::from(&good);
    wire.signature[10] ^= 1;
    let forged = baton_proto::open(wire).unwrap().0;
    let bytes = baton_proto::encode_signed(&forged);
    let delivered = producer
        .send(
            FutureRecord::to(TOPIC).key("forged").payload(&bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let forged_at = format!("{}:{}", delivered.partition, delivered.offset);
    // More of the forgery scenario, each with the rule that must refuse it: a
    // grant signed by a key nobody registered (waits for the key, then is
    // quarantined), a hop wider than its parent signed by the right key,
    // and bytes that are no event.
    let stranger = baton_core::SigningKey::generate();
    let (_, body) = baton_proto::decode_signed(&baton_proto::encode_signed(&f.issue(
        "as",
        "unsigned",
        "user:mallory",
        "agent",
        3600,
    )))
    .unwrap();
    let unknown_signer = f.seal_with(&stranger, body.body);
    let wider = f.hop_unchecked(
        "h2",
        "wider",
        "gateway",
        "server-a",
        &["repo:write"],
        &[],
        f.expiry_of("h2"),
        None,
    );
    let mut more = Vec::new();
    for (rule, value) in [
        ("unknown-key", baton_proto::encode_signed(&unknown_signer)),
        ("not-narrower", baton_proto::encode_signed(&wider)),
        ("undecodable", b"\x0a\x03not an event".to_vec()),
    ] {
        let delivered = producer
            .send(
                FutureRecord::to(TOPIC).key(rule).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        more.push((
            rule,
            format!("{}:{}", delivered.partition, delivered.offset),
        ));
    }
    eventually("the forgeries are quarantined", || {
        status_calls += 1.0;
        (status(&url)["quarantined"] == 4).then_some(())
    });

    // Lag back to 0 (the Watch's end is recorded once its body is dropped).
    let after = eventually(
        "lag 0 on every partition, the Watch counted as ended",
        || {
            let samples = scrape(&metrics);
            let lags: Vec<f64> = samples
                .iter()
                .filter(|(n, _, _)| n == "baton_projector_lag_records")
                .map(|(_, _, v)| *v)
                .collect();
            let ended = value(
                &samples,
                "grpc_server_handled_total",
                &[("grpc_method", "Watch"), ("grpc_code", "Canceled")],
            ) == 1.0;
            (lags.len() == 4 && lags.iter().all(|lag| *lag == 0.0) && ended).then_some(samples)
        },
    );
    let n = setup.len() as f64;
    let appends = |outcome: &str, rule: &str| {
        moved(
            &before,
            &after,
            "baton_appends_total",
            &[("outcome", outcome), ("rule", rule)],
        )
    };
    assert_eq!(appends("accepted", ""), n + 3.0);
    assert_eq!(appends("duplicate", ""), n);
    assert_eq!(appends("rejected", "already-exists"), 1.0);
    let checked =
        |status: &str| moved(&before, &after, "baton_checks_total", &[("status", status)]);
    assert_eq!(checked("active"), 2.0);
    assert_eq!(checked("unknown"), 1.0);
    assert_eq!(checked("revoked"), 1.0);
    assert_eq!(checked("expired"), 0.0);
    let projector = |outcome: &str| {
        moved(
            &before,
            &after,
            "baton_projector_events_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(projector("applied"), n + 3.0);
    assert_eq!(projector("duplicate"), 0.0);
    for rule in ["signature", "unknown-key", "not-narrower", "undecodable"] {
        assert_eq!(
            moved(
                &before,
                &after,
                "baton_projector_quarantined_total",
                &[("rule", rule)]
            ),
            1.0,
            "{rule}"
        );
    }
    let quarantined: f64 = after
        .iter()
        .filter(|(n, _, _)| n == "baton_projector_quarantined_total")
        .map(|(_, _, v)| *v)
        .sum();
    assert_eq!(quarantined, 4.0, "only the forgeries are quarantined");
    assert_eq!(value(&after, "baton_projector_parked", &[]), 0.0);
    // The unknown-key record waited for a key that never came: tried again
    // once, at its expiry, whatever else was applied meanwhile.
    assert_eq!(
        value(&after, "baton_projector_parked_retries_total", &[]),
        1.0
    );
    assert_eq!(value(&after, "baton_ready", &[]), 1.0);
    assert_eq!(value(&after, "baton_log_reachable", &[]), 1.0);
    assert_eq!(value(&after, "baton_fresh", &[]), 1.0);
    assert_eq!(value(&after, "baton_max_staleness_seconds", &[]), 5.0);
    assert_eq!(value(&after, "baton_projector_seconds_behind", &[]), 0.0);
    assert_eq!(value(&after, "baton_watch_streams", &[]), 0.0);
    assert_eq!(
        moved(
            &before,
            &after,
            "baton_watch_entries_total",
            &[("kind", "revocation")]
        ),
        1.0
    );
    // Three records written (setup, the hop, the revocation); none failed.
    assert_eq!(
        moved(
            &before,
            &after,
            "baton_log_append_seconds_count",
            &[("log", "kafka")]
        ),
        3.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "baton_log_append_errors_total",
            &[("log", "kafka")]
        ),
        0.0
    );
    let handled = |service: &str, method: &str, code: &str| {
        moved(
            &before,
            &after,
            "grpc_server_handled_total",
            &[
                ("grpc_service", service),
                ("grpc_method", method),
                ("grpc_code", code),
            ],
        )
    };
    assert_eq!(handled("baton.v1.LedgerService", "Append", "OK"), 4.0);
    assert_eq!(
        handled("baton.v1.LedgerService", "Append", "AlreadyExists"),
        1.0
    );
    assert_eq!(handled("baton.v1.RevocationService", "Check", "OK"), 2.0);
    assert_eq!(
        handled("baton.v1.RevocationService", "CheckBatch", "OK"),
        1.0
    );
    assert_eq!(
        handled("baton.v1.AdminService", "Status", "OK"),
        status_calls
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "grpc_server_handling_seconds_count",
            &[("grpc_method", "Append")]
        ),
        5.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "grpc_server_started_total",
            &[
                ("grpc_service", "baton.v1.LedgerService"),
                ("grpc_method", "Append")
            ]
        ),
        5.0
    );
    assert_eq!(
        value(
            &after,
            "grpc_server_handled_total",
            &[("grpc_type", "server_stream"), ("grpc_method", "Watch")]
        ),
        1.0
    );
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&after, "process_open_fds", &[]) > 0.0);
    assert!(value(&after, "baton_projection_size_bytes", &[]) > 0.0);

    // The forensic trail names the forgery: where, which rule, which event.
    let out = baton()
        .args(["quarantine", "list", "--json", "--server", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = list["records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "{list}");
    let at = |position: &str| {
        records
            .iter()
            .find(|r| r["position"] == position)
            .unwrap_or_else(|| panic!("{position} not listed: {list}"))
    };
    let bad_signature = at(&forged_at);
    assert_eq!(bad_signature["rule"], "signature");
    assert!(
        bad_signature["reason"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{list}"
    );
    assert_eq!(
        bad_signature["event_ids"],
        serde_json::json!([forged.id().to_string()])
    );
    for (rule, position) in &more {
        let record = at(position);
        assert_eq!(record["rule"], *rule, "{list}");
        assert!(!record["reason"].as_str().unwrap().is_empty(), "{list}");
    }
    assert_eq!(
        at(&more[1].1)["event_ids"],
        serde_json::json!([wider.id().to_string()])
    );
    assert_eq!(at(&more[2].1)["event_ids"], serde_json::json!([]));
    let text = baton()
        .args(["quarantine", "list", "--server", &url])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("{forged_at}  signature  ")),
        "{text}"
    );
    let out = baton()
        .args(["quarantine", "show", &forged_at, "--json", "--server", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let value_bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shown["value_base64"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(value_bytes, bytes, "show returns the record as written");
    let missing = baton()
        .args(["quarantine", "show", "0:999999", "--server", &url])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no quarantined record at 0:999999"),
        "{missing:?}"
    );

    // A burst written while the node is down: on restart `baton status`
    // shows the lag, then shows it drain to 0.
    let applied_before = status(&url)["events_applied"].as_u64().unwrap();
    node.stop();
    const BURST: usize = 30_000;
    let mut pending = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let event = f.issue("as", &format!("burst-{i}"), "user:bob", "agent", 3600);
        let bytes = baton_proto::encode_signed(&event);
        let key = format!("burst-{i}");
        pending.push(
            producer
                .send_result(FutureRecord::to(TOPIC).key(&key).payload(&bytes))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
    }
    for delivery in pending {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let node = serve(&data, &root, cluster.bootstrap());
    let url = node.url();
    let first = status(&url);
    assert!(
        first["lag"].as_u64().unwrap() > 0 && first["seconds_behind"].as_f64().unwrap() > 0.0,
        "the first status after the burst shows no lag: {first}"
    );
    let last = eventually("lag drains to 0", || {
        let now = status(&url);
        (now["lag"] == 0 && now["ready"] == true).then_some(now)
    });
    assert_eq!(
        last["events_applied"].as_u64().unwrap(),
        applied_before + BURST as u64
    );
    assert_eq!(last["seconds_behind"].as_f64().unwrap(), 0.0);
    for p in last["partitions"].as_array().unwrap() {
        assert_eq!(p["applied"], p["log_end"], "{last}");
    }
    let text = baton().args(["status", "--server", &url]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("node: ready (kafka log")
            && text.contains("lag: 0 records, 0.0 s behind")
            && text.contains(
                "4 quarantined (not-narrower 1, signature 1, undecodable 1, unknown-key 1)"
            ),
        "{text}"
    );
    node.stop();
}
