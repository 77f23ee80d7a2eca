//! The node's HTTP listener: the bridges for software that speaks HTTP, not
//! Baton's gRPC.
//!
//! - `/authz` — forward-auth for gateways (nginx `auth_request`, Traefik
//!   `forwardAuth`, Caddy `forward_auth`): the request the gateway is
//!   deciding arrives as headers, in the family the configured
//!   [`bridge::Gateway`] profile names, read by the one request model
//!   (`baton_bridge::Request::forward_auth`); the answer is
//!   [`bridge::decide`]'s: 200 with `x-baton-*` headers for the upstream,
//!   400/401/403 with `WWW-Authenticate`, 500 for the gateway's own
//!   misconfiguration, 503 when the node cannot decide.
//! - `POST /oauth2/introspect` — RFC 7662 token introspection, the chain as
//!   nested RFC 8693 `act` claims.
//! - `POST /oauth2/revoke` — RFC 7009 revocation: a `Revoked` event signed
//!   by the node's revocation delegate key for the calling client
//!   (`requested_by`), which the rules let revoke only what that client
//!   could revoke by signing itself.
//!
//! Callers are who they are on gRPC — the connection's client certificate
//! (same TLS files, ALPN `http/1.1`), or anyone on a plaintext loopback
//! listener — plus, for introspection, HTTP Basic client credentials
//! checked against the hashes in `[[access]]` grants (RFC 7662 §2.1). The
//! same table ([`crate::auth::required`]) says which role each path needs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_log::EventLog;
use baton_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::Code;

use crate::auth::{AccessHandle, Caller};
use crate::bridge::{self, Resources, Verdict};
use crate::identity::Identity;
use crate::listener::Peer;
use crate::{Node, ServerOptions};

pub use crate::routes::{FORWARD_AUTH, HEALTH, INTROSPECT, REVOKE};

/// The identity a node signs RFC 7009 revocations with: a registered client
/// the policy lists among its revocation delegates, and its key.
#[derive(Debug, Clone)]
pub struct RevocationDelegate {
    pub client: baton_core::ClientId,
    pub key: baton_core::SigningKey,
}

/// Largest form an introspection request may send: a bearer token of the
/// largest size, percent-encoded, and room for the other parameters.
const FORM_BYTES_MAX: usize = 3 * baton_node::check::BEARER_BYTES_MAX + 1024;
/// Longest an authenticated client may take to send a form.
const BODY_READ_MAX: Duration = Duration::from_secs(10);

struct Http<L> {
    node: Arc<Node<L>>,
    resources: Resources,
    gateway: bridge::Gateway,
    access: AccessHandle,
    delegate: Option<RevocationDelegate>,
}

/// The handler of each bridge of the route table.
fn handler<L: EventLog>(
    bridge: crate::routes::Bridge,
) -> axum::routing::MethodRouter<Arc<Http<L>>> {
    use crate::routes::Bridge;
    match bridge {
        Bridge::ForwardAuth => axum::routing::any(forward_auth::<L>),
        Bridge::Introspect => axum::routing::post(introspect::<L>),
        Bridge::Revoke => axum::routing::post(revoke::<L>),
        Bridge::Health => axum::routing::get(health::<L>),
    }
}

/// Serves the HTTP bridges on `listener` until `stopping` turns true.
pub(crate) async fn serve<L: EventLog>(
    node: Arc<Node<L>>,
    options: ServerOptions,
    listener: TcpListener,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    stopping: watch::Receiver<bool>,
) {
    let tls = options
        .tls
        .map(|tls| tls.with_alpn(vec![b"http/1.1".to_vec()]));
    let router = crate::routes::bridges()
        .fold(axum::Router::new(), |router, (path, bridge)| {
            router.route(path, handler::<L>(bridge))
        })
        .with_state(Arc::new(Http {
            node,
            resources: options.resources,
            gateway: options.gateway,
            access: options.access,
            delegate: options.revocation_delegate,
        }));
    // Outermost: every answer is counted, refusals included.
    let router = match metrics {
        Some(metrics) => router.layer(axum::middleware::from_fn(move |request, next| {
            observed(metrics.clone(), request, next)
        })),
        None => router,
    };
    let traces = options.traces;
    let admin = options.plaintext_admin;
    crate::listener::serve_router(
        router,
        listener,
        tls,
        admin,
        &options.limits,
        traces,
        stopping,
    )
    .await;
}

