//! The gateway decision: may this HTTP request, with this bearer token, go
//! to the resource it is addressed to? One function ([`decide`]) on top of
//! [`crate::revocation::introspect`], under both gateway bridges: HTTP
//! forward-auth (`http`) and Envoy's ext_authz (`ext_authz`).
//!
//! A request is mapped to its resource (the token audience it must carry)
//! by configuration: the longest [`Resource`] whose URL prefix covers the
//! request's scheme, host and path. MCP requests say what they do in the
//! `Mcp-Method` and `Mcp-Name` headers (streamable HTTP transport): a
//! `tools/call` goes through only when the named tool is among the token's
//! tools. Every denial is the MCP authorization spec's: 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` for a token that is
//! missing, revoked, expired, unknown or addressed elsewhere, 403 with
//! `error="insufficient_scope"` for a scope or tool the token lacks.

use std::collections::BTreeSet;
use std::sync::Arc;

use baton_log::EventLog;
use baton_proto::v1;
use tonic::Status;

use crate::Node;
use crate::auth::Caller;

/// A resource a gateway fronts, and the audience tokens presented to it
/// must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `scheme://host[:port]` and a path prefix (`https://mcp.example/mcp`):
    /// covers requests to that host whose path is the prefix or continues
    /// it after a `/`.
    pub url: String,
    /// The audience a token presented here must have.
    pub audience: String,
    /// Scopes every request here needs (besides the tool of a `tools/call`).
    pub scopes: BTreeSet<String>,
}

impl Resource {
    /// Checks the URL's shape; errors name the field.
    pub fn new(url: &str, audience: &str, scopes: BTreeSet<String>) -> Result<Resource, String> {
        let shaped = url.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.starts_with('/')
        });
        if !shaped || url.contains(['?', '#']) || url.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "url: {:?} must be http(s)://host[:port][/path], printable ASCII, no query",
                baton_core::echo(url)
            ));
        }
        if audience.is_empty() {
            return Err("audience: is empty".to_owned());
        }
        Ok(Resource {
            url: url.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            scopes,
        })
    }

    /// Whether this resource covers `target` (`scheme://host/path`, no query).
    fn covers(&self, target: &str) -> bool {
        target.strip_prefix(self.url.as_str()).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with('/') || self.url.ends_with("://") // never: url has a host
        })
    }
}

/// The resources every bridge maps requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(Vec<Resource>);

impl Resources {
    pub fn new(resources: Vec<Resource>) -> Resources {
        Resources(resources)
    }

    /// The resource `scheme://host` + `path` is addressed to: the one with
    /// the longest URL that covers it. Host names compare without case.
    fn find(&self, scheme: &str, host: &str, path: &str) -> Option<&Resource> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let target = format!(
            "{}://{}{path}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        );
        self.0
            .iter()
            .filter(|r| {
                let (origin, path) = split_origin(&r.url);
                Resource {
                    url: format!("{}{path}", origin.to_ascii_lowercase()),
                    ..(*r).clone()
                }
                .covers(&target)
            })
            .max_by_key(|r| r.url.len())
    }
}

/// `scheme://host[:port]` and the path after it.
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

/// An HTTP request as a gateway saw it.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    /// The `Authorization` header's value, if any.
    pub authorization: Option<&'a [u8]>,
    pub scheme: &'a str,
    pub host: &'a str,
    /// Path (a query is ignored).
    pub path: &'a str,
    pub mcp_method: Option<&'a str>,
    pub mcp_name: Option<&'a str>,
}

/// What to tell the gateway.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let it through, with these headers for the upstream.
    Allow(Vec<(&'static str, String)>),
    /// Answer the client with `status` (401 or 403), this
    /// `WWW-Authenticate` and `reason` as the body.
    Deny {
        status: u16,
        www_authenticate: String,
        reason: String,
    },
}

/// Headers the upstream (an MCP server) gets with an allowed request.
pub const SUBJECT: &str = "x-baton-subject";
pub const HOLDER: &str = "x-baton-holder";
pub const DEPTH: &str = "x-baton-depth";
pub const EVENT_ID: &str = "x-baton-event-id";

fn invalid_token(reason: String) -> Verdict {
    Verdict::Deny {
        status: 401,
        www_authenticate: format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            quotable(&reason)
        ),
        reason,
    }
}

fn insufficient_scope(scopes: &str, reason: String) -> Verdict {
    Verdict::Deny {
        status: 403,
        www_authenticate: format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", error_description=\"{}\"",
            quotable(scopes),
            quotable(&reason)
        ),
        reason,
    }
}

/// `text` as the inside of a quoted-string: printable ASCII, no quote or
/// backslash (anything else becomes `?`).
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// `text` as a header value: visible ASCII kept, everything else (and `%`)
/// percent-encoded as UTF-8, so a subject in any script survives intact.
fn header_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The bearer token of an `Authorization` header, if it has one.
fn bearer(authorization: Option<&[u8]>) -> Option<&[u8]> {
    let value = authorization?;
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
        .filter(|token| !token.is_empty())
}

/// An `Mcp-Name` header's value: as sent, or decoded when the client
/// base64-encoded it (`=?base64?…?=`, for names that are not plain ASCII).
/// Unreadable: empty, which no tool is named.
fn tool_name(raw: &str) -> String {
    use base64::Engine as _;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default(),
        None => raw.to_owned(),
    }
}

