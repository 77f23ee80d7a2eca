//! The node's answers on the wire, and the wire's requests as the node's
//! queries: every mapping between `baton-node`'s types and `v1` messages
//! (those of core types are `baton-proto`'s).

use baton_core::{Envelope, Event};
use baton_node::{
    Appended, CheckAnswer, CheckQuery, Details, Introspection, Presented, Verdict, WatchItem,
};
use baton_proto::v1;

use crate::{Error, Result};

fn invalid(source: impl Into<baton_core::Error>) -> Error {
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

/// An Introspect's token (by reference, or as presented) and query.
pub fn introspect_query(request: v1::IntrospectRequest) -> Result<(Presented, CheckQuery)> {
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
    let placeholder = match &token {
        Presented::Ref(token) => token.clone(),
        Presented::Bearer(bearer) => baton_core::token_digest(bearer),
    };
    Ok((
        token,
        CheckQuery {
            token: placeholder,
            presented_to: (!request.presented_to.is_empty()).then_some(request.presented_to),
            consistency_token: request.consistency_token,
            with_dependencies: request.with_dependencies,
        },
    ))
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
    if let Some((cause, revoked)) = answer.cause {
        response.cause = Some(v1::RevocationCause {
            revocation_event_id: cause.revocation.0.to_vec(),
            revoked: revoked.as_ref().map(v1::Revoked::from),
            link: Some(baton_proto::token_ref_to_wire(&cause.hit.link)),
            distance: cause.hit.distance,
            via: v1::RevocationVia::from(cause.hit.via) as i32,
        });
    }
    response
}

/// What the ledger knows of a token, on the wire.
pub fn token_details(details: Details) -> v1::TokenDetails {
    let issuer = details.issuer();
    let record = details.record;
    v1::TokenDetails {
        scopes: Details::names(&record.scopes),
        tools: Details::names(&record.tools),
        holder: record.holder.to_string(),
        subject: record.subject.to_string(),
        issuer,
        audience: record.audience.clone(),
        issued_at_unix_s: record.issued_at_s,
        expires_at_unix_s: record.expires_at_s,
        grant_type: baton_proto::grant_type_to_wire(record.grant),
        depth: record.depth,
        chain: details
            .chain
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
    }
}

/// An introspection on the wire.
pub fn introspect_response(answer: Introspection) -> v1::IntrospectResponse {
    v1::IntrospectResponse {
        check: Some(check_response(answer.check)),
        details: answer.details.map(token_details),
    }
}

/// An Append's events, decoded and opened; a refusal names the event.
pub fn open_batch(events: Vec<v1::SignedEvent>) -> Result<Vec<(Envelope, Event)>> {
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
