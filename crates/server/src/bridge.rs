//! The gateway decision under both gateway bridges (HTTP forward-auth in
//! `http`, Envoy's ext_authz in `ext_authz`): `baton_bridge`'s pure rules,
//! with the token looked up by [`crate::revocation::introspect`].

use std::sync::Arc;

use baton_log::EventLog;
use baton_proto::v1;

pub use baton_bridge::{
    BEARER_BYTES_MAX, DEPTH, EVENT_ID, Gateway, HOLDER, Headers, MCP_HEADERS_SINCE, Refusal,
    Request, Resource, Resources, SUBJECT, Verdict,
};

use crate::Node;
use crate::auth::Caller;

/// Decides one gateway request for `caller` (the gateway), as read by the
/// request model (or the reason it refused to read it).
pub(crate) async fn decide<L: EventLog>(
    node: &Arc<Node<L>>,
    resources: &Resources,
    caller: &Caller,
    request: Result<Request, Refusal>,
) -> Verdict {
    let request = match request {
        Ok(request) => request,
        Err(refusal) => return baton_bridge::refused(None, refusal),
    };
    let (resource, token) = match baton_bridge::admit(resources, &request) {
        Ok(admitted) => admitted,
        Err(verdict) => return verdict,
    };
    let query = baton_node::IntrospectQuery {
        presented_to: Some(resource.audience.clone()),
        ..baton_node::IntrospectQuery::of(baton_node::Presented::Bearer(token.as_bytes().to_vec()))
    };
    let answer = node
        .introspect(
            Some(caller),
            query,
            // The decision reads the token's own record only.
            baton_node::Walk::Skip,
        )
        .await
        .map(crate::wire::introspect_response);
    let answer = match answer {
        Ok(answer) => answer,
        Err(failed) => {
            let unavailable = matches!(
                crate::error::code(&failed),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
            );
            // Anything else (a gateway bound to other audiences, a caller
            // without the role) is the gateway's configuration: a 500, not
            // a 403 that would tell the client its token lacks something.
            if unavailable {
                return Verdict::Deny {
                    status: 503,
                    www_authenticate: None,
                    reason: format!("Baton could not decide: {}", crate::error::message(&failed)),
                };
            }
            // The node's own failure, not the gateway's configuration: said
            // as such, and logged as an error (its detail stays in the log).
            if crate::error::code(&failed) == tonic::Code::Internal {
                tracing::error!(error = %failed, "internal error deciding a gateway request");
                return baton_bridge::misconfigured(
                    "Baton could not decide: an internal error; the node's log says why".to_owned(),
                );
            }
            return gateway_refused(&crate::error::message(&failed));
        }
    };
    let (status, event_id) = answer
        .check
        .map_or((v1::TokenStatus::Unspecified as i32, Vec::new()), |check| {
            (check.status, check.event_id)
        });
    baton_bridge::conclude(
        resource,
        &request.presented,
        status,
        answer.details.as_ref(),
        &event_id,
    )
}

/// What a bridge decided, as `baton_bridge_decisions_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A gateway bridge let the request through.
    Allow,
    /// A gateway bridge denied it for the client's token or request (400,
    /// 401, 403).
    Deny,
    /// A gateway bridge denied it because the node could not decide now
    /// (503).
    Unavailable,
    /// A gateway bridge denied it for the gateway's configuration or the
    /// node's own failure (500).
    Error,
    /// RFC 7662 answered `active: true`.
    Active,
    /// RFC 7662 answered `active: false`.
    Inactive,
    /// RFC 7009 appended a revocation.
    Revoked,
    /// RFC 7009 appended nothing: the token was unknown or revoked already.
    Unchanged,
}

impl Decision {
    /// A gateway bridge's verdict, as a decision: the one reading of it for
    /// forward-auth and ext_authz.
    pub fn of(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Allow(_) => Decision::Allow,
            Verdict::Deny { status: 503, .. } => Decision::Unavailable,
            Verdict::Deny { status, .. } if *status >= 500 => Decision::Error,
            Verdict::Deny { .. } => Decision::Deny,
        }
    }

    /// Its metric label.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Unavailable => "unavailable",
            Decision::Error => "error",
            Decision::Active => "active",
            Decision::Inactive => "inactive",
            Decision::Revoked => "revoked",
            Decision::Unchanged => "unchanged",
        }
    }
}

/// `Retry-After` (seconds) on a 503: the node could not vouch for the log
/// just now, and a confirmation of its end is a second away.
pub(crate) const RETRY_AFTER_S: &str = "1";

/// What the end user is told when the gateway itself may not ask (no
/// certificate, no checker role, bound to other audiences): nothing that
/// names a principal, a CA file or an audience, since gateways pass the
/// body on. The detail goes to the node's log.
pub(crate) const GATEWAY_REFUSED: &str = "Baton refused the gateway's own request (its certificate, role or audiences); the node's log says why";

/// The 500 denial for a gateway that may not ask, its detail logged.
pub(crate) fn gateway_refused(detail: &str) -> Verdict {
    tracing::warn!(
        detail = %baton_core::echo(detail),
        "gateway request refused: the gateway's configuration"
    );
    baton_bridge::misconfigured(GATEWAY_REFUSED.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway verdict reads as one decision: a 503 is `unavailable`, any
    /// other 5xx `error`, a 4xx `deny`.
    #[test]
    fn a_gateway_verdict_is_one_decision() {
        let deny = |status| Verdict::Deny {
            status,
            www_authenticate: None,
            reason: String::new(),
        };
        assert_eq!(Decision::of(&Verdict::Allow(Vec::new())), Decision::Allow);
        for status in [400, 401, 403] {
            assert_eq!(Decision::of(&deny(status)), Decision::Deny, "{status}");
        }
        assert_eq!(Decision::of(&deny(503)), Decision::Unavailable);
        assert_eq!(Decision::of(&deny(500)), Decision::Error);
        assert_eq!(
            Decision::of(&baton_bridge::misconfigured(String::new())),
            Decision::Error
        );
    }
}
