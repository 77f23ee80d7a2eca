//! How a node's costs grow with the ledger (issue 23's scale run): for each
//! ledger size, events generated in process (a root grant and three hops
//! per tree, TEST-ONLY keys made at run time) are written to a fresh log
//! (the embedded log, or a Kafka topic of its own), then a new projection
//! replays it from offset zero verifying every event, and the run reports
//! the apply rate, Check p50/p99 on random leaves, bytes per event on disk,
//! the process's peak RSS while replaying, the snapshot's size and the time
//! to create and restore it. Opt-in (`benches/run.sh --scale`), not in CI.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use baton_core::{Envelope, TokenRef, TokenStatus};
use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::{EmbeddedLog, EventLog};
use baton_testkit::Fixture;
use clap::Parser;
use serde_json::{Value, json};

use crate::load::{catch_up_with, dir_bytes, now_s, status_kib, write_trees};
use crate::stats::{Samples, round};

#[derive(Parser, Debug)]
#[command(
    about = "How a node's costs grow with the ledger: replay, Check, disk, memory, snapshots"
)]
pub struct Args {
    /// Ledger sizes (events), each a fresh log and projection.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<u64>,
    /// Kafka bootstrap servers; without them, the embedded log.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// Partitions of each Kafka topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Checks timed at each size (random leaves).
    #[arg(long, default_value_t = 20_000)]
    pub checks: usize,
    /// Where each size's log, projection and snapshot are made (removed
    /// after each size).
    #[arg(long, default_value = "target/bench-scale-work")]
    pub work: PathBuf,
    /// The projector's bound on the bytes of records read for one batch.
    #[arg(long, default_value_t = baton_projector::BATCH_BYTES_MAX)]
    pub batch_bytes_max: usize,
    /// sled's page cache, MiB.
    #[arg(long, default_value_t = baton_projector::CACHE_BYTES >> 20)]
    pub cache_mib: u64,
    /// Most decoded records the projector keeps in memory per kind.
    #[arg(long, default_value_t = baton_projector::MEMO_RECORDS_MAX)]
    pub memo_records_max: usize,
    /// Measure the one size given and print its row as JSON (the run starts
    /// itself so for each size).
    #[arg(long, hide = true)]
    pub one: bool,
    /// Replay the log `--one` generated, in a process of its own (so its
    /// peak RSS is the projection's alone, not the generator's), and print
    /// the replay's half of the row as JSON.
    #[arg(long, hide = true)]
    pub replay: bool,
    /// With `--replay`: the generator's trust root (hex), its names' prefix
    /// and, on Kafka, its topic.
    #[arg(long, hide = true)]
    pub root_key: Option<String>,
    #[arg(long, hide = true)]
    pub prefix: Option<String>,
    #[arg(long, hide = true)]
    pub topic: Option<String>,
    /// Where scale.json, scale.md and scale.svg are written.
    #[arg(long, default_value = "target/bench-report")]
    pub out: PathBuf,
}

/// Trees of a root and three hops.
const TREE_EVENTS: u64 = 4;
/// Trees signed and written at a time (the generator holds no more).
const TREES_PER_ROUND: u64 = 2_500;

/// Resets the process's peak RSS to its current RSS (Linux `clear_refs` 5),
/// so the next peak read is the peak since now.
fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0)
}

/// The newest trees the second Check run draws from (10 000 events).
const RECENT_TREES: u64 = 2_500;

/// `checks` timed in-process Checks of random leaves of the trees in
/// `trees` (a simple LCG from `seed`: the same order every run), each
/// answered ACTIVE.
fn check_leaves(
    handle: &baton_projector::Handle,
    prefix: &str,
    trees: std::ops::Range<u64>,
    checks: usize,
    mut seed: u64,
) -> anyhow::Result<Samples> {
    let mut latencies = Vec::with_capacity(checks);
    let span = (trees.end - trees.start).max(1);
    let checked = Instant::now();
    for _ in 0..checks {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let tree = trees.start + (seed >> 33) % span;
        let leaf = TokenRef::jti("fixture", &format!("{prefix}t{tree}-3")).expect("jti");
        let one = Instant::now();
        let answer = handle.check(&leaf, None, now_s())?;
        latencies.push(one.elapsed());
        if !matches!(answer.status, TokenStatus::Active { .. }) {
            bail!(
                "leaf of tree {tree} is {:?} after the replay",
                answer.status
            );
        }
    }
    Ok(Samples {
        latencies,
        elapsed: checked.elapsed(),
        work: checks as u64,
        errors: 0,
    })
}

