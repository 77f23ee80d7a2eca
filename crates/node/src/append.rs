//! Append: check a batch as a whole against the projection (plus the
//! batch's own earlier events), write it to the log as one record (all or
//! nothing, also when the outcome is unknown), and wait until this node has
//! applied it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::{
    Applied, Body, CheckError, Envelope, Event, EventId, LedgerView, MemoryLedger, RevocationTarget,
};
use baton_log::{AppendError, ConsistencyToken, EventLog, Position, Record};
use tokio::time::Instant;

use crate::{Error, Limits, Node, Result, now_s};

/// How an Append is asked for.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Check the batch against the ledger as of this token (empty: as the
    /// node has it).
    pub consistency_token: String,
    /// Answer once the record is written, without waiting for this node to
    /// apply it.
    pub return_before_applied: bool,
}

/// What became of one event of an Append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedEvent {
    pub id: EventId,
    /// In the ledger already (or applied from another call's copy): this
    /// call is not where it was applied.
    pub duplicate: bool,
    /// Where the event is stored, when known.
    pub position: Option<Position>,
}

/// An Append's answer: each event's outcome, in the batch's order, and a
/// token that covers all of them and what the batch was checked against.
#[derive(Debug, Clone)]
pub struct Appended {
    pub events: Vec<AppendedEvent>,
    pub token: ConsistencyToken,
}

/// One checked event of a batch.
struct Checked {
    envelope: Envelope,
    key: Vec<u8>,
    duplicate: bool,
}

/// The Appends in flight on this node: their exclusive claims (client ids,
/// token references, key ids), each with the event that claims it and how
/// many Appends hold it, and the records they wrote but this node has not
/// read back yet. Each node checks a batch against its projection; without
/// claims, two concurrent Appends claiming one token reference (or binding
/// one key) would both pass and both be written, and the projector would
/// quarantine one of them. The same event may be in flight twice (a retry):
/// it is one event, applied once — and a retry of a batch already written
/// waits for that record instead of writing it again.
#[derive(Debug, Default, Clone)]
pub(crate) struct Claims(Arc<Mutex<InFlight>>);

#[derive(Debug, Default)]
struct InFlight {
    claims: HashMap<String, (EventId, usize)>,
    written: HashMap<EventId, (Position, usize)>,
}

/// Holds claims (and written-record entries) until dropped.
struct ClaimGuard {
    claims: Claims,
    held: Vec<String>,
    written: Vec<EventId>,
    /// Set once a write may have started and until its outcome is known:
    /// dropped in that state (the request was cancelled, or the outcome is
    /// unknown), the guard keeps its claims for [`UNKNOWN_OUTCOME_CLAIM_HOLD`].
    outcome_open: bool,
}

impl Claims {
    /// Takes the claims of a batch that has passed the rules once, before
    /// the rules run again under the claims: a claim is released only once
    /// its event is read back (or, when the outcome is unknown, once it can no
    /// longer land), so whoever takes it next checks against a projection
    /// that holds it.
    fn take(&self, events: &[(Envelope, Event)]) -> Result<ClaimGuard> {
        let mut in_flight = self.0.lock().expect("claims lock");
        let mut wanted: Vec<(String, EventId)> = Vec::new();
        for (index, (envelope, event)) in events.iter().enumerate() {
            let id = envelope.id();
            for claim in claims_of(event) {
                if let Some((other, _)) = in_flight.claims.get(&claim)
                    && *other != id
                {
                    return Err(Error::Conflict(format!(
                        "events[{index}]: {claim} is claimed by {other}, which is being appended concurrently; retry (appending the same event again is idempotent)"
                    )));
                }
                wanted.push((claim, id));
            }
        }
        let mut held = Vec::with_capacity(wanted.len());
        for (claim, id) in wanted {
            in_flight.claims.entry(claim.clone()).or_insert((id, 0)).1 += 1;
            held.push(claim);
        }
        Ok(ClaimGuard {
            claims: self.clone(),
            held,
            written: Vec::new(),
            outcome_open: false,
        })
    }

