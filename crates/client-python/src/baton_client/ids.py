"""Event ids and key ids as Baton prints them: `ev:` or `key:` and 64 hex
digits (the Rust `EventId` and `KeyId`). The SDK's answers show them so; its
calls take that text or the 32 bytes."""

from __future__ import annotations

from ._text import echo

ID_BYTES = 32
_HEX = frozenset("0123456789abcdefABCDEF")


def _text(prefix: str, what: str, raw: bytes) -> str:
    if len(raw) != ID_BYTES:
        raise ValueError(f"{what}: {len(raw)} bytes, not {ID_BYTES}: not an id Baton prints")
    return prefix + raw.hex()


def event_id_text(raw: bytes) -> str:
    """`raw` (an event id's 32 bytes) as Baton prints it: `ev:` and 64
    lowercase hex digits; `ValueError` for any other length (so every text
    it makes, `event_id_bytes` takes back)."""
    return _text("ev:", "event id", raw)


def key_id_text(raw: bytes) -> str:
    """`raw` (a key id's 32 bytes) as Baton prints it: `key:` and 64
    lowercase hex digits; `ValueError` for any other length."""
    return _text("key:", "key id", raw)


def _parse(prefix: str, what: str, value: str | bytes, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        if len(value) != ID_BYTES:
            raise ValueError(f"{name}: {len(value)} bytes; {what} is {ID_BYTES} bytes or {prefix!r} and 64 hex digits")
        return bytes(value)
    if not isinstance(value, str):
        raise TypeError(f"{name}: {type(value).__name__}; {what} is {prefix!r} and 64 hex digits, or {ID_BYTES} bytes")
    if not value.startswith(prefix):
        raise ValueError(f"{name}: {echo(value)!r} does not start with {prefix!r}; {what} is {prefix!r} and 64 hex digits")
    digits = value[len(prefix):]
    if len(digits) != 2 * ID_BYTES or not _HEX.issuperset(digits):
        raise ValueError(f"{name}: {echo(value)!r} is not {prefix!r} and 64 hex digits")
    return bytes.fromhex(digits)


def event_id_bytes(value: str | bytes, name: str = "event_id") -> bytes:
    """The 32 bytes of an event id given as `ev:` and 64 hex digits, or as
    its 32 bytes; `ValueError` naming `name` otherwise."""
    return _parse("ev:", "an event id", value, name)


def key_id_bytes(value: str | bytes, name: str = "key_id") -> bytes:
    """The 32 bytes of a key id given as `key:` and 64 hex digits, or as
    its 32 bytes; `ValueError` naming `name` otherwise."""
    return _parse("key:", "a key id", value, name)