/// Writes one ledger size's events to `log`; returns the names' prefix, the
/// trust root (hex) and how long writing took.
async fn generate<L: EventLog + Clone>(
    log: &L,
    events: u64,
) -> anyhow::Result<(String, String, f64)> {
    let prefix = format!("s{}-", now_s());
    let (mut f, setup) = Fixture::standard_with(Fixture::new(now_s()), &prefix);
    let [root] = f.policy().trust_roots.values().copied().collect::<Vec<_>>()[..] else {
        bail!("the fixture has one trust root");
    };
    write_trees(log, &setup).await?;
    let trees = events / TREE_EVENTS;
    let started = Instant::now();
    let mut t = 0;
    while t < trees {
        let round_end = (t + TREES_PER_ROUND).min(trees);
        let generated: Vec<Envelope> = (t..round_end)
            .flat_map(|i| crate::chains::chain(&mut f, &format!("t{i}"), 3))
            .collect();
        write_trees(log, &generated).await?;
        t = round_end;
    }
    Ok((
        prefix,
        hex::encode(root.to_bytes()),
        started.elapsed().as_secs_f64(),
    ))
}

/// A new node's side of one size, on the log `generate` wrote: its full
/// replay (every event verified), Check on random leaves, a snapshot and a
/// restore.
async fn replay<L: EventLog + Clone>(
    log: L,
    log_dir: Option<&Path>,
    work: &Path,
    events: u64,
    args: &Args,
) -> anyhow::Result<Value> {
    let checks = args.checks;
    let (Some(prefix), Some(root)) = (&args.prefix, &args.root_key) else {
        bail!("--replay needs --prefix and --root-key");
    };
    let root = baton_core::PublicKey::from_slice("--root-key", &hex::decode(root)?)?;
    let policy = baton_core::Policy::new([root]);
    let trees = events / TREE_EVENTS;
    let log_bytes = log_dir.map(dir_bytes);

    reset_peak_rss()?;
    let rss_before = status_kib("self", "VmRSS:");
    let projection = work.join("projection");
    let options = baton_projector::ProjectorOptions {
        batch_bytes_max: args.batch_bytes_max,
        cache_bytes: args.cache_mib << 20,
        memo_records_max: args.memo_records_max,
        ..baton_projector::ProjectorOptions::new(policy)
    };
    let (replay, handle) = catch_up_with(log.clone(), &projection, options).await?;
    let peak_replay = status_kib("self", "VmHWM:");
    let applied = handle.counter("applied")?;
    let quarantined = handle.counter("quarantined")?;
    if quarantined > 0 || applied < trees * TREE_EVENTS {
        bail!("the replay applied {applied} events and quarantined {quarantined}");
    }
    let disk = handle.size_on_disk()?;
    let logical = handle.logical_bytes()?;

    // Check on random leaves of the newest RECENT_TREES trees first (the
    // tokens a deployment checks are its live ones, a set that does not
    // grow with the ledger; at 10k events it is the whole ledger), then of
    // the whole ledger, each with its own order.
    let recent = check_leaves(
        &handle,
        prefix,
        trees.saturating_sub(RECENT_TREES)..trees,
        checks,
        0x2545_F491_4F6C_DD1D,
    )?;
    let check = check_leaves(&handle, prefix, 0..trees, checks, 0x9E37_79B9_7F4A_7C15)?;
    let peak_serving = status_kib("self", "VmHWM:");

    // A snapshot of it, and a restore.
    let file = work.join("ledger.snapshot");
    let started = Instant::now();
    let info = handle.write_snapshot(&file)?;
    let snapshot_s = started.elapsed().as_secs_f64();
    let snapshot_bytes = std::fs::metadata(&file)?.len();
    drop(handle);
    let started = Instant::now();
    baton_projector::restore_snapshot(&file, &work.join("restored"))?;
    let restore_s = started.elapsed().as_secs_f64();

    let per_event = |bytes: u64| round(bytes as f64 / applied.max(1) as f64);
    Ok(json!({
        "events": applied,
        "replay_s": round(replay.as_secs_f64()),
        "apply_per_s": round(applied as f64 / replay.as_secs_f64()),
        "check_p50_us": round(check.percentile_us(50.0)),
        "check_p99_us": round(check.percentile_us(99.0)),
        "recent_check_p50_us": round(recent.percentile_us(50.0)),
        "recent_check_p99_us": round(recent.percentile_us(99.0)),
        "projection_bytes_per_event": per_event(disk),
        "logical_bytes_per_event": per_event(logical),
        "log_bytes_per_event": log_bytes.map(per_event),
        "rss_before_replay_mib": mib(rss_before),
        "peak_rss_replay_mib": mib(peak_replay),
        "peak_rss_serving_mib": mib(peak_serving),
        "snapshot_entries": info.entries,
        "snapshot_mib": round(snapshot_bytes as f64 / (1024.0 * 1024.0)),
        "snapshot_create_s": round(snapshot_s),
        "restore_s": round(restore_s),
    }))
}

