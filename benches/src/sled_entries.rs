//! `baton-bench-sled`: what sled charges per entry, measured on key layouts
//! shaped like the projection's. It answers one question before a layout
//! change is made: do the projection's costs (apply rate, bytes on disk,
//! memory) follow the bytes it stores, the order of its keys, or the number
//! of entries per event?
//!
//! Each layout is a string of letters, one entry per event each (sizes as
//! the projection's for a hop of a 3-hop chain):
//!
//! | letter | entry | key | value |
//! | --- | --- | --- | --- |
//! | `E` | the event, by id (today's `e`) | 1 + 32 random | 440 |
//! | `e` | the event, by local sequence | 1 + 8 ordered | 440 |
//! | `d` | id → sequence | 1 + 32 random | 8 |
//! | `r` | token reference → id | 1 + 1 + 24 random | 32 |
//! | `c` | parent, child | 1 + 32 + 32 (ids), or 8 + 8 with `e` | empty |
//! | `i` | kind, time, event | 1 + 1 + 8 + 32 (or 8) | empty |
//! | `I`, `J` | a client (one each), time, event | 1 + 10 + 1 + 8 + 32 (or 8) | empty |
//! | `S` | a subject (of 1000), time, event | 1 + ~8 + 1 + 8 + 32 (or 8) | empty |
//!
//! Values are random bytes (incompressible, like signatures and ids).
//! Events are written in sled batches of `--batch` events into one tree of a
//! fresh database with the projector's settings (flush every 200 ms, 1 GiB
//! cache), then flushed; each layout runs in a process of its own so that
//! its peak RSS is its own.

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

use crate::load::status_kib;
use crate::stats::round;

#[derive(Parser, Debug)]
#[command(about = "What sled charges per entry: layouts shaped like the projection's")]
pub struct Args {
    /// Events written per layout.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Events per sled batch (the projector's 1 MiB batches hold about 2000).
    #[arg(long, default_value_t = 2_000)]
    pub batch: u64,
    /// Layouts, one letter per entry (see the module's table).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "E,e,Ed,ed,Er,edr,Erc,Erci,ErciI,ErciIJ,ErciIJS,edrciIJS"
    )]
    pub layouts: Vec<String>,
    /// Where each layout's database is made (removed after it).
    #[arg(long, default_value = "target/bench-sled-work")]
    pub work: std::path::PathBuf,
    /// Where sled.json and sled.md are written.
    #[arg(long, default_value = "target/bench-report")]
    pub out: std::path::PathBuf,
    /// Measure one layout in this process (used by the run itself).
    #[arg(long, hide = true)]
    pub one: bool,
}

const VALUE_BYTES: usize = 440;

/// `n` bytes that are a function of (`i`, `salt`) and look random.
fn bytes(i: u64, salt: u8, n: usize) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&i.to_le_bytes());
    hasher.update(&[salt]);
    let mut out = vec![0u8; n];
    hasher.finalize_xof().fill(&mut out);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The entries of event `j` under `layout`.
fn entries(layout: &str, j: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let by_sequence = layout.contains('e');
    let id = bytes(j, 0, 32);
    let seq = j.to_be_bytes();
    // How index entries name the event: its sequence where events are
    // keyed by it, else its id.
    let names: &[u8] = if by_sequence { &seq } else { &id };
    // Trees of four events: a root and three hops.
    let parent: Vec<u8> = if by_sequence {
        (j - j % 4).to_be_bytes().to_vec()
    } else {
        bytes(j - j % 4, 0, 32)
    };
    let at = (1_700_000_000_000i64 + j as i64 * 10).to_be_bytes();
    let mut out = Vec::new();
    for letter in layout.chars() {
        let entry = match letter {
            'E' => (cat(&[b"e", &id]), bytes(j, 1, VALUE_BYTES)),
            'e' => (cat(&[b"e", &seq]), bytes(j, 1, VALUE_BYTES)),
            'd' => (cat(&[b"d", &id]), seq.to_vec()),
            'r' => (cat(&[b"r", &[1], &bytes(j, 2, 24)]), names.to_vec()),
            'c' => (cat(&[b"c", &parent, names]), Vec::new()),
            'i' => (cat(&[b"i", &[3], &at, names]), Vec::new()),
            'I' => (cat(&[b"I", b"client-a", &[0], &at, names]), Vec::new()),
            'J' => (cat(&[b"I", b"client-b", &[0], &at, names]), Vec::new()),
            'S' => (
                cat(&[
                    b"S",
                    format!("user-{}", j % 1000).as_bytes(),
                    &[0],
                    &at,
                    names,
                ]),
                Vec::new(),
            ),
            other => panic!("unknown entry letter {other:?}"),
        };
        out.push(entry);
    }
    out
}

