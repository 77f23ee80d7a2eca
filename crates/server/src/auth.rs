//! The authorization layer: a tower layer in front of every service that
//! asks [`baton_access::grants::authorize`] about each call and refuses one
//! whose caller has no role for it; and the Watch stream's check of its
//! peer. Who may do what is decided in `baton-access`; this module only
//! reads the peer the listener attached and answers on the wire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use baton_access::grants::{
    Access, AccessHandle, Caller, Denied, Grant, Need, Role, authorize, local_principal, required,
};
use baton_access::identity::Identity;
use baton_access::routes::EXT_AUTHZ;

/// Why the authorization layer refused a caller of a method that answers
/// refusals itself: ext_authz, whose gateway must hear a denial in band (a
/// gRPC error would be let through by an Envoy set to `failure_mode_allow`).
#[derive(Debug, Clone)]
pub(crate) struct Refused(pub String);

/// Whether the peer that opened a Watch stream may have it
/// ([`baton_access::grants::may_watch`]); its refusal ends the stream.
pub(crate) fn may_watch(
    access: &Access,
    peer: Option<&crate::listener::Peer>,
) -> Result<(), crate::Error> {
    let identity = peer.map_or_else(
        || Arc::new(Identity::Anonymous),
        |peer| peer.identity.identity(),
    );
    baton_access::grants::may_watch(access, &identity, peer.and_then(|peer| peer.remote))
        .map_err(crate::Error::Denied)
}

/// The tower layer that puts [`authorize`] in front of every service.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    access: AccessHandle,
}

impl AuthorizeLayer {
    pub fn new(access: AccessHandle) -> Self {
        AuthorizeLayer { access }
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            access: self.access.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    access: AccessHandle,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Authorize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Every connection the listener hands out carries its peer; a
        // request without one is refused like an anonymous one.
        let peer = request.extensions().get::<crate::listener::Peer>();
        let remote = peer.and_then(|peer| peer.remote);
        let identity = peer.map_or_else(
            || Arc::new(Identity::Anonymous),
            |peer| peer.identity.identity(),
        );
        match authorize(&self.access.get(), &identity, remote, request.uri().path()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(denied) if request.uri().path() == EXT_AUTHZ => {
                request
                    .extensions_mut()
                    .insert(Refused(crate::error::message(&crate::Error::Denied(
                        denied,
                    ))));
                Box::pin(self.inner.call(request))
            }
            Err(denied) => Box::pin(std::future::ready(Ok(crate::error::status(
                crate::Error::Denied(denied),
            )
            .into_http()))),
        }
    }
}
