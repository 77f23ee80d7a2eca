//! Verifying a presented JWT, so that a token the ledger knows only by its
//! `jti` can be answered for when it is presented whole.
//!
//! A writer that records a token by `jti` (not by the digest of its bytes)
//! leaves the bridges a choice: trust a `jti` read out of bytes anyone could
//! have written, or verify them. Baton verifies: a bridge answers for a
//! presented JWT's `jti` only when the JWT's signature verifies against a
//! key configured for its `iss` (a JWKS file per issuer — files only, no
//! network fetch), and the ledger's record of that `jti` was issued by the
//! authorization server configured for that issuer. Otherwise the token is
//! unknown. Signatures: EdDSA (Ed25519), ES256 and RS256 (ring); nothing
//! else (never `none`, never an HMAC with a public key).

use std::collections::BTreeMap;

use base64::Engine as _;
use baton_core::ClientId;
use ring::signature::{self, UnparsedPublicKey};

/// Most keys one JWKS file may hold.
const KEYS_MAX: usize = 64;
/// Largest JWKS file read.
pub const JWKS_BYTES_MAX: usize = 256 * 1024;

#[derive(Clone)]
enum Key {
    Ed25519(Vec<u8>),
    /// An uncompressed P-256 point (0x04 || x || y).
    Es256(Vec<u8>),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Ed25519(_) => "EdDSA",
            Key::Es256(_) => "ES256",
            Key::Rs256 { .. } => "RS256",
        }
    }

    fn verifies(&self, message: &[u8], signature_: &[u8]) -> bool {
        match self {
            Key::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, signature_)
                .is_ok(),
            Key::Es256(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature_)
                .is_ok(),
            Key::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature_)
                .is_ok(),
        }
    }
}

#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

/// An issuer whose JWTs a node verifies.
#[derive(Clone)]
pub struct JwtIssuer {
    /// The `iss` its tokens carry.
    pub iss: String,
    /// The authorization server (ledger client) that records its tokens.
    pub client: ClientId,
    keys: Vec<Jwk>,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("iss", &self.iss)
            .field("client", &self.client)
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("{field}: not base64url without padding"))
}

impl JwtIssuer {
    /// Reads a JWKS document (RFC 7517: `{"keys": [...]}`). Keys of types
    /// or curves Baton does not verify are refused, naming the key, rather
    /// than skipped: a file that silently verified nothing would make every
    /// token of the issuer unknown.
    pub fn from_jwks(iss: &str, client: ClientId, jwks: &str) -> Result<JwtIssuer, String> {
        if jwks.len() > JWKS_BYTES_MAX {
            return Err(format!("larger than {JWKS_BYTES_MAX} bytes"));
        }
        let document: serde_json::Value =
            serde_json::from_str(jwks).map_err(|e| format!("not JSON: {e}"))?;
        let listed = document
            .get("keys")
            .and_then(|keys| keys.as_array())
            .ok_or("keys: missing or not an array")?;
        if listed.is_empty() || listed.len() > KEYS_MAX {
            return Err(format!(
                "keys: {} keys, not in 1..={KEYS_MAX}",
                listed.len()
            ));
        }
        let mut keys = Vec::with_capacity(listed.len());
        for (i, jwk) in listed.iter().enumerate() {
            let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
            let field = |name: &str| format!("keys[{i}].{name}");
            let need = |name: &str| {
                text(name)
                    .ok_or_else(|| format!("{}: missing", field(name)))
                    .and_then(|value| b64(&field(name), value))
            };
            let key = match (text("kty"), text("crv")) {
                (Some("OKP"), Some("Ed25519")) => Key::Ed25519(need("x")?),
                (Some("EC"), Some("P-256")) => {
                    let (x, y) = (need("x")?, need("y")?);
                    if x.len() != 32 || y.len() != 32 {
                        return Err(format!("{}: a P-256 coordinate is 32 bytes", field("x")));
                    }
                    Key::Es256([&[4u8][..], &x, &y].concat())
                }
                (Some("RSA"), _) => Key::Rs256 {
                    n: need("n")?,
                    e: need("e")?,
                },
                (kty, crv) => {
                    return Err(format!(
                        "{}: {kty:?}/{crv:?} is not a key type Baton verifies (OKP Ed25519, EC P-256, RSA)",
                        field("kty")
                    ));
                }
            };
            if let Some(alg) = text("alg")
                && alg != key.alg()
            {
                return Err(format!(
                    "{}: {alg:?} does not match the key type ({})",
                    field("alg"),
                    key.alg()
                ));
            }
            keys.push(Jwk {
                kid: text("kid").map(str::to_owned),
                key,
            });
        }
        Ok(JwtIssuer {
            iss: iss.to_owned(),
            client,
            keys,
        })
    }
}

