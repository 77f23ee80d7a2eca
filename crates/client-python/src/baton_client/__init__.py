"""Baton's Python SDK.

- `Signer` (from a key file) and the event builders in `events`;
- `Client`: typed calls on a node (grpc.aio; TLS and mTLS), answering
  `Appended`, `CheckAnswer` and `Chain` (`baton_client.answers`);
- the wire's enums with names (`baton_client.kinds`): `TokenStatus`,
  `ClientKind`, `ClientRole`, `RegistrationMethod`, `GrantType`,
  `EventKind`, `RevocationVia`, `AppendOutcome`;
- event ids and key ids as Baton prints them, `ev:…` and `key:…`
  (`baton_client.ids`): shown so in every answer, taken so or as bytes;
- `exchange`: a token exchange (RFC 8693) recorded where it happens;
- `Checker`: a Watch-fed cache of token answers that fails closed;
- `baton_client.asgi.BatonMiddleware`: an MCP server's requests decided on
  a `Checker` (scopes and tools), by the rules of `baton_client.gateway`;
- `baton_client.consistency`: consistency tokens read, written, compared;
- `baton_client.mcp`: the Python MCP SDK's view of a token, and its token
  verifier on a `Checker` (needs the `mcp` extra).
"""

from .answers import (
    Chain, ChainEvent, ChainLink, CheckAnswer, ClientRegistration, KeyRotation, Revocation, RevocationCause,
)
from .checker import (
    ACTIVE, AUDIENCE_MISMATCH, EXPIRED, REVOKED, UNKNOWN, Answer, Checker, Clock, ManualClock, SystemClock,
    TokenInfo,
)
from .client import Appended, Client
from .events import Parent, Token, issue, register, revoke, rotate, token_ref, token_text
from .exchange import Exchanged, exchange
from .ids import event_id_bytes, event_id_text, key_id_bytes, key_id_text
from .kinds import (
    AppendOutcome, ClientKind, ClientRole, EventKind, GrantType, RegistrationMethod, RevocationVia, TokenStatus,
)
from .signing import KeyFileError, Signer, derive, event_id, pae, token_digest

__all__ = [
    "ACTIVE", "AUDIENCE_MISMATCH", "EXPIRED", "REVOKED", "UNKNOWN", "Answer", "AppendOutcome", "Appended", "Chain",
    "ChainEvent", "ChainLink", "CheckAnswer", "Checker", "Client", "ClientKind", "ClientRegistration", "ClientRole",
    "Clock", "EventKind", "Exchanged", "GrantType", "KeyFileError", "KeyRotation", "ManualClock", "Parent",
    "RegistrationMethod", "Revocation", "RevocationCause", "RevocationVia", "Signer", "SystemClock", "Token",
    "TokenInfo", "TokenStatus", "derive", "event_id", "event_id_bytes", "event_id_text", "exchange", "issue",
    "key_id_bytes", "key_id_text", "pae", "register", "revoke", "rotate", "token_digest", "token_ref", "token_text",
]
