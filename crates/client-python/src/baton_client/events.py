"""Event builders: register, issue, narrow (token exchange), revoke, rotate
keys. Each returns a `baton.v1.Event` for a `Signer` to sign; the node
checks every rule and refuses a bad event naming the field."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Union, cast

from baton.v1 import events_pb2, provenance_pb2

from ._text import echo
from .ids import ID_BYTES, event_id_bytes, event_id_text, key_id_bytes
from .kinds import ClientKind, ClientRole, GrantType
from .signing import Signer, event_id

if TYPE_CHECKING:
    from .answers import Chain

# A token as the SDK takes it: `jti:…` or `b3:<64 hex digits>` text, the
# 32 bytes of its digest, or a `baton.v1.TokenRef`.
Token = Union[str, bytes, events_pb2.TokenRef]

_HEX = frozenset("0123456789abcdefABCDEF")


def token_ref(token: Token, name: str = "token") -> events_pb2.TokenRef:
    """A token reference: `jti:…` or `b3:<64 hex digits>` text, a 32-byte
    digest, or a reference already; `ValueError` naming `name` otherwise."""
    if isinstance(token, events_pb2.TokenRef):
        return token
    if isinstance(token, (bytes, bytearray)):
        if len(token) != ID_BYTES:
            raise ValueError(f"{name}: a digest of {len(token)} bytes; a token digest is {ID_BYTES} bytes")
        return events_pb2.TokenRef(digest=bytes(token))
    if not isinstance(token, str):
        raise TypeError(f"{name}: {type(token).__name__}; a token is 'jti:…' or 'b3:…' text, 32 bytes or a TokenRef")
    if token.startswith("jti:"):
        return events_pb2.TokenRef(jti=token[4:])
    if token.startswith("b3:"):
        digits = token[3:]
        if len(digits) != 2 * ID_BYTES or not _HEX.issuperset(digits):
            raise ValueError(f"{name}: {echo(token)!r} is not 'b3:' and 64 hex digits")
        return events_pb2.TokenRef(digest=bytes.fromhex(digits))
    raise ValueError(f"{name}: {echo(token)!r} must start with 'jti:' or 'b3:'")


def token_text(ref: events_pb2.TokenRef) -> str:
    """A reference's text form, as Baton prints it."""
    return f"jti:{ref.jti}" if ref.WhichOneof("ref") == "jti" else f"b3:{ref.digest.hex()}"


def register(
    client_id: str,
    kind: ClientKind | int,
    role: ClientRole | int,
    keys: Iterable[Signer],
    scopes: Iterable[str],
    tools: Iterable[str],
    registered_by: str = "",
) -> events_pb2.Event:
    """A client's pre-registration, binding `keys` (each proves possession
    for `client_id` registered by `registered_by`); `registered_by` empty
    when a trust-root key signs. `kind` and `role`: a `ClientKind` and a
    `ClientRole` (or their wire numbers)."""
    event = events_pb2.Event()
    r = event.client_registered
    r.client_id = client_id
    r.kind = cast(events_pb2.ClientKind, int(kind))
    r.role = cast(events_pb2.ClientRole, int(role))
    r.registration = events_pb2.REGISTRATION_METHOD_PRE_REGISTERED
    for key in keys:
        r.public_keys.append(key.public_key)
        r.public_key_proofs.append(key.prove_registration(client_id, registered_by))
    r.scopes.extend(scopes)
    r.tools.extend(tools)
    r.registered_by = registered_by
    return event


def issue(
    token: Token,
    subject: str,
    issuer: str,
    holder: str,
    audience: str,
    scopes: Iterable[str],
    tools: Iterable[str],
    issued_at_s: int | None = None,
    expires_at_s: int | None = None,
    grant_type: GrantType | int = GrantType.AUTHORIZATION_CODE_PKCE,
    *,
    ttl_s: int | None = None,
) -> events_pb2.Event:
    """A root grant: `issuer` (an authorization server) issued `token` to
    `holder`, for `subject`, from `issued_at_s` (now by default) until
    `expires_at_s`, or for `ttl_s` seconds (one of the two); `grant_type` a
    `GrantType` (or its wire number)."""
    if issued_at_s is None:
        issued_at_s = int(time.time())
    if expires_at_s is None:
        if ttl_s is None:
            raise ValueError("issue: give expires_at_s or ttl_s (one of the two)")
        expires_at_s = issued_at_s + ttl_s
    elif ttl_s is not None:
        raise ValueError("issue: give expires_at_s or ttl_s (one of the two)")
    event = events_pb2.Event()
    g = event.token_issued
    g.token.CopyFrom(token_ref(token))
    g.subject, g.issuer, g.holder, g.audience = subject, issuer, holder, audience
    g.scopes.extend(scopes)
    g.tools.extend(tools)
    g.grant_type = cast(events_pb2.GrantType, int(grant_type))
    g.issued_at_unix_s, g.expires_at_unix_s = issued_at_s, expires_at_s
    return event


