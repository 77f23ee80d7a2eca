"""Token exchange (RFC 8693) recorded where it happens: the server or
gateway that swaps an upstream token for a downstream one appends the hop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from .client import Client
from .events import Parent, token_ref, token_text
from .signing import Signer, event_id


@dataclass(frozen=True)
class Exchanged:
    token: str
    event_id: bytes
    depth: int
    expires_at_s: int
    accepted: bool
    consistency_token: str


async def exchange(
    client: Client,
    signer: Signer,
    *,
    parent,
    token,
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
    chain = await client.chain(parent, after=after)
    leaf = Parent.of_chain(chain)
    if leaf is None or leaf.token != token_ref(parent):
        raise LookupError(f"parent: the node has no chain ending at {token_text(token_ref(parent))}")
    issued_at_s, expires_at_s = leaf.lifetime(int(time.time()), ttl_s)
    hop = leaf.narrow(token, performed_by, holder, audience, scopes, tools, issued_at_s, expires_at_s)
    signed = signer.sign(hop)
    appended = await client.append([signed], after=after)
    return Exchanged(
        token=token_text(token_ref(token)),
        event_id=event_id(signed),
        depth=leaf.depth + 1,
        expires_at_s=expires_at_s,
        accepted=bool(appended.accepted and appended.accepted[0]),
        consistency_token=appended.consistency_token,
    )
