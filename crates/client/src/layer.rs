//! A tower [`Layer`] for an MCP server (axum, rmcp's streamable HTTP
//! service): every request's bearer token is checked with a [`Checker`] as
//! presented to this server's resource, before the server sees it. A denial
//! is the MCP authorization spec's — 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"` (and `resource_metadata` when configured) for a
//! token missing, revoked, expired, unknown or addressed elsewhere, 403
//! `insufficient_scope` for a scope or tool it lacks — decided by the same
//! rules as the node's gateway bridges (`baton_bridge`). When the checker
//! cannot answer (its feed stale past the bound, the node unreachable) the
//! request is refused with 503: fail closed. An allowed request carries
//! [`Authorized`] in its extensions: subject, holder, scopes, tools and the
//! chain, for the handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use baton_bridge::{Headers, Presented, Resource, Verdict};
use tower::{Layer, Service};

use crate::{Checker, Source, Status, TokenInfo};

/// The token an allowed request came with.
#[derive(Debug, Clone)]
pub struct Authorized(pub Arc<TokenInfo>);

impl Authorized {
    /// Scopes, tools, holder, subject, issuer and the chain (root first).
    pub fn details(&self) -> Option<&baton_proto::v1::TokenDetails> {
        self.0.details.as_ref()
    }
}

/// Guards a service with a [`Checker`]: see the module documentation.
#[derive(Debug, Clone)]
pub struct BatonLayer {
    checker: Checker,
    resource: Arc<Resource>,
}

impl BatonLayer {
    /// `resource`: this server's URL, the audience its tokens must carry,
    /// the scopes every request needs, its metadata URL.
    pub fn new(checker: Checker, resource: Resource) -> Self {
        BatonLayer {
            checker,
            resource: Arc::new(resource),
        }
    }

    /// The verdict for a request, and the token when allowed.
    async fn decide(&self, request: &http::request::Parts) -> (Verdict, Option<Arc<TokenInfo>>) {
        // The same request model as the node's bridges: each header once,
        // in its one form.
        let presented = match Presented::read(&Headers::of(&request.headers)) {
            Ok(presented) => presented,
            Err(refusal) => {
                return (baton_bridge::refused(Some(&self.resource), refusal), None);
            }
        };
        let token =
            match baton_bridge::admit_to(&self.resource, request.method.as_str(), &presented) {
                Ok(token) => token,
                Err(verdict) => return (verdict, None),
            };
        let answer = self
            .checker
            .check_bearer(token.as_bytes(), Some(&self.resource.audience))
            .await;
        if matches!(answer.source, Source::Stale | Source::Unavailable) {
            let why = if answer.source == Source::Stale {
                "Baton could not decide: its revocation feed is stale"
            } else {
                "Baton could not decide: the node did not answer"
            };
            let verdict = Verdict::Deny {
                status: 503,
                www_authenticate: None,
                reason: why.to_owned(),
            };
            return (verdict, None);
        }
        let details = answer.token.as_ref().and_then(|t| t.details.as_ref());
        let event_id = answer
            .token
            .as_ref()
            .map_or(&[][..], |t| t.event_id.as_slice());
        let verdict = baton_bridge::conclude(
            &self.resource,
            &presented,
            answer.status.to_wire(),
            details,
            event_id,
        );
        let allowed = matches!(verdict, Verdict::Allow(_)) && answer.status == Status::Active;
        (verdict, answer.token.filter(|_| allowed))
    }
}

impl<S> Layer<S> for BatonLayer {
    type Service = BatonService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BatonService {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service behind [`BatonLayer`].
#[derive(Debug, Clone)]
pub struct BatonService<S> {
    inner: S,
    layer: BatonLayer,
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> Service<http::Request<B>> for BatonService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    R: Default + Send,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Boxed<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this request; a clone
        // stays for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        let (mut parts, body) = request.into_parts();
        Box::pin(async move {
            let (verdict, token) = layer.decide(&parts).await;
            match (verdict, token) {
                (Verdict::Allow(_), Some(token)) => {
                    parts.extensions.insert(Authorized(token));
                    inner.call(http::Request::from_parts(parts, body)).await
                }
                (Verdict::Allow(_), None) => Ok(denial(503, None, "no token details")),
                (
                    Verdict::Deny {
                        status,
                        www_authenticate,
                        reason,
                    },
                    _,
                ) => Ok(denial(status, www_authenticate, &reason)),
            }
        })
    }
}

/// A denial: the status, the challenge, and the reason in
/// `x-baton-reason` (the body stays empty: its type is the server's).
fn denial<R: Default>(
    status: u16,
    www_authenticate: Option<String>,
    reason: &str,
) -> http::Response<R> {
    let mut response = http::Response::new(R::default());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    if let Some(value) = www_authenticate.and_then(|v| http::HeaderValue::from_str(&v).ok()) {
        headers.insert(http::header::WWW_AUTHENTICATE, value);
    }
    if let Ok(value) = http::HeaderValue::from_str(&baton_bridge::quotable(reason)) {
        headers.insert("x-baton-reason", value);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
