//! The core's one error type. Every message names the field and the reason, in
//! lowercase with the offending values, because it travels unchanged to the
//! gRPC status a writer sees.

use std::fmt;

use crate::ids::{ClientId, EventId, TokenRef};
use crate::keys::KeyId;

/// Errors from building, decoding or checking events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input that is malformed on its face: missing, too long, wrong length, bad charset.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A well-formed event that a ledger rule refuses.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::invalid::Invalid> for Error {
    fn from(invalid: crate::invalid::Invalid) -> Self {
        Error::Invalid {
            field: invalid.field,
            reason: invalid.reason,
        }
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path, so nested conversions report `token_issued.scopes[3]`.
    pub fn within(self, outer: &str) -> Self {
        match self {
            Error::Invalid { field, reason } => Error::Invalid {
                field: format!("{outer}.{field}"),
                reason,
            },
            refused => refused,
        }
    }
}

/// Which rule refused an event: the server maps this, and only this, to a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The signature does not verify, or names another key or payload type.
    Signature,
    /// The signing key is not registered.
    UnknownKey,
    /// The signer may not sign this event (wrong client, role, kind, or not a trust root).
    Unauthorized,
    /// A client the event names is not registered.
    UnknownClient,
    /// The parent token is not in the ledger.
    UnknownParent,
    /// The client, token or key already exists with other content.
    AlreadyExists,
    /// The child would be wider than its parent or its holder's ceiling.
    NotNarrower,
    /// The chain would be deeper than the configured bound.
    TooDeep,
    /// A static-key grant tries to carry a user.
    StaticGrant,
    /// A link names the wrong root, depth, subject or time.
    Inconsistent,
    /// Something the event depends on is revoked or retired.
    Revoked,
    /// Something the event depends on has expired.
    Expired,
    /// The event is dated further ahead of the appending node's clock than
    /// the configured skew allows.
    FutureDated,
    /// The event is dated further behind the appending node's clock than the
    /// configured age allows.
    BackDated,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Signature => "signature",
            Rule::UnknownKey => "unknown-key",
            Rule::Unauthorized => "unauthorized",
            Rule::UnknownClient => "unknown-client",
            Rule::UnknownParent => "unknown-parent",
            Rule::AlreadyExists => "already-exists",
            Rule::NotNarrower => "not-narrower",
            Rule::TooDeep => "too-deep",
            Rule::StaticGrant => "static-grant",
            Rule::Inconsistent => "inconsistent",
            Rule::Revoked => "revoked",
            Rule::Expired => "expired",
            Rule::FutureDated => "future-dated",
            Rule::BackDated => "back-dated",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ledger rule's refusal of one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason} (rule {rule})")]
pub struct Refusal {
    pub rule: Rule,
    pub field: &'static str,
    pub reason: String,
    /// What has not been seen (yet), when that is why: the event may become
    /// well-founded once it arrives ([`Refusal::is_missing_dependency`]).
    pub missing: Option<Dependency>,
}

impl Refusal {
    pub fn new(rule: Rule, field: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            rule,
            field,
            reason: reason.into(),
            missing: None,
        }
    }

    /// A refusal because `dependency` is not in the ledger (yet). Its rule
    /// follows from what is missing.
    pub fn missing(dependency: Dependency, field: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            rule: dependency.rule(),
            field,
            reason: reason.into(),
            missing: Some(dependency),
        }
    }

    /// Whether the refusal only says that something the event depends on has
    /// not arrived (yet). A projector reading several partitions parks such an
    /// event until what it names has been applied, rather than quarantining it.
    pub fn is_missing_dependency(&self) -> bool {
        self.missing.is_some()
    }
}

/// A fact an event depends on, named the way a projector learns it arrived:
/// every applied event supplies what [`Dependency::supplied_by`] lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    /// A signing key: registered with a client or added by a rotation.
    Key(KeyId),
    /// A registered client.
    Client(ClientId),
    /// A token's event (a root grant or a hop).
    Event(EventId),
    /// A token by its reference.
    Token(TokenRef),
}

impl Dependency {
    pub fn rule(&self) -> Rule {
        match self {
            Dependency::Key(_) => Rule::UnknownKey,
            Dependency::Client(_) => Rule::UnknownClient,
            Dependency::Event(_) | Dependency::Token(_) => Rule::UnknownParent,
        }
    }
}

/// Most characters of a caller's value quoted back in a message.
pub const ECHO_CHARS_MAX: usize = 64;

/// A caller's value as an error message may quote it: at most
/// [`ECHO_CHARS_MAX`] characters, then how long it really was. Every message
/// that echoes input goes through this, so no answer grows with the input.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS_MAX) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}…({} bytes)", &value[..cut], value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_bounds_what_it_quotes() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(1_000_000);
        let quoted = echo(&long);
        assert!(quoted.chars().count() < ECHO_CHARS_MAX + 20, "{quoted}");
        assert!(quoted.ends_with("…(2000000 bytes)"));
    }
}