    /// Where each of `ids` was written by an Append still in flight, if all
    /// of them were written by one record.
    fn written(&self, ids: &[EventId]) -> Option<Position> {
        let in_flight = self.0.lock().expect("claims lock");
        let mut at = None;
        for id in ids {
            let (position, _) = in_flight.written.get(id)?;
            if at.is_some_and(|at| at != *position) {
                return None;
            }
            at = Some(*position);
        }
        at
    }
}

impl ClaimGuard {
    /// Remembers that `ids` were written at `position`, until dropped.
    fn wrote(&mut self, ids: &[EventId], position: Position) {
        let mut in_flight = self.claims.0.lock().expect("claims lock");
        for id in ids {
            in_flight.written.entry(*id).or_insert((position, 0)).1 += 1;
            self.written.push(*id);
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.outcome_open {
            // The write may still land: whoever claims these next must see it.
            let later = ClaimGuard {
                claims: self.claims.clone(),
                held: std::mem::take(&mut self.held),
                written: std::mem::take(&mut self.written),
                outcome_open: false,
            };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    tokio::time::sleep(UNKNOWN_OUTCOME_CLAIM_HOLD).await;
                    drop(later);
                });
                return;
            }
        }
        let mut in_flight = self.claims.0.lock().expect("claims lock");
        for claim in &self.held {
            if let Some(entry) = in_flight.claims.get_mut(claim) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    in_flight.claims.remove(claim);
                }
            }
        }
        for id in &self.written {
            if let Some(entry) = in_flight.written.get_mut(id) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    in_flight.written.remove(id);
                }
            }
        }
    }
}

/// What an event claims exclusively: the names the rules refuse to see twice
/// (`already-exists`).
fn claims_of(event: &Event) -> Vec<String> {
    let keys = |keys: &[baton_core::PublicKey]| -> Vec<String> {
        keys.iter().map(|k| format!("key {}", k.key_id())).collect()
    };
    match &event.body {
        Body::ClientRegistered(reg) => {
            let mut out = vec![format!("client {:?}", reg.client.as_str())];
            out.extend(keys(&reg.public_keys));
            out
        }
        Body::TokenIssued(t) => vec![format!("token {}", t.token)],
        Body::ScopeNarrowed(h) => vec![format!("token {}", h.token)],
        Body::KeysRotated(rotation) => keys(&rotation.add),
        Body::Revoked(_) => Vec::new(),
    }
}

/// How long claims stay held after a write whose outcome is unknown: past
/// the longest a log keeps retrying a delivery (Kafka's delivery timeout,
/// 30 s by default), the write has landed or never will.
const UNKNOWN_OUTCOME_CLAIM_HOLD: Duration = Duration::from_secs(60);

/// The key that keeps one delegation tree in one partition; events outside a
/// tree share the `control` key (registrations, rotations, revocations of
/// clients, subjects and keys), which also keeps them in order.
pub const CONTROL_KEY: &[u8] = b"control";

/// Verifies a batch's signatures strictly, in parallel: which verified.
fn verify_batch(node: &Node<impl Sized>, opened: &[(Envelope, Event)]) -> Result<Vec<bool>> {
    let items: Vec<Option<&(Envelope, Event)>> = opened.iter().map(Some).collect();
    Ok(node.handle.view().verify(&node.policy, &items)?)
}

/// Runs the rules over a batch, in order, each event against the projection
/// plus the batch's earlier events.
fn check_batch(
    node: &Node<impl Sized>,
    opened: &[(Envelope, Event)],
    verified: &[bool],
) -> Result<Vec<Checked>> {
    let view = node.handle.view();
    let mut overlay = MemoryLedger::over(&view, node.policy.clone());
    let now = now_s();
    let mut out = Vec::with_capacity(opened.len());
    for (index, ((envelope, event), verified)) in opened.iter().zip(verified).enumerate() {
        let applied = overlay
            .try_apply_verified(envelope, event, Some(now), *verified)
            .map_err(|e| match e {
                CheckError::Refused(refusal) => Error::Refused {
                    index: Some(index),
                    refusal,
                },
                CheckError::View(e) => Error::from(e),
            })?;
        let key = partition_key(&overlay, envelope, event)?;
        out.push(Checked {
            envelope: envelope.clone(),
            key,
            duplicate: matches!(applied, Applied::Duplicate(_)),
        });
    }
    Ok(out)
}

