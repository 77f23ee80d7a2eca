//! Offline verification of an exported chain: the signed events root → leaf and
//! the registrations and key rotations that bind their signers, checked against
//! trust-root keys alone. An auditor needs no access to the ledger that produced
//! the bundle, and runs exactly the rules the ledger ran.

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::event::{Body, Event};
use crate::memory::MemoryLedger;
use crate::state::{Policy, TokenRecord};
use crate::status::{TokenStatus, token_status};

/// A verified chain, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    pub links: Vec<TokenRecord>,
    /// The leaf's status given only the events in the bundle.
    pub status: TokenStatus,
}

impl VerifiedChain {
    pub fn leaf(&self) -> &TokenRecord {
        // Architecture invariant: verify_chain never builds an empty chain.
        self.links
            .last()
            .expect("a verified chain has at least its root")
    }
}

/// Verifies `events` in order. Each pair must hold an envelope and the event
/// decoded from that envelope's own payload bytes (`baton-proto` does this).
/// Every event must pass the ledger's rules, and the token events must form one
/// unbroken path from a root grant to a leaf.
pub fn verify_chain(
    policy: Policy,
    events: &[(Envelope, Event)],
    now_s: i64,
) -> Result<VerifiedChain> {
    let mut ledger = MemoryLedger::new(policy);
    let mut chain = Vec::new();
    for (i, (envelope, event)) in events.iter().enumerate() {
        ledger
            .apply(envelope, event)
            .map_err(|refusal| Error::invalid(format!("events[{i}]"), refusal.to_string()))?;
        if matches!(event.body, Body::TokenIssued(_) | Body::ScopeNarrowed(_)) {
            chain.push((i, envelope.id()));
        }
    }
    let Some(&(_, root_id)) = chain.first() else {
        return Err(Error::invalid("events", "the bundle holds no token events"));
    };
    let mut links: Vec<TokenRecord> = Vec::with_capacity(chain.len());
    for (i, id) in chain {
        let record = ledger.token_record(&id);
        let expected_parent = links.last().map(|link| link.event);
        if record.parent != expected_parent || record.root != root_id {
            return Err(Error::invalid(
                format!("events[{i}]"),
                "token events must form one path from the root grant to the leaf, in order",
            ));
        }
        links.push(record);
    }
    let leaf = links.last().map(|link| link.event).unwrap_or(root_id);
    let status = match token_status(&ledger, ledger.policy(), &leaf, now_s) {
        Ok(status) => status,
        Err(never) => match never {},
    };
    Ok(VerifiedChain { links, status })
}
