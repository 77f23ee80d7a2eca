//! Crash tests: a projector in its own process (`baton project`) is killed
//! with SIGKILL in the middle of a stream of over 10,000 events, restarted, and
//! must end with every event applied exactly once: its state digest equals a
//! rebuild from offset zero, with nothing missing and nothing counted twice.
//! Run against the embedded log and against a real Kafka.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use baton_core::{Envelope, RevocationTarget};
use baton_kafka::{KafkaLog, KafkaOptions};
use baton_log::{EmbeddedLog, EventLog, Record};
use baton_projector::{Projector, ProjectorOptions};
use baton_testkit::{Fixture, KafkaCluster};

const TREES: usize = 2600;
const REPLAYS: usize = 100;
const DEADLINE: Duration = Duration::from_secs(240);

/// Registrations, then TREES four-link chains, a revocation in every tenth,
/// and REPLAYS events appended a second time. Returns (fixture, records,
/// distinct events).
fn stream() -> (Fixture, Vec<Record>, u64) {
    let (mut f, registrations) = Fixture::standard(1_800_000_000);
    // The partition key: the tree's root for chain events, `control` otherwise.
    let key = |f: &Fixture, _: &Envelope, tree: Option<&str>| -> Vec<u8> {
        tree.map_or(b"control".to_vec(), |t| f.root_of(t).0.to_vec())
    };
    let mut records: Vec<Record> = registrations
        .iter()
        .map(|e| Record {
            key: key(&f, e, None),
            value: baton_proto::encode_signed(e),
        })
        .collect();
    let mut replayable = Vec::new();
    for i in 0..TREES {
        let t = format!("t{i}");
        let chain = [
            f.issue("as", &t, &format!("user:{}", i % 50), "agent", 3600),
            f.narrow(
                &t,
                &format!("{t}a"),
                "agent",
                "gateway",
                &["repo:write"],
                10,
            ),
            f.narrow(
                &format!("{t}a"),
                &format!("{t}b"),
                "gateway",
                "server-a",
                &["files:write"],
                10,
            ),
            f.narrow(
                &format!("{t}b"),
                &format!("{t}c"),
                "server-a",
                "server-b",
                &[],
                10,
            ),
        ];
        for e in chain {
            records.push(Record {
                key: key(&f, &e, Some(&t)),
                value: baton_proto::encode_signed(&e),
            });
            replayable.push(records.len() - 1);
        }
        if i % 10 == 0 {
            let e = f.revoke(RevocationTarget::Token(Fixture::token(&format!("{t}a"))));
            records.push(Record {
                key: key(&f, &e, Some(&t)),
                value: baton_proto::encode_signed(&e),
            });
        }
    }
    let distinct = records.len() as u64;
    for n in 0..REPLAYS {
        let again = records[replayable[n * 37 % replayable.len()]].clone();
        records.push(again);
    }
    (f, records, distinct)
}

struct Progress {
    applied: u64,
    duplicates: u64,
    offsets: Vec<u64>,
}

fn parse(line: &str) -> Option<Progress> {
    let number = |name: &str| -> Option<u64> {
        let at = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let offsets = line.split("\"offsets\":[").nth(1)?.split(']').next()?;
    let offsets = offsets
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    Some(Progress {
        applied: number("applied")?,
        duplicates: number("duplicates")?,
        offsets,
    })
}

/// `baton project` as a child process, with its progress lines on a channel.
struct Projecting {
    child: Child,
    progress: mpsc::Receiver<Progress>,
}

impl Projecting {
    fn start(data: &Path, trust_root: &str, kafka: Option<(&str, &str)>) -> Projecting {
        let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
        command.args(["project", "--data-dir"]).arg(data).args([
            "--trust-root",
            trust_root,
            "--progress-ms",
            "20",
        ]);
        if let Some((brokers, topic)) = kafka {
            command.args([
                "--kafka-brokers",
                brokers,
                "--kafka-topic",
                topic,
                "--kafka-partitions",
                "4",
            ]);
        }
        let mut child = command
            .env("BATON_LOG", "warn")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, progress) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = parse(&line)
                    && send.send(p).is_err()
                {
                    return;
                }
            }
        });
        Projecting { child, progress }
    }

    /// Waits for a progress line satisfying `done`.
    fn wait(&self, what: &str, done: impl Fn(&Progress) -> bool) -> Progress {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}"));
            let p = self
                .progress
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            if done(&p) {
                return p;
            }
        }
    }

    /// SIGKILLs the projector once it has applied 2000 events, and checks
    /// that this was before the end of the stream of `distinct` events.
    fn sigkill_mid_stream(self, distinct: u64) {
        let at_kill = self
            .wait("a mid-stream kill point", |p| p.applied >= 2000)
            .applied;
        eprintln!("projector SIGKILLed after applying {at_kill} of {distinct} distinct events");
        self.sigkill();
        assert!(
            at_kill < distinct,
            "the kill came after the whole stream ({at_kill} of {distinct})"
        );
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn sigterm(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(
            exit.success(),
            "baton project exited with {exit} on SIGTERM"
        );
    }
}