/// Runs CPU-bound or blocking work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("check task: {e}")))?
}

/// The tree's root for token events and token revocations, `control` otherwise.
fn partition_key<V: LedgerView<Error = baton_projector::Error>>(
    view: &V,
    envelope: &Envelope,
    event: &Event,
) -> Result<Vec<u8>> {
    Ok(match (&event.body, event.tree_root(envelope.id())) {
        (_, Some(root)) => root.0.to_vec(),
        (Body::Revoked(revoked), None) => match &revoked.target {
            RevocationTarget::Token(token) => {
                let root = match view.token_by_ref(token)? {
                    Some(id) => view.token(&id)?.map(|record| record.root.0.to_vec()),
                    None => None,
                };
                root.unwrap_or_else(|| CONTROL_KEY.to_vec())
            }
            _ => CONTROL_KEY.to_vec(),
        },
        _ => CONTROL_KEY.to_vec(),
    })
}

/// The partition key of a batch record: the one key all its events share
/// (one delegation tree stays in one partition, in order), else `control`.
fn record_key(events: &[&Checked]) -> Vec<u8> {
    match events.split_first() {
        Some((first, rest)) if rest.iter().all(|e| e.key == first.key) => first.key.clone(),
        _ => CONTROL_KEY.to_vec(),
    }
}

impl Limits {
    /// Refuses a batch of `count` events that is empty or over
    /// `batch_events_max` (before anything decodes it).
    pub fn batch(&self, count: usize) -> Result<()> {
        if count == 0 {
            return Err(Error::Limit {
                field: "events",
                reason: "must hold at least one event".into(),
            });
        }
        if count > self.batch_events_max {
            return Err(Error::Limit {
                field: "events",
                reason: format!(
                    "{count} events, more than the limit of {}",
                    self.batch_events_max
                ),
            });
        }
        Ok(())
    }
}

/// A batch as it arrives: its size is known at once, its events are opened
/// (decoded, their fields validated) off the async workers, after the
/// batch bound and the consistency wait. The wire's batches (the server's)
/// and opened events (`Vec<(Envelope, Event)>`, a test's) are both batches.
pub trait Batch: Send + 'static {
    /// How many events it holds.
    fn len(&self) -> usize;
    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its events, opened; a refusal names the event (`Error::Invalid`
    /// with its index).
    fn open(self) -> Result<Vec<(Envelope, Event)>>;
}

impl Batch for Vec<(Envelope, Event)> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn open(self) -> Result<Vec<(Envelope, Event)>> {
        Ok(self)
    }
}

impl<L: EventLog> Node<L> {
    /// Appends a batch (the one write path: the gRPC Append and the RFC 7009
    /// bridge), counting each event's outcome (a batch refused whole, by a
    /// bound or an event that does not open, too). Everything must be done by
    /// `deadline` (the request's own, less a margin to answer in), so that a
    /// slow log is reported as an unknown outcome rather than cut off by the
    /// transport's timeout.
    pub async fn append(
        self: &Arc<Self>,
        batch: impl Batch,
        options: AppendOptions,
        deadline: Instant,
    ) -> Result<Appended> {
        let events = batch.len();
        let span = crate::child_span(self.traces, "append");
        let answer =
            tracing::Instrument::instrument(self.append_counted(batch, options, deadline), span)
                .await;
        if let Some(metrics) = self.observe() {
            match &answer {
                Ok(appended) => {
                    let accepted = appended.events.iter().filter(|e| !e.duplicate).count();
                    metrics.appended("accepted", "", accepted);
                    metrics.appended("duplicate", "", appended.events.len() - accepted);
                }
                Err(e) => {
                    let (outcome, rule) = e.append_outcome();
                    metrics.appended(outcome, rule, events);
                }
            }
        }
        answer
    }

