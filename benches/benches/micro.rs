//! Micro-benchmarks of the hot paths, each next to the physical limit it is
//! bounded by: signing and strict verification (and batch verification, which
//! Baton does not use for verdicts), event hashing, payload decoding, the
//! projector's apply (per event and per 512-event batch), in-process
//! revocation checks at chain depths 1, 4 and 16, chain lookup, and a raw sled
//! get. Run: `cargo bench -p baton-benches --bench micro`.

use std::time::{Duration, Instant};

// The allocator of the `baton` binary, so in-process figures match the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use baton_benches::chains::{chain, records};
use baton_core::{Envelope, PAYLOAD_TYPE_EVENT_V1, TokenRef};
use baton_log::{EmbeddedLog, EventLog};
use baton_projector::{Projector, ProjectorOptions};
use baton_testkit::Fixture;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const NOW_S: i64 = 1_900_000_000;

fn projector(fixture: &Fixture) -> (tempfile::TempDir, Projector<EmbeddedLog>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("log");
    let projector = Projector::open(
        log,
        &dir.path().join("projection"),
        ProjectorOptions::new(fixture.policy()),
    )
    .expect("projector");
    (dir, projector)
}

fn crypto(c: &mut Criterion) {
    let (mut fixture, _) = Fixture::standard(NOW_S);
    let event = fixture.issue("as", "sample", "user:bench", "agent", 3600);
    let key = fixture.client("as").key.clone();
    let public = key.public_key();
    let payload = event.payload().to_vec();
    let mut group = c.benchmark_group("crypto");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, payload.clone()))
    });
    group.bench_function("verify_strict", |b| b.iter(|| event.verify(&public)));
    group.bench_function("event_id", |b| b.iter(|| event.id()));
    let bytes = baton_proto::encode_signed(&event);
    group.bench_function("decode_signed", |b| {
        b.iter(|| baton_proto::decode_signed(&bytes))
    });
    // Batch verification of 64 signatures by 64 keys: a comparison point only.
    let signers: Vec<_> = (0..64)
        .map(|_| baton_core::SigningKey::generate())
        .collect();
    let envelopes: Vec<Envelope> = signers
        .iter()
        .map(|k| Envelope::sign(k, PAYLOAD_TYPE_EVENT_V1, payload.clone()).expect("sign"))
        .collect();
    let messages: Vec<Vec<u8>> = envelopes
        .iter()
        .map(|e| baton_core::pae(e.payload_type(), e.payload()))
        .collect();
    let signatures: Vec<ed25519_dalek::Signature> = envelopes
        .iter()
        .map(|e| ed25519_dalek::Signature::from_bytes(e.signature()))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = signers
        .iter()
        .map(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.public_key().to_bytes()).expect("key"))
        .collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("verify_batch_64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&refs, &signatures, &keys))
    });
    group.finish();
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("projector_apply");
    for batch in [1usize, 512] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_{batch}"), |b| {
            let (mut fixture, setup) = Fixture::standard(NOW_S);
            let (_dir, projector) = projector(&fixture);
            let mut next = 0;
            projector
                .apply_records(&records(&setup, &mut next))
                .expect("setup");
            let mut n = 0usize;
            b.iter_custom(|iters| {
                // Sign outside the timed region: this measures applying only.
                let events: Vec<Envelope> = (0..iters as usize * batch)
                    .map(|_| {
                        n += 1;
                        fixture.issue("as", &format!("a{n}"), "user:bench", "agent", 3600)
                    })
                    .collect();
                let batches: Vec<_> = events
                    .chunks(batch)
                    .map(|chunk| records(chunk, &mut next))
                    .collect();
                let started = Instant::now();
                for records in &batches {
                    projector.apply_records(records).expect("apply");
                }
                started.elapsed()
            });
        });
    }
    group.finish();
}

