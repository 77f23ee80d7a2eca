//! The request model's property, for the `gateway` fuzz target
//! (`crates/fuzz`) and the suite's replay of its corpus: whatever headers a
//! gateway sends, a request the model accepts is the request every
//! reasonable reading of those same bytes gives — the upstream decoding the
//! path (once or twice), resolving dot segments, merging slashes, dropping
//! `;` parameters, taking the first or the last copy of a header or one
//! element of a comma-joined value, trimming it, comparing a method without
//! case — and reading the accepted request back from its canonical headers
//! gives it again. Any difference panics: that is a finding.

use crate::{Gateway, Headers, MCP_METHODS, Request, path};

/// Header names the fuzzer reaches with one byte (`\x00` … `\x0d`).
const NAMES: [&str; 14] = [
    "authorization",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "Authorization",
    "MCP-Name",
    "X-Original-URI",
    "X-Forwarded-Uri",
];

/// The headers Baton decides on, whatever the gateway.
const DECIDED: [&str; 4] = [
    "authorization",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
];

/// Drives the model with `data`: its first byte picks forward-auth under a
/// gateway profile or ext_authz; then lines, `name:value` each (a name of
/// one byte below 14 is one of [`NAMES`]); for ext_authz the first four
/// lines are scheme, host, path and method.
pub fn request(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let lines: Vec<&[u8]> = rest.split(|b| *b == b'\n').collect();
    let ext_authz = selector % 6 == 5;
    let (line, header_lines) = if ext_authz {
        if lines.len() < 4 {
            return;
        }
        (Some(&lines[..4]), &lines[4..])
    } else {
        (None, &lines[..])
    };
    let pairs: Vec<(&str, &[u8])> = header_lines
        .iter()
        .filter_map(|line| {
            let (name, value) = match line.iter().position(|b| *b == b':') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (*line, &b""[..]),
            };
            let name = match name {
                [n] if usize::from(*n) < NAMES.len() => NAMES[usize::from(*n)],
                _ => std::str::from_utf8(name).ok()?,
            };
            Some((name, value))
        })
        .collect();
    let mut headers = Headers::new();
    for (name, value) in &pairs {
        headers.push(name, value);
    }
    let gateway = Gateway::ALL[usize::from(selector % 6) % Gateway::ALL.len()];
    let (read, target) = match line {
        Some(line) => {
            let text: Vec<&str> = line
                .iter()
                .map(|l| std::str::from_utf8(l).unwrap_or("\u{fffd}"))
                .collect();
            (
                Request::new(text[0], text[1], text[2], text[3], &headers),
                Some(text[2].to_owned()),
            )
        }
        None => (Request::forward_auth(gateway, &headers), None),
    };
    let Ok(request) = read else {
        return;
    };
    let copies = |name: &str| -> Vec<&[u8]> {
        pairs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    };
    // Every header decided on arrived once, and reads the same whichever
    // way a server splits or trims it.
    let mut decided: Vec<&str> = DECIDED.to_vec();
    if line.is_none() {
        decided.extend(["x-forwarded-proto", "x-forwarded-host"]);
    }
    for name in decided {
        let values = copies(name);
        assert!(values.len() <= 1, "{name} accepted {} times", values.len());
        if let Some(value) = values.first() {
            let text = std::str::from_utf8(value).expect("accepted: ASCII");
            assert_eq!(text.trim(), text, "{name} read trimmed differs");
            assert!(!text.contains(','), "{name} accepted a comma: {text:?}");
        }
    }
    // The path every way a server reads it.
    let target = target.unwrap_or_else(|| {
        let uri = ["x-original-uri", "x-forwarded-uri"]
            .into_iter()
            .flat_map(copies)
            .collect::<Vec<_>>();
        assert_eq!(uri.len(), 1, "one URI header");
        String::from_utf8(uri[0].to_vec()).expect("accepted: ASCII")
    });
    let raw = target.split('?').next().unwrap_or("");
    let once = decode(raw.as_bytes());
    assert_eq!(once, request.path.as_bytes(), "decoded once: {raw:?}");
    assert_eq!(decode(&once), once, "decoded twice differs: {raw:?}");
    assert_eq!(
        remove_dot_segments(&request.path),
        request.path,
        "dot segments"
    );
    assert!(!request.path.contains("//"), "an empty segment");
    assert!(!request.path.contains(';'), "a ; parameter");
    assert_eq!(request.raw_path, raw);
    // The method and the MCP method compared without case.
    assert_eq!(request.method.to_ascii_uppercase(), request.method);
    if let Some(method) = &request.presented.mcp_method {
        for known in MCP_METHODS {
            assert!(
                !known.eq_ignore_ascii_case(method) || known == method,
                "{method:?} is {known:?} to a server comparing without case"
            );
        }
    }
    if let Some(token) = &request.presented.bearer {
        assert!(!token.contains([',', ' ', '\t', '"']), "{token:?}");
    }
    // The canonical headers of what was judged read back as the same.
    let again = reread(gateway, line.is_some(), &request);
    assert_eq!(again, request, "read back from its canonical headers");
}

