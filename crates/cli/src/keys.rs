//! Key files: a private ed25519 seed in a file only its owner can read. Baton
//! never takes a private key inline (flag, environment or config), and refuses
//! a key file that others can read.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use baton_core::SigningKey;
use serde::{Deserialize, Serialize};

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
pub fn generate(path: &Path) -> anyhow::Result<SigningKey> {
    let key = SigningKey::generate();
    let file = KeyFile {
        kind: FILE_TYPE.into(),
        seed_hex: hex::encode(key.to_seed()),
        public_key_hex: hex::encode(key.public_key().to_bytes()),
        key_id: key.key_id().to_string(),
    };
    write_private(
        path,
        format!("{}\n", serde_json::to_string_pretty(&file)?).as_bytes(),
    )?;
    Ok(key)
}

/// Writes a new file only its owner can read (mode 0600 from creation;
/// an existing file is never overwritten).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    out.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a key file, refusing one that group or others can read.
pub fn load(path: &Path) -> anyhow::Result<SigningKey> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("key file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "key file {}: mode {:o} lets others read it; run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let file: KeyFile =
        serde_json::from_str(&text).with_context(|| format!("key file {}", path.display()))?;
    if file.kind != FILE_TYPE {
        bail!(
            "key file {}: type is {:?}, not {FILE_TYPE:?}",
            path.display(),
            file.kind
        );
    }
    let seed: [u8; 32] = hex::decode(&file.seed_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("key file {}: seed_hex is not 64 hex digits", path.display()))?;
    let key = SigningKey::from_seed(&seed);
    if hex::encode(key.public_key().to_bytes()) != file.public_key_hex {
        bail!(
            "key file {}: public_key_hex does not match the seed",
            path.display()
        );
    }
    Ok(key)
}

/// Reads the public half of a key: a key file, or 64 hex digits.
/// A key to bind to `client`, with its proof of possession: a key file
/// (the proof is made with it), or `PUBLIC:PROOF` in hex as `baton pubkey
/// --proof-for` prints it for a client that keeps its key to itself.
pub fn bound(
    spec: &str,
    client: &baton_core::ClientId,
) -> anyhow::Result<(baton_core::PublicKey, [u8; 64])> {
    if let Some((public, proof)) = spec.split_once(':')
        && public.len() == 64
        && proof.len() == 128
    {
        let public = baton_core::PublicKey::from_slice("public key", &hex::decode(public)?)?;
        let proof: [u8; 64] = hex::decode(proof)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a proof of possession is 64 bytes"))?;
        return Ok((public, proof));
    }
    if spec.len() == 64 && spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "client key {spec}: a bare public key cannot be bound without its proof of possession; pass the key file, or PUBLIC:PROOF from `baton pubkey KEYFILE --proof-for {client}`"
        );
    }
    let key = load(Path::new(spec))?;
    Ok((key.public_key(), key.prove_possession(client)))
}

pub fn public(spec: &str) -> anyhow::Result<baton_core::PublicKey> {
    if spec.len() == 64 && spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = hex::decode(spec)?;
        return Ok(baton_core::PublicKey::from_slice("public key", &bytes)?);
    }
    Ok(load(Path::new(spec))?.public_key())
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
