//! Key files: a private ed25519 seed in a file only its owner can read. Baton
//! never takes a private key inline (flag, environment or config), and refuses
//! a key file that others can read.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use baton_core::SigningKey;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const FILE_TYPE: &str = "baton-ed25519-private-key";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    seed_hex: String,
    public_key_hex: String,
    key_id: String,
}

/// Writes a fresh key to `path` (created with mode 0600; never overwritten).
pub fn generate(path: &Path) -> Result<SigningKey> {
    let key = SigningKey::generate();
    let file = KeyFile {
        kind: FILE_TYPE.into(),
        seed_hex: hex::encode(key.to_seed()),
        public_key_hex: hex::encode(key.public_key().to_bytes()),
        key_id: key.key_id().to_string(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| key_file(path, e))?;
    write_private(path, format!("{text}\n").as_bytes())?;
    Ok(key)
}

/// Writes a new file only its owner can read (mode 0600 from creation;
/// an existing file is never overwritten).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_file(path, format!("creating: {e}")))?;
    out.write_all(contents)
        .map_err(|e| key_file(path, format!("writing: {e}")))
}

fn key_file(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::KeyFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads a key file, refusing one that group or others can read.
pub fn load(path: &Path) -> Result<SigningKey> {
    let mode = std::fs::metadata(path)
        .map_err(|e| key_file(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_file(
            path,
            format!(
                "mode {:o} lets others read it; run `chmod 600 {}`",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| key_file(path, e))?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| key_file(path, e))?;
    if file.kind != FILE_TYPE {
        return Err(key_file(
            path,
            format!(
                "type is {:?}, not {FILE_TYPE:?}",
                baton_core::echo(&file.kind)
            ),
        ));
    }
    let seed: [u8; 32] = hex::decode(&file.seed_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| key_file(path, "seed_hex is not 64 hex digits"))?;
    let key = SigningKey::from_seed(&seed);
    if hex::encode(key.public_key().to_bytes()) != file.public_key_hex {
        return Err(key_file(path, "public_key_hex does not match the seed"));
    }
    Ok(key)
}

/// A key to register to `client` by `registrar` (`None`: a trust root),
/// with its proof of possession: a key file (the proof is made with it), or
/// `PUBLIC:PROOF` in hex as `baton pubkey --proof-for` prints it for a
/// client that keeps its key to itself.
pub fn bound(
    spec: &str,
    client: &baton_core::ClientId,
    registrar: Option<&baton_core::ClientId>,
) -> Result<(baton_core::PublicKey, [u8; 64])> {
    let hex_field = |field: &str, digits: &str, len: usize| {
        hex::decode(digits)
            .ok()
            .filter(|b| b.len() == len)
            .ok_or_else(|| Error::Config {
                field: "client_key",
                reason: format!("{field} is not {} hex digits", len * 2),
            })
    };
    if let Some((public, proof)) = spec.split_once(':')
        && public.len() == 64
        && proof.len() == 128
    {
        let public =
            baton_core::PublicKey::from_slice("public key", &hex_field("PUBLIC", public, 32)?)?;
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&hex_field("PROOF", proof, 64)?);
        return Ok((public, bytes));
    }
    if is_public_hex(spec) {
        return Err(Error::Config {
            field: "client_key",
            reason: format!(
                "{spec}: a bare public key cannot be bound without its proof of possession; pass the key file, or PUBLIC:PROOF from `baton pubkey KEYFILE --proof-for {client} {}`",
                registrar.map_or_else(
                    || "--by-trust-root".to_owned(),
                    |r| format!("--registrar {r}")
                )
            ),
        });
    }
    let key = load(Path::new(spec))?;
    Ok((key.public_key(), key.prove_registration(client, registrar)))
}

/// Reads the public half of a key: a key file, or 64 hex digits.
pub fn public(spec: &str) -> Result<baton_core::PublicKey> {
    if is_public_hex(spec) {
        let bytes = hex::decode(spec).map_err(|e| Error::Config {
            field: "public key",
            reason: e.to_string(),
        })?;
        return Ok(baton_core::PublicKey::from_slice("public key", &bytes)?);
    }
    Ok(load(Path::new(spec))?.public_key())
}

fn is_public_hex(spec: &str) -> bool {
    spec.len() == 64 && spec.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_loose_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = generate(&path).unwrap();
        assert_eq!(load(&path).unwrap().key_id(), key.key_id());
        assert!(
            generate(&path).is_err(),
            "an existing key file is never overwritten"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("lets others read it"), "{err}");
    }
}