/// Counts and times one HTTP bridge request by its route (from the route
/// table: a path not in it is `other`, never a label of its own).
async fn observed(
    metrics: Arc<crate::metrics::Metrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = match crate::routes::route(request.uri().path()) {
        Some(route) if matches!(route.kind, crate::routes::Kind::Http(_)) => route.path,
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.http_done(route, response.status().as_u16(), started.elapsed());
    if let Some(decided) = response.extensions().get::<bridge::Decision>() {
        metrics.bridge_decided(route, *decided);
    }
    response
}

/// Who is calling `path`: the connection's identity, or for introspection
/// the HTTP Basic client credentials it sent (RFC 6749 §2.3.1: id and
/// secret form-urlencoded).
fn caller<L>(
    http: &Http<L>,
    peer: Option<&Peer>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Caller, crate::auth::Denied> {
    let access = http.access.get();
    let oauth = path == INTROSPECT || path == REVOKE;
    let basic = oauth
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
    // RFC 7662 §2.1, RFC 7009 §2.1: these callers authenticate, even on a
    // plaintext loopback listener (where everyone else may be admin).
    let identity = match *identity {
        Identity::Plaintext { .. } if oauth => Arc::new(Identity::Anonymous),
        _ => identity,
    };
    crate::auth::authorize(&access, &identity, peer.and_then(|p| p.remote), path)
}

/// The answer to a caller [`caller`] refused: 401 (with a Basic challenge,
/// RFC 6749's `invalid_client`) or 403.
fn refused(denied: &crate::auth::Denied) -> Response {
    let (code, error) = match denied {
        crate::auth::Denied::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "invalid_client"),
        crate::auth::Denied::PermissionDenied(_) => (StatusCode::FORBIDDEN, "unauthorized_client"),
    };
    let message = crate::error::message(&crate::Error::Denied(denied.clone()));
    let mut response = oauth_error(code, error, &message);
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"baton\""),
        );
    }
    // The request's body is never read for a refused caller, so the
    // connection cannot carry another request: say so, or a client reusing
    // it finds it closed under its next request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
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
        "error_description": error_description(description),
    });
    let mut response = no_store(status, body);
    // The node cannot vouch now (not fresh, the log away): worth asking
    // again in a moment, here or at another node.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(crate::bridge::RETRY_AFTER_S),
        );
    }
    response
}

/// Longest `error_description` sent.
const DESCRIPTION_BYTES_MAX: usize = 512;

/// An OAuth `error_description` (RFC 6749 §5.2): only the characters it
/// allows (printable ASCII but `"` and `\`; others become `'`, `/` or `?`),
/// and whole words within [`DESCRIPTION_BYTES_MAX`], then `(truncated)`.
fn error_description(text: &str) -> String {
    let allowed: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            '…' => '.',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    if allowed.len() <= DESCRIPTION_BYTES_MAX {
        return allowed;
    }
    const MORE: &str = " (truncated)";
    let room = &allowed[..DESCRIPTION_BYTES_MAX - MORE.len()];
    let cut = room.rfind(' ').unwrap_or(room.len());
    format!("{}{MORE}", room[..cut].trim_end_matches([',', ';', ':']))
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

/// The OAuth answer for a gRPC status an endpoint failed with.
fn failure(failed: &crate::Error) -> Response {
    let code = crate::error::code(failed);
    if code == Code::Internal {
        tracing::error!(error = %failed, "internal error");
    }
    let (code, error) = match code {
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_request"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "unauthorized_client"),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    oauth_error(code, error, &crate::error::message(failed))
}

/// `response`, marked with the bridge's decision for the metrics.
fn decided(mut response: Response, decision: bridge::Decision) -> Response {
    response.extensions_mut().insert(decision);
    response
}

async fn forward_auth<L: EventLog>(
    State(http): State<Arc<Http<L>>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&http, peer.as_deref(), &headers, FORWARD_AUTH) {
        Ok(caller) => caller,
        Err(_) => {
            // The gateway may not ask: an error to it, never a 401 or 403 a
            // gateway would pass on to its client as the client's fault.
            // (The refusal is logged by `authorize`; the body names none
            // of it, since the gateway passes it on to its client.)
            return decided(
                oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    bridge::GATEWAY_REFUSED,
                ),
                bridge::Decision::Error,
            );
        }
    };
    // Where the request went, in the headers the gateway's profile names.
    let request = bridge::Request::forward_auth(http.gateway, &bridge::Headers::of(&headers));
    let verdict = bridge::decide(&http.node, &http.resources, &caller, request).await;
    let decision = bridge::Decision::of(&verdict);
    let response = match verdict {
        Verdict::Allow(upstream) => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in upstream {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Verdict::Deny {
            status,
            www_authenticate,
            reason,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let error = match status {
                StatusCode::BAD_REQUEST => "invalid_request",
                StatusCode::UNAUTHORIZED => "invalid_token",
                StatusCode::FORBIDDEN => "insufficient_scope",
                StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
                _ => "server_error",
            };
            let mut response = oauth_error(status, error, &reason);
            if let Some(value) = www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    };
    decided(response, decision)
}

async fn health<L: EventLog>(State(http): State<Arc<Http<L>>>) -> Response {
    let node = &http.node;
    if !node.caught_up() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with the log\n",
        )
            .into_response()
    } else if !node.freshness.is_fresh(std::time::Instant::now()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not fresh: the log's end is not confirmed, or not applied, within max_staleness\n",
        )
            .into_response()
    } else {
        (StatusCode::OK, "serving\n").into_response()
    }
}

