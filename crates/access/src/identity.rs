//! Who is calling, as the transports establish it and authorization reads
//! it: a connection's [`Identity`], the hash of an HTTP client's secret, and
//! the principal patterns grants and client CAs name. Imports nothing from
//! the rest of the crate: TLS and the listener produce these, `auth`
//! consumes them.

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A plaintext TCP connection: no identity can be established (a node
    /// serves plaintext only on loopback, or when told `insecure`). `admin`:
    /// the operator chose to make every plaintext caller admin
    /// (`loopback_admin`, `insecure`); otherwise it has no role.
    Plaintext { admin: bool },
    /// A connection on the node's Unix socket: the kernel's word for the
    /// peer process's user id (`SO_PEERCRED`), which only `uid` grants match.
    Local { uid: u32 },
    /// TLS without a client certificate.
    Anonymous,
    /// TLS with a client certificate that verified; the principal it names.
    Principal(String),
    /// TLS with a client certificate that did not verify, and why.
    Refused(String),
    /// HTTP Basic client credentials (the HTTP bridges) that verified: the
    /// client id, and the hash its secret matched (only the grants with that
    /// hash apply).
    Client { id: String, secret: SecretHash },
}

/// The hash of an HTTP client's secret, as configuration stores it
/// (`b3:` and 64 hex digits): blake3 in key-derivation mode, so a hash made
/// for Baton is useless anywhere else. A fast hash is right for secrets
/// that are random (`baton secret new` makes 256-bit ones); it would not be
/// for a password a person chose, which is why Baton makes them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(blake3::Hash);

impl SecretHash {
    const CONTEXT: &'static str = "baton 2026-11-30 http client secret";

    pub fn of(secret: &[u8]) -> SecretHash {
        SecretHash(
            blake3::Hasher::new_derive_key(Self::CONTEXT)
                .update(secret)
                .finalize(),
        )
    }

    /// Whether `secret` is the one hashed (constant time).
    pub fn verifies(&self, secret: &[u8]) -> bool {
        SecretHash::of(secret).0 == self.0
    }
}

impl std::str::FromStr for SecretHash {
    type Err = String;

    fn from_str(text: &str) -> Result<SecretHash, String> {
        text.strip_prefix("b3:")
            .and_then(|hex| blake3::Hash::from_hex(hex).ok())
            .map(SecretHash)
            .ok_or_else(|| {
                "must be `b3:` and 64 hex digits, as `baton secret new` or `baton secret hash` print"
                    .to_owned()
            })
    }
}

impl std::fmt::Display for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b3:{}", self.0.to_hex())
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A principal pattern (`[[access]]` grants, the principals a client CA
/// may vouch for): a principal, or a URI prefix that names its scheme, its
/// whole authority and a `/`, then ends in one `*` — so that a pattern never
/// spans trust domains (`spiffe://corp.example*` would match
/// `spiffe://corp.example.evil/…`).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let stars = pattern.matches('*').count();
    let spans_authority = pattern
        .strip_suffix('*')
        .and_then(|prefix| prefix.split_once("://"))
        .is_none_or(|(scheme, rest)| scheme.is_empty() || !rest.contains('/'));
    if pattern.is_empty()
        || stars > 1
        || (stars == 1 && (!pattern.ends_with('*') || spans_authority))
    {
        return Err(format!(
            "{:?} must be a principal, or a URI prefix that names its scheme, authority and a '/', then ends in one '*' (spiffe://corp.example/gateway-*)",
            baton_core::echo(pattern)
        ));
    }
    Ok(())
}

/// Whether `principal` is one `pattern` (checked by [`check_pattern`]) names.
pub fn matches(pattern: &str, principal: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => principal.starts_with(prefix),
        None => pattern == principal,
    }
}
