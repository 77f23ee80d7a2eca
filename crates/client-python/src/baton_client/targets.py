"""Revocation targets read into one comparable value: what a Check answer
depends on (`RevocationTarget`) and what a Watch message revokes (the
`target` of a `Revoked`) meet in the Checker's index, so both are read by
`parse` and compared parsed — never as bytes, whose encoding may differ for
one target (a field this version does not know, a oneof set twice, field
order), which would silently stop evictions. The Rust SDK does the same
(`RevocationTarget::try_from`); `proto/testvectors/sdk/targets.json` is the
specification both run.
"""

from __future__ import annotations

from typing import Union

from baton.v1 import events_pb2

# ("jti", str), ("digest", 32 bytes), ("client_id", str), ("subject", str)
# or ("key_id", 32 bytes): hashable, equal exactly when the targets are.
Target = tuple[str, Union[str, bytes]]

ID_BYTES = 32


def _token(ref: events_pb2.TokenRef) -> Target:
    which = ref.WhichOneof("ref")
    if which is None:
        raise ValueError("target.token: names neither jti nor digest")
    if which == "jti":
        if not ref.jti:
            raise ValueError("target.token.jti: is empty")
        return ("jti", ref.jti)
    if len(ref.digest) != ID_BYTES:
        raise ValueError(f"target.token.digest: {len(ref.digest)} bytes, not {ID_BYTES}")
    return ("digest", bytes(ref.digest))


def parse(message: events_pb2.RevocationTarget | events_pb2.Revoked) -> Target:
    """The target `message` names (a `RevocationTarget`, or a `Revoked`: the
    same oneof, the same field numbers); `ValueError` naming the field when
    it cannot be read.

    The checks are structural (a oneof set, ids not empty, digests and key
    ids of 32 bytes): the Rust SDK also holds ids to its identifier rules,
    which the node applied when the events were appended, so every target a
    node sends passes them.
    """
    which = message.WhichOneof("target")
    if which is None:
        raise ValueError("target: is missing: one of token, client_id, subject, key_id")
    if which == "token":
        return _token(message.token)
    value = getattr(message, which)
    if which == "key_id":
        if len(value) != ID_BYTES:
            raise ValueError(f"target.key_id: {len(value)} bytes, not {ID_BYTES}")
        return ("key_id", bytes(value))
    if not value:
        raise ValueError(f"target.{which}: is empty")
    return (which, value)