/// `request` written as the canonical headers of `gateway` (or ext_authz)
/// and read again.
fn reread(gateway: Gateway, ext_authz: bool, request: &Request) -> Request {
    let (scheme, host) = request.origin.split_once("://").expect("an origin");
    let target = path::encode(&request.path);
    let mut owned: Vec<(&str, String)> = Vec::new();
    let presented = &request.presented;
    if let Some(token) = &presented.bearer {
        owned.push(("authorization", format!("Bearer {token}")));
    }
    for (name, value) in [
        ("mcp-method", &presented.mcp_method),
        ("mcp-protocol-version", &presented.mcp_protocol_version),
    ] {
        if let Some(value) = value {
            owned.push((name, value.clone()));
        }
    }
    if let Some(name) = &presented.mcp_name {
        owned.push(("mcp-name", mcp_name(name)));
    }
    if !ext_authz {
        let (uri, method) = match gateway {
            Gateway::Nginx => ("x-original-uri", "x-original-method"),
            _ => ("x-forwarded-uri", "x-forwarded-method"),
        };
        owned.push(("x-forwarded-proto", scheme.to_owned()));
        owned.push(("x-forwarded-host", host.to_owned()));
        owned.push((uri, target.clone()));
        owned.push((method, request.method.clone()));
    }
    let mut headers = Headers::new();
    for (name, value) in &owned {
        headers.push(name, value.as_bytes());
    }
    let mut again = if ext_authz {
        Request::new(scheme, host, &target, &request.method, &headers)
    } else {
        Request::forward_auth(gateway, &headers)
    }
    .unwrap_or_else(|refusal| panic!("its canonical form is refused: {refusal:?}"));
    // The canonical form is encoded; what was sent may have been otherwise.
    again.raw_path.clone_from(&request.raw_path);
    again
}

/// An `Mcp-Name` value for `name`: as is when it is plain visible ASCII,
/// else base64-encoded as the MCP spec writes non-ASCII names.
fn mcp_name(name: &str) -> String {
    use base64::Engine as _;
    let plain = !name.starts_with("=?") && name.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    if plain {
        name.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name)
        )
    }
}

/// Percent-decoding as a lenient server does it: every `%` and two hex
/// digits decoded, anything else kept.
fn decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_owned();
    let mut output = String::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned();
        } else if input.starts_with("/./") {
            input = input[2..].to_owned();
        } else if input == "/." {
            input = "/".to_owned();
        } else if input.starts_with("/../") || input == "/.." {
            input = format!("/{}", &input[if input == "/.." { 3 } else { 4 }..]);
            match output.rfind('/') {
                Some(i) => output.truncate(i),
                None => output.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = input[end..].to_owned();
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_holds_for_ordinary_requests_and_dot_segments_are_found() {
        request(b"\x01\x00:Bearer abc\n\x01:tools/call\n\x02:echo\n\x03:2026-07-28\n\x04:http\n\x05:mcp.example\n\x06:/mcp/%61\n\x07:POST");
        request(b"\x05https\nmcp.example\n/mcp/caf%C3%A9?x\nPOST\n\x00:Bearer abc\n\x02:=?base64?Wm/Dqw==?=");
        assert_eq!(remove_dot_segments("/a/b/../c/./d"), "/a/c/d");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(decode(b"/%61%2"), b"/a%2");
    }
}
