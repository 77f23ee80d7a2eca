//! The node's HTTP listener: the bridges for software that speaks HTTP, not
//! Baton's gRPC.
//!
//! - `/authz` — forward-auth for gateways (nginx `auth_request`, Traefik
//!   `forwardAuth`): the request the gateway is deciding arrives as headers
//!   (`Authorization`, `X-Forwarded-Proto`, `X-Forwarded-Host`,
//!   `X-Original-URI` or `X-Forwarded-Uri`, `Mcp-Method`, `Mcp-Name`); the
//!   answer is [`bridge::decide`]'s: 200 with `x-baton-*` headers for the
//!   upstream, or 401/403 with `WWW-Authenticate`.
//! - `POST /oauth2/introspect` — RFC 7662 token introspection, the chain as
//!   nested RFC 8693 `act` claims.
//!
//! Callers are who they are on gRPC — the connection's client certificate
//! (same TLS files, ALPN `http/1.1`), or anyone on a plaintext loopback
//! listener — plus, for introspection, HTTP Basic client credentials
//! checked against the hashes in `[[access]]` grants (RFC 7662 §2.1). The
//! same table ([`crate::auth::required`]) says which role each path needs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_log::EventLog;
use baton_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tonic::Code;

use crate::auth::{AccessHandle, Caller};
use crate::bridge::{self, Resources, Verdict};
use crate::listener::Peer;
use crate::tls::{Identity, Tls};
use crate::{Limits, Node};

/// Forward-auth (any method).
pub const FORWARD_AUTH: &str = "/authz";
/// RFC 7662 introspection.
pub const INTROSPECT: &str = "/oauth2/introspect";

/// Largest form an introspection request may send: a bearer token of the
/// largest size, percent-encoded, and room for the other parameters.
const FORM_BYTES_MAX: usize = 3 * crate::revocation::BEARER_BYTES_MAX + 1024;
/// Longest a client may take to send a request's headers.
const HEADER_READ_MAX: Duration = Duration::from_secs(10);

struct Http<L> {
    node: Arc<Node<L>>,
    resources: Resources,
    access: AccessHandle,
}

/// Serves the HTTP bridges on `listener` until `stopping` turns true.
pub(crate) async fn serve<L: EventLog>(
    node: Arc<Node<L>>,
    resources: Resources,
    access: AccessHandle,
    listener: TcpListener,
    limits: Limits,
    tls: Option<Tls>,
    mut stopping: watch::Receiver<bool>,
) {
    let tls = tls.map(|tls| tls.with_alpn(vec![b"http/1.1".to_vec()]));
    let mut incoming = Box::pin(crate::listener::incoming(
        listener,
        limits.connections_max,
        limits.connection_idle_max,
        tls,
    ));
    let router = axum::Router::new()
        .route(FORWARD_AUTH, axum::routing::any(forward_auth::<L>))
        .route(INTROSPECT, axum::routing::post(introspect::<L>))
        .layer(axum::extract::DefaultBodyLimit::max(FORM_BYTES_MAX))
        .with_state(Arc::new(Http {
            node,
            resources,
            access,
        }));
    loop {
        let connection = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(connection)) => connection,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    continue;
                }
                None => return,
            },
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let peer = connection.peer().clone();
        let router = router.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    let mut router = router.clone();
                    tower::Service::call(&mut router, request.map(axum::body::Body::new))
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_MAX)
                .serve_connection(hyper_util::rt::TokioIo::new(connection), service);
            tokio::select! {
                result = served => if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended");
                },
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        });
    }
}

/// Who is calling `path`: the connection's identity, or for introspection
/// the HTTP Basic client credentials it sent (RFC 6749 §2.3.1: id and
/// secret form-urlencoded).
fn caller<L>(
    http: &Http<L>,
    peer: Option<&Peer>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Caller, tonic::Status> {
    let access = http.access.get();
    let basic = (path == INTROSPECT)
        .then(|| headers.get(header::AUTHORIZATION))
        .flatten()
        .and_then(|value| {
            value
                .as_bytes()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"basic "))
                .then(|| &value.as_bytes()[6..])
        });
    let identity = match basic {
        Some(credentials) => Arc::new(basic_identity(&access, credentials)),
        None => peer.map_or_else(
            || Arc::new(Identity::Anonymous),
            |peer| peer.identity.identity(),
        ),
    };
    // RFC 7662 §2.1: introspection callers authenticate, even on a
    // plaintext loopback listener (where everyone else is admin).
    let identity = match *identity {
        Identity::Plaintext if path == INTROSPECT => Arc::new(Identity::Anonymous),
        _ => identity,
    };
    crate::auth::authorize(&access, &identity, peer.and_then(|p| p.remote), path)
}

