//! `baton-bench-freshness`: how long a node cut off from the log keeps
//! answering ACTIVE for what was revoked elsewhere, and what a flood of
//! parked records costs revocations (issue 20).
//!
//! Starts a single-broker Kafka with a detour listener (`kafka.sh start
//! --detour`, through `baton-testkit`) and two `baton serve` nodes (the binary
//! given) on one 4-partition topic: A reaches Kafka directly, B only through
//! proxies this process cuts (connections reset) and stalls (connections
//! open, nothing carried) and heals. Both run the default freshness bound
//! (`max_staleness` 5 s, confirmed every 1 s), and `limits.park_grace_ms` of
//! ten minutes, so the flood below stays parked while it is measured (by
//! default a record missing its dependency is quarantined 5 s after the log
//! as of a later moment was read).
//!
//! 2. **False-ACTIVE window.** `--revocations` tokens are issued and B has
//!    them; then A revokes them one at a time (each acknowledged, i.e.
//!    durable in Kafka) while B's link is cut, stalled and healed on a seeded
//!    schedule (outages of 1.5–8 s, healed 1–3 s). A prober asks B (`Check`)
//!    for every revoked token until B answers REVOKED; a token's window is
//!    from A's acknowledgement to the arrival of B's last ACTIVE answer to a
//!    probe sent after it (0 if none). The bound a node promises is
//!    `max_staleness` plus one confirm interval.
//! 1. **Parked flood.** Revocation on A, acknowledged → seen on B's Watch and
//!    → evicted from a `Checker` fed by B, for `--flood-revocations`
//!    revocations, first with nothing parked, then with `--parked` records
//!    parked on both nodes (hops whose parents are not in the log, written
//!    straight into the topic); then the parents are appended through A and
//!    every parked hop must apply on B.
//!
//! Prints one JSON object and a Markdown table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use baton_benches::stats::{Samples, round};
use baton_core::{Envelope, RevocationTarget, SigningKey, TokenRef};
use baton_proto::v1;
use baton_testkit::{Detour, Fixture, KafkaCluster};
use clap::Parser;
use tonic::transport::Channel;

#[derive(Parser)]
struct Args {
    /// The `baton` binary.
    #[arg(long, default_value = "target/release/baton")]
    baton: std::path::PathBuf,
    /// Revocations in the false-ACTIVE phase.
    #[arg(long, default_value_t = 100)]
    revocations: usize,
    /// Pause between two of them (ms).
    #[arg(long, default_value_t = 250)]
    revoke_every_ms: u64,
    /// Seed of the cut/heal schedule.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Records parked in the flood phase.
    #[arg(long, default_value_t = 10_000)]
    parked: usize,
    /// Revocations timed in each half of the flood phase.
    #[arg(long, default_value_t = 200)]
    flood_revocations: usize,
}

/// The node's defaults (`freshness.max_staleness_ms`, `confirm_interval_ms`).
const MAX_STALENESS: Duration = Duration::from_secs(5);
const CONFIRM_INTERVAL: Duration = Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let outcome = runtime.block_on(run(Args::parse(), dir.path()));
    if outcome.is_err() {
        for name in ["a", "b"] {
            let log =
                std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("-- node {name}'s log, last lines:");
            tail.iter().rev().for_each(|line| eprintln!("{line}"));
        }
    }
    outcome
}

fn now_s() -> i64 {
    baton_client::events::now().0
}

