//! One request model: what a gateway sends (forward-auth headers, Envoy's
//! ext_authz attributes with its `headers` or `header_map`) or what a
//! server received (the SDK's tower layer), read once, strictly, into the
//! request the upstream will serve — or refused with the reason.
//!
//! Every header Baton decides on must arrive once, as visible ASCII with no
//! surrounding white space and, where its grammar has no comma, without
//! one: a repeated header is one the upstream may read in another copy,
//! and a comma is how Envoy's `headers` map joins repeats. Which headers
//! carry the original request is fixed by the [`Gateway`] profile; the
//! headers of another family are refused when present, since the gateway
//! in front did not set them — a client did.

use std::str::FromStr;

use crate::path;

/// Why a request was refused before its token was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed or ambiguous: 400 to the client.
    Request(String),
    /// The gateway did not send what its profile says it must: a
    /// misconfiguration, answered 500 so that no client is blamed for it.
    Gateway(String),
}

impl Refusal {
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Request(reason) | Refusal::Gateway(reason) => reason,
        }
    }
}

/// The gateway in front of a forward-auth listener: which headers carry the
/// request it is deciding about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gateway {
    /// Exactly one family, `X-Original-URI` and `X-Original-Method`, or
    /// `X-Forwarded-Uri` and `X-Forwarded-Method`; the gateway must set
    /// (overwrite) both, or a client could choose the method judged.
    #[default]
    Generic,
    /// nginx `auth_request`: `X-Original-URI` and `X-Original-Method`.
    Nginx,
    /// Traefik `forwardAuth`: `X-Forwarded-Uri` and `X-Forwarded-Method`.
    Traefik,
    /// Caddy `forward_auth`: `X-Forwarded-Uri` and `X-Forwarded-Method`.
    Caddy,
    /// Envoy: decides over ext_authz only; forward-auth is refused.
    Envoy,
}

impl Gateway {
    pub const ALL: [Gateway; 5] = [
        Gateway::Generic,
        Gateway::Nginx,
        Gateway::Traefik,
        Gateway::Caddy,
        Gateway::Envoy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gateway::Generic => "generic",
            Gateway::Nginx => "nginx",
            Gateway::Traefik => "traefik",
            Gateway::Caddy => "caddy",
            Gateway::Envoy => "envoy",
        }
    }

    /// The family of headers this gateway sends the original request in.
    fn family(self) -> Option<Family> {
        match self {
            Gateway::Nginx => Some(ORIGINAL),
            Gateway::Traefik | Gateway::Caddy => Some(FORWARDED),
            Gateway::Generic | Gateway::Envoy => None,
        }
    }
}

impl FromStr for Gateway {
    type Err = String;

    fn from_str(text: &str) -> Result<Gateway, String> {
        Gateway::ALL
            .into_iter()
            .find(|gateway| gateway.name() == text)
            .ok_or_else(|| {
                format!(
                    "{:?} is not one of {}",
                    baton_core::echo(text),
                    Gateway::ALL.map(Gateway::name).join(", ")
                )
            })
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A family of headers carrying the original request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Family {
    uri: &'static str,
    method: &'static str,
}

const ORIGINAL: Family = Family {
    uri: "x-original-uri",
    method: "x-original-method",
};
const FORWARDED: Family = Family {
    uri: "x-forwarded-uri",
    method: "x-forwarded-method",
};

impl Family {
    fn other(self) -> Family {
        if self == ORIGINAL {
            FORWARDED
        } else {
            ORIGINAL
        }
    }
}

/// Headers as they arrived: every copy, in order (names compared without
/// regard to case).
#[derive(Debug, Default, Clone)]
pub struct Headers<'a>(Vec<(&'a str, &'a [u8])>);

impl<'a> Headers<'a> {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn push(&mut self, name: &'a str, value: &'a [u8]) {
        self.0.push((name, value));
    }

    /// Every header of an `http` request, each copy of a repeated one.
    pub fn of(map: &'a http::HeaderMap) -> Self {
        Headers(
            map.iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .collect(),
        )
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &'a [u8]> + '_ {
        let name = name.to_owned();
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, value)| *value)
    }

    fn has(&self, name: &str) -> bool {
        self.all(name).next().is_some()
    }

    /// The value of `name` when it arrived once, as visible ASCII (spaces
    /// and tabs inside), none around it and not empty; absent: `None`.
    pub fn one(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        let mut values = self.all(name);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let refuse = |why: &str| Err(Refusal::Request(format!("{}: {why}", display(name))));
        if values.next().is_some() {
            return refuse("sent more than once; the upstream may read another copy");
        }
        if value.is_empty() {
            return refuse("is empty");
        }
        if value.first().is_some_and(|b| *b == b' ' || *b == b'\t')
            || value.last().is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            return refuse("has white space around its value");
        }
        if let Some(bad) = value
            .iter()
            .find(|b| !(b.is_ascii_graphic() || **b == b' ' || **b == b'\t'))
        {
            return refuse(&format!("byte 0x{bad:02x} is not visible ASCII"));
        }
        // Checked above: ASCII only.
        Ok(std::str::from_utf8(value).ok())
    }

