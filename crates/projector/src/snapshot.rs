//! Snapshots: a consistent, checksummed copy of a projection with the log
//! positions it reflects, so a new node can start from it and read only the
//! log's tail instead of replaying (and re-verifying) the whole log.
//!
//! A snapshot is as trusted as the node that made it: restoring one does not
//! re-verify the events it summarises. The checksum and the state digest
//! catch damage on the way, not a lying node; a node that trusts only the
//! log replays it (no snapshot): its digest at the same positions is the
//! snapshot's.
//!
//! The file carries a ready sled store, not a list of entries: the copy is
//! written into a fresh store beside the projection (in key order), and the
//! file holds that store's files, so a restore writes files instead of
//! inserting entry by entry (sled's cost is per entry: ~10 µs each). The
//! file: `MAGIC`, then each file of the store (path length u32 BE, the
//! path relative to the store, `/`-separated; length u64 BE, the bytes),
//! then a path length of 0, then the trailer ([`SnapshotInfo`] as
//! protobuf) and its length (u32 BE), then the blake3 hash of everything
//! before it (32 bytes). A restore hashes the file as it writes the store
//! into a staging directory, uses nothing unless the hash holds, then
//! checks the store's entries against the trailer's count and state digest
//! (each range of keys on a thread of its own: [`parallel_digest`]).

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use prost::Message as _;

use crate::{Error, Handle, Result, stored};

const MAGIC: &[u8] = b"BATON-SNAPSHOT\x00v2\n";
/// The format before it (a list of entries), named when refused.
const MAGIC_V1: &[u8] = b"BATON-SNAPSHOT\x00v1\n";

/// Most files, and longest path, a snapshot's store may hold (sled makes a
/// handful; more means a damaged or foreign file).
const FILES_MAX: usize = 100_000;
const PATH_BYTES_MAX: usize = 1024;
/// Largest trailer (positions per partition: far less for any log).
const TRAILER_BYTES_MAX: u64 = 16 << 20;

/// What a snapshot holds, from its trailer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotInfo {
    /// The projection tree's name: its layout and its rules' fingerprint.
    #[prost(string, tag = "1")]
    pub tree: String,
    /// The log's partition count.
    #[prost(uint32, tag = "2")]
    pub partitions: u32,
    /// Next offset to read per partition: where a restored node resumes.
    #[prost(uint64, repeated, tag = "3")]
    pub read: Vec<u64>,
    /// What answers reflect per partition (stops at a parked record).
    #[prost(uint64, repeated, tag = "4")]
    pub applied: Vec<u64>,
    #[prost(uint64, tag = "5")]
    pub entries: u64,
    /// The projection's state digest ([`Handle::state_digest`]).
    #[prost(bytes = "vec", tag = "6")]
    pub state_digest: Vec<u8>,
    #[prost(int64, tag = "7")]
    pub created_at_ms: i64,
    /// The version of the node that made it.
    #[prost(string, tag = "8")]
    pub made_by: String,
}

/// The state digest: the one definition [`Handle::state_digest`],
/// snapshots and restores share. The key space is cut into fixed ranges by
/// first byte ([`DIGEST_RANGES`]); each range's entries are hashed in key
/// order ([`Part`]), and the digest is the hash of the ranges' hashes, so
/// the ranges of a store can be read by one thread each
/// ([`parallel_digest`]) and a stream in key order ([`Digest`]) gives the
/// same answer. Every entry is hashed as it is, except the query indexes'
/// aggregates, whose items are hashed in their canonical order instead
/// ([`crate::index::Canonical`]): two projections of one log are equal
/// whichever events shared a batch. An index prefix never spans two
/// ranges (its keys share their first byte).
pub(crate) struct Digest {
    done: Vec<[u8; 32]>,
    part: Part,
}

/// Where each digest range begins (the first begins at the empty key): the
/// events (`e`), the token references and what follows (`r`) and the rest
/// (children, indexes, keys, clients, ...) in about even shares.
const DIGEST_RANGES: [&[u8]; 4] = [b"", b"e", b"f", b"r"];

