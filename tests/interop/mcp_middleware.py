"""An MCP server built with the Python MCP SDK (`MCPServer`, streamable
HTTP, stateless, JSON answers) whose tools hold no authorization code,
wrapped in the Python SDK's `BatonMiddleware` on a `Checker` fed by a real
node, served by uvicorn on a free loopback port, and called by the MCP SDK's
own client (which sends `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version`
itself). The middleware alone must: let a granted tool run, with the token
reachable from the tool and Baton's `x-baton-*` headers in place of the
client's; refuse an ungranted tool (403 insufficient_scope naming it) and a
token without the resource's scope (403 naming `mcp`) before any tool runs;
answer a request without a token 401 with no error code; answer 401
invalid_token once the token's revocation reached the checker; and 503 when
the checker's feed is stale.

The node trusts the TEST-ONLY root of proto/testvectors (seed 01..01); every
other key is made here.

usage: mcp_middleware.py HOST:PORT
Prints "mcp middleware: N passed, M failed" last; exits non-zero on any
failure.
"""

import asyncio
import re
import sys
import time

import httpx2
import uvicorn
from baton.v1 import events_pb2
from baton_client import Checker, Client, ManualClock, Signer, issue, register, revoke, token_digest
from baton_client.asgi import BatonMiddleware
from baton_client.consistency import covers
from baton_client.mcp import authorized
from checks import check, summary
from mcp import Client as MCPClient
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

ROOT = Signer.from_seed(bytes([1]) * 32)
RUN = f"pymw{time.time_ns()}-"
AUDIENCE = "https://mcp-middleware.test/mcp"
METADATA_URL = "https://mcp-middleware.test/.well-known/oauth-protected-resource/mcp"
PROTOCOL = "2026-07-28"
DEADLINE_S = 20
# The tools that ran, in order: a refused call must never get here.
ran: list[str] = []

server = MCPServer("baton-middleware-test")


@server.tool()
def echo(text: str, ctx: Context) -> str:
    """Echo the text, with whom the token and the headers say is calling."""
    ran.append("echo")
    token = authorized(ctx)
    subject = token.subject if token is not None else None
    return f"{text} (token subject={subject}, header subject={(ctx.headers or {}).get('x-baton-subject')})"


@server.tool()
def secret() -> str:
    """A tool token (a) does not grant."""
    ran.append("secret")
    return "an ungranted call got through"


class Ledger:
    """The authorization server, the MCP client holding the tokens, and the
    two tokens this test presents (opaque bearers, known by digest)."""

    def __init__(self, node: Client):
        self.node = node
        self.keys = {"as": Signer.generate(), "agent": Signer.generate()}
        self.granted = f"{RUN}granted"
        self.unscoped = f"{RUN}unscoped"

    async def setup(self) -> str:
        authority, agent = RUN + "as", RUN + "agent"
        now = int(time.time())
        events = [
            ROOT.sign(register(authority, events_pb2.CLIENT_KIND_AUTHORIZATION_SERVER,
                               events_pb2.CLIENT_ROLE_DELEGATING_LAYER, [self.keys["as"]],
                               ["mcp", "other"], ["echo", "secret"])),
            self.keys["as"].sign(register(agent, events_pb2.CLIENT_KIND_MCP_CLIENT,
                                          events_pb2.CLIENT_ROLE_DELEGATING_LAYER, [self.keys["agent"]],
                                          ["mcp", "other"], ["echo", "secret"], registered_by=authority)),
            # (a): scope mcp, tool echo.
            self.keys["as"].sign(issue(token_digest(self.granted.encode()), "user:alice", authority, agent, AUDIENCE,
                                       ["mcp"], ["echo"], now, now + 3600)),
            # (b): every tool, but not the resource's scope.
            self.keys["as"].sign(issue(token_digest(self.unscoped.encode()), "user:bob", authority, agent, AUDIENCE,
                                       ["other"], ["echo", "secret"], now, now + 3600)),
        ]
        appended = await self.node.append(events)
        check("the node takes the registrations and tokens", all(appended.accepted), appended.accepted)
        return appended.consistency_token

    async def revoke_granted(self) -> str:
        appended = await self.node.append([ROOT.sign(revoke(token=token_digest(self.granted.encode()),
                                                            reason="test"))])
        return appended.consistency_token


async def caught_up(checker: Checker, written: str) -> None:
    await asyncio.wait_for(checker.wait_for(lambda: checker.is_fresh() and covers(checker.position, written)),
                           DEADLINE_S)


async def serve(app) -> tuple[uvicorn.Server, asyncio.Task, str]:
    """`app` on a free loopback port: the server, its task, its MCP URL."""
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(web.serve())
    deadline = time.monotonic() + DEADLINE_S
    while not web.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = web.servers[0].sockets[0].getsockname()[1]
    return web, task, f"http://127.0.0.1:{port}/mcp"


def parameter(challenge: str, name: str) -> str | None:
    """`Bearer …, name="…"`'s value, if present."""
    found = re.search(rf'(?:^Bearer |, ){name}="([^"]*)"', challenge)
    return found.group(1) if found else None