    /// [`Headers::one`] for a header whose grammar has no comma: a comma is
    /// two values joined (as Envoy joins repeats) and refused.
    pub fn single(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        let value = self.one(name)?;
        if value.is_some_and(|v| v.contains(',')) {
            return Err(Refusal::Request(format!(
                "{}: has a comma, so it may be two values joined; refused",
                display(name)
            )));
        }
        Ok(value)
    }
}

/// A header name as documentation writes it (`x-original-uri` →
/// `X-Original-Uri`), for messages.
fn display(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// What a request's headers say, the same wherever it is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// The `Bearer` token of `Authorization`; `None` without one.
    pub bearer: Option<String>,
    pub mcp_method: Option<String>,
    /// `Mcp-Name`, decoded when the client base64-encoded it.
    pub mcp_name: Option<String>,
    pub mcp_protocol_version: Option<String>,
}

/// RFC 6750 §2.1 `b64token`: the characters a bearer token is made of.
fn b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The longest MCP method or tool name read.
pub const MCP_NAME_BYTES_MAX: usize = 256;

impl Presented {
    /// Reads `Authorization`, `Mcp-Method`, `Mcp-Name` and
    /// `MCP-Protocol-Version`, each once and in its one form.
    pub fn read(headers: &Headers<'_>) -> Result<Presented, Refusal> {
        let bearer = match headers.single("authorization")? {
            None => None,
            Some(value) => match value.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
                    let token = &value[7..];
                    if !b64token(token) {
                        return Err(Refusal::Request(
                            "Authorization: a Bearer token is one run of RFC 6750 b64token characters after one space".to_owned(),
                        ));
                    }
                    Some(token.to_owned())
                }
                // Another scheme (Basic, DPoP …): no bearer token.
                _ => None,
            },
        };
        let mcp_method = headers.single("mcp-method")?;
        if let Some(method) = mcp_method {
            let plain = method.len() <= MCP_NAME_BYTES_MAX
                && method
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
            if !plain {
                return Err(Refusal::Request(format!(
                    "Mcp-Method: {:?} is not an MCP method name",
                    crate::quotable(&baton_core::echo(method))
                )));
            }
            if let Some(known) = MCP_METHODS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(method) && **known != method)
            {
                return Err(Refusal::Request(format!(
                    "Mcp-Method: {method:?} is {known:?} in another case; MCP method names are case-sensitive"
                )));
            }
        }
        let mcp_name = headers
            .single("mcp-name")?
            .map(tool_name)
            .transpose()
            .map_err(|why| Refusal::Request(format!("Mcp-Name: {why}")))?;
        let mcp_protocol_version = headers.single("mcp-protocol-version")?;
        Ok(Presented {
            bearer,
            mcp_method: mcp_method.map(str::to_owned),
            mcp_name,
            mcp_protocol_version: mcp_protocol_version.map(str::to_owned),
        })
    }
}

