//! ed25519 keys and key ids. A key id is derived from the public key, so a key
//! cannot be renamed and two keys cannot share an id.

use std::fmt;

use ed25519_dalek::{Signer as _, VerifyingKey};

use crate::invalid::Invalid;

type Result<T, E = Invalid> = std::result::Result<T, E>;
use crate::ids::{ClientId, parse_hex32};

const KEY_ID_CONTEXT: &str = "baton.v1 key id";

/// blake3 derive_key("baton.v1 key id", public key bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    pub fn from_slice(field: &str, bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            Invalid::new(
                field,
                format!("key id must be 32 bytes, got {}", bytes.len()),
            )
        })?;
        Ok(KeyId(array))
    }

    /// Parses the `key:<64 hex>` text form.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let hex_part = text.strip_prefix("key:").ok_or_else(|| {
            Invalid::new(
                field,
                format!("key id {text:?} does not start with \"key:\""),
            )
        })?;
        Ok(KeyId(parse_hex32(field, hex_part)?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An ed25519 public key that is a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads 32 bytes, refusing wrong lengths, non-points and small-order (weak) keys,
    /// which `verify_strict` would refuse anyway.
    pub fn from_slice(field: &str, bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            Invalid::new(
                field,
                format!("ed25519 public key must be 32 bytes, got {}", bytes.len()),
            )
        })?;
        let key = VerifyingKey::from_bytes(&array)
            .map_err(|_| Invalid::new(field, "not a valid ed25519 public key"))?;
        if key.is_weak() {
            return Err(Invalid::new(field, "ed25519 public key has small order"));
        }
        // One key, one encoding: a non-canonical encoding of a point (a y
        // coordinate at or above the field prime, or a sign bit on x = 0)
        // would give the same key a second key id.
        if key.to_edwards().compress().to_bytes() != array {
            return Err(Invalid::new(
                field,
                "not the canonical encoding of an ed25519 public key",
            ));
        }
        Ok(PublicKey(key))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn key_id(&self) -> KeyId {
        KeyId(blake3::derive_key(KEY_ID_CONTEXT, self.0.as_bytes()))
    }

    pub(crate) fn verifying(&self) -> &VerifyingKey {
        &self.0
    }

    /// Whether `proof` shows that whoever binds this key to `client` holds
    /// its private key (see [`SigningKey::prove_possession`]).
    pub fn verify_possession(&self, client: &ClientId, proof: &[u8; 64]) -> bool {
        self.verify_message(&possession_message(client), proof)
    }

    /// Whether `proof` is this key's agreement to be registered to `client`
    /// by `registrar` (`None`: a trust root; see
    /// [`SigningKey::prove_registration`]).
    pub fn verify_registration(
        &self,
        client: &ClientId,
        registrar: Option<&ClientId>,
        proof: &[u8; 64],
    ) -> bool {
        self.verify_message(&registration_message(client, registrar), proof)
    }

    fn verify_message(&self, message: &[u8], proof: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(proof);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

/// Payload type of a proof of possession: binds the proof's meaning (this
/// key may be bound to this client) and keeps it from ever verifying as an
/// event, whose payload type differs.
pub const PAYLOAD_TYPE_KEY_PROOF_V1: &str = "application/vnd.baton.key-proof.v1";

/// What a proof of possession signs: PAE(key-proof type, client id).
fn possession_message(client: &ClientId) -> Vec<u8> {
    pae(PAYLOAD_TYPE_KEY_PROOF_V1, client.as_str().as_bytes())
}

/// Payload type of a registration proof: a proof of possession that also
/// names the registrar, so that a proof shared with one registrar cannot
/// register the client under another (a v1 proof travels).
pub const PAYLOAD_TYPE_KEY_PROOF_V2: &str = "application/vnd.baton.key-proof.v2";

/// What a registration proof signs: PAE(key-proof v2 type, client id, a
/// zero byte, the registrar's client id — empty for a trust root).
/// Identifiers hold no control characters, so the split is unambiguous.
fn registration_message(client: &ClientId, registrar: Option<&ClientId>) -> Vec<u8> {
    let mut body = client.as_str().as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(registrar.map_or("", ClientId::as_str).as_bytes());
    pae(PAYLOAD_TYPE_KEY_PROOF_V2, &body)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// A private signing key. Its `Debug` shows only the key id; the secret is
/// zeroized on drop and never formatted.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key for a 32-byte seed (RFC 8032 private key). Deterministic: used by
    /// key files and by the test vectors.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for writing a key file. Handle with care.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// A proof that the holder of this key agrees to its binding to
    /// `client`: no one can bind someone else's public key (and so block its
    /// owner's registration) without it.
    pub fn prove_possession(&self, client: &ClientId) -> [u8; 64] {
        self.sign_raw(&possession_message(client))
    }

    /// The holder's agreement that `registrar` (`None`: a trust root)
    /// registers this key to `client`: what a registration carries.
    pub fn prove_registration(&self, client: &ClientId, registrar: Option<&ClientId>) -> [u8; 64] {
        self.sign_raw(&registration_message(client, registrar))
    }

    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload`, lengths in ASCII decimal.
/// Binding the type means a signature over the same bytes meant as something
/// else does not verify.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = pae_header(payload_type, payload.len());
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out
}

pub(crate) fn pae_header(payload_type: &str, payload_len: usize) -> Vec<u8> {
    format!(
        "DSSEv1 {} {payload_type} {payload_len} ",
        payload_type.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SigningKey::from_seed(&[0x42; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([0x42u8; 32])));
        assert!(shown.starts_with("SigningKey(key:"));
    }

    #[test]
    fn public_keys_refuse_bad_bytes() {
        assert!(PublicKey::from_slice("k", &[1; 31]).is_err());
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = PublicKey::from_slice("public_keys[0]", &identity).unwrap_err();
        assert_eq!(
            err.to_string(),
            "public_keys[0]: ed25519 public key has small order"
        );
    }
}
