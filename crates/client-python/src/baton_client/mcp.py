"""Baton in an MCP server built with the Python MCP SDK (`mcp` 2.x).

The way to guard one: wrap its streamable HTTP app in
`baton_client.asgi.BatonMiddleware(app, checker, audience=resource,
scopes=[...])`. The middleware sees each request's `Mcp-Method` and
`Mcp-Name`, so it refuses a token lacking a scope, and a `tools/call` of a
tool the token does not grant, before any tool runs: tools carry no
authorization code. In a tool, `authorized(ctx)` is the caller's token.

The older way, `MCPServer(..., token_verifier=BatonTokenVerifier(checker,
resource), auth=AuthSettings(...))`, accepts a token only when Baton says it
is ACTIVE as presented to `resource`; a verifier sees the token but not the
call, so each tool must call `require_tool`. Either way the chain behind the
token rides in `AccessToken.claims`.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError

from .checker import Checker, TokenInfo


class ToolNotGranted(ToolError):
    """The caller's token does not grant the tool being called (a `ToolError`:
    the MCP SDK tells the client why)."""


def access_token(token: str, info: TokenInfo) -> AccessToken:
    """The MCP SDK's view of a token Baton answered ACTIVE (`info` with its
    details): holder, scopes, expiry, audience, subject, and Baton's tools,
    depth, event id and chain in `claims`."""
    details = info.details
    if details is None:
        raise ValueError("info: a token without its details (Baton answers them for an ACTIVE token)")
    return AccessToken(
        token=token,
        client_id=details.holder,
        scopes=list(details.scopes),
        expires_at=info.expires_at_s,
        resource=info.audience,
        subject=details.subject,
        claims={
            "iss": details.issuer,
            "baton_tools": list(details.tools),
            "baton_depth": details.depth,
            # Hex digits, as the node's introspection endpoint says it.
            "baton_event_id": (info.event_id or "").removeprefix("ev:"),
            # Root grant first: who performed each hop, who held it.
            "baton_chain": [
                {"performed_by": link.performed_by, "holder": link.holder, "audience": link.audience}
                for link in details.chain
            ],
        },
    )


def authorized(ctx: Any) -> AccessToken | None:
    """In a tool behind `BatonMiddleware` (`ctx`: the tool's `Context`): the
    token the call came with, read from the HTTP request that carried it.
    Its `token` is Baton's reference to it (`b3:…`), not the bearer: the
    middleware never keeps that. None outside such a request."""
    request = getattr(ctx.request_context, "request", None)
    state = getattr(request, "scope", {}).get("state") or {}
    info = state.get("baton")
    if not isinstance(info, TokenInfo) or info.details is None:
        return None
    return access_token(info.token, info)


def require_tool(name: str) -> AccessToken:
    """In a tool, with `BatonTokenVerifier`: the caller's token, if it grants
    tool `name` (Baton's `baton_tools`); raises `ToolNotGranted` otherwise.
    The verifier sees only the token, not the call, so each tool asks
    (`BatonMiddleware` needs none of this)."""
    token = get_access_token()
    tools = (token.claims or {}).get("baton_tools", []) if token is not None else []
    if token is None or name not in tools:
        raise ToolNotGranted(f"the token does not grant tool {name!r}")
    return token


class BatonTokenVerifier:
    """`async verify_token(token) -> AccessToken | None` (mcp's
    `TokenVerifier` protocol) on a Watch-fed `Checker`."""

    def __init__(self, checker: Checker, resource: str) -> None:
        self.checker = checker
        # The audience tokens presented to this server must carry (its RFC
        # 8707 resource URI).
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        answer = await self.checker.check_bearer(token.encode(), self.resource)
        if not answer.allows or answer.token is None or answer.token.details is None:
            return None
        return access_token(token, answer.token)
