"""Envoy's external authorization protocol against Baton, from a client
generated from Envoy's published protos (PyPI `xds-protos`, grpcio): the
HTTP status, headers and gRPC status of each answer, for an allowed tool
call, a tool the token lacks, a revoked token, a token addressed to another
resource (passthrough) and no token at all; a request tonic cannot read
(malformed, oversized) is a denial in band too.

usage: ext_authz.py HOST:PORT LIVE REVOKED ELSEWHERE
Prints "ext_authz: N passed, M failed" last; exits non-zero on any failure.
"""

import sys

import grpc
from envoy.config.core.v3 import base_pb2 as core
from envoy.service.auth.v3 import attribute_context_pb2 as ac
from envoy.service.auth.v3 import external_auth_pb2 as ea
from envoy.service.auth.v3 import external_auth_pb2_grpc as ea_grpc
from google.rpc import code_pb2
from checks import check, summary

ADDRESS, LIVE, REVOKED, ELSEWHERE = sys.argv[1:5]



def ask(stub, token: str | None, method: str | None, name: str | None = None,
        version: str | None = "2026-07-28", http_method: str = "POST",
        path: str = "/mcp") -> ea.CheckResponse:
    headers = {"content-type": "application/json"}
    if method is not None:
        headers["mcp-method"] = method
    if version is not None:
        headers["mcp-protocol-version"] = version
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if name is not None:
        headers["mcp-name"] = name
    http = ac.AttributeContext.HttpRequest(
        method=http_method, scheme="https", host="mcp-a.example", path=path, headers=headers)
    return stub.Check(ea.CheckRequest(attributes=ac.AttributeContext(
        request=ac.AttributeContext.Request(http=http))), timeout=30)


def headers(options) -> dict:
    return {h.header.key: h.header.value for h in options}


def denied(label: str, r: ea.CheckResponse, http: int, grpc_code: int, challenge: str) -> None:
    check(f"{label}: denied", r.WhichOneof("http_response") == "denied_response", r)
    check(f"{label}: HTTP {http}", r.denied_response.status.code == http, r.denied_response.status)
    check(f"{label}: gRPC status", r.status.code == grpc_code, r.status)
    www = headers(r.denied_response.headers).get("www-authenticate", "")
    check(f"{label}: WWW-Authenticate {challenge}", www.startswith(challenge), www)


with grpc.insecure_channel(ADDRESS) as channel:
    stub = ea_grpc.AuthorizationStub(channel)

    r = ask(stub, LIVE, "tools/call", "echo")
    check("allow: OK", r.status.code == code_pb2.OK and r.WhichOneof("http_response") == "ok_response", r)
    upstream = headers(r.ok_response.headers)
    check("allow: the upstream learns the subject", upstream.get("x-baton-subject") == "user:alice@example.com", upstream)
    check("allow: ... the holder and depth", upstream.get("x-baton-holder") == "mcp-a"
          and upstream.get("x-baton-depth") == "1", upstream)
    overwrite = [h.append_action for h in r.ok_response.headers]
    check("allow: the headers overwrite what the client sent", overwrite and all(a == 2 for a in overwrite), overwrite)
    r = ask(stub, LIVE, "tools/list")
    check("allow: tools/list needs no tool", r.status.code == code_pb2.OK, r)

    denied("deny tool", ask(stub, LIVE, "tools/call", "secret"), 403, code_pb2.PERMISSION_DENIED,
           'Bearer error="insufficient_scope"')
    denied("revoked", ask(stub, REVOKED, "tools/call", "echo"), 401, code_pb2.UNAUTHENTICATED,
           'Bearer error="invalid_token"')
    denied("passthrough", ask(stub, ELSEWHERE, "tools/call", "echo"), 401, code_pb2.UNAUTHENTICATED,
           'Bearer error="invalid_token"')
    # A request the gateway cannot see into is refused, not waved through:
    # an older protocol (no Mcp-Method; the server would not check the body
    # against headers), a path a normalising server reads as another.
    denied("legacy protocol", ask(stub, LIVE, None, version="2025-06-18"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    denied("header claims list, old version", ask(stub, LIVE, "tools/list", version="2025-11-25"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    denied("dot segments", ask(stub, LIVE, "tools/list", path="/mcp/../admin"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    r = ask(stub, LIVE, None, version=None, http_method="GET")
    check("a GET (the server's event stream) needs no MCP headers", r.status.code == code_pb2.OK, r)

    # Envoy's two header encodings. `headers` joins a repeated header with
    # commas: a joined value is refused, not read as one of its parts.
    denied("headers map: Mcp-Name joined", ask(stub, LIVE, "tools/call", "echo,secret"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    denied("Mcp-Method in another case", ask(stub, LIVE, "Tools/Call", "secret"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    denied("an unknown protocol version", ask(stub, LIVE, "tools/list", version="2099-01-01"), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    r = ask(stub, LIVE, "tools/list", path="/mcp/%74ools")
    check("an encoded unreserved character decodes inside the resource", r.status.code == code_pb2.OK, r)

    # `header_map` carries each copy, raw: a repeat is refused; one copy of
    # each is read like the `headers` map.
    def ask_raw(pairs, both=False):
        header_map = core.HeaderMap(headers=[core.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs])
        http = ac.AttributeContext.HttpRequest(
            method="POST", scheme="https", host="mcp-a.example", path="/mcp", header_map=header_map,
            headers={"x-both": "1"} if both else {})
        return stub.Check(ea.CheckRequest(attributes=ac.AttributeContext(
            request=ac.AttributeContext.Request(http=http))), timeout=30)
    common = [("authorization", f"Bearer {LIVE}"), ("mcp-protocol-version", "2026-07-28"),
              ("mcp-method", "tools/call")]
    r = ask_raw(common + [("mcp-name", "echo")])
    check("header_map: one copy of each is allowed", r.status.code == code_pb2.OK, r)
    denied("header_map: Mcp-Name twice", ask_raw(common + [("mcp-name", "echo"), ("mcp-name", "secret")]), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    denied("header_map: Authorization twice",
           ask_raw(common + [("mcp-name", "echo"), ("Authorization", "Bearer someone-else")]), 400,
           code_pb2.PERMISSION_DENIED, 'Bearer error="invalid_request"')
    r = ask_raw(common + [("mcp-name", "echo")], both=True)
    check("headers and header_map at once: the gateway's misconfiguration, 500",
          r.WhichOneof("http_response") == "denied_response" and r.denied_response.status.code == 500, r)

    # What tonic would refuse before Check runs is answered in band too:
    # a gRPC error is what an Envoy with failure_mode_allow lets through.
    raw_check = channel.unary_unary("/envoy.service.auth.v3.Authorization/Check",
                                    request_serializer=lambda raw: raw,
                                    response_deserializer=ea.CheckResponse.FromString)
    for label, raw in [("a malformed request", b"\xff\xff\xff\xff"),
                       ("a request over message_bytes_max", b"\x0a" + b"\xff" * (5 << 20))]:
        try:
            r = raw_check(raw, timeout=30)
            check(f"{label}: denied in band, 500", r.WhichOneof("http_response") == "denied_response"
                  and r.denied_response.status.code == 500, r)
        except grpc.RpcError as e:
            check(f"{label}: denied in band, 500", False, f"a gRPC error: {e.code()} {e.details()}")

    r = ask(stub, None, "tools/list")
    denied("no token", r, 401, code_pb2.UNAUTHENTICATED, "Bearer")
    www = headers(r.denied_response.headers).get("www-authenticate", "")
    check("no token: no error code (RFC 6750 3.1)", "error=" not in www, www)

summary("ext_authz")
