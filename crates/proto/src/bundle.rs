//! Exported chain bundles: what `baton export` writes and `baton verify`
//! checks offline, against trust-root keys alone.

use baton_core::{Error, Policy, Result, TokenRef, VerifiedChain, verify_chain};
use prost::Message as _;

use crate::v1;

/// The format name every bundle carries.
pub const BUNDLE_FORMAT: &str = "baton.chain-bundle.v1";
/// Most events a bundle may hold: a maximal chain and its registrations.
const BUNDLE_EVENTS_MAX: usize = 1024;
/// Largest bundle read.
const BUNDLE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A bundle for `leaf` holding `events` (dependencies first).
pub fn bundle(leaf: &TokenRef, events: &[baton_core::Envelope]) -> v1::ChainBundle {
    v1::ChainBundle {
        format: BUNDLE_FORMAT.into(),
        leaf: Some(crate::token_ref_to_wire(leaf)),
        events: events.iter().map(v1::SignedEvent::from).collect(),
    }
}

/// Verifies an encoded bundle: its container must be exactly as Baton writes
/// it (so no byte of the file goes unchecked), every event must pass the
/// ledger's rules under `policy`, and the token events must form one path that
/// ends at the bundle's leaf.
pub fn verify_bundle(bytes: &[u8], policy: Policy, now_s: i64) -> Result<VerifiedChain> {
    if bytes.len() > BUNDLE_BYTES_MAX {
        return Err(Error::invalid(
            "bundle",
            format!("is {} bytes, larger than {BUNDLE_BYTES_MAX}", bytes.len()),
        ));
    }
    let bundle = v1::ChainBundle::decode(bytes)
        .map_err(|e| Error::invalid("bundle", format!("is not a baton.v1.ChainBundle: {e}")))?;
    if bundle.encode_to_vec() != bytes {
        return Err(Error::invalid(
            "bundle",
            "is not in the form baton writes (unknown, repeated or reordered fields)",
        ));
    }
    if bundle.format != BUNDLE_FORMAT {
        return Err(Error::invalid(
            "format",
            format!("{:?} is not {BUNDLE_FORMAT:?}", bundle.format),
        ));
    }
    if bundle.events.len() > BUNDLE_EVENTS_MAX {
        return Err(Error::invalid(
            "events",
            format!(
                "has {} events, more than {BUNDLE_EVENTS_MAX}",
                bundle.events.len()
            ),
        ));
    }
    let leaf = crate::token_ref("leaf", bundle.leaf)?;
    let events = bundle
        .events
        .into_iter()
        .enumerate()
        .map(|(i, signed)| crate::open(signed).map_err(|e| e.within(&format!("events[{i}]"))))
        .collect::<Result<Vec<_>>>()?;
    let chain = verify_chain(policy, &events, now_s)?;
    if chain.leaf().token != leaf {
        return Err(Error::invalid(
            "leaf",
            format!(
                "the bundle is about {leaf} but its chain ends at {}",
                chain.leaf().token
            ),
        ));
    }
    Ok(chain)
}
