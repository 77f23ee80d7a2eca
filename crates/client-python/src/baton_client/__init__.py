"""Baton's Python SDK.

- `Signer` (from a key file) and the event builders in `events`;
- `Client`: typed calls on a node (grpc.aio; TLS and mTLS);
- `exchange`: a token exchange (RFC 8693) recorded where it happens;
- `Checker`: a Watch-fed cache of token answers that fails closed;
- `baton_client.asgi.BatonMiddleware`: an MCP server's requests decided on
  a `Checker` (scopes and tools), by the rules of `baton_client.gateway`;
- `baton_client.consistency`: consistency tokens read, written, compared;
- `baton_client.mcp`: the Python MCP SDK's view of a token, and its token
  verifier on a `Checker` (needs the `mcp` extra).
"""

from .checker import (
    ACTIVE, AUDIENCE_MISMATCH, EXPIRED, REVOKED, UNKNOWN, Answer, Checker, ManualClock, SystemClock, TokenInfo,
    TokenStatus,
)
from .client import Appended, Client
from .events import Parent, issue, register, revoke, rotate, token_ref, token_text
from .exchange import Exchanged, exchange
from .signing import KeyFileError, Signer, derive, event_id, pae, token_digest

__all__ = [
    "ACTIVE", "AUDIENCE_MISMATCH", "EXPIRED", "REVOKED", "UNKNOWN", "Answer", "Appended", "Checker", "Client",
    "Exchanged", "KeyFileError", "ManualClock", "Parent", "Signer", "SystemClock", "TokenInfo", "derive", "event_id", "exchange", "issue",
    "pae", "register", "revoke", "rotate", "token_digest", "token_ref", "token_text", "TokenStatus",
]
