//! The load generator: drives two running nodes (sharing one Kafka) over gRPC
//! with a mix of appends, checks and revocations, and sets each figure next
//! to a baseline measured in the same run — an almost-empty gRPC call (health
//! Check) on the same node, at saturation and at the checks' fixed offered
//! rate (the generator's own timing is in both), a raw Kafka produce of the same bytes with the same
//! producer settings, raw ed25519 verification, and a raw sled get. Writes a
//! JSON report and a Markdown table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use baton_core::{Envelope, Policy, RevocationTarget, TokenRef};
use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::{EventLog, Record};
use baton_projector::{Projector, ProjectorOptions};
use baton_proto::v1;
use baton_testkit::Fixture;
use clap::Parser;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::stats::{Samples, round};

#[derive(Debug, Parser)]
#[command(
    name = "baton-bench",
    about = "Drive two Baton nodes and report figures against baselines"
)]
struct Args {
    /// Node A (writes), e.g. http://127.0.0.1:7700.
    #[arg(long)]
    node_a: String,
    /// Node B (a second node on the same Kafka topic).
    #[arg(long)]
    node_b: String,
    /// The trust-root key file the nodes trust (from `baton keygen`).
    #[arg(long)]
    trust_root_key: PathBuf,
    #[arg(long)]
    kafka_brokers: String,
    /// The nodes' topic (replay reads it) and its partitions.
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Node A's data directory, for bytes on disk.
    #[arg(long)]
    data_a: PathBuf,
    #[arg(long)]
    pid_a: u32,
    #[arg(long)]
    pid_b: u32,
    /// Seconds per timed check phase.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Offered rate of the fixed-rate check phase.
    #[arg(long, default_value_t = 10_000)]
    check_rate: u64,
    /// Events appended in the batch phase (trees of a root and three hops).
    #[arg(long, default_value_t = 20_000)]
    batch_events: usize,
    /// Events in the ledger the bootstrap phase starts a node from, by
    /// snapshot and by full replay (trees of a root and three hops).
    #[arg(long, default_value_t = 100_000)]
    bootstrap_events: usize,
    /// Where to write report.json and report.md.
    #[arg(long)]
    out: PathBuf,
}

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn phase(name: &str) {
    eprintln!("baton-bench: == {name}");
}

/// Prints progress once a second until dropped.
struct Progress {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    fn start(name: &'static str, done: Arc<AtomicU64>, total: Option<u64>) -> Progress {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                match total {
                    Some(t) => eprintln!("baton-bench:    {name}: {n}/{t} ({rate:.0}/s)"),
                    None => eprintln!("baton-bench:    {name}: {n} ({rate:.0}/s)"),
                }
            }
        });
        Progress { stop }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(baton_client::Endpoint::new(url).connect().await?.channel())
}

fn request(events: &[Envelope], return_before_applied: bool) -> v1::AppendRequest {
    baton_client::append_request(events, None, return_before_applied)
}

/// Sequential single-event appends: latency per call.
async fn append_single(
    channel: &Channel,
    events: &[Envelope],
    return_before_applied: bool,
) -> anyhow::Result<Samples> {
    let mut client = v1::ledger_service_client::LedgerServiceClient::new(channel.clone());
    let mut samples = Samples::default();
    let started = Instant::now();
    for event in events {
        let t = Instant::now();
        client
            .append(request(std::slice::from_ref(event), return_before_applied))
            .await?;
        samples.latencies.push(t.elapsed());
        samples.work += 1;
    }
    samples.elapsed = started.elapsed();
    Ok(samples)
}

