//! Explicit bounds on everything an event may carry. A value past a bound is
//! refused with the field's name, never truncated.

/// Longest identifier: client ids, subjects, `jti`s, scopes, tools.
pub const ID_LEN_MAX: usize = 256;
/// Longest free-text or URL field: audiences, reasons, metadata URLs, session ids.
pub const TEXT_LEN_MAX: usize = 2048;
/// Most entries in any list: scopes, tools.
pub const LIST_LEN_MAX: usize = 256;
/// Most public keys a client registers or rotates in at once.
pub const KEYS_MAX: usize = 8;
/// Largest serialized event payload.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Default bound on delegation depth (a root grant has depth 0).
pub const DEPTH_MAX_DEFAULT: u32 = 16;
/// Default bound on how far an event's `created_at` may be ahead of the
/// appending node's clock (5 minutes).
pub const CREATED_AT_SKEW_MAX_MS_DEFAULT: i64 = 5 * 60 * 1000;
/// Hard ceiling on any configured depth bound: checks walk this many links at most.
pub const DEPTH_MAX_CEILING: u32 = 64;
/// Default bound on how far behind the appending node's clock an event's
/// `created_at` may be (an hour: a writer may buffer events through an outage
/// of the ledger, but may not back-date history).
pub const CREATED_AT_AGE_MAX_MS_DEFAULT: i64 = 60 * 60 * 1000;
/// Most events in one log record (an Append's batch, written as one record).
pub const BATCH_EVENTS_MAX: usize = 1000;
