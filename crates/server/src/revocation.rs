//! `RevocationService`: checks one token or a batch, and the Watch stream of
//! revocations that feeds caches at MCP servers.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_core::{Body, TokenRecord, TokenStatus};
use baton_log::{ConsistencyToken, EventLog};
use baton_proto::v1;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::{Error, Node, Result, now_s};

pub struct Revocation<L> {
    node: Arc<Node<L>>,
}

impl<L> Revocation<L> {
    pub fn new(node: Arc<Node<L>>) -> Self {
        Revocation { node }
    }
}

/// The `Revoked` body of revocation event `id`, from the projection.
fn revoked_body<L>(node: &Node<L>, id: &baton_core::EventId) -> Result<Option<v1::Revoked>> {
    Ok(node
        .handle
        .event(id)?
        .and_then(|(_, event, _)| match &event.body {
            Body::Revoked(revoked) => Some(v1::Revoked::from(revoked)),
            _ => None,
        }))
}

/// Answers one check once the node is consistent with the request. A node
/// that cannot vouch for the log (it has not reached it since it started,
/// or its view is not fresh: `Node::vouched`) answers only what no event it
/// may have missed could change: REVOKED (revocation is monotone), EXPIRED,
/// AUDIENCE_MISMATCH; anything else is UNAVAILABLE.
pub(crate) async fn answer<L>(node: &Node<L>, request: &v1::CheckRequest) -> Result<Answer> {
    let consistent = node.vouched(&request.consistency_token).await;
    answer_when(node, request, consistent)
}

/// A check's answer, and the token's record when the ledger knows it.
pub(crate) type Answer = (v1::CheckResponse, Option<TokenRecord>);

/// [`answer`], given the outcome of the consistency wait.
pub(crate) fn answer_when<L>(
    node: &Node<L>,
    request: &v1::CheckRequest,
    consistent: Result<()>,
) -> Result<Answer> {
    match consistent {
        Ok(()) => check_one(node, request),
        Err(Error::LogUnreachable(at)) => {
            let response = check_one(node, request)?;
            let settled = [
                v1::TokenStatus::Revoked as i32,
                v1::TokenStatus::Expired as i32,
                v1::TokenStatus::AudienceMismatch as i32,
            ];
            if settled.contains(&response.0.status) {
                Ok(response)
            } else {
                Err(Error::LogUnreachable(at))
            }
        }
        Err(e) => Err(e),
    }
}

/// Answers one check (after any consistency wait): the one decision every
/// caller's answer (Check, CheckBatch, Introspect, GetChain's status) is
/// built on.
pub(crate) fn check_one<L>(node: &Node<L>, request: &v1::CheckRequest) -> Result<Answer> {
    let token = baton_proto::token_ref("token", request.token.clone()).map_err(|source| {
        Error::Invalid {
            index: None,
            source,
        }
    })?;
    let presented_to = (!request.presented_to.is_empty()).then_some(request.presented_to.as_str());
    // The position is read before the status: the answer reflects at least
    // it. Read after, it could cover a revocation applied in between that
    // the status did not see, and a cache watching from it would never hear
    // of that revocation.
    let reflects = node.handle.applied_token().to_string();
    let view = node.freshness.view_end();
    let check = node.handle.check(&token, presented_to, now_s())?;
    let mut response = v1::CheckResponse {
        consistency_token: reflects,
        ..Default::default()
    };
    if let Some(view) = view {
        response.view_confirmed_at_unix_ms = view.at_unix_ms;
        response.view_age_ms = Some(view.age_ms(std::time::Instant::now()));
        response.view_confirmed_end = view.end.to_string();
    }
    if let Some(record) = &check.record {
        response.expires_at_unix_s = record.expires_at_s;
        response.audience = record.audience.clone();
        response.event_id = record.event.0.to_vec();
        response.depth = record.depth;
    }
    if request.with_dependencies
        && matches!(check.status, TokenStatus::Active { .. })
        && let Some(record) = &check.record
    {
        // An active token's chain is complete and anchored; were it not, an
        // empty list would let a cache keep the answer for ever: an error.
        let Some(targets) = node.handle.dependencies(&record.event)? else {
            return Err(Error::Internal(
                "an active token's dependencies could not be walked".into(),
            ));
        };
        response.depends_on = targets.iter().map(v1::RevocationTarget::from).collect();
    }
    response.status = match check.status {
        TokenStatus::Active { .. } => v1::TokenStatus::Active,
        TokenStatus::Expired { .. } => v1::TokenStatus::Expired,
        TokenStatus::Unknown => v1::TokenStatus::Unknown,
        TokenStatus::AudienceMismatch { .. } => v1::TokenStatus::AudienceMismatch,
        TokenStatus::Revoked(cause) => {
            response.cause = Some(v1::RevocationCause {
                revocation_event_id: cause.revocation.0.to_vec(),
                revoked: revoked_body(node, &cause.revocation)?,
                link: Some(baton_proto::token_ref_to_wire(&cause.hit.link)),
                distance: cause.hit.distance,
                via: v1::RevocationVia::from(cause.hit.via) as i32,
            });
            v1::TokenStatus::Revoked
        }
    } as i32;
    Ok((response, check.record))
}

