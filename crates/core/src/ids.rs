//! Identifiers: event ids, token references, client ids, subjects and the
//! scope/tool names tokens carry. Each constructor validates, so a value of
//! these types is always within the limits in [`crate::limits`].

use std::fmt;

use crate::invalid::Invalid;

type Result<T, E = Invalid> = std::result::Result<T, E>;
use crate::limits::ID_LEN_MAX;

/// blake3 derive_key context for event ids.
pub(crate) const EVENT_ID_CONTEXT: &str = "baton.v1 event id";
/// blake3 derive_key context for token digests.
const TOKEN_DIGEST_CONTEXT: &str = "baton.v1 token digest";

/// An event's id: a domain-separated blake3 hash of the bytes it was signed over.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// Reads a 32-byte id, naming `field` if the length is wrong.
    pub fn from_slice(field: &str, bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            Invalid::new(
                field,
                format!("event id must be 32 bytes, got {}", bytes.len()),
            )
        })?;
        Ok(EventId(array))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the `ev:<64 hex>` text form.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let hex_part = text.strip_prefix("ev:").ok_or_else(|| {
            Invalid::new(
                field,
                format!("event id {text:?} does not start with \"ev:\""),
            )
        })?;
        Ok(EventId(parse_hex32(field, hex_part)?))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ev:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) fn parse_hex32(field: &str, text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| Invalid::new(field, format!("expected 64 hex digits: {e}")))?;
    Ok(out)
}

/// How a token is named without storing it: its `jti`, or the digest of its bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenRef {
    Jti(String),
    Digest([u8; 32]),
}

impl TokenRef {
    pub fn jti(field: &str, jti: &str) -> Result<Self> {
        check_text(field, jti, ID_LEN_MAX)?;
        Ok(TokenRef::Jti(jti.to_owned()))
    }

    pub fn digest(field: &str, bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            Invalid::new(
                field,
                format!("token digest must be 32 bytes, got {}", bytes.len()),
            )
        })?;
        Ok(TokenRef::Digest(array))
    }

    /// Parses the text form: `jti:<jti>` or `b3:<64 hex>`.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        if let Some(jti) = text.strip_prefix("jti:") {
            TokenRef::jti(field, jti)
        } else if let Some(digest) = text.strip_prefix("b3:") {
            Ok(TokenRef::Digest(parse_hex32(field, digest)?))
        } else {
            Err(Invalid::new(
                field,
                format!("token reference {text:?} must start with \"jti:\" or \"b3:\""),
            ))
        }
    }
}

impl fmt::Display for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRef::Jti(jti) => write!(f, "jti:{jti}"),
            TokenRef::Digest(d) => write!(f, "b3:{}", hex::encode(d)),
        }
    }
}

