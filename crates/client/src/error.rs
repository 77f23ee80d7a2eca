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
    /// The node could not be reached: what failed, once, and the likely
    /// cause and fix ([`diagnose`]).
    #[error("cannot connect to {server}: {}", diagnose(server, cause))]
    Connect {
        server: String,
        cause: tonic::transport::Error,
    },
    /// The node answered with an error, `CODE_NAME: message` as it phrased
    /// it (said once: the status is not also a source).
    #[error("{}", status_text(.0))]
    Status(tonic::Status),
    /// The node's answer did not say what it must.
    #[error("the node's answer: {0}")]
    Answer(String),
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(status)
    }
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
    match status_hint(status) {
        Some(hint) => format!("{upper}: {} ({hint})", status.message()),
        None => format!("{upper}: {}", status.message()),
    }
}

/// Why a connection to `server` failed, said once (the transport repeats
/// each cause in its chain), with the likely cause and the fix.
pub fn diagnose(server: &str, cause: &(dyn std::error::Error + 'static)) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut next = Some(cause);
    while let Some(error) = next {
        let text = error.to_string();
        if !said.iter().any(|s| s == &text || s.ends_with(&text)) {
            said.push(text);
        }
        next = error.source();
    }
    let innermost = said.last().cloned().unwrap_or_default();
    let lower = innermost.to_ascii_lowercase();
    let tls = server.starts_with("https://");
    let hint = if lower.contains("connection refused") {
        "nothing is listening there: is the node running, and is this its --listen address (and port)?"
    } else if lower.contains("scheme is missing") || lower.contains("invalid uri") {
        "write the address with its scheme: http://HOST:PORT, or https://HOST:PORT for a node with TLS"
    } else if lower.contains("unknownissuer") || lower.contains("invalid peer certificate") {
        "the node's certificate does not chain to the CA given (--ca, BATON_CA): give the CA that signed it"
    } else if lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("wrong version number")
    {
        "the node does not speak TLS on this port: use http://"
    } else if lower.contains("dns") || lower.contains("lookup") {
        "the host name does not resolve"
    } else if lower.contains("timed out") || lower.contains("deadline") {
        "no answer in time: the host or port may be wrong, or a firewall drops the connection"
    } else if !tls {
        "if the node serves TLS, use https:// and --ca"
    } else {
        ""
    };
    if hint.is_empty() {
        innermost
    } else {
        format!("{innermost} ({hint})")
    }
}

/// A status that says only that the connection ended before an answer
/// (what a plaintext client gets from a TLS node, or from anything that is
/// not a gRPC server): the likely cause and the fix.
pub fn status_hint(status: &tonic::Status) -> Option<&'static str> {
    let transport = matches!(status.code(), tonic::Code::Cancelled | tonic::Code::Unknown)
        && (status.message().contains("operation was canceled")
            || status.message().contains("transport error")
            || status.message().contains("h2 protocol error"));
    transport.then_some(
        "the connection ended before an answer: if the node serves TLS, use https:// and --ca (BATON_CA); otherwise check that this is a Baton node's gRPC address",
    )
}
