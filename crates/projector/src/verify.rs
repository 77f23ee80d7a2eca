//! Signature verification for the projector and for the node's Append,
//! which borrows it: strict ed25519 over a batch, in parallel, remembering
//! what this process verified. Reads the projection only through
//! [`Staged`]; the rest of the crate calls in, never the other way.

use baton_core::{Body, Envelope, Event, LedgerView as _, Policy, PublicKey};

use crate::Result;
use crate::view::{Staged, View};

/// Below this many records, verifying on one thread is cheaper than spawning.
const PARALLEL_VERIFY_MIN: usize = 16;

/// Verifies the signatures of a batch of events strictly, in parallel, each
/// against the public key its key id names — a trust root, a key bound in
/// `view`, or a key the batch itself registers — and says which verified. A
/// `false` means "not verified here" (no key yet, or a bad signature); the
/// rules then verify it themselves, in order, and refuse it if it fails. The
/// verdicts only let the in-order pass skip work, never change an outcome.
///
/// A signature this process has already verified strictly (the node's Append
/// verifies what its projector then reads back from the log) is not verified
/// again: the verdict of `verify_strict` depends only on the signed bytes, the
/// public key and the signature, and the cache is keyed by a hash of exactly
/// those ([`verdict_key`]), so a copy with any other signature or key misses.
pub fn verify_in_parallel(
    policy: &Policy,
    view: &Staged<'_>,
    events: &[Option<&(Envelope, Event)>],
) -> Result<Vec<bool>> {
    let mut batch_keys: std::collections::HashMap<baton_core::KeyId, PublicKey> =
        std::collections::HashMap::new();
    for (_, event) in events.iter().flatten() {
        let added: &[PublicKey] = match &event.body {
            Body::ClientRegistered(reg) => &reg.public_keys,
            Body::KeysRotated(rotation) => &rotation.add,
            _ => &[],
        };
        batch_keys.extend(added.iter().map(|k| (k.key_id(), *k)));
    }
    let cache = view.verified_signatures();
    let mut out = vec![false; events.len()];
    let mut work: Vec<(usize, &Envelope, PublicKey, [u8; 32])> = Vec::new();
    for (i, item) in events.iter().enumerate() {
        let Some((envelope, _)) = item else { continue };
        let id = envelope.key_id();
        let key = match policy.trust_roots.get(&id).or_else(|| batch_keys.get(&id)) {
            Some(key) => *key,
            None => match view.key(&id)? {
                Some(record) => record.public_key,
                None => continue,
            },
        };
        if key.key_id() != id {
            continue;
        }
        let verdict = verdict_key(envelope, &key);
        if cache.contains(&verdict) {
            out[i] = true;
        } else {
            work.push((i, envelope, key, verdict));
        }
    }
    let check = |part: &[(usize, &Envelope, PublicKey, [u8; 32])]| -> Vec<(usize, [u8; 32])> {
        part.iter()
            .filter(|(_, envelope, key, _)| envelope.verify(key).is_ok())
            .map(|(i, _, _, verdict)| (*i, *verdict))
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let verified: Vec<(usize, [u8; 32])> = if work.len() < PARALLEL_VERIFY_MIN || threads < 2 {
        check(&work)
    } else {
        let chunk = work.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .chunks(chunk)
                .map(|part| scope.spawn(move || check(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("verify thread"))
                .collect()
        })
    };
    for (i, _) in &verified {
        out[*i] = true;
    }
    cache.insert_all(verified.into_iter().map(|(_, verdict)| verdict));
    Ok(out)
}

/// What a strict verification's verdict depends on, hashed: the signed bytes
/// (through the event id, a hash of the payload type and payload as signed),
/// the public key, and the signature.
pub fn verdict_key(envelope: &Envelope, key: &PublicKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("baton.v1 verified signature");
    hasher.update(&envelope.id().0);
    hasher.update(&key.to_bytes());
    hasher.update(envelope.signature());
    *hasher.finalize().as_bytes()
}

impl View<'_> {
    /// Verifies events' signatures strictly, in parallel, against the keys
    /// this view (or the events themselves) bind: which verified (see
    /// [`verify_in_parallel`]).
    pub fn verify(
        &self,
        policy: &Policy,
        events: &[Option<&(baton_core::Envelope, baton_core::Event)>],
    ) -> Result<Vec<bool>> {
        verify_in_parallel(policy, self.staged(), events)
    }
}
