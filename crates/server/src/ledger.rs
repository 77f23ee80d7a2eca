//! `LedgerService.Append`: check a batch as a whole against the projection
//! (plus the batch's own earlier events), then append it to the log in
//! dependency waves, and wait until this node has applied it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::{
    Applied, Body, CheckError, Envelope, Event, EventId, LedgerView, MemoryLedger, RevocationTarget,
};
use baton_log::{AppendError, ConsistencyToken, EventLog, Position, Record};
use baton_proto::v1;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::{Error, Node, Result, now_s};

pub struct Ledger<L> {
    node: Arc<Node<L>>,
}

impl<L> Ledger<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Ledger { node }
    }
}

/// One checked event of a batch.
struct Checked {
    envelope: Envelope,
    key: Vec<u8>,
    wave: usize,
    duplicate: bool,
}

/// Exclusive claims (client ids, token references, key ids) of the Appends
/// in flight on this node, each with the event that claims it. Each node
/// checks a batch against its projection; without this, two concurrent
/// Appends claiming one token reference (or binding one key) would both pass
/// and both be acknowledged, and the projector would then quarantine one of
/// them. The same event may be appended twice at once (a retry): it is one
/// event, applied once.
#[derive(Debug, Default, Clone)]
pub struct Claims(Arc<Mutex<HashMap<String, EventId>>>);

/// Holds claims until dropped.
struct ClaimGuard {
    claims: Claims,
    held: Vec<String>,
}

impl Claims {
    /// Takes the claims of a batch whose signatures have been verified, before
    /// its rules are checked: a claim is released only once its event is
    /// applied (or, when the outcome is unknown, once it can no longer land),
    /// so whoever takes it next checks against a projection that holds it.
    fn take(&self, events: &[(Envelope, Event)]) -> Result<ClaimGuard> {
        let mut map = self.0.lock().expect("claims lock");
        let mut wanted: Vec<(usize, String, EventId)> = Vec::new();
        for (index, (envelope, event)) in events.iter().enumerate() {
            for claim in claims_of(event) {
                wanted.push((index, claim, envelope.id()));
            }
        }
        for (index, claim, id) in &wanted {
            let other = map
                .get(claim)
                .copied()
                .or_else(|| wanted.iter().find(|(_, c, _)| c == claim).map(|w| w.2));
            if let Some(other) = other.filter(|other| other != id) {
                return Err(Error::Conflict(format!(
                    "events[{index}]: {claim} is claimed by {other}, which is being appended concurrently; retry (appending the same event again is idempotent)"
                )));
            }
        }
        let mut held = Vec::new();
        for (_, claim, id) in wanted {
            if map.insert(claim.clone(), id).is_none() {
                held.push(claim);
            }
        }
        Ok(ClaimGuard {
            claims: self.clone(),
            held,
        })
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut map = self.claims.0.lock().expect("claims lock");
        for claim in &self.held {
            map.remove(claim);
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

/// Dependencies point from trees to registrations and from revocations to
/// tokens, never the other way; appending in these waves, each acknowledged
/// before the next starts, makes every dependency visible before what needs it
/// even when they land in different partitions.
fn wave(event: &Event) -> usize {
    match event.body {
        Body::ClientRegistered(_) | Body::KeysRotated(_) => 0,
        Body::TokenIssued(_) | Body::ScopeNarrowed(_) => 1,
        Body::Revoked(_) => 2,
    }
}

fn open_batch(events: Vec<v1::SignedEvent>) -> Result<Vec<(Envelope, Event)>> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, signed)| {
            baton_proto::open(signed).map_err(|source| Error::Invalid {
                index: Some(index),
                source,
            })
        })
        .collect()
}

/// Verifies a batch's signatures strictly, in parallel: which verified.
fn verify_batch(node: &Node<impl Sized>, opened: &[(Envelope, Event)]) -> Result<Vec<bool>> {
    let view = node.handle.view();
    let items: Vec<Option<&(Envelope, Event)>> = opened.iter().map(Some).collect();
    Ok(baton_projector::apply::verify_in_parallel(
        &node.policy,
        &view,
        &items,
    )?)
}