/// The range of the digest `key` falls in.
fn range_of(key: &[u8]) -> usize {
    DIGEST_RANGES
        .iter()
        .rposition(|lower| key >= *lower)
        .expect("every key is at or after the empty key")
}

/// One range's share of the digest.
struct Part {
    hasher: blake3::Hasher,
    index: crate::index::Canonical,
}

impl Part {
    fn new(range: usize) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("baton.v1 projection digest range");
        hasher.update(&(range as u64).to_le_bytes());
        Part {
            hasher,
            index: Default::default(),
        }
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) {
        if self.index.entry(key, value, &mut self.hasher) {
            return;
        }
        self.hasher.update(&[0]);
        self.hasher.update(&(key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
    }

    fn finish(mut self) -> [u8; 32] {
        self.index.finish(&mut self.hasher);
        *self.hasher.finalize().as_bytes()
    }
}

/// The digest of the ranges' hashes, in order.
fn combine(parts: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("baton.v1 projection digest");
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

impl Digest {
    pub fn new() -> Self {
        Digest {
            done: Vec::new(),
            part: Part::new(0),
        }
    }

    /// The next entry, in key order.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) {
        let range = range_of(key);
        while self.done.len() < range {
            let next = Part::new(self.done.len() + 1);
            self.done
                .push(std::mem::replace(&mut self.part, next).finish());
        }
        self.part.entry(key, value);
    }

    pub fn finish(mut self) -> [u8; 32] {
        while self.done.len() < DIGEST_RANGES.len() - 1 {
            let next = Part::new(self.done.len() + 1);
            self.done
                .push(std::mem::replace(&mut self.part, next).finish());
        }
        self.done.push(self.part.finish());
        combine(&self.done)
    }
}

/// The digest of `tree` and its count of entries, each range read by a
/// thread of its own (as many as there are cores, up to one per range).
pub(crate) fn parallel_digest(tree: &sled::Tree) -> Result<([u8; 32], u64)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, DIGEST_RANGES.len());
    // Per thread: (range, its hash, its entries) of each range it read.
    type Ranges = Result<Vec<(usize, [u8; 32], u64)>>;
    let results: Vec<Ranges> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let range = next.fetch_add(1, Ordering::Relaxed);
                        let Some(lower) = DIGEST_RANGES.get(range) else {
                            return Ok(done);
                        };
                        let entries = match DIGEST_RANGES.get(range + 1) {
                            Some(upper) => tree.range(*lower..*upper),
                            None => tree.range(*lower..),
                        };
                        let (mut part, mut count) = (Part::new(range), 0u64);
                        for entry in entries {
                            let (key, value) = entry?;
                            part.entry(&key, &value);
                            count += 1;
                        }
                        done.push((range, part.finish(), count));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a digest thread panicked"))
            .collect()
    });
    let mut parts = vec![[0u8; 32]; DIGEST_RANGES.len()];
    let mut entries = 0u64;
    for result in results {
        for (range, hash, count) in result? {
            parts[range] = hash;
            entries += count;
        }
    }
    Ok((combine(&parts), entries))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through it.
impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Snapshot(format!("{what}: {e}"))
}

/// While a snapshot is written, applying goes on. Each commit first notes
/// what every key it writes held (the first time the key is written since the
/// copy began), and the copy reads those instead of the tree: what it writes is
/// the projection as it was at one moment, between two committed batches.
#[derive(Debug)]
pub struct Journal {
    before: BTreeMap<Vec<u8>, Option<sled::IVec>>,
    bytes: usize,
    bytes_max: usize,
    overflowed: bool,
    /// The copy is complete (the snapshot's file is being written): commits
    /// note nothing more.
    copied: bool,
}

/// The journal of the snapshot being written, if one is.
pub type Copying = std::sync::Mutex<Option<Journal>>;

/// Most bytes a journal keeps by default (see
/// [`crate::ProjectorOptions::snapshot_journal_bytes_max`]).
pub const JOURNAL_BYTES_MAX: usize = 256 << 20;

/// What a journal entry costs besides its key and value (map node, vector
/// and reference-counted value headers): an estimate, so the bound holds
/// for small entries too.
const JOURNAL_ENTRY_OVERHEAD: usize = 96;

