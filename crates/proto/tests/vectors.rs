//! Signing test vectors for clients in other languages: fixed TEST-ONLY keys →
//! the exact payload bytes, signature and event id of one event of each kind.
//! This test regenerates them and compares with `proto/testvectors/events.json`
//! byte for byte; `BATON_REGENERATE_VECTORS=1` rewrites the file instead (do
//! that only when the wire format changes on purpose).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use baton_core::{
    Body, ClientId, ClientKind, ClientRegistered, ClientRole, Envelope, Event, EventId, GrantType,
    KeysRotated, MemoryLedger, Name, Policy, RegistrationMethod, RevocationTarget, Revoked,
    ScopeNarrowed, SigningKey, Subject, TokenIssued, TokenRef, pae, token_digest,
};
use baton_proto::{open, seal, v1};
use prost::Message as _;
use serde_json::{Map, Value, json};

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The proto3 JSON mapping of an event (original field names, default values
/// omitted), so another language can parse it, serialize it, and compare.
fn event_json(event: &v1::Event) -> Value {
    let mut fields = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: Value| {
        let empty = matches!(&value, Value::String(s) if s.is_empty() || s == "0")
            || matches!(&value, Value::Array(a) if a.is_empty())
            || value.is_null();
        if !empty {
            map.insert(key.to_owned(), value);
        }
    };
    let strings = |v: &[String]| Value::from(v.to_vec());
    let blobs = |v: &[Vec<u8>]| Value::from(v.iter().map(|b| base64(b)).collect::<Vec<_>>());
    let token = |t: &Option<v1::TokenRef>| match t.as_ref().and_then(|t| t.r#ref.as_ref()) {
        Some(v1::token_ref::Ref::Jti(j)) => json!({ "jti": j }),
        Some(v1::token_ref::Ref::Digest(d)) => json!({ "digest": base64(d) }),
        None => Value::Null,
    };
    put(
        &mut fields,
        "signer_key_id",
        base64(&event.signer_key_id).into(),
    );
    put(
        &mut fields,
        "created_at_unix_ms",
        event.created_at_unix_ms.to_string().into(),
    );
    let mut body = Map::new();
    let name = match event.body.as_ref().unwrap() {
        v1::event::Body::ClientRegistered(b) => {
            put(&mut body, "client_id", b.client_id.clone().into());
            put(&mut body, "kind", b.kind().as_str_name().into());
            put(&mut body, "role", b.role().as_str_name().into());
            put(
                &mut body,
                "registration",
                b.registration().as_str_name().into(),
            );
            put(
                &mut body,
                "metadata_document_url",
                b.metadata_document_url.clone().into(),
            );
            put(&mut body, "public_keys", blobs(&b.public_keys));
            put(&mut body, "scopes", strings(&b.scopes));
            put(&mut body, "tools", strings(&b.tools));
            put(&mut body, "registered_by", b.registered_by.clone().into());
            put(&mut body, "public_key_proofs", blobs(&b.public_key_proofs));
            "client_registered"
        }
        v1::event::Body::TokenIssued(b) => {
            put(&mut body, "token", token(&b.token));
            put(&mut body, "subject", b.subject.clone().into());
            put(&mut body, "issuer", b.issuer.clone().into());
            put(&mut body, "holder", b.holder.clone().into());
            put(&mut body, "audience", b.audience.clone().into());
            put(&mut body, "scopes", strings(&b.scopes));
            put(&mut body, "tools", strings(&b.tools));
            put(&mut body, "grant_type", b.grant_type().as_str_name().into());
            put(
                &mut body,
                "issued_at_unix_s",
                b.issued_at_unix_s.to_string().into(),
            );
            put(
                &mut body,
                "expires_at_unix_s",
                b.expires_at_unix_s.to_string().into(),
            );
            put(&mut body, "session_id", b.session_id.clone().into());
            put(&mut body, "transaction_id", b.transaction_id.clone().into());
            "token_issued"
        }
        v1::event::Body::ScopeNarrowed(b) => {
            put(&mut body, "token", token(&b.token));
            put(
                &mut body,
                "parent_event_id",
                base64(&b.parent_event_id).into(),
            );
            put(&mut body, "root_event_id", base64(&b.root_event_id).into());
            body.insert("depth".into(), b.depth.into());
            put(&mut body, "performed_by", b.performed_by.clone().into());
            put(&mut body, "on_behalf_of", b.on_behalf_of.clone().into());
            put(&mut body, "holder", b.holder.clone().into());
            put(&mut body, "audience", b.audience.clone().into());
            put(&mut body, "scopes", strings(&b.scopes));
            put(&mut body, "tools", strings(&b.tools));
            put(
                &mut body,
                "issued_at_unix_s",
                b.issued_at_unix_s.to_string().into(),
            );
            put(
                &mut body,
                "expires_at_unix_s",
                b.expires_at_unix_s.to_string().into(),
            );
            put(&mut body, "transaction_id", b.transaction_id.clone().into());
            "scope_narrowed"
        }
        v1::event::Body::Revoked(b) => {
            match b.target.as_ref().unwrap() {
                v1::revoked::Target::Token(t) => put(&mut body, "token", token(&Some(t.clone()))),
                v1::revoked::Target::ClientId(c) => put(&mut body, "client_id", c.clone().into()),
                v1::revoked::Target::Subject(s) => put(&mut body, "subject", s.clone().into()),
                v1::revoked::Target::KeyId(k) => put(&mut body, "key_id", base64(k).into()),
            }
            put(&mut body, "reason", b.reason.clone().into());
            put(&mut body, "revoked_by", b.revoked_by.clone().into());
            "revoked"
        }
        v1::event::Body::KeysRotated(b) => {
            put(&mut body, "client_id", b.client_id.clone().into());
            put(&mut body, "add_public_keys", blobs(&b.add_public_keys));
            put(
                &mut body,
                "add_public_key_proofs",
                blobs(&b.add_public_key_proofs),
            );
            put(&mut body, "retire_key_ids", blobs(&b.retire_key_ids));
            "keys_rotated"
        }
    };
    fields.insert(name.to_owned(), Value::Object(body));
    Value::Object(fields)
}

fn names(values: &[&str]) -> BTreeSet<Name> {
    values
        .iter()
        .map(|v| Name::new("name", v).unwrap())
        .collect()
}

fn id(value: &str) -> ClientId {
    ClientId::new("client", value).unwrap()
}

/// TEST-ONLY keys from fixed seeds: never use these for anything real.
fn test_key(byte: u8) -> SigningKey {
    SigningKey::from_seed(&[byte; 32])
}

/// The vector events, in an order a ledger accepts: each is signed and applied.
fn vector_events() -> Vec<(&'static str, u8, Envelope, Event)> {
    let (root, auth, gateway, gateway_next) = (
        test_key(0x01),
        test_key(0x02),
        test_key(0x03),
        test_key(0x04),
    );
    let mut out = Vec::new();
    let mut push = |name: &'static str,
                    seed: u8,
                    key: &SigningKey,
                    created_at_ms: i64,
                    body: Body|
     -> EventId {
        let event = Event {
            signer: key.key_id(),
            created_at_ms,
            body,
        };
        let envelope = seal(key, &event).unwrap();
        let id = envelope.id();
        out.push((name, seed, envelope, event));
        id
    };
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    push(
        "client_registered/authorization_server",
        0x01,
        &root,
        t0,
        Body::ClientRegistered(ClientRegistered {
            client: id("https://auth.example.com"),
            kind: ClientKind::AuthorizationServer,
            role: ClientRole::DelegatingLayer,
            registration: RegistrationMethod::PreRegistered,
            metadata_document_url: None,
            public_keys: vec![auth.public_key()],
            key_proofs: vec![auth.prove_registration(&id("https://auth.example.com"), None)],
            scopes: names(&["files:read", "files:write", "repo:read"]),
            tools: names(&["github/search", "github/create_issue", "fs/read"]),
            registered_by: None,
        }),
    );
    push(
        "client_registered/gateway",
        0x02,
        &auth,
        t0 + 1000,
        Body::ClientRegistered(ClientRegistered {
            client: id("gateway-1"),
            kind: ClientKind::Gateway,
            role: ClientRole::DelegatingLayer,
            registration: RegistrationMethod::MetadataDocument,
            metadata_document_url: Some("https://gateway.example.com/oauth/client.json".into()),
            public_keys: vec![gateway.public_key()],
            key_proofs: vec![
                gateway.prove_registration(&id("gateway-1"), Some(&id("https://auth.example.com"))),
            ],
            scopes: names(&["files:read", "repo:read"]),
            tools: names(&["github/search", "fs/read"]),
            registered_by: Some(id("https://auth.example.com")),
        }),
    );
    push(
        "client_registered/mcp_server",
        0x02,
        &auth,
        t0 + 2000,
        Body::ClientRegistered(ClientRegistered {
            client: id("mcp-github"),
            kind: ClientKind::McpServer,
            role: ClientRole::ToolEndpoint,
            registration: RegistrationMethod::Dynamic,
            metadata_document_url: None,
            public_keys: vec![test_key(0x05).public_key()],
            key_proofs: vec![
                test_key(0x05)
                    .prove_registration(&id("mcp-github"), Some(&id("https://auth.example.com"))),
            ],
            scopes: names(&["repo:read"]),
            tools: names(&["github/search"]),
            registered_by: Some(id("https://auth.example.com")),
        }),
    );
    let root_id = push(
        "token_issued",
        0x02,
        &auth,
        t0 + 3000,
        Body::TokenIssued(TokenIssued {
            token: TokenRef::jti("token", "9b2f6c1e-root").unwrap(),
            subject: Subject::new("subject", "user:alice@example.com").unwrap(),
            issuer: id("https://auth.example.com"),
            holder: id("gateway-1"),
            audience: "https://gateway.example.com/mcp".into(),
            scopes: names(&["files:read", "repo:read"]),
            tools: names(&["github/search", "fs/read"]),
            grant: GrantType::AuthorizationCodePkce,
            issued_at_s: 1_767_225_603,
            expires_at_s: 1_767_229_203,
            session_id: Some("sess-42".into()),
            transaction_id: None,
        }),
    );
    let digest = token_digest(b"test-only.downstream.token");
    push(
        "scope_narrowed",
        0x03,
        &gateway,
        t0 + 4000,
        Body::ScopeNarrowed(ScopeNarrowed {
            token: digest.clone(),
            parent: root_id,
            root: root_id,
            depth: 1,
            performed_by: id("gateway-1"),
            on_behalf_of: Subject::new("subject", "user:alice@example.com").unwrap(),
            holder: id("mcp-github"),
            audience: "https://mcp-github.example.com/".into(),
            scopes: names(&["repo:read"]),
            tools: names(&["github/search"]),
            issued_at_s: 1_767_225_604,
            expires_at_s: 1_767_226_504,
            transaction_id: Some("txn-7".into()),
        }),
    );
    push(
        "keys_rotated",
        0x03,
        &gateway,
        t0 + 5000,
        Body::KeysRotated(KeysRotated {
            client: id("gateway-1"),
            add: vec![gateway_next.public_key()],
            add_proofs: vec![gateway_next.prove_possession(&id("gateway-1"))],
            retire: vec![gateway.key_id()],
        }),
    );
    push(
        "revoked/token",
        0x02,
        &auth,
        t0 + 6000,
        Body::Revoked(Revoked {
            target: RevocationTarget::Token(digest),
            reason: "user signed out".into(),
            revoked_by: Some(id("https://auth.example.com")),
            requested_by: None,
        }),
    );
    push(
        "revoked/subject",
        0x01,
        &root,
        t0 + 7000,
        Body::Revoked(Revoked {
            target: RevocationTarget::Subject(
                Subject::new("subject", "user:mallory@example.com").unwrap(),
            ),
            reason: "account compromised".into(),
            revoked_by: None,
            requested_by: None,
        }),
    );
    out
}

fn render() -> String {
    let events = vector_events();
    let vectors: Vec<Value> = events
        .iter()
        .map(|(name, seed, envelope, _)| {
            let key = test_key(*seed);
            let wire = v1::Event::decode(envelope.payload()).unwrap();
            json!({
                "name": name,
                "signing_key_seed_hex": hex::encode([*seed; 32]),
                "public_key_hex": hex::encode(key.public_key().to_bytes()),
                "key_id_hex": hex::encode(key.key_id().as_bytes()),
                "payload_type": envelope.payload_type(),
                "event": event_json(&wire),
                "payload_hex": hex::encode(envelope.payload()),
                "pae_hex": hex::encode(pae(envelope.payload_type(), envelope.payload())),
                "signature_hex": hex::encode(envelope.signature()),
                "event_id_hex": hex::encode(envelope.id().as_bytes()),
            })
        })
        .collect();
    let digest_input = b"test-only.downstream.token";
    let document = json!({
        "description": "Baton signing test vectors (baton.v1). TEST-ONLY keys from fixed seeds: never use them for anything real.",
        "algorithms": {
            "pae": "DSSEv1 SP LEN(payload_type) SP payload_type SP LEN(payload) SP payload, lengths in ASCII decimal",
            "signature": "ed25519 (RFC 8032) over pae, verified with verify_strict",
            "event_id": "blake3 derive_key(context \"baton.v1 event id\", pae)",
            "key_id": "blake3 derive_key(context \"baton.v1 key id\", public key bytes)",
            "token_digest": "blake3 derive_key(context \"baton.v1 token digest\", token bytes)",
        },
        "token_digest": {
            "token_utf8": std::str::from_utf8(digest_input).unwrap(),
            "digest_hex": match token_digest(digest_input) { TokenRef::Digest(d) => hex::encode(d), TokenRef::Jti(_) => unreachable!() },
        },
        "vectors": vectors,
    });
    serde_json::to_string_pretty(&document).unwrap() + "\n"
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/testvectors/events.json")
}

#[test]
fn vectors_match_the_committed_file_byte_for_byte() {
    let rendered = render();
    if std::env::var_os("BATON_REGENERATE_VECTORS").is_some() {
        std::fs::write(vectors_path(), &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(vectors_path()).unwrap();
    assert!(
        committed == rendered,
        "proto/testvectors/events.json differs from what the code produces now"
    );
}

#[test]
fn vector_events_are_accepted_by_a_ledger_and_round_trip() {
    let mut ledger = MemoryLedger::new(Policy::new([test_key(0x01).public_key()]));
    for (name, _, envelope, event) in vector_events() {
        let (opened_envelope, opened) = open(v1::SignedEvent::from(&envelope)).unwrap();
        assert_eq!(opened, event, "{name}: decode(encode(event)) differs");
        assert_eq!(opened_envelope, envelope);
        ledger
            .append(&opened_envelope, &opened, 1_767_225_610)
            .unwrap_or_else(|r| panic!("{name}: {r}"));
    }
}