/// Runs the rules over a batch, in order, each event against the projection
/// plus the batch's earlier events.
fn check_batch(
    node: &Node<impl Sized>,
    opened: Vec<(Envelope, Event)>,
    verified: &[bool],
) -> Result<Vec<Checked>> {
    let view = node.handle.view();
    let mut overlay = MemoryLedger::over(&view, node.policy.clone());
    let now = now_s();
    let mut out = Vec::with_capacity(opened.len());
    for (index, ((envelope, event), verified)) in opened.into_iter().zip(verified).enumerate() {
        let applied = overlay
            .try_apply_verified(&envelope, &event, Some(now), *verified)
            .map_err(|e| match e {
                CheckError::Refused(refusal) => Error::Refused {
                    index: Some(index),
                    refusal,
                },
                CheckError::View(e) => Error::from(e),
            })?;
        let key = partition_key(&overlay, &envelope, &event)?;
        let duplicate = matches!(applied, Applied::Duplicate(_));
        out.push(Checked {
            wave: wave(&event),
            envelope,
            key,
            duplicate,
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

impl<L: EventLog> Ledger<L> {
    /// Appends a batch; everything must be done by `deadline` (the request's
    /// own, less a margin to answer in), so that a slow log is reported as an
    /// unknown outcome rather than cut off by the transport's timeout.
    async fn append(
        &self,
        request: v1::AppendRequest,
        deadline: Instant,
    ) -> Result<v1::AppendResponse> {
        let node = &self.node;
        let count = request.events.len();
        if count == 0 {
            return Err(Error::Limit {
                field: "events",
                reason: "must hold at least one event".into(),
            });
        }
        if count > node.limits.batch_events_max {
            return Err(Error::Limit {
                field: "events",
                reason: format!(
                    "{count} events, more than the limit of {}",
                    node.limits.batch_events_max
                ),
            });
        }
        node.consistent(&request.consistency_token).await?;
        // What the batch was checked against: the returned token covers it too,
        // so a node that honours the token has every dependency of the batch
        // settled, not just the batch's own positions.
        let basis = node.handle.applied_token();
        // Decoding and signature checks are CPU work, sled reads may block:
        // all of it off the async workers.
        let (opened, verified) = {
            let node = node.clone();
            blocking(move || {
                let opened = open_batch(request.events)?;
                let verified = verify_batch(&node, &opened)?;
                Ok((opened, verified))
            })
            .await?
        };
        if verified.iter().any(|ok| !ok) {
            // An event with a bad signature or an unknown key claims nothing:
            // the rules name its refusal before any claim is taken, so unsigned
            // garbage cannot make someone else's Append fail.
            let (node, opened, verified) = (node.clone(), opened.clone(), verified.clone());
            blocking(move || check_batch(&node, opened, &verified)).await?;
        }
        // Held until this node has read the batch back (or, when the outcome
        // is unknown, until it can no longer land), so a concurrent Append of
        // the same claim is refused, then sees it stored.
        let claims = node.claims.take(&opened)?;
        let checked = {
            let node = node.clone();
            blocking(move || check_batch(&node, opened, &verified)).await?
        };
        let positions = match self.write(&checked, deadline).await {
            Ok(positions) => positions,
            Err(e) => {
                if matches!(e, Error::Ambiguous(_)) {
                    hold(claims, UNKNOWN_OUTCOME_CLAIM_HOLD);
                }
                return Err(e);
            }
        };
        let mut written = ConsistencyToken::default();
        for position in positions.iter().flatten() {
            written.include(*position);
        }
        let mut token = basis;
        token.merge(&written);
        if request.return_before_applied {
            // Answer now; keep the claims until this node has read the batch.
            let (handle, wait) = (node.handle.clone(), node.limits.apply_wait_max);
            tokio::spawn(async move {
                let _ = handle.wait_for_read(&written, wait).await;
                drop(claims);
            });
        } else {
            self.applied(&checked, &positions, &written, deadline)
                .await?;
            drop(claims);
        }
        let mut results = Vec::with_capacity(checked.len());
        for (item, position) in checked.iter().zip(&positions) {
            let id = item.envelope.id();
            let position = match position {
                Some(position) => Some(*position),
                None => node.handle.event(&id)?.map(|(_, _, position)| position),
            };
            if let Some(position) = position {
                token.include(position);
            }
            results.push(v1::AppendResult {
                event_id: id.0.to_vec(),
                outcome: if item.duplicate {
                    v1::AppendOutcome::Duplicate
                } else {
                    v1::AppendOutcome::Accepted
                } as i32,
                position: position.map(|p| v1::LogPosition {
                    partition: p.partition,
                    offset: p.offset,
                }),
            });
        }
        Ok(v1::AppendResponse {
            results,
            consistency_token: token.to_string(),
        })
    }

    /// Writes the new events of a checked batch in dependency waves, each
    /// acknowledged before the next; their positions, by index.
    async fn write(&self, checked: &[Checked], deadline: Instant) -> Result<Vec<Option<Position>>> {
        let mut positions: Vec<Option<Position>> = vec![None; checked.len()];
        for wave in 0..3 {
            let members: Vec<usize> = (0..checked.len())
                .filter(|&i| checked[i].wave == wave && !checked[i].duplicate)
                .collect();
            if members.is_empty() {
                continue;
            }
            let records = members
                .iter()
                .map(|&i| Record {
                    key: checked[i].key.clone(),
                    value: baton_proto::encode_signed(&checked[i].envelope),
                })
                .collect();
            let Ok(outcome) =
                tokio::time::timeout_at(deadline, self.node.log.append(records)).await
            else {
                let written = positions.iter().flatten().count();
                return Err(Error::Ambiguous(format!(
                    "the log did not acknowledge events {members:?} within the request's deadline ({written} other events acknowledged); outcome unknown, retrying the whole batch is safe: appends are idempotent"
                )));
            };
            let mut failures = Vec::new();
            for (&i, result) in members.iter().zip(outcome) {
                match result {
                    Ok(position) => positions[i] = Some(position),
                    Err(e) => failures.push((i, e)),
                }
            }
            if !failures.is_empty() {
                return Err(write_failure(&failures, &positions));
            }
        }
        Ok(positions)
    }

    /// Waits until this node has read back what was written, and makes sure
    /// each new event was applied: ACCEPTED means applied, here.
    async fn applied(
        &self,
        checked: &[Checked],
        positions: &[Option<Position>],
        written: &ConsistencyToken,
        deadline: Instant,
    ) -> Result<()> {
        let node = &self.node;
        let wait = node
            .limits
            .apply_wait_max
            .min(deadline.saturating_duration_since(Instant::now()));
        if let Err(e) = node.handle.wait_for_read(written, wait).await {
            return Err(Error::Ambiguous(format!(
                "appended durably, but this node has not applied it yet ({e}); whether it is applied is unknown: retrying the whole batch is safe, and answers DUPLICATE once it is"
            )));
        }
        for (index, (item, position)) in checked.iter().zip(positions).enumerate() {
            let Some(position) = position else { continue };
            let id = item.envelope.id();
            if node.handle.event(&id)?.is_some() {
                continue;
            }
            let reason = node
                .handle
                .quarantine_reason(*position)?
                .unwrap_or_else(|| "waiting for a dependency".into());
            return Err(Error::NotApplied(format!(
                "events[{index}]: {id} was written at {}:{} but this node did not apply it: {}",
                position.partition,
                position.offset,
                baton_core::echo(&reason)
            )));
        }
        Ok(())
    }
}

/// Keeps claims held for `duration` after the call has answered.
fn hold(claims: ClaimGuard, duration: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        drop(claims);
    });
}

fn write_failure(failures: &[(usize, AppendError)], positions: &[Option<Position>]) -> Error {
    let written = positions.iter().filter(|p| p.is_some()).count();
    let detail: Vec<String> = failures
        .iter()
        .map(|(i, e)| format!("events[{i}]: {e}"))
        .collect();
    let detail = detail.join("; ");
    if failures
        .iter()
        .any(|(_, e)| matches!(e, AppendError::Ambiguous(_)))
    {
        Error::Ambiguous(format!(
            "{detail} ({written} other events acknowledged); retrying the whole batch is safe: appends are idempotent"
        ))
    } else {
        Error::NotWritten(format!(
            "{detail} ({written} other events acknowledged); retrying the whole batch is safe: appends are idempotent"
        ))
    }
}

#[tonic::async_trait]
impl<L: EventLog> v1::ledger_service_server::LedgerService for Ledger<L> {
    async fn append(
        &self,
        request: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        let deadline = crate::deadline::answer_by(
            request.metadata(),
            self.node.limits.request_timeout,
            Instant::now(),
        );
        Ok(Response::new(
            Ledger::append(self, request.into_inner(), deadline).await?,
        ))
    }
}