/// Batches from `workers` concurrent writers: latency per batch, events/s.
async fn append_batches(
    channels: &[Channel],
    batches: Vec<Vec<Envelope>>,
    workers: usize,
) -> anyhow::Result<Samples> {
    let queue = Arc::new(tokio::sync::Mutex::new(batches));
    let done = Arc::new(AtomicU64::new(0));
    let total = queue.lock().await.iter().map(Vec::len).sum::<usize>() as u64;
    let _progress = Progress::start("append batches", done.clone(), Some(total));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (queue, done) = (queue.clone(), done.clone());
        let mut client = v1::ledger_service_client::LedgerServiceClient::new(
            channels[w % channels.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(batch) = queue.lock().await.pop() else {
                    break;
                };
                let t = Instant::now();
                client.append(request(&batch, false)).await?;
                latencies.push(t.elapsed());
                done.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut samples = Samples::default();
    for task in tasks {
        samples.latencies.extend(task.await??);
    }
    samples.elapsed = started.elapsed();
    samples.work = done.load(Ordering::Relaxed);
    Ok(samples)
}

/// The Kafka limit: the same record bytes through the same producer settings.
async fn raw_produce(
    brokers: &str,
    partitions: u32,
    records: Vec<Vec<Record>>,
    workers: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let mut options = KafkaOptions::new(brokers);
    options.topic = format!("bench-raw-{}", now_s());
    options.partitions = partitions;
    let log = KafkaLog::connect(options).await?;
    let mut single = Samples::default();
    let singles: Vec<Record> = records.iter().flatten().take(1000).cloned().collect();
    let started = Instant::now();
    for record in singles {
        let t = Instant::now();
        let outcome = log.append(vec![record]).await;
        if outcome.iter().any(Result::is_err) {
            bail!("raw produce failed: {outcome:?}");
        }
        single.latencies.push(t.elapsed());
        single.work += 1;
    }
    single.elapsed = started.elapsed();
    let queue = Arc::new(tokio::sync::Mutex::new(records));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (queue, log) = (queue.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut work) = (Vec::new(), 0u64);
            loop {
                let Some(batch) = queue.lock().await.pop() else {
                    break;
                };
                let n = batch.len() as u64;
                let t = Instant::now();
                let outcome = log.append(batch).await;
                if outcome.iter().any(Result::is_err) {
                    return Err(anyhow::anyhow!("raw produce failed"));
                }
                latencies.push(t.elapsed());
                work += n;
            }
            Ok((latencies, work))
        }));
    }
    let mut batched = Samples::default();
    for task in tasks {
        let (latencies, work) = task.await??;
        batched.latencies.extend(latencies);
        batched.work += work;
    }
    batched.elapsed = started.elapsed();
    Ok((single, batched))
}

/// Single-thread strict verification rate of the appended events.
fn raw_verify(events: &[Envelope], keys: &[baton_core::PublicKey]) -> Samples {
    let started = Instant::now();
    let mut samples = Samples::default();
    for (event, key) in events.iter().zip(keys.iter().cycle()) {
        let key = if key.key_id() == event.key_id() {
            key
        } else {
            keys.iter()
                .find(|k| k.key_id() == event.key_id())
                .expect("signer")
        };
        if event.verify(key).is_ok() {
            samples.work += 1;
        } else {
            samples.errors += 1;
        }
    }
    samples.elapsed = started.elapsed();
    samples
}

enum Call {
    Check(v1::CheckRequest),
    Health,
}

async fn call(channel: Channel, what: &Call) -> bool {
    match what {
        Call::Check(request) => {
            v1::revocation_service_client::RevocationServiceClient::new(channel)
                .check(request.clone())
                .await
                .is_ok()
        }
        Call::Health => {
            let request = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(request)
                .await
                .is_ok()
        }
    }
}

fn check_calls(tokens: &[TokenRef]) -> Arc<Vec<Call>> {
    Arc::new(
        tokens
            .iter()
            .map(|t| {
                Call::Check(v1::CheckRequest {
                    token: Some(baton_proto::token_ref_to_wire(t)),
                    ..Default::default()
                })
            })
            .collect(),
    )
}

/// Closed loop: `workers` callers back to back for `duration`.
async fn saturate(
    channels: &[Channel],
    calls: Arc<Vec<Call>>,
    workers: usize,
    duration: Duration,
    name: &'static str,
) -> Samples {
    let done = Arc::new(AtomicU64::new(0));
    let _progress = Progress::start(name, done.clone(), None);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (channel, calls, done) = (
            channels[w % channels.len()].clone(),
            calls.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut i) = (Vec::new(), 0u64, w);
            while started.elapsed() < duration {
                let t = Instant::now();
                if !call(channel.clone(), &calls[i % calls.len()]).await {
                    errors += 1;
                }
                latencies.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
                i += workers;
            }
            (latencies, errors)
        }));
    }
    let mut samples = Samples::default();
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            samples.work += latencies.len() as u64;
            samples.latencies.extend(latencies);
            samples.errors += errors;
        }
    }
    samples.elapsed = started.elapsed();
    samples
}

