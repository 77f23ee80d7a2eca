//! Watch: the stream of revocations (and checkpoints) that feeds caches at
//! MCP servers, from a resume token, at least once and never lost.

use std::sync::Arc;
use std::time::Duration;

use baton_core::{EventId, Revoked};
use baton_log::{ConsistencyToken, EventLog, Position};

use crate::{Error, Node, Result};

/// What a Watch asks.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// Where to resume (a token from an earlier entry); empty: from the start.
    pub resume_token: String,
    /// How often to send a checkpoint while nothing is revoked; 0: never.
    pub checkpoint_interval_ms: u32,
}

/// One entry of a Watch stream.
#[derive(Debug, Clone)]
pub enum WatchItem {
    /// A revocation applied at `position`.
    Revocation {
        id: EventId,
        revoked: Option<Revoked>,
        position: Position,
        /// Resume here to miss nothing after this entry.
        resume: ConsistencyToken,
    },
    /// Nothing more was revoked up to `covered`.
    Checkpoint {
        resume: ConsistencyToken,
        covered: ConsistencyToken,
        sent_at_unix_ms: i64,
        view_age_ms: Option<u64>,
    },
}

/// A Watch stream's entries, ending with an error when it cannot go on.
pub type WatchStream = tokio::sync::mpsc::Receiver<Result<WatchItem>>;

/// Whether the watcher may still watch: asked when the stream starts and
/// at every pass (at least every [`WATCH_IDLE`]), its refusal ends it.
pub type MayWatch = Box<dyn Fn() -> Result<()> + Send + Sync>;

/// Revocations read per scan of the projection.
const WATCH_CHUNK: usize = 256;
/// How long a quiet Watch sleeps before looking again (woken early by applies).
const WATCH_IDLE: Duration = Duration::from_millis(500);
/// Bounds of a Watch's checkpoint interval.
const CHECKPOINT_MIN_MS: u32 = 100;
const CHECKPOINT_MAX_MS: u32 = 60_000;

/// Keeps a Watch counted as open while it runs.
struct Watching<L>(Arc<Node<L>>);

impl<L> Drop for Watching<L> {
    fn drop(&mut self) {
        if let Some(observe) = self.0.observe() {
            observe.watching(false);
        }
    }
}

