//! The node's one error type. Every message names the field and the reason;
//! the server turns each into a status in one place (its `error::code`).

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
