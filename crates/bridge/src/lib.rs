//! The MCP authorization decision for an HTTP request: may this request,
//! with this bearer token, go to the resource it is addressed to? Pure
//! functions, shared by everything that decides: the node's gateway
//! bridges (forward-auth, Envoy's ext_authz) and the client SDK's tower
//! layer in front of an MCP server. [`admit`] reads the request (before the
//! token is looked up); [`conclude`] judges the lookup's answer.
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

use baton_proto::v1;

pub mod fuzz;
pub mod path;
mod request;

pub use request::{Gateway, Headers, MCP_METHODS, Presented, Refusal, Request};

/// The longest bearer token looked up (16 KiB); longer is refused unread.
pub const BEARER_BYTES_MAX: usize = 16 * 1024;

/// A resource a gateway fronts, and the audience tokens presented to it
/// must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// As configured: `scheme://host[:port]` and a path prefix
    /// (`https://mcp.example/mcp`). It covers requests to that origin whose
    /// path is the prefix or continues it after a `/`.
    pub url: String,
    /// `scheme://host[:port]`, lower case, without the scheme's default port.
    origin: String,
    /// The path prefix, without a trailing `/` (empty: the whole origin).
    path: String,
    /// The audience a token presented here must have.
    pub audience: String,
    /// Scopes every request here needs (besides the tool of a `tools/call`).
    pub scopes: BTreeSet<String>,
    /// An MCP endpoint (the default): every request that is not a GET,
    /// HEAD, DELETE or OPTIONS must say what it does — `Mcp-Method`, and an
    /// `MCP-Protocol-Version` of 2026-07-28 or later, under which the MCP
    /// server refuses a body that disagrees with the headers. Without them
    /// a gateway, which never sees the body, could not tell a `tools/call`.
    pub mcp: bool,
    /// Its RFC 9728 protected-resource metadata, named in 401 answers
    /// (`resource_metadata`), as the MCP authorization spec asks.
    pub metadata_url: Option<String>,
}

/// The first MCP protocol version whose requests carry `Mcp-Method`.
pub const MCP_HEADERS_SINCE: &str = "2026-07-28";

/// The MCP protocol versions Baton knows; a request naming another is
/// refused (a server would refuse it too, or read it by rules Baton does
/// not know).
pub const MCP_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// `scheme://host[:port]` in one form: lower case, a host that is a DNS
/// name or an IP literal, the default port dropped.
pub(crate) fn origin(scheme: &str, authority: &str) -> Result<String, String> {
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => {
            return Err(format!(
                "scheme {:?} is not http or https",
                baton_core::echo(&scheme)
            ));
        }
    };
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']').ok_or("an IPv6 host without ']'")?;
            if inside.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("an IPv6 host that does not parse".into());
            }
            if !after.is_empty() && !after.starts_with(':') {
                return Err("text after an IPv6 host's ']' that is no port".into());
            }
            (&authority[..inside.len() + 2], after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority.as_str(), None),
        },
    };
    let named = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !named || host.ends_with('.') || host.starts_with('.') || host.contains("..") {
        return Err(format!(
            "host {:?} is not a DNS name (without a trailing dot) or IP address",
            baton_core::echo(host)
        ));
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) if port == default => Ok(format!("{scheme}://{host}")),
        Some(port)
            if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(format!("{scheme}://{host}:{port}"))
        }
        Some(port) => Err(format!("port {:?} is not a number", baton_core::echo(port))),
    }
}