    async fn append_counted(
        self: &Arc<Self>,
        batch: impl Batch,
        options: AppendOptions,
        deadline: Instant,
    ) -> Result<Appended> {
        let node = self;
        node.limits.batch(batch.len())?;
        node.consistent(&options.consistency_token).await?;
        // What the batch was checked against: the returned token covers it too,
        // so a node that honours the token has every dependency of the batch
        // settled, not just the batch's own positions.
        let basis = node.handle.applied_token();
        // Opening, signature checks and the rules are CPU work, sled reads
        // may block: all of it off the async workers. The rules run once
        // before any claim is taken — a batch that would be refused (a bad
        // signature, an unknown key, a signer without authority) claims
        // nothing, so it cannot make someone else's Append fail — and once
        // more under the claims, against what concurrent Appends hold.
        let (opened, verified) = {
            let node = node.clone();
            blocking(move || {
                let opened = batch.open()?;
                let verified = verify_batch(&node, &opened)?;
                check_batch(&node, &opened, &verified)?;
                Ok((opened, verified))
            })
            .await?
        };
        let mut claims = node.claims.take(&opened)?;
        let checked = {
            let node = node.clone();
            blocking(move || check_batch(&node, &opened, &verified)).await?
        };
        let fresh: Vec<&Checked> = checked.iter().filter(|c| !c.duplicate).collect();
        let ids: Vec<EventId> = fresh.iter().map(|c| c.envelope.id()).collect();
        // The projector's apply of these events joins this trace (until the
        // answer: a record applied later is not followed).
        let _traced = node
            .traces
            .then(|| node.handle.trace_apply(&ids, tracing::Span::current()));
        // `wrote`: this call wrote the record (rather than finding it being
        // written by a concurrent copy of the batch).
        let (position, wrote) = if fresh.is_empty() {
            (None, false)
        } else if let Some(position) = node.claims.written(&ids) {
            // A copy of a batch this node already wrote and is still reading
            // back: the same record, not a second copy; the call that wrote
            // it is the one told ACCEPTED.
            (Some(position), false)
        } else {
            // From here until this node has read the record back, dropping
            // the claims (a cancelled request, an unknown outcome) holds them.
            claims.outcome_open = true;
            match self.write(&fresh, deadline).await {
                Ok(position) => {
                    claims.wrote(&ids, position);
                    (Some(position), true)
                }
                Err(e) => {
                    // Refused by the log or never sent: nothing can land.
                    claims.outcome_open = matches!(e, Error::Ambiguous(_));
                    return Err(e);
                }
            }
        };
        let mut written = ConsistencyToken::default();
        if let Some(position) = position {
            written.include(position)?;
        }
        let mut token = basis;
        token.merge(&written);
        // Where each new event is stored, once read back: the record this
        // call wrote, or an earlier copy's (a concurrent Append of the same
        // event, through this node or another).
        let mut stored: std::collections::HashMap<EventId, Position> =
            std::collections::HashMap::new();
        if options.return_before_applied {
            // Answer now; keep the claims until this node has read the batch.
            let (handle, wait) = (node.handle.clone(), node.limits.apply_wait_max);
            let read = written.clone();
            let mut claims = claims;
            tokio::spawn(async move {
                // Read back: released now; not read back: held (on drop).
                claims.outcome_open = handle.wait_for_read(&read, wait).await.is_err();
                drop(claims);
            });
        } else if let Some(position) = position {
            let applied = self.applied(&fresh, position, &written, deadline).await;
            // Read back (applied or refused): the outcome is known.
            claims.outcome_open = matches!(applied, Err(Error::Ambiguous(_)));
            drop(claims);
            stored = applied?;
        }
        let mut events = Vec::with_capacity(checked.len());
        for item in &checked {
            let id = item.envelope.id();
            // ACCEPTED: this call's record is where the event is applied
            // (exactly one call per event is told so); every other copy is
            // DUPLICATE at that same position. Without waiting for the
            // apply (return_before_applied), the record this call wrote.
            let (duplicate, at) = if item.duplicate {
                (
                    true,
                    node.handle.event(&id)?.map(|(_, _, position)| position),
                )
            } else if let Some(at) = stored.get(&id) {
                (!wrote || Some(*at) != position, Some(*at))
            } else {
                (!wrote, position)
            };
            if let Some(at) = at {
                token.include(at)?;
            }
            events.push(AppendedEvent {
                id,
                duplicate,
                position: at,
            });
        }
        Ok(Appended { events, token })
    }