/// Whether an answer needs the token's chain (and so its root's issuer):
/// introspection does; a gateway's decision, which reads only the token's
/// own record, does not, and skips the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    Walked,
    Skipped,
}

/// What the ledger knows of the token of `record`: its grant and, when
/// asked, its chain.
fn details<L>(node: &Node<L>, record: &TokenRecord, chain: Chain) -> Result<v1::TokenDetails> {
    let chain = match chain {
        Chain::Walked => node.handle.lineage(record)?,
        Chain::Skipped => Vec::new(),
    };
    let issuer = chain
        .first()
        .map_or_else(String::new, |root| root.performed_by.to_string());
    let names = |set: &std::collections::BTreeSet<baton_core::Name>| {
        set.iter().map(ToString::to_string).collect()
    };
    Ok(v1::TokenDetails {
        scopes: names(&record.scopes),
        tools: names(&record.tools),
        holder: record.holder.to_string(),
        subject: record.subject.to_string(),
        issuer,
        audience: record.audience.clone(),
        issued_at_unix_s: record.issued_at_s,
        expires_at_unix_s: record.expires_at_s,
        grant_type: baton_proto::grant_type_to_wire(record.grant),
        depth: record.depth,
        chain: chain
            .iter()
            .map(|link| v1::ChainLink {
                performed_by: link.performed_by.to_string(),
                holder: link.holder.to_string(),
                token: Some(baton_proto::token_ref_to_wire(&link.token)),
                event_id: link.event.0.to_vec(),
                depth: link.depth,
                audience: link.audience.clone(),
            })
            .collect(),
    })
}

/// A caller bound to audiences checks tokens presented to one of them:
/// asking whether a token is addressed to some other resource would tell it
/// that token's audience.
fn presented_within(
    caller: Option<&Caller>,
    index: Option<usize>,
    presented_to: &str,
) -> Result<(), Error> {
    match caller.and_then(Caller::bound) {
        Some(bound) if !presented_to.is_empty() && !bound.contains(presented_to) => {
            let field = match index {
                Some(i) => format!("checks[{i}].presented_to"),
                None => "presented_to".to_owned(),
            };
            Err(Error::Denied(crate::auth::Denied::PermissionDenied(
                format!(
                    "{field}: {:?} is not one of the audiences this principal is bound to",
                    baton_core::echo(presented_to)
                ),
            )))
        }
        _ => Ok(()),
    }
}

/// What `caller` may learn of `response`: everything for a token addressed
/// to a resource it serves (or for an unbound caller), otherwise the bare
/// status (and the position and view it reflects).
fn for_caller(caller: Option<&Caller>, response: v1::CheckResponse) -> v1::CheckResponse {
    if caller.is_some_and(|caller| caller.sees(&response.audience)) {
        return response;
    }
    v1::CheckResponse {
        status: response.status,
        consistency_token: response.consistency_token,
        view_confirmed_end: response.view_confirmed_end,
        view_confirmed_at_unix_ms: response.view_confirmed_at_unix_ms,
        view_age_ms: response.view_age_ms,
        ..Default::default()
    }
}

