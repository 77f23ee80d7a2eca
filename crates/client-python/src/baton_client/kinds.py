"""The wire's enums as `IntEnum`s with Python names: each member equals the
proto number (`ClientKind.GATEWAY == events_pb2.CLIENT_KIND_GATEWAY`), so a
member goes wherever the wire's number goes, and a number read off the wire
becomes a member that prints its name (`ClientKind.of(2)` is `GATEWAY`).

`tests/client_api.py` holds every member to the generated descriptors.
"""

from __future__ import annotations

import enum
from typing import Self


class _Wire(enum.IntEnum):
    """An enum of the wire's: `of` reads a number off it."""

    @classmethod
    def of(cls, raw: int) -> Self:
        """The member numbered `raw`; a number this SDK does not know (a
        newer node's) is the enum's UNSPECIFIED (0)."""
        try:
            return cls(raw)
        except ValueError:
            return cls(0)


class TokenStatus(enum.IntEnum):
    """A check's answer (the wire's `TokenStatus`). It has no UNSPECIFIED:
    an unset or unknown status is UNKNOWN, never treated as valid."""

    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3
    UNKNOWN = 4
    # Live, but presented to another resource than its audience.
    AUDIENCE_MISMATCH = 5

    @classmethod
    def of(cls, raw: int) -> TokenStatus:
        """The status numbered `raw`; one this SDK does not know is UNKNOWN
        (never treated as valid)."""
        try:
            return cls(raw)
        except ValueError:
            return cls.UNKNOWN


class ClientKind(_Wire):
    """What kind of party a client is (`register(kind=…)`)."""

    UNSPECIFIED = 0
    MCP_CLIENT = 1
    GATEWAY = 2
    MCP_SERVER = 3
    AUTHORIZATION_SERVER = 4
    SERVICE = 5


class ClientRole(_Wire):
    """May a client mint tokens for the next hop (`register(role=…)`)?"""

    UNSPECIFIED = 0
    # Serves tools; never signs a delegation hop.
    TOOL_ENDPOINT = 1
    # Mints tokens for the next hop after validating an upstream one.
    DELEGATING_LAYER = 2
    # Both serves tools and delegates.
    MIXED_TRUST_BOUNDARY = 3


class RegistrationMethod(_Wire):
    """How a client came to be known (`register` records PRE_REGISTERED)."""

    UNSPECIFIED = 0
    PRE_REGISTERED = 1
    # RFC 7591 dynamic client registration.
    DYNAMIC = 2
    # A client-ID metadata document.
    METADATA_DOCUMENT = 3
    # A static API key: bounded service-to-service access only.
    STATIC_API_KEY = 4


class GrantType(_Wire):
    """How a root grant was obtained (`issue(grant_type=…)`)."""

    UNSPECIFIED = 0
    AUTHORIZATION_CODE_PKCE = 1
    DEVICE_CODE = 2
    CLIENT_CREDENTIALS = 3
    API_KEY = 4
    REFRESH_TOKEN = 5


class EventKind(_Wire):
    """What an event records (the wire's `EventKind`, one per body of
    `baton.v1.Event`)."""

    UNSPECIFIED = 0
    CLIENT_REGISTERED = 1
    TOKEN_ISSUED = 2
    SCOPE_NARROWED = 3
    REVOKED = 4
    KEYS_ROTATED = 5

    @classmethod
    def of_body(cls, body: str | None) -> EventKind:
        """The kind of an `Event` whose `body` oneof is `body` (its field
        name, as `WhichOneof("body")` says); UNSPECIFIED for none."""
        return _BODIES.get(body or "", cls.UNSPECIFIED)


_BODIES = {
    "client_registered": EventKind.CLIENT_REGISTERED,
    "token_issued": EventKind.TOKEN_ISSUED,
    "scope_narrowed": EventKind.SCOPE_NARROWED,
    "revoked": EventKind.REVOKED,
    "keys_rotated": EventKind.KEYS_ROTATED,
}


class RevocationVia(_Wire):
    """How the revoked target relates to the checked token (a
    `RevocationCause`'s `via`)."""

    UNSPECIFIED = 0
    # A token of the chain (the checked one, or an ancestor).
    TOKEN = 1
    # The client holding a token of the chain.
    HOLDER = 2
    # The client that performed a hop of the chain.
    PERFORMER = 3
    # A key that signed an event of the chain, or bound such a key.
    SIGNING_KEY = 4
    # The subject the chain acts for.
    SUBJECT = 5


class AppendOutcome(_Wire):
    """What an append did with one event (`Appended.outcomes`)."""

    UNSPECIFIED = 0
    # Appended by this call.
    ACCEPTED = 1
    # Already in the ledger, or appended by a concurrent copy of this call.
    DUPLICATE = 2