/// The MCP methods of the protocol versions Baton knows, for refusing
/// another case of one (a server comparing without case would run it).
pub const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// An `Mcp-Name` value: as sent (visible ASCII), or decoded when the client
/// base64-encoded it (`=?base64?…?=`, for names that are not plain ASCII).
/// A value that starts like the encoding but is not one is refused.
fn tool_name(raw: &str) -> Result<String, String> {
    use base64::Engine as _;
    if raw.len() > 2 * MCP_NAME_BYTES_MAX {
        return Err(format!("longer than {} bytes", 2 * MCP_NAME_BYTES_MAX));
    }
    if !raw.starts_with("=?") {
        if raw.contains([' ', '\t']) {
            return Err("a name with white space".to_owned());
        }
        return Ok(raw.to_owned());
    }
    let name = raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("starts like =?base64?…?= but is not valid base64 of UTF-8")?;
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || baton_core::is_invisible(c))
    {
        return Err("a decoded name that is empty or has control or invisible characters".into());
    }
    Ok(name)
}

/// A request as the upstream will serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `scheme://host[:port]`, normalised (see [`crate::origin`]).
    pub origin: String,
    /// The path as the upstream reads it: decoded once ([`path::normalise`]).
    pub path: String,
    /// The path as sent, still encoded (without the query): a resource must
    /// be the same in both readings.
    pub raw_path: String,
    /// The HTTP method, upper case.
    pub method: String,
    pub presented: Presented,
}

/// An HTTP method: upper-case letters (methods are case-sensitive; a
/// server that upper-cases `get` would read another method than Baton).
pub(crate) fn method(method: &str) -> Result<String, Refusal> {
    if method.is_empty() || method.len() > 20 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Refusal::Request(format!(
            "method {:?} is not an upper-case HTTP method",
            crate::quotable(&baton_core::echo(method))
        )));
    }
    Ok(method.to_owned())
}

impl Request {
    /// A request line and its headers: `scheme`, `host` (an authority),
    /// `target` (path and query) and `method` from wherever the caller has
    /// them (Envoy's ext_authz: its attributes).
    pub fn new(
        scheme: &str,
        host: &str,
        target: &str,
        http_method: &str,
        headers: &Headers<'_>,
    ) -> Result<Request, Refusal> {
        let origin = crate::origin(scheme, host).map_err(Refusal::Request)?;
        let path = path::normalise(target).map_err(Refusal::Request)?;
        let raw_path = target.split('?').next().unwrap_or("").to_owned();
        Ok(Request {
            origin,
            path,
            raw_path,
            method: method(http_method)?,
            presented: Presented::read(headers)?,
        })
    }

    /// Forward-auth: the original request from the headers `gateway` sets.
    pub fn forward_auth(gateway: Gateway, headers: &Headers<'_>) -> Result<Request, Refusal> {
        let needs = |what: &str| {
            Refusal::Gateway(format!(
                "forward-auth ({gateway}) needs {what}, set by the gateway; see README's snippet for {gateway}"
            ))
        };
        if gateway == Gateway::Envoy {
            return Err(Refusal::Gateway(
                "gateway = envoy decides over ext_authz on the gRPC port, not forward-auth"
                    .to_owned(),
            ));
        }
        let scheme = headers
            .single("x-forwarded-proto")?
            .ok_or_else(|| needs("X-Forwarded-Proto"))?;
        let host = headers
            .single("x-forwarded-host")?
            .ok_or_else(|| needs("X-Forwarded-Host"))?;
        let family = match gateway.family() {
            Some(family) => family,
            None => match (headers.has(ORIGINAL.uri), headers.has(FORWARDED.uri)) {
                (true, false) => ORIGINAL,
                (false, true) => FORWARDED,
                (true, true) => {
                    return Err(Refusal::Request(
                        "both X-Original-Uri and X-Forwarded-Uri: one came from the client"
                            .to_owned(),
                    ));
                }
                (false, false) => return Err(needs("X-Original-Uri or X-Forwarded-Uri")),
            },
        };
        // The profile's own headers first: a gateway that sends another
        // family is misconfigured (500), not a client's doing.
        let uri = headers
            .one(family.uri)?
            .ok_or_else(|| needs(&display(family.uri)))?;
        // The method header too, under every profile: a gateway that set
        // only the URI would pass on a method header its client chose.
        let method = headers
            .single(family.method)?
            .ok_or_else(|| needs(&display(family.method)))?;
        let foreign = family.other();
        for name in [foreign.uri, foreign.method] {
            if headers.has(name) {
                return Err(Refusal::Request(format!(
                    "{}: not a header {gateway} sets for forward-auth (it sends {} and {}), so a client sent it",
                    display(name),
                    display(family.uri),
                    display(family.method)
                )));
            }
        }
        Request::new(scheme, host, uri, method, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> Headers<'a> {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.push(name, value.as_bytes());
        }
        headers
    }