/// Decides one gateway request for `caller` (the gateway).
pub(crate) async fn decide<L: EventLog>(
    node: &Arc<Node<L>>,
    resources: &Resources,
    caller: Option<&Caller>,
    request: &Request<'_>,
) -> Result<Verdict, Status> {
    let Some(resource) = resources.find(request.scheme, request.host, request.path) else {
        // Not a resource anyone configured: nothing says what it needs.
        return Ok(Verdict::Deny {
            status: 403,
            www_authenticate: "Bearer".to_owned(),
            reason: format!(
                "no resource is configured for {}://{}{}",
                quotable(&baton_core::echo(request.scheme)),
                quotable(&baton_core::echo(request.host)),
                quotable(&baton_core::echo(
                    request.path.split(['?', '#']).next().unwrap_or("")
                ))
            ),
        });
    };
    let Some(token) = bearer(request.authorization) else {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        return Ok(Verdict::Deny {
            status: 401,
            www_authenticate: "Bearer".to_owned(),
            reason: "no bearer token".to_owned(),
        });
    };
    if token.len() > crate::revocation::BEARER_BYTES_MAX {
        return Ok(invalid_token(format!(
            "the token is longer than {} bytes",
            crate::revocation::BEARER_BYTES_MAX
        )));
    }
    let answer = crate::revocation::introspect(
        node,
        caller,
        v1::IntrospectRequest {
            bearer: token.to_vec(),
            presented_to: resource.audience.clone(),
            ..Default::default()
        },
    )
    .await?;
    let status = answer
        .check
        .as_ref()
        .map_or(v1::TokenStatus::Unspecified as i32, |check| check.status);
    let details = match (v1::TokenStatus::try_from(status), answer.details) {
        (Ok(v1::TokenStatus::Active), Some(details)) => details,
        (status, _) => {
            let why = match status {
                Ok(v1::TokenStatus::Revoked) => "the token is revoked",
                Ok(v1::TokenStatus::Expired) => "the token is expired",
                Ok(v1::TokenStatus::AudienceMismatch) => {
                    "the token is not addressed to this resource"
                }
                _ => "the token is not known",
            };
            return Ok(invalid_token(why.to_owned()));
        }
    };
    let missing: Vec<&str> = resource
        .scopes
        .iter()
        .filter(|scope| !details.scopes.contains(scope))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(" ");
        return Ok(insufficient_scope(
            &missing,
            format!("the token lacks scope {missing}"),
        ));
    }
    if request.mcp_method == Some("tools/call") {
        let tool = request.mcp_name.map(tool_name).unwrap_or_default();
        let tool = tool.as_str();
        if tool.is_empty() || !details.tools.iter().any(|t| t == tool) {
            let shown = quotable(&baton_core::echo(tool));
            return Ok(insufficient_scope(
                &shown,
                if tool.is_empty() {
                    "a tools/call without an Mcp-Name header".to_owned()
                } else {
                    format!("the token does not grant tool {shown}")
                },
            ));
        }
    }
    let event_id = answer
        .check
        .map(|check| hex::encode(check.event_id))
        .unwrap_or_default();
    Ok(Verdict::Allow(vec![
        (SUBJECT, header_value(&details.subject)),
        (HOLDER, header_value(&details.holder)),
        (DEPTH, details.depth.to_string()),
        (EVENT_ID, event_id),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(url: &str, audience: &str) -> Resource {
        Resource::new(url, audience, BTreeSet::new()).expect("valid")
    }

    #[test]
    fn requests_map_to_the_longest_covering_resource() {
        let resources = Resources::new(vec![
            resource("http://mcp.example/mcp", "https://a"),
            resource("http://mcp.example/mcp/b/", "https://b"),
            resource("https://MCP.example:8443", "https://c"),
        ]);
        let find = |scheme, host, path| {
            resources
                .find(scheme, host, path)
                .map(|r| r.audience.as_str())
        };
        assert_eq!(find("http", "mcp.example", "/mcp"), Some("https://a"));
        assert_eq!(find("http", "MCP.EXAMPLE", "/mcp/x?q=1"), Some("https://a"));
        assert_eq!(find("http", "mcp.example", "/mcp/b"), Some("https://b"));
        assert_eq!(
            find("http", "mcp.example", "/mcp/b/tools"),
            Some("https://b")
        );
        // A prefix ends at a path segment.
        assert_eq!(find("http", "mcp.example", "/mcpx"), None);
        assert_eq!(find("https", "mcp.example", "/mcp"), None);
        assert_eq!(find("http", "mcp.example.evil", "/mcp"), None);
        assert_eq!(
            find("https", "mcp.example:8443", "/anything"),
            Some("https://c")
        );
        assert_eq!(find("https", "mcp.example:84430", "/"), None);
        for bad in [
            "mcp.example/mcp",
            "ftp://x/",
            "http:///x",
            "http://x/?q",
            "http://x/ y",
        ] {
            assert!(Resource::new(bad, "a", BTreeSet::new()).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_from_the_bearer_scheme_only() {
        assert_eq!(bearer(Some(b"Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(Some(b"bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(Some(b"Basic abc")), None);
        assert_eq!(bearer(Some(b"Bearer ")), None);
        assert_eq!(bearer(Some(b"Bearerabc")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn header_values_and_quoted_strings_stay_in_ascii() {
        assert_eq!(header_value("alice@example"), "alice@example");
        assert_eq!(header_value("Zoë 50%"), "Zo%C3%AB%2050%25");
        assert_eq!(quotable("say \"hi\"\\\n"), "say ?hi???");
        assert_eq!(tool_name("echo"), "echo");
        assert_eq!(tool_name("=?base64?Wm/Dqw==?="), "Zoë");
        assert_eq!(tool_name("=?base64?***?="), "");
    }
}
