"""FastMCP's RFC 7662 verifier (`IntrospectionTokenVerifier`, PyPI
`fastmcp`), pointed at Baton's introspection endpoint with HTTP Basic client
credentials: accepts a live token with its scopes, subject and the chain as
nested `act` claims; rejects a revoked, an expired, an unknown and a
mis-addressed one, and every token when its secret is wrong. The raw answers
are checked too: `{"active": false}` and nothing else.

usage: introspect_fastmcp.py URL CLIENT_ID SECRET_FILE LIVE REVOKED EXPIRED UNKNOWN ELSEWHERE
Prints "fastmcp: N passed, M failed" last; exits non-zero on any failure.
"""

import asyncio
import base64
import sys

import httpx2
from fastmcp.server.auth.providers.introspection import IntrospectionTokenVerifier
from checks import check, summary
from readme import snippet

URL, CLIENT_ID, SECRET_FILE = sys.argv[1:4]
LIVE, REVOKED, EXPIRED, UNKNOWN, ELSEWHERE = sys.argv[4:9]
SECRET = open(SECRET_FILE).read().strip()



async def main() -> None:
    # README's snippet, as written (the node's address and the secret file
    # put where they are).
    code = snippet("fastmcp").replace("http://127.0.0.1:7701/oauth2/introspect", URL)
    code = code.replace('open("mcp-a.secret")', f"open({SECRET_FILE!r})")
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own README
    verifier = scope["verifier"]
    check("README's verifier is for this client", verifier is not None and CLIENT_ID == "mcp-a")
    live = await verifier.verify_token(LIVE)
    check("a live token is accepted", live is not None, live)
    if live is not None:
        check("... with its scopes", live.scopes == ["mcp:tools"], live.scopes)
        check("... held by server A", live.client_id == "mcp-a", live.client_id)
        check("... for Alice", live.subject == "user:alice@example.com", live.subject)
        act = (live.claims or {}).get("act")
        want = {
            "sub": "mcp-a",
            "baton_performed_by": "gateway",
            "act": {"sub": "gateway", "baton_performed_by": "auth.example"},
        }
        check("... and the chain as nested act claims", act == want, act)
        check("... and its tools", (live.claims or {}).get("baton_tools") == ["echo"], live.claims)
    for name, token in [("revoked", REVOKED), ("expired", EXPIRED), ("unknown", UNKNOWN),
                        ("mis-addressed", ELSEWHERE)]:
        rejected = await verifier.verify_token(token)
        check(f"a {name} token is rejected", rejected is None, rejected)

    wrong = IntrospectionTokenVerifier(introspection_url=URL, client_id=CLIENT_ID,
                                       client_secret=SECRET + "x")
    check("a wrong client secret gets nothing", await wrong.verify_token(LIVE) is None)

    # The answers themselves, as RFC 7662 has them.
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    async with httpx2.AsyncClient() as http:
        for name, token in [("revoked", REVOKED), ("mis-addressed", ELSEWHERE), ("unknown", UNKNOWN)]:
            r = await http.post(URL, data={"token": token}, headers={"Authorization": f"Basic {basic}"})
            check(f"a {name} token's answer is {{\"active\": false}} only",
                  r.status_code == 200 and r.json() == {"active": False}, (r.status_code, r.text))
        r = await http.post(URL, data={"token": LIVE})
        check("no client credentials: 401 invalid_client", r.status_code == 401
              and r.json().get("error") == "invalid_client"
              and r.headers.get("www-authenticate", "").startswith("Basic"), (r.status_code, r.text))
        r = await http.post(URL, data={"tokens": LIVE}, headers={"Authorization": f"Basic {basic}"})
        check("no token parameter: 400 naming it", r.status_code == 400
              and r.json().get("error_description", "").startswith("token:"), (r.status_code, r.text))
        r = await http.post(URL, data={"token": LIVE}, headers={"Authorization": f"Basic {basic}"})
        body = r.json()
        check("no-store on answers", r.headers.get("cache-control") == "no-store", r.headers)
        check("exp and iat are numbers", isinstance(body.get("exp"), int) and isinstance(body.get("iat"), int), body)


try:
    asyncio.run(main())
except BaseException as e:  # noqa: BLE001 - the count must still print
    check("the checks ran to the end", False, repr(e))
summary("fastmcp")