const COLUMNS: [(&str, &str); 14] = [
    ("events", "events"),
    ("apply_per_s", "apply (events/s)"),
    ("replay_s", "replay (s)"),
    ("check_p50_us", "Check p50 (µs)"),
    ("check_p99_us", "Check p99 (µs)"),
    ("recent_check_p50_us", "Check newest 10k p50 (µs)"),
    ("recent_check_p99_us", "Check newest 10k p99 (µs)"),
    ("projection_bytes_per_event", "projection B/event"),
    ("log_bytes_per_event", "log B/event"),
    ("peak_rss_replay_mib", "peak RSS replaying (MiB)"),
    ("peak_rss_serving_mib", "peak RSS checking (MiB)"),
    ("snapshot_mib", "snapshot (MiB)"),
    ("snapshot_create_s", "snapshot create (s)"),
    ("restore_s", "restore (s)"),
];

fn table(rows: &[Value]) -> String {
    let mut md = String::from("| ");
    md.push_str(&COLUMNS.map(|(_, title)| title).join(" | "));
    md.push_str(" |\n|");
    md.push_str(&" --- |".repeat(COLUMNS.len()));
    md.push('\n');
    for row in rows {
        let cells = COLUMNS.map(|(key, _)| match &row[key] {
            Value::Null => "n/a".to_owned(),
            value => value.to_string(),
        });
        md.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    md
}

/// Four small line charts against the ledger's size (log scale): a reader
/// sees at a glance what stays flat and what grows.
fn plot(rows: &[Value], title: &str) -> String {
    let panels: [(&str, &[(&str, &str)]); 4] = [
        ("apply rate (events/s)", &[("apply_per_s", "#1f77b4")]),
        (
            "Check (µs): p50, p99; dashed: newest 10k events",
            &[
                ("check_p50_us", "#2ca02c"),
                ("check_p99_us", "#d62728"),
                ("recent_check_p50_us", "#2ca02c:dash"),
                ("recent_check_p99_us", "#d62728:dash"),
            ],
        ),
        (
            "projection bytes per event",
            &[("projection_bytes_per_event", "#9467bd")],
        ),
        (
            "peak RSS (MiB): replaying, checking",
            &[
                ("peak_rss_replay_mib", "#ff7f0e"),
                ("peak_rss_serving_mib", "#8c564b"),
            ],
        ),
    ];
    let (w, h, pad) = (360.0, 220.0, 48.0);
    let xs: Vec<f64> = rows
        .iter()
        .map(|r| r["events"].as_f64().unwrap_or(1.0).max(1.0).log10())
        .collect();
    let (x0, x1) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">
<text x="10" y="18" font-size="14">{title}</text>
"#,
        2.0 * w + 20.0,
        2.0 * h + 40.0
    );
    for (i, (name, series)) in panels.iter().enumerate() {
        let (ox, oy) = (10.0 + (i % 2) as f64 * w, 30.0 + (i / 2) as f64 * h);
        let ymax = series
            .iter()
            .flat_map(|(key, _)| rows.iter().filter_map(|r| r[*key].as_f64()))
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.15;
        let px = |x: f64| ox + pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
        let py = |y: f64| oy + h - pad + -(y / ymax) * (h - 2.0 * pad);
        svg.push_str(&format!(
            r##"<text x="{}" y="{}">{name}</text>
<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>
<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>
<text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{}" y="{}" text-anchor="end">0</text>
"##,
            ox + pad,
            oy + 16.0,
            px(x0),
            py(0.0),
            px(x1),
            py(0.0),
            px(x0),
            py(0.0),
            px(x0),
            py(ymax),
            px(x0) - 4.0,
            py(ymax) + 4.0,
            round(ymax),
            px(x0) - 4.0,
            py(0.0) + 4.0,
        ));
        for (row, x) in rows.iter().zip(&xs) {
            svg.push_str(&format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>
"#,
                px(*x),
                py(0.0) + 14.0,
                row["events"]
            ));
        }
        for (key, style) in *series {
            let (colour, dash) = match style.split_once(':') {
                Some((colour, _)) => (colour, r#" stroke-dasharray="5,3""#),
                None => (*style, ""),
            };
            let points: Vec<String> = rows
                .iter()
                .zip(&xs)
                .filter_map(|(r, x)| Some(format!("{:.1},{:.1}", px(*x), py(r[*key].as_f64()?))))
                .collect();
            svg.push_str(&format!(
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>
"#,
                points.join(" ")
            ));
            for point in &points {
                let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
                svg.push_str(&format!(
                    r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>
"#
                ));
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// This program again, for one size, with the run's settings; `output`
/// runs it and reads the JSON it prints.
fn itself(args: &Args, events: u64) -> anyhow::Result<std::process::Command> {
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child
        .args(["--sizes", &events.to_string()])
        .args(["--checks", &args.checks.to_string()])
        .args(["--batch-bytes-max", &args.batch_bytes_max.to_string()])
        .args(["--cache-mib", &args.cache_mib.to_string()])
        .args(["--memo-records-max", &args.memo_records_max.to_string()])
        .args(["--partitions", &args.partitions.to_string()])
        .arg("--work")
        .arg(&args.work)
        .stderr(std::process::Stdio::inherit());
    if let Some(brokers) = &args.kafka_brokers {
        child.args(["--kafka-brokers", brokers]);
    }
    Ok(child)
}

fn output(mut child: std::process::Command, what: &str) -> anyhow::Result<Value> {
    let out = child.output()?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("the output of {what}"))
}

/// One size: its log generated in this process, replayed in another.
async fn one_size(args: &Args, events: u64) -> anyhow::Result<Value> {
    let work = args.work.join(format!("{events}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut child = itself(args, events)?;
    let (prefix, root, write_s) = match &args.kafka_brokers {
        Some(brokers) => {
            let mut options = KafkaOptions::new(brokers.clone());
            options.topic = format!("scale-{events}-{}", now_s());
            options.partitions = args.partitions;
            child.args(["--topic", &options.topic]);
            generate(&KafkaLog::connect(options).await?, events).await?
        }
        None => {
            let log = EmbeddedLog::open(&work.join("log"))?;
            let generated = generate(&log, events).await?;
            log.close().await;
            generated
        }
    };
    child.args(["--replay", "--prefix", &prefix, "--root-key", &root]);
    let mut row = output(child, &format!("the replay of {events} events"))?;
    row["write_s"] = json!(round(write_s));
    std::fs::remove_dir_all(&work)?;
    Ok(row)
}

/// The replay of one size (`--replay`), in this process.
async fn replay_size(args: &Args, events: u64) -> anyhow::Result<Value> {
    let work = args.work.join(format!("{events}"));
    match &args.kafka_brokers {
        Some(brokers) => {
            let mut options = KafkaOptions::new(brokers.clone());
            options.topic = args
                .topic
                .clone()
                .context("--replay on Kafka needs --topic")?;
            options.partitions = args.partitions;
            let log = KafkaLog::connect(options).await?;
            replay(log, None, &work, events, args).await
        }
        None => {
            let log_dir = work.join("log");
            let log = EmbeddedLog::open(&log_dir)?;
            replay(log, Some(&log_dir), &work, events, args).await
        }
    }
}

pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.one || args.replay {
        let [events] = args.sizes[..] else {
            bail!("--one and --replay measure one size: give --sizes N");
        };
        let row = if args.replay {
            replay_size(&args, events).await?
        } else {
            one_size(&args, events).await?
        };
        println!("{row}");
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)?;
    let log_kind = if args.kafka_brokers.is_some() {
        "kafka"
    } else {
        "embedded"
    };
    let mut rows = Vec::new();
    for &events in &args.sizes {
        eprintln!("== scale: {events} events, {log_kind} log");
        // A process of its own (and the replay another), so that each peak
        // RSS is this size's.
        let mut child = itself(&args, events)?;
        child.arg("--one");
        let row = output(child, &format!("the run of {events} events"))?;
        eprintln!("{row}");
        rows.push(row);
        // Each size's report so far, so a long run that is stopped keeps
        // what it measured.
        let title = format!("Baton at scale ({log_kind} log)");
        std::fs::write(
            args.out.join("scale.json"),
            serde_json::to_string_pretty(&json!({"log": log_kind, "rows": rows}))?,
        )?;
        std::fs::write(args.out.join("scale.md"), table(&rows))?;
        std::fs::write(args.out.join("scale.svg"), plot(&rows, &title))?;
    }
    print!("{}", table(&rows));
    Ok(())
}