impl Journal {
    /// Notes what `keys` hold now, for those not noted yet. Past its bound
    /// it keeps nothing more and the copy fails.
    pub(crate) fn note<'k>(
        &mut self,
        tree: &sled::Tree,
        keys: impl Iterator<Item = &'k Vec<u8>>,
    ) -> Result<()> {
        if self.overflowed || self.copied {
            return Ok(());
        }
        for key in keys {
            if self.before.contains_key(key) {
                continue;
            }
            let value = tree.get(key)?;
            self.bytes +=
                key.len() + value.as_ref().map_or(0, |v| v.len()) + JOURNAL_ENTRY_OVERHEAD;
            self.before.insert(key.clone(), value);
            if self.bytes > self.bytes_max {
                self.overflowed = true;
                self.before = BTreeMap::new();
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A snapshot's copy in progress: its journal is dropped with it.
struct InProgress<'a> {
    copying: &'a Copying,
    bytes_max: usize,
}

impl InProgress<'_> {
    fn overflowed(&self) -> Result<()> {
        let journal = self.copying.lock().expect("journal lock");
        match journal.as_ref() {
            Some(j) if j.overflowed => Err(Error::Snapshot(format!(
                "the projection changed by more than {} bytes while it was copied (snapshot_journal_bytes_max); the snapshot is abandoned, applying went on: take it again when fewer writes arrive",
                self.bytes_max
            ))),
            _ => Ok(()),
        }
    }

    /// The copy is complete: the journal keeps nothing more (the guard
    /// stays, so no other snapshot begins while this one is written).
    fn copied(&self) {
        if let Some(journal) = self.copying.lock().expect("journal lock").as_mut() {
            journal.copied = true;
            journal.before = BTreeMap::new();
        }
    }

    /// For the tree's entry at `key`, after `last`: the entries between them
    /// that were deleted since the copy began (with what they held), and
    /// what `key` held when it began if it was written since (`Some(None)`:
    /// it did not exist).
    #[allow(clippy::type_complexity)]
    fn lookup(
        &self,
        last: Option<&[u8]>,
        key: Option<&[u8]>,
    ) -> (Vec<(Vec<u8>, sled::IVec)>, Option<Option<sled::IVec>>) {
        use std::ops::Bound;
        let journal = self.copying.lock().expect("journal lock");
        let Some(journal) = journal.as_ref() else {
            return (Vec::new(), None);
        };
        let lower = last.map_or(Bound::Unbounded, Bound::Excluded);
        let upper = key.map_or(Bound::Unbounded, Bound::Excluded);
        let gone = journal
            .before
            .range::<[u8], _>((lower, upper))
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let here = key.and_then(|k| journal.before.get(k).cloned());
        (gone, here)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        *self.copying.lock().expect("journal lock") = None;
    }
}

impl Handle {
    /// Writes a snapshot of the projection to `out` (a new file): the
    /// projection as it was when the copy began, between two committed
    /// batches. Applying goes on meanwhile (see [`Journal`]).
    pub fn write_snapshot(&self, out: &Path) -> Result<SnapshotInfo> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(io("snapshot file"))?;
        let (info, writer) = self.write_snapshot_to(BufWriter::new(file))?;
        let file = writer
            .into_inner()
            .map_err(|e| io("write")(e.into_error()))?;
        file.sync_all().map_err(io("sync"))?;
        Ok(info)
    }

    /// Writes a snapshot to `out` (see [`Handle::write_snapshot`]) and
    /// gives it back, flushed.
    pub fn write_snapshot_to<W: Write>(&self, out: W) -> Result<(SnapshotInfo, W)> {
        self.write_snapshot_with(out, |_| {})
    }

    /// [`Handle::write_snapshot_to`], calling `copied` with the count of
    /// entries copied after each (the tests hold a copy mid-way with it).
    pub fn write_snapshot_with<W: Write>(
        &self,
        out: W,
        copied: impl FnMut(u64),
    ) -> Result<(SnapshotInfo, W)> {
        let copy = self.begin_copy()?;
        // The copy is written into a fresh store beside the projection, then
        // that store's files into `out`; the store goes whatever happens,
        // and one left by a snapshot that died half-way (a node killed) goes
        // when the next begins (one is written at a time).
        let parent = self
            .shared
            .dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let prefix = format!(
            "{}.snapshot-copy-",
            self.shared
                .dir
                .file_name()
                .map_or_else(|| "projection".into(), |n| n.to_string_lossy())
        );
        for entry in std::fs::read_dir(parent).map_err(io("the projection's directory"))? {
            let entry = entry.map_err(io("the projection's directory"))?;
            if entry.file_name().to_string_lossy().starts_with(&prefix)
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                match std::fs::remove_dir_all(entry.path()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io("an earlier snapshot's leftovers")(e));
                    }
                    _ => {}
                }
            }
        }
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(parent)
            .map_err(io("the snapshot's copy"))?;
        // While the journal is kept, the copy is a sequential file write
        // (the moment's entries, in key order); the store is built from it
        // after, when applying no longer needs the journal.
        let entries = staging.path().join("entries");
        let info = self.copy_into(&copy, &entries, copied)?;
        let store = staging.path().join("store");
        build_store(&entries, &store, &info.tree)?;
        std::fs::remove_file(&entries).map_err(io("the snapshot's copy"))?;
        let mut writer = Hashing {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        writer.write_all(MAGIC).map_err(io("write"))?;
        for (relative, path) in files(&store)? {
            let length = std::fs::metadata(&path).map_err(io("the copy"))?.len();
            writer
                .write_all(&(relative.len() as u32).to_be_bytes())
                .and_then(|()| writer.write_all(relative.as_bytes()))
                .and_then(|()| writer.write_all(&length.to_be_bytes()))
                .map_err(io("write"))?;
            let file = std::fs::File::open(&path).map_err(io("the copy"))?;
            let written =
                std::io::copy(&mut file.take(length), &mut writer).map_err(io("write"))?;
            if written != length {
                return Err(Error::Snapshot(format!(
                    "{relative}: changed while it was written ({written} of {length} bytes)"
                )));
            }
        }
        writer.write_all(&0u32.to_be_bytes()).map_err(io("write"))?;
        let trailer = info.encode_to_vec();
        writer.write_all(&trailer).map_err(io("write"))?;
        writer
            .write_all(&(trailer.len() as u32).to_be_bytes())
            .map_err(io("write"))?;
        let checksum = *writer.hasher.finalize().as_bytes();
        let mut out = writer.inner;
        out.write_all(&checksum).map_err(io("write"))?;
        out.flush().map_err(io("write"))?;
        // The copy goes before the guard, so the next snapshot never meets it.
        drop(staging);
        drop(copy);
        Ok((info, out))
    }

    /// Begins a snapshot: the moment it copies, and the one snapshot of
    /// this projection until the guard is dropped.
    fn begin_copy(&self) -> Result<InProgress<'_>> {
        // The moment: no batch is committing.
        let _store = self.shared.store.lock().expect("store lock");
        let mut copying = self.shared.copying.lock().expect("journal lock");
        if copying.is_some() {
            return Err(Error::Snapshot(
                "another snapshot of this projection is being written".into(),
            ));
        }
        *copying = Some(Journal {
            before: BTreeMap::new(),
            bytes: 0,
            bytes_max: self.shared.journal_bytes_max,
            overflowed: false,
            copied: false,
        });
        Ok(InProgress {
            copying: &self.shared.copying,
            bytes_max: self.shared.journal_bytes_max,
        })
    }

    /// Copies the projection as it was when `copy` began into the file
    /// `to` (each entry: key length u32 BE, key, value length u32 BE,
    /// value; in key order), while applying goes on.
    fn copy_into(
        &self,
        copy: &InProgress<'_>,
        to: &Path,
        mut copied: impl FnMut(u64),
    ) -> Result<SnapshotInfo> {
        let file = std::fs::File::create_new(to).map_err(io("the snapshot's copy"))?;
        let mut file = BufWriter::new(file);
        let (mut digest, mut entries) = (Digest::new(), 0u64);
        // The positions are the ones stored with the state (under `o`), and
        // the parked records (under `p`) hold back what answers reflect.
        let mut read = vec![0u64; self.shared.partitions as usize];
        let mut parked = Vec::new();
        let mut emit = |key: &[u8], value: &[u8]| -> Result<()> {
            digest.entry(key, value);
            match key.first() {
                Some(b'o') => {
                    let partition = stored::key::parse_offset(key)
                        .ok_or_else(|| Error::Corrupt("offset key".into()))?;
                    if let Some(slot) = read.get_mut(partition as usize) {
                        *slot = crate::stored::read_u64(Some(value));
                    }
                }
                Some(b'p') => parked.push(
                    stored::key::parse_position(key)
                        .ok_or_else(|| Error::Corrupt("parked key".into()))?,
                ),
                _ => {}
            }
            for part in [key, value] {
                file.write_all(&(part.len() as u32).to_be_bytes())
                    .and_then(|()| file.write_all(part))
                    .map_err(io("the snapshot's copy"))?;
            }
            entries += 1;
            copied(entries);
            Ok(())
        };
        let mut last: Option<sled::IVec> = None;
        for (n, entry) in self.shared.tree.iter().enumerate() {
            let (key, value) = entry?;
            if n % 4096 == 0 {
                copy.overflowed()?;
            }
            let (gone, here) = copy.lookup(last.as_deref(), Some(&key));
            for (k, v) in gone {
                emit(&k, &v)?;
            }
            match here {
                None => emit(&key, &value)?,
                Some(Some(before)) => emit(&key, &before)?,
                // Written since the copy began.
                Some(None) => {}
            }
            last = Some(key);
        }
        let (gone, _) = copy.lookup(last.as_deref(), None);
        for (k, v) in gone {
            emit(&k, &v)?;
        }
        copy.overflowed()?;
        copy.copied();
        file.flush().map_err(io("the snapshot's copy"))?;
        let applied = crate::settled(&read, parked.iter());
        Ok(SnapshotInfo {
            tree: String::from_utf8_lossy(&self.shared.tree.name()).into_owned(),
            partitions: self.shared.partitions,
            read,
            applied,
            entries,
            state_digest: digest.finish().to_vec(),
            created_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            made_by: env!("CARGO_PKG_VERSION").into(),
        })
    }
}

