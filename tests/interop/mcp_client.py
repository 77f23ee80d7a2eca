"""A real MCP client (the Python MCP SDK) through a gateway that asks Baton:
lists tools, calls a granted tool, calls one the token lacks (403), then,
once the test has revoked the token (a line on stdin), calls again (401).
Every HTTP answer the client saw is recorded, so the statuses and
WWW-Authenticate headers are asserted as the gateway sent them.

usage: mcp_client.py URL BEARER
Prints "mcp client: N passed, M failed" last; exits non-zero on any failure.
"""

import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from checks import check, summary

URL, BEARER = sys.argv[1], sys.argv[2]
answers: list[httpx2.Response] = []


async def record(response: httpx2.Response) -> None:
    answers.append(response)


def last_tool_call() -> httpx2.Response | None:
    calls = [a for a in answers if a.request.headers.get("mcp-method") == "tools/call"]
    return calls[-1] if calls else None


async def denied(client: Client, tool: str, arguments: dict) -> httpx2.Response | None:
    try:
        result = await client.call_tool(tool, arguments)
    except MCPError:
        return last_tool_call()
    check(f"{tool} is refused", False, result)
    return None


async def main() -> None:
    async with httpx2.AsyncClient(
        # A client claiming to be someone else to the upstream: the gateway
        # must overwrite it.
        headers={"Authorization": f"Bearer {BEARER}", "X-Baton-Subject": "admin"},
        timeout=httpx2.Timeout(30.0),
        event_hooks={"response": [record]},
    ) as http:
        async with Client(streamable_http_client(URL, http_client=http), mode="2026-07-28") as client:
            tools = await client.list_tools()
            names = sorted(t.name for t in tools.tools)
            check("tools/list through the gateway", names == ["echo", "secret"], names)

            result = await client.call_tool("echo", {"text": "hello"})
            text = result.content[0].text if result.content else ""
            check("a granted tool is called", not result.is_error and text.startswith("hello"), text)
            check("the upstream is told the subject", "subject=user:alice@example.com" in text, text)
            check("the upstream is told the holder", "holder=mcp-client" in text, text)

            answer = await denied(client, "secret", {})
            check("an ungranted tool gets 403", answer is not None and answer.status_code == 403,
                  answer and answer.status_code)
            challenge = answer.headers.get("www-authenticate", "") if answer is not None else ""
            check("... with insufficient_scope", 'error="insufficient_scope"' in challenge, challenge)

            # The same ungranted call in the older protocol, which carries no
            # Mcp-Method header and whose server does not check the body
            # against headers: refused at the gateway (nginx turns Baton's
            # 400 into a 500), the tool never runs.
            legacy = await http.post(URL, json={
                "jsonrpc": "2.0", "id": 99, "method": "tools/call",
                "params": {"name": "secret", "arguments": {}},
            }, headers={"MCP-Protocol-Version": "2025-06-18",
                        "Accept": "application/json, text/event-stream"})
            check("a legacy-protocol tools/call is refused at the gateway",
                  legacy.status_code >= 400 and "ungranted" not in legacy.text,
                  (legacy.status_code, legacy.text[:200]))

            print("READY FOR REVOCATION", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)

            answer = await denied(client, "echo", {"text": "again"})
            check("after revocation the next call gets 401", answer is not None and answer.status_code == 401,
                  answer and answer.status_code)
            challenge = answer.headers.get("www-authenticate", "") if answer is not None else ""
            check("... with invalid_token", 'error="invalid_token"' in challenge, challenge)


try:
    anyio.run(main)
except BaseException as e:  # noqa: BLE001 - the count must still print
    check("the session ran to the end", False, repr(e))
summary("mcp client")
