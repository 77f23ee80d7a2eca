//! The server's one error type, and the one place where domain errors become
//! gRPC statuses. Every message names the field and the reason.

use baton_core::Rule;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input (`field: reason`), optionally in event `index` of a batch.
    #[error("{}{source}", at(*index))]
    Invalid {
        index: Option<usize>,
        source: baton_core::Error,
    },
    /// A ledger rule refused event `index`.
    #[error("{}{refusal}", at(*index))]
    Refused {
        index: Option<usize>,
        refusal: baton_core::Refusal,
    },
    /// A request over one of the node's limits.
    #[error("{field}: {reason}")]
    Limit { field: &'static str, reason: String },
    /// The log refused a record: that record is not written (others of the
    /// batch may be; the message says how many).
    #[error("{0}")]
    NotWritten(String),
    /// The log's answer for a record is unknown: it may or may not be written.
    #[error("{0}")]
    Ambiguous(String),
    /// The projection did not reach a consistency token in time.
    #[error("{0}")]
    NotYet(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many concurrent streams (at most {0}); retry later")]
    Busy(usize),
    /// Written to the log, but this node's projection refused it when
    /// applying it (a race with a write it could not see).
    #[error("{0}")]
    NotApplied(String),
    /// The node cannot vouch for the log now (it has not reached it since it
    /// started, or its view is not fresh): it may miss what was appended.
    /// Check surfaces answer only what no missed record could change.
    #[error("{0}")]
    LogUnreachable(String),
    /// Something this answer needs (the log) cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// Another request is appending the same claim right now.
    #[error("{0}")]
    Conflict(String),
    #[error("internal: {0}")]
    Internal(String),
    /// The caller may not make this call ([`baton_access::grants::authorize`]).
    #[error("{0}")]
    Denied(baton_access::grants::Denied),
}

fn at(index: Option<usize>) -> String {
    index.map(|i| format!("events[{i}]: ")).unwrap_or_default()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<baton_projector::Error> for Error {
    fn from(e: baton_projector::Error) -> Self {
        match e {
            baton_projector::Error::NotYet { .. } => Error::NotYet(e.to_string()),
            baton_projector::Error::Invalid { field, reason } => Error::Limit { field, reason },
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<baton_log::Error> for Error {
    fn from(e: baton_log::Error) -> Self {
        match e {
            baton_log::Error::Token(reason) => Error::Limit {
                field: "consistency_token",
                reason,
            },
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Longest status message sent: `grpc-message` travels in a header, and a
/// message that grew with the caller's input would turn a refusal into a
/// transport error for stock clients. Values are quoted through
/// `baton_core::echo` where they are formatted; this is the backstop.
pub const MESSAGE_BYTES_MAX: usize = 1024;

fn bounded(mut message: String) -> String {
    if message.len() > MESSAGE_BYTES_MAX {
        let mut cut = MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("…(truncated)");
    }
    message
}

impl Error {
    /// What an Append that failed with this error did with its events, and
    /// the rule or cause (`baton_appends_total`'s labels): rejected (nothing
    /// appended: a ledger rule, malformed input or a limit), unknown (may or
    /// may not be appended), not_applied (appended, but this node's
    /// projection refused it), failed (not appended).
    pub fn append_outcome(&self) -> (&'static str, &'static str) {
        match self {
            Error::Refused { refusal, .. } => ("rejected", refusal.rule.as_str()),
            Error::Invalid { .. } => ("rejected", "invalid"),
            Error::Limit { .. } => ("rejected", "limit"),
            Error::Ambiguous(_) => ("unknown", ""),
            Error::NotApplied(_) => ("not_applied", ""),
            Error::NotWritten(_) => ("failed", "log-refused"),
            Error::NotYet(_) => ("failed", "deadline"),
            Error::Busy(_) | Error::Conflict(_) => ("failed", "conflict"),
            Error::LogUnreachable(_) | Error::Unavailable(_) => ("failed", "unavailable"),
            Error::NotFound(_) => ("failed", "not-found"),
            Error::Internal(_) => ("failed", "internal"),
            Error::Denied(_) => ("failed", "denied"),
        }
    }
}

/// The gRPC code of a ledger rule's refusal.
pub fn rule_code(rule: Rule) -> Code {
    match rule {
        Rule::Signature
        | Rule::NotNarrower
        | Rule::TooDeep
        | Rule::Inconsistent
        | Rule::FutureDated
        | Rule::BackDated => Code::InvalidArgument,
        Rule::Unauthorized | Rule::StaticGrant => Code::PermissionDenied,
        Rule::UnknownKey
        | Rule::UnknownClient
        | Rule::UnknownParent
        | Rule::Revoked
        | Rule::Expired => Code::FailedPrecondition,
        Rule::AlreadyExists => Code::AlreadyExists,
    }
}

/// The gRPC code of an error: the one table of them. The HTTP bridges map
/// their answers from it too ([`crate::http`]).
pub fn code(error: &Error) -> Code {
    match error {
        Error::Invalid { .. } | Error::Limit { .. } => Code::InvalidArgument,
        Error::Refused { refusal, .. } => rule_code(refusal.rule),
        Error::NotWritten(_) => Code::ResourceExhausted,
        Error::Ambiguous(_) | Error::Unavailable(_) | Error::LogUnreachable(_) => Code::Unavailable,
        Error::NotYet(_) => Code::DeadlineExceeded,
        Error::NotFound(_) => Code::NotFound,
        Error::Busy(_) => Code::ResourceExhausted,
        Error::Conflict(_) | Error::NotApplied(_) => Code::Aborted,
        Error::Internal(_) => Code::Internal,
        Error::Denied(baton_access::grants::Denied::Unauthenticated(_)) => Code::Unauthenticated,
        Error::Denied(baton_access::grants::Denied::PermissionDenied(_)) => Code::PermissionDenied,
    }
}

/// What an error says to a caller: its message within the bound.
pub fn message(error: &Error) -> String {
    bounded(error.to_string())
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let code = code(&error);
        if code == Code::Internal {
            tracing::error!(%error, "internal error");
        }
        let mut status = Status::new(code, message(&error));
        if let Error::Refused { refusal, .. } = &error
            && let Ok(rule) = refusal.rule.as_str().parse()
        {
            status.metadata_mut().insert("baton-rule", rule);
        }
        status
    }
}
