//! Baton's pure core: delegation events, their signed envelope, and the rules
//! a ledger applies to them.
//!
//! Nothing here does I/O, spawns tasks or knows about gRPC, Kafka or sled: the
//! same functions decide what the gRPC server accepts, what every projector
//! applies, and what an auditor verifies offline, so they must give the same
//! verdict on the same bytes wherever they run.

mod bundle;
mod envelope;
mod error;
mod event;
mod facts;
mod ids;
mod invalid;
mod keys;
pub mod limits;
mod memory;
mod rules;
mod state;
mod status;

pub use bundle::{VerifiedChain, verify_chain};
pub use envelope::{Envelope, PAYLOAD_TYPE_EVENT_V1};
pub use error::{Dependency, ECHO_CHARS_MAX, Error, Refusal, Result, Rule, echo};
pub use event::{
    Body, ClientKind, ClientRegistered, ClientRole, Event, EventKind, GrantType, KeysRotated,
    RegistrationMethod, RevocationTarget, Revoked, ScopeNarrowed, TokenIssued, audience, names,
    optional_text,
};
pub use facts::{Fact, Transition, earliest, transition};
pub use ids::{ClientId, EventId, Name, Subject, TokenRef, is_invisible, token_digest};
pub use invalid::Invalid;
pub use keys::{
    KeyId, PAYLOAD_TYPE_KEY_PROOF_V1, PAYLOAD_TYPE_KEY_PROOF_V2, PublicKey, SigningKey, pae,
};
pub use memory::{Applied, Empty, MemoryLedger};
pub use rules::{
    CheckError, Signer, check_copy, check_event, check_event_verified, check_live, resolve_signer,
};
pub use state::{
    ClientRecord, KeyRecord, KeyTrust, LedgerView, NameKind, Policy, RULES_VERSION, TokenRecord,
    fold,
};
pub use status::{
    BINDING_CHAIN_MAX, Cause, Check, RevocationHit, TokenStatus, Via, binding_chain, binding_depth,
    check_token, dependencies, expired, key_trust, presented_elsewhere, token_status,
};
