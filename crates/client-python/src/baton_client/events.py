"""Event builders: register, issue, narrow (token exchange), revoke, rotate
keys. Each returns a `baton.v1.Event` for a `Signer` to sign; the node
checks every rule and refuses a bad event naming the field."""

from __future__ import annotations

import time

from dataclasses import dataclass
from typing import Iterable

from baton.v1 import events_pb2, provenance_pb2

from .signing import Signer, event_id


def token_ref(token: str | bytes | events_pb2.TokenRef) -> events_pb2.TokenRef:
    """A token reference: `jti:…` or `b3:<64 hex digits>` text, a 32-byte
    digest, or a reference already."""
    if isinstance(token, events_pb2.TokenRef):
        return token
    if isinstance(token, bytes):
        return events_pb2.TokenRef(digest=token)
    if token.startswith("jti:"):
        return events_pb2.TokenRef(jti=token[4:])
    if token.startswith("b3:"):
        return events_pb2.TokenRef(digest=bytes.fromhex(token[3:]))
    raise ValueError(f"token: {token[:64]!r} must start with 'jti:' or 'b3:'")


def token_text(ref: events_pb2.TokenRef) -> str:
    """A reference's text form, as Baton prints it."""
    return f"jti:{ref.jti}" if ref.WhichOneof("ref") == "jti" else f"b3:{ref.digest.hex()}"


def register(
    client_id: str,
    kind: int,
    role: int,
    keys: Iterable[Signer],
    scopes: Iterable[str],
    tools: Iterable[str],
    registered_by: str = "",
) -> events_pb2.Event:
    """A client's pre-registration, binding `keys` (each proves possession
    for `client_id` registered by `registered_by`); `registered_by` empty
    when a trust-root key signs."""
    event = events_pb2.Event()
    r = event.client_registered
    r.client_id, r.kind, r.role = client_id, kind, role
    r.registration = events_pb2.REGISTRATION_METHOD_PRE_REGISTERED
    for key in keys:
        r.public_keys.append(key.public_key)
        r.public_key_proofs.append(key.prove_registration(client_id, registered_by))
    r.scopes.extend(scopes)
    r.tools.extend(tools)
    r.registered_by = registered_by
    return event


def issue(
    token: str | bytes | events_pb2.TokenRef,
    subject: str,
    issuer: str,
    holder: str,
    audience: str,
    scopes: Iterable[str],
    tools: Iterable[str],
    issued_at_s: int | None = None,
    expires_at_s: int | None = None,
    grant_type: int = events_pb2.GRANT_TYPE_AUTHORIZATION_CODE_PKCE,
    *,
    ttl_s: int | None = None,
) -> events_pb2.Event:
    """A root grant: `issuer` (an authorization server) issued `token` to
    `holder`, for `subject`, from `issued_at_s` (now by default) until
    `expires_at_s`, or for `ttl_s` seconds (one of the two)."""
    if issued_at_s is None:
        issued_at_s = int(time.time())
    if (expires_at_s is None) == (ttl_s is None):
        raise ValueError("issue: give expires_at_s or ttl_s (one of the two)")
    if expires_at_s is None:
        expires_at_s = issued_at_s + ttl_s
    event = events_pb2.Event()
    g = event.token_issued
    g.token.CopyFrom(token_ref(token))
    g.subject, g.issuer, g.holder, g.audience = subject, issuer, holder, audience
    g.scopes.extend(scopes)
    g.tools.extend(tools)
    g.grant_type = grant_type
    g.issued_at_unix_s, g.expires_at_unix_s = issued_at_s, expires_at_s
    return event


@dataclass(frozen=True)
class Parent:
    """A token a hop narrows from: what the next link must name and stay
    within."""

    token: events_pb2.TokenRef
    event_id: bytes
    root_event_id: bytes
    depth: int
    subject: str
    issued_at_s: int
    expires_at_s: int

    @classmethod
    def of_signed(cls, signed: events_pb2.SignedEvent) -> "Parent | None":
        event = events_pb2.Event.FromString(signed.payload)
        own = event_id(signed)
        which = event.WhichOneof("body")
        if which == "token_issued":
            t = event.token_issued
            return cls(t.token, own, own, 0, t.subject, t.issued_at_unix_s, t.expires_at_unix_s)
        if which == "scope_narrowed":
            n = event.scope_narrowed
            return cls(n.token, own, n.root_event_id, n.depth, n.on_behalf_of, n.issued_at_unix_s, n.expires_at_unix_s)
        return None

    @classmethod
    def of_chain(cls, chain: provenance_pb2.GetChainResponse) -> "Parent | None":
        """The leaf of a chain, as the node's GetChain returns it (root
        grant first)."""
        for item in reversed(chain.events):
            parent = cls.of_signed(item.event)
            if parent is not None:
                return parent
        return None

    def lifetime(self, now_s: int, ttl_s: int) -> tuple[int, int]:
        """A child's lifetime from `now_s` for `ttl_s`, within this token's."""
        return max(now_s, self.issued_at_s), min(now_s + ttl_s, self.expires_at_s)

    def narrow(
        self,
        token: str | bytes | events_pb2.TokenRef,
        performed_by: str,
        holder: str,
        audience: str,
        scopes: Iterable[str],
        tools: Iterable[str],
        issued_at_s: int,
        expires_at_s: int,
    ) -> events_pb2.Event:
        """The hop exchanging this token for `token`: the right parent, root,
        depth and subject."""
        event = events_pb2.Event()
        h = event.scope_narrowed
        h.token.CopyFrom(token_ref(token))
        h.parent_event_id, h.root_event_id, h.depth = self.event_id, self.root_event_id, self.depth + 1
        h.performed_by, h.on_behalf_of, h.holder, h.audience = performed_by, self.subject, holder, audience
        h.scopes.extend(scopes)
        h.tools.extend(tools)
        h.issued_at_unix_s, h.expires_at_unix_s = issued_at_s, expires_at_s
        return event


def revoke(
    *,
    token: str | bytes | events_pb2.TokenRef | None = None,
    client_id: str | None = None,
    subject: str | None = None,
    key_id: bytes | None = None,
    reason: str = "",
    revoked_by: str = "",
) -> events_pb2.Event:
    """A revocation of exactly one target (and everything that depends on
    it); `revoked_by` empty when a trust-root key signs."""
    given = [t for t in (token, client_id, subject, key_id) if t is not None]
    if len(given) != 1:
        raise ValueError("revoke: name exactly one of token, client_id, subject, key_id")
    event = events_pb2.Event()
    r = event.revoked
    if token is not None:
        r.token.CopyFrom(token_ref(token))
    elif client_id is not None:
        r.client_id = client_id
    elif subject is not None:
        r.subject = subject
    else:
        r.key_id = key_id
    r.reason, r.revoked_by = reason, revoked_by
    return event


def rotate(client_id: str, add: Iterable[Signer], retire: Iterable[bytes] = ()) -> events_pb2.Event:
    """Binds `add` to the client (each proving possession) and retires the
    keys `retire` names."""
    event = events_pb2.Event()
    k = event.keys_rotated
    k.client_id = client_id
    for key in add:
        k.add_public_keys.append(key.public_key)
        k.add_public_key_proofs.append(key.prove_possession(client_id))
    k.retire_key_ids.extend(retire)
    return event
