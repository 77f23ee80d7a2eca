//! The gateway decision under both gateway bridges (HTTP forward-auth in
//! `http`, Envoy's ext_authz in `ext_authz`): `baton_bridge`'s pure rules,
//! with the token looked up by [`crate::revocation::introspect`].

use std::sync::Arc;

use baton_log::EventLog;
use baton_proto::v1;

pub use baton_bridge::{
    BEARER_BYTES_MAX, DEPTH, EVENT_ID, HOLDER, MCP_HEADERS_SINCE, Request, Resource, Resources,
    SUBJECT, Verdict,
};

use crate::Node;
use crate::auth::Caller;

/// Decides one gateway request for `caller` (the gateway).
pub(crate) async fn decide<L: EventLog>(
    node: &Arc<Node<L>>,
    resources: &Resources,
    caller: Option<&Caller>,
    request: &Request<'_>,
) -> Verdict {
    let (resource, token) = match baton_bridge::admit(resources, request) {
        Ok(admitted) => admitted,
        Err(verdict) => return verdict,
    };
    let answer = crate::revocation::introspect(
        node,
        caller,
        v1::IntrospectRequest {
            bearer: token.to_vec(),
            presented_to: resource.audience.clone(),
            ..Default::default()
        },
        // The decision reads the token's own record only.
        crate::revocation::Chain::Skipped,
    )
    .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(status) => {
            let unavailable = matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
            );
            return Verdict::Deny {
                status: if unavailable { 503 } else { 403 },
                www_authenticate: None,
                reason: format!("Baton could not decide: {}", status.message()),
            };
        }
    };
    let (status, event_id) = answer
        .check
        .map_or((v1::TokenStatus::Unspecified as i32, Vec::new()), |check| {
            (check.status, check.event_id)
        });
    baton_bridge::conclude(
        resource,
        request,
        status,
        answer.details.as_ref(),
        &event_id,
    )
}