    /// Writes the new events of a checked batch as one log record: all or
    /// nothing, also when the node dies mid-write or the log stalls.
    async fn write(&self, fresh: &[&Checked], deadline: Instant) -> Result<Position> {
        let envelopes: Vec<&Envelope> = fresh.iter().map(|c| &c.envelope).collect();
        let record = Record {
            key: record_key(fresh),
            value: baton_proto::encode_record(&envelopes),
        };
        if Instant::now() >= deadline {
            return Err(Error::NotYet(format!(
                "the request's deadline passed before the batch ({} events) was written; nothing was written",
                fresh.len()
            )));
        }
        if record.value.len() > baton_log::RECORD_BYTES_MAX {
            return Err(Error::Limit {
                field: "events",
                reason: format!(
                    "the batch is {} bytes as one log record, more than {}: split it",
                    record.value.len(),
                    baton_log::RECORD_BYTES_MAX
                ),
            });
        }
        let started = std::time::Instant::now();
        let span = crate::child_span(self.traces, "log.append");
        let answered = tracing::Instrument::instrument(
            tokio::time::timeout_at(deadline, self.log.append(vec![record])),
            span,
        )
        .await;
        if let Some(metrics) = self.observe() {
            let ok = matches!(&answered, Ok(outcome) if matches!(outcome.last(), Some(Ok(_))));
            metrics.log_appended(started.elapsed(), ok);
        }
        let Ok(mut outcome) = answered else {
            return Err(Error::Ambiguous(format!(
                "the log did not acknowledge the batch ({} events) within the request's deadline; outcome unknown, retrying the whole batch is safe: appends are idempotent",
                fresh.len()
            )));
        };
        match outcome.pop() {
            Some(Ok(position)) => Ok(position),
            Some(Err(AppendError::Ambiguous(e))) => Err(Error::Ambiguous(format!(
                "{e}; retrying the whole batch is safe: appends are idempotent"
            ))),
            Some(Err(AppendError::Refused(e))) => Err(Error::NotWritten(format!(
                "the log refused the batch, nothing is written: {e}"
            ))),
            None => Err(Error::Internal("the log answered nothing".into())),
        }
    }

    /// Waits until this node has read back what was written, and makes sure
    /// each new event was applied: ACCEPTED means applied, here. Where each
    /// is stored: `position`, or an earlier copy's.
    async fn applied(
        &self,
        fresh: &[&Checked],
        position: Position,
        written: &ConsistencyToken,
        deadline: Instant,
    ) -> Result<std::collections::HashMap<EventId, Position>> {
        let node = self;
        let wait = node
            .limits
            .apply_wait_max
            .min(deadline.saturating_duration_since(Instant::now()));
        if let Err(e) = node.handle.wait_for_read(written, wait).await {
            return Err(Error::Ambiguous(format!(
                "appended durably, but this node has not applied it yet ({e}); whether it is applied is unknown: retrying the whole batch is safe, and answers DUPLICATE once it is"
            )));
        }
        let mut stored = std::collections::HashMap::with_capacity(fresh.len());
        for item in fresh {
            let id = item.envelope.id();
            if let Some((_, _, at)) = node.handle.event(&id)? {
                stored.insert(id, at);
                continue;
            }
            let reason = node
                .handle
                .quarantine_reason(position)?
                .unwrap_or_else(|| "waiting for a dependency".into());
            return Err(Error::NotApplied(format!(
                "the batch was written at {}:{} but this node did not apply it ({id} among others): {}",
                position.partition,
                position.offset,
                baton_core::echo(&reason)
            )));
        }
        Ok(stored)
    }
}
