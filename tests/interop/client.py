"""A gRPC client on stock grpcio (synchronous stubs generated from proto/),
signing with the Python SDK's `Signer` (crates/client-python; the
`cryptography` package's ed25519, the `blake3` package).

It first checks the signer against proto/testvectors/events.json, then,
against a running node whose trust root is the vectors' TEST-ONLY root key
(seed 01..01), registers an authorization server and a gateway, issues a
token, narrows it for the next hop, checks both, revokes the root grant and
checks that the hop is revoked through the cascade, and reads the hop's
chain.

With --ca/--cert/--key it talks mTLS (grpc.ssl_channel_credentials) and
first checks that the same node refuses a channel without a client
certificate (UNAUTHENTICATED).

Usage: python client.py REPO_ROOT HOST:PORT [--ca CA.pem --cert CERT.pem --key KEY.pem]
"""

import argparse

import json
import pathlib
import sys
import time

import grpc
from baton.v1 import (
    events_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    provenance_pb2,
    provenance_pb2_grpc,
    revocation_pb2,
    revocation_pb2_grpc,
)
from baton_client import Parent, issue, register
from baton_client.signing import Signer as SdkSigner
from baton_client.signing import event_id as signed_event_id

import check_vectors


class Signer(SdkSigner):
    """A TEST-ONLY key from a fixed seed byte."""

    def __init__(self, seed_byte: int):
        other = SdkSigner.from_seed(bytes([seed_byte]) * 32)
        super().__init__(other._key)
        # Hostile tests sign raw bytes with the key itself.
        self.key = other._key
        self.public = self.public_key

    def seal(self, events_pb2, event):
        return self.sign(event)


