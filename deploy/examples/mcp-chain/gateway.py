"""The gateway of the mcp-chain example: an HTTP reverse proxy in front of
MCP server A. It checks the caller's token with Baton (a Watch-fed cache),
exchanges it for a token addressed to server A — recording the hop with the
Python SDK — and forwards the request with the new token. Server A's
answers, 401s included, go back to the caller unchanged.

usage: gateway.py PORT BATON_TARGET KEY_FILE A_URL
"""

import asyncio
import secrets
import sys
import time

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import baton_client

PORT, TARGET, KEY_FILE, A_URL = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
URL = f"http://127.0.0.1:{PORT}/mcp"
HOP_HEADERS = {"host", "authorization", "content-length", "connection", "transfer-encoding"}


async def main() -> None:
    baton = baton_client.Client(TARGET)
    signer = baton_client.Signer.from_key_file(KEY_FILE)
    checker = await baton_client.Checker(baton).start()
    upstream = httpx2.AsyncClient(timeout=60)
    # Downstream tokens (and their expiry), by the caller's token.
    minted: dict[str, tuple[str, int]] = {}

    async def forward(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else ""
        answer = await checker.check_bearer(bearer.encode(), URL) if bearer else None
        if answer is not None and answer.source in ("stale", "unavailable"):
            # Baton cannot say now: refuse, but not as a bad token.
            return Response(status_code=503, content=f"Baton could not decide ({answer.source})")
        if answer is None or not answer.allows:
            why = "no token" if answer is None else baton_client.checker.STATUS_NAMES.get(answer.status, "unknown")
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, content=why)
        key = baton_client.token_text(baton_client.token_ref(baton_client.token_digest(bearer.encode())))
        if key not in minted or minted[key][1] <= time.time() + 30:
            downstream = secrets.token_urlsafe(32)
            exchanged = await baton_client.exchange(
                baton, signer,
                parent=baton_client.token_digest(bearer.encode()),
                token=baton_client.token_digest(downstream.encode()),
                performed_by="gateway", holder="server-a", audience=A_URL,
                scopes=["kb:read"], tools=["research", "lookup"], ttl_s=900,
            )
            minted[key] = (downstream, exchanged.expires_at_s)
            print(f"gateway exchanged {key} for {exchanged.token} (depth {exchanged.depth})", flush=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["authorization"] = f"Bearer {minted[key][0]}"
        reply = await upstream.request(request.method, A_URL, headers=headers, content=await request.body())
        passed = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS | {"content-encoding"}}
        return Response(content=reply.content, status_code=reply.status_code, headers=passed)

    app = Starlette(routes=[Route("/mcp", forward, methods=["GET", "POST", "DELETE"])])
    print(f"gateway listening on {URL}", flush=True)
    await uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning")).serve()


if __name__ == "__main__":
    asyncio.run(main())
