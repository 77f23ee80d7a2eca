//! Envoy's external authorization service
//! (`envoy.service.auth.v3.Authorization/Check`) on the node's gRPC port:
//! the gateway decision of [`crate::bridge::decide`] for Envoy, Envoy AI
//! Gateway, agentgateway, Istio and anything else that speaks ext_authz.
//!
//! An allowed request goes upstream with the `x-baton-*` headers set
//! (overwriting any the client sent, so an MCP server can trust them); a
//! denied one is answered by Envoy with Baton's HTTP status (401 or 403),
//! `WWW-Authenticate` header and reason. A decision the node cannot make
//! (the log unreachable, a consistency wait timed out) is a denial too (503),
//! not a gRPC error: an Envoy set to `failure_mode_allow` would let a gRPC
//! error through. So is a gateway that may not ask (no certificate, no
//! checker role, bound to other audiences): a 500 in band, which blames the
//! gateway's configuration rather than the user. So is a request tonic
//! fails before `Check` runs (larger than `message_bytes_max`, malformed,
//! compressed in a way the node does not read): [`InBand`] turns the gRPC
//! error into the same 500 denial. Only a transport failure (and the node's
//! request timeout, far beyond Envoy's own) reaches `failure_mode_allow`.

use std::sync::Arc;

use baton_log::EventLog;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::{Request, Response, Status};

use crate::Node;
use crate::auth::{Caller, Refused};
use crate::bridge::{self, Headers, Refusal, Resources, Verdict};

pub(crate) struct ExtAuthz<L> {
    node: Arc<Node<L>>,
    resources: Resources,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl<L> ExtAuthz<L> {
    pub fn new(
        node: Arc<Node<L>>,
        resources: Resources,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Self {
        ExtAuthz {
            node,
            resources,
            metrics,
        }
    }
}

fn header(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

/// The request as Envoy describes it: the request line from its
/// attributes, the headers from `headers` (repeats joined with commas) or
/// from `header_map` (each copy, raw bytes), read by the one request model.
fn read_request(
    http: &envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
) -> Result<bridge::Request, Refusal> {
    let raw = http.header_map.iter().flat_map(|map| &map.headers);
    if !http.headers.is_empty() && raw.clone().next().is_some() {
        return Err(Refusal::Gateway(
            "ext_authz request with both headers and header_map: which does the upstream get?"
                .to_owned(),
        ));
    }
    let mut headers = Headers::new();
    for (name, value) in &http.headers {
        headers.push(name, value.as_bytes());
    }
    for header in raw {
        let value = if header.raw_value.is_empty() {
            header.value.as_bytes()
        } else {
            &header.raw_value
        };
        headers.push(&header.key, value);
    }
    bridge::Request::new(&http.scheme, &http.host, &http.path, &http.method, &headers)
}

#[tonic::async_trait]
impl<L: EventLog> Authorization for ExtAuthz<L> {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let refused = request.extensions().get::<Refused>().cloned();
        let http = request
            .into_inner()
            .attributes
            .and_then(|attributes| attributes.request)
            .and_then(|request| request.http)
            .unwrap_or_default();
        let verdict = match (caller, refused) {
            (Some(caller), None) => {
                bridge::decide(&self.node, &self.resources, &caller, read_request(&http)).await
            }
            // The gateway may not ask: a denial the end user gets as a 500
            // (the gateway's configuration, not the user's token), in band.
            (_, refused) => {
                bridge::gateway_refused(&refused.map_or("no caller".to_owned(), |r| r.0))
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.bridge_decided(crate::routes::EXT_AUTHZ, bridge::Decision::of(&verdict));
        }
        Ok(Response::new(answer(verdict)))
    }
}

/// A verdict as Envoy reads it.
fn answer(verdict: Verdict) -> CheckResponse {
    match verdict {
        Verdict::Allow(upstream) => CheckResponse {
            status: Some(rpc::Status {
                code: tonic::Code::Ok as i32,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: upstream
                    .into_iter()
                    .map(|(name, value)| header(name, value))
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        },
        Verdict::Deny {
            status,
            www_authenticate,
            reason,
        } => CheckResponse {
            status: Some(rpc::Status {
                code: if status == 401 {
                    tonic::Code::Unauthenticated
                } else {
                    tonic::Code::PermissionDenied
                } as i32,
                message: reason.clone(),
                ..Default::default()
            }),
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: i32::from(status),
                }),
                headers: www_authenticate
                    .map(|value| header("www-authenticate", value))
                    .into_iter()
                    .chain(
                        (status == 503)
                            .then(|| header("retry-after", bridge::RETRY_AFTER_S.to_owned())),
                    )
                    .chain([header(
                        "content-type",
                        "text/plain; charset=utf-8".to_owned(),
                    )])
                    .collect(),
                body: reason,
            })),
            ..Default::default()
        },
    }
}

/// What a gateway whose request tonic refused hears (the detail is logged).
pub(crate) const UNREADABLE: &str = "Baton could not read the gateway's ext_authz request (its size or encoding); the node's log says why";

/// The ext_authz service, with every gRPC error it would answer (a request
/// larger than `message_bytes_max`, malformed, or in an encoding the node
/// does not read: tonic refuses those before `Check` runs) answered in band
/// instead, as a 500 denial: an Envoy set to `failure_mode_allow` lets a
/// gRPC error through.
#[derive(Debug, Clone)]
pub(crate) struct InBand<S> {
    pub service: S,
    /// Where its denials are counted (`error`, as any 500 denial).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for InBand<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for InBand<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answered = self.service.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = answered.await?;
            // A failed call is trailers-only: its status is in the headers.
            let Some(code) = response
                .headers()
                .get("grpc-status")
                .filter(|code| code.as_bytes() != b"0")
            else {
                return Ok(response);
            };
            let message = response.headers().get("grpc-message");
            tracing::warn!(
                code = ?code,
                message = ?message,
                "an ext_authz request failed before Baton could decide: denied in band (500)"
            );
            let verdict = baton_bridge::misconfigured(UNREADABLE.to_owned());
            if let Some(metrics) = &metrics {
                metrics.bridge_decided(crate::routes::EXT_AUTHZ, bridge::Decision::of(&verdict));
            }
            Ok(grpc_ok(&answer(verdict)))
        })
    }
}

/// A successful unary gRPC answer carrying `message`.
fn grpc_ok(message: &impl prost::Message) -> http::Response<tonic::body::Body> {
    let encoded = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0); // not compressed
    framed.extend_from_slice(
        &u32::try_from(encoded.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&encoded);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let mut response = http::Response::new(tonic::body::Body::new(Unary {
        data: Some(bytes::Bytes::from(framed)),
        trailers: Some(trailers),
    }));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// One data frame, then the trailers.
struct Unary {
    data: Option<bytes::Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl http_body::Body for Unary {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = match self.data.take() {
            Some(data) => Some(http_body::Frame::data(data)),
            None => self.trailers.take().map(http_body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}
