//! The embedded log: one partition in one append-only file in the node's data
//! directory, for a single node with no Kafka.
//!
//! File format: the magic line `BATONLOG1\n`, then records framed as
//! `[len u32 LE][crc32 u32 LE][key_len u32 LE][key][value]`, where `len`
//! counts everything after the crc and the crc covers the same bytes. A single
//! writer thread appends batches and fsyncs before it acknowledges (group
//! commit: concurrent appends share one fsync). On open, a torn tail — a
//! record cut short or failing its crc, which can only be one that was never
//! acknowledged — is truncated away.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    AppendError, Error, EventLog, LogReader, Position, ReadLimit, ReadRecord, Record, Result,
    check_record,
};

const MAGIC: &[u8] = b"BATONLOG1\n";
/// Appends queued for the writer before callers wait.
const QUEUE_JOBS_MAX: usize = 64;
/// Records one group commit takes at most.
const COMMIT_RECORDS_MAX: usize = 16 * 1024;

struct Job {
    records: Vec<Record>,
    reply: oneshot::Sender<Vec<Result<Position, AppendError>>>,
}

enum Command {
    Append(Job),
    /// Stop writing and release the file (and its lock), then reply.
    Close(oneshot::Sender<()>),
}

/// What the writer and the readers share.
struct Shared {
    path: PathBuf,
    file: File,
    /// Start of record `i` at `index[i]`; the last entry is the end of data.
    index: RwLock<Vec<u64>>,
    /// The number of durable records: readers wait on it.
    end: watch::Sender<u64>,
}

/// A handle to the embedded log; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Command>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("path", &self.shared.path)
            .finish()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl EmbeddedLog {
    /// Opens (or creates) the log at `dir/events.log`, recovering from a torn tail.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("events.log");
        let mut writer = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match writer.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::InUse {
                    path: path.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let index = recover(&path, &mut writer)?;
        let reader = File::open(&path).map_err(io(&path))?;
        let records = index.len() as u64 - 1;
        let shared = Arc::new(Shared {
            path: path.clone(),
            file: reader,
            index: RwLock::new(index),
            end: watch::Sender::new(records),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_JOBS_MAX);
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("baton-log-writer".into())
            .spawn(move || write_loop(for_writer, writer, queue))
            .map_err(io(&path))?;
        Ok(EmbeddedLog { shared, jobs })
    }

    /// Stops the writer and releases the file; appends through other handles
    /// are refused from then on.
    pub async fn close(self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Command::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }

    /// Whether two handles write the same log.
    pub fn same_log(&self, other: &EmbeddedLog) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// Reads the file frame by frame (streaming: memory stays at one frame
/// whatever the log's size), checks every frame, truncates a torn tail, and
/// returns the index.
fn recover(path: &Path, file: &mut File) -> Result<Vec<u64>> {
    let total = file.metadata().map_err(io(path))?.len();
    if total == 0 {
        file.write_all(MAGIC).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        sync_dir(path)?;
        return Ok(vec![MAGIC.len() as u64]);
    }
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, &mut *file);
    let mut magic = vec![0; MAGIC.len()];
    if reader.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(Error::Corrupt {
            path: path.display().to_string(),
            at: 0,
            reason: "missing magic".into(),
        });
    }
    let mut index = vec![MAGIC.len() as u64];
    let mut at = MAGIC.len() as u64;
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; 8];
        if reader.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if len > total - at - 8 {
            break;
        }
        body.resize(len as usize, 0);
        if reader.read_exact(&mut body).is_err() || !frame_ok(crc, &body) {
            break;
        }
        at += 8 + len;
        index.push(at);
    }
    drop(reader);
    if at < total {
        // A torn tail — the end of a write that crashed before its fsync, and
        // so was never acknowledged — holds no whole frame after the break.
        // A whole frame after it means damage in the middle of the log:
        // truncating would drop acknowledged records, so refuse instead.
        let mut rest = Vec::new();
        file.seek(SeekFrom::Start(at)).map_err(io(path))?;
        file.read_to_end(&mut rest).map_err(io(path))?;
        if let Some(later) = (1..rest.len()).find(|&i| frame_end(&rest, i).is_some()) {
            return Err(Error::Corrupt {
                path: path.display().to_string(),
                at,
                reason: format!(
                    "a damaged frame is followed by intact ones (the next at byte {}); not truncating acknowledged records",
                    at + later as u64
                ),
            });
        }
        tracing::warn!(path = %path.display(), at, dropped_bytes = total - at, "truncating a torn, unacknowledged tail");
        file.set_len(at).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
    }
    file.seek(SeekFrom::End(0)).map_err(io(path))?;
    Ok(index)
}

