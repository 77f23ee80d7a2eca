"""The Python SDK as a user calls it, against a real node: `Client` takes the
`http://host:port` form every other Baton tool takes (and refuses an
http:// target with a CA, naming `server`); `issue` takes a lifetime
(`ttl_s`); the wire's enums are `IntEnum`s with names, each equal to the
generated descriptor's number, taken by the builders and given in answers;
event ids are shown as Baton prints them (`ev:…`) and taken so or as
bytes, a malformed one refused naming the parameter; `check` and `chain`
answer typed, frozen dataclasses. The node trusts the TEST-ONLY root of
proto/testvectors (seed 01..01); every other key is made here.

usage: client_api.py HOST:PORT
"""

import ast
import asyncio
import dataclasses
import inspect
import re
import textwrap
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "interop"))

import checks  # noqa: E402
from baton.v1 import events_pb2, ledger_pb2, provenance_pb2, revocation_pb2  # noqa: E402
from baton_client import (  # noqa: E402
    ACTIVE, REVOKED, Answer, Appended, AppendOutcome, Chain, ChainEvent, ChainLink, CheckAnswer, Client, ClientKind,
    ClientRegistration, ClientRole, EventKind, Exchanged, GrantType, KeyRotation, Parent, RegistrationMethod,
    Revocation, RevocationCause, RevocationVia, Signer, TokenInfo, TokenStatus, event_id_bytes, exchange, issue,
    key_id_text, register, revoke, rotate, token_ref,
)
from baton_client.client import _target  # noqa: E402

ROOT = Signer.from_seed(bytes([1]) * 32)
RUN = f"api{time.time_ns()}"
EV = re.compile(r"ev:[0-9a-f]{64}")

# Each SDK enum, the generated enum it mirrors, and the prefix of its values.
ENUMS = [
    (TokenStatus, revocation_pb2.TokenStatus, "TOKEN_STATUS_"),
    (ClientKind, events_pb2.ClientKind, "CLIENT_KIND_"),
    (ClientRole, events_pb2.ClientRole, "CLIENT_ROLE_"),
    (RegistrationMethod, events_pb2.RegistrationMethod, "REGISTRATION_METHOD_"),
    (GrantType, events_pb2.GrantType, "GRANT_TYPE_"),
    (EventKind, provenance_pb2.EventKind, "EVENT_KIND_"),
    (RevocationVia, revocation_pb2.RevocationVia, "REVOCATION_VIA_"),
    (AppendOutcome, ledger_pb2.AppendOutcome, "APPEND_OUTCOME_"),
]


def refused(name: str, call, parameter: str) -> None:
    """Checks that `call()` raises a ValueError whose message starts by
    naming `parameter`."""
    try:
        call()
    except ValueError as error:
        checks.check(f"{name}: refused, naming {parameter}", str(error).startswith(f"{parameter}: "), error)
    else:
        checks.check(f"{name}: refused", False, "accepted")


def enums() -> None:
    for ours, wire, prefix in ENUMS:
        numbers = {v.name.removeprefix(prefix): v.number for v in wire.DESCRIPTOR.values}
        if ours is TokenStatus:
            # An unset status reads as UNKNOWN (`TokenStatus.of`): no member.
            del numbers["UNSPECIFIED"]
        members = {m.name: m.value for m in ours}
        checks.check(f"{ours.__name__} is the wire's {wire.DESCRIPTOR.name}, name for name and number for number",
                     members == numbers, (members, numbers))
    checks.check("an enum is an int that names itself",
                 ClientKind.GATEWAY == events_pb2.CLIENT_KIND_GATEWAY and ClientKind.GATEWAY.name == "GATEWAY"
                 and isinstance(ClientKind.GATEWAY, int))
    checks.check("a wire number reads as its member", ClientRole.of(2) is ClientRole.DELEGATING_LAYER)
    checks.check("a number this SDK does not know is UNSPECIFIED (a status: UNKNOWN)",
                 GrantType.of(99) is GrantType.UNSPECIFIED and TokenStatus.of(99) is TokenStatus.UNKNOWN
                 and TokenStatus.of(0) is TokenStatus.UNKNOWN)
    checks.check("TokenStatus names itself", ACTIVE.name == "ACTIVE" and ACTIVE is TokenStatus.ACTIVE)
    answer = Answer(status=int(REVOKED), source="node")
    checks.check("an Answer built from a wire value carries a TokenStatus",
                 answer.status is TokenStatus.REVOKED and not answer.allows, answer)
    signer = Signer.generate()
    as_enum = register("c", ClientKind.MCP_SERVER, ClientRole.TOOL_ENDPOINT, [signer], [], []).client_registered
    as_wire = register("c", events_pb2.CLIENT_KIND_MCP_SERVER, 1, [signer], [], []).client_registered
    checks.check("register takes enums, or the wire's numbers as before",
                 (as_enum.kind, as_enum.role) == (as_wire.kind, as_wire.role) == (3, 1), (as_enum, as_wire))
    grant = issue("jti:t", "user:a", "as", "h", "https://a/", ["s"], [], grant_type=GrantType.API_KEY, ttl_s=60)
    checks.check("issue takes a GrantType", grant.token_issued.grant_type == events_pb2.GRANT_TYPE_API_KEY, grant)