class Session:
    """The MCP SDK's client with one bearer token (or none), every HTTP
    answer it saw recorded. It claims to be an admin in `X-Baton-Subject`:
    the middleware must put Baton's in its place."""

    def __init__(self, url: str, bearer: str | None):
        self.url, self.answers = url, []
        headers = {"X-Baton-Subject": "admin"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        self.http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0),
                                       event_hooks={"response": [self._record]})

    async def _record(self, response: httpx2.Response) -> None:
        self.answers.append(response)

    async def call(self, tool: str, arguments: dict):
        """(result, None) when the call went through, else (None, the HTTP
        answer to the tools/call)."""
        before = len(self.answers)
        try:
            async with MCPClient(streamable_http_client(self.url, http_client=self.http), mode=PROTOCOL) as client:
                return await client.call_tool(tool, arguments), None
        except (MCPError, httpx2.HTTPError, ExceptionGroup) as error:
            calls = [a for a in self.answers[before:] if a.request.headers.get("mcp-method") == "tools/call"]
            return None, calls[-1] if calls else error

    async def list_tools(self) -> list[str]:
        async with MCPClient(streamable_http_client(self.url, http_client=self.http), mode=PROTOCOL) as client:
            return sorted(t.name for t in (await client.list_tools()).tools)

    async def close(self) -> None:
        await self.http.aclose()


def refused(name: str, answer, status: int, error: str | None, scope: str | None = None) -> None:
    """Checks that `answer` (an HTTP response) is the denial described."""
    if not isinstance(answer, httpx2.Response):
        check(f"{name}: refused over HTTP", False, answer)
        return
    challenge = answer.headers.get("www-authenticate", "")
    check(f"{name}: {status}", answer.status_code == status, (answer.status_code, challenge))
    check(f"{name}: error {error}", parameter(challenge, "error") == error, challenge)
    if scope is not None:
        check(f"{name}: scope {scope}", parameter(challenge, "scope") == scope, challenge)


async def granted_calls(url: str, ledger: Ledger) -> None:
    session = Session(url, ledger.granted)
    names = await session.list_tools()
    check("tools/list with token (a)", names == ["echo", "secret"], names)
    result, answer = await session.call("echo", {"text": "hello"})
    text = result.content[0].text if result is not None and result.content else answer
    ran_ok = result is not None and not result.is_error and str(text).startswith("hello")
    check("echo with token (a) runs", ran_ok, text)
    check("the tool reaches the token", "token subject=user:alice" in str(text), text)
    check("the tool reads Baton's x-baton-subject, not the client's", "header subject=user:alice" in str(text), text)
    del ran[:]
    result, answer = await session.call("secret", {})
    check("secret with token (a) is refused", result is None, result)
    refused("secret with token (a)", answer, 403, "insufficient_scope", "secret")
    check("secret never ran", "secret" not in ran, ran)
    await session.close()


async def unscoped_calls(url: str, ledger: Ledger) -> None:
    session = Session(url, ledger.unscoped)
    del ran[:]
    for tool, arguments in [("echo", {"text": "hello"}), ("secret", {})]:
        result, answer = await session.call(tool, arguments)
        check(f"{tool} with token (b) is refused", result is None, result)
        refused(f"{tool} with token (b)", answer, 403, "insufficient_scope", "mcp")
    check("no tool ran for token (b)", ran == [], ran)
    await session.close()


async def tokenless_call(url: str) -> None:
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)) as http:
        answer = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                            "params": {"name": "echo", "arguments": {"text": "x"}}},
                                 headers={"Mcp-Method": "tools/call", "Mcp-Name": "echo",
                                          "MCP-Protocol-Version": PROTOCOL,
                                          "Accept": "application/json, text/event-stream"})
    refused("no token", answer, 401, None)
    check("no token: the challenge names only the metadata",
          answer.headers.get("www-authenticate") == f'Bearer resource_metadata="{METADATA_URL}"',
          answer.headers.get("www-authenticate"))


async def revoked_call(url: str, ledger: Ledger, checker: Checker) -> None:
    await caught_up(checker, await ledger.revoke_granted())
    session = Session(url, ledger.granted)
    del ran[:]
    result, answer = await session.call("echo", {"text": "again"})
    check("echo after revocation is refused", result is None, result)
    refused("echo after revocation", answer, 401, "invalid_token")
    check("echo did not run after revocation", ran == [], ran)
    await session.close()


async def stale_call(url: str, ledger: Ledger, checker: Checker) -> None:
    """The feed stopped and its clock past the bound: no answer, so 503."""
    await checker.close()
    checker.clock.advance(checker.staleness_s + 1)
    session = Session(url, ledger.unscoped)
    result, answer = await session.call("echo", {"text": "stale"})
    check("a stale checker is refused", result is None, result)
    check("a stale checker answers 503", isinstance(answer, httpx2.Response) and answer.status_code == 503,
          getattr(answer, "status_code", answer))
    await session.close()


async def main(target: str) -> None:
    node = Client(target)
    ledger = Ledger(node)
    written = await ledger.setup()
    checker = await Checker(node, checkpoint_interval_ms=100, clock=ManualClock()).start()
    await caught_up(checker, written)
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    app = BatonMiddleware(app, checker, audience=AUDIENCE, scopes=["mcp"], metadata_url=METADATA_URL)
    web, task, url = await serve(app)
    try:
        await granted_calls(url, ledger)
        await unscoped_calls(url, ledger)
        await tokenless_call(url)
        await revoked_call(url, ledger, checker)
        await stale_call(url, ledger, checker)
    finally:
        web.should_exit = True
        await task
        await checker.close()
        await node.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except BaseException as e:  # noqa: BLE001 - the count must still print
        check("the run reached its end", False, repr(e))
    summary("mcp middleware")