/// Makes the log file's directory entry durable (after creating the file).
fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Whether a frame body (key length, key, value) matches its checksum and
/// its key length fits.
fn frame_ok(crc: u32, body: &[u8]) -> bool {
    body.len() >= 4
        && crc32fast::hash(body) == crc
        && u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize <= body.len() - 4
}

/// The end of the valid frame starting at `at`, if there is one.
fn frame_end(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at + 8)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let body = data.get(at + 8..at + 8 + len)?;
    frame_ok(crc, body).then_some(at + 8 + len)
}

/// A frame's bytes besides its record's key and value: length, checksum,
/// key length.
const FRAME_HEADER: u64 = 12;

fn encode_frame(out: &mut Vec<u8>, record: &Record) {
    let len = 4 + record.key.len() + record.value.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.key);
    out.extend_from_slice(&record.value);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn write_loop(shared: Arc<Shared>, mut file: File, mut queue: mpsc::Receiver<Command>) {
    let mut failed: Option<String> = None;
    let mut closing = None;
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = Vec::new();
        let mut count = 0;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Append(job) => {
                    count += job.records.len();
                    jobs.push(job);
                }
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if count < COMMIT_RECORDS_MAX {
                next = queue.try_recv().ok();
            }
        }
        commit(&shared, &mut file, &mut failed, jobs, count);
        if let Some(done) = closing.take() {
            drop(file);
            queue.close();
            let _ = done.send(());
            return;
        }
    }
}

/// Writes one group of appends with one fsync and answers each.
fn commit(
    shared: &Shared,
    file: &mut File,
    failed: &mut Option<String>,
    jobs: Vec<Job>,
    count: usize,
) {
    if jobs.is_empty() {
        return;
    }
    {
        if let Some(reason) = failed.as_ref() {
            for job in jobs {
                let outcome = job
                    .records
                    .iter()
                    .map(|_| Err(AppendError::Refused(reason.clone())))
                    .collect();
                let _ = job.reply.send(outcome);
            }
            return;
        }
        let mut buffer = Vec::new();
        let mut starts = Vec::with_capacity(count);
        let base = *shared
            .index
            .read()
            .expect("index lock")
            .last()
            .expect("index has an end");
        let mut outcomes: Vec<Vec<Option<AppendError>>> = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let mut job_outcomes = Vec::with_capacity(job.records.len());
            for record in &job.records {
                match check_record(record) {
                    Ok(()) => {
                        starts.push(base + buffer.len() as u64);
                        encode_frame(&mut buffer, record);
                        job_outcomes.push(None);
                    }
                    Err(refused) => job_outcomes.push(Some(refused)),
                }
            }
            outcomes.push(job_outcomes);
        }
        let written = file.write_all(&buffer).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // The bytes may or may not be on disk: every record of this commit
            // is ambiguous, and the log takes nothing more until reopened.
            let reason = format!("write to {} failed: {e}", shared.path.display());
            tracing::error!(%reason, "embedded log failed");
            for job in jobs {
                let outcome = job
                    .records
                    .iter()
                    .map(|_| Err(AppendError::Ambiguous(reason.clone())))
                    .collect();
                let _ = job.reply.send(outcome);
            }
            *failed = Some(reason);
            return;
        }
        let first_offset = {
            let mut index = shared.index.write().expect("index lock");
            let first = index.len() as u64 - 1;
            index.pop();
            index.extend(&starts);
            index.push(base + buffer.len() as u64);
            first
        };
        shared.end.send_replace(first_offset + starts.len() as u64);
        let mut next = first_offset;
        for (job, job_outcomes) in jobs.into_iter().zip(outcomes) {
            let outcome = job_outcomes
                .into_iter()
                .map(|refused| match refused {
                    Some(error) => Err(error),
                    None => {
                        next += 1;
                        Ok(Position {
                            partition: 0,
                            offset: next - 1,
                        })
                    }
                })
                .collect();
            let _ = job.reply.send(outcome);
        }
    }
}

