//! The one place where the node's errors become gRPC statuses (and, by
//! their code, the HTTP bridges' answers).

use baton_core::Rule;
use tonic::{Code, Status};

pub use baton_node::{Error, Result};

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

/// The status of an error: its code and bounded message, and for a rule's
/// refusal the rule in `baton-rule`. The one place statuses are made from
/// errors.
pub fn status(error: Error) -> Status {
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