/// A store a snapshot is copied into or checked from: written or read
/// once, in key order, so a small page cache (not the projector's, which
/// serves checks) keeps a snapshot from doubling the node's memory.
fn scratch_store(path: &Path) -> Result<sled::Db> {
    Ok(sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .open()?)
}

/// Entries a copy writes into its store per sled batch.
const STORE_BATCH: usize = 10_000;

/// Builds a store at `store` holding, in its tree `tree`, the entries of
/// the file a copy wrote ([`Handle::copy_into`]); closed when it returns.
fn build_store(entries: &Path, store: &Path, tree: &str) -> Result<()> {
    let db = scratch_store(store)?;
    let tree = db.open_tree(tree)?;
    let mut reader =
        BufReader::new(std::fs::File::open(entries).map_err(io("the snapshot's copy"))?);
    let part = |reader: &mut BufReader<std::fs::File>| -> Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other.map_err(io("the snapshot's copy"))?,
        }
        let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
        reader
            .read_exact(&mut bytes)
            .map_err(io("the snapshot's copy"))?;
        Ok(Some(bytes))
    };
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    while let Some(key) = part(&mut reader)? {
        let value = part(&mut reader)?
            .ok_or_else(|| Error::Snapshot("the snapshot's copy ends inside an entry".into()))?;
        batch.insert(key, value);
        pending += 1;
        if pending == STORE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    tree.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}

