//! The one table of everything a node serves: each gRPC method and HTTP
//! route with what it is (service, method, kind), the role a caller needs,
//! and whether its service reports health. Authorization
//! ([`crate::grants::required`]), the server's metrics and traces (labels
//! and span names come from here, never from a request's path), its health
//! reporter and its HTTP router all read it; adding a route is one row (and,
//! for HTTP, its handler, which the router's exhaustive match asks for). The
//! server's `routes_served` test holds every method it serves to one row each.
//! Imports nothing from the rest of the crate.

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `LedgerService.Append`, RFC 7009 revocation.
    Writer,
    /// `RevocationService`: `Check`, `CheckBatch`, `Watch`, `Introspect`;
    /// ext_authz, forward-auth, RFC 7662 introspection.
    Checker,
    /// `ProvenanceService`: `GetChain`, `GetDescendants`, `ListEvents`, `ExportChain`.
    Auditor,
    /// Everything, including operator calls.
    Admin,
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing (health).
    Nothing,
    /// A verified principal with any role (reflection).
    AnyRole,
    Role(Role),
}

/// How a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unary,
    ServerStream,
    BidiStream,
    /// An HTTP/1 bridge route.
    Http(Bridge),
}

impl Kind {
    /// The `grpc_type` label of go-grpc-middleware's metrics.
    pub fn grpc_type(self) -> &'static str {
        match self {
            Kind::Unary | Kind::Http(_) => "unary",
            Kind::ServerStream => "server_stream",
            Kind::BidiStream => "bidi_stream",
        }
    }
}

/// The HTTP bridges, each one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// Forward-auth (any method).
    ForwardAuth,
    /// RFC 7662 introspection (POST).
    Introspect,
    /// RFC 7009 revocation (POST).
    Revoke,
    /// Readiness for HTTP probes (GET): 200 once the node serves.
    Health,
}

/// One row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// As a request names it: `/package.Service/Method`, or the HTTP path.
    pub path: &'static str,
    /// The gRPC service (`package.Service`), or `http` for a bridge.
    pub service: &'static str,
    /// The gRPC method, or the bridge's path: the metric label and span name.
    pub method: &'static str,
    pub kind: Kind,
    pub need: Need,
    /// Whether the service's health is reported (SERVING once caught up
    /// with the log) under its name.
    pub health: bool,
}

const fn grpc(
    path: &'static str,
    service: &'static str,
    method: &'static str,
    kind: Kind,
    need: Need,
    health: bool,
) -> Route {
    Route {
        path,
        service,
        method,
        kind,
        need,
        health,
    }
}

const fn http(path: &'static str, bridge: Bridge, need: Need) -> Route {
    Route {
        path,
        service: "http",
        method: path,
        kind: Kind::Http(bridge),
        need,
        health: false,
    }
}

use Kind::{BidiStream, ServerStream, Unary};
use Need::{AnyRole, Nothing};
const WRITER: Need = Need::Role(Role::Writer);
const CHECKER: Need = Need::Role(Role::Checker);
const AUDITOR: Need = Need::Role(Role::Auditor);
const ADMIN: Need = Need::Role(Role::Admin);

const LEDGER: &str = "baton.v1.LedgerService";
const REVOCATION: &str = "baton.v1.RevocationService";
const PROVENANCE: &str = "baton.v1.ProvenanceService";
const ADMIN_SERVICE: &str = "baton.v1.AdminService";
const EXT_AUTHZ_SERVICE: &str = "envoy.service.auth.v3.Authorization";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// The path of Envoy's ext_authz `Check`.
pub const EXT_AUTHZ: &str = "/envoy.service.auth.v3.Authorization/Check";
/// The path of `RevocationService.Watch`.
pub const WATCH: &str = "/baton.v1.RevocationService/Watch";
/// Forward-auth (any method).
pub const FORWARD_AUTH: &str = "/authz";
/// RFC 7662 introspection.
pub const INTROSPECT: &str = "/oauth2/introspect";
/// RFC 7009 revocation.
pub const REVOKE: &str = "/oauth2/revoke";
/// Readiness for HTTP probes: 200 once the node serves (has caught up with
/// the log), 503 before; open to all, like gRPC health.
pub const HEALTH: &str = "/healthz";