class Tally:
    """Counts and prints checks: `expect(name, ok, detail)`, then `summary`."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}")

    def summary(self, who: str) -> int:
        print(f"{who}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed or not self.passed else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("repo")
    parser.add_argument("target")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    repo, target = pathlib.Path(args.repo).resolve(), args.target
    expect = Tally()

    document = json.loads((repo / "proto" / "testvectors" / "events.json").read_text())
    # 1. The signer against the vectors.
    problems = [p for v in document["vectors"] for p in check_vectors.check(v)]
    expect("signer matches the test vectors", not problems, "; ".join(problems))

    root, auth, gateway = Signer(0x01), Signer(0x21), Signer(0x22)
    now = int(time.time())
    suffix = str(time.time_ns())
    as_id, gw_id, srv_id = f"py-as-{suffix}", f"py-gw-{suffix}", f"py-srv-{suffix}"
    scopes, tools = ["repo:read", "repo:write"], ["github/search", "github/delete_repo"]

    def registration(signer, client_id, kind, role, key, by=""):
        return signer.sign(register(client_id, kind, role, [key], scopes, tools, registered_by=by))

    server = Signer(0x23)
    setup = [
        registration(root, as_id, events_pb2.CLIENT_KIND_AUTHORIZATION_SERVER, events_pb2.CLIENT_ROLE_DELEGATING_LAYER, auth),
        registration(auth, gw_id, events_pb2.CLIENT_KIND_GATEWAY, events_pb2.CLIENT_ROLE_DELEGATING_LAYER, gateway, as_id),
        registration(auth, srv_id, events_pb2.CLIENT_KIND_MCP_SERVER, events_pb2.CLIENT_ROLE_TOOL_ENDPOINT, server, as_id),
    ]
    grant = issue(f"jti:py-root-{suffix}", "user:py@example.com", as_id, gw_id, "https://gateway.example/mcp",
                  scopes, tools, now, now + 3600)
    g = grant.token_issued
    issued = auth.sign(grant)
    root_id = signed_event_id(issued)

    hop = Parent.of_signed(issued).narrow(f"jti:py-hop-{suffix}", gw_id, srv_id, "https://server.example/mcp",
                                          ["repo:read"], ["github/search"], now, now + 600)
    h = hop.scope_narrowed
    narrowed = gateway.sign(hop)

    if args.ca:
        read = lambda path: pathlib.Path(path).read_bytes()  # noqa: E731
        # 0. Without a client certificate, TLS works and every call is refused.
        anonymous = grpc.secure_channel(target, grpc.ssl_channel_credentials(read(args.ca)))
        for name, call in [
            ("append", lambda: ledger_pb2_grpc.LedgerServiceStub(anonymous).Append(ledger_pb2.AppendRequest(events=setup), timeout=30)),
            ("check", lambda: revocation_pb2_grpc.RevocationServiceStub(anonymous).Check(revocation_pb2.CheckRequest(), timeout=30)),
        ]:
            try:
                call()
                expect(f"{name} without a client certificate is refused", False, "it was answered")
            except grpc.RpcError as error:
                expect(
                    f"{name} without a client certificate is refused",
                    error.code() == grpc.StatusCode.UNAUTHENTICATED and "no client certificate" in error.details(),
                    f"{error.code()} {error.details()}",
                )
        credentials = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
    revocation = revocation_pb2_grpc.RevocationServiceStub(channel)
    provenance = provenance_pb2_grpc.ProvenanceServiceStub(channel)

    # 2. Append, then check.
    response = ledger.Append(ledger_pb2.AppendRequest(events=setup + [issued, narrowed]), timeout=30)
    accepted = [r.outcome == ledger_pb2.APPEND_OUTCOME_ACCEPTED for r in response.results]
    expect("append accepted all five events", all(accepted) and len(accepted) == 5, str(response))
    event_id = signed_event_id(narrowed)
    expect("the node's event id equals ours", response.results[4].event_id == event_id)

    def check(jti, token=""):
        request = revocation_pb2.CheckRequest(consistency_token=token)
        request.token.jti = jti
        return revocation.Check(request, timeout=30)

    ct = response.consistency_token
    expect("root grant is ACTIVE", check(g.token.jti, ct).status == revocation_pb2.TOKEN_STATUS_ACTIVE)
    expect("hop is ACTIVE", check(h.token.jti, ct).status == revocation_pb2.TOKEN_STATUS_ACTIVE)

    # 3. A widened hop is refused with a status naming the field.
    wide = events_pb2.Event()
    wide.CopyFrom(hop)
    wide.scope_narrowed.token.jti = f"py-wide-{suffix}"
    wide.scope_narrowed.scopes.append("admin")
    try:
        ledger.Append(ledger_pb2.AppendRequest(events=[gateway.seal(events_pb2, wide)]), timeout=30)
        expect("a widened hop is refused", False, "it was accepted")
    except grpc.RpcError as error:
        expect(
            "a widened hop is refused",
            error.code() == grpc.StatusCode.INVALID_ARGUMENT and 'scope "admin" is not held by parent token' in error.details(),
            f"{error.code()} {error.details()}",
        )

    # 4. Revoke the root grant; the hop is revoked through the cascade.
    revoke = events_pb2.Event()
    revoke.revoked.token.jti = g.token.jti
    revoke.revoked.reason = "python interop"
    response = ledger.Append(ledger_pb2.AppendRequest(events=[root.seal(events_pb2, revoke)]), timeout=30)
    answer = check(h.token.jti, response.consistency_token)
    expect(
        "hop is REVOKED via its ancestor",
        answer.status == revocation_pb2.TOKEN_STATUS_REVOKED
        and answer.cause.distance == 1
        and answer.cause.via == revocation_pb2.REVOCATION_VIA_TOKEN,
        str(answer),
    )
    # 5. The hop's chain: the root grant, then the hop.
    request = provenance_pb2.GetChainRequest(consistency_token=response.consistency_token)
    request.token.jti = h.token.jti
    chain = provenance.GetChain(request, timeout=30)
    ids = [e.event_id for e in chain.events]
    expect(
        "the hop's chain runs root grant -> hop",
        root_id in ids and event_id in ids and ids.index(root_id) < ids.index(event_id),
        str(ids),
    )
    print(f"hop token: {h.token.jti}")
    return expect.summary("python client")


if __name__ == "__main__":
    sys.exit(main())