impl EventLog for EmbeddedLog {
    const KIND: &'static str = "embedded";

    type Reader = EmbeddedReader;

    fn partitions(&self) -> u32 {
        1
    }

    async fn append(&self, records: Vec<Record>) -> Vec<Result<Position, AppendError>> {
        if records.is_empty() {
            return Vec::new();
        }
        let count = records.len();
        let (reply, outcome) = oneshot::channel();
        if self
            .jobs
            .send(Command::Append(Job { records, reply }))
            .await
            .is_err()
        {
            return vec![Err(AppendError::Refused("the embedded log is closed".into())); count];
        }
        match outcome.await {
            Ok(outcome) => outcome,
            Err(_) => vec![
                Err(AppendError::Ambiguous(
                    "the embedded log writer stopped".into()
                ));
                count
            ],
        }
    }

    async fn end_offsets(&self) -> Result<Vec<u64>> {
        Ok(vec![*self.shared.end.borrow()])
    }

    fn reader(&self, start: &[u64]) -> Result<EmbeddedReader> {
        if start.len() > 1 {
            return Err(Error::NoSuchPartition {
                partition: 1,
                partitions: 1,
            });
        }
        Ok(EmbeddedReader {
            shared: self.shared.clone(),
            next: start.first().copied().unwrap_or(0),
            end: self.shared.end.subscribe(),
        })
    }
}

/// Follows the embedded log from an offset.
pub struct EmbeddedReader {
    shared: Arc<Shared>,
    next: u64,
    end: watch::Receiver<u64>,
}

impl std::fmt::Debug for EmbeddedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedReader")
            .field("next", &self.next)
            .finish()
    }
}

impl EmbeddedReader {
    /// Where a read from `from` stops, below `end`, by `limit`: each
    /// record's bytes are its frame's less the frame's header.
    fn within(shared: &Shared, from: u64, end: u64, limit: ReadLimit) -> u64 {
        let index = shared.index.read().expect("index lock");
        let (mut to, mut bytes) = (from, 0usize);
        while to < end && limit.room((to - from) as usize, bytes) {
            let frame = index[to as usize + 1] - index[to as usize];
            bytes += frame.saturating_sub(FRAME_HEADER) as usize;
            to += 1;
        }
        to
    }

    fn read_range(shared: &Shared, from: u64, to: u64) -> Result<Vec<ReadRecord>> {
        let (start, stop) = {
            let index = shared.index.read().expect("index lock");
            (index[from as usize], index[to as usize])
        };
        let mut data = vec![0u8; (stop - start) as usize];
        shared
            .file
            .read_exact_at(&mut data, start)
            .map_err(io(&shared.path))?;
        let mut out = Vec::with_capacity((to - from) as usize);
        let mut at = 0usize;
        for offset in from..to {
            let end = frame_end(&data, at).ok_or_else(|| Error::Corrupt {
                path: shared.path.display().to_string(),
                at: start + at as u64,
                reason: "frame fails its checksum on read".into(),
            })?;
            let key_len =
                u32::from_le_bytes(data[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
            let key = data[at + 12..at + 12 + key_len].to_vec();
            let value = data[at + 12 + key_len..end].to_vec();
            out.push(ReadRecord {
                position: Position {
                    partition: 0,
                    offset,
                },
                key,
                value,
            });
            at = end;
        }
        Ok(out)
    }
}

impl LogReader for EmbeddedReader {
    async fn next_batch(&mut self, limit: ReadLimit, wait: Duration) -> Result<Vec<ReadRecord>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let end = *self.end.borrow_and_update();
            if self.next < end {
                let to = Self::within(&self.shared, self.next, end, limit);
                let shared = self.shared.clone();
                let from = self.next;
                let records =
                    tokio::task::spawn_blocking(move || Self::read_range(&shared, from, to))
                        .await
                        .map_err(|e| Error::Backend(format!("log read task failed: {e}")))??;
                self.next = to;
                return Ok(records);
            }
            match tokio::time::timeout_at(deadline, self.end.changed()).await {
                Ok(Ok(())) => continue,
                // The log was dropped: nothing more will come.
                Ok(Err(_)) => return Ok(Vec::new()),
                Err(_) => return Ok(Vec::new()),
            }
        }
    }
}