/// The regular files under `dir`, by path relative to it (`/`-separated),
/// in path order.
fn files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).map_err(io("the copy"))? {
            let entry = entry.map_err(io("the copy"))?;
            let kind = entry.file_type().map_err(io("the copy"))?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(dir)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
                    .ok_or_else(|| {
                        Error::Snapshot(format!("{}: not a path a snapshot holds", path.display()))
                    })?;
                out.push((relative, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Checks a snapshot file whole: its checksum, then its store's entries
/// against the trailer's count and digest (restored into a temporary
/// directory, then removed). Returns its trailer.
pub fn verify_snapshot(path: &Path) -> Result<SnapshotInfo> {
    // Beside the file (a store can be larger than a RAM-backed /tmp), or
    // the system's temporary directory where that is not writable.
    let prefix = ".baton-snapshot-verify-";
    let beside = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(beside)
        .or_else(|_| tempfile::Builder::new().prefix(prefix).tempdir())
        .map_err(io("a scratch directory"))?;
    let store = scratch.path().join("store");
    unpack(path, &store).and_then(|info| check_store(path, &store, &info).map(|()| info))
}

/// Writes the store a snapshot holds into `store` (a new directory, which
/// the caller removes on an error), hashing the file as it reads it; an
/// error when the checksum does not hold. Returns its trailer; what the
/// store holds is not checked here.
fn unpack(path: &Path, store: &Path) -> Result<SnapshotInfo> {
    let bad = |reason: String| Error::Snapshot(format!("{}: {reason}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io("snapshot file"))?;
    let length = file.metadata().map_err(io("snapshot file"))?.len();
    if length < (MAGIC.len() + 4 + 4 + 32) as u64 {
        return Err(bad(format!("{length} bytes: too short to be a snapshot")));
    }
    let body = length - 32;
    let mut stored = [0u8; 32];
    file.seek(SeekFrom::Start(body)).map_err(io("read"))?;
    file.read_exact(&mut stored).map_err(io("read"))?;
    file.seek(SeekFrom::Start(0)).map_err(io("read"))?;
    // One pass: the body is hashed as it is read and written. Nothing is
    // used before the checksum holds: the files go into `store`, which the
    // caller removes on any error, and when the checksum does not hold that
    // is the error, whatever else reading the damaged bytes met.
    let mut reader = Hashing {
        inner: BufReader::with_capacity(1 << 20, file.take(body)),
        hasher: blake3::Hasher::new(),
    };
    let parsed = read_body(&mut reader, body, store, &bad);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io("read"))?;
    if *reader.hasher.finalize().as_bytes() != stored {
        return Err(bad(
            "checksum mismatch: the file is damaged or truncated".into()
        ));
    }
    parsed
}

/// The body of a snapshot file (`body` bytes, from its start): its store's
/// files, written into `store`, and its trailer.
fn read_body(
    reader: &mut impl Read,
    body: u64,
    store: &Path,
    bad: &impl Fn(String) -> Error,
) -> Result<SnapshotInfo> {
    let mut magic = vec![0u8; MAGIC.len()];
    reader.read_exact(&mut magic).map_err(io("read"))?;
    if magic == MAGIC_V1 {
        return Err(bad(
            "a snapshot of an earlier format (v1, a list of entries): take a new one with this version".into(),
        ));
    }
    if magic != MAGIC {
        return Err(bad("not a Baton snapshot (v2)".into()));
    }
    let mut read = MAGIC.len() as u64;
    std::fs::create_dir_all(store).map_err(io("the restored store"))?;
    let mut count = 0usize;
    loop {
        let mut len = [0u8; 4];
        reader.read_exact(&mut len).map_err(io("read"))?;
        read += 4;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        count += 1;
        if len > PATH_BYTES_MAX || count > FILES_MAX {
            return Err(bad(format!(
                "a path of {len} bytes, or more than {FILES_MAX} files"
            )));
        }
        let mut relative = vec![0u8; len];
        reader.read_exact(&mut relative).map_err(io("read"))?;
        let relative = String::from_utf8(relative).map_err(|_| bad("a path not UTF-8".into()))?;
        // Only plain names below the store: nothing absolute, no `..`.
        let parts: Vec<&str> = relative.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
        {
            return Err(bad(format!(
                "holds a file at {:?}, outside its store",
                baton_core::echo(&relative)
            )));
        }
        let mut size = [0u8; 8];
        reader.read_exact(&mut size).map_err(io("read"))?;
        let size = u64::from_be_bytes(size);
        read += len as u64 + 8;
        if size > body.saturating_sub(read) {
            return Err(bad(format!("{relative}: {size} bytes, beyond the file")));
        }
        let target = parts.iter().fold(store.to_path_buf(), |at, p| at.join(p));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("the restored store"))?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io("the restored store"))?;
        let written =
            std::io::copy(&mut (&mut *reader).take(size), &mut out).map_err(io("write"))?;
        if written != size {
            return Err(bad(format!("{relative}: {written} of {size} bytes")));
        }
        read += size;
        out.sync_all().map_err(io("the restored store"))?;
    }
    std::fs::File::open(store)
        .and_then(|d| d.sync_all())
        .map_err(io("the restored store"))?;
    // The trailer and its length: all that is left before the checksum.
    let rest = body.saturating_sub(read);
    if rest < 4 {
        return Err(bad("no room for its trailer".into()));
    }
    if rest - 4 > TRAILER_BYTES_MAX {
        return Err(bad(format!(
            "{} bytes after its store's files, more than a trailer ({TRAILER_BYTES_MAX} at most)",
            rest - 4
        )));
    }
    let mut trailer = vec![0u8; (rest - 4) as usize];
    reader.read_exact(&mut trailer).map_err(io("read"))?;
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).map_err(io("read"))?;
    if u64::from(u32::from_be_bytes(len)) != rest - 4 {
        return Err(bad("bytes between its store's files and its trailer".into()));
    }
    SnapshotInfo::decode(trailer.as_slice()).map_err(|e| bad(format!("trailer: {e}")))
}

/// Checks the store at `store` against a snapshot's trailer: its tree holds
/// the trailer's count of entries, of the trailer's digest.
fn check_store(path: &Path, store: &Path, info: &SnapshotInfo) -> Result<()> {
    let db = scratch_store(store)?;
    let tree = db.open_tree(&info.tree)?;
    let (digest, entries) = parallel_digest(&tree)?;
    if entries != info.entries || digest.as_slice() != info.state_digest {
        return Err(Error::Snapshot(format!(
            "{}: holds {entries} entries that do not match its trailer ({} entries and their digest)",
            path.display(),
            info.entries
        )));
    }
    Ok(())
}

/// The file in a restored projection's directory that names the rules it
/// was made under, until a projector runs on it under those rules.
pub(crate) const RESTORED: &str = "RESTORED";

/// Restores a snapshot into the projection directory `dir`, which must not
/// exist yet: the file's checksum is checked as it is read (into a staging
/// directory), and the restored store's entries against its trailer before
/// it is used. The
/// projection is built in a sibling directory and renamed into place only
/// when complete and checked, so a restore that dies half-way or finds
/// damage leaves nothing a node would open. A node then opened on `dir`
/// resumes from the snapshot's positions.
pub fn restore_snapshot(path: &Path, dir: &Path) -> Result<SnapshotInfo> {
    if dir.exists() {
        return Err(Error::Snapshot(format!(
            "{}: already holds a projection; restore into a data directory without one",
            dir.display()
        )));
    }
    let mut staging = dir.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = std::path::PathBuf::from(staging);
    if staging.exists() {
        // A restore that died half-way.
        std::fs::remove_dir_all(&staging).map_err(io("an earlier restore's leftovers"))?;
    }
    let built = (|| {
        let info = unpack(path, &staging)?;
        let layout = info.tree.rsplit_once('.').map_or("", |(layout, _)| layout);
        if layout != stored::TREE {
            return Err(Error::Snapshot(format!(
                "{}: made with projection layout {layout:?}; this binary's is {:?}",
                path.display(),
                stored::TREE
            )));
        }
        check_store(path, &staging, &info)?;
        // Until a projector opens it under the rules it was made under, the
        // projection says it was restored (see `crate::restored_under`).
        let mut marker = std::fs::File::create(staging.join(RESTORED))
            .map_err(io("marking the projection as restored"))?;
        std::io::Write::write_all(&mut marker, info.tree.as_bytes())
            .and_then(|()| marker.sync_all())
            .map_err(io("marking the projection as restored"))?;
        Ok::<_, Error>(info)
    })();
    let info = match built {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&staging, dir) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io("moving the restored projection into place")(e));
    }
    // The rename, durable: the directory that holds it.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("moving the restored projection into place"))?;
    }
    Ok(info)
}
