//! What an operator sees of a live `baton serve` on real Kafka: `/metrics`
//! read by the Prometheus project's own Python parser, counters moved by
//! exactly what happened (appends by outcome and rule, checks by status, a
//! forged record written straight to Kafka quarantined with its rule, Watch
//! streams and entries, gRPC calls by method and code), lag back to 0;
//! `baton quarantine list|show` naming the forgery; `baton status` showing
//! lag drain to 0 after a burst written while the node was down. And copies
//! of stored records written into other partitions: one position per event
//! and one digest on a node that read them last and one rebuilt from zero.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use baton_core::RevocationTarget;
use baton_proto::v1;
use baton_testkit::{Fixture, KafkaCluster};
use common::{Served, append, baton, eventually, moved, now_s, scrape, settled_status, value};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "operations";

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
    serve_on(dir, root, brokers, TOPIC)
}

fn serve_on(dir: &std::path::Path, root: &str, brokers: &str, topic: &str) -> Served {
    Served::start(
        dir,
        root,
        &[
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            topic,
            "--kafka-partitions",
            "4",
            "--metrics-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
    )
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

    // The HTTP bridges, by route and code: /healthz, an introspection
    // without credentials, a path no route has (counted as `other`).
    let http = node.http_address.clone().unwrap();
    let mut answered = Vec::new();
    for (route, path, form) in [
        ("/healthz", "/healthz", false),
        ("/oauth2/introspect", "/oauth2/introspect", true),
        ("other", "/no/such/route", false),
    ] {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if form {
            curl.args(["-d", "token=x"]);
        }
        let out = curl.arg(format!("http://{http}{path}")).output().unwrap();
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success() && code.len() == 3, "{out:?}");
        answered.push((route, code));
    }
    assert_eq!(answered[1].1, "401", "introspection without credentials");
    assert_eq!(answered[2].1, "404");

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
    for (route, code) in &answered {
        assert_eq!(
            moved(
                &before,
                &after,
                "baton_http_requests_total",
                &[("route", route), ("code", code)]
            ),
            1.0,
            "{route} {code}"
        );
        assert!(
            value(
                &after,
                "baton_http_request_seconds_count",
                &[("route", route)]
            ) >= 1.0,
            "{route}"
        );
    }
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

/// Each event's position, by event id, in `jti`'s chain as node `url` serves it.
async fn chain_positions(url: &str, jti: &str) -> BTreeMap<Vec<u8>, (u32, u64)> {
    let chain = v1::provenance_service_client::ProvenanceServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .get_chain(v1::GetChainRequest {
            token: Some(baton_proto::token_ref_to_wire(&Fixture::token(jti))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    chain
        .events
        .into_iter()
        .map(|e| {
            let at = e.position.unwrap();
            (e.event_id, (at.partition, at.offset))
        })
        .collect()
}

/// Every event's position, by event id, as node `url` lists them.
async fn event_positions(url: &str) -> BTreeMap<Vec<u8>, (u32, u64)> {
    let mut stream =
        v1::provenance_service_client::ProvenanceServiceClient::connect(url.to_owned())
            .await
            .unwrap()
            .list_events(v1::ListEventsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
    let mut out = BTreeMap::new();
    while let Some(entry) = stream.message().await.unwrap() {
        let event = entry.event.unwrap();
        let at = event.position.unwrap();
        out.insert(event.event_id, (at.partition, at.offset));
    }
    out
}

/// How many times node `url`'s Watch from the start delivers revocation `id`
/// (waits until it has delivered `want`, at most 20 s).
async fn deliveries(url: &str, id: &[u8], want: usize) -> usize {
    let mut watch = common::watch(url).await;
    let mut delivered = 0;
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(message) = watch.message().await.unwrap() {
            if message.revocation_event_id == id {
                delivered += 1;
                if delivered == want {
                    return;
                }
            }
        }
    })
    .await;
    delivered
}

/// Issue 21: where an event lives must not depend on the order in which a
/// node reads partitions. Copies of stored records are written straight
/// into other partitions — one below each original's partition, one above
/// — after node A applied the originals; node B is then rebuilt from zero
/// and reads them in whatever order its fetches return. Every event's
/// position is the least of its copies' on both nodes (A moved its own
/// answer), both digests are equal, and a revocation's copies all reach
/// Watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_in_other_partitions_give_one_position_and_one_digest_on_every_node() {
    const COPIES_TOPIC: &str = "positions";
    let cluster = KafkaCluster::shared();
    let (mut f, setup) = Fixture::standard(now_s());
    let root = hex::encode(f.root.public_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let a = serve_on(
        &dir.path().join("a"),
        &root,
        cluster.bootstrap(),
        COPIES_TOPIC,
    );
    append(&a.url(), &setup).await;
    // Root grants, one per Append: each keyed by its own tree, spread over
    // the four partitions; and a revocation of the first.
    let mut originals = Vec::new();
    for i in 0..12 {
        let grant = f.issue("as", &format!("p{i}"), "user:alice", "agent", 3600);
        let answer = append(&a.url(), std::slice::from_ref(&grant)).await;
        let at = answer.results[0].position.unwrap();
        originals.push((format!("p{i}"), grant, (at.partition, at.offset)));
    }
    let revocation = f.revoke(RevocationTarget::Token(Fixture::token("p0")));
    let answer = append(&a.url(), std::slice::from_ref(&revocation)).await;
    let at = answer.results[0].position.unwrap();
    let revoked_at = (at.partition, at.offset);
    settled_status(&a.url());

    // A copy of every record below its partition (when there is one) and
    // above it (when there is one), straight into Kafka.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .create()
        .unwrap();
    let mut copied = 0;
    let records = originals
        .iter()
        .map(|(_, event, at)| (event, *at))
        .chain([(&revocation, revoked_at)]);
    let mut expected = BTreeMap::new();
    for (event, (partition, offset)) in records {
        let bytes = baton_proto::encode_signed(event);
        let mut least = (partition, offset);
        for other in [
            partition.checked_sub(1),
            Some(partition + 1).filter(|p| *p < 4),
        ]
        .into_iter()
        .flatten()
        {
            let delivered = producer
                .send(
                    FutureRecord::to(COPIES_TOPIC)
                        .partition(other as i32)
                        .key("copy")
                        .payload(&bytes),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
            least = least.min((delivered.partition as u32, delivered.offset as u64));
            copied += 1;
        }
        expected.insert(event.id().0.to_vec(), least);
    }
    assert!(copied >= 13, "{copied}");
    assert!(
        expected.iter().any(|(id, least)| originals
            .iter()
            .any(|(_, e, at)| e.id().0.to_vec() == *id && at != least)),
        "no original was above one of its copies: the test would not see a move"
    );
    let status_a = settled_status(&a.url());

    // B: a node rebuilt from zero after the copies.
    let b = serve_on(
        &dir.path().join("b"),
        &root,
        cluster.bootstrap(),
        COPIES_TOPIC,
    );
    let status_b = settled_status(&b.url());
    for node in [&a, &b] {
        // Every copied event, the revocation among them, as listed.
        let listed = event_positions(&node.url()).await;
        for (id, least) in &expected {
            assert_eq!(
                listed.get(id),
                Some(least),
                "{} on {}: the least of its copies' positions",
                hex::encode(id),
                node.url()
            );
        }
        // And as GetChain shows each grant.
        for (jti, event, _) in &originals {
            let id = event.id().0.to_vec();
            let positions = chain_positions(&node.url(), jti).await;
            assert_eq!(
                positions.get(&id),
                expected.get(&id),
                "{jti} on {}",
                node.url()
            );
        }
    }
    assert_eq!(
        status_a["state_digest"], status_b["state_digest"],
        "the same records read give the same projection"
    );
    assert_eq!(status_a["events_applied"], status_b["events_applied"]);
    assert_eq!(status_a["duplicates"], status_b["duplicates"]);

    // Watch from the start, on both: the revocation once per copy (A read
    // the copies after the original; B in whatever order).
    let copies_of_revocation = 1 + [
        revoked_at.0.checked_sub(1),
        Some(revoked_at.0 + 1).filter(|p| *p < 4),
    ]
    .iter()
    .flatten()
    .count();
    for node in [&a, &b] {
        let id = revocation.id().0.to_vec();
        assert_eq!(
            deliveries(&node.url(), &id, copies_of_revocation).await,
            copies_of_revocation,
            "Watch on {}",
            node.url()
        );
    }
    a.stop();
    b.stop();
}
