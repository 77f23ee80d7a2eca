"""An upstream that records what it was asked for: uvicorn (the server the
Python MCP SDK runs on) with a bare ASGI app that answers every request with
what the server made of it — the method, the path as the app routes on it
(uvicorn's percent-decoded `path`), the raw path and every header copy in
order — and appends the same line to a log file, so a test can count what
reached the upstream.

usage: recorder.py PORT LOG
"""

import json
import sys

import uvicorn

PORT, LOG = int(sys.argv[1]), sys.argv[2]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
    }
    line = json.dumps(seen)
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")
    body = line.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