/// Every issuer a node verifies JWTs of.
#[derive(Debug, Clone, Default)]
pub struct JwtIssuers(Vec<JwtIssuer>);

/// What a JWT that verified says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    /// Its `iss` (one of the configured issuers).
    pub iss: String,
    /// The authorization server its issuer is configured as.
    pub client: ClientId,
    /// Its `exp`, if it has one (unix seconds).
    pub expires_at_s: Option<i64>,
}

impl JwtIssuers {
    pub fn new(issuers: Vec<JwtIssuer>) -> Result<JwtIssuers, String> {
        let mut seen = BTreeMap::new();
        for (i, issuer) in issuers.iter().enumerate() {
            if let Some(j) = seen.insert(issuer.iss.clone(), i) {
                return Err(format!(
                    "jwt_issuer[{i}].iss: {:?} is configured twice (also jwt_issuer[{j}])",
                    baton_core::echo(&issuer.iss)
                ));
            }
        }
        Ok(JwtIssuers(issuers))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `jti` of `token` if it is a JWT whose signature verifies against
    /// a key of the issuer its `iss` names, and it is not yet valid or
    /// expired by its own `nbf`; None for anything else.
    pub fn verify(&self, token: &[u8], now_s: i64) -> Option<Verified> {
        let text = std::str::from_utf8(token).ok()?;
        let mut parts = text.split('.');
        let (header, payload, signature_) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let head: serde_json::Value = serde_json::from_slice(&b64("header", header).ok()?).ok()?;
        // Extensions the verifier must understand: none are.
        if head.get("crit").is_some() {
            return None;
        }
        let alg = head.get("alg")?.as_str()?;
        let kid = head.get("kid").and_then(|kid| kid.as_str());
        let claims: serde_json::Value =
            serde_json::from_slice(&b64("payload", payload).ok()?).ok()?;
        let iss = claims.get("iss")?.as_str()?;
        let issuer = self.0.iter().find(|issuer| issuer.iss == iss)?;
        let signature_ = b64("signature", signature_).ok()?;
        let message = &text.as_bytes()[..header.len() + 1 + payload.len()];
        let verified = issuer
            .keys
            .iter()
            .filter(|jwk| jwk.key.alg() == alg)
            .filter(|jwk| kid.is_none() || jwk.kid.as_deref() == kid)
            .any(|jwk| jwk.key.verifies(message, &signature_));
        if !verified {
            return None;
        }
        if let Some(nbf) = claims.get("nbf")
            && nbf.as_i64()? > now_s
        {
            return None;
        }
        let expires_at_s = match claims.get("exp") {
            Some(exp) => Some(exp.as_i64()?),
            None => None,
        };
        Some(Verified {
            jti: claims.get("jti")?.as_str()?.to_owned(),
            iss: issuer.iss.clone(),
            client: issuer.client.clone(),
            expires_at_s,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    fn enc(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn jwt(header: &str, claims: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!("{}.{}", enc(header.as_bytes()), enc(claims.as_bytes()));
        let signature_ = sign(input.as_bytes());
        format!("{input}.{}", enc(&signature_))
    }

    #[test]
    fn jwts_verify_only_against_their_issuers_keys() {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let es_pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap();
        let es = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            es_pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let point = es.public_key().as_ref();
        let jwks = format!(
            r#"{{"keys": [
                {{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "{}"}},
                {{"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "x": "{}", "y": "{}"}}
            ]}}"#,
            enc(ed.public_key().as_ref()),
            enc(&point[1..33]),
            enc(&point[33..]),
        );
        let client = ClientId::new("t", "auth.example").unwrap();
        let issuers = JwtIssuers::new(vec![
            JwtIssuer::from_jwks("https://auth.example", client.clone(), &jwks).unwrap(),
        ])
        .unwrap();
        let claims = r#"{"iss": "https://auth.example", "jti": "j-1", "exp": 2000}"#;
        let by_ed = jwt(r#"{"alg": "EdDSA", "kid": "ed"}"#, claims, |m| {
            ed.sign(m).as_ref().to_vec()
        });
        let want = Verified {
            jti: "j-1".into(),
            iss: "https://auth.example".into(),
            client,
            expires_at_s: Some(2000),
        };
        assert_eq!(issuers.verify(by_ed.as_bytes(), 1000), Some(want.clone()));
        let by_es = jwt(r#"{"alg": "ES256"}"#, claims, |m| {
            es.sign(&rng, m).unwrap().as_ref().to_vec()
        });
        assert_eq!(issuers.verify(by_es.as_bytes(), 1000), Some(want));

        // A changed claim, another issuer, alg none, an HMAC, the wrong kid,
        // a critical extension, not yet valid: unknown.
        let tampered = by_ed.replacen('.', ".e", 1);
        assert_eq!(issuers.verify(tampered.as_bytes(), 1000), None);
        let elsewhere = jwt(
            r#"{"alg": "EdDSA"}"#,
            r#"{"iss": "https://evil.example", "jti": "j-1"}"#,
            |m| ed.sign(m).as_ref().to_vec(),
        );
        assert_eq!(issuers.verify(elsewhere.as_bytes(), 1000), None);
        let none = format!("{}.{}.", enc(br#"{"alg": "none"}"#), enc(claims.as_bytes()));
        assert_eq!(issuers.verify(none.as_bytes(), 1000), None);
        let hmac = jwt(r#"{"alg": "HS256"}"#, claims, |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert_eq!(issuers.verify(hmac.as_bytes(), 1000), None);
        let wrong_kid = jwt(r#"{"alg": "EdDSA", "kid": "es"}"#, claims, |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert_eq!(issuers.verify(wrong_kid.as_bytes(), 1000), None);
        let critical = jwt(r#"{"alg": "EdDSA", "crit": ["x"]}"#, claims, |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert_eq!(issuers.verify(critical.as_bytes(), 1000), None);
        let later = jwt(
            r#"{"alg": "EdDSA"}"#,
            r#"{"iss": "https://auth.example", "jti": "j-2", "nbf": 5000}"#,
            |m| ed.sign(m).as_ref().to_vec(),
        );
        assert_eq!(issuers.verify(later.as_bytes(), 1000), None);
        assert!(issuers.verify(later.as_bytes(), 5000).is_some());
        assert_eq!(issuers.verify(b"not.a.jwt", 1000), None);
        assert_eq!(issuers.verify(b"opaque-token", 1000), None);
    }

    #[test]
    fn jwks_files_are_read_strictly() {
        let client = ClientId::new("t", "auth.example").unwrap();
        for (bad, says) in [
            ("[]", "keys"),
            (r#"{"keys": []}"#, "keys"),
            (r#"{"keys": [{"kty": "oct", "k": "AA"}]}"#, "keys[0].kty"),
            (
                r#"{"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}"#,
                "keys[0].kty",
            ),
            (
                r#"{"keys": [{"kty": "OKP", "crv": "Ed25519"}]}"#,
                "keys[0].x",
            ),
            (
                r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "alg": "RS256"}]}"#,
                "keys[0].alg",
            ),
            (
                r#"{"keys": [{"kty": "RSA", "n": "A=A", "e": "AQAB"}]}"#,
                "keys[0].n",
            ),
        ] {
            let err = JwtIssuer::from_jwks("i", client.clone(), bad).unwrap_err();
            assert!(err.starts_with(says), "{bad}: {err}");
        }
        let issuer = JwtIssuer::from_jwks(
            "i",
            client,
            r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}"#,
        )
        .unwrap();
        let twice = JwtIssuers::new(vec![issuer.clone(), issuer]).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
    }
}