/// Everything a node serves.
pub const ROUTES: &[Route] = &[
    grpc(
        "/baton.v1.LedgerService/Append",
        LEDGER,
        "Append",
        Unary,
        WRITER,
        true,
    ),
    grpc(
        "/baton.v1.RevocationService/Check",
        REVOCATION,
        "Check",
        Unary,
        CHECKER,
        true,
    ),
    grpc(
        "/baton.v1.RevocationService/CheckBatch",
        REVOCATION,
        "CheckBatch",
        Unary,
        CHECKER,
        true,
    ),
    grpc(
        "/baton.v1.RevocationService/Introspect",
        REVOCATION,
        "Introspect",
        Unary,
        CHECKER,
        true,
    ),
    grpc(WATCH, REVOCATION, "Watch", ServerStream, CHECKER, true),
    grpc(
        "/baton.v1.ProvenanceService/GetChain",
        PROVENANCE,
        "GetChain",
        Unary,
        AUDITOR,
        true,
    ),
    grpc(
        "/baton.v1.ProvenanceService/GetDescendants",
        PROVENANCE,
        "GetDescendants",
        ServerStream,
        AUDITOR,
        true,
    ),
    grpc(
        "/baton.v1.ProvenanceService/ListEvents",
        PROVENANCE,
        "ListEvents",
        ServerStream,
        AUDITOR,
        true,
    ),
    grpc(
        "/baton.v1.ProvenanceService/ExportChain",
        PROVENANCE,
        "ExportChain",
        Unary,
        AUDITOR,
        true,
    ),
    grpc(
        "/baton.v1.AdminService/Status",
        ADMIN_SERVICE,
        "Status",
        Unary,
        ADMIN,
        false,
    ),
    grpc(
        "/baton.v1.AdminService/ListQuarantined",
        ADMIN_SERVICE,
        "ListQuarantined",
        Unary,
        ADMIN,
        false,
    ),
    grpc(
        "/baton.v1.AdminService/CreateSnapshot",
        ADMIN_SERVICE,
        "CreateSnapshot",
        ServerStream,
        ADMIN,
        false,
    ),
    grpc(EXT_AUTHZ, EXT_AUTHZ_SERVICE, "Check", Unary, CHECKER, false),
    grpc(
        "/grpc.health.v1.Health/Check",
        HEALTH_SERVICE,
        "Check",
        Unary,
        Nothing,
        false,
    ),
    grpc(
        "/grpc.health.v1.Health/Watch",
        HEALTH_SERVICE,
        "Watch",
        ServerStream,
        Nothing,
        false,
    ),
    grpc(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        REFLECTION,
        "ServerReflectionInfo",
        BidiStream,
        AnyRole,
        false,
    ),
    grpc(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        REFLECTION_ALPHA,
        "ServerReflectionInfo",
        BidiStream,
        AnyRole,
        false,
    ),
    http(FORWARD_AUTH, Bridge::ForwardAuth, CHECKER),
    http(INTROSPECT, Bridge::Introspect, CHECKER),
    http(REVOKE, Bridge::Revoke, WRITER),
    http(HEALTH, Bridge::Health, Nothing),
];

/// The row of `path`, if a node serves it.
pub fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.path == path)
}

/// The services whose health is reported, each once.
pub fn health_services() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .enumerate()
        .filter(|(i, route)| {
            route.health
                && !ROUTES[..*i]
                    .iter()
                    .any(|r| r.health && r.service == route.service)
        })
        .map(|(_, route)| route.service)
}

/// The HTTP bridge routes.
pub fn bridges() -> impl Iterator<Item = (&'static str, Bridge)> {
    ROUTES.iter().filter_map(|route| match route.kind {
        Kind::Http(bridge) => Some((route.path, bridge)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Health is reported for the node's three data services, each once.
    #[test]
    fn health_is_reported_for_the_data_services() {
        let services: Vec<&str> = health_services().collect();
        assert_eq!(services, [LEDGER, REVOCATION, PROVENANCE]);
    }
}