@dataclass(frozen=True, init=False)
class Parent:
    """A token a hop narrows from: what the next link must name and stay
    within. Event ids are shown as Baton prints them (`ev:…`) and taken so
    or as 32 bytes."""

    token: str
    """The parent token, as Baton prints it (`jti:…` or `b3:…`)."""
    event_id: str
    """The event that recorded it (`ev:…`)."""
    root_event_id: str
    """The event of its chain's root grant (`ev:…`)."""
    depth: int
    """Its depth (0: a root grant)."""
    subject: str
    """Whom the chain acts for."""
    issued_at_s: int
    """When it was issued (Unix seconds)."""
    expires_at_s: int
    """When it expires (Unix seconds): a child ends by then."""

    def __init__(
        self,
        token: Token,
        event_id: str | bytes,
        root_event_id: str | bytes,
        depth: int,
        subject: str,
        issued_at_s: int,
        expires_at_s: int,
    ) -> None:
        values = {
            "token": token_text(token_ref(token)),
            "event_id": event_id_text(event_id_bytes(event_id, "event_id")),
            "root_event_id": event_id_text(event_id_bytes(root_event_id, "root_event_id")),
            "depth": depth,
            "subject": subject,
            "issued_at_s": issued_at_s,
            "expires_at_s": expires_at_s,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def of_signed(cls, signed: events_pb2.SignedEvent) -> Parent | None:
        """The token a signed root grant or hop records; None for another
        event."""
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
    def of_chain(cls, chain: Chain | provenance_pb2.GetChainResponse) -> Parent | None:
        """The leaf of a chain (`Client.chain`'s answer, or the node's raw
        GetChain response; root grant first)."""
        if isinstance(chain, provenance_pb2.GetChainResponse):
            for item in reversed(chain.events):
                parent = cls.of_signed(item.event)
                if parent is not None:
                    return parent
            return None
        leaf = chain.leaf
        if leaf is None:
            return None
        return cls(leaf.token, leaf.event_id, leaf.root_event_id, leaf.depth, leaf.subject, leaf.issued_at_s,
                   leaf.expires_at_s)

    def lifetime(self, now_s: int, ttl_s: int) -> tuple[int, int]:
        """A child's lifetime from `now_s` for `ttl_s`, within this token's."""
        return max(now_s, self.issued_at_s), min(now_s + ttl_s, self.expires_at_s)

    def narrow(
        self,
        token: Token,
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
        h.parent_event_id = event_id_bytes(self.event_id)
        h.root_event_id = event_id_bytes(self.root_event_id, "root_event_id")
        h.depth = self.depth + 1
        h.performed_by, h.on_behalf_of, h.holder, h.audience = performed_by, self.subject, holder, audience
        h.scopes.extend(scopes)
        h.tools.extend(tools)
        h.issued_at_unix_s, h.expires_at_unix_s = issued_at_s, expires_at_s
        return event


def revoke(
    *,
    token: Token | None = None,
    client_id: str | None = None,
    subject: str | None = None,
    key_id: str | bytes | None = None,
    reason: str = "",
    revoked_by: str = "",
) -> events_pb2.Event:
    """A revocation of exactly one target (and everything that depends on
    it): a token, a client, a subject, or a signing key (`key:` and 64 hex
    digits, or its 32 bytes); `revoked_by` empty when a trust-root key
    signs."""
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
    elif key_id is not None:
        r.key_id = key_id_bytes(key_id)
    r.reason, r.revoked_by = reason, revoked_by
    return event


def rotate(client_id: str, add: Iterable[Signer], retire: Iterable[str | bytes] = ()) -> events_pb2.Event:
    """Binds `add` to the client (each proving possession) and retires the
    keys `retire` names (each `key:` and 64 hex digits, or 32 bytes)."""
    event = events_pb2.Event()
    k = event.keys_rotated
    k.client_id = client_id
    for key in add:
        k.add_public_keys.append(key.public_key)
        k.add_public_key_proofs.append(key.prove_possession(client_id))
    k.retire_key_ids.extend(key_id_bytes(key, f"retire[{i}]") for i, key in enumerate(retire))
    return event
