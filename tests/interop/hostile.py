"""A hostile client: stock grpcio stubs generated from proto/ (installed
with the Python SDK), signing its own hand-made events with the SDK's
`Signer` and raw ed25519 (`cryptography`), trying every
class of attack issue 8 found (and a few more) against a running node whose
trust root is the vectors' TEST-ONLY root key (seed 01..01). Each case
expects a refusal with the right gRPC code, naming the field and the rule,
and a short message.

Usage: python hostile.py REPO_ROOT HOST:PORT
Prints one line per case and "hostile client: N passed, M failed".
"""

import pathlib
import sys
import threading
import time
import unicodedata

import grpc
from baton.v1 import events_pb2, ledger_pb2, ledger_pb2_grpc, revocation_pb2, revocation_pb2_grpc
from baton_client.signing import PAYLOAD_TYPE, pae
from baton_client.signing import event_id as signed_event_id

from client import Signer, Tally


def main() -> int:
    repo, target = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
    expect = Tally()


    channel = grpc.insecure_channel(target)
    ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
    revocation = revocation_pb2_grpc.RevocationServiceStub(channel)
    now = int(time.time())
    run = str(time.time_ns())
    root = Signer(0x01)
    scopes, tools = ["repo:read"], ["github/search"]

    def append(*events):
        return ledger.Append(ledger_pb2.AppendRequest(events=list(events)), timeout=30)

    def refused(name, events, code, *parts):
        """Appends `events`; expects a refusal with `code` whose message holds every part."""
        try:
            append(*events)
            expect(name, False, "it was accepted")
        except grpc.RpcError as error:
            details = error.details() or ""
            ok = error.code() == code and all(p in details for p in parts) and len(details) <= 1100
            expect(name, ok, f"{error.code()} {details[:300]!r}")

    def registration(signer, client_id, key, kind, role, by="", method=None, proof=True):
        event = events_pb2.Event()
        r = event.client_registered
        r.client_id, r.kind, r.role = client_id, kind, role
        r.registration = method or events_pb2.REGISTRATION_METHOD_PRE_REGISTERED
        r.public_keys.append(key.public)
        if proof:
            r.public_key_proofs.append(key.prove_registration(client_id, by))
        r.scopes.extend(scopes)
        r.tools.extend(tools)
        r.registered_by = by
        return signer.seal(events_pb2, event)

    def grant(signer, jti, subject, issuer, holder, issued_at=None, expires_at=None):
        event = events_pb2.Event()
        g = event.token_issued
        g.token.jti = jti
        g.subject, g.issuer, g.holder = subject, issuer, holder
        g.audience = f"https://{holder}.example/mcp"
        g.scopes.extend(scopes)
        g.tools.extend(tools)
        g.grant_type = events_pb2.GRANT_TYPE_AUTHORIZATION_CODE_PKCE
        g.issued_at_unix_s = issued_at or now
        g.expires_at_unix_s = expires_at or now + 3600
        return signer.seal(events_pb2, event)

    def event_id(signed):
        return signed_event_id(signed)

    def hop(signer, jti, parent, performer, subject, holder, expires_at=None, issued_at=None):
        event = events_pb2.Event()
        h = event.scope_narrowed
        h.token.jti = jti
        h.parent_event_id, h.root_event_id, h.depth = event_id(parent), event_id(parent), 1
        h.performed_by, h.on_behalf_of, h.holder = performer, subject, holder
        h.audience = f"https://{holder}.example/mcp"
        h.scopes.extend(scopes)
        h.tools.extend(tools)
        h.issued_at_unix_s, h.expires_at_unix_s = issued_at or now, expires_at or now + 600
        return signer.seal(events_pb2, event)

    K = events_pb2
    auth, gateway, job = Signer(0x31), Signer(0x32), Signer(0x33)
    as_id, gw_id, job_id = f"hx-as-{run}", f"hx-gw-{run}", f"hx-job-{run}"
    setup = [
        registration(root, as_id, auth, K.CLIENT_KIND_AUTHORIZATION_SERVER, K.CLIENT_ROLE_DELEGATING_LAYER),
        registration(auth, gw_id, gateway, K.CLIENT_KIND_GATEWAY, K.CLIENT_ROLE_DELEGATING_LAYER, as_id),
        registration(auth, job_id, job, K.CLIENT_KIND_SERVICE, K.CLIENT_ROLE_TOOL_ENDPOINT, as_id,
                     K.REGISTRATION_METHOD_STATIC_API_KEY),
    ]
    user_grant = grant(auth, f"hx-root-{run}", "user:alice@example.com", as_id, gw_id)
    append(*setup, user_grant)
    P, I, F, A = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED)

    # 1. A static-API-key client receives a user's token through a hop.
    refused("a user token does not reach a static-API-key client by hop",
            [hop(gateway, f"hx-h1-{run}", user_grant, gw_id, "user:alice@example.com", job_id)],
            P, "holder", "static API key", "(rule static-grant)")

    # 3. An authorization server revokes a trust root's key.
    revoke = events_pb2.Event()
    revoke.revoked.key_id = root.key_id
    revoke.revoked.revoked_by = as_id
    revoke.revoked.reason = "hostile"
    refused("no authorization server revokes a trust root", [auth.seal(events_pb2, revoke)],
            P, "target", "trust root", "(rule unauthorized)")

    # 7. Someone else's public key, bound without proof of possession.
    victim = Signer(0x34)
    refused("a key is not bound without proof of possession",
            [registration(auth, f"hx-squat-{run}", victim, K.CLIENT_KIND_MCP_SERVER,
                          K.CLIENT_ROLE_TOOL_ENDPOINT, as_id, proof=False)],
            I, "public_key_proofs", "(rule inconsistent)")

    # 7. A non-canonical encoding of a public key (y + p for a small y).
    event = events_pb2.Event()
    r = event.client_registered
    r.client_id, r.kind, r.role = f"hx-noncanon-{run}", K.CLIENT_KIND_MCP_SERVER, K.CLIENT_ROLE_TOOL_ENDPOINT
    r.registration = K.REGISTRATION_METHOD_PRE_REGISTERED
    r.registered_by = as_id
    refusal = ""
    for y in range(2, 19):
        alias = bytearray(b"\xff" * 32)
        alias[31], alias[0] = 0x7F, 0xED + y
        r.public_keys[:] = [bytes(alias)]
        r.public_key_proofs[:] = [b"\x00" * 64]
        try:
            append(auth.seal(events_pb2, event))
            refusal = "accepted"
            break
        except grpc.RpcError as error:
            refusal = f"{error.code()} {error.details()}"
            if "canonical encoding" in (error.details() or ""):
                break
    expect("a non-canonical public key encoding is refused",
           "INVALID_ARGUMENT" in refusal and "canonical encoding" in refusal, refusal)

    # 4. Racing registrations binding one key to two clients: one ACCEPTED.
    results = []
    for round_ in range(6):
        shared = Signer(0x40 + round_)
        events = [registration(auth, f"hx-race{round_}-{side}-{run}", shared, K.CLIENT_KIND_MCP_SERVER,
                               K.CLIENT_ROLE_TOOL_ENDPOINT, as_id) for side in "ab"]
        outcomes = []

        def send(e):
            try:
                append(e)
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(error.code())

        threads = [threading.Thread(target=send, args=(e,)) for e in events]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.append(outcomes)
    expect("racing bindings of one key: exactly one accepted per round",
           all(o.count("ok") == 1 and all(x in ("ok", A, grpc.StatusCode.ALREADY_EXISTS) for x in o)
               for o in results), str(results))

    # 5. A stored payload re-signed by another registered key.
    copy = events_pb2.SignedEvent()
    copy.CopyFrom(user_grant)
    copy.key_id = gateway.key_id
    copy.signature = gateway.key.sign(pae(PAYLOAD_TYPE, user_grant.payload))
    refused("a copy re-signed by another key is a forgery, not a duplicate", [copy],
            I, "signer_key_id", "(rule signature)")
    garbage = events_pb2.SignedEvent()
    garbage.CopyFrom(grant(auth, f"hx-garbage-{run}", "user:bob", as_id, gw_id))
    garbage.signature = b"\x00" * 64
    refused("an unsigned event is refused by its signature", [garbage], I, "signature", "(rule signature)")

    # 6. Identifiers that look equal but are not.
    nfd = unicodedata.normalize("NFD", "user:jos\u00e9@example.com")
    refused("a subject in NFD is refused", [grant(auth, f"hx-nfd-{run}", nfd, as_id, gw_id)],
            I, "subject", "identifier-nfc")
    for name, client_id, rule in [
        ("zero-width", f"hx-gate\u200bway-{run}", "identifier-charset"),
        ("bidi override", f"hx-\u202egateway-{run}", "identifier-charset"),
        ("mixed script", f"hx-p\u0430ypal-{run}", "identifier-script"),
        ("fullwidth", f"hx-\uff50\uff41\uff59-{run}", "identifier-nfkc"),
    ]:
        refused(f"a client id with a {name} character is refused",
                [registration(auth, client_id, Signer(0x50), K.CLIENT_KIND_MCP_SERVER,
                              K.CLIENT_ROLE_TOOL_ENDPOINT, as_id)], I, "client_id", rule)

    # 8. Dates: back-dated, issued in the future or long before, already expired.
    old = events_pb2.Event()
    old.CopyFrom(events_pb2.Event.FromString(grant(auth, f"hx-old-{run}", "user:x", as_id, gw_id).payload))
    old.created_at_unix_ms = (now - 7200) * 1000
    payload = old.SerializeToString()
    backdated = events_pb2.SignedEvent(payload=payload, payload_type=PAYLOAD_TYPE, key_id=auth.key_id,
                                       signature=auth.key.sign(pae(PAYLOAD_TYPE, payload)))
    refused("a back-dated event is refused", [backdated], I, "created_at_unix_ms", "(rule back-dated)")
    refused("a grant issued in the future is refused",
            [grant(auth, f"hx-future-{run}", "user:x", as_id, gw_id, now + 86400, now + 90000)],
            I, "issued_at_unix_s", "(rule future-dated)")
    refused("a grant made now claiming to have been issued a year ago is refused",
            [grant(auth, f"hx-past-{run}", "user:x", as_id, gw_id, now - 365 * 86400, now + 3600)],
            I, "issued_at_unix_s", "(rule back-dated)")
    earlier = grant(auth, f"hx-earlier-{run}", "user:alice@example.com", as_id, gw_id, now - 100)
    append(earlier)
    refused("a hop already expired is refused",
            [hop(gateway, f"hx-late-{run}", earlier, gw_id, "user:alice@example.com", gw_id, now - 10, now - 100)],
            F, "expires_at_unix_s", "(rule expired)")

    # 9. A megabyte of consistency token comes back as a short INVALID_ARGUMENT.
    try:
        request = revocation_pb2.CheckRequest(consistency_token="ct1." + "z" * (1 << 20))
        request.token.jti = "anything"
        revocation.Check(request, timeout=30)
        expect("a huge consistency token is refused", False, "it was answered")
    except grpc.RpcError as error:
        expect("a huge consistency token is refused with a short message",
               error.code() == I and len(error.details() or "") <= 1100,
               f"{error.code()} {len(error.details() or '')} bytes")

    # 10. A Watch resumed beyond the log's end is refused.
    try:
        stream = revocation.Watch(revocation_pb2.WatchRequest(resume_token="ct1.ffffff"), timeout=30)
        next(iter(stream))
        expect("a watch from beyond the log's end is refused", False, "it streamed")
    except grpc.RpcError as error:
        expect("a watch from beyond the log's end is refused",
               error.code() == I and "beyond the log's end" in (error.details() or ""),
               f"{error.code()} {error.details()}")

    # And the node still answers: nothing above changed a legitimate verdict.
    request = revocation_pb2.CheckRequest()
    request.token.jti = f"hx-root-{run}"
    expect("the legitimate grant is still ACTIVE",
           revocation.Check(request, timeout=30).status == revocation_pb2.TOKEN_STATUS_ACTIVE)
    return expect.summary("hostile client")


if __name__ == "__main__":
    sys.exit(main())
