"""MCP server A of the mcp-chain example: a Python MCP SDK server that takes
Baton as its token verifier (one constructor argument), and whose tool, to
do its work, exchanges its own token for one addressed to MCP server B
(recording the hop in Baton) and calls B's tool with it.

usage: server_a.py PORT BATON_TARGET KEY_FILE B_URL
"""

import asyncio
import secrets
import sys
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

import baton_client
from baton_client.mcp import BatonTokenVerifier, require_tool

PORT, TARGET, KEY_FILE, B_URL = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
URL = f"http://127.0.0.1:{PORT}/mcp"


async def main() -> None:
    baton = baton_client.Client(TARGET)
    signer = baton_client.Signer.from_key_file(KEY_FILE)

    # Use Baton from a Python MCP server: a Watch-fed checker, and the verifier.
    checker = await baton_client.Checker(baton).start()
    server = MCPServer(
        "server-a",
        token_verifier=BatonTokenVerifier(checker, resource=URL),
        auth=AuthSettings(issuer_url="https://auth.example", resource_server_url=URL, required_scopes=["kb:read"]),
    )
    # (end of the README snippet)

    # Downstream tokens minted so far (and when they expire), by the upstream
    # token they came from.
    minted: dict[str, tuple[str, int]] = {}

    @server.tool()
    async def research(topic: str) -> str:
        """Researches a topic, asking MCP server B to look it up."""
        upstream = require_tool("research")
        key = baton_client.token_text(baton_client.token_ref(baton_client.token_digest(upstream.token.encode())))
        if key not in minted or minted[key][1] <= time.time() + 30:
            # Record a token exchange: the hop from this server's token to B's.
            downstream = secrets.token_urlsafe(32)
            exchanged = await baton_client.exchange(
                baton, signer,
                parent=baton_client.token_digest(upstream.token.encode()),
                token=baton_client.token_digest(downstream.encode()),
                performed_by="server-a", holder="server-b", audience=B_URL,
                scopes=["kb:read"], tools=["lookup"], ttl_s=600,
            )
            # (end of the exchange snippet)
            minted[key] = (downstream, exchanged.expires_at_s)
            print(f"server-a exchanged {key} for {exchanged.token} (depth {exchanged.depth})", flush=True)
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {minted[key][0]}"}, timeout=30) as http:
            async with Client(streamable_http_client(B_URL, http_client=http), mode="2026-07-28") as b:
                result = await b.call_tool("lookup", {"topic": topic})
        answer = result.content[0].text if result.content else ""
        return f"A researched {topic!r} for {upstream.subject}; {answer}"

    @server.tool()
    async def audit(topic: str) -> str:
        """A tool Alice's grant does not include: refused by require_tool."""
        require_tool("audit")
        return f"audited {topic!r}"

    print(f"server-a listening on {URL}", flush=True)
    await server.run_streamable_http_async(
        host="127.0.0.1", port=PORT, stateless_http=True, json_response=True,
        # Behind the gateway, the Host header is the gateway's business.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


if __name__ == "__main__":
    asyncio.run(main())
