"""The bridges over TLS with client certificates: forward-auth and RFC 7662
introspection on the HTTP listener (HTTP/1.1 over TLS), ext_authz on the gRPC
port, each asked by a gateway certificate bound to audience A. A caller
without a certificate learns nothing; a gateway without a certificate or
bound to another audience gets a 500 denial in band (never a 403 that blames
the user, never a gRPC error a fail-open Envoy would let through).

usage: bridges_mtls.py HTTPS_URL GRPC_ADDR CA GATEWAY_CERT GATEWAY_KEY OTHER_CERT OTHER_KEY LIVE ELSEWHERE
Prints "bridges over mTLS: N passed, M failed" last.
"""

import ssl
import sys

import grpc
import httpx2
from checks import check, summary
from envoy.service.auth.v3 import attribute_context_pb2 as ac
from envoy.service.auth.v3 import external_auth_pb2 as ea
from envoy.service.auth.v3 import external_auth_pb2_grpc as ea_grpc
from google.rpc import code_pb2

URL, GRPC, CA, CERT, KEY, OTHER_CERT, OTHER_KEY, LIVE, ELSEWHERE = sys.argv[1:10]


def context(cert: str | None, key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=CA)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def forward_headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "mcp-a.example", "X-Original-URI": "/mcp",
            "X-Original-Method": "POST", "Mcp-Method": "tools/call", "Mcp-Name": "echo",
            "MCP-Protocol-Version": "2026-07-28"}


def ext_authz(cert: str, key: str, token: str) -> ea.CheckResponse:
    read = lambda path: open(path, "rb").read()  # noqa: E731
    credentials = grpc.ssl_channel_credentials(read(CA), read(key), read(cert))
    with grpc.secure_channel(GRPC, credentials) as channel:
        http = ac.AttributeContext.HttpRequest(
            method="POST", scheme="https", host="mcp-a.example", path="/mcp",
            headers={"authorization": f"Bearer {token}", "mcp-method": "tools/call",
                     "mcp-name": "echo", "mcp-protocol-version": "2026-07-28"})
        return ea_grpc.AuthorizationStub(channel).Check(ea.CheckRequest(
            attributes=ac.AttributeContext(request=ac.AttributeContext.Request(http=http))), timeout=30)


try:
    with httpx2.Client(verify=context(CERT, KEY), timeout=30) as http:
        r = http.get(f"{URL}/authz", headers=forward_headers(LIVE))
        check("forward-auth over TLS allows the live token", r.status_code == 200, (r.status_code, r.text))
        check("... naming its subject", r.headers.get("x-baton-subject") == "user:alice@example.com", r.headers)
        r = http.post(f"{URL}/oauth2/introspect", data={"token": LIVE})
        check("introspection by certificate: active", r.status_code == 200 and r.json().get("active") is True,
              (r.status_code, r.text))
        r = http.post(f"{URL}/oauth2/introspect", data={"token": ELSEWHERE})
        check("a token for another audience: inactive to this gateway", r.json() == {"active": False}, r.text)
    with httpx2.Client(verify=context(None, None), timeout=30) as anonymous:
        r = anonymous.get(f"{URL}/authz", headers=forward_headers(LIVE))
        check("no certificate: forward-auth is an error, not a decision", r.status_code == 500, (r.status_code, r.text))
        r = anonymous.post(f"{URL}/oauth2/introspect", data={"token": LIVE})
        check("no certificate: introspection 401", r.status_code == 401, (r.status_code, r.text))
        r = anonymous.get(f"{URL}/healthz")
        check("/healthz answers anyone", r.status_code == 200 and r.text == "serving\n", (r.status_code, r.text))

    r = ext_authz(CERT, KEY, LIVE)
    check("ext_authz over mTLS allows", r.status.code == code_pb2.OK, r)
    # The gateway's own misconfiguration is a 500 to the end user, in band:
    # never a 403 blaming the user's token, never a gRPC error that an Envoy
    # with failure_mode_allow would let through.
    r = ext_authz(OTHER_CERT, OTHER_KEY, LIVE)
    check("a gateway bound elsewhere is denied in-band with 500", r.WhichOneof("http_response") == "denied_response"
          and r.denied_response.status.code == 500 and r.status.code != code_pb2.OK, r)
    with httpx2.Client(verify=context(OTHER_CERT, OTHER_KEY), timeout=30) as other:
        r = other.get(f"{URL}/authz", headers=forward_headers(LIVE))
        check("forward-auth by a gateway bound elsewhere: 500, naming no audience",
              r.status_code == 500 and "mcp-a.example" not in r.text and "gateway's own request" in r.text,
              (r.status_code, r.text))
    read = lambda path: open(path, "rb").read()  # noqa: E731
    with grpc.secure_channel(GRPC, grpc.ssl_channel_credentials(read(CA))) as channel:
        r = ea_grpc.AuthorizationStub(channel).Check(ea.CheckRequest(), timeout=30)
    check("ext_authz without a certificate is denied in band with 500",
          r.WhichOneof("http_response") == "denied_response" and r.denied_response.status.code == 500
          and r.status.code != code_pb2.OK and "gateway's own request" in r.denied_response.body
          and "spiffe" not in r.denied_response.body, r)
except BaseException as e:  # noqa: BLE001 - the count must still print
    check("the checks ran to the end", False, repr(e))
summary("bridges over mTLS")