impl<L: EventLog> Node<L> {
    /// Starts a Watch. The feed names every revoked subject, client, key
    /// and token, of every audience: `may_watch` says whether the caller may
    /// have it, now and while the stream runs.
    pub async fn watch(
        self: &Arc<Self>,
        request: WatchRequest,
        may_watch: MayWatch,
    ) -> Result<WatchStream> {
        may_watch()?;
        let partitions = self.handle.partitions() as usize;
        let cursor = if request.resume_token.is_empty() {
            vec![0; partitions]
        } else {
            let token =
                ConsistencyToken::parse(&request.resume_token).map_err(|e| Error::Limit {
                    field: "resume_token",
                    reason: e.to_string(),
                })?;
            if token.next_offsets().len() > partitions {
                return Err(Error::Limit {
                    field: "resume_token",
                    reason: format!("names more than the log's {partitions} partitions"),
                });
            }
            let mut next = token.next_offsets().to_vec();
            next.resize(partitions, 0);
            // A position past the log's end is from another log (another
            // cluster, a rebuilt topic): streaming from it would stay silent
            // for ever while revocations happen.
            // What this node has read is in the log; only a position past it
            // needs the log's word (and a log that cannot answer now makes
            // this Watch unavailable, not a node failure).
            let read = self.handle.read();
            let covered = next.iter().zip(&read).all(|(want, read)| want <= read);
            let ends = if covered {
                read
            } else {
                self.log.end_offsets().await.map_err(|e| {
                    Error::Unavailable(format!(
                        "resume_token: cannot read the log's end to check it: {e}"
                    ))
                })?
            };
            if let Some((partition, (want, end))) = next
                .iter()
                .zip(&ends)
                .enumerate()
                .find(|(_, (want, end))| want > end)
            {
                return Err(Error::Limit {
                    field: "resume_token",
                    reason: format!(
                        "partition {partition} resumes at offset {want}, beyond the log's end ({end}): the token is from another log; resume with an empty token"
                    ),
                });
            }
            next
        };
        let checkpoints = match request.checkpoint_interval_ms {
            0 => None,
            ms if (CHECKPOINT_MIN_MS..=CHECKPOINT_MAX_MS).contains(&ms) => {
                Some(Duration::from_millis(u64::from(ms)))
            }
            ms => {
                return Err(Error::Limit {
                    field: "checkpoint_interval_ms",
                    reason: format!(
                        "{ms} is not 0 (none) or in {CHECKPOINT_MIN_MS}..={CHECKPOINT_MAX_MS}"
                    ),
                });
            }
        };
        let permit = self.stream_permit()?;
        let node = self.clone();
        let (send, receive) = tokio::sync::mpsc::channel(64);
        if let Some(observe) = node.observe() {
            observe.watching(true);
        }
        let watching = Watching(node.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _watching = watching;
            let mut shutdown = node.shutdown.clone();
            let mut changed = node.handle.subscribe_read();
            let mut last_checkpoint = tokio::time::Instant::now();
            // Two cursors (next offsets per partition). `delivered`: the
            // stream has sent every revocation applied before it, and
            // follows what the node has read. `resume` (in resume tokens):
            // also no record before it is still parked, so a stream resumed
            // there on any node — which may have applied a record this one
            // parked, at its own position — misses nothing.
            // Records applied after they were parked: the stream may have
            // read past them; it sends their revocations when they apply.
            // Taken first: a record applied from here on is in the list.
            let mut late_seq = node.handle.late_next();
            // A token from another node may be past a record this node has
            // parked (and that one applied): resume from no later than this
            // node's settled offsets, so a reconnect or a rescan reaches it.
            let settled_now = node.handle.applied();
            let mut resume: Vec<u64> = cursor
                .iter()
                .zip(&settled_now)
                .map(|(want, settled)| (*want).min(*settled))
                .collect();
            let mut delivered = cursor;
            loop {
                // Each pass (at least every WATCH_IDLE): the caller may still
                // watch (cheap: its identity is re-verified only after a CA
                // reload or every REVERIFY_EVERY).
                if let Err(refused) = may_watch() {
                    let _ = send.send(Err(refused)).await;
                    return;
                }
                changed.mark_unchanged();
                // The view first: a checkpoint carries its age only if what
                // was read covers its end.
                let view = node.freshness.view_end();
                // Taken before the scan: an empty scan then means nothing was
                // revoked up to here (a checkpoint may say so). Read, then
                // settled (the projector publishes them the other way
                // round, so a record read is settled here unless parked),
                // then the late list: a record late-applied below the
                // settled offsets is in that list.
                let read = node.handle.read();
                let settled = node.handle.applied();
                let late = node.handle.late_since(late_seq);
                late_seq = late.next;
                if !late.complete {
                    // Further behind than the node remembers: send again
                    // from the resume point (at least once, never lost).
                    delivered.clone_from(&resume);
                }
                let mut effects = Vec::new();
                for position in late.positions.iter().filter(|position| {
                    late.complete
                        && delivered
                            .get(position.partition as usize)
                            .is_some_and(|next| position.offset < *next)
                }) {
                    match node.handle.revocations_at(*position) {
                        Ok(found) => effects.extend(found.into_iter().map(|e| (e, true))),
                        Err(e) => {
                            let _ = send.send(Err(Error::from(e))).await;
                            return;
                        }
                    }
                }
                let scanned = match node
                    .handle
                    .revocations_between(&delivered, &read, WATCH_CHUNK)
                {
                    Ok(scanned) => scanned,
                    Err(e) => {
                        let _ = send.send(Err(Error::from(e))).await;
                        return;
                    }
                };
                // Fewer than a chunk: the scan reached everything applied up
                // to what was read, so once these are sent a checkpoint may
                // cover it.
                let caught_up = scanned.len() < WATCH_CHUNK;
                effects.extend(scanned.into_iter().map(|e| (e, false)));
                let quiet = effects.is_empty();
                let positions: Vec<(Position, bool)> = effects
                    .iter()
                    .map(|(e, late)| (e.position, *late))
                    .collect();
                for (i, (effect, late)) in effects.into_iter().enumerate() {
                    // A cursor points past a record only with its last
                    // revocation (a batch record may hold several; a chunk
                    // never splits one): resuming mid-record delivers the
                    // record's revocations again — at least once, never lost.
                    if !late && positions.get(i + 1) != Some(&(effect.position, false)) {
                        let p = effect.position.partition as usize;
                        delivered[p] = effect.position.offset + 1;
                        resume[p] = resume[p].max(delivered[p].min(settled[p]));
                    }
                    let revoked = match node.revoked_body(&effect.revocation) {
                        Ok(revoked) => revoked,
                        Err(e) => {
                            let _ = send.send(Err(e)).await;
                            return;
                        }
                    };
                    let message = WatchItem::Revocation {
                        id: effect.revocation,
                        revoked,
                        position: effect.position,
                        resume: ConsistencyToken::new(resume.clone()),
                    };
                    if send.send(Ok(message)).await.is_err() {
                        return; // The watcher went away.
                    }
                    if let Some(observe) = node.observe() {
                        observe.watch_sent(false);
                    }
                }
                if caught_up {
                    // Every revocation applied before what was read is sent;
                    // a record parked there is sent when it applies.
                    for ((next, read), (resume, settled)) in delivered
                        .iter_mut()
                        .zip(&read)
                        .zip(resume.iter_mut().zip(&settled))
                    {
                        *next = (*next).max(*read);
                        *resume = (*resume).max((*next).min(*settled));
                    }
                }
                let mut idle = WATCH_IDLE;
                // A checkpoint vouches that nothing more was revoked up to
                // what was read: only a fresh node may say so (revocations
                // are sent either way), so a Checker it feeds goes stale
                // with it. And only when that covers its view's end.
                let covers_view = view.as_ref().is_none_or(|view| {
                    ConsistencyToken::parse(&view.end).is_ok_and(|end| end.is_covered_by(&read))
                });
                if caught_up
                    && covers_view
                    && node.caught_up()
                    && node.freshness.is_fresh(std::time::Instant::now())
                    && let Some(every) = checkpoints
                {
                    if last_checkpoint.elapsed() >= every {
                        let checkpoint = WatchItem::Checkpoint {
                            resume: ConsistencyToken::new(resume.clone()),
                            covered: ConsistencyToken::new(delivered.clone()),
                            sent_at_unix_ms: crate::now_ms(),
                            view_age_ms: view
                                .as_ref()
                                .map(|view| view.age_ms(std::time::Instant::now())),
                        };
                        if send.send(Ok(checkpoint)).await.is_err() {
                            return;
                        }
                        if let Some(observe) = node.observe() {
                            observe.watch_sent(true);
                        }
                        last_checkpoint = tokio::time::Instant::now();
                    }
                    idle = idle.min(every.saturating_sub(last_checkpoint.elapsed()));
                }
                if quiet {
                    tokio::select! {
                        _ = tokio::time::timeout(idle, changed.changed()) => {}
                        () = send.closed() => return,
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                }
            }
        });
        Ok(receive)
    }
}
