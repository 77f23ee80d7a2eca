"""Keys, signatures and hashes, exactly as Baton's Rust code makes them
(checked against proto/testvectors/events.json): a DSSE pre-authentication
encoding signed with ed25519, blake3 derive-key hashes for key ids, event
ids and token digests."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import time

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from baton.v1 import events_pb2

PAYLOAD_TYPE = "application/vnd.baton.event.v1+protobuf"
KEY_PROOF_TYPE = "application/vnd.baton.key-proof.v1"
REGISTRATION_PROOF_TYPE = "application/vnd.baton.key-proof.v2"
KEY_FILE_TYPE = "baton-ed25519-private-key"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d " % (len(t), t, len(payload)) + payload


def derive(context: str, data: bytes) -> bytes:
    """blake3 in derive-key mode (32 bytes)."""
    return blake3.blake3(data, derive_key_context=context).digest()


def key_id(public: bytes) -> bytes:
    return derive("baton.v1 key id", public)


def event_id(signed: events_pb2.SignedEvent) -> bytes:
    """A signed event's id: the hash of what its signature covers."""
    return derive("baton.v1 event id", pae(signed.payload_type, signed.payload))


def token_digest(token: bytes) -> bytes:
    """How a bearer token is recorded and looked up (`b3:`): never the
    token itself."""
    return derive("baton.v1 token digest", token)


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and why."""


class Signer:
    """Signs events with one ed25519 key, read from a key file (`baton
    keygen`; mode 0600) — never an inline key."""

    def __init__(self, key: Ed25519PrivateKey):
        self._key = key
        self.public_key = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> Signer:
        path = pathlib.Path(path)
        try:
            mode = path.stat().st_mode
        except OSError as error:
            raise KeyFileError(f"key file {path}: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"key file {path}: mode {mode & 0o777:o} lets others read it; run `chmod 600 {path}`")
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise KeyFileError(f"key file {path}: {error}") from None
        if not isinstance(document, dict) or document.get("type") != KEY_FILE_TYPE:
            raise KeyFileError(f"key file {path}: type is not {KEY_FILE_TYPE!r}")
        try:
            seed = bytes.fromhex(document["seed_hex"])
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"key file {path}: seed_hex is not 64 hex digits") from None
        if len(seed) != 32:
            raise KeyFileError(f"key file {path}: seed_hex is not 64 hex digits")
        signer = cls(Ed25519PrivateKey.from_private_bytes(seed))
        if signer.public_key.hex() != document.get("public_key_hex"):
            raise KeyFileError(f"key file {path}: public_key_hex does not match the seed")
        return signer

    @classmethod
    def generate(cls) -> "Signer":
        """A fresh key held only by this process (tests, a key about to be
        written to a file)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "Signer":
        """A key from its 32-byte seed: TEST-ONLY fixtures (test vectors)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def prove_possession(self, client_id: str) -> bytes:
        """This key's consent to being bound to `client_id` by a key rotation."""
        return self._key.sign(pae(KEY_PROOF_TYPE, client_id.encode()))

    def prove_registration(self, client_id: str, registrar: str = "") -> bytes:
        """This key's consent to being registered to `client_id` by
        `registrar` (empty: a trust root); no other registrar can use it."""
        body = client_id.encode() + b"\x00" + registrar.encode()
        return self._key.sign(pae(REGISTRATION_PROOF_TYPE, body))

    def sign(self, event: events_pb2.Event, created_at_ms: int | None = None) -> events_pb2.SignedEvent:
        """Signs `event` (its signer and creation time are set here)."""
        event.signer_key_id = self.key_id
        event.created_at_unix_ms = int(time.time() * 1000) if created_at_ms is None else created_at_ms
        payload = event.SerializeToString()
        return events_pb2.SignedEvent(
            payload=payload,
            payload_type=PAYLOAD_TYPE,
            key_id=self.key_id,
            signature=self._key.sign(pae(PAYLOAD_TYPE, payload)),
        )
