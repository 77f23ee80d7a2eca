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
//! error through. Only a transport failure reaches that setting.

use std::collections::HashMap;
use std::sync::Arc;

use baton_log::EventLog;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::{Request, Response, Status};

use crate::Node;
use crate::auth::Caller;
use crate::bridge::{self, Resources, Verdict};

pub(crate) struct ExtAuthz<L> {
    node: Arc<Node<L>>,
    resources: Resources,
}

impl<L> ExtAuthz<L> {
    pub fn new(node: Arc<Node<L>>, resources: Resources) -> Self {
        ExtAuthz { node, resources }
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

/// The request's headers, lower-case names: Envoy sends them in `headers`,
/// or in `header_map` when told to send raw header values.
fn headers(
    http: &envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
) -> HashMap<String, String> {
    if !http.headers.is_empty() {
        return http
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
    }
    http.header_map
        .iter()
        .flat_map(|map| &map.headers)
        .map(|h| {
            let value = if h.raw_value.is_empty() {
                h.value.clone()
            } else {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            };
            (h.key.to_ascii_lowercase(), value)
        })
        .collect()
}

#[tonic::async_trait]
impl<L: EventLog> Authorization for ExtAuthz<L> {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let http = request
            .into_inner()
            .attributes
            .and_then(|attributes| attributes.request)
            .and_then(|request| request.http)
            .unwrap_or_default();
        let headers = headers(&http);
        let get = |name: &str| headers.get(name).map(String::as_str);
        let verdict = bridge::decide(
            &self.node,
            &self.resources,
            caller.as_ref(),
            &bridge::Request {
                authorization: get("authorization").map(str::as_bytes),
                scheme: &http.scheme,
                host: &http.host,
                path: &http.path,
                method: &http.method,
                mcp_method: get("mcp-method"),
                mcp_name: get("mcp-name"),
                mcp_protocol_version: get("mcp-protocol-version"),
            },
        )
        .await;
        let response = match verdict {
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
                        .chain([header(
                            "content-type",
                            "text/plain; charset=utf-8".to_owned(),
                        )])
                        .collect(),
                    body: reason,
                })),
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }
}
