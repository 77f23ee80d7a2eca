//! `baton-client`: Baton's Rust SDK.
//!
//! - [`Endpoint`] / [`Client`]: typed clients of every service, plaintext,
//!   TLS or mTLS;
//! - [`events`]: the signer (from a key file) and the event builders, the
//!   one place events are assembled and signed;
//! - [`exchange()`]: a token exchange (RFC 8693) recorded where it happens;
//! - [`Checker`]: a local, Watch-fed cache of token answers that fails
//!   closed;
//! - [`BatonLayer`]: a tower layer that guards an MCP server (axum, rmcp)
//!   with a checker, answering as the MCP authorization spec asks.

mod checker;
mod connect;
mod error;
pub mod events;
mod exchange;
pub mod keys;
mod layer;

/// What a [`BatonLayer`] guards: a resource's URL, audience and required scopes.
pub use baton_bridge::Resource;
pub use checker::{
    Answer, Checker, CheckerConfig, Clock, ManualClock, Source, Stats, Status, SystemClock,
    TokenInfo,
};
pub use connect::{Appended, Appends, Client, Endpoint, append_request};
pub use error::{Error, Result, diagnose, status_hint, status_text};
pub use exchange::{Exchange, Exchanged, exchange};
pub use layer::{Authorized, BatonLayer, BatonService};