/// Projects `log` from zero in this process until it covers `ends`; returns the digest.
async fn rebuild<L: EventLog>(
    log: L,
    dir: &Path,
    fixture: &Fixture,
    ends: &[u64],
) -> ([u8; 32], u64, u64) {
    let projector = Projector::open(log, dir, ProjectorOptions::new(fixture.policy())).unwrap();
    let handle = projector.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run(async move {
        let _ = stopped.await;
    }));
    handle
        .wait_for(&baton_log::ConsistencyToken::new(ends.to_vec()), DEADLINE)
        .await
        .unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    (
        handle.state_digest().unwrap(),
        handle.counter("applied").unwrap(),
        handle.counter("duplicates").unwrap(),
    )
}

/// Opens a projection a child left behind and reads its digest and counters.
async fn inspect<L: EventLog>(log: L, dir: &Path, fixture: &Fixture) -> ([u8; 32], u64, u64, u64) {
    let projector = Projector::open(log, dir, ProjectorOptions::new(fixture.policy())).unwrap();
    let h = projector.handle();
    (
        h.state_digest().unwrap(),
        h.counter("applied").unwrap(),
        h.counter("duplicates").unwrap(),
        h.counter("quarantined").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_on_the_embedded_log_applies_everything_once() {
    let (fixture, records, distinct) = stream();
    let total = records.len() as u64;
    let data = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&data.path().join("log")).unwrap();
    for chunk in records.chunks(500) {
        assert!(log.append(chunk.to_vec()).await.iter().all(Result::is_ok));
    }
    log.close().await;
    let trust_root = hex::encode(fixture.root.public_key().to_bytes());

    let first = Projecting::start(data.path(), &trust_root, None);
    first.sigkill_mid_stream(distinct);
    let second = Projecting::start(data.path(), &trust_root, None);
    let done = second.wait("the whole stream", |p| {
        p.offsets.iter().sum::<u64>() == total
    });
    assert_eq!((done.applied, done.duplicates), (distinct, REPLAYS as u64));
    second.sigterm();

    let log = EmbeddedLog::open(&data.path().join("log")).unwrap();
    let (digest, applied, duplicates, quarantined) =
        inspect(log.clone(), &data.path().join("projection"), &fixture).await;
    assert_eq!(
        (applied, duplicates, quarantined),
        (distinct, REPLAYS as u64, 0)
    );
    let rebuilt = rebuild(log, &data.path().join("rebuild"), &fixture, &[total]).await;
    assert_eq!(
        rebuilt,
        (digest, distinct, REPLAYS as u64),
        "crash-restarted projection differs from a rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_on_kafka_applies_everything_once() {
    let cluster = KafkaCluster::shared();
    let (fixture, records, distinct) = stream();
    let total = records.len() as u64;
    let topic = "crash";
    let mut options = KafkaOptions::new(cluster.bootstrap());
    options.topic = topic.into();
    options.partitions = 4;
    let log = KafkaLog::connect(options).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let trust_root = hex::encode(fixture.root.public_key().to_bytes());

    // Registrations first; then the trees stream in while the projector runs.
    let (setup, trees) = records.split_at(6);
    assert!(log.append(setup.to_vec()).await.iter().all(Result::is_ok));
    let first = Projecting::start(data.path(), &trust_root, Some((cluster.bootstrap(), topic)));
    let writer = {
        let (log, trees) = (log.clone(), trees.to_vec());
        tokio::spawn(async move {
            for chunk in trees.chunks(200) {
                assert!(log.append(chunk.to_vec()).await.iter().all(Result::is_ok));
            }
        })
    };
    first.sigkill_mid_stream(distinct);
    writer.await.unwrap();
    let ends = log.end_offsets().await.unwrap();
    assert_eq!(ends.iter().sum::<u64>(), total);
    let second = Projecting::start(data.path(), &trust_root, Some((cluster.bootstrap(), topic)));
    let done = second.wait("the whole stream", |p| p.offsets == ends);
    assert_eq!((done.applied, done.duplicates), (distinct, REPLAYS as u64));
    second.sigterm();

    let (digest, applied, duplicates, quarantined) =
        inspect(log.clone(), &data.path().join("projection"), &fixture).await;
    assert_eq!(
        (applied, duplicates, quarantined),
        (distinct, REPLAYS as u64, 0)
    );
    let rebuilt = rebuild(log, &data.path().join("rebuild"), &fixture, &ends).await;
    assert_eq!(
        rebuilt,
        (digest, distinct, REPLAYS as u64),
        "crash-restarted projection differs from a rebuild"
    );
}