def ids() -> None:
    raw = bytes(range(32))
    text = "ev:" + raw.hex()
    checks.check("event_id_bytes reads ev: text and bytes",
                 event_id_bytes(text) == raw == event_id_bytes(raw) == event_id_bytes(text.upper().replace("EV:", "ev:")))
    by_text = Parent("jti:p", text, text, 0, "user:a", 100, 200)
    by_bytes = Parent("jti:p", raw, raw, 0, "user:a", 100, 200)
    checks.check("Parent takes event ids as ev: text or bytes, and shows them as ev: text",
                 by_text == by_bytes and by_text.event_id == text and by_text.root_event_id == text, by_bytes)
    hop = by_text.narrow("jti:c", "gw", "srv", "https://s/", ["s"], [], 100, 150).scope_narrowed
    checks.check("a hop from it names the parent and root by their bytes",
                 hop.parent_event_id == raw and hop.root_event_id == raw and hop.depth == 1, hop)
    for bad in ["ev:12", "ev:" + "zz" * 32, raw.hex(), "ev:" + raw.hex() + "00", "ev: " + raw.hex()[1:]]:
        refused(f"event id {bad[:12]!r}…", lambda: Parent("jti:p", bad, text, 0, "u", 1, 2), "event_id")
    refused("a root event id of 31 bytes", lambda: Parent("jti:p", text, raw[:31], 0, "u", 1, 2), "root_event_id")
    refused("event_id_bytes names what it is told", lambda: event_id_bytes("ev:1", "parent_event_id"),
            "parent_event_id")
    key = Signer.generate().key_id
    checks.check("revoke(key_id=) takes key: text as bytes",
                 revoke(key_id=key_id_text(key)).revoked.key_id == key == revoke(key_id=key).revoked.key_id)
    refused("a key id without key:", lambda: revoke(key_id=key.hex()), "key_id")
    refused("a retired key id that is no key id", lambda: rotate("c", [], [key, "key:00"]), "retire[1]")
    refused("a b3: reference that is not 64 hex digits", lambda: token_ref("b3:abc"), "token")
    refused("a token that is neither jti: nor b3:", lambda: issue("t", "u", "a", "h", "x", [], [], ttl_s=1), "token")


# The SDK's typed answers.
ANSWERS = [Appended, CheckAnswer, RevocationCause, Revocation, Chain, ChainEvent, ChainLink, ClientRegistration,
           KeyRotation, Exchanged, Parent, Answer, TokenInfo]


def documented() -> None:
    """Each answer is a frozen dataclass with a docstring, and each of its
    fields has one (the string after it, as PEP 257 and IDEs read it)."""
    for cls in ANSWERS:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        assert isinstance(tree, ast.ClassDef)
        body = tree.body
        undocumented = [
            node.target.id for i, node in enumerate(body)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and not (i + 1 < len(body) and isinstance(body[i + 1], ast.Expr)
                     and isinstance(body[i + 1].value, ast.Constant) and isinstance(body[i + 1].value.value, str))
        ]
        frozen = dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        checks.check(f"{cls.__name__}: a frozen dataclass, documented, every field too",
                     frozen and bool(cls.__doc__) and not undocumented, undocumented)


def offline() -> None:
    checks.check("http://host:port is plaintext", _target("http://127.0.0.1:7700", None) == ("127.0.0.1:7700", False))
    checks.check("https://host:port is TLS", _target("https://node:7700/", None) == ("node:7700", True))
    checks.check("a bare host:port is TLS with a CA", _target("node:7700", "ca.pem") == ("node:7700", True))
    checks.check("a gRPC target passes as grpcio reads it",
                 _target("unix:/run/baton.sock", None) == ("unix:/run/baton.sock", False)
                 and _target("dns:///node:7700", None) == ("dns:///node:7700", False))
    refused("http:// with a CA", lambda: Client("http://n:1", ca="ca.pem"), "server")
    grant = issue("jti:t", "user:a", "as", "h", "https://a/", ["s"], [], ttl_s=60).token_issued
    checks.check("issue(ttl_s=) dates the grant from now",
                 grant.expires_at_unix_s - grant.issued_at_unix_s == 60
                 and abs(grant.issued_at_unix_s - time.time()) < 5, grant)
    for given in [dict(), dict(expires_at_s=2, ttl_s=3)]:
        try:
            issue("jti:t", "user:a", "as", "h", "https://a/", ["s"], [], **given)
            checks.check(f"issue with {given} refused", False, "accepted")
        except ValueError:
            checks.check(f"issue with {given} refused (expires_at_s or ttl_s, one of the two)", True)
    dated = issue("jti:t", "user:a", "as", "h", "https://a/", ["s"], [], 100, 200).token_issued
    checks.check("issue(..., issued_at_s, expires_at_s) as before",
                 (dated.issued_at_unix_s, dated.expires_at_unix_s) == (100, 200), dated)


