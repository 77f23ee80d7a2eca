"""Token exchange (RFC 8693) recorded where it happens: the server or
gateway that swaps an upstream token for a downstream one appends the hop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from .client import Client
from .events import Parent, Token, token_ref, token_text
from .ids import event_id_text
from .signing import Signer, event_id


@dataclass(frozen=True)
class Exchanged:
    """A recorded exchange: the new token, its hop's event and lifetime."""

    token: str
    """The new token, as Baton prints it (`jti:…` or `b3:…`)."""
    event_id: str
    """The hop's event, as Baton prints it (`ev:` and 64 hex digits)."""
    depth: int
    """The new token's depth (its parent's plus one)."""
    expires_at_s: int
    """When the new token expires (Unix seconds): within its parent's
    lifetime."""
    accepted: bool
    """False when the node already had this hop (a retried call)."""
    consistency_token: str
    """Pass it as `after=` to a later call, on any node."""


async def exchange(
    client: Client,
    signer: Signer,
    *,
    parent: Token,
    token: Token,
    performed_by: str,
    holder: str,
    audience: str,
    scopes: Iterable[str],
    tools: Iterable[str],
    ttl_s: int = 900,
    after: str = "",
) -> Exchanged:
    """Reads the parent's chain, signs the hop (`performed_by`'s key) and
    appends it. The node's rules refuse a hop that widens scopes or tools,
    outlives its parent, or comes from a client that may not delegate."""
    wanted, new = token_text(token_ref(parent, "parent")), token_text(token_ref(token))
    chain = await client.chain(parent, after=after)
    leaf = Parent.of_chain(chain)
    if leaf is None or leaf.token != wanted:
        raise LookupError(f"parent: the node has no chain ending at {wanted}")
    issued_at_s, expires_at_s = leaf.lifetime(int(time.time()), ttl_s)
    hop = leaf.narrow(token, performed_by, holder, audience, scopes, tools, issued_at_s, expires_at_s)
    signed = signer.sign(hop)
    appended = await client.append([signed], after=after)
    return Exchanged(
        token=new,
        event_id=event_id_text(event_id(signed)),
        depth=leaf.depth + 1,
        expires_at_s=expires_at_s,
        accepted=bool(appended.accepted and appended.accepted[0]),
        consistency_token=appended.consistency_token,
    )
