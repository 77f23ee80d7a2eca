//! Who may call what on a Baton node, with no transport in sight: the
//! identities transports establish ([`identity`]), the route table every
//! gRPC method and HTTP route is one row of ([`routes`]), the grants and
//! roles and the decision on one call ([`grants`]), and JWT verification
//! for tokens known by `jti` ([`jwt`]). Depends on `baton-core` only; the
//! server's TLS, listener, authorization layer, bridges, metrics and traces
//! read from here.

pub mod grants;
pub mod identity;
pub mod jwt;
pub mod routes;