async fn run(args: Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let cluster = KafkaCluster::start_detoured(1).map_err(anyhow::Error::msg)?;
    let detour = cluster.detour().map_err(anyhow::Error::msg)?;
    let root = SigningKey::generate();
    let topic = format!("freshness-{}", now_s());
    let a = Node::start(&args.baton, dir, "a", &root, cluster.bootstrap(), &topic)?;
    let b = Node::start(&args.baton, dir, "b", &root, detour.bootstrap(), &topic)?;
    let (mut f, setup) = Fixture::standard_with(Fixture::with_root(root, now_s()), "fr-");
    let (ca, cb) = (a.channel().await?, b.channel().await?);
    append(&ca, &setup).await?;

    eprintln!(
        "== parked flood: revocations without, then with {} parked records",
        args.parked
    );
    let quiet = revocation_latencies(&mut f, &ca, &b, "quiet", args.flood_revocations).await?;
    let flood = Flood::write(&mut f, &cluster, &topic, args.parked).await?;
    wait_until(
        &cb,
        "B parked every flood record",
        Duration::from_secs(120),
        |s| s.parked >= args.parked as u64,
    )
    .await?;
    let flooded = revocation_latencies(&mut f, &ca, &b, "flood", args.flood_revocations).await?;
    let applied_in = flood.complete(&ca, &cb).await?;

    eprintln!(
        "== false-ACTIVE window: {} revocations while B is cut, stalled and healed",
        args.revocations
    );
    let windows = false_active(&args, &mut f, &ca, &cb, &detour).await?;
    let bound = MAX_STALENESS + CONFIRM_INTERVAL;

    let ms = |d: Duration| round(d.as_secs_f64() * 1000.0);
    let ratio = |with: &Samples, without: &Samples| {
        round(with.percentile_ms(99.0) / without.percentile_ms(99.0))
    };
    let json = |s: &Option<Samples>| s.as_ref().map_or(serde_json::Value::Null, Samples::json);
    let report = serde_json::json!({
        "false_active": {
            "revocations": args.revocations,
            "outages": windows.outages,
            "answered_active_after_ack": windows.samples.latencies.iter().filter(|d| !d.is_zero()).count(),
            "window_p50_ms": round(windows.samples.percentile_ms(50.0)),
            "window_p99_ms": round(windows.samples.percentile_ms(99.0)),
            "window_max_ms": round(windows.samples.max_ms()),
            "bound_ms": ms(bound),
            "within_bound": windows.samples.latencies.iter().all(|d| *d <= bound),
        },
        "parked_flood": {
            "parked": args.parked,
            "revoked_on_b": {"quiet": quiet.visible.json(), "flood": flooded.visible.json(),
                             "p99_ratio": ratio(&flooded.visible, &quiet.visible)},
            "seen_on_b_watch": {"quiet": json(&quiet.seen), "flood": json(&flooded.seen)},
            "evicted_from_b_checker": {"quiet": json(&quiet.evicted), "flood": json(&flooded.evicted),
                                       "p99_ratio": quiet.evicted.as_ref().zip(flooded.evicted.as_ref())
                                           .map(|(quiet, flooded)| ratio(flooded, quiet))},
            "checker_fed_by_b_while_parked": flooded.checker.clone().unwrap_or_else(|| "fresh".into()),
            "parents_appended_then_all_parked_applied_s": round(applied_in.as_secs_f64()),
        },
    });
    println!("{report:#}");
    println!(
        "\n| false-ACTIVE window on B ({} revocations, {} outages) | ms |",
        args.revocations, windows.outages
    );
    println!("| --- | --- |");
    println!(
        "| p50 / p99 / max | {:.0} / {:.0} / {:.0} |",
        windows.samples.percentile_ms(50.0),
        windows.samples.percentile_ms(99.0),
        windows.samples.max_ms()
    );
    println!(
        "| bound (max_staleness + confirm interval) | {:.0} |",
        ms(bound)
    );
    println!(
        "\n| revocation on A, acknowledged → | p50 / p99 ms, nothing parked | p50 / p99 ms, {} parked |",
        args.parked
    );
    println!("| --- | --- | --- |");
    let cell = |s: &Option<Samples>, why: &Option<String>| match s {
        Some(s) => format!(
            "{:.1} / {:.1}",
            s.percentile_ms(50.0),
            s.percentile_ms(99.0)
        ),
        None => why.clone().unwrap_or_default(),
    };
    println!(
        "| B answers REVOKED | {} | {} (p99 ratio {:.2}) |",
        cell(&Some(quiet.visible.clone()), &None),
        cell(&Some(flooded.visible.clone()), &None),
        ratio(&flooded.visible, &quiet.visible)
    );
    println!(
        "| seen on B's Watch | {} | {} |",
        cell(&quiet.seen, &quiet.checker),
        cell(&flooded.seen, &flooded.checker)
    );
    println!(
        "| evicted from a Checker fed by B | {} | {}{} |",
        cell(&quiet.evicted, &quiet.checker),
        cell(&flooded.evicted, &flooded.checker),
        match (&quiet.evicted, &flooded.evicted) {
            (Some(quiet), Some(flooded)) => format!(" (p99 ratio {:.2})", ratio(flooded, quiet)),
            _ => String::new(),
        }
    );
    println!(
        "\nparents appended, then all {} parked hops applied on B: {:.1} s",
        args.parked,
        applied_in.as_secs_f64()
    );
    a.stop();
    b.stop();
    if !windows.samples.latencies.iter().all(|d| *d <= bound) {
        bail!("a revocation was answered ACTIVE by B past the bound ({bound:?})");
    }
    Ok(())
}