impl fmt::Debug for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The reference for a token known only by its bytes, as a resource server
/// computes it from the token it was shown. The token itself is never kept.
pub fn token_digest(token: &[u8]) -> TokenRef {
    TokenRef::Digest(blake3::derive_key(TOKEN_DIGEST_CONTEXT, token))
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $check:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`, naming `field` in the error.
            pub fn new(field: &str, value: &str) -> Result<Self> {
                $check(field, value, ID_LEN_MAX)?;
                Ok($name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

text_id!(
    /// A registered client: MCP client, gateway, MCP server, authorization server or service.
    ClientId,
    check_principal
);
text_id!(
    /// The user or service a chain acts for.
    Subject,
    check_principal
);
text_id!(
    /// A scope or an MCP tool name: an OAuth scope-token (RFC 6749 §3.3).
    Name,
    check_scope_token
);

/// Non-empty, bounded, in Unicode NFC, no control, invisible or bidi control
/// characters, no surrounding white space: one spelling per identifier, and
/// what is shown is what is compared.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if plain_ascii(value, max) {
        return Ok(());
    }
    check_text_in_full(field, value, max)
}

/// A shortcut for the common case, taken only where the full rules
/// ([`check_text_in_full`], [`check_principal_in_full`]) cannot refuse:
/// non-empty, within `max`, printable ASCII only (no control character; no
/// invisible one, none being ASCII), no leading or trailing space (the only
/// ASCII white space that is not a control). ASCII text is in NFC and NFKC,
/// and each of its labels is Latin or Common, a single script. Any other
/// value takes the full rules, which say why it is refused.
/// `the_ascii_shortcut_accepts_only_what_the_full_rules_accept` proves it.
fn plain_ascii(value: &str, max: usize) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes.iter().all(|b| (0x20..0x7f).contains(b))
        && bytes[0] != b' '
        && bytes[bytes.len() - 1] != b' '
}

fn check_text_in_full(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Invalid::new(
            field,
            format!("is {} bytes, longer than {max}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || is_invisible(*c)) {
        return Err(Invalid::new(
            field,
            format!(
                "{:?} contains U+{:04X}, a control, invisible or bidi control character (rule identifier-charset)",
                crate::echo(value),
                u32::from(c)
            ),
        ));
    }
    if !unicode_normalization::is_nfc(value) {
        return Err(Invalid::new(
            field,
            format!(
                "{:?} is not in Unicode normalization form C (rule identifier-nfc)",
                crate::echo(value)
            ),
        ));
    }
    if value.trim() != value {
        return Err(Invalid::new(
            field,
            format!(
                "{:?} has leading or trailing white space",
                crate::echo(value)
            ),
        ));
    }
    Ok(())
}

/// A principal's name (client id, subject): [`check_text`]; in Unicode NFKC,
/// so compatibility variants (fullwidth `ｐａｙｐａｌ`, mathematical bold,
/// ligatures, no-break spaces) are refused rather than naming a second
/// principal that renders like another; and each label (the runs between
/// ASCII punctuation, as in `user:山田` or `дмитрий@yandex.ru`) written in a
/// single script (UTS #39 mixed-script detection; digits go with any
/// script), so `pаypal` with a Cyrillic `а` is refused.
fn check_principal(field: &str, value: &str, max: usize) -> Result<()> {
    if plain_ascii(value, max) {
        return Ok(());
    }
    check_principal_in_full(field, value, max)
}

fn check_principal_in_full(field: &str, value: &str, max: usize) -> Result<()> {
    use unicode_security::MixedScript as _;
    check_text_in_full(field, value, max)?;
    if !unicode_normalization::is_nfkc(value) {
        return Err(Invalid::new(
            field,
            format!(
                "{:?} is not in Unicode normalization form KC (rule identifier-nfkc)",
                crate::echo(value)
            ),
        ));
    }
    if let Some(label) = value
        .split(|c: char| c.is_ascii_punctuation())
        .find(|label| !label.is_single_script())
    {
        return Err(Invalid::new(
            field,
            format!(
                "{:?} mixes scripts in {:?} (rule identifier-script)",
                crate::echo(value),
                crate::echo(label)
            ),
        ));
    }
    Ok(())
}

/// Whether `c` renders as nothing, reorders text, or has no agreed glyph:
/// Unicode's Default_Ignorable_Code_Point set (zero-width characters,
/// joiners, bidi embeddings, overrides and isolates, variation selectors,
/// fillers, tags), the other format characters (prepended concatenation
/// marks, interlinear annotation, Egyptian hieroglyph format controls), the
/// line and paragraph separators, and private-use code points. Shared with
/// the gateway bridges' request reading, so both refuse the same set.
pub fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xE000..=0xF8FF
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
            | 0xF0000..=0x10FFFF
    )
}

fn check_scope_token(field: &str, value: &str, max: usize) -> Result<()> {
    check_text(field, value, max)?;
    let bad = value
        .bytes()
        .find(|b| !(0x21..=0x7e).contains(b) || *b == b'"' || *b == b'\\');
    if let Some(b) = bad {
        return Err(Invalid::new(
            field,
            format!(
                "{value:?} contains {:?}, not allowed in a scope token",
                b as char
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The shortcut never accepts what the full rules refuse (for text
        /// and for principals), and takes most plain names.
        #[test]
        fn the_ascii_shortcut_accepts_only_what_the_full_rules_accept(
            value in "[\\x00-\\x7f]{0,10}|[ -~]{0,10}|[ -~\u{80}-\u{2100}]{0,6}",
            max in 1usize..12,
        ) {
            if plain_ascii(&value, max) {
                prop_assert!(check_text_in_full("f", &value, max).is_ok(), "text {:?}", value);
                prop_assert!(check_principal_in_full("f", &value, max).is_ok(), "principal {:?}", value);
            }
        }
    }

    #[test]
    fn the_ascii_shortcut_is_taken_for_plain_names_only() {
        for plain in ["read", "user:alice@example.com", "a b", "~!x"] {
            assert!(plain_ascii(plain, 64), "{plain:?}");
        }
        for other in ["", " a", "a ", "a\tb", "a\u{7f}", "é", "pаypal", "toolong"] {
            assert!(!plain_ascii(other, 6), "{other:?}");
        }
    }

    #[test]
    fn text_forms_round_trip() {
        let id = EventId([7; 32]);
        assert_eq!(EventId::parse("f", &id.to_string()).unwrap(), id);
        let digest = token_digest(b"eyJhbGciOi.test.token");
        assert_eq!(TokenRef::parse("f", &digest.to_string()).unwrap(), digest);
        let jti = TokenRef::jti("f", "abc-123").unwrap();
        assert_eq!(TokenRef::parse("f", "jti:abc-123").unwrap(), jti);
    }

    #[test]
    fn names_refuse_bad_input_naming_the_field() {
        let err = Name::new("scopes[2]", "has space").unwrap_err();
        assert_eq!(
            err.to_string(),
            "scopes[2]: \"has space\" contains ' ', not allowed in a scope token"
        );
        let err = ClientId::new("holder", "").unwrap_err();
        assert_eq!(err.to_string(), "holder: must not be empty");
        let long = "x".repeat(ID_LEN_MAX + 1);
        assert!(
            Subject::new("subject", &long)
                .unwrap_err()
                .to_string()
                .contains("longer than 256")
        );
        assert!(EventId::from_slice("parent_event_id", &[0; 31]).is_err());
    }
}