/// The answer to a caller [`caller`] refused: 401 (with a Basic challenge,
/// RFC 6749's `invalid_client`) or 403.
fn refused(status: &tonic::Status) -> Response {
    let (code, error) = match status.code() {
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "invalid_client"),
        _ => (StatusCode::FORBIDDEN, "access_denied"),
    };
    let mut response = oauth_error(code, error, status.message());
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"baton\""),
        );
    }
    response
}

/// The identity HTTP Basic credentials name, or why they do not.
fn basic_identity(access: &crate::auth::Access, credentials: &[u8]) -> Identity {
    use base64::Engine as _;
    let refused = |why: &str| Identity::Refused(format!("HTTP Basic credentials: {why}"));
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim_ascii())
    else {
        return refused("not base64");
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return refused("no ':' between client id and secret");
    };
    let decode = |part: &[u8]| {
        form_urlencoded::parse(&[b"x=", part].concat())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    let (Some(id), Some(secret)) = (decode(&decoded[..colon]), decode(&decoded[colon + 1..]))
    else {
        return refused("unreadable");
    };
    access.client(&id, secret.as_bytes())
}

/// An OAuth error answer (RFC 6749 §5.2 shape), never cached.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": baton_core::echo(description),
    });
    no_store(status, body)
}

fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The HTTP status for a gRPC status the decision failed with.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn forward_auth<L: EventLog>(
    State(http): State<Arc<Http<L>>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&http, peer.as_deref(), &headers, FORWARD_AUTH) {
        Ok(caller) => caller,
        Err(status) => {
            // The gateway may not ask: an error to it, never a 401 or 403 a
            // gateway would pass on to its client as the client's fault.
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &format!("this gateway may not ask: {}", status.message()),
            );
        }
    };
    let (Some(scheme), Some(host), Some(uri)) = (
        text(&headers, "x-forwarded-proto"),
        text(&headers, "x-forwarded-host"),
        text(&headers, "x-original-uri").or_else(|| text(&headers, "x-forwarded-uri")),
    ) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "forward-auth needs the X-Forwarded-Proto, X-Forwarded-Host and X-Original-URI (or X-Forwarded-Uri) headers of the request it decides",
        );
    };
    let method = text(&headers, "mcp-method");
    let name = text(&headers, "mcp-name");
    let request = bridge::Request {
        authorization: headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
        scheme: &scheme,
        host: &host,
        path: &uri,
        mcp_method: method.as_deref(),
        mcp_name: name.as_deref(),
    };
    match bridge::decide(&http.node, &http.resources, Some(&caller), &request).await {
        Ok(Verdict::Allow(upstream)) => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in upstream {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Ok(Verdict::Deny {
            status,
            www_authenticate,
            reason,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let mut response = oauth_error(
                status,
                if status == StatusCode::UNAUTHORIZED {
                    "invalid_token"
                } else {
                    "insufficient_scope"
                },
                &reason,
            );
            if let Ok(value) = HeaderValue::from_str(&www_authenticate) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Err(status) => oauth_error(
            http_status(status.code()),
            "temporarily_unavailable",
            status.message(),
        ),
    }
}

/// RFC 7662 §2.1: a form with `token` (once) and optionally
/// `token_type_hint`; other parameters are ignored.
fn token_of(form: &[u8]) -> Result<String, String> {
    let mut token = None;
    let mut hints = 0;
    for (name, value) in form_urlencoded::parse(form) {
        match name.as_ref() {
            "token" if token.is_some() => return Err("token: given more than once".into()),
            "token" => token = Some(value.into_owned()),
            "token_type_hint" => {
                hints += 1;
                if hints > 1 {
                    return Err("token_type_hint: given more than once".into());
                }
            }
            _ => {}
        }
    }
    match token {
        None => Err("token: missing".into()),
        Some(token) if token.is_empty() => Err("token: is empty".into()),
        Some(token) => Ok(token),
    }
}

async fn introspect<L: EventLog>(
    State(http): State<Arc<Http<L>>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let caller = match caller(&http, peer.as_deref(), &headers, INTROSPECT) {
        Ok(caller) => caller,
        Err(status) => return refused(&status),
    };
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type: must be application/x-www-form-urlencoded",
        );
    }
    let token = match token_of(&form) {
        Ok(token) => token,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &why),
    };
    let answer = crate::revocation::introspect(
        &http.node,
        Some(&caller),
        v1::IntrospectRequest {
            bearer: token.into_bytes(),
            ..Default::default()
        },
    )
    .await;
    match answer {
        Ok(answer) => no_store(StatusCode::OK, introspection(answer)),
        Err(status) if status.code() == Code::InvalidArgument => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", status.message())
        }
        Err(status) => oauth_error(
            http_status(status.code()),
            "temporarily_unavailable",
            status.message(),
        ),
    }
}