/// A `baton serve` child on loopback, plaintext with loopback admin;
/// killed when dropped.
struct Node {
    child: std::process::Child,
    port: u16,
}

impl Node {
    fn start(
        baton: &std::path::Path,
        dir: &std::path::Path,
        name: &str,
        root: &SigningKey,
        brokers: &str,
        topic: &str,
    ) -> anyhow::Result<Node> {
        let port = baton_testkit::tools::free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, "[limits]\npark_grace_ms = 600000\n")?;
        let child = std::process::Command::new(baton)
            .args(["serve", "--loopback-admin", "--config"])
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.join(name))
            .arg("--trust-root")
            .arg(hex::encode(root.public_key().to_bytes()))
            .args([
                "--kafka-brokers",
                brokers,
                "--kafka-topic",
                topic,
                "--kafka-partitions",
                "4",
            ])
            .env("BATON_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", baton.display()))?;
        baton_testkit::tools::wait_for_port(port, Duration::from_secs(120))
            .map_err(anyhow::Error::msg)?;
        Ok(Node { child, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(baton_client::Endpoint::new(self.url())
            .connect()
            .await?
            .channel())
    }

    /// Kills the node now (see the `Drop` below).
    fn stop(self) {}
}

/// A node is stopped however the run ends (an error returns early).
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends `events` as one batch on `node`; its consistency token.
async fn append(node: &Channel, events: &[Envelope]) -> anyhow::Result<String> {
    let request = baton_client::append_request(events, None, false);
    let answer = v1::ledger_service_client::LedgerServiceClient::new(node.clone())
        .append(request)
        .await?
        .into_inner();
    Ok(answer.consistency_token)
}