/// What `caller` may know of a token: its check's answer and, for a token
/// the caller serves, what it is. The one function under Introspect and
/// every bridge (`http`, `ext_authz`).
pub(crate) async fn introspect<L: EventLog>(
    node: &Arc<Node<L>>,
    caller: Option<&Caller>,
    request: v1::IntrospectRequest,
    chain: Chain,
) -> Result<v1::IntrospectResponse> {
    presented_within(caller, None, &request.presented_to)?;
    let token = match (request.token, request.bearer.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Limit {
                field: "bearer",
                reason: "give the token by reference or as presented, not both".into(),
            });
        }
        (token, true) => token,
        (None, false) if request.bearer.len() > BEARER_BYTES_MAX => {
            return Err(Error::Limit {
                field: "bearer",
                reason: format!(
                    "{} bytes, more than the limit of {BEARER_BYTES_MAX}",
                    request.bearer.len()
                ),
            });
        }
        (None, false) => Some(baton_proto::token_ref_to_wire(&baton_core::token_digest(
            &request.bearer,
        ))),
    };
    let mut check = v1::CheckRequest {
        token,
        presented_to: request.presented_to,
        consistency_token: request.consistency_token,
        with_dependencies: request.with_dependencies,
    };
    let (response, record) = if request.bearer.is_empty() {
        answer(node, &check).await?
    } else {
        presented(node, &mut check, &request.bearer).await?
    };
    if let Some(metrics) = &node.metrics {
        metrics.checked(response.status);
    }
    let seen = caller.is_some_and(|caller| caller.sees(&response.audience));
    let details = match record {
        Some(record) if seen && chain == Chain::Skipped => Some(details(node, &record, chain)?),
        Some(record) if seen => {
            // The walk reads sled: off the async workers.
            let node = node.clone();
            Some(
                tokio::task::spawn_blocking(move || details(&node, &record, chain))
                    .await
                    .map_err(|e| Error::Internal(format!("introspect task: {e}")))??,
            )
        }
        _ => None,
    };
    Ok(v1::IntrospectResponse {
        check: Some(for_caller(caller, response)),
        details,
    })
}

/// The answer for a token as presented (`check.token` its digest): by the
/// digest, or, for a token the ledger does not know by digest, by the `jti`
/// of a JWT that verifies (see [`by_verified_jwt`]). `check.token` is left
/// naming the reference that answered.
pub(crate) async fn presented<L: EventLog>(
    node: &Arc<Node<L>>,
    check: &mut v1::CheckRequest,
    bearer: &[u8],
) -> Result<Answer> {
    let by_digest = answer(node, check).await?;
    if by_digest.0.status != v1::TokenStatus::Unknown as i32 || node.jwt_issuers.is_empty() {
        return Ok(by_digest);
    }
    let digest = check.token.clone();
    match by_verified_jwt(node, check, bearer).await? {
        Some(by_jti) => Ok(by_jti),
        None => {
            check.token = digest;
            Ok(by_digest)
        }
    }
}

/// The answer for a presented token the ledger does not know by digest,
/// when it is a JWT that verifies against its issuer's configured keys and
/// the ledger's record of its `jti` was issued by that issuer's
/// authorization server; None otherwise (the token stays unknown). A JWT
/// past its own `exp` is expired whatever the ledger says.
async fn by_verified_jwt<L: EventLog>(
    node: &Arc<Node<L>>,
    check: &mut v1::CheckRequest,
    bearer: &[u8],
) -> Result<Option<Answer>> {
    let Some(verified) = node.jwt_issuers.verify(bearer, now_s()) else {
        return Ok(None);
    };
    let Ok(jti) = baton_core::TokenRef::jti("jti", &verified.jti) else {
        return Ok(None);
    };
    check.token = Some(baton_proto::token_ref_to_wire(&jti));
    // Consistent already: the digest's answer waited.
    let (mut response, record) = check_one(node, check)?;
    let Some(found) = record.clone() else {
        return Ok(None);
    };
    let lineage = {
        let handle = node.handle.clone();
        tokio::task::spawn_blocking(move || handle.lineage(&found))
            .await
            .map_err(|e| Error::Internal(format!("introspect task: {e}")))?
            .map_err(Error::from)?
    };
    let issued_by = lineage.first().map(|root| &root.performed_by);
    if issued_by != Some(&verified.client) {
        return Ok(None);
    }
    if let Some(exp) = verified.expires_at_s {
        // The JWT's own `exp` bounds it whatever the ledger says: now, and
        // in the expiry the answer reports (a cache judges expiry by it).
        if response.expires_at_unix_s != 0 {
            response.expires_at_unix_s = response.expires_at_unix_s.min(exp);
        }
        if baton_core::expired(exp, now_s()) && response.status == v1::TokenStatus::Active as i32 {
            response.status = v1::TokenStatus::Expired as i32;
        }
    }
    Ok(Some((response, record)))
}

