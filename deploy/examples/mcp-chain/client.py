"""The MCP client of the mcp-chain example: the Python MCP SDK's own client,
driving the chain through the gateway. It calls server A's tool (which calls
server B's), finds the hops Baton recorded below its token, revokes the
middle one on the second Baton node, and calls again until the chain
refuses it — printing how long that took.

usage: client.py GATEWAY_URL NODE2_TARGET ROOT_KEY_FILE BEARER_FILE
"""

import asyncio
import pathlib
import sys
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import baton_client
from baton.v1 import provenance_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests" / "interop"))
from checks import check, summary  # noqa: E402

GATEWAY, NODE2, ROOT_KEY, BEARER_FILE = sys.argv[1:5]
BOUND_S = 10.0
answers: list[httpx2.Response] = []


async def record(response: httpx2.Response) -> None:
    answers.append(response)


async def descendants(node: baton_client.Client, root: bytes) -> list:
    request = provenance_pb2.GetDescendantsRequest()
    request.token.digest = root
    return [item.token async for item in node.provenance.GetDescendants(request, timeout=10)]


async def main() -> None:
    bearer = pathlib.Path(BEARER_FILE).read_text().strip()
    root = baton_client.token_digest(bearer.encode())
    node2 = baton_client.Client(NODE2)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=30,
                                  event_hooks={"response": [record]}) as http:
        async with Client(streamable_http_client(GATEWAY, http_client=http), mode="2026-07-28") as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            check("tools/list through the gateway reaches server A", tools == ["audit", "research"], tools)
            ungranted = await client.call_tool("audit", {"topic": "delegation"})
            said = ungranted.content[0].text if ungranted.content else ""
            check("a tool the token does not grant is refused (require_tool)",
                  ungranted.is_error and "does not grant tool 'audit'" in said, said)
            started = time.monotonic()
            result = await client.call_tool("research", {"topic": "delegation"})
            first_ms = (time.monotonic() - started) * 1000
            text = result.content[0].text if result.content else ""
            print(f"research: {text}", flush=True)
            started = time.monotonic()
            await client.call_tool("research", {"topic": "warm"})
            print(f"one call through the chain: {first_ms:.0f} ms cold, {(time.monotonic() - started) * 1000:.0f} ms warm",
                  flush=True)
            check("a tool call at A that calls B succeeds", not result.is_error and "B looked up" in text, text)
            check("B saw the user and the whole chain",
                  "for user:alice@example.com via gateway > server-a > server-b" in text, text)

            # The hops the gateway and server A recorded, as the second node sees them.
            deadline = time.monotonic() + BOUND_S
            found = []
            while len(found) < 2 and time.monotonic() < deadline:
                found = sorted(await descendants(node2, root), key=lambda t: t.depth)
                await asyncio.sleep(0.05)
            check("node 2 knows both recorded hops", [t.depth for t in found] == [1, 2], found)
            middle, leaf = found[0], found[1]
            check("the middle hop is the gateway's token for server A",
                  (middle.performed_by, middle.holder) == ("gateway", "server-a"), middle)
            check("the leaf is server A's token for server B",
                  (leaf.performed_by, leaf.holder, leaf.subject) == ("server-a", "server-b", "user:alice@example.com"),
                  leaf)
            print(f"leaf token {baton_client.token_text(leaf.token)}", flush=True)

            # Revoke the middle hop on node 2; server A watches node 1.
            revocation = baton_client.Signer.from_key_file(ROOT_KEY).sign(
                baton_client.revoke(token=middle.token, reason="mcp-chain: the middle hop ends"))
            await node2.append([revocation])
            revoked_at = time.monotonic()
            refused = None
            served = 0
            while time.monotonic() - revoked_at < BOUND_S:
                try:
                    await client.call_tool("research", {"topic": "again"})
                    served += 1
                except Exception as error:  # the SDK raises on the 401
                    refused = error
                    break
            elapsed_ms = (time.monotonic() - revoked_at) * 1000
            last = answers[-1] if answers else None
            check(f"the next call is refused within {BOUND_S:.0f} s", refused is not None, "still served")
            check("refused with 401 and the spec's challenge",
                  last is not None and last.status_code == 401
                  and 'error="invalid_token"' in last.headers.get("www-authenticate", ""),
                  last and (last.status_code, last.headers.get("www-authenticate")))
            print(f"revocation on node 2 -> 401 at server A after {elapsed_ms:.0f} ms "
                  f"({served} call(s) served meanwhile)", flush=True)
    await node2.close()


if __name__ == "__main__":
    asyncio.run(main())
    summary("mcp chain")
