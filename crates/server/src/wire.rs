//! The node's answers on the wire, and the wire's requests as the node's
//! queries: every mapping between `baton-node`'s (and the projector's query)
//! types and `v1` messages (those of core types are `baton-proto`'s).

use baton_core::{ClientId, Envelope, Event, Subject};
use baton_node::{
    Appended, CheckAnswer, CheckQuery, IntrospectQuery, Introspection, NodeState, Presented,
    Verdict, WatchItem,
};
use baton_projector::EventFilter;
use baton_proto::v1;

use crate::{Error, Result};

pub(crate) fn invalid(source: impl Into<baton_core::Error>) -> Error {
    Error::Invalid {
        index: None,
        source: source.into(),
    }
}

/// A Check's query. `within` names where the request sits (a batch's
/// `checks[i]`), for refusals.
pub fn check_query(request: v1::CheckRequest, within: Option<&str>) -> Result<CheckQuery> {
    let token = baton_proto::token_ref("token", request.token).map_err(|source| match within {
        Some(within) => invalid(source.within(within)),
        None => invalid(source),
    })?;
    Ok(CheckQuery {
        token,
        presented_to: (!request.presented_to.is_empty()).then_some(request.presented_to),
        consistency_token: request.consistency_token,
        with_dependencies: request.with_dependencies,
    })
}

/// An Introspect's query: the token by reference or as presented.
pub fn introspect_query(request: v1::IntrospectRequest) -> Result<IntrospectQuery> {
    let token = match (request.token, request.bearer.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Limit {
                field: "bearer",
                reason: "give the token by reference or as presented, not both".into(),
            });
        }
        (token, true) => Presented::Ref(baton_proto::token_ref("token", token).map_err(invalid)?),
        (None, false) => Presented::Bearer(request.bearer),
    };
    Ok(IntrospectQuery {
        token,
        presented_to: (!request.presented_to.is_empty()).then_some(request.presented_to),
        consistency_token: request.consistency_token,
        with_dependencies: request.with_dependencies,
    })
}

/// A verdict's wire status.
pub fn token_status(verdict: Verdict) -> v1::TokenStatus {
    match verdict {
        Verdict::Active => v1::TokenStatus::Active,
        Verdict::Revoked => v1::TokenStatus::Revoked,
        Verdict::Expired => v1::TokenStatus::Expired,
        Verdict::Unknown => v1::TokenStatus::Unknown,
        Verdict::AudienceMismatch => v1::TokenStatus::AudienceMismatch,
    }
}

/// A check's answer on the wire.
pub fn check_response(answer: CheckAnswer) -> v1::CheckResponse {
    let mut response = v1::CheckResponse {
        status: token_status(answer.verdict) as i32,
        consistency_token: answer.reflects,
        expires_at_unix_s: answer.expires_at_s,
        depends_on: answer
            .depends_on
            .iter()
            .map(v1::RevocationTarget::from)
            .collect(),
        ..Default::default()
    };
    if let Some((view, age_ms)) = answer.view {
        response.view_confirmed_at_unix_ms = view.at_unix_ms;
        response.view_age_ms = Some(age_ms);
        response.view_confirmed_end = view.end.to_string();
    }
    if let Some(record) = &answer.record {
        response.audience = record.audience.clone();
        response.event_id = record.event.0.to_vec();
        response.depth = record.depth;
    }
    if let Some((cause, revoked)) = &answer.cause {
        response.cause = Some(baton_proto::revocation_cause(cause, revoked.as_ref()));
    }
    response
}

/// An introspection on the wire.
pub fn introspect_response(answer: Introspection) -> v1::IntrospectResponse {
    v1::IntrospectResponse {
        check: Some(check_response(answer.check)),
        details: answer
            .details
            .map(|details| baton_proto::token_details(&details.record, &details.chain)),
    }
}

/// An Append's events as they arrived: opened (decoded, each field
/// validated, a refusal naming the event) by the node, off the async
/// workers, once the batch is within its bound.
#[derive(Debug)]
pub struct Signed(pub Vec<v1::SignedEvent>);