/// Open loop at a fixed offered rate; latency counts from the intended send
/// time, so a stall is not hidden by sending less (no coordinated omission).
async fn fixed_rate(
    channels: &[Channel],
    calls: Arc<Vec<Call>>,
    rate: u64,
    duration: Duration,
) -> Samples {
    let done = Arc::new(AtomicU64::new(0));
    let _progress = Progress::start(
        "checks at a fixed rate",
        done.clone(),
        Some(rate * duration.as_secs()),
    );
    let (send, mut receive) = tokio::sync::mpsc::unbounded_channel::<(Duration, bool)>();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let started = Instant::now();
    let total = rate * duration.as_secs();
    let tick = Duration::from_millis(1);
    let per_tick = (rate / 1000).max(1);
    let mut sent = 0u64;
    let mut next = tokio::time::Instant::now();
    while sent < total {
        for _ in 0..per_tick.min(total - sent) {
            let intended = next;
            let (channel, calls, done, send) = (
                channels[sent as usize % channels.len()].clone(),
                calls.clone(),
                done.clone(),
                send.clone(),
            );
            let permit = in_flight.clone().acquire_owned().await.expect("semaphore");
            let i = sent as usize;
            tokio::spawn(async move {
                let ok = call(channel, &calls[i % calls.len()]).await;
                let _ = send.send((intended.elapsed(), ok));
                done.fetch_add(1, Ordering::Relaxed);
                drop(permit);
            });
            sent += 1;
        }
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    drop(send);
    let mut samples = Samples::default();
    while let Some((latency, ok)) = receive.recv().await {
        samples.latencies.push(latency);
        samples.work += 1;
        if !ok {
            samples.errors += 1;
        }
    }
    samples.elapsed = started.elapsed();
    samples
}

/// Revoke on A (acknowledged when durable in Kafka), time until B's Watch
/// delivers it.
async fn propagation(
    a: &Channel,
    b: &Channel,
    revocations: Vec<Envelope>,
) -> anyhow::Result<Samples> {
    let mut checker = v1::revocation_service_client::RevocationServiceClient::new(b.clone());
    let probe = checker
        .check(v1::CheckRequest {
            token: Some(baton_proto::token_ref_to_wire(&TokenRef::jti(
                "p", "probe",
            )?)),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut watch = checker
        .watch(v1::WatchRequest {
            resume_token: probe.consistency_token,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::new(a.clone());
    let mut samples = Samples::default();
    let started = Instant::now();
    for revocation in revocations {
        let id = revocation.id().0.to_vec();
        ledger
            .append(request(std::slice::from_ref(&revocation), true))
            .await?;
        let acknowledged = Instant::now();
        loop {
            let seen = tokio::time::timeout(Duration::from_secs(30), watch.message())
                .await
                .context("node B's watch went quiet")??
                .context("watch ended")?;
            if seen.revocation_event_id == id {
                break;
            }
        }
        samples.latencies.push(acknowledged.elapsed());
        samples.work += 1;
    }
    samples.elapsed = started.elapsed();
    Ok(samples)
}

/// Times `lookup` over `keys` (one core, in process), `rounds` calls.
fn time_lookups<K>(keys: &[K], rounds: usize, mut lookup: impl FnMut(&K) -> bool) -> Samples {
    let mut samples = Samples {
        latencies: Vec::with_capacity(rounds),
        ..Default::default()
    };
    let started = Instant::now();
    for i in 0..rounds {
        let key = &keys[(i * 7919) % keys.len()];
        let t0 = Instant::now();
        let found = lookup(key);
        samples.latencies.push(t0.elapsed());
        if found {
            samples.work += 1;
        } else {
            samples.errors += 1;
        }
    }
    samples.elapsed = started.elapsed();
    samples
}

/// The SDK's Checker on node B: cache hits (in process, one core) next to a
/// `HashMap` lookup and a raw sled get of the same keys, timed the same way.
async fn checker_hits(b: &str, tokens: &[TokenRef]) -> anyhow::Result<(Samples, Samples, Samples)> {
    let checker = baton_client::Checker::start(
        baton_client::Endpoint::new(b).connect().await?,
        baton_client::CheckerConfig {
            capacity: tokens.len() * 2,
            ..Default::default()
        },
    )
    .await?;
    let mut keyed = Vec::with_capacity(tokens.len());
    for token in tokens {
        let answer = checker.check(token, None).await;
        let info = answer
            .token
            .filter(|_| answer.status == baton_client::Status::Active)
            .with_context(|| format!("{token} is not active at node B: {:?}", answer.status))?;
        keyed.push((token.clone(), info));
    }
    const ROUNDS: usize = 500_000;
    let hits = time_lookups(&keyed, ROUNDS, |(token, info)| {
        checker
            .cached(token, Some(&info.audience))
            .is_some_and(|a| a.allows())
    });
    let map: std::collections::HashMap<TokenRef, _> = keyed.iter().cloned().collect();
    let hashmap = time_lookups(&keyed, ROUNDS, |(token, _)| {
        map.get(token).map(Arc::clone).is_some()
    });
    let db = sled::Config::new().temporary(true).open()?;
    let tree = db.open_tree("raw")?;
    for (token, _) in &keyed {
        tree.insert(token.to_string().as_bytes(), vec![7u8; 200])?;
    }
    let sled = time_lookups(&keyed, ROUNDS, |(token, _)| {
        tree.get(token.to_string().as_bytes())
            .ok()
            .flatten()
            .is_some()
    });
    Ok((hits, hashmap, sled))
}

/// Revoke on A, time from the append's send until node B's Checker has
/// evicted the cached answer.
async fn checker_invalidation(
    a: &Channel,
    b: &str,
    tokens: &[TokenRef],
    revocations: Vec<Envelope>,
) -> anyhow::Result<Samples> {
    let checker = baton_client::Checker::start(
        baton_client::Endpoint::new(b).connect().await?,
        baton_client::CheckerConfig::default(),
    )
    .await?;
    for token in tokens {
        let answer = checker.check(token, None).await;
        if answer.status != baton_client::Status::Active {
            bail!("{token} is not active at node B: {:?}", answer.status);
        }
    }
    let mut ledger = v1::ledger_service_client::LedgerServiceClient::new(a.clone());
    let mut deliveries = checker.deliveries();
    let mut samples = Samples::default();
    let started = Instant::now();
    for revocation in revocations {
        let before = checker.stats().invalidations;
        let sent = Instant::now();
        ledger
            .append(request(std::slice::from_ref(&revocation), true))
            .await?;
        while checker.stats().invalidations == before {
            tokio::time::timeout(Duration::from_secs(30), deliveries.changed())
                .await
                .context("node B's checker heard nothing")??;
        }
        samples.latencies.push(sent.elapsed());
        samples.work += 1;
    }
    samples.elapsed = started.elapsed();
    Ok(samples)
}

/// Runs a projector over `log` in `dir` until it has applied the log's
/// end as it is now, then stops it; returns how long that took (from open)
/// and its handle.
pub async fn catch_up<L: EventLog>(
    log: L,
    dir: &Path,
    policy: Policy,
) -> anyhow::Result<(Duration, baton_projector::Handle)> {
    catch_up_with(log, dir, ProjectorOptions::new(policy)).await
}

/// [`catch_up`] with these projector options.
pub async fn catch_up_with<L: EventLog>(
    log: L,
    dir: &Path,
    options: ProjectorOptions,
) -> anyhow::Result<(Duration, baton_projector::Handle)> {
    let ends = log.end_offsets().await?;
    let started = Instant::now();
    let projector = Projector::open(log, dir, options)?;
    let handle = projector.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run(async move {
        let _ = stopped.await;
    }));
    handle
        .wait_for(
            &baton_log::ConsistencyToken::new(ends),
            Duration::from_secs(1800),
        )
        .await?;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok((elapsed, handle))
}

async fn kafka_log(args: &Args, topic: &str) -> anyhow::Result<KafkaLog> {
    let mut options = KafkaOptions::new(args.kafka_brokers.clone());
    options.topic = topic.to_owned();
    options.partitions = args.partitions;
    Ok(KafkaLog::connect(options).await?)
}

/// Rebuilds a projection of the nodes' topic from offset zero, verifying
/// every event; returns (samples, (bytes on disk, logical bytes) per event).
async fn replay(args: &Args, policy: Policy) -> anyhow::Result<(Samples, (f64, f64))> {
    let log = kafka_log(args, &args.topic).await?;
    let dir = tempfile::tempdir()?;
    let (elapsed, handle) = catch_up(log, dir.path(), policy).await?;
    let applied = handle.counter("applied")?;
    let per_event = |bytes: u64| bytes as f64 / applied.max(1) as f64;
    let bytes = (
        per_event(handle.size_on_disk()?),
        per_event(handle.logical_bytes()?),
    );
    Ok((
        Samples {
            latencies: Vec::new(),
            elapsed,
            work: applied,
            errors: handle.counter("quarantined")?,
        },
        bytes,
    ))
}

/// Writes `events` straight to `log` as batch records of 100 (trees of 4
/// events: a tree never split when `events` holds whole trees), 100 records
/// per append.
pub async fn write_trees<L: EventLog>(log: &L, events: &[Envelope]) -> anyhow::Result<()> {
    let records: Vec<Record> = events
        .chunks(100)
        .map(|batch| {
            let envelopes: Vec<&Envelope> = batch.iter().collect();
            Record {
                key: batch[0].id().0.to_vec(),
                value: baton_proto::encode_record(&envelopes),
            }
        })
        .collect();
    for chunk in records.chunks(100) {
        for (i, written) in log.append(chunk.to_vec()).await.into_iter().enumerate() {
            written.map_err(|e| anyhow::anyhow!("record {i}: {e}"))?;
        }
    }
    Ok(())
}

/// A new node's bootstrap on a ledger of `args.bootstrap_events` events
/// (its own topic): from a snapshot (restore, then read the tail written
/// after it) against a full replay of the same log, in the same run. Fails
/// if the two projections' state digests differ.
async fn bootstrap(
    args: &Args,
    f: &mut Fixture,
    setup: &[Envelope],
    policy: Policy,
) -> anyhow::Result<Value> {
    let topic = format!("{}-bootstrap", args.topic);
    let log = kafka_log(args, &topic).await?;
    let trees = args.bootstrap_events / 4;
    let tail_trees = 250;
    // The registrations as a record of their own, so every tree record
    // holds whole trees.
    write_trees(&log, setup).await?;
    let mut events = Vec::new();
    let mut tail = Vec::new();
    for t in 0..trees + tail_trees {
        let chain = crate::chains::chain(f, &format!("boot{t}"), 3);
        if t < trees {
            events.extend(chain);
        } else {
            tail.extend(chain);
        }
    }
    write_trees(&log, &events).await?;
    let work = tempfile::tempdir()?;
    // The ledger a node would snapshot: a full replay of it.
    let (first_replay, original) =
        catch_up(log.clone(), &work.path().join("original"), policy.clone()).await?;
    let file = work.path().join("ledger.snapshot");
    let started = Instant::now();
    let info = original.write_snapshot(&file)?;
    let snapshot_s = started.elapsed().as_secs_f64();
    let snapshot_bytes = std::fs::metadata(&file)?.len();
    drop(original);
    // The tail, written after the snapshot.
    write_trees(&log, &tail).await?;
    // From the snapshot: restore, then read only the tail.
    let started = Instant::now();
    let restored_dir = work.path().join("restored");
    baton_projector::restore_snapshot(&file, &restored_dir)?;
    let restore_s = started.elapsed().as_secs_f64();
    let (tail_catch_up, restored) = catch_up(log.clone(), &restored_dir, policy.clone()).await?;
    let from_snapshot_s = started.elapsed().as_secs_f64();
    // A full replay of the same log.
    let (full, replayed) = catch_up(log, &work.path().join("replayed"), policy).await?;
    let equal = restored.state_digest()? == replayed.state_digest()?;
    if !equal {
        bail!("a snapshot-bootstrapped projection differs from a full replay's");
    }
    let tail_records = tail.len().div_ceil(100) as u64;
    if restored.records_read() != tail_records {
        bail!(
            "the node started from the snapshot read {} records, not the tail's {tail_records}",
            restored.records_read()
        );
    }
    let applied = replayed.counter("applied")?;
    Ok(json!({
        "events": applied,
        "snapshot_entries": info.entries,
        "tail_events": tail.len(),
        "first_replay_s": round(first_replay.as_secs_f64()),
        "full_replay_s": round(full.as_secs_f64()),
        "snapshot_create_s": round(snapshot_s),
        "snapshot_mib": round(snapshot_bytes as f64 / (1024.0 * 1024.0)),
        "restore_s": round(restore_s),
        "tail_catch_up_s": round(tail_catch_up.as_secs_f64()),
        "tail_records_read": restored.records_read(),
        "from_snapshot_s": round(from_snapshot_s),
        "full_replay_over_from_snapshot": round(full.as_secs_f64() / from_snapshot_s),
        "state_digests_equal": equal,
    }))
}

/// Bytes of the files under `path`.
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// A line of `/proc/{process}/status` (`process`: a pid, or `self`), in KiB;
/// 0 if it cannot be read.
pub fn status_kib(process: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmHWM:")
}

fn raw_sled_get() -> anyhow::Result<Samples> {
    let db = sled::Config::new().temporary(true).open()?;
    let tree = db.open_tree("raw")?;
    for i in 0u64..100_000 {
        tree.insert(i.to_be_bytes(), vec![7u8; 200])?;
    }
    let started = Instant::now();
    let (mut i, mut work) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(2) {
        for _ in 0..1000 {
            i = (i + 7919) % 100_000;
            if tree.get(i.to_be_bytes())?.is_some() {
                work += 1;
            }
        }
    }
    Ok(Samples {
        latencies: Vec::new(),
        elapsed: started.elapsed(),
        work,
        errors: 0,
    })
}

pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = baton::keys::load(&args.trust_root_key)?;
    let run = format!("r{}-", now_s());
    let (mut f, setup) = Fixture::standard_with(Fixture::with_root(root, now_s()), &run);
    let policy = f.policy();
    let channels_a = vec![
        channel(&args.node_a).await?,
        channel(&args.node_a).await?,
        channel(&args.node_a).await?,
        channel(&args.node_a).await?,
    ];
    let channel_b = channel(&args.node_b).await?;
    let mut report = serde_json::Map::new();

    phase("setup: registrations");
    append_single(&channels_a[0], &setup, false).await?;
    let (setup_copy, policy_copy) = (setup.clone(), policy.clone());

    phase("append: 1000 single events, one at a time");
    let singles: Vec<Envelope> = (0..1000)
        .map(|i| {
            f.issue(
                "as",
                &format!("single-{i}"),
                "user:bench",
                "agent",
                24 * 3600,
            )
        })
        .collect();
    let single = append_single(&channels_a[0], &singles, false).await?;
    let no_wait: Vec<Envelope> = (0..1000)
        .map(|i| {
            f.issue(
                "as",
                &format!("nowait-{i}"),
                "user:bench",
                "agent",
                24 * 3600,
            )
        })
        .collect();
    let single_no_wait = append_single(&channels_a[0], &no_wait, true).await?;
    report.insert("append_single".into(), single.json());
    report.insert(
        "append_single_return_before_applied".into(),
        single_no_wait.json(),
    );

    phase("append: batches of 100 (25 trees of a root and three hops), 4 writers");
    let trees = args.batch_events / 4;
    let mut batch_events = Vec::with_capacity(trees * 4);
    let mut tokens = Vec::with_capacity(trees * 4);
    for t in 0..trees {
        let chain = crate::chains::chain(&mut f, &format!("tree{t}"), 3);
        for n in 0..4 {
            tokens.push(f.token_of(&format!("tree{t}-{n}")));
        }
        batch_events.extend(chain);
    }
    let records: Vec<Vec<Record>> = batch_events
        .chunks(100)
        .map(|chunk| {
            chunk
                .iter()
                .map(|e| Record {
                    key: e.id().0.to_vec(),
                    value: baton_proto::encode_signed(e),
                })
                .collect()
        })
        .collect();
    let batches: Vec<Vec<Envelope>> = batch_events.chunks(100).map(<[Envelope]>::to_vec).collect();
    let batched = append_batches(&channels_a, batches, 4).await?;
    report.insert("append_batch_100".into(), batched.json());

    phase("baseline: raw Kafka produce of the same bytes (idempotent, acks=all)");
    let (produce_single, produce_batched) =
        raw_produce(&args.kafka_brokers, args.partitions, records, 4).await?;
    report.insert(
        "baseline_kafka_produce_single".into(),
        produce_single.json(),
    );
    report.insert(
        "baseline_kafka_produce_batch_100".into(),
        produce_batched.json(),
    );

    phase("baseline: strict ed25519 verification, one core");
    let keys: Vec<baton_core::PublicKey> = ["as", "agent", "gateway", "server-a", "server-b"]
        .iter()
        .map(|c| f.client(c).key.public_key())
        .collect();
    let verify = raw_verify(&batch_events, &keys);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    report.insert("baseline_verify_one_core".into(), verify.json());

    phase("checks: fixed offered rate");
    let calls = check_calls(&tokens);
    let duration = Duration::from_secs(args.duration_s);
    let fixed = fixed_rate(&channels_a, calls.clone(), args.check_rate, duration).await;
    report.insert(
        "check_fixed_rate".into(),
        json!({"offered_per_s": args.check_rate, "result": fixed.json()}),
    );

    phase("baseline: empty gRPC call (health Check) at the same fixed offered rate");
    let empty_fixed = fixed_rate(
        &channels_a,
        Arc::new(vec![Call::Health]),
        args.check_rate,
        duration,
    )
    .await;
    report.insert(
        "baseline_empty_rpc_fixed_rate".into(),
        json!({"offered_per_s": args.check_rate, "result": empty_fixed.json()}),
    );

    phase("checks: saturation, 32 callers");
    let saturated = saturate(&channels_a, calls, 32, duration, "checks at saturation").await;
    report.insert("check_saturation".into(), saturated.json());

    phase("baseline: empty gRPC call (health Check) on the same node, 32 callers");
    let empty = saturate(
        &channels_a,
        Arc::new(vec![Call::Health]),
        32,
        duration,
        "health checks",
    )
    .await;
    report.insert("baseline_empty_rpc".into(), empty.json());

    phase("propagation: revoke on A, acknowledged -> seen by B's Watch (200 revocations)");
    let revocations: Vec<Envelope> = (0..200)
        .map(|t| f.revoke(RevocationTarget::Token(f.token_of(&format!("tree{t}-1")))))
        .collect();
    let propagated = propagation(&channels_a[0], &channel_b, revocations).await?;
    report.insert("propagation_a_to_b".into(), propagated.json());

    phase("checker: in-process cache hits against a HashMap and a raw sled get (1000 tokens)");
    let leaves = |range: std::ops::Range<usize>| -> Vec<TokenRef> {
        range
            .filter(|t| *t < trees)
            .map(|t| f.token_of(&format!("tree{t}-3")))
            .collect()
    };
    let (hits, hashmap, sled_hits) = checker_hits(&args.node_b, &leaves(200..1200)).await?;
    report.insert("checker_hit".into(), hits.json_us());
    report.insert("baseline_hashmap_get".into(), hashmap.json_us());
    report.insert("baseline_sled_get_same_keys".into(), sled_hits.json_us());

    phase("checker: revoke on A, sent -> evicted from node B's checker (200 revocations)");
    let doomed = leaves(1200..1400);
    let revocations: Vec<Envelope> = doomed
        .iter()
        .map(|token| f.revoke(RevocationTarget::Token(token.clone())))
        .collect();
    let invalidated =
        checker_invalidation(&channels_a[0], &args.node_b, &doomed, revocations).await?;
    report.insert("checker_invalidation_a_to_b".into(), invalidated.json());

    phase("replay: rebuild a projection of the topic from offset zero, verifying everything");
    let (replayed, replay_bytes) = replay(&args, policy).await?;
    report.insert("replay".into(), replayed.json());

    phase("bootstrap: a new node from a snapshot vs a full replay");
    let booted = bootstrap(&args, &mut f, &setup_copy, policy_copy).await?;
    eprintln!("baton-bench:    {booted}");
    report.insert("bootstrap".into(), booted);

    phase("disk, memory, raw sled get");
    let applied = replayed.work.max(1);
    let node_bytes = dir_bytes(&args.data_a.join("projection")) as f64 / applied as f64;
    report.insert(
        "disk".into(),
        json!({
            "events": applied,
            "node_a_projection_bytes_per_event": round(node_bytes),
            "replay_projection_bytes_per_event": round(replay_bytes.0),
            "logical_bytes_per_event": round(replay_bytes.1),
        }),
    );
    report.insert("peak_rss_mib".into(), json!({"node_a": round(peak_rss_kib(args.pid_a) as f64 / 1024.0), "node_b": round(peak_rss_kib(args.pid_b) as f64 / 1024.0)}));
    let sled_get = raw_sled_get()?;
    report.insert("baseline_sled_get_one_core".into(), sled_get.json());

    let ratios = json!({
        "check_max_over_empty_rpc": round(saturated.rate() / empty.rate()),
        "check_p99_over_empty_rpc_p99_at_rate": round(
            fixed.percentile_ms(99.0) / empty_fixed.percentile_ms(99.0)
        ),
        "append_batch_over_raw_produce": round(batched.rate() / produce_batched.rate()),
        "append_batch_over_verify_all_cores": round(batched.rate() / (verify.rate() * cores)),
        "replay_over_verify_one_core": round(replayed.rate() / verify.rate()),
        "checker_hit_p99_over_hashmap_p99": round(hits.percentile_us(99.0) / hashmap.percentile_us(99.0)),
        "checker_hit_p99_over_sled_p99": round(hits.percentile_us(99.0) / sled_hits.percentile_us(99.0)),
    });
    report.insert("ratios".into(), ratios);
    report.insert("machine".into(), json!({"cores": cores, "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()}));
    let report = Value::Object(report);
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let markdown = markdown(&report, cores);
    std::fs::write(args.out.join("report.md"), &markdown)?;
    println!("{markdown}");
    Ok(())
}

fn get(report: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(report, |v, k| &v[k])
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// The Markdown table: each figure, its baseline and ratio, and its target.
fn markdown(r: &Value, cores: f64) -> String {
    let verify_all = get(r, "baseline_verify_one_core.per_s") * cores;
    let append_limit = get(r, "baseline_kafka_produce_batch_100.per_s").min(verify_all);
    let rows = [
        (
            "check over gRPC, p99 at the offered rate (ms)",
            get(r, "check_fixed_rate.result.p99_ms"),
            &*format!(
                "empty RPC at the same rate: p99 {} ms, p50 {} ms → ratio {}",
                get(r, "baseline_empty_rpc_fixed_rate.result.p99_ms"),
                get(r, "baseline_empty_rpc_fixed_rate.result.p50_ms"),
                get(r, "ratios.check_p99_over_empty_rpc_p99_at_rate")
            ),
            "≤ 1 ms",
            get(r, "check_fixed_rate.result.p99_ms") <= 1.0,
        ),
        (
            "check over gRPC, p50 / p99.9 at the offered rate (ms)",
            get(r, "check_fixed_rate.result.p50_ms"),
            &*format!("p99.9 {}", get(r, "check_fixed_rate.result.p999_ms")),
            "",
            true,
        ),
        (
            "check over gRPC, max throughput (/s)",
            get(r, "check_saturation.per_s"),
            &*format!(
                "empty RPC {:.0}/s → ratio {}",
                get(r, "baseline_empty_rpc.per_s"),
                get(r, "ratios.check_max_over_empty_rpc")
            ),
            "≥ 0.70 of empty RPC",
            get(r, "ratios.check_max_over_empty_rpc") >= 0.7,
        ),
        (
            "verified append, batches of 100 (events/s)",
            get(r, "append_batch_100.per_s"),
            &*format!(
                "limit {append_limit:.0}/s (raw produce {:.0}, verify ×{cores} cores {verify_all:.0}) → ratio {:.3}",
                get(r, "baseline_kafka_produce_batch_100.per_s"),
                get(r, "append_batch_100.per_s") / append_limit
            ),
            "≥ 10k/s and ≥ 0.60 of limit",
            get(r, "append_batch_100.per_s") >= 10_000.0
                && get(r, "append_batch_100.per_s") / append_limit >= 0.6,
        ),
        (
            "single-event append, p99 (ms)",
            get(r, "append_single.p99_ms"),
            &*format!(
                "raw produce p99 {} ms; without waiting for apply p99 {} ms",
                get(r, "baseline_kafka_produce_single.p99_ms"),
                get(r, "append_single_return_before_applied.p99_ms")
            ),
            "≤ 20 ms",
            get(r, "append_single.p99_ms") <= 20.0,
        ),
        (
            "propagation A → B, p99 (ms)",
            get(r, "propagation_a_to_b.p99_ms"),
            &*format!(
                "p50 {} ms, max {} ms",
                get(r, "propagation_a_to_b.p50_ms"),
                get(r, "propagation_a_to_b.max_ms")
            ),
            "≤ 100 ms",
            get(r, "propagation_a_to_b.p99_ms") <= 100.0,
        ),
        (
            "Checker cache hit, in process, p99 (µs)",
            get(r, "checker_hit.p99_us"),
            &*format!(
                "p50 {} µs; HashMap get p50 {} / p99 {} µs (ratio {}); sled get p50 {} / p99 {} µs (ratio {})",
                get(r, "checker_hit.p50_us"),
                get(r, "baseline_hashmap_get.p50_us"),
                get(r, "baseline_hashmap_get.p99_us"),
                get(r, "ratios.checker_hit_p99_over_hashmap_p99"),
                get(r, "baseline_sled_get_same_keys.p50_us"),
                get(r, "baseline_sled_get_same_keys.p99_us"),
                get(r, "ratios.checker_hit_p99_over_sled_p99"),
            ),
            "≤ 5 µs",
            get(r, "checker_hit.p99_us") <= 5.0,
        ),
        (
            "revocation on A → evicted from B's Checker, p99 (ms)",
            get(r, "checker_invalidation_a_to_b.p99_ms"),
            &*format!(
                "p50 {} ms, max {} ms (from the append's send; Kafka, two nodes)",
                get(r, "checker_invalidation_a_to_b.p50_ms"),
                get(r, "checker_invalidation_a_to_b.max_ms")
            ),
            "≤ 50 ms",
            get(r, "checker_invalidation_a_to_b.p99_ms") <= 50.0,
        ),
        (
            "replay with full verification (events/s)",
            get(r, "replay.per_s"),
            &*format!(
                "verify one core {:.0}/s → ratio {}",
                get(r, "baseline_verify_one_core.per_s"),
                get(r, "ratios.replay_over_verify_one_core")
            ),
            "≥ 30k/s",
            get(r, "replay.per_s") >= 30_000.0,
        ),
        (
            "new node from a snapshot: restore + read the tail (s)",
            get(r, "bootstrap.from_snapshot_s"),
            &*format!(
                "full replay of the same {:.0} events {} s → {}× faster (restore {} s, tail of {} events {} s; snapshot taken in {} s, {} MiB; digests equal: {})",
                get(r, "bootstrap.events"),
                get(r, "bootstrap.full_replay_s"),
                get(r, "bootstrap.full_replay_over_from_snapshot"),
                get(r, "bootstrap.restore_s"),
                get(r, "bootstrap.tail_events"),
                get(r, "bootstrap.tail_catch_up_s"),
                get(r, "bootstrap.snapshot_create_s"),
                get(r, "bootstrap.snapshot_mib"),
                r["bootstrap"]["state_digests_equal"]
            ),
            "faster than a full replay",
            get(r, "bootstrap.full_replay_over_from_snapshot") > 1.0,
        ),
        (
            "projection bytes on disk per event",
            get(r, "disk.node_a_projection_bytes_per_event"),
            &*format!(
                "fresh rebuild {}",
                get(r, "disk.replay_projection_bytes_per_event")
            ),
            "≤ 1 KiB",
            get(r, "disk.node_a_projection_bytes_per_event") <= 1024.0,
        ),
        (
            "peak RSS node A / B (MiB)",
            get(r, "peak_rss_mib.node_a"),
            &*format!("node B {}", get(r, "peak_rss_mib.node_b")),
            "",
            true,
        ),
        (
            "raw sled get, one core (/s)",
            get(r, "baseline_sled_get_one_core.per_s"),
            "",
            "",
            true,
        ),
    ];
    let mut out = String::from(
        "| measure | figure | baseline / detail | target | met |\n| --- | --- | --- | --- | --- |\n",
    );
    for (name, figure, detail, target, met) in rows {
        let mark = if target.is_empty() {
            ""
        } else if met {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!(
            "| {name} | {} | {detail} | {target} | {mark} |\n",
            round(figure)
        ));
    }
    out
}