    const NGINX: &[(&str, &str)] = &[
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "mcp.example"),
        ("X-Original-URI", "/mcp"),
        ("X-Original-Method", "POST"),
    ];

    fn with<'a>(
        base: &[(&'a str, &'a str)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        base.iter().chain(extra).copied().collect()
    }

    #[test]
    fn a_header_baton_decides_on_arrives_once_in_one_form() {
        let ok = with(NGINX, &[("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")]);
        let read = Request::forward_auth(Gateway::Nginx, &headers(&ok)).unwrap();
        assert_eq!(read.presented.mcp_name.as_deref(), Some("echo"));
        for name in [
            "Authorization",
            "Mcp-Method",
            "Mcp-Name",
            "MCP-Protocol-Version",
        ] {
            let value = match name {
                "Authorization" => "Bearer abc",
                "Mcp-Method" => "tools/call",
                "Mcp-Name" => "echo",
                _ => "2026-07-28",
            };
            // Repeated, in any case of its name.
            let lower = name.to_ascii_lowercase();
            let twice = with(NGINX, &[(name, value), (lower.as_str(), value)]);
            let refused = Request::forward_auth(Gateway::Nginx, &headers(&twice)).unwrap_err();
            assert!(
                matches!(&refused, Refusal::Request(why) if why.contains("more than once")),
                "{name}: {refused:?}"
            );
            // Joined with a comma, as Envoy's `headers` map joins repeats.
            let joined = format!("{value},{value}");
            let comma = with(NGINX, &[(name, joined.as_str())]);
            assert!(
                Request::forward_auth(Gateway::Nginx, &headers(&comma)).is_err(),
                "{name}"
            );
            // White space around it, or a byte that is no visible ASCII.
            for bad in [
                format!(" {value}"),
                format!("{value}\t"),
                format!("{value}\u{e9}"),
            ] {
                let odd = with(NGINX, &[(name, bad.as_str())]);
                assert!(
                    Request::forward_auth(Gateway::Nginx, &headers(&odd)).is_err(),
                    "{name} {bad:?}"
                );
            }
        }
        // The forwarded-request headers too.
        for name in [
            "X-Forwarded-Host",
            "X-Forwarded-Proto",
            "X-Original-URI",
            "X-Original-Method",
        ] {
            let twice = with(NGINX, &[(name, "x")]);
            assert!(
                Request::forward_auth(Gateway::Nginx, &headers(&twice)).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_gateway_profile_reads_its_own_family_and_refuses_the_other() {
        let traefik: &[(&str, &str)] = &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "mcp.example"),
            ("X-Forwarded-Uri", "/mcp/x?y=1"),
            ("X-Forwarded-Method", "POST"),
        ];
        for gateway in [Gateway::Traefik, Gateway::Caddy, Gateway::Generic] {
            let read = Request::forward_auth(gateway, &headers(traefik)).unwrap();
            assert_eq!(
                (
                    read.origin.as_str(),
                    read.path.as_str(),
                    read.method.as_str()
                ),
                ("https://mcp.example", "/mcp/x", "POST")
            );
            // The bypass: a client's X-Original-Method passed on by Traefik.
            let smuggled = with(traefik, &[("X-Original-Method", "GET")]);
            let refused = Request::forward_auth(gateway, &headers(&smuggled)).unwrap_err();
            assert!(
                matches!(refused, Refusal::Request(_)),
                "{gateway}: {refused:?}"
            );
            let smuggled = with(traefik, &[("X-Original-URI", "/other")]);
            assert!(Request::forward_auth(gateway, &headers(&smuggled)).is_err());
        }
        // nginx sends the X-Original family; the other is refused.
        assert!(Request::forward_auth(Gateway::Nginx, &headers(NGINX)).is_ok());
        assert!(Request::forward_auth(Gateway::Nginx, &headers(traefik)).is_err());
        for extra in [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/x")] {
            let smuggled = with(NGINX, &[extra]);
            assert!(Request::forward_auth(Gateway::Nginx, &headers(&smuggled)).is_err());
            assert!(Request::forward_auth(Gateway::Generic, &headers(&smuggled)).is_err());
        }
        // A profile's header missing is the gateway's misconfiguration.
        let no_method: Vec<_> = NGINX[..3].to_vec();
        assert!(matches!(
            Request::forward_auth(Gateway::Nginx, &headers(&no_method)),
            Err(Refusal::Gateway(_))
        ));
        // ... under generic too: a gateway that sets only the URI would pass
        // on a method header its client chose (X-Original-Method: GET on a
        // POST carrying a tools/call).
        assert!(matches!(
            Request::forward_auth(Gateway::Generic, &headers(&no_method)),
            Err(Refusal::Gateway(_))
        ));
        // A gateway sending the other family is misconfigured, not attacked.
        let traefik_sent: &[(&str, &str)] = &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "mcp.example"),
            ("X-Forwarded-Uri", "/mcp"),
            ("X-Forwarded-Method", "POST"),
        ];
        assert!(matches!(
            Request::forward_auth(Gateway::Nginx, &headers(traefik_sent)),
            Err(Refusal::Gateway(_))
        ));
        for missing in 0..2 {
            let partial: Vec<_> = NGINX
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, h)| *h)
                .collect();
            assert!(matches!(
                Request::forward_auth(Gateway::Generic, &headers(&partial)),
                Err(Refusal::Gateway(_))
            ));
        }
        assert!(matches!(
            Request::forward_auth(Gateway::Envoy, &headers(NGINX)),
            Err(Refusal::Gateway(_))
        ));
        assert_eq!("caddy".parse(), Ok(Gateway::Caddy));
        assert!("Nginx".parse::<Gateway>().is_err());
    }

    #[test]
    fn methods_and_mcp_headers_have_one_spelling() {
        for bad in ["get", "Post", "GE T", "", "POST\0"] {
            let line = with(&NGINX[..3], &[("X-Original-Method", bad)]);
            assert!(
                Request::forward_auth(Gateway::Nginx, &headers(&line)).is_err(),
                "{bad:?}"
            );
        }
        for bad in [
            "Tools/Call",
            "TOOLS/CALL",
            "tools/call ",
            "tools call",
            "tools/call\u{200b}",
        ] {
            let line = with(NGINX, &[("Mcp-Method", bad)]);
            assert!(
                Request::forward_auth(Gateway::Nginx, &headers(&line)).is_err(),
                "{bad:?}"
            );
        }
        for (raw, want) in [
            ("echo", Ok("echo")),
            ("=?base64?Wm/Dqw==?=", Ok("Zoë")),
            ("=?base64?***?=", Err(())),
            ("=?BASE64?ZWNobw==?=", Err(())),
            ("=?base64?AA==?=", Err(())),
        ] {
            assert_eq!(tool_name(raw).as_deref().map_err(|_| ()), want, "{raw}");
        }
        for (value, bearer) in [
            ("Bearer abc.DEF-_~+/==", Some("abc.DEF-_~+/==")),
            ("bearer abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
        ] {
            let line = with(NGINX, &[("Authorization", value)]);
            let read = Request::forward_auth(Gateway::Nginx, &headers(&line)).unwrap();
            assert_eq!(read.presented.bearer.as_deref(), bearer, "{value}");
        }
        for bad in [
            "Bearer  abc",
            "Bearer a b",
            "Bearer =abc",
            "Bearer a=b",
            "Bearer a\"b",
        ] {
            let line = with(NGINX, &[("Authorization", bad)]);
            assert!(
                Request::forward_auth(Gateway::Nginx, &headers(&line)).is_err(),
                "{bad:?}"
            );
        }
    }
}