impl Resource {
    /// A resource at `url` for tokens addressed to `audience`: no scopes
    /// required, an MCP endpoint, no metadata URL (set the fields to change
    /// that). Errors name the field.
    pub fn new(url: &str, audience: &str) -> Result<Resource, String> {
        let bad = |why: String| {
            format!(
                "url: {:?} must be http(s)://host[:port][/path] with no query: {why}",
                baton_core::echo(url)
            )
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme".into()))?;
        if url.contains(['?', '#']) {
            return Err(bad("a query or fragment".into()));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let origin = origin(scheme, authority).map_err(bad)?;
        if path.contains('%') || !path.is_ascii() {
            return Err(bad("write the path decoded, in ASCII".into()));
        }
        let path = path::normalise(if path.is_empty() { "/" } else { path })
            .map_err(bad)?
            .trim_end_matches('/')
            .to_owned();
        if audience.is_empty() {
            return Err("audience: is empty".to_owned());
        }
        Ok(Resource {
            url: url.to_owned(),
            origin,
            path,
            audience: audience.to_owned(),
            scopes: BTreeSet::new(),
            mcp: true,
            metadata_url: None,
        })
    }

    /// Whether this resource covers `path` at `origin` (both clean).
    fn covers(&self, origin: &str, path: &str) -> bool {
        origin == self.origin
            && path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The resources every bridge maps requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(Vec<Resource>);

impl Resources {
    pub fn new(resources: Vec<Resource>) -> Resources {
        Resources(resources)
    }

    /// The resource `request` is addressed to: the one with the longest
    /// path that covers it. A path that selects another resource (or none)
    /// when read still encoded than when decoded is refused: an upstream
    /// that does not decode, or decodes differently, would serve another.
    pub fn find(&self, request: &Request) -> Result<Option<&Resource>, String> {
        let pick = |path: &str| {
            self.0
                .iter()
                .enumerate()
                .filter(|(_, r)| r.covers(&request.origin, path))
                .max_by_key(|(_, r)| r.path.len())
        };
        let (decoded, raw) = (pick(&request.path), pick(&request.raw_path));
        if decoded.map(|(i, _)| i) != raw.map(|(i, _)| i) {
            let name = |r: Option<(usize, &Resource)>| {
                r.map_or("no resource".to_owned(), |(_, r)| {
                    format!("resource {}", r.url)
                })
            };
            return Err(format!(
                "path {:?} is {} when decoded but {} as sent; refused rather than guessed",
                quotable(&baton_core::echo(&request.raw_path)),
                name(decoded),
                name(raw)
            ));
        }
        Ok(decoded.map(|(_, r)| r))
    }
}

/// What to tell the gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through, with these headers for the upstream.
    Allow(Vec<(&'static str, String)>),
    /// Answer the client with `status` (400, 401, 403, or 503 when the
    /// node cannot decide now), this `WWW-Authenticate` and `reason` as the
    /// body. Every failure is a denial: a gateway told to let requests
    /// through when its authorization service errs still denies.
    Deny {
        status: u16,
        www_authenticate: Option<String>,
        reason: String,
    },
}

/// Headers the upstream (an MCP server) gets with an allowed request.
pub const SUBJECT: &str = "x-baton-subject";
pub const HOLDER: &str = "x-baton-holder";
pub const DEPTH: &str = "x-baton-depth";
pub const EVENT_ID: &str = "x-baton-event-id";

/// A `Bearer` challenge: `params` (already quoted), and the resource's
/// metadata URL when it has one (RFC 9728 §5.1).
pub fn challenge(resource: Option<&Resource>, params: &str) -> String {
    let metadata = resource
        .and_then(|r| r.metadata_url.as_deref())
        .map(|url| format!("resource_metadata=\"{}\"", quotable(url)));
    match (params.is_empty(), metadata) {
        (true, None) => "Bearer".to_owned(),
        (true, Some(metadata)) => format!("Bearer {metadata}"),
        (false, None) => format!("Bearer {params}"),
        (false, Some(metadata)) => format!("Bearer {params}, {metadata}"),
    }
}

fn invalid_token(resource: &Resource, reason: String) -> Verdict {
    Verdict::Deny {
        status: 401,
        www_authenticate: Some(challenge(
            Some(resource),
            &format!(
                "error=\"invalid_token\", error_description=\"{}\"",
                quotable(&reason)
            ),
        )),
        reason,
    }
}

fn insufficient_scope(resource: &Resource, scopes: &str, reason: String) -> Verdict {
    Verdict::Deny {
        status: 403,
        www_authenticate: Some(challenge(
            Some(resource),
            &format!(
                "error=\"insufficient_scope\", scope=\"{}\", error_description=\"{}\"",
                quotable(scopes),
                quotable(&reason)
            ),
        )),
        reason,
    }
}

fn invalid_request(resource: Option<&Resource>, reason: String) -> Verdict {
    Verdict::Deny {
        status: 400,
        www_authenticate: Some(challenge(
            resource,
            &format!(
                "error=\"invalid_request\", error_description=\"{}\"",
                quotable(&reason)
            ),
        )),
        reason,
    }
}

/// Methods that carry no MCP message a gateway would need to see.
fn bodiless(method: &str) -> bool {
    ["GET", "HEAD", "DELETE", "OPTIONS"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// `text` as the inside of a quoted-string: printable ASCII, no quote or
/// backslash (anything else becomes `?`).
pub fn quotable(text: &str) -> String {
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
pub fn header_value(text: &str) -> String {
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

/// The denial for a request refused before its token was looked up: 400
/// for the request, 500 for the gateway's misconfiguration (no client is
/// told it is at fault for what its gateway did).
pub fn refused(resource: Option<&Resource>, refusal: Refusal) -> Verdict {
    match refusal {
        Refusal::Request(reason) => invalid_request(resource, reason),
        Refusal::Gateway(reason) => misconfigured(reason),
    }
}

/// A denial for a gateway's misconfiguration (500, no challenge).
pub fn misconfigured(reason: String) -> Verdict {
    Verdict::Deny {
        status: 500,
        www_authenticate: None,
        reason,
    }
}

/// Reads a request before its token is looked up: the resource it is
/// addressed to (of those configured) and its bearer token, or the denial.
pub fn admit<'r, 'q>(
    resources: &'r Resources,
    request: &'q Request,
) -> Result<(&'r Resource, &'q str), Verdict> {
    let resource = match resources.find(request) {
        Ok(Some(resource)) => resource,
        Ok(None) => {
            // Not a resource anyone configured: nothing says what it needs.
            return Err(Verdict::Deny {
                status: 403,
                www_authenticate: Some("Bearer".to_owned()),
                reason: format!(
                    "no resource is configured for {}{}",
                    quotable(&request.origin),
                    quotable(&baton_core::echo(&request.raw_path))
                ),
            });
        }
        Err(why) => return Err(invalid_request(None, why)),
    };
    Ok((
        resource,
        admit_to(resource, &request.method, &request.presented)?,
    ))
}

/// Reads a request to `resource` (a server that is the resource knows it
/// without mapping) before its token is looked up: its bearer token, or the
/// denial (no token, a token over the size bound, an MCP request that does
/// not say unambiguously what it does).
pub fn admit_to<'q>(
    resource: &Resource,
    method: &str,
    presented: &'q Presented,
) -> Result<&'q str, Verdict> {
    let Some(token) = presented.bearer.as_deref() else {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        return Err(Verdict::Deny {
            status: 401,
            www_authenticate: Some(challenge(Some(resource), "")),
            reason: "no bearer token".to_owned(),
        });
    };
    if token.len() > BEARER_BYTES_MAX {
        return Err(invalid_token(
            resource,
            format!("the token is longer than {BEARER_BYTES_MAX} bytes"),
        ));
    }
    // Methods are case-sensitive: `get` is not GET to a server.
    request::method(method).map_err(|refusal| refused(Some(resource), refusal))?;
    if resource.mcp {
        mcp_described(method, presented).map_err(|why| invalid_request(Some(resource), why))?;
    }
    Ok(token)
}

/// Whether an MCP request says unambiguously what it does: a known protocol
/// version when it names one; for every method that carries a message (not
/// GET, HEAD, DELETE or OPTIONS) `Mcp-Method` and a version of
/// [`MCP_HEADERS_SINCE`] or later (older servers do not check the body
/// against the headers); a `tools/call` names its tool.
fn mcp_described(method: &str, presented: &Presented) -> Result<(), String> {
    let version = presented.mcp_protocol_version.as_deref();
    if let Some(version) = version
        && !MCP_VERSIONS.contains(&version)
    {
        return Err(format!(
            "MCP-Protocol-Version: {:?} is not a version Baton knows ({})",
            quotable(&baton_core::echo(version)),
            MCP_VERSIONS.join(", ")
        ));
    }
    if !bodiless(method) {
        let described = presented.mcp_method.is_some() && version >= Some(MCP_HEADERS_SINCE);
        if !described {
            return Err(format!(
                "an MCP request must carry Mcp-Method and MCP-Protocol-Version {MCP_HEADERS_SINCE} or later, so that the gateway knows what it does"
            ));
        }
    }
    if presented.mcp_method.as_deref() == Some("tools/call") && presented.mcp_name.is_none() {
        return Err("a tools/call without an Mcp-Name header".to_owned());
    }
    Ok(())
}

/// The verdict once the token presented to `resource` was looked up:
/// `status` (the wire `TokenStatus`), and its details when it is known.
pub fn conclude(
    resource: &Resource,
    presented: &Presented,
    status: i32,
    details: Option<&v1::TokenDetails>,
    event_id: &[u8],
) -> Verdict {
    let details = match (v1::TokenStatus::try_from(status), details) {
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
            return invalid_token(resource, why.to_owned());
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
        return insufficient_scope(
            resource,
            &missing,
            format!("the token lacks scope {missing}"),
        );
    }
    if presented.mcp_method.as_deref() == Some("tools/call") {
        let tool = presented.mcp_name.as_deref().unwrap_or_default();
        if tool.is_empty() || !details.tools.iter().any(|t| t == tool) {
            let shown = quotable(&baton_core::echo(tool));
            return insufficient_scope(
                resource,
                &shown,
                if tool.is_empty() {
                    "a tools/call without an Mcp-Name header".to_owned()
                } else {
                    format!("the token does not grant tool {shown}")
                },
            );
        }
    }
    Verdict::Allow(vec![
        (SUBJECT, header_value(&details.subject)),
        (HOLDER, header_value(&details.holder)),
        (DEPTH, details.depth.to_string()),
        (EVENT_ID, hex::encode(event_id)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(url: &str, audience: &str) -> Resource {
        Resource::new(url, audience).expect("valid")
    }

    fn request(scheme: &str, host: &str, target: &str) -> Result<Request, Refusal> {
        Request::new(scheme, host, target, "GET", &Headers::new())
    }

    #[test]
    fn requests_map_to_the_longest_covering_resource() {
        let resources = Resources::new(vec![
            resource("http://mcp.example/mcp", "https://a"),
            resource("http://mcp.example/mcp/b/", "https://b"),
            resource("https://MCP.example:8443", "https://c"),
            resource("https://[::1]:443/x", "https://d"),
        ]);
        let find = |scheme, host, path| {
            let request = request(scheme, host, path).map_err(|r| r.reason().to_owned())?;
            resources
                .find(&request)
                .map(|r| r.map(|r| r.audience.as_str()))
        };
        assert_eq!(find("http", "mcp.example", "/mcp"), Ok(Some("https://a")));
        assert_eq!(
            find("HTTP", "MCP.EXAMPLE:80", "/mcp/x?q=1"),
            Ok(Some("https://a"))
        );
        assert_eq!(find("http", "mcp.example", "/mcp/b"), Ok(Some("https://b")));
        assert_eq!(
            find("http", "mcp.example", "/mcp/b/tools"),
            Ok(Some("https://b"))
        );
        // A prefix ends at a path segment; origins match whole.
        assert_eq!(find("http", "mcp.example", "/mcpx"), Ok(None));
        assert_eq!(find("https", "mcp.example", "/mcp"), Ok(None));
        assert_eq!(find("http", "mcp.example.evil", "/mcp"), Ok(None));
        assert_eq!(
            find("https", "mcp.example:8443", "/anything"),
            Ok(Some("https://c"))
        );
        assert_eq!(find("https", "mcp.example:84430", "/"), Ok(None));
        assert_eq!(find("https", "[::1]", "/x/y"), Ok(Some("https://d")));
        // Encoded characters that decode inside one resource are that
        // resource's; a path that is one resource decoded and another as
        // sent is refused (the bypass: /mcp/%62 served as /mcp/b).
        assert_eq!(
            find("http", "mcp.example", "/mcp/b/%74ools"),
            Ok(Some("https://b"))
        );
        for path in ["/mcp/%62", "/mcp/%62/x", "/%6dcp", "/mcp%2fb"] {
            assert!(find("http", "mcp.example", path).is_err(), "{path}");
        }
        // Paths a normalising server would read as another are refused,
        // as are hosts that are no host.
        for path in [
            "/mcp/./b/x",
            "/mcp//b/x",
            "/mcp/%62/../b",
            "/mcp/z/../b/x",
            "/mcp/%2e%2e/b",
            "/mcp\\b",
            "/mcp;x/b",
            "mcp",
        ] {
            assert!(find("http", "mcp.example", path).is_err(), "{path}");
        }
        for host in [
            "mcp.example/mcp",
            "u@mcp.example",
            "mcp.example:x",
            "mcp.example.",
            "[::1",
            "[zz]",
            "[::1]evil",
            "",
        ] {
            assert!(find("http", host, "/mcp").is_err(), "{host}");
        }
        for bad in [
            "mcp.example/mcp",
            "ftp://x/",
            "http:///x",
            "http://x/?q",
            "http://x/ y",
            "http://x/a/../b",
            "http://x/%61",
            "http://x/a;b",
        ] {
            assert!(Resource::new(bad, "a").is_err(), "{bad}");
        }
    }

    fn presented(method: Option<&str>, name: Option<&str>, version: Option<&str>) -> Presented {
        Presented {
            bearer: Some("abc".to_owned()),
            mcp_method: method.map(str::to_owned),
            mcp_name: name.map(str::to_owned),
            mcp_protocol_version: version.map(str::to_owned),
        }
    }

    #[test]
    fn an_mcp_request_says_unambiguously_what_it_does() {
        let mcp = resource("http://mcp.example/mcp", "https://a");
        let v = Some("2026-07-28");
        let admitted = |method: &str, p: &Presented| admit_to(&mcp, method, p).is_ok();
        assert!(admitted("POST", &presented(Some("tools/list"), None, v)));
        assert!(admitted(
            "POST",
            &presented(Some("tools/call"), Some("echo"), v)
        ));
        assert!(admitted("GET", &presented(None, None, None)));
        assert!(admitted(
            "DELETE",
            &presented(None, None, Some("2025-06-18"))
        ));
        // Without Mcp-Method, with an older or unknown version, a tools/call
        // without its tool: refused.
        assert!(!admitted("POST", &presented(None, None, v)));
        assert!(!admitted(
            "POST",
            &presented(Some("tools/list"), None, Some("2025-11-25"))
        ));
        assert!(!admitted(
            "POST",
            &presented(Some("tools/list"), None, None)
        ));
        for unknown in ["2026-07-29", "2099-01-01", "9999-99-99", "2026-7-28"] {
            assert!(
                !admitted("POST", &presented(Some("tools/list"), None, Some(unknown))),
                "{unknown}"
            );
            assert!(
                !admitted("GET", &presented(None, None, Some(unknown))),
                "{unknown}"
            );
        }
        assert!(!admitted("POST", &presented(Some("tools/call"), None, v)));
        assert!(!admitted("GET", &presented(Some("tools/call"), None, None)));
        // Not an MCP endpoint: the MCP headers are not asked for.
        let mut plain = mcp.clone();
        plain.mcp = false;
        assert!(admit_to(&plain, "POST", &presented(None, None, None)).is_ok());
        // A gateway's misconfiguration is a 500, never the client's 4xx.
        let Verdict::Deny { status, .. } = refused(None, Refusal::Gateway("x".into())) else {
            panic!("allowed");
        };
        assert_eq!(status, 500);
    }

    #[test]
    fn header_values_and_quoted_strings_stay_in_ascii() {
        assert_eq!(header_value("alice@example"), "alice@example");
        assert_eq!(header_value("Zoë 50%"), "Zo%C3%AB%2050%25");
        assert_eq!(quotable("say \"hi\"\\\n"), "say ?hi???");
    }
}