async fn check(node: &Channel, token: &TokenRef, after: &str) -> Result<i32, tonic::Status> {
    let mut client = v1::revocation_service_client::RevocationServiceClient::new(node.clone());
    let mut request = tonic::Request::new(v1::CheckRequest {
        token: Some(baton_proto::token_ref_to_wire(token)),
        consistency_token: after.to_owned(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(2));
    Ok(client.check(request).await?.into_inner().status)
}

async fn status(node: &Channel) -> anyhow::Result<v1::StatusResponse> {
    Ok(
        v1::admin_service_client::AdminServiceClient::new(node.clone())
            .status(v1::StatusRequest::default())
            .await?
            .into_inner(),
    )
}

async fn wait_until(
    node: &Channel,
    what: &str,
    within: Duration,
    done: impl Fn(&v1::StatusResponse) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(now) = status(node).await
            && done(&now)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not within {within:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Windows {
    samples: Samples,
    outages: usize,
}

/// One revoked token as the prober sees it.
struct Probe {
    token: TokenRef,
    acknowledged: Instant,
    /// The latest ACTIVE answer to a probe sent after the acknowledgement.
    last_active: Option<Instant>,
    revoked_on_b: bool,
}

async fn false_active(
    args: &Args,
    f: &mut Fixture,
    a: &Channel,
    b: &Channel,
    detour: &Detour,
) -> anyhow::Result<Windows> {
    let grants: Vec<Envelope> = (0..args.revocations)
        .map(|i| f.issue("as", &format!("win-{i}"), "user:window", "agent", 3600))
        .collect();
    let tokens: Vec<TokenRef> = (0..args.revocations)
        .map(|i| f.token_of(&format!("win-{i}")))
        .collect();
    let written = append(a, &grants).await?;
    for token in &tokens {
        let answer = check(b, token, &written).await?;
        if answer != v1::TokenStatus::Active as i32 {
            bail!("{token} is not ACTIVE on B before the run: {answer}");
        }
    }
    let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let prober = tokio::spawn({
        let (probes, writing, b) = (probes.clone(), writing.clone(), b.clone());
        async move {
            loop {
                let pending: Vec<(usize, TokenRef)> = probes
                    .lock()
                    .expect("probes")
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.revoked_on_b)
                    .map(|(i, p)| (i, p.token.clone()))
                    .collect();
                if pending.is_empty() && !writing.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                for (i, token) in pending {
                    let sent = Instant::now();
                    let answer = check(&b, &token, "").await;
                    let mut probes = probes.lock().expect("probes");
                    let probe = &mut probes[i];
                    match answer {
                        Ok(s)
                            if s == v1::TokenStatus::Active as i32 && sent > probe.acknowledged =>
                        {
                            probe.last_active = Some(Instant::now());
                        }
                        Ok(s) if s == v1::TokenStatus::Revoked as i32 => probe.revoked_on_b = true,
                        _ => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    // The outage schedule: a seeded sequence of cuts and stalls.
    let mut state = args
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |lo: u64, hi: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (state >> 33) % (hi - lo)
    };
    let mut outages = 0;
    let mut link_changes = Instant::now();
    let mut cut = false;
    let mut writer = v1::ledger_service_client::LedgerServiceClient::new(a.clone());
    for (i, token) in tokens.iter().enumerate() {
        if link_changes <= Instant::now() {
            if cut {
                detour.restore();
                link_changes = Instant::now() + Duration::from_millis(next(1000, 3000));
            } else {
                if outages % 2 == 0 {
                    detour.cut();
                } else {
                    detour.stall();
                }
                outages += 1;
                link_changes = Instant::now() + Duration::from_millis(next(1500, 8000));
            }
            cut = !cut;
        }
        let revocation = f.revoke(RevocationTarget::Token(token.clone()));
        writer
            .append(baton_client::append_request(&[revocation], None, true))
            .await
            .with_context(|| format!("revocation {i} on A"))?;
        probes.lock().expect("probes").push(Probe {
            token: token.clone(),
            acknowledged: Instant::now(),
            last_active: None,
            revoked_on_b: false,
        });
        tokio::time::sleep(Duration::from_millis(args.revoke_every_ms)).await;
    }
    detour.restore();
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(300), prober)
        .await
        .context("B never answered REVOKED for every revocation after healing")??;
    let probes = probes.lock().expect("probes");
    Ok(Windows {
        samples: Samples {
            latencies: probes
                .iter()
                .map(|p| {
                    p.last_active
                        .map_or(Duration::ZERO, |at| at - p.acknowledged)
                })
                .collect(),
            work: probes.len() as u64,
            ..Default::default()
        },
        outages,
    })
}

struct Latencies {
    /// Acknowledged on A → B's `Check` answers REVOKED.
    visible: Samples,
    /// Acknowledged on A → B's Watch delivers it, and → a Checker fed by B
    /// evicted the answer (None: no Checker could start, see `checker`).
    seen: Option<Samples>,
    evicted: Option<Samples>,
    /// Why no Checker fed by B could start (it fails closed).
    checker: Option<String>,
}

/// `n` tokens issued on A, then each revoked on A: acknowledged → B answers
/// REVOKED, → B's Watch delivers it, → a Checker fed by B evicted its
/// cached answer (when one can start: it fails closed if B's Watch sends no
/// checkpoints). Each is looked for once the one before it was seen, so the
/// Watch and Checker figures are upper bounds.
async fn revocation_latencies(
    f: &mut Fixture,
    a: &Channel,
    b: &Node,
    label: &str,
    n: usize,
) -> anyhow::Result<Latencies> {
    let grants: Vec<Envelope> = (0..n)
        .map(|i| f.issue("as", &format!("{label}-{i}"), "user:flood", "agent", 3600))
        .collect();
    let tokens: Vec<TokenRef> = (0..n)
        .map(|i| f.token_of(&format!("{label}-{i}")))
        .collect();
    let written = append(a, &grants).await?;
    let cb = b.channel().await?;
    check(&cb, &tokens[0], &written).await?;
    let config = baton_client::CheckerConfig::default();
    let checker = match baton_client::Checker::start(
        baton_client::Endpoint::new(b.url()).connect().await?,
        config,
    )
    .await
    {
        Ok(checker) => Some(checker),
        Err(e) => {
            eprintln!("   no Checker fed by B starts: {e}");
            None
        }
    };
    let refused = checker
        .is_none()
        .then(|| "stale at start: no checkpoint (fails closed)".to_owned());
    if let Some(checker) = &checker {
        for token in &tokens {
            let answer = checker.check(token, None).await;
            if answer.status != baton_client::Status::Active {
                bail!("{token} is not ACTIVE on B's checker: {:?}", answer.status);
            }
        }
    }
    let mut revocation = v1::revocation_service_client::RevocationServiceClient::new(cb.clone());
    let probe = revocation
        .check(v1::CheckRequest {
            token: Some(baton_proto::token_ref_to_wire(&tokens[0])),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut watch = match &checker {
        Some(_) => Some(
            revocation
                .watch(v1::WatchRequest {
                    resume_token: probe.consistency_token,
                    ..Default::default()
                })
                .await?
                .into_inner(),
        ),
        None => None,
    };
    let mut writer = v1::ledger_service_client::LedgerServiceClient::new(a.clone());
    let mut deliveries = checker.as_ref().map(baton_client::Checker::deliveries);
    let (mut visible, mut seen, mut evicted) =
        (Samples::default(), Samples::default(), Samples::default());
    let started = Instant::now();
    for token in &tokens {
        let event = f.revoke(RevocationTarget::Token(token.clone()));
        let id = event.id().0.to_vec();
        let before = checker.as_ref().map(|c| c.stats().invalidations);
        writer
            .append(baton_client::append_request(&[event], None, true))
            .await?;
        let acknowledged = Instant::now();
        let deadline = acknowledged + Duration::from_secs(30);
        while check(&cb, token, "").await? != v1::TokenStatus::Revoked as i32 {
            if Instant::now() > deadline {
                bail!("{token} was not REVOKED on B within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        visible.latencies.push(acknowledged.elapsed());
        if let (Some(watch), Some(checker), Some(deliveries), Some(before)) =
            (watch.as_mut(), &checker, deliveries.as_mut(), before)
        {
            loop {
                let message = tokio::time::timeout(Duration::from_secs(30), watch.message())
                    .await
                    .context("B's watch went quiet")??
                    .context("B's watch ended")?;
                if message.revocation_event_id == id {
                    break;
                }
            }
            seen.latencies.push(acknowledged.elapsed());
            while checker.stats().invalidations == before {
                tokio::time::timeout(Duration::from_secs(30), deliveries.changed())
                    .await
                    .context("B's checker heard nothing")??;
            }
            evicted.latencies.push(acknowledged.elapsed());
        }
    }
    for samples in [&mut visible, &mut seen, &mut evicted] {
        samples.work = samples.latencies.len() as u64;
        samples.elapsed = started.elapsed();
    }
    let with_checker = checker.is_some();
    Ok(Latencies {
        visible,
        seen: with_checker.then_some(seen),
        evicted: with_checker.then_some(evicted),
        checker: refused,
    })
}

/// Hops whose parents are not in the log, written straight into the topic,
/// and their parents, held back.
struct Flood {
    parents: Vec<Envelope>,
    last: TokenRef,
}

impl Flood {
    async fn write(
        f: &mut Fixture,
        cluster: &KafkaCluster,
        topic: &str,
        n: usize,
    ) -> anyhow::Result<Flood> {
        let mut options = baton_kafka::KafkaOptions::new(cluster.bootstrap().to_owned());
        options.topic = topic.to_owned();
        options.partitions = 4;
        let log = baton_kafka::KafkaLog::connect(options).await?;
        let mut parents = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n);
        for i in 0..n {
            parents.push(f.issue(
                "as",
                &format!("flood-root-{i}"),
                "user:flood",
                "agent",
                3600,
            ));
            let hop = f.narrow(
                &format!("flood-root-{i}"),
                &format!("flood-hop-{i}"),
                "agent",
                "gateway",
                &[],
                1,
            );
            records.push(baton_log::Record {
                key: parents[i].id().0.to_vec(),
                value: baton_proto::encode_signed(&hop),
            });
        }
        for chunk in records.chunks(500) {
            for written in baton_log::EventLog::append(&log, chunk.to_vec()).await {
                written.map_err(|e| anyhow::anyhow!("writing a parked record: {e}"))?;
            }
        }
        let last = f.token_of(&format!("flood-hop-{}", n - 1));
        Ok(Flood { parents, last })
    }

    /// Appends the parents through A; how long until B has applied every
    /// parked hop.
    async fn complete(self, a: &Channel, b: &Channel) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let quarantined = status(b).await?.quarantined;
        for chunk in self.parents.chunks(500) {
            append(a, chunk).await?;
        }
        wait_until(
            b,
            "B applied every parked hop",
            Duration::from_secs(300),
            |s| s.parked == 0,
        )
        .await?;
        let took = started.elapsed();
        let now = status(b).await?;
        if now.quarantined != quarantined {
            bail!(
                "B quarantined {} records meanwhile",
                now.quarantined - quarantined
            );
        }
        let answer = check(b, &self.last, "").await?;
        if answer != v1::TokenStatus::Active as i32 {
            bail!("the last parked hop is not ACTIVE on B: {answer}");
        }
        Ok(took)
    }
}