/// What an OAuth endpoint's form asks about.
#[derive(Debug, PartialEq, Eq)]
struct Form {
    token: String,
    /// Baton's extension: answer once this node has applied these log
    /// positions (a revocation's `x-baton-consistency-token`, from any node).
    consistency_token: String,
}

/// RFC 7662 §2.1, RFC 7009 §2.1: a form with `token` (once) and optionally
/// `token_type_hint` and Baton's `consistency_token` (once each); other
/// parameters are ignored.
fn form_of(form: &[u8]) -> Result<Form, String> {
    let mut token = None;
    let mut consistency_token = None;
    let mut hint = None;
    for (name, value) in form_urlencoded::parse(form) {
        let slot = match name.as_ref() {
            "token" => &mut token,
            "token_type_hint" => &mut hint,
            "consistency_token" => &mut consistency_token,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{name}: given more than once"));
        }
        *slot = Some(value.into_owned());
    }
    match token {
        None => Err("token: missing".into()),
        Some(token) if token.is_empty() => Err("token: is empty".into()),
        Some(token) => Ok(Form {
            token,
            consistency_token: consistency_token.unwrap_or_default(),
        }),
    }
}

/// The header a revocation's answer carries its consistency token in.
pub const CONSISTENCY_TOKEN: &str = "x-baton-consistency-token";

async fn introspect<L: EventLog>(
    State(http): State<Arc<Http<L>>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (caller, form) = match oauth_form(&http, peer.as_deref(), &headers, INTROSPECT, body).await
    {
        Ok(called) => called,
        Err(refused) => return *refused,
    };
    let query = baton_node::IntrospectQuery {
        consistency_token: form.consistency_token,
        ..baton_node::IntrospectQuery::of(baton_node::Presented::Bearer(form.token.into_bytes()))
    };
    let answer = http
        .node
        .introspect(Some(&caller), query, baton_node::Walk::Chain)
        .await
        .map(|answer| {
            let jwt_issuer = answer.check.jwt_issuer.clone();
            (crate::wire::introspect_response(answer), jwt_issuer)
        });
    match answer {
        Ok((answer, jwt_issuer)) => {
            let answer = introspection(answer, jwt_issuer.as_deref());
            let decision = if answer["active"] == serde_json::Value::Bool(true) {
                bridge::Decision::Active
            } else {
                bridge::Decision::Inactive
            };
            decided(no_store(StatusCode::OK, answer), decision)
        }
        Err(failed) => failure(&failed),
    }
}