/// RFC 7662 §2.2: `{"active": false}` and nothing else unless the token is
/// active and the caller serves its audience; then its claims, the
/// delegation chain as nested RFC 8693 `act` claims (the current actor —
/// the holder — outermost, each earlier holder inside), and Baton's own
/// members prefixed `baton_`.
fn introspection(answer: v1::IntrospectResponse) -> serde_json::Value {
    let active = answer
        .check
        .as_ref()
        .is_some_and(|check| check.status == v1::TokenStatus::Active as i32);
    let (true, Some(details), Some(check)) = (active, answer.details, answer.check) else {
        return serde_json::json!({ "active": false });
    };
    // Root first: fold so the leaf's holder ends up outermost.
    let mut act: Option<serde_json::Value> = None;
    for link in &details.chain {
        let mut claim = serde_json::json!({
            "sub": link.holder,
            "baton_performed_by": link.performed_by,
        });
        if let Some(prior) = act.take() {
            claim["act"] = prior;
        }
        act = Some(claim);
    }
    let mut claims = serde_json::json!({
        "active": true,
        "scope": details.scopes.join(" "),
        "client_id": details.holder,
        "sub": details.subject,
        "aud": details.audience,
        "iss": details.issuer,
        "exp": details.expires_at_unix_s,
        "iat": details.issued_at_unix_s,
        "token_type": "Bearer",
        "baton_tools": details.tools,
        "baton_depth": details.depth,
        "baton_event_id": hex::encode(&check.event_id),
        "baton_consistency_token": check.consistency_token,
    });
    if let Some(act) = act {
        claims["act"] = act;
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_parameter_is_required_once() {
        assert_eq!(
            token_of(b"token=a%2Bb&token_type_hint=access_token"),
            Ok("a+b".into())
        );
        assert_eq!(token_of(b"token=a+b&extra=1"), Ok("a b".into()));
        assert!(
            token_of(b"token=a&token=b")
                .unwrap_err()
                .starts_with("token:")
        );
        assert!(token_of(b"token=").unwrap_err().starts_with("token:"));
        assert!(token_of(b"hint=x").unwrap_err().starts_with("token:"));
        assert!(
            token_of(b"token=a&token_type_hint=x&token_type_hint=y")
                .unwrap_err()
                .starts_with("token_type_hint:")
        );
    }

    #[test]
    fn inactive_answers_say_nothing_else() {
        let revoked = v1::IntrospectResponse {
            check: Some(v1::CheckResponse {
                status: v1::TokenStatus::Revoked as i32,
                ..Default::default()
            }),
            details: Some(v1::TokenDetails {
                subject: "alice".into(),
                ..Default::default()
            }),
        };
        assert_eq!(introspection(revoked), serde_json::json!({"active": false}));
        // Active, but the caller may not see its details: inactive to it.
        let unseen = v1::IntrospectResponse {
            check: Some(v1::CheckResponse {
                status: v1::TokenStatus::Active as i32,
                ..Default::default()
            }),
            details: None,
        };
        assert_eq!(introspection(unseen), serde_json::json!({"active": false}));
    }
}