/// Largest bearer token Introspect takes.
pub(crate) use baton_bridge::BEARER_BYTES_MAX;

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

/// Revocations read per scan of the projection.
const WATCH_CHUNK: usize = 256;
/// How long a quiet Watch sleeps before looking again (woken early by applies).
const WATCH_IDLE: Duration = Duration::from_millis(500);
/// Bounds of a Watch's checkpoint interval.
const CHECKPOINT_MIN_MS: u32 = 100;
const CHECKPOINT_MAX_MS: u32 = 60_000;

#[tonic::async_trait]
impl<L: EventLog> v1::revocation_service_server::RevocationService for Revocation<L> {
    async fn check(
        &self,
        request: Request<v1::CheckRequest>,
    ) -> Result<Response<v1::CheckResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let request = request.into_inner();
        presented_within(caller.as_ref(), None, &request.presented_to)?;
        let (response, _) = answer(&self.node, &request).await?;
        if let Some(metrics) = &self.node.metrics {
            metrics.checked(response.status);
        }
        Ok(Response::new(for_caller(caller.as_ref(), response)))
    }

    async fn introspect(
        &self,
        request: Request<v1::IntrospectRequest>,
    ) -> Result<Response<v1::IntrospectResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let answer = introspect(
            &self.node,
            caller.as_ref(),
            request.into_inner(),
            Chain::Walked,
        )
        .await?;
        Ok(Response::new(answer))
    }

    async fn check_batch(
        &self,
        request: Request<v1::CheckBatchRequest>,
    ) -> Result<Response<v1::CheckBatchResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let checks = request.into_inner().checks;
        let max = self.node.limits.check_batch_max;
        if checks.len() > max {
            return Err(Error::Limit {
                field: "checks",
                reason: format!("{} checks, more than the limit of {max}", checks.len()),
            }
            .into());
        }
        for (i, check) in checks.iter().enumerate() {
            presented_within(caller.as_ref(), Some(i), &check.presented_to)?;
        }
        // The waits here; the checks (sled reads, status walks) off the
        // async workers, in one blocking task.
        let mut waits = Vec::with_capacity(checks.len());
        for check in &checks {
            match self.node.consistent(&check.consistency_token).await {
                // Not reached in time: the batch fails, so stop waiting.
                Err(e) if !matches!(e, Error::LogUnreachable(_)) => return Err(e.into()),
                waited => waits.push(waited),
            }
        }
        // Freshness once, after every wait: an earlier check's verdict must
        // not outlive the waits of the later ones.
        let fresh = self.node.fresh();
        let waits: Vec<Result<()>> = waits
            .into_iter()
            .map(|waited| match (waited, &fresh) {
                (Ok(()), Err(Error::LogUnreachable(why))) => {
                    Err(Error::LogUnreachable(why.clone()))
                }
                (waited, _) => waited,
            })
            .collect();
        let node = self.node.clone();
        let results = tokio::task::spawn_blocking(move || {
            checks
                .iter()
                .zip(waits)
                .enumerate()
                .map(|(i, (check, waited))| {
                    answer_when(&node, check, waited)
                        .map(|(response, _)| for_caller(caller.as_ref(), response))
                        .map_err(|e| match e {
                            Error::Invalid { source, .. } => Error::Invalid {
                                index: None,
                                source: source.within(&format!("checks[{i}]")),
                            },
                            other => other,
                        })
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("check task: {e}")))??;
        if let Some(metrics) = &self.node.metrics {
            for result in &results {
                metrics.checked(result.status);
            }
        }
        Ok(Response::new(v1::CheckBatchResponse { results }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        // The feed names every revoked subject, client, key and token, of
        // every audience: not for a principal bound to some of them; asked
        // again while the stream runs.
        let peer = request.extensions().get::<crate::listener::Peer>().cloned();
        crate::auth::may_watch(&self.node.access.get(), peer.as_ref())?;
        let request = request.into_inner();
        let partitions = self.node.handle.partitions() as usize;
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
                }
                .into());
            }
            let mut next = token.next_offsets().to_vec();
            next.resize(partitions, 0);
            // A position past the log's end is from another log (another
            // cluster, a rebuilt topic): streaming from it would stay silent
            // for ever while revocations happen.
            // What this node has read is in the log; only a position past it
            // needs the log's word (and a log that cannot answer now makes
            // this Watch unavailable, not a node failure).
            let read = self.node.handle.read();
            let covered = next.iter().zip(&read).all(|(want, read)| want <= read);
            let ends = if covered {
                read
            } else {
                self.node.log.end_offsets().await.map_err(|e| {
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
                }
                .into());
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
                }
                .into());
            }
        };
        let permit = self.node.stream_permit()?;
        let node = self.node.clone();
        let (send, receive) = tokio::sync::mpsc::channel(64);
        let watching = node.metrics.as_ref().map(|m| m.watching());
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
                if let Err(refused) = crate::auth::may_watch(&node.access.get(), peer.as_ref()) {
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
                            let _ = send.send(Err(Status::from(Error::from(e)))).await;
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
                        let _ = send.send(Err(Status::from(Error::from(e)))).await;
                        return;
                    }
                };
                // Fewer than a chunk: the scan reached everything applied up
                // to what was read, so once these are sent a checkpoint may
                // cover it.
                let caught_up = scanned.len() < WATCH_CHUNK;
                effects.extend(scanned.into_iter().map(|e| (e, false)));
                let quiet = effects.is_empty();
                let positions: Vec<(baton_log::Position, bool)> = effects
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
                    let revoked = match revoked_body(&node, &effect.revocation) {
                        Ok(revoked) => revoked,
                        Err(e) => {
                            let _ = send.send(Err(Status::from(e))).await;
                            return;
                        }
                    };
                    let message = v1::WatchResponse {
                        revocation_event_id: effect.revocation.0.to_vec(),
                        revoked,
                        position: Some(effect.position.into()),
                        resume_token: ConsistencyToken::new(resume.clone()).to_string(),
                        checkpoint: None,
                    };
                    if send.send(Ok(message)).await.is_err() {
                        return; // The watcher went away.
                    }
                    if let Some(metrics) = &node.metrics {
                        metrics.watch_sent(false);
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
                    && node.caught_up.load(std::sync::atomic::Ordering::Acquire)
                    && node.freshness.is_fresh(std::time::Instant::now())
                    && let Some(every) = checkpoints
                {
                    if last_checkpoint.elapsed() >= every {
                        let checkpoint = v1::WatchResponse {
                            resume_token: ConsistencyToken::new(resume.clone()).to_string(),
                            checkpoint: Some(v1::WatchCheckpoint {
                                consistency_token: ConsistencyToken::new(delivered.clone())
                                    .to_string(),
                                sent_at_unix_ms: crate::now_ms(),
                                view_age_ms: view
                                    .as_ref()
                                    .map(|view| view.age_ms(std::time::Instant::now())),
                            }),
                            ..Default::default()
                        };
                        if send.send(Ok(checkpoint)).await.is_err() {
                            return;
                        }
                        if let Some(metrics) = &node.metrics {
                            metrics.watch_sent(true);
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
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receive),
        )))
    }
}