async def live(address: str) -> None:
    client = Client(f"http://{address}")
    try:
        auth, gateway = Signer.generate(), Signer.generate()
        as_id, gw_id = f"{RUN}-as", f"{RUN}-gw"
        registrations = [
            ROOT.sign(register(as_id, ClientKind.AUTHORIZATION_SERVER, ClientRole.DELEGATING_LAYER, [auth],
                               ["files:read"], ["fs/read"])),
            auth.sign(register(gw_id, ClientKind.GATEWAY, ClientRole.DELEGATING_LAYER, [gateway], ["files:read"],
                               ["fs/read"], registered_by=as_id)),
        ]
        registered = await client.append(registrations)
        checks.check("Client(http://host:port) appends; outcomes are AppendOutcome",
                     registered.outcomes == [AppendOutcome.ACCEPTED] * 2 and registered.accepted == [True, True],
                     registered)
        checks.check("event ids print as Baton prints them", all(EV.fullmatch(i) for i in registered.ids), registered)
        checks.check("and as bytes on asking", registered.event_ids == [event_id_bytes(i) for i in registered.ids])
        again = await client.append(registrations[:1], after=registered.consistency_token)
        checks.check("appending it again is a DUPLICATE, of the same id",
                     again.outcomes == [AppendOutcome.DUPLICATE] and again.ids == registered.ids[:1], again)

        token = f"jti:{RUN}-t1"
        appended = await client.append([auth.sign(issue(
            token, "user:alice@example.com", as_id, gw_id, "https://gateway.example/", ["files:read"], ["fs/read"],
            grant_type=GrantType.DEVICE_CODE, ttl_s=600))], after=registered.consistency_token)
        checks.check("a grant issued with ttl_s is accepted", appended.accepted == [True], appended)
        answer = await client.check(token, after=appended.consistency_token)
        checks.check("check answers a CheckAnswer", isinstance(answer, CheckAnswer), type(answer))
        checks.check("its status is ACTIVE, by name",
                     answer.status is TokenStatus.ACTIVE and answer.status.name == "ACTIVE" and answer.allows, answer)
        checks.check("its event id is the grant's, as ev: text", answer.event_id == appended.ids[0], answer)
        checks.check("its depth, audience and no cause",
                     (answer.depth, answer.audience, answer.cause) == (0, "https://gateway.example/", None), answer)
        checks.check("its expiry is the lifetime asked for",
                     answer.expires_at_s is not None and abs(answer.expires_at_s - (time.time() + 600)) < 10, answer)
        checks.check("it says what it reflects and how fresh",
                     answer.consistency_token.startswith("ct1.") and answer.view_age_ms is not None, answer)
        checks.check("the raw answer is kept, out of its repr and equality",
                     isinstance(answer.raw, revocation_pb2.CheckResponse) and "raw=" not in repr(answer)
                     and answer == dataclasses.replace(answer, raw=revocation_pb2.CheckResponse()), repr(answer))
        try:
            answer.status = TokenStatus.REVOKED  # type: ignore[misc]
            checks.check("a CheckAnswer is frozen", False, "assigned")
        except dataclasses.FrozenInstanceError:
            checks.check("a CheckAnswer is frozen", True)
        unknown = await client.check(f"jti:{RUN}-never", after=appended.consistency_token)
        checks.check("a token the node does not know: UNKNOWN, its fields None",
                     unknown.status is TokenStatus.UNKNOWN and not unknown.allows
                     and (unknown.event_id, unknown.depth, unknown.expires_at_s, unknown.audience) == (None,) * 4,
                     unknown)

        # The chain, typed; a hop from its leaf, whose ids are ev: text.
        chain = await client.chain(token, after=appended.consistency_token)
        checks.check("chain answers a Chain", isinstance(chain, Chain), type(chain))
        kinds = [e.kind for e in chain.events]
        checks.check("its events carry EventKinds: the registrations, then the grant",
                     EventKind.CLIENT_REGISTERED in kinds and kinds[-1] is EventKind.TOKEN_ISSUED, kinds)
        checks.check("every event id is ev: text, signer key:",
                     all(EV.fullmatch(e.event_id) and e.signer_key_id.startswith("key:") for e in chain.events),
                     chain.events)
        registrations_seen = {e.body.client_id: e.body for e in chain.events if isinstance(e.body, ClientRegistration)}
        seen = registrations_seen.get(as_id)
        checks.check("a registration reads with its ClientKind, ClientRole and key ids",
                     seen is not None and (seen.kind, seen.role, seen.registration, seen.registered_by)
                     == (ClientKind.AUTHORIZATION_SERVER, ClientRole.DELEGATING_LAYER,
                         RegistrationMethod.PRE_REGISTERED, None)
                     and seen.key_ids == (key_id_text(auth.key_id),), seen)
        leaf = chain.leaf
        checks.check("its one link is the grant, read",
                     len(chain.links) == 1 and isinstance(leaf, ChainLink) and leaf.kind is EventKind.TOKEN_ISSUED
                     and (leaf.token, leaf.event_id, leaf.root_event_id, leaf.parent_event_id, leaf.depth)
                     == (token, appended.ids[0], appended.ids[0], None, 0)
                     and (leaf.performed_by, leaf.holder, leaf.scopes, leaf.grant_type)
                     == (as_id, gw_id, ("files:read",), GrantType.DEVICE_CODE), leaf)
        checks.check("and the chain's status is the token's", chain.status.status is TokenStatus.ACTIVE, chain.status)
        parent = Parent.of_chain(chain)
        checks.check("Parent.of_chain reads the typed chain, ids as ev: text",
                     parent is not None and parent.event_id == appended.ids[0] and parent.token == token, parent)
        # ev: ids taken by the SDK reach the node as the right bytes: the
        # node accepts the hop only if parent and root name the grant.
        assert leaf is not None
        by_text = Parent(token, leaf.event_id, leaf.root_event_id, leaf.depth, leaf.subject, leaf.issued_at_s,
                         leaf.expires_at_s)
        now = int(time.time())
        hop_token = f"jti:{RUN}-t2"
        hop = await client.append([gateway.sign(by_text.narrow(
            hop_token, gw_id, gw_id, "https://gateway.example/", ["files:read"], ["fs/read"], now, now + 300))],
            after=appended.consistency_token)
        checks.check("a hop narrowing a Parent given ev: ids is accepted", hop.accepted == [True], hop)
        deeper = await client.chain(hop_token, after=hop.consistency_token)
        checks.check("the hop's chain: grant then hop, the hop naming its parent by ev: id",
                     [(link.depth, link.kind) for link in deeper.links]
                     == [(0, EventKind.TOKEN_ISSUED), (1, EventKind.SCOPE_NARROWED)]
                     and deeper.links[1].parent_event_id == appended.ids[0]
                     and deeper.links[1].event_id == hop.ids[0]
                     and deeper.links[1].grant_type is GrantType.DEVICE_CODE, deeper.links)
        exchanged = await exchange(client, gateway, parent=hop_token, token=f"jti:{RUN}-t3", performed_by=gw_id,
                                   holder=gw_id, audience="https://gateway.example/", scopes=["files:read"],
                                   tools=[], ttl_s=60, after=hop.consistency_token)
        checks.check("exchange answers its hop's id as ev: text, depth 2",
                     EV.fullmatch(exchanged.event_id) is not None and exchanged.depth == 2 and exchanged.accepted,
                     exchanged)

        # A revocation, and the typed cause of what it revoked.
        revoked = await client.append([ROOT.sign(revoke(token=token, reason="test"))],
                                      after=exchanged.consistency_token)
        answer = await client.check(hop_token, after=revoked.consistency_token)
        cause = answer.cause
        checks.check("the hop is REVOKED, by name, with its cause",
                     answer.status is TokenStatus.REVOKED and answer.status.name == "REVOKED" and cause is not None,
                     answer)
        checks.check("the cause: the revocation's ev: id, the token revoked, one hop up, via TOKEN",
                     cause is not None and cause.revocation_event_id == revoked.ids[0]
                     and (cause.revoked.token, cause.revoked.reason, cause.revoked.revoked_by) == (token, "test", None)
                     and (cause.link, cause.distance, cause.via) == (token, 1, RevocationVia.TOKEN), cause)
    finally:
        await client.close()


enums()
ids()
documented()
offline()
asyncio.run(live(sys.argv[1]))
checks.summary("sdk api")
