//! Conversions from the wire refuse malformed input with the field and the
//! reason; arbitrary payload bytes never panic the decoder.

#![allow(clippy::unwrap_used)]

use baton_core::{PAYLOAD_TYPE_EVENT_V1, SigningKey, limits};
use baton_proto::{open, v1};
use proptest::prelude::*;
use prost::Message as _;

/// Signs a wire event as-is (no validation), as a misbehaving writer would.
fn signed(event: &v1::Event) -> v1::SignedEvent {
    let key = SigningKey::from_seed(&[9; 32]);
    let envelope =
        baton_core::Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, event.encode_to_vec()).unwrap();
    v1::SignedEvent::from(&envelope)
}

fn issued() -> v1::TokenIssued {
    v1::TokenIssued {
        token: Some(v1::TokenRef {
            r#ref: Some(v1::token_ref::Ref::Jti("t-1".into())),
        }),
        subject: "user:alice".into(),
        issuer: "as".into(),
        holder: "gateway".into(),
        audience: "https://gateway.example/mcp".into(),
        scopes: vec!["files:read".into()],
        tools: vec!["fs/read".into()],
        grant_type: v1::GrantType::AuthorizationCodePkce as i32,
        issued_at_unix_s: 1_700_000_000,
        expires_at_unix_s: 1_700_000_600,
        session_id: String::new(),
        transaction_id: String::new(),
    }
}

fn event(body: v1::event::Body) -> v1::Event {
    v1::Event {
        signer_key_id: SigningKey::from_seed(&[9; 32]).key_id().as_bytes().to_vec(),
        created_at_unix_ms: 1_700_000_000_000,
        body: Some(body),
    }
}

fn error_of(event: v1::Event) -> String {
    open(signed(&event)).unwrap_err().to_string()
}

#[test]
fn a_well_formed_event_opens() {
    let (envelope, opened) = open(signed(&event(v1::event::Body::TokenIssued(issued())))).unwrap();
    assert_eq!(opened.kind(), baton_core::EventKind::TokenIssued);
    assert_eq!(envelope.payload_type(), PAYLOAD_TYPE_EVENT_V1);
}

#[test]
fn refusals_name_the_field_and_the_reason() {
    let mut missing = issued();
    missing.token = None;
    assert_eq!(
        error_of(event(v1::event::Body::TokenIssued(missing))),
        "token_issued.token: is missing"
    );

    let mut unknown_enum = issued();
    unknown_enum.grant_type = 42;
    assert_eq!(
        error_of(event(v1::event::Body::TokenIssued(unknown_enum))),
        "token_issued.grant_type: unknown enum value 42"
    );

    let mut unspecified = issued();
    unspecified.grant_type = 0;
    assert_eq!(
        error_of(event(v1::event::Body::TokenIssued(unspecified))),
        "token_issued.grant_type: must be set (it is unspecified)"
    );

    let mut oversized = issued();
    oversized.scopes = (0..=limits::LIST_LEN_MAX)
        .map(|i| format!("s{i}"))
        .collect();
    assert_eq!(
        error_of(event(v1::event::Body::TokenIssued(oversized))),
        "token_issued.scopes: has 257 entries, more than 256"
    );

    let registration = v1::ClientRegistered {
        client_id: "gateway".into(),
        kind: v1::ClientKind::Gateway as i32,
        role: v1::ClientRole::DelegatingLayer as i32,
        registration: v1::RegistrationMethod::PreRegistered as i32,
        public_keys: vec![vec![1; 31]],
        ..Default::default()
    };
    assert_eq!(
        error_of(event(v1::event::Body::ClientRegistered(registration))),
        "client_registered.public_keys[0]: ed25519 public key must be 32 bytes, got 31"
    );

    let hop = v1::ScopeNarrowed {
        depth: 1,
        parent_event_id: vec![0; 16],
        ..Default::default()
    };
    assert_eq!(
        error_of(event(v1::event::Body::ScopeNarrowed(hop))),
        "scope_narrowed.token: is missing"
    );

    let mut no_body = event(v1::event::Body::TokenIssued(issued()));
    no_body.body = None;
    assert!(error_of(no_body).starts_with("body: is missing"));

    let mut short_signer = event(v1::event::Body::TokenIssued(issued()));
    short_signer.signer_key_id = vec![0; 8];
    assert_eq!(
        error_of(short_signer),
        "signer_key_id: key id must be 32 bytes, got 8"
    );
}

#[test]
fn envelope_fields_are_checked() {
    let mut wire = signed(&event(v1::event::Body::TokenIssued(issued())));
    wire.signature.pop();
    assert_eq!(
        open(wire).unwrap_err().to_string(),
        "signature: must be 64 bytes, got 63"
    );
    let mut wire = signed(&event(v1::event::Body::TokenIssued(issued())));
    wire.payload_type = "application/json".into();
    assert!(
        open(wire)
            .unwrap_err()
            .to_string()
            .starts_with("payload_type: \"application/json\" is not supported")
    );
    let mut wire = signed(&event(v1::event::Body::TokenIssued(issued())));
    wire.payload = vec![0; limits::PAYLOAD_BYTES_MAX + 1];
    assert_eq!(
        open(wire).unwrap_err().to_string(),
        "payload: is 65537 bytes, larger than 65536"
    );
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512), key_id in proptest::collection::vec(any::<u8>(), 0..40)) {
        let wire = v1::SignedEvent {
            payload,
            payload_type: PAYLOAD_TYPE_EVENT_V1.into(),
            key_id,
            signature: vec![0; 64],
        };
        let _ = open(wire);
    }

    #[test]
    fn valid_events_round_trip(jti in "[a-z0-9-]{1,40}", scopes in proptest::collection::btree_set("[a-z:]{1,12}", 0..8), exp in 1i64..1_000_000) {
        let mut body = issued();
        body.token = Some(v1::TokenRef { r#ref: Some(v1::token_ref::Ref::Jti(jti)) });
        body.scopes = scopes.into_iter().collect();
        body.expires_at_unix_s = body.issued_at_unix_s + exp;
        let wire = event(v1::event::Body::TokenIssued(body));
        let (_, core) = open(signed(&wire)).unwrap();
        prop_assert_eq!(v1::Event::from(&core), wire);
    }
}
