"""The node's answers as typed, frozen values: `CheckAnswer` (`Client.check`)
and `Chain` (`Client.chain`). Statuses and kinds are the enums of
`baton_client.kinds`, event ids `ev:…` and key ids `key:…` text, tokens
`jti:…` or `b3:…` text, lists tuples; what was not set is None.
`CheckAnswer` and `Chain` keep the node's protobuf answer in `raw`, and a
`ChainEvent` its signed event in `signed` (neither printed nor compared),
for what is not read into fields (`depends_on`, public keys, …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from baton.v1 import events_pb2, provenance_pb2, revocation_pb2

from .events import token_text
from .ids import event_id_text, key_id_text
from .kinds import ClientKind, ClientRole, EventKind, GrantType, RegistrationMethod, RevocationVia, TokenStatus
from .signing import key_id


def _event_id(raw: bytes) -> str | None:
    return event_id_text(raw) if raw else None


def _token(ref: events_pb2.TokenRef) -> str | None:
    return token_text(ref) if ref.WhichOneof("ref") is not None else None


@dataclass(frozen=True)
class Revocation:
    """A `Revoked` event: its one target (the others None), why, and who
    revoked it."""

    token: str | None
    """The revoked token (`jti:…` or `b3:…`), if a token was revoked."""
    client_id: str | None
    """The revoked client, if a client was revoked."""
    subject: str | None
    """The revoked subject, if a subject was revoked."""
    key_id: str | None
    """The revoked signing key (`key:…`), if a key was revoked."""
    reason: str
    """Why, as the revoker wrote it."""
    revoked_by: str | None
    """The revoking client; None when a trust-root key revoked."""
    requested_by: str | None
    """The client that asked, when `revoked_by` signed for another (a
    node's RFC 7009 endpoint); None when `revoked_by` asked."""

    @classmethod
    def of(cls, revoked: events_pb2.Revoked) -> Revocation:
        which = revoked.WhichOneof("target")
        return cls(
            token=_token(revoked.token) if which == "token" else None,
            client_id=revoked.client_id if which == "client_id" else None,
            subject=revoked.subject if which == "subject" else None,
            key_id=key_id_text(revoked.key_id) if which == "key_id" else None,
            reason=revoked.reason,
            revoked_by=revoked.revoked_by or None,
            requested_by=revoked.requested_by or None,
        )


@dataclass(frozen=True)
class RevocationCause:
    """Why a check answered REVOKED: which revocation, of what, found where
    on the token's chain."""

    revocation_event_id: str
    """The revocation's event (`ev:…`)."""
    revoked: Revocation
    """What it revoked."""
    link: str | None
    """The chain link (`jti:…` or `b3:…`) the revoked target was found on."""
    distance: int
    """How many hops above the checked token that link is (0: the token
    itself)."""
    via: RevocationVia
    """How the target relates to that link: its token, holder, performer,
    a signing key, or the chain's subject."""

    @classmethod
    def of(cls, cause: revocation_pb2.RevocationCause) -> RevocationCause:
        return cls(
            revocation_event_id=event_id_text(cause.revocation_event_id),
            revoked=Revocation.of(cause.revoked),
            link=_token(cause.link),
            distance=cause.distance,
            via=RevocationVia.of(cause.via),
        )


@dataclass(frozen=True)
class CheckAnswer:
    """A token's status as the node answered `Client.check`."""

    status: TokenStatus
    """ACTIVE, REVOKED, EXPIRED, UNKNOWN or AUDIENCE_MISMATCH (live, but
    presented to another resource than its audience)."""
    event_id: str | None
    """The event that recorded the token (`ev:…`); None when the node does
    not know the token."""
    depth: int | None
    """The token's depth on its chain (0: a root grant); None when not
    known."""
    expires_at_s: int | None
    """When the token expires (Unix seconds); None when not known."""
    audience: str | None
    """The resource the token is bound to; None when not known."""
    cause: RevocationCause | None
    """Why it is REVOKED; None otherwise."""
    consistency_token: str
    """What this answer reflects: pass it as `after=` to a later call, on
    any node."""
    view_age_ms: int | None
    """How old the node's view of the log was when it answered (ms, by its
    monotonic clock); None while it has none. Hold answers to a bound of
    your own with it."""
    view_confirmed_end: str
    """The newest end of the log that view confirmed (a consistency token);
    empty while it has none."""
    view_confirmed_at_ms: int | None
    """When the node asked for that end (Unix ms): every record
    acknowledged before then is reflected. None while it has none."""
    raw: revocation_pb2.CheckResponse = field(repr=False, compare=False)
    """The node's answer as it came (not printed, not compared)."""

    @property
    def allows(self) -> bool:
        """Whether the token may be used: ACTIVE, and nothing else."""
        return self.status is TokenStatus.ACTIVE

    @classmethod
    def of(cls, response: revocation_pb2.CheckResponse) -> CheckAnswer:
        """The typed answer of the node's `CheckResponse`."""
        known = bool(response.event_id)
        return cls(
            status=TokenStatus.of(response.status),
            event_id=_event_id(response.event_id),
            depth=response.depth if known else None,
            expires_at_s=response.expires_at_unix_s or None,
            audience=response.audience or None,
            cause=RevocationCause.of(response.cause) if response.HasField("cause") else None,
            consistency_token=response.consistency_token,
            view_age_ms=response.view_age_ms if response.HasField("view_age_ms") else None,
            view_confirmed_end=response.view_confirmed_end,
            view_confirmed_at_ms=response.view_confirmed_at_unix_ms or None,
            raw=response,
        )


@dataclass(frozen=True)
class ChainLink:
    """A token of a chain: the root grant (depth 0, kind TOKEN_ISSUED) or a
    hop (an RFC 8693 exchange, kind SCOPE_NARROWED)."""

    kind: EventKind
    """TOKEN_ISSUED (the root grant) or SCOPE_NARROWED (a hop)."""
    event_id: str
    """The event that recorded the token (`ev:…`)."""
    token: str
    """The token (`jti:…` or `b3:…`)."""
    depth: int
    """0 for the root grant, one more per hop."""
    subject: str
    """Whom the chain acts for (a user, or the client of a static grant)."""
    performed_by: str
    """Who made this token: the issuer for the root grant, the client that
    performed the exchange for a hop."""
    holder: str
    """The client holding the token."""
    audience: str
    """The resource the token is bound to."""
    scopes: tuple[str, ...]
    """The scopes it carries."""
    tools: tuple[str, ...]
    """The tools it grants."""
    issued_at_s: int
    """When it was issued (Unix seconds)."""
    expires_at_s: int
    """When it expires (Unix seconds)."""
    parent_event_id: str | None
    """The event of the token it was exchanged from (`ev:…`); None for the
    root grant."""
    root_event_id: str
    """The event of the chain's root grant (`ev:…`; its own for the root
    grant)."""
    grant_type: GrantType
    """How the root grant was obtained: every hop inherits it."""


@dataclass(frozen=True)
class ClientRegistration:
    """A `ClientRegistered` event: a client, its kind and role, its keys and
    its ceiling of scopes and tools."""

    client_id: str
    """The client registered."""
    kind: ClientKind
    """What kind of party it is."""
    role: ClientRole
    """Whether it may mint tokens for the next hop."""
    registration: RegistrationMethod
    """How it came to be known."""
    key_ids: tuple[str, ...]
    """The ids of the keys it signs with (`key:…`), in order."""
    scopes: tuple[str, ...]
    """Its ceiling of scopes: no token it holds may carry more."""
    tools: tuple[str, ...]
    """Its ceiling of tools: no token it holds may grant more."""
    registered_by: str | None
    """The registering client; None when a trust-root key registered it."""
    metadata_document_url: str | None
    """Its client-ID metadata document (RegistrationMethod.METADATA_DOCUMENT);
    None otherwise."""


@dataclass(frozen=True)
class KeyRotation:
    """A `KeysRotated` event: keys bound to a client and keys retired."""

    client_id: str
    """The client whose keys changed."""
    added_key_ids: tuple[str, ...]
    """The keys bound to it (`key:…`)."""
    retired_key_ids: tuple[str, ...]
    """The keys retired (`key:…`): they sign no new event."""


Body = Union[ChainLink, ClientRegistration, Revocation, KeyRotation]


@dataclass(frozen=True)
class ChainEvent:
    """One signed event of a chain as the node returned it, read."""

    event_id: str
    """Its id (`ev:…`)."""
    kind: EventKind
    """What it records."""
    body: Body | None
    """What it records, read: a `ChainLink` (TOKEN_ISSUED, SCOPE_NARROWED),
    a `ClientRegistration`, a `Revocation` or a `KeyRotation`; None for a
    body this SDK does not know."""
    position: tuple[int, int]
    """Where the node applied it: (partition, offset)."""
    signer_key_id: str
    """The key that signed it (`key:…`)."""
    created_at_ms: int
    """When its writer made it (Unix ms)."""
    signed: events_pb2.SignedEvent = field(repr=False, compare=False)
    """The event exactly as signed (for `Parent.of_signed`, or to verify);
    not printed, not compared."""

    @property
    def event(self) -> events_pb2.Event:
        """The signed content, decoded (every field, as the wire has it)."""
        return events_pb2.Event.FromString(self.signed.payload)


@dataclass(frozen=True)
class Chain:
    """A token's chain as `Client.chain` answers it: every event needed to
    verify it (registrations and key bindings first, then the token events
    root grant to leaf), and the token's status."""

    events: tuple[ChainEvent, ...]
    """Every event, dependencies first; the token events root to leaf."""
    status: CheckAnswer
    """The token's status, as `Client.check` would answer it."""
    raw: provenance_pb2.GetChainResponse = field(repr=False, compare=False)
    """The node's answer as it came (not printed, not compared)."""

    @property
    def links(self) -> tuple[ChainLink, ...]:
        """The tokens of the chain, root grant first, the asked-for token
        last."""
        return tuple(e.body for e in self.events if isinstance(e.body, ChainLink))

    @property
    def leaf(self) -> ChainLink | None:
        """The asked-for token's link (the last); None if the chain has no
        token event."""
        links = self.links
        return links[-1] if links else None

    @classmethod
    def of(cls, response: provenance_pb2.GetChainResponse) -> Chain:
        """The typed chain of the node's `GetChainResponse`."""
        decoded = [(item, events_pb2.Event.FromString(item.event.payload)) for item in response.events]
        # Every hop inherits the root grant's type (as `baton chain` shows it).
        grant = next(
            (GrantType.of(e.token_issued.grant_type) for _, e in decoded if e.WhichOneof("body") == "token_issued"),
            GrantType.UNSPECIFIED,
        )
        events = tuple(_chain_event(item, event, grant) for item, event in decoded)
        return cls(events=events, status=CheckAnswer.of(response.status), raw=response)


def _chain_event(item: provenance_pb2.ChainEvent, event: events_pb2.Event, grant: GrantType) -> ChainEvent:
    which = event.WhichOneof("body")
    own = event_id_text(item.event_id)
    body: Body | None = None
    if which == "token_issued":
        t = event.token_issued
        body = ChainLink(
            kind=EventKind.TOKEN_ISSUED, event_id=own, token=token_text(t.token), depth=0, subject=t.subject,
            performed_by=t.issuer, holder=t.holder, audience=t.audience, scopes=tuple(t.scopes),
            tools=tuple(t.tools), issued_at_s=t.issued_at_unix_s, expires_at_s=t.expires_at_unix_s,
            parent_event_id=None, root_event_id=own, grant_type=GrantType.of(t.grant_type),
        )
    elif which == "scope_narrowed":
        n = event.scope_narrowed
        body = ChainLink(
            kind=EventKind.SCOPE_NARROWED, event_id=own, token=token_text(n.token), depth=n.depth,
            subject=n.on_behalf_of, performed_by=n.performed_by, holder=n.holder, audience=n.audience,
            scopes=tuple(n.scopes), tools=tuple(n.tools), issued_at_s=n.issued_at_unix_s,
            expires_at_s=n.expires_at_unix_s, parent_event_id=event_id_text(n.parent_event_id),
            root_event_id=event_id_text(n.root_event_id), grant_type=grant,
        )
    elif which == "client_registered":
        r = event.client_registered
        body = ClientRegistration(
            client_id=r.client_id, kind=ClientKind.of(r.kind), role=ClientRole.of(r.role),
            registration=RegistrationMethod.of(r.registration),
            key_ids=tuple(key_id_text(key_id(k)) for k in r.public_keys), scopes=tuple(r.scopes),
            tools=tuple(r.tools), registered_by=r.registered_by or None,
            metadata_document_url=r.metadata_document_url or None,
        )
    elif which == "revoked":
        body = Revocation.of(event.revoked)
    elif which == "keys_rotated":
        k = event.keys_rotated
        body = KeyRotation(
            client_id=k.client_id,
            added_key_ids=tuple(key_id_text(key_id(p)) for p in k.add_public_keys),
            retired_key_ids=tuple(key_id_text(r) for r in k.retire_key_ids),
        )
    return ChainEvent(
        event_id=own, kind=EventKind.of_body(which), body=body,
        position=(item.position.partition, item.position.offset),
        signer_key_id=key_id_text(item.event.key_id), created_at_ms=event.created_at_unix_ms, signed=item.event,
    )