/// A rebuild of a projection from offset zero of an embedded log, through
/// `Projector::run` (reads, parallel verification, apply, commit), the way a
/// node replays: the in-process counterpart of the load generator's replay.
fn replay(c: &mut Criterion) {
    let (mut fixture, mut events) = Fixture::standard(NOW_S);
    for i in 0..1250 {
        events.extend(chain(&mut fixture, &format!("r{i}"), 3));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("log");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let end = runtime.block_on(async {
        let appended = log
            .append(
                events
                    .iter()
                    .map(|e| baton_log::Record {
                        key: Vec::new(),
                        value: baton_proto::encode_signed(e),
                    })
                    .collect(),
            )
            .await;
        baton_log::ConsistencyToken::covering(appended.into_iter().map(|r| r.expect("append")))
            .expect("positions of this log")
    });
    let mut group = c.benchmark_group("projector_replay");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(format!("embedded_{}", events.len()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let projection = tempfile::tempdir().expect("temp dir");
                let projector = Projector::open(
                    log.clone(),
                    projection.path(),
                    ProjectorOptions::new(fixture.policy()),
                )
                .expect("projector");
                let handle = projector.handle();
                let started = Instant::now();
                runtime.block_on(async {
                    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                    let task = tokio::spawn(projector.run(async move {
                        let _ = stopped.await;
                    }));
                    handle
                        .wait_for(&end, Duration::from_secs(600))
                        .await
                        .expect("replayed");
                    total += started.elapsed();
                    let _ = stop.send(());
                    task.await.expect("task").expect("projector");
                });
                assert_eq!(
                    handle.counter("applied").expect("counter"),
                    events.len() as u64
                );
            }
            total
        });
    });
    group.finish();
}

fn queries(c: &mut Criterion) {
    let (mut fixture, mut events) = Fixture::standard(NOW_S);
    for depth in [1usize, 4, 16] {
        events.extend(chain(&mut fixture, &format!("d{depth}"), depth - 1));
    }
    // Unrelated history, so lookups are not in an empty store.
    for i in 0..2000 {
        events.extend(chain(&mut fixture, &format!("noise{i}"), 2));
    }
    let (_dir, projector) = projector(&fixture);
    let mut next = 0;
    for chunk in events.chunks(512) {
        projector
            .apply_records(&records(chunk, &mut next))
            .expect("apply");
    }
    let handle = projector.handle();
    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(1));
    for depth in [1usize, 4, 16] {
        let leaf = TokenRef::jti("t", &format!("d{depth}-{}", depth - 1)).expect("jti");
        let answer = handle.check(&leaf, None, NOW_S + 1).expect("check");
        assert_eq!(
            answer.record.as_ref().map(|r| r.depth as usize + 1),
            Some(depth),
            "fixture depth"
        );
        group.bench_function(format!("depth_{depth}"), |b| {
            b.iter(|| handle.check(&leaf, None, NOW_S + 1))
        });
    }
    group.finish();
    let leaf = TokenRef::jti("t", "d4-3").expect("jti");
    c.bench_function("chain/depth_4", |b| b.iter(|| handle.chain(&leaf)));
    // History pages read through the index aggregates (baton_projector's
    // `index`): a page of 100 token events, and a token's subtree.
    let issued = baton_projector::EventFilter {
        kind: Some(baton_core::EventKind::ScopeNarrowed),
        ..Default::default()
    };
    let page = handle.list_events(&issued, None, 100).expect("list");
    assert_eq!(page.len(), 100, "fixture history");
    c.bench_function("history/list_events_100", |b| {
        b.iter(|| handle.list_events(&issued, None, 100))
    });
    let root = TokenRef::jti("t", "d16-0").expect("jti");
    assert_eq!(
        handle.descendants(&root, 100).expect("descendants").len(),
        15
    );
    c.bench_function("history/descendants_15", |b| {
        b.iter(|| handle.descendants(&root, 100))
    });

    // The storage limit: a raw sled get of a value of a stored token's size.
    let db = sled::Config::new().temporary(true).open().expect("sled");
    let tree = db.open_tree("raw").expect("tree");
    for i in 0u64..100_000 {
        tree.insert(i.to_be_bytes(), vec![7u8; 200])
            .expect("insert");
    }
    let mut i = 0u64;
    c.bench_function("baseline/sled_get", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            tree.get(i.to_be_bytes())
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group!(name = benches; config = config(); targets = crypto, apply, replay, queries);
criterion_main!(benches);
