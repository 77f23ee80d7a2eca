//! Baton's wire contract, package `baton.v1`, generated at build time from
//! `proto/`, and the explicit conversions between wire and core types.
//!
//! API boundary: wire types stop here. Everything past this crate works with
//! `baton-core` types; every conversion from the wire validates and names the
//! offending field.

mod bundle;
mod convert;

pub use bundle::{BUNDLE_FORMAT, bundle, verify_bundle};
pub use convert::{
    BATCH_RECORD_TAG, chain_event, decode_record, decode_signed, encode_record, encode_signed,
    event_kind, grant_type_to_wire, open, revocation_cause, revocation_target, seal, sign,
    token_details, token_ref, token_ref_to_wire,
};

/// The generated `baton.v1` messages and services.
#[allow(clippy::all, missing_debug_implementations, clippy::unwrap_used)]
pub mod v1 {
    // Messages always; services (`*_client`, `*_server`) with `grpc` (the
    // build script puts them behind it).
    include!(concat!(env!("OUT_DIR"), "/baton.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `baton.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/baton_descriptor.bin"));
