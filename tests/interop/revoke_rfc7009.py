"""RFC 7009 revocation at one Baton node, seen by RFC 7662 introspection at
another (the same Kafka log): a client revoking a token outside its chain is
refused and nothing is appended; the holder of the chain revokes its root,
and the root's descendants answer inactive on the other node once it has
applied the revocation's consistency token; unknown and already revoked
tokens get RFC 7009's 200; a caller without credentials gets 401.

usage: revoke_rfc7009.py HTTP_A HTTP_B GATEWAY_SECRET_FILE OUTSIDER_SECRET_FILE ROOT LIVE
Prints "rfc7009: N passed, M failed" last; exits non-zero on any failure.
"""

import sys

import httpx2
from checks import check, summary

A, B, GATEWAY_SECRET, OUTSIDER_SECRET, ROOT, LIVE = sys.argv[1:7]
gateway = ("gateway-admin", open(GATEWAY_SECRET).read().strip())
outsider = ("mcp-b-admin", open(OUTSIDER_SECRET).read().strip())


def introspect(http: httpx2.Client, node: str, token: str, consistency: str = "") -> dict:
    data = {"token": token}
    if consistency:
        data["consistency_token"] = consistency
    r = http.post(f"{node}/oauth2/introspect", data=data, auth=gateway)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def revoke(http: httpx2.Client, node: str, token: str, auth) -> httpx2.Response:
    return http.post(f"{node}/oauth2/revoke", data={"token": token, "token_type_hint": "access_token"},
                     auth=auth)


try:
    with httpx2.Client(timeout=30) as http:
        before = introspect(http, A, LIVE)
        check("the live token is active", before.get("active") is True, before)
        position = before.get("baton_consistency_token")

        r = revoke(http, A, ROOT, outsider)
        check("a client outside the chain is refused", r.status_code == 400
              and r.json().get("error") == "unauthorized_client", (r.status_code, r.text))
        check("... naming whose authority fell short", "mcp-b" in r.json().get("error_description", ""), r.text)
        check("... with no position written", "x-baton-consistency-token" not in r.headers, r.headers)
        after = introspect(http, A, LIVE)
        check("... and nothing was appended", after.get("active") is True
              and after.get("baton_consistency_token") == position, after)

        r = revoke(http, A, "test-only-never-issued", gateway)
        check("an unknown token: 200 (RFC 7009 2.2)", r.status_code == 200, (r.status_code, r.text))
        check("... and nothing appended", introspect(http, A, LIVE).get("baton_consistency_token") == position)

        r = http.post(f"{A}/oauth2/revoke", data={"token": ROOT})
        check("no client credentials: 401", r.status_code == 401
              and r.json().get("error") == "invalid_client", (r.status_code, r.text))

        r = revoke(http, A, ROOT, gateway)
        check("the chain's holder revokes its root: 200", r.status_code == 200, (r.status_code, r.text))
        written = r.headers.get("x-baton-consistency-token", "")
        check("... with the position it reached", written.startswith("ct1."), r.headers)
        for name, token in [("the root", ROOT), ("its descendant", LIVE)]:
            answer = introspect(http, B, token, written)
            check(f"{name} is inactive on the other node", answer == {"active": False}, answer)

        r = revoke(http, B, ROOT, gateway)
        check("revoking it again: 200", r.status_code == 200, (r.status_code, r.text))
        check("... and nothing appended", "x-baton-consistency-token" not in r.headers, r.headers)
except BaseException as e:  # noqa: BLE001 - the count must still print
    check("the checks ran to the end", False, repr(e))
summary("rfc7009")