/// The form of an OAuth endpoint (introspection, revocation): its caller,
/// then its `token`, or the answer that refuses it. The body is read only
/// for a caller that may call, and must arrive within [`BODY_READ_MAX`]:
/// nobody unauthenticated holds a connection by trickling a body.
async fn oauth_form<L>(
    http: &Http<L>,
    peer: Option<&Peer>,
    headers: &HeaderMap,
    path: &str,
    body: axum::body::Body,
) -> Result<(Caller, Form), Box<Response>> {
    let caller = caller(http, peer, headers, path).map_err(|denied| Box::new(refused(&denied)))?;
    let bad = |why: &str| Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why));
    let form = match tokio::time::timeout(BODY_READ_MAX, axum::body::to_bytes(body, FORM_BYTES_MAX))
        .await
    {
        Ok(Ok(form)) => form,
        Ok(Err(_)) => {
            return Err(bad(&format!(
                "the body is unreadable or larger than {FORM_BYTES_MAX} bytes"
            )));
        }
        Err(_) => {
            return Err(bad(&format!(
                "the body did not arrive within {BODY_READ_MAX:?}"
            )));
        }
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
        return Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type: must be application/x-www-form-urlencoded",
        )));
    }
    let form = form_of(&form).map_err(|why| {
        Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &why,
        ))
    })?;
    Ok((caller, form))
}

/// RFC 7009: revokes the token (and so everything derived from it) when the
/// calling client could revoke it by signing itself; 200 also for a token
/// the ledger does not know or has revoked already (§2.2), and nothing is
/// appended then. A token outside the caller's authority is refused
/// (`unauthorized_client`), nothing appended.
async fn revoke<L: EventLog>(
    State(http): State<Arc<Http<L>>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (caller, form) = match oauth_form(&http, peer.as_deref(), &headers, REVOKE, body).await {
        Ok(called) => called,
        Err(refused) => return *refused,
    };
    let Some(delegate) = &http.delegate else {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "this node has no revocation delegate ([revocation] client_id and key_file)",
        );
    };
    let Some(requester) = caller.client.clone() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the caller's grant names no ledger client (client_id in its [[access]] grant): nothing says whose authority it revokes with",
        );
    };
    // First, everything the log holds now: a token issued at another node
    // a moment ago must not read as unknown here (and get a 200 with
    // nothing revoked).
    let caught_up = match http.node.log.end_offsets().await {
        Ok(ends) => http
            .node
            .handle
            .wait_for(
                &baton_log::ConsistencyToken::new(ends),
                http.node.limits.consistency_wait_max,
            )
            .await
            .map_err(crate::Error::from),
        Err(e) => Err(crate::Error::Unavailable(format!(
            "reading the log's end: {e}"
        ))),
    };
    if let Err(e) = caught_up {
        return failure(&e);
    }
    let mut query = baton_node::CheckQuery {
        consistency_token: form.consistency_token,
        ..baton_node::CheckQuery::of(baton_core::token_digest(form.token.as_bytes()))
    };
    // Unknown (by digest, or as a JWT that verifies) or revoked already:
    // the answer RFC 7009 gives for both, and no event.
    let token = match http.node.presented(&mut query, form.token.as_bytes()).await {
        Ok((check, _))
            if matches!(
                check.verdict,
                baton_node::Verdict::Unknown | baton_node::Verdict::Revoked
            ) =>
        {
            return decided(StatusCode::OK.into_response(), bridge::Decision::Unchanged);
        }
        Ok((_, token)) => token,
        Err(failed) => return failure(&failed),
    };
    let who = caller.principal.as_deref().unwrap_or("");
    let body = baton_core::Body::Revoked(baton_core::Revoked {
        target: baton_core::RevocationTarget::Token(token),
        reason: format!("RFC 7009 request by principal {:?}", baton_core::echo(who)),
        revoked_by: Some(delegate.client.clone()),
        requested_by: Some(requester),
    });
    let envelope = match baton_proto::sign(&delegate.key, crate::now_ms(), body) {
        Ok(envelope) => envelope,
        Err(e) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &format!("sealing the revocation: {e}"),
            );
        }
    };
    let deadline = crate::deadline::answer_by(
        &tonic::metadata::MetadataMap::new(),
        http.node.limits.request_timeout,
        tokio::time::Instant::now(),
    );
    match http
        .node
        // As signed events arrive on the wire: opened (every field
        // validated) like any other writer's.
        .append(
            crate::wire::Signed(vec![v1::SignedEvent::from(&envelope)]),
            Default::default(),
            deadline,
        )
        .await
    {
        Ok(appended) => {
            let mut response = StatusCode::OK.into_response();
            if let Ok(value) = HeaderValue::from_str(&appended.token.to_string()) {
                response.headers_mut().insert(CONSISTENCY_TOKEN, value);
            }
            decided(response, bridge::Decision::Revoked)
        }
        // Revoked meanwhile by someone else: revoked, as asked.
        Err(crate::Error::Refused { refusal, .. }) if refusal.rule == baton_core::Rule::Revoked => {
            decided(StatusCode::OK.into_response(), bridge::Decision::Unchanged)
        }
        Err(crate::Error::Refused { refusal, .. })
            if refusal.rule == baton_core::Rule::Unauthorized =>
        {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                &refusal.to_string(),
            )
        }
        Err(crate::Error::Refused { refusal, .. }) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &refusal.to_string(),
        ),
        Err(e) => failure(&e),
    }
}