fn one(args: &Args, layout: &str) -> anyhow::Result<Value> {
    let dir = args.work.join(layout);
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new()
        .path(&dir)
        .flush_every_ms(Some(200))
        .cache_capacity(1 << 30)
        .open()?;
    let tree = db.open_tree("projection")?;
    let (mut logical, mut count) = (0u64, 0u64);
    let started = Instant::now();
    let mut j = 0;
    while j < args.events {
        let mut batch = sled::Batch::default();
        for event in j..(j + args.batch).min(args.events) {
            for (key, value) in entries(layout, event) {
                logical += (key.len() + value.len()) as u64;
                count += 1;
                batch.insert(key, value);
            }
        }
        tree.apply_batch(batch)?;
        j += args.batch;
    }
    db.flush()?;
    let elapsed = started.elapsed().as_secs_f64();
    let disk = db.size_on_disk()?;
    let peak = status_kib("self", "VmHWM:");
    drop(tree);
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    let events = args.events as f64;
    Ok(json!({
        "layout": layout,
        "entries_per_event": round(count as f64 / events),
        "events_per_s": round(events / elapsed),
        "entries_per_s": round(count as f64 / elapsed),
        "logical_bytes_per_event": round(logical as f64 / events),
        "disk_bytes_per_event": round(disk as f64 / events),
        "peak_rss_mib": round(peak as f64 / 1024.0),
    }))
}

fn table(rows: &[Value]) -> String {
    let mut md = String::from(
        "| layout | entries/event | events/s | entries/s | logical B/event | disk B/event | peak RSS (MiB) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for row in rows {
        md.push_str(&format!(
            "| `{}` | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            row["layout"].as_str().unwrap_or("?"),
            row["entries_per_event"],
            row["events_per_s"].as_f64().unwrap_or(0.0),
            row["entries_per_s"].as_f64().unwrap_or(0.0),
            row["logical_bytes_per_event"].as_f64().unwrap_or(0.0),
            row["disk_bytes_per_event"].as_f64().unwrap_or(0.0),
            row["peak_rss_mib"].as_f64().unwrap_or(0.0),
        ));
    }
    md
}

pub fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.one {
        let [layout] = &args.layouts[..] else {
            bail!("--one measures one layout: give --layouts L");
        };
        println!("{}", one(&args, layout)?);
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)?;
    let mut rows = Vec::new();
    for layout in &args.layouts {
        if let Some(bad) = layout.chars().find(|c| !"EedrciIJS".contains(*c)) {
            bail!("layout {layout:?}: unknown entry letter {bad:?} (one of EedrciIJS)");
        }
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["--one", "--layouts", layout])
            .args(["--events", &args.events.to_string()])
            .args(["--batch", &args.batch.to_string()])
            .arg("--work")
            .arg(&args.work)
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("layout {layout} failed ({})", out.status);
        }
        let row: Value = serde_json::from_slice(&out.stdout).context("its row")?;
        eprintln!("{row}");
        rows.push(row);
    }
    std::fs::write(
        args.out.join("sled.json"),
        serde_json::to_string_pretty(
            &json!({"events": args.events, "batch": args.batch, "rows": rows}),
        )?,
    )?;
    std::fs::write(args.out.join("sled.md"), table(&rows))?;
    print!("{}", table(&rows));
    Ok(())
}
