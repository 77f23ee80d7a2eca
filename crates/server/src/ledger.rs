//! `LedgerService.Append`: check a batch as a whole against the projection
//! (plus the batch's own earlier events), then append it to the log in
//! dependency waves, and wait until this node has applied it.

use std::sync::Arc;

use baton_core::{
    Applied, Body, CheckError, Envelope, Event, LedgerView, MemoryLedger, RevocationTarget,
};
use baton_log::{AppendError, EventLog, Position, Record};
use baton_proto::v1;
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

/// Claims (client ids, token references) of the Appends in flight on this
/// node. Each node checks a batch against its projection; without this, two
/// concurrent Appends claiming one token reference would both pass and both
/// be acknowledged, and the projector would then quarantine one of them.
#[derive(Debug, Default, Clone)]
pub struct Claims(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

/// Holds claims until dropped.
struct ClaimGuard {
    claims: Claims,
    held: Vec<String>,
}

impl Claims {
    /// Takes the claims of a batch, before it is checked: a claim is released
    /// only once its event is applied, so whoever takes it next checks
    /// against a projection that already holds it.
    fn take(&self, events: &[(Envelope, Event)]) -> Result<ClaimGuard> {
        let mut set = self.0.lock().expect("claims lock");
        let claims: Vec<Option<String>> = events.iter().map(|(_, e)| claim_of(e)).collect();
        let wanted: Vec<(usize, &String)> = claims
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|k| (i, k)))
            .collect();
        if let Some((index, claim)) = wanted.iter().find(|(_, k)| set.contains(*k)) {
            return Err(Error::Conflict(format!(
                "events[{index}]: {claim} is being appended by a concurrent request; retry (appending the same event again is idempotent)"
            )));
        }
        let held: Vec<String> = wanted.into_iter().map(|(_, k)| k.clone()).collect();
        set.extend(held.iter().cloned());
        Ok(ClaimGuard {
            claims: self.clone(),
            held,
        })
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut set = self.claims.0.lock().expect("claims lock");
        for claim in &self.held {
            set.remove(claim);
        }
    }
}

fn claim_of(event: &Event) -> Option<String> {
    match &event.body {
        Body::ClientRegistered(reg) => Some(format!("client {:?}", reg.client.as_str())),
        Body::TokenIssued(t) => Some(format!("token {}", t.token)),
        Body::ScopeNarrowed(h) => Some(format!("token {}", h.token)),
        Body::Revoked(_) | Body::KeysRotated(_) => None,
    }
}

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

fn check_batch(node: &Node<impl Sized>, opened: Vec<(Envelope, Event)>) -> Result<Vec<Checked>> {
    let view = node.handle.view();
    // Strict signature checks, both cores at once; then the rules, in order.
    let items: Vec<Option<&(Envelope, Event)>> = opened.iter().map(Some).collect();
    let verified = baton_projector::apply::verify_in_parallel(&node.policy, &view, &items)?;
    let mut overlay = MemoryLedger::over(&view, node.policy.clone());
    let now = now_s();
    let mut out = Vec::with_capacity(opened.len());
    for (index, ((envelope, event), verified)) in opened.into_iter().zip(verified).enumerate() {
        let applied = overlay
            .try_apply_verified(&envelope, &event, Some(now), verified)
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
    async fn append(&self, request: v1::AppendRequest) -> Result<v1::AppendResponse> {
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
        // Signature checks are CPU work and sled reads may block: off the runtime.
        let opened = open_batch(request.events)?;
        // Held until this node has applied the batch (or the wait ends), so a
        // concurrent Append of the same claim is refused, then sees it stored.
        let claims = node.claims.take(&opened)?;
        let checked = {
            let node = node.clone();
            tokio::task::spawn_blocking(move || check_batch(&node, opened))
                .await
                .map_err(|e| Error::Internal(format!("check task: {e}")))??
        };
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
            let outcome = node.log.append(records).await;
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
        let mut token = basis;
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
        if request.return_before_applied {
            // Answer now; keep the claims until this node has applied the batch.
            let (handle, wait) = (node.handle.clone(), node.limits.apply_wait_max);
            let token = token.clone();
            tokio::spawn(async move {
                let _ = handle.wait_for(&token, wait).await;
                drop(claims);
            });
        } else {
            if let Err(e) = node
                .handle
                .wait_for(&token, node.limits.apply_wait_max)
                .await
            {
                // Durable in the log already: answer, but say why reads may lag.
                tracing::warn!(error = %e, "appended, but not yet applied by this node");
            }
            drop(claims);
        }
        Ok(v1::AppendResponse {
            results,
            consistency_token: token.to_string(),
        })
    }
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
        Ok(Response::new(
            Ledger::append(self, request.into_inner()).await?,
        ))
    }
}