/// RFC 7662 §2.2: `{"active": false}` and nothing else unless the token is
/// active and the caller serves its audience; then its claims, the
/// delegation chain as nested RFC 8693 `act` claims (the current actor —
/// the holder — outermost, each earlier holder inside), and Baton's own
/// members prefixed `baton_`.
/// RFC 7662's answer for a token. `iss` and `exp` are the token's own: for
/// a token known by a verified JWT's `jti`, that JWT's issuer and the sooner
/// of its `exp` and the ledger's expiry; otherwise the authorization server
/// that issued the chain's root grant and the ledger's expiry.
fn introspection(answer: v1::IntrospectResponse, jwt_issuer: Option<&str>) -> serde_json::Value {
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
        "iss": jwt_issuer.unwrap_or(&details.issuer),
        "exp": match check.expires_at_unix_s {
            0 => details.expires_at_unix_s,
            bounded => bounded,
        },
        "iat": details.issued_at_unix_s,
        "token_type": "Bearer",
        "baton_tools": details.tools,
        "baton_depth": details.depth,
        "baton_event_id": hex::encode(&check.event_id),
        "baton_consistency_token": check.consistency_token,
        "baton_view_confirmed_end": check.view_confirmed_end,
        "baton_view_confirmed_at_ms": check.view_confirmed_at_unix_ms,
        "baton_view_age_ms": check.view_age_ms,
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
    fn an_error_description_is_whole_words_in_the_characters_oauth_allows() {
        let said = "token: \"caf\u{e9}\" is not a JWT \\ nor known…";
        assert_eq!(
            error_description(said),
            "token: 'caf?' is not a JWT / nor known."
        );
        let long = "the caller's grant names no ledger client ".repeat(40);
        let cut = error_description(&long);
        assert!(cut.len() <= DESCRIPTION_BYTES_MAX, "{}", cut.len());
        assert!(cut.ends_with(" (truncated)"), "{cut}");
        let kept = cut.trim_end_matches(" (truncated)");
        assert!(
            long.starts_with(kept) && long[kept.len()..].starts_with(' '),
            "{cut}"
        );
        assert!(
            cut.bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        );
    }

    #[test]
    fn the_token_parameter_is_required_once() {
        let token = |form: &[u8]| form_of(form).map(|f| f.token);
        assert_eq!(
            token(b"token=a%2Bb&token_type_hint=access_token"),
            Ok("a+b".into())
        );
        assert_eq!(token(b"token=a+b&extra=1"), Ok("a b".into()));
        assert!(token(b"token=a&token=b").unwrap_err().starts_with("token:"));
        assert!(token(b"token=").unwrap_err().starts_with("token:"));
        assert!(token(b"hint=x").unwrap_err().starts_with("token:"));
        assert!(
            token(b"token=a&token_type_hint=x&token_type_hint=y")
                .unwrap_err()
                .starts_with("token_type_hint:")
        );
        assert_eq!(
            form_of(b"token=a&consistency_token=ct1.5"),
            Ok(Form {
                token: "a".into(),
                consistency_token: "ct1.5".into()
            })
        );
        assert!(
            form_of(b"token=a&consistency_token=1&consistency_token=2")
                .unwrap_err()
                .starts_with("consistency_token:")
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
        assert_eq!(
            introspection(revoked, None),
            serde_json::json!({"active": false})
        );
        // Active, but the caller may not see its details: inactive to it.
        let unseen = v1::IntrospectResponse {
            check: Some(v1::CheckResponse {
                status: v1::TokenStatus::Active as i32,
                ..Default::default()
            }),
            details: None,
        };
        assert_eq!(
            introspection(unseen, None),
            serde_json::json!({"active": false})
        );
    }
}
