"""Baton as the token verifier of an MCP server built with the Python MCP
SDK (`mcp` 2.x): `MCPServer(..., token_verifier=BatonTokenVerifier(checker,
resource), auth=AuthSettings(...))`. A token is accepted only when Baton
says it is ACTIVE as presented to `resource`; the chain behind it rides in
`AccessToken.claims`."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError

from .checker import Checker


class ToolNotGranted(ToolError):
    """The caller's token does not grant the tool being called (a `ToolError`:
    the MCP SDK tells the client why)."""


def require_tool(name: str) -> AccessToken:
    """In a tool: the caller's token, if it grants tool `name` (Baton's
    `baton_tools`); raises `ToolNotGranted` otherwise. The verifier sees only
    the token, not the call, so each tool asks."""
    token = get_access_token()
    tools = (token.claims or {}).get("baton_tools", []) if token is not None else []
    if name not in tools:
        raise ToolNotGranted(f"the token does not grant tool {name!r}")
    return token


class BatonTokenVerifier:
    """`async verify_token(token) -> AccessToken | None` (mcp's
    `TokenVerifier` protocol) on a Watch-fed `Checker`."""

    def __init__(self, checker: Checker, resource: str):
        self.checker = checker
        # The audience tokens presented to this server must carry (its RFC
        # 8707 resource URI).
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        answer = await self.checker.check_bearer(token.encode(), self.resource)
        if not answer.allows or answer.token is None or answer.token.details is None:
            return None
        details = answer.token.details
        return AccessToken(
            token=token,
            client_id=details.holder,
            scopes=list(details.scopes),
            expires_at=answer.token.expires_at_s,
            resource=answer.token.audience,
            subject=details.subject,
            claims={
                "iss": details.issuer,
                "baton_tools": list(details.tools),
                "baton_depth": details.depth,
                "baton_event_id": answer.token.event_id.hex(),
                # Root grant first: who performed each hop, who held it.
                "baton_chain": [
                    {"performed_by": link.performed_by, "holder": link.holder, "audience": link.audience}
                    for link in details.chain
                ],
            },
        )
