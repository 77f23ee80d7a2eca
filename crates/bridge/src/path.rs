//! A request path as the upstream reads it: the query dropped, percent
//! encodings decoded once (RFC 3986 §2.1, §6.2.2), and refused whenever
//! two reasonable servers could read it as two different paths — dot and
//! empty segments (one server resolves or merges them, another does not),
//! `;` parameters (Java servlet containers strip them, others keep them),
//! an encoded `/`, `\`, `?`, `#`, `;` or `%` (decoding changes where
//! segments end, or a second decoding changes it again), bytes that are no
//! URI characters, and UTF-8 that does not decode.

/// The longest path read (8 KiB, what nginx and most servers allow by
/// default); longer is refused.
pub const PATH_BYTES_MAX: usize = 8 * 1024;

/// Raw bytes a path may carry unencoded: RFC 3986 `pchar` and `/`, without
/// `;` (refused: see the module documentation).
fn raw_allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

/// Bytes whose percent-encoding is refused: decoding them would change
/// where a segment ends or what a second decoding reads, or put a control
/// character in the path.
fn encoded_refused(byte: u8) -> bool {
    matches!(byte, b'/' | b'\\' | b'?' | b'#' | b';' | b'%') || byte < 0x20 || byte == 0x7f
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `target` (a request target in origin form: path, then an optional query)
/// as the upstream reads its path: decoded once and checked as the module
/// documentation says. The error names what was refused.
pub fn normalise(target: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "path {:?}: {why}; refused rather than guessed",
            crate::quotable(&baton_core::echo(target))
        ))
    };
    if target.len() > PATH_BYTES_MAX {
        return refuse(&format!("longer than {PATH_BYTES_MAX} bytes"));
    }
    let raw = target.split('?').next().unwrap_or("");
    if !raw.starts_with('/') {
        return refuse("not an absolute path (origin form)");
    }
    if let Some(bad) = raw.bytes().find(|b| !raw_allowed(*b)) {
        return refuse(&if bad == b';' {
            "a ';' parameter, which some servers strip and others keep".to_owned()
        } else {
            format!("byte 0x{bad:02x}, which is no URI path character")
        });
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            decoded.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(high), Some(low)) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        let Some(byte) = byte else {
            return refuse("a '%' not followed by two hex digits");
        };
        if encoded_refused(byte) {
            return refuse(&format!(
                "an encoded {:?}, which would change the path's segments when decoded",
                char::from(byte)
            ));
        }
        decoded.push(byte);
        i += 3;
    }
    let Ok(decoded) = String::from_utf8(decoded) else {
        return refuse("percent-encoded bytes that are not UTF-8");
    };
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        if *segment == "." || *segment == ".." {
            return refuse("a dot segment, which servers resolve differently");
        }
        // A trailing '/' (an empty last segment) is a path of its own;
        // an empty segment inside is one some servers merge away.
        if segment.is_empty() && n != last {
            return refuse("an empty segment ('//'), which some servers merge");
        }
    }
    if decoded
        .chars()
        .any(|c| c.is_control() || baton_core::is_invisible(c))
    {
        return refuse("an invisible or control character");
    }
    Ok(decoded)
}

/// `path` (decoded) in its canonical encoding: every byte that is not a
/// plain path character percent-encoded — what a gateway sends for it.
pub fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if raw_allowed(byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_once_and_ambiguity_is_refused() {
        for (target, want) in [
            ("/mcp", "/mcp"),
            ("/mcp/", "/mcp/"),
            ("/", "/"),
            ("/mcp?x=%2f&y=..", "/mcp"),
            ("/mcp/%61dmin", "/mcp/admin"),
            ("/mcp/%6D%6d", "/mcp/mm"),
            ("/mcp/a%2eb", "/mcp/a.b"),
            ("/mcp/caf%C3%A9", "/mcp/café"),
            ("/mcp/a:b@c,d+e", "/mcp/a:b@c,d+e"),
            ("/mcp/%3A%40", "/mcp/:@"),
        ] {
            assert_eq!(normalise(target).as_deref(), Ok(want), "{target}");
        }
        for target in [
            "mcp",
            "",
            "http://mcp.example/mcp",
            "*",
            "/mcp/./x",
            "/mcp/../admin",
            "/mcp/%2e%2e/admin",
            "/mcp/%2E/admin",
            "/mcp/..",
            "/mcp//admin",
            "//mcp",
            "/mcp%2fadmin",
            "/mcp%2Fadmin",
            "/mcp%5cadmin",
            "/mcp\\admin",
            "/mcp;jsessionid=1/admin",
            "/mcp%3b/admin",
            "/mcp%3f/admin",
            "/mcp%23/admin",
            "/mcp/%252e%252e/admin",
            "/mcp/%",
            "/mcp/%6",
            "/mcp/%zz",
            "/mcp/%00",
            "/mcp/%0a",
            "/mcp/%7f",
            "/mcp/%C3",
            "/mcp/%E2%80%8Badmin",
            "/mcp/a b",
            "/mcp/a\tb",
            "/mcp#frag",
            "/mcp/é",
            "/mcp/\"x\"",
            "/mcp/<x>",
        ] {
            assert!(normalise(target).is_err(), "{target:?}");
        }
        assert!(normalise(&format!("/{}", "a".repeat(PATH_BYTES_MAX))).is_err());
        for path in ["/mcp/café", "/mcp/a:b", "/"] {
            assert_eq!(normalise(&encode(path)).as_deref(), Ok(path));
        }
    }
}
