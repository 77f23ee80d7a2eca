//! What each fuzz target (`crates/fuzz`, run by `cargo fuzz`) does with its
//! input, shared with the normal test suite, which replays the committed
//! corpora through the same functions. Each must never panic, whatever the
//! bytes; errors are the expected answer to garbage.

use baton_core::{MemoryLedger, Policy, SigningKey};

/// A policy with a fixed TEST-ONLY trust root, for targets that run rules.
fn policy() -> Policy {
    Policy::new([SigningKey::from_seed(&[1; 32]).public_key()])
}

/// A log record (one `SignedEvent`, or a tagged `LogBatch`) as a projector
/// reads it from Kafka: decoded, opened, and each event run through the
/// rules against an empty ledger, as written and as appended.
pub fn record(data: &[u8]) {
    let Ok(events) = baton_proto::decode_record(data) else {
        return;
    };
    let mut ledger = MemoryLedger::new(policy());
    for (envelope, event) in &events {
        let _ = ledger.try_apply(envelope, event, Some(1_800_000_000));
        let _ = ledger.try_apply(envelope, event, None);
    }
    // The same bytes as an Append request's events.
    if let Ok(signed) = <baton_proto::v1::SignedEvent as prost::Message>::decode(data) {
        let _ = baton_proto::open(signed);
    }
}

/// An exported chain bundle, verified offline as `baton verify` does.
pub fn bundle(data: &[u8]) {
    let _ = baton_proto::verify_bundle(data, policy(), 1_800_000_000);
}

/// Every text form a caller sends: consistency and resume tokens, token
/// references, event ids, identifiers.
pub fn tokens(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = baton_log::ConsistencyToken::parse(text);
    let _ = baton_core::TokenRef::parse("token", text);
    let _ = baton_core::EventId::parse("event_id", text);
    let _ = baton_core::ClientId::new("client_id", text);
    let _ = baton_core::Subject::new("subject", text);
    let _ = baton_core::Name::new("scope", text);
    let _ = baton_core::audience("audience", text);
    let _ = baton_core::echo(text);
}

/// An embedded log file, as found on disk after a crash: opened (recovered)
/// and read back.
pub fn embedded_log(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join("events.log"), data).is_err() {
        return;
    }
    let _ = baton_log::EmbeddedLog::open(dir.path());
}
