//! The operator's verbs, over a live node's `AdminService` (a running node
//! locks its data directory): `baton status`, `baton quarantine list|show`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use baton_proto::v1;
use serde_json::json;

use crate::client::{Connection, status_text};

#[derive(Debug, clap::Args)]
pub struct Status {
    #[command(flatten)]
    connection: Connection,
    /// Also compute the projection's state digest (a scan of the whole
    /// projection): two nodes at the same position hold the same projection
    /// exactly when their digests are equal.
    #[arg(long)]
    digest: bool,
}

pub async fn status(args: Status) -> anyhow::Result<()> {
    let status = args
        .connection
        .client()
        .await?
        .admin()
        .status(v1::StatusRequest {
            with_digest: args.digest,
        })
        .await
        .map_err(status_text)?
        .into_inner();
    // In rule order (the wire's map has none).
    let by_rule: std::collections::BTreeMap<&String, &u64> =
        status.quarantined_by_rule.iter().collect();
    if args.connection.json {
        let partitions: Vec<_> = status
            .partitions
            .iter()
            .map(|p| json!({"partition": p.partition, "applied": p.applied, "read": p.read, "log_end": p.log_end, "lag": p.lag}))
            .collect();
        println!(
            "{}",
            json!({
                "ready": status.ready,
                "log": status.log,
                "version": status.version,
                "log_error": status.log_error,
                "lag": status.lag,
                "seconds_behind": status.seconds_behind,
                "consistency_token": status.consistency_token,
                "partitions": partitions,
                "events_applied": status.events_applied,
                "duplicates": status.duplicates,
                "quarantined": status.quarantined,
                "quarantined_by_rule": by_rule,
                "parked": status.parked,
                "records_read": status.records_read,
                "fresh": status.fresh,
                "end_confirmed_seconds_ago": status.end_confirmed_seconds_ago,
                "unapplied_seconds": status.unapplied_seconds,
                "max_staleness_seconds": status.max_staleness_seconds,
                "view_age_seconds": status.view_age_seconds,
                "confirmed_end": status.confirmed_end,
                "projection_bytes": status.projection_bytes,
                "state_digest": status.state_digest,
                "digest_settled": status.digest_settled,
            })
        );
        return Ok(());
    }
    let readiness = if status.ready { "ready" } else { "catching up" };
    println!(
        "node: {readiness} ({} log, baton {})",
        status.log, status.version
    );
    if status.log_error.is_empty() {
        println!(
            "lag: {} records, {:.1} s behind",
            status.lag, status.seconds_behind
        );
    } else {
        println!("lag: unknown, the log did not answer: {}", status.log_error);
    }
    let confirmed = if status.end_confirmed_seconds_ago < 0.0 {
        "never confirmed".to_owned()
    } else {
        format!(
            "end confirmed {:.1} s ago",
            status.end_confirmed_seconds_ago
        )
    };
    let view = if status.view_age_seconds < 0.0 {
        "no confirmed end read yet".to_owned()
    } else {
        format!("view {:.1} s old", status.view_age_seconds)
    };
    println!(
        "freshness: {} ({view}, bound {:.1} s; {confirmed}, {:.1} s unread)",
        if status.fresh {
            "fresh"
        } else {
            "STALE: only REVOKED, EXPIRED, AUDIENCE_MISMATCH answered"
        },
        status.max_staleness_seconds,
        status.unapplied_seconds
    );
    println!("position: {}", status.consistency_token);
    println!("partition  applied  read  log-end  lag");
    for p in &status.partitions {
        println!(
            "{:>9}  {:>7}  {:>4}  {:>7}  {:>3}",
            p.partition, p.applied, p.read, p.log_end, p.lag
        );
    }
    let rules: Vec<String> = by_rule
        .iter()
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect();
    println!(
        "events: {} applied, {} duplicates, {} quarantined{}, {} parked",
        status.events_applied,
        status.duplicates,
        status.quarantined,
        if rules.is_empty() {
            String::new()
        } else {
            format!(" ({})", rules.join(", "))
        },
        status.parked
    );
    println!(
        "projection: {} bytes on disk; {} log records read since the node started",
        status.projection_bytes, status.records_read
    );
    if !status.state_digest.is_empty() {
        let settled = if status.digest_settled {
            "settled"
        } else {
            "moving: the projection changed while it was computed"
        };
        println!("state digest: {} ({settled})", status.state_digest);
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum Quarantine {
    /// Every quarantined log record, in log order: position, rule, reason,
    /// the ids of its events when it decodes.
    #[command(after_help = "Example:\n  baton quarantine list --from 0:0 --limit 100")]
    List {
        #[command(flatten)]
        connection: Connection,
        /// Start at this position (PARTITION:OFFSET).
        #[arg(long)]
        from: Option<String>,
        /// Print at most this many.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
    /// One quarantined record, with its bytes as written (base64).
    #[command(after_help = "Example:\n  baton quarantine show 2:1042")]
    Show {
        #[command(flatten)]
        connection: Connection,
        /// Its position, PARTITION:OFFSET.
        position: String,
    },
}

fn position(field: &str, text: &str) -> anyhow::Result<v1::LogPosition> {
    let parse = || -> Option<v1::LogPosition> {
        let (partition, offset) = text.split_once(':')?;
        Some(v1::LogPosition {
            partition: partition.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    };
    parse().with_context(|| {
        format!(
            "{field}: expected PARTITION:OFFSET (e.g. 3:1200), got {:?}",
            baton_core::echo(text)
        )
    })
}

/// An event id as Baton prints them (`ev:…`).
fn event_id(bytes: &[u8]) -> String {
    baton_core::EventId::from_slice("event_ids", bytes).map_or_else(
        |_| format!("(not an event id: {} bytes)", bytes.len()),
        |id| id.to_string(),
    )
}

fn row(record: &v1::QuarantinedRecord) -> serde_json::Value {
    let at = record.position.unwrap_or_default();
    json!({
        "position": format!("{}:{}", at.partition, at.offset),
        "rule": record.rule,
        "reason": record.reason,
        "event_ids": record.event_ids.iter().map(|id| event_id(id)).collect::<Vec<_>>(),
        "value_bytes": record.value_bytes,
    })
}

pub async fn quarantine(command: Quarantine) -> anyhow::Result<()> {
    match command {
        Quarantine::List {
            connection,
            from,
            limit,
        } => {
            let mut admin = connection.client().await?.admin();
            let mut from = from.map(|f| position("--from", &f)).transpose()?;
            let mut rows = Vec::new();
            let mut more = None;
            loop {
                let page = admin
                    .list_quarantined(v1::ListQuarantinedRequest {
                        from,
                        page_size: 1000,
                        with_value: false,
                    })
                    .await
                    .map_err(status_text)?
                    .into_inner();
                for record in &page.records {
                    if rows.len() == limit {
                        more = record.position;
                        break;
                    }
                    rows.push(row(record));
                }
                match page.next {
                    Some(next) if more.is_none() && rows.len() < limit => from = Some(next),
                    Some(next) if more.is_none() => {
                        more = Some(next);
                        break;
                    }
                    _ => break,
                }
            }
            if connection.json {
                let more = more.map(|p| format!("{}:{}", p.partition, p.offset));
                println!("{}", json!({"records": rows, "more_from": more}));
                return Ok(());
            }
            println!("{} quarantined record(s)", rows.len());
            for row in &rows {
                println!(
                    "{}  {}  {}{}",
                    row["position"].as_str().unwrap_or_default(),
                    row["rule"].as_str().unwrap_or_default(),
                    row["reason"].as_str().unwrap_or_default(),
                    match row["event_ids"].as_array() {
                        Some(ids) if !ids.is_empty() => format!(
                            "  [{}]",
                            ids.iter()
                                .filter_map(|id| id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => String::new(),
                    }
                );
            }
            if let Some(p) = more {
                println!(
                    "more: baton quarantine list --from {}:{}",
                    p.partition, p.offset
                );
            }
            Ok(())
        }
        Quarantine::Show {
            connection,
            position: text,
        } => {
            let wanted = position("position", &text)?;
            let page = connection
                .client()
                .await?
                .admin()
                .list_quarantined(v1::ListQuarantinedRequest {
                    from: Some(wanted),
                    page_size: 1,
                    with_value: true,
                })
                .await
                .map_err(status_text)?
                .into_inner();
            let Some(record) = page
                .records
                .into_iter()
                .find(|r| r.position == Some(wanted))
            else {
                bail!(
                    "position: no quarantined record at {}:{}",
                    wanted.partition,
                    wanted.offset
                );
            };
            let mut shown = row(&record);
            shown["value_base64"] = json!(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &record.value
            ));
            if connection.json {
                println!("{shown}");
            } else {
                for key in ["position", "rule", "reason", "value_bytes"] {
                    println!("{key}: {}", shown[key].to_string().trim_matches('"'));
                }
                for id in &record.event_ids {
                    println!("event: {}", event_id(id));
                }
                println!(
                    "value (base64): {}",
                    shown["value_base64"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Snapshot {
    /// Copy a live node's projection, with the log positions it reflects,
    /// into a new file (checked before it is kept). Admin role.
    #[command(
        after_help = "Example:\n  baton snapshot create --server https://node-a:7700 --out a.snapshot"
    )]
    Create {
        #[command(flatten)]
        connection: Connection,
        /// The file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a snapshot file whole (checksum, entries, state digest) and say
    /// what it holds.
    #[command(after_help = "Example:\n  baton snapshot verify a.snapshot")]
    Verify {
        /// The snapshot file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot into a new node's data directory (which must hold
    /// no projection yet); `baton serve` on it then reads only the log from
    /// the snapshot's positions on. A snapshot is as trusted as the node that
    /// made it; with --verify-full the projection is instead replayed from
    /// the log (verifying every event) up to the snapshot's positions, and
    /// kept only if its digest is the snapshot's. Takes the node's own
    /// flags (--data-dir; with --verify-full also its configuration: trust
    /// roots, rules, Kafka).
    #[command(after_help = "Example:\n  baton snapshot restore a.snapshot --data-dir node-c")]
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// Replay the log instead of trusting the snapshot's content.
        #[arg(long)]
        verify_full: bool,
        #[command(flatten)]
        node: Box<crate::config::Flags>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn describe(info: &baton_projector::SnapshotInfo, json: bool) {
    let read = baton_log::ConsistencyToken::new(info.read.clone()).to_string();
    let applied = baton_log::ConsistencyToken::new(info.applied.clone()).to_string();
    let digest = format!("b3:{}", hex::encode(&info.state_digest));
    if json {
        println!(
            "{}",
            json!({"tree": info.tree, "partitions": info.partitions, "read": read, "applied": applied, "entries": info.entries, "state_digest": digest, "created_at_ms": info.created_at_ms, "made_by": info.made_by})
        );
    } else {
        println!(
            "snapshot of {} partition(s): applied {applied}, resumes reading at {read}",
            info.partitions
        );
        println!("{} entries, state digest {digest}", info.entries);
        println!(
            "made by baton {} at {} ms (unix), projection {}",
            info.made_by, info.created_at_ms, info.tree
        );
    }
}

pub async fn snapshot(
    command: Snapshot,
    env: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    match command {
        Snapshot::Create { connection, out } => {
            if out.exists() {
                bail!("--out: {} exists; not overwritten", out.display());
            }
            let mut partial = out.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let mut stream = connection
                .client()
                .await?
                .admin()
                .create_snapshot(v1::CreateSnapshotRequest {})
                .await
                .map_err(status_text)?
                .into_inner();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
                .with_context(|| format!("{}", partial.display()))?;
            let received = async {
                while let Some(message) = stream.message().await.map_err(status_text)? {
                    std::io::Write::write_all(&mut file, &message.chunk)?;
                }
                file.sync_all()?;
                let info = baton_projector::verify_snapshot(&partial)?;
                // A link fails if `out` appeared meanwhile: never overwritten.
                std::fs::hard_link(&partial, &out)
                    .with_context(|| format!("--out: {}", out.display()))?;
                std::fs::remove_file(&partial)?;
                anyhow::Ok(info)
            }
            .await;
            let info = received.inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })?;
            eprintln!("wrote {}", out.display());
            describe(&info, connection.json);
            Ok(())
        }
        Snapshot::Verify { file, json } => {
            describe(&baton_projector::verify_snapshot(&file)?, json);
            Ok(())
        }
        Snapshot::Restore {
            file,
            verify_full,
            node,
            json,
        } => {
            let info = if verify_full {
                replayed(&file, &node, env).await?
            } else {
                let Some(data_dir) = &node.data_dir else {
                    bail!("--data-dir: the new node's data directory is required");
                };
                baton_projector::restore_snapshot(&file, &data_dir.join("projection"))?
            };
            eprintln!(
                "restored{}; `baton serve` on its data directory resumes from the snapshot's positions",
                if verify_full {
                    " by replaying the log (same digest as the snapshot)"
                } else {
                    ""
                }
            );
            describe(&info, json);
            Ok(())
        }
    }
}

/// `restore --verify-full`: the projection replayed from the log up to the
/// snapshot's positions under the node's configuration, kept only when its
/// digest is the snapshot's.
async fn replayed(
    file: &std::path::Path,
    node: &crate::config::Flags,
    env: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<baton_projector::SnapshotInfo> {
    let config = crate::config::Config::load(node, env)?;
    let policy = config.policy()?;
    let info = baton_projector::verify_snapshot(file)?;
    let rules = baton_projector::tree_name(&policy);
    if info.tree != rules {
        bail!(
            "{}: made under other rules ({}) than this configuration's ({rules}): a node with this configuration would replay the log anyway",
            file.display(),
            info.tree
        );
    }
    let target = config.data_dir.join("projection");
    if target.exists() {
        bail!(
            "{}: already holds a projection; restore into a data directory without one",
            target.display()
        );
    }
    let staging = config.data_dir.join("projection.verifying");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let replaying = Replaying {
        dir: staging.clone(),
        options: baton_server::projector_options(policy, &config.limits()),
        until: info.read.clone(),
    };
    let digest = crate::eventlog::open_log(&config, replaying).await;
    let digest = digest.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staging);
    })?;
    if digest.as_slice() != info.state_digest {
        let _ = std::fs::remove_dir_all(&staging);
        bail!(
            "{}: the log replayed to the snapshot's positions gives digest b3:{}, the snapshot says b3:{}: the snapshot is not a projection of this log under these rules (or a record waiting for a dependency was decided by time on the node that made it)",
            file.display(),
            hex::encode(digest),
            hex::encode(&info.state_digest)
        );
    }
    std::fs::rename(&staging, &target)?;
    Ok(info)
}

/// Replays a log into a new projection in `dir` up to `until`; its digest.
struct Replaying {
    dir: std::path::PathBuf,
    options: baton_projector::ProjectorOptions,
    until: Vec<u64>,
}

impl crate::eventlog::OnLog for Replaying {
    type Output = [u8; 32];

    async fn run<L: baton_log::EventLog>(
        self,
        log: L,
        _described: String,
    ) -> anyhow::Result<[u8; 32]> {
        let projector = baton_projector::Projector::open(log, &self.dir, self.options)?;
        projector.replay_until(&self.until).await?;
        Ok(projector.handle().state_digest()?)
    }
}