impl baton_node::Batch for Signed {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn open(self) -> Result<Vec<(Envelope, Event)>> {
        self.0
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
}

/// An Append's answer on the wire.
pub fn append_response(appended: Appended) -> v1::AppendResponse {
    v1::AppendResponse {
        results: appended
            .events
            .into_iter()
            .map(|event| v1::AppendResult {
                event_id: event.id.0.to_vec(),
                outcome: if event.duplicate {
                    v1::AppendOutcome::Duplicate
                } else {
                    v1::AppendOutcome::Accepted
                } as i32,
                position: event.position.map(v1::LogPosition::from),
            })
            .collect(),
        consistency_token: appended.token.to_string(),
    }
}

/// A Watch entry on the wire.
pub fn watch_response(item: WatchItem) -> v1::WatchResponse {
    match item {
        WatchItem::Revocation {
            id,
            revoked,
            position,
            resume,
        } => v1::WatchResponse {
            revocation_event_id: id.0.to_vec(),
            revoked: revoked.as_ref().map(v1::Revoked::from),
            position: Some(position.into()),
            resume_token: resume.to_string(),
            checkpoint: None,
        },
        WatchItem::Checkpoint {
            resume,
            covered,
            sent_at_unix_ms,
            view_age_ms,
        } => v1::WatchResponse {
            resume_token: resume.to_string(),
            checkpoint: Some(v1::WatchCheckpoint {
                consistency_token: covered.to_string(),
                sent_at_unix_ms,
                view_age_ms,
            }),
            ..Default::default()
        },
    }
}

/// Where a node stands, on the wire.
pub fn status_response<L: baton_log::EventLog>(state: NodeState) -> v1::StatusResponse {
    let lag = state.lag();
    let partitions = state
        .applied_offsets
        .iter()
        .enumerate()
        .map(|(p, applied)| v1::PartitionStatus {
            partition: p as u32,
            applied: *applied,
            read: state.read_offsets.get(p).copied().unwrap_or(0),
            log_end: state
                .log_end
                .as_ref()
                .and_then(|ends| ends.get(p).copied())
                .unwrap_or(0),
            lag: lag.get(p).copied().unwrap_or(0),
        })
        .collect();
    let (state_digest, digest_settled) = match state.digest {
        Some((digest, settled)) => (format!("b3:{}", hex::encode(digest)), settled),
        None => (String::new(), false),
    };
    let view = state.freshness;
    v1::StatusResponse {
        ready: state.ready,
        partitions,
        log_error: state.log_error,
        lag: lag.iter().sum(),
        seconds_behind: state.seconds_behind,
        consistency_token: baton_log::ConsistencyToken::new(state.applied_offsets).to_string(),
        events_applied: state.applied,
        duplicates: state.duplicates,
        quarantined: state.quarantined,
        quarantined_by_rule: state.quarantined_by_rule.into_iter().collect(),
        parked: state.parked,
        projection_bytes: state.projection_bytes,
        state_digest,
        digest_settled,
        log: L::KIND.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        records_read: state.records_read,
        fresh: view.as_ref().is_some_and(|view| view.fresh),
        end_confirmed_seconds_ago: seconds_or_never(view.as_ref().and_then(|v| v.confirmed_age)),
        unapplied_seconds: view.as_ref().map_or(0.0, |view| view.behind.as_secs_f64()),
        max_staleness_seconds: state.max_staleness.as_secs_f64(),
        view_age_seconds: seconds_or_never(view.as_ref().and_then(|v| v.age)),
        confirmed_end: view
            .and_then(|view| view.confirmed)
            .map(|confirmed| confirmed.end.to_string())
            .unwrap_or_default(),
    }
}

/// Seconds of `age`, or -1 for "never" (the wire's convention).
fn seconds_or_never(age: Option<std::time::Duration>) -> f64 {
    age.map_or(-1.0, |age| age.as_secs_f64())
}

/// What a ListEvents request selects.
pub fn event_filter(request: &v1::ListEventsRequest) -> Result<EventFilter> {
    Ok(EventFilter {
        kind: baton_proto::event_kind("kind", request.kind).map_err(invalid)?,
        client: (!request.client_id.is_empty())
            .then(|| ClientId::new("client_id", &request.client_id))
            .transpose()
            .map_err(invalid)?,
        subject: (!request.subject.is_empty())
            .then(|| Subject::new("subject", &request.subject))
            .transpose()
            .map_err(invalid)?,
        since_ms: (request.since_unix_ms != 0).then_some(request.since_unix_ms),
        until_ms: (request.until_unix_ms != 0).then_some(request.until_unix_ms),
    })
}
