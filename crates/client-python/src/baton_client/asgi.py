"""An ASGI middleware for an MCP server (the Python MCP SDK's streamable
HTTP app, or any ASGI app): every HTTP request's bearer token is checked
with a `Checker` as presented to this server's resource, before the app sees
it, by the decision the node's gateway bridges and the Rust SDK's
`BatonLayer` make (`baton_client.gateway`). A `tools/call` of a tool the
token does not grant, or a request whose token lacks one of the resource's
scopes, is refused here: a tool needs no authorization code of its own.

A denial is the MCP authorization spec's (401 `invalid_token`, 403
`insufficient_scope`, 400 `invalid_request`), with the reason in
`x-baton-reason` and an empty body. When the checker cannot answer (its
feed stale past the bound, the node unreachable) the request is refused
with 503: fail closed. An allowed request reaches the app with the token's
`TokenInfo` in `scope["state"]["baton"]` (Starlette: `request.state.baton`;
in an MCP tool: `baton_client.mcp.authorized(ctx)`), and with the
`x-baton-*` headers set by Baton (any of those four a client sent are
dropped).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from . import gateway
from .checker import ACTIVE, Checker, TokenInfo

log = logging.getLogger("baton_client.asgi")

# ASGI's types (the spec's, as Starlette spells them).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# The sources of an answer that is no answer: the caller cannot decide.
UNDECIDED = {
    "stale": "Baton could not decide: its revocation feed is stale",
    "unavailable": "Baton could not decide: the node did not answer",
}
# The close code a WebSocket is refused with (RFC 6455: policy violation).
WEBSOCKET_REFUSED = 1008


class BatonMiddleware:
    """`BatonMiddleware(app, checker, audience=…, scopes=[…])`: `audience`
    is this server's resource URI (the audience its tokens must carry),
    `scopes` those every request needs, `metadata_url` its RFC 9728
    protected-resource metadata (named in 401 challenges). `checker` must be
    started (`await checker.start()`) before requests arrive."""

    def __init__(
        self,
        app: App,
        checker: Checker,
        *,
        audience: str,
        scopes: Iterable[str] = (),
        metadata_url: str | None = None,
    ) -> None:
        self.app = app
        self.checker = checker
        self.resource = gateway.Resource(audience, tuple(scopes), metadata_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            verdict, token = await self.decide(scope["method"], scope["headers"])
            if not verdict.allowed:
                await _deny(send, verdict)
                return
            await self.app(_authorized(scope, verdict, token), receive, send)
        elif scope["type"] == "websocket":
            # No MCP transport is a WebSocket: refused rather than let
            # through undecided.
            await receive()
            await send({"type": "websocket.close", "code": WEBSOCKET_REFUSED})
        elif scope["type"] == "lifespan":
            # The app's start-up and shutdown: no request.
            await self.app(scope, receive, send)
        else:
            # A kind of connection this middleware does not know how to
            # decide: never let through undecided.
            raise RuntimeError(f"BatonMiddleware: ASGI scope type {scope['type']!r} is not decided; refused")

    async def decide(self, method: str, headers: gateway.Headers) -> tuple[gateway.Verdict, TokenInfo | None]:
        """The verdict for a request, and the token when allowed."""
        presented = gateway.admit(self.resource, method, headers)
        if isinstance(presented, gateway.Verdict):
            return presented, None
        if presented.bearer is None:  # `admit` answers such a request itself
            return gateway.Verdict(401, gateway.challenge(self.resource, ""), "no bearer token"), None
        try:
            answer = await self.checker.check_bearer(presented.bearer.encode("ascii"), self.resource.audience)
        except Exception:  # whatever failed, nobody decided: fail closed
            log.exception("the checker failed")
            return gateway.Verdict(503, None, "Baton could not decide: the checker failed"), None
        if answer.source in UNDECIDED:
            return gateway.Verdict(503, None, UNDECIDED[answer.source]), None
        token = answer.token
        verdict = gateway.conclude(
            self.resource,
            presented,
            answer.status,
            token.details if token is not None else None,
            token.event_id if token is not None else None,
        )
        if verdict.allowed and (answer.status != ACTIVE or token is None):
            return gateway.Verdict(503, None, "no token details"), None
        return verdict, token


def _authorized(scope: Scope, verdict: gateway.Verdict, token: TokenInfo | None) -> Scope:
    """The request as the app gets it: Baton's `x-baton-*` headers in place
    of any the client sent, the token in its state."""
    ours = {name.encode("ascii") for name in gateway.UPSTREAM_HEADERS}
    # Names in lower case, as ASGI promises and the MCP SDK compares them:
    # the app reads the header Baton judged, whatever case it came in.
    headers = [(name.lower(), value) for name, value in scope["headers"] if name.lower() not in ours]
    headers += [(name.encode("ascii"), value.encode("ascii")) for name, value in verdict.headers]
    return {**scope, "headers": headers, "state": {**scope.get("state", {}), "baton": token}}


async def _deny(send: Send, verdict: gateway.Verdict) -> None:
    """The denial: its status and challenge, the reason in `x-baton-reason`,
    never cached, no body (its type is the app's)."""
    headers = [
        (b"x-baton-reason", gateway.quotable(verdict.reason).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    if verdict.www_authenticate is not None:
        headers.append((b"www-authenticate", verdict.www_authenticate.encode("ascii")))
    await send({"type": "http.response.start", "status": verdict.status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
