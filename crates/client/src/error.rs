//! What the SDK reports: every refusal names the field (or file) and the
//! rule, as the node's own refusals do.

use std::path::PathBuf;

/// An SDK error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input refused before anything was sent (the core's own validation:
    /// field and rule).
    #[error(transparent)]
    Invalid(#[from] baton_core::Error),
    /// A key file that cannot be used.
    #[error("key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    /// A connection setting that cannot work.
    #[error("{field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// The node could not be reached.
    #[error("connecting to {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The node answered with an error, `CODE_NAME: message` as it phrased it.
    #[error("{}", status_text(.0))]
    Status(#[from] tonic::Status),
    /// The node's answer did not say what it must.
    #[error("the node's answer: {0}")]
    Answer(String),
}

/// Shorthand.
impl From<baton_core::Invalid> for Error {
    fn from(invalid: baton_core::Invalid) -> Self {
        Error::Invalid(invalid.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A gRPC status as `CODE_NAME: message`.
pub fn status_text(status: &tonic::Status) -> String {
    let name = format!("{:?}", status.code());
    let mut upper = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            upper.push('_');
        }
        upper.push(c.to_ascii_uppercase());
    }
    format!("{upper}: {}", status.message())
}
