//! The signed envelope: payload bytes, their type, the signing key's id and an
//! ed25519 signature over a DSSE-style pre-authentication encoding (PAE).
//!
//! Architecture invariant: the signature and the event id are computed over the
//! payload bytes exactly as received. Nothing here (or anywhere) re-encodes a
//! decoded event to verify it.

use std::fmt;

use ed25519_dalek::Signature;

use crate::error::{Error, Refusal, Result, Rule};
use crate::ids::{EVENT_ID_CONTEXT, EventId};
use crate::keys::{KeyId, PublicKey, SigningKey, pae};
use crate::limits::{PAYLOAD_BYTES_MAX, TEXT_LEN_MAX};

/// The payload type of a protobuf-encoded `baton.v1.Event`.
pub const PAYLOAD_TYPE_EVENT_V1: &str = "application/vnd.baton.event.v1+protobuf";

/// A signed payload. Construction checks sizes; [`Envelope::verify`] checks the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    payload: Vec<u8>,
    payload_type: String,
    key_id: KeyId,
    signature: [u8; 64],
}

impl Envelope {
    /// Signs `payload` as `payload_type` with `key`.
    pub fn sign(key: &SigningKey, payload_type: &str, payload: Vec<u8>) -> Result<Self> {
        check_sizes(payload_type, &payload)?;
        let signature = key.sign_raw(&pae(payload_type, &payload));
        Ok(Envelope {
            payload,
            payload_type: payload_type.to_owned(),
            key_id: key.key_id(),
            signature,
        })
    }

    /// Reassembles a received envelope, checking field lengths (not the signature).
    pub fn from_parts(
        payload: Vec<u8>,
        payload_type: String,
        key_id: &[u8],
        signature: &[u8],
    ) -> Result<Self> {
        check_sizes(&payload_type, &payload)?;
        let key_id = KeyId::from_slice("key_id", key_id)?;
        let signature: [u8; 64] = signature.try_into().map_err(|_| {
            Error::invalid(
                "signature",
                format!("must be 64 bytes, got {}", signature.len()),
            )
        })?;
        Ok(Envelope {
            payload,
            payload_type,
            key_id,
            signature,
        })
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The event id: blake3 derive_key("baton.v1 event id", PAE(type, payload)).
    /// It covers what is signed and not the signature, and ed25519 signatures are
    /// deterministic, so a retried append has the same id.
    pub fn id(&self) -> EventId {
        let mut hasher = blake3::Hasher::new_derive_key(EVENT_ID_CONTEXT);
        hasher.update(&crate::keys::pae_header(
            &self.payload_type,
            self.payload.len(),
        ));
        hasher.update(&self.payload);
        EventId(*hasher.finalize().as_bytes())
    }

    /// Strict ed25519 verification against `key`, which must be the key the
    /// envelope names. The only verification whose verdict Baton acts on.
    pub fn verify(&self, key: &PublicKey) -> Result<(), Refusal> {
        if key.key_id() != self.key_id {
            return Err(Refusal::new(
                Rule::Signature,
                "key_id",
                format!(
                    "envelope names {} but was checked against {}",
                    self.key_id,
                    key.key_id()
                ),
            ));
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verifying()
            .verify_strict(&pae(&self.payload_type, &self.payload), &signature)
            .map_err(|_| {
                Refusal::new(
                    Rule::Signature,
                    "signature",
                    format!(
                        "does not verify under {} for payload type {:?}",
                        self.key_id, self.payload_type
                    ),
                )
            })
    }
}

fn check_sizes(payload_type: &str, payload: &[u8]) -> Result<()> {
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(Error::invalid(
            "payload",
            format!(
                "is {} bytes, larger than {PAYLOAD_BYTES_MAX}",
                payload.len()
            ),
        ));
    }
    if payload_type.is_empty() || payload_type.len() > TEXT_LEN_MAX {
        return Err(Error::invalid(
            "payload_type",
            format!("length {} is not in 1..={TEXT_LEN_MAX}", payload_type.len()),
        ));
    }
    Ok(())
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id())
            .field("payload_type", &self.payload_type)
            .field("payload_len", &self.payload.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn pae_matches_the_dsse_definition() {
        assert_eq!(pae("t", b"hi"), b"DSSEv1 1 t 2 hi".to_vec());
    }

    proptest! {
        #[test]
        fn signed_envelopes_verify(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let key = SigningKey::from_seed(&seed);
            let envelope = Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, payload).unwrap();
            prop_assert!(envelope.verify(&key.public_key()).is_ok());
        }

        #[test]
        fn any_flipped_payload_bit_fails(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 1..256), bit in any::<prop::sample::Index>()) {
            let key = SigningKey::from_seed(&seed);
            let good = Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, payload).unwrap();
            let mut bytes = good.payload.clone();
            let bit = bit.index(bytes.len() * 8);
            flip(&mut bytes, bit);
            let bad = Envelope { payload: bytes, ..good.clone() };
            prop_assert!(bad.verify(&key.public_key()).is_err());
            prop_assert_ne!(bad.id(), good.id());
        }

        #[test]
        fn any_flipped_signature_bit_fails(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..256), bit in 0usize..512) {
            let key = SigningKey::from_seed(&seed);
            let mut envelope = Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, payload).unwrap();
            flip(&mut envelope.signature, bit);
            prop_assert!(envelope.verify(&key.public_key()).is_err());
        }

        #[test]
        fn any_flipped_public_key_bit_fails(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..256), bit in 0usize..256) {
            let key = SigningKey::from_seed(&seed);
            let envelope = Envelope::sign(&key, PAYLOAD_TYPE_EVENT_V1, payload).unwrap();
            let mut public = key.public_key().to_bytes();
            flip(&mut public, bit);
            // Either the flipped bytes are no usable key at all, or a different key
            // (with a different id) under which the signature must not verify —
            // including when the envelope is relabelled with that key's id.
            if let Ok(other) = PublicKey::from_slice("k", &public) {
                prop_assert!(envelope.verify(&other).is_err());
                let relabelled = Envelope { key_id: other.key_id(), ..envelope.clone() };
                prop_assert!(relabelled.verify(&other).is_err());
            }
        }

        #[test]
        fn a_signature_for_another_payload_type_fails(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..256), other_type in "[a-z/.+-]{1,40}") {
            prop_assume!(other_type != PAYLOAD_TYPE_EVENT_V1);
            let key = SigningKey::from_seed(&seed);
            let signed = Envelope::sign(&key, &other_type, payload).unwrap();
            let relabelled = Envelope { payload_type: PAYLOAD_TYPE_EVENT_V1.to_owned(), ..signed.clone() };
            prop_assert!(relabelled.verify(&key.public_key()).is_err());
            prop_assert_ne!(relabelled.id(), signed.id());
        }
    }
}
