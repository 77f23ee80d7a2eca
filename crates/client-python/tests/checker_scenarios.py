"""The Python SDK's Checker on a real node, through a TCP proxy this script
cuts: the same scenarios as the Rust Checker's (crates/client/tests/
checker.rs): every kind of revocation evicts a cached answer on arrival; a
feed cut past the bound answers UNKNOWN and catches up after; expiry is
judged locally; bounds are refused; a revocation delivered while a miss is
in flight is not lost; max_view_age holds cached and fetched answers to the
node's view; and the shared checker scenarios of
proto/testvectors/sdk/checker.json (trees, revocations of every target kind,
cuts; fixed ops with the answers recorded), which the Rust Checker runs too:
every answer must be the recorded one and the node's own Check at the same
position. The checkers run with the default 2 s staleness bound on a clock
the script moves (going stale is a step, not a wait). The node trusts the TEST-ONLY root
of proto/testvectors (seed 01..01); every other key is made here.

usage: checker_scenarios.py HOST:PORT
"""

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "interop"))

import checks  # noqa: E402
import grpc  # noqa: E402
from baton.v1 import events_pb2  # noqa: E402
from baton_client import (  # noqa: E402
    ACTIVE, AUDIENCE_MISMATCH, EXPIRED, REVOKED, UNKNOWN, Checker, Client, ManualClock, Signer, SystemClock, issue,
    register, revoke, rotate, token_ref,
)
from baton_client.checker import STATUS_NAMES  # noqa: E402
from baton_client.consistency import covers  # noqa: E402
from baton_client.events import Parent  # noqa: E402

ROOT = Signer.from_seed(bytes([1]) * 32)
RUN = f"py{time.time_ns()}-"
SCOPES, TOOLS = ["files:read", "files:write"], ["fs/read", "fs/write"]
REFUSED = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED}


class Proxy:
    """A loopback TCP proxy to the node that can be cut (open connections
    reset, new ones refused) and restored."""

    def __init__(self, target: str):
        self.host, self.port = target.rsplit(":", 1)
        self.cut_off = False
        self.live: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer):
        if self.cut_off:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, int(self.port))
        except OSError:
            writer.close()
            return
        self.live |= {writer, up_writer}

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self):
        self.cut_off = True
        for writer in list(self.live):
            writer.transport.abort()
        self.live.clear()

    def restore(self):
        self.cut_off = False


class Gate:
    """What a Checker calls the node through, holding the next Introspect's
    answer until released: the node's real answer, delivered late, so the
    script drives what happens while a miss is in flight."""

    def __init__(self, client: Client):
        self.client = client
        self.revocation = self
        self._hold = None

    def check(self, *args, **kwargs):
        return self.client.check(*args, **kwargs)

    def Watch(self, *args, **kwargs):  # noqa: N802 (the stub's name)
        return self.client.revocation.Watch(*args, **kwargs)

    async def Introspect(self, request, timeout=None):  # noqa: N802
        answer = await self.client.revocation.Introspect(request, timeout=timeout)
        hold, self._hold = self._hold, None
        if hold is not None:
            answered, release = hold
            answered.set()
            await release.wait()
        return answer

    def hold_next(self):
        """(answered, release): the node has answered; let the answer go."""
        self._hold = (asyncio.Event(), asyncio.Event())
        return self._hold


def checker_for(client, clock=None, **bounds) -> Checker:
    return Checker(client, capacity=64, checkpoint_interval_ms=100, request_timeout_s=5,
                   clock=clock if clock is not None else ManualClock(), **bounds)


class Ledger:
    """Registered clients (fresh keys) and the tokens recorded."""

    def __init__(self, node: Client, prefix: str):
        self.node = node
        self.prefix = prefix
        self.keys: dict[str, Signer] = {}
        self.parents: dict[str, Parent] = {}
        self.written = ""

    def cid(self, name: str) -> str:
        return self.prefix + name

    def ref(self, jti: str) -> str:
        return f"jti:{self.prefix}{jti}"

    async def append(self, *events):
        appended = await self.node.append(list(events))
        self.written = appended.consistency_token
        return appended

    async def setup(self):
        self.keys["as"] = Signer.generate()
        events = [ROOT.sign(register(self.cid("as"), events_pb2.CLIENT_KIND_AUTHORIZATION_SERVER,
                                     events_pb2.CLIENT_ROLE_DELEGATING_LAYER, [self.keys["as"]], SCOPES, TOOLS))]
        for name, kind, role in [
            ("agent", events_pb2.CLIENT_KIND_MCP_CLIENT, events_pb2.CLIENT_ROLE_DELEGATING_LAYER),
            ("gateway", events_pb2.CLIENT_KIND_GATEWAY, events_pb2.CLIENT_ROLE_DELEGATING_LAYER),
            ("server-a", events_pb2.CLIENT_KIND_MCP_SERVER, events_pb2.CLIENT_ROLE_MIXED_TRUST_BOUNDARY),
            ("server-b", events_pb2.CLIENT_KIND_MCP_SERVER, events_pb2.CLIENT_ROLE_MIXED_TRUST_BOUNDARY),
            ("server-c", events_pb2.CLIENT_KIND_MCP_SERVER, events_pb2.CLIENT_ROLE_TOOL_ENDPOINT),
        ]:
            events.append(self.register(name, kind, role))
        await self.append(*events)

    def register(self, name, kind, role):
        self.keys[name] = Signer.generate()
        return self.keys["as"].sign(register(self.cid(name), kind, role, [self.keys[name]], SCOPES, TOOLS,
                                             registered_by=self.cid("as")))

    def issue(self, jti, subject, holder, ttl_s=3600):
        now = int(time.time())
        signed = self.keys["as"].sign(issue(self.ref(jti), subject, self.cid("as"), self.cid(holder),
                                            audience(holder), SCOPES, TOOLS, now, now + ttl_s))
        self.parents[jti] = Parent.of_signed(signed)
        return signed

    def narrow(self, parent, jti, performer, holder, shorter_s=1):
        p = self.parents[parent]
        signed = self.keys[performer].sign(p.narrow(self.ref(jti), self.cid(performer), self.cid(holder),
                                                    audience(holder), SCOPES, TOOLS, p.issued_at_s,
                                                    p.expires_at_s - shorter_s))
        self.parents[jti] = Parent.of_signed(signed)
        return signed

    def revocation(self, kind, pick, tokens, names):
        if kind == 0:
            if not tokens:
                return None
            return ROOT.sign(revoke(token=self.ref(tokens[pick % len(tokens)][0]), reason="test"))
        name = names[pick % len(names)]
        if kind == 1:
            return ROOT.sign(revoke(client_id=self.cid(name), reason="test"))
        if kind == 2:
            return ROOT.sign(revoke(subject=f"user:{self.prefix}{pick % 3}", reason="test"))
        return ROOT.sign(revoke(key_id=self.keys[name].key_id, reason="test"))


def audience(holder: str) -> str:
    return f"https://{holder}.example/mcp"


async def caught_up(checker: Checker, token: str):
    await asyncio.wait_for(checker.wait_for(lambda: checker.is_fresh() and covers(checker.position, token)), 20)


async def node_says(node: Client, token: str, presented_to: str) -> int:
    return (await node.check(token, presented_to=presented_to)).status


async def agree(checker, ledger, jti, presented_to, name) -> tuple[bool, int]:
    """Whether the checker's answer is the node's (asked before and after),
    and the checker's answer."""
    token = ledger.ref(jti)
    before = await node_says(ledger.node, token, presented_to)
    answer = await checker.check(token, presented_to)
    after = await node_says(ledger.node, token, presented_to)
    ok = answer.status in (before, after)
    if not ok:
        checks.check(name, False, f"{jti} at {presented_to}: checker {STATUS_NAMES.get(answer.status)} ({answer.source}), "
                                  f"node {STATUS_NAMES.get(before)} then {STATUS_NAMES.get(after)}")
    return ok, answer.status


async def stale(checker):
    """Moves the checker's clock past its staleness bound until the feed is
    stale (a checkpoint already on its way may make it fresh once more)."""
    for _ in range(50):
        checker.clock.advance(checker.staleness_s + 0.001)
        if not checker.is_fresh():
            return True
        await asyncio.sleep(0.02)
    return False


async def every_kind_evicts(ledger: Ledger, checker: Checker):
    for name in ["token", "ancestor", "holder", "performer", "key", "subject"]:
        agent, gateway, server = f"a-{name}", f"g-{name}", f"s-{name}"
        events = [
            ledger.register(agent, events_pb2.CLIENT_KIND_MCP_CLIENT, events_pb2.CLIENT_ROLE_DELEGATING_LAYER),
            ledger.register(gateway, events_pb2.CLIENT_KIND_GATEWAY, events_pb2.CLIENT_ROLE_DELEGATING_LAYER),
            ledger.register(server, events_pb2.CLIENT_KIND_MCP_SERVER, events_pb2.CLIENT_ROLE_MIXED_TRUST_BOUNDARY),
            ledger.issue(f"t-{name}-0", f"user:{name}", agent),
        ]
        events.append(ledger.narrow(f"t-{name}-0", f"t-{name}-1", agent, gateway))
        events.append(ledger.narrow(f"t-{name}-1", f"t-{name}-2", gateway, server, 2))
        await ledger.append(*events)
        await caught_up(checker, ledger.written)
        token, at = ledger.ref(f"t-{name}-2"), audience(server)
        first = await checker.check(token, at)
        hit = await checker.check(token, at)
        elsewhere = await checker.check(token, "https://other.example/mcp")
        checks.check(f"{name}: a miss asks the node, then the cache answers",
                     (first.status, first.source, hit.status, hit.source) == (ACTIVE, "node", ACTIVE, "cache"),
                     (first, hit))
        checks.check(f"{name}: the chain comes with the answer",
                     first.token is not None and len(first.token.details.chain) == 3)
        checks.check(f"{name}: presented elsewhere is AUDIENCE_MISMATCH", elsewhere.status == AUDIENCE_MISMATCH)
        target = {
            "token": dict(token=token),
            "ancestor": dict(token=ledger.ref(f"t-{name}-0")),
            "holder": dict(client_id=ledger.cid(server)),
            "performer": dict(client_id=ledger.cid(gateway)),
            "key": dict(key_id=ledger.keys[agent].key_id),
            "subject": dict(subject=f"user:{name}"),
        }[name]
        before = checker.stats["invalidations"]
        await ledger.append(ROOT.sign(revoke(reason="test", **target)))
        await caught_up(checker, ledger.written)
        checks.check(f"{name}: the revocation evicted the entry", checker.stats["invalidations"] > before)
        after = await checker.check(token, at)
        checks.check(f"{name}: then REVOKED, from the node", (after.status, after.source) == (REVOKED, "node"), after)


async def cut_answers_unknown(ledger: Ledger, proxy: Proxy, checker: Checker):
    await ledger.append(ledger.issue("cut-0", "user:cut", "agent"), ledger.issue("cut-1", "user:kept", "agent"))
    await caught_up(checker, ledger.written)
    at = audience("agent")
    first = [await checker.check(ledger.ref(jti), at) for jti in ("cut-0", "cut-1")]
    checks.check("cut: both ACTIVE before", all(a.status == ACTIVE for a in first))
    proxy.cut()
    await ledger.append(ROOT.sign(revoke(subject="user:cut", reason="test")))
    checks.check("cut: the feed goes stale", await stale(checker))
    answers = [await checker.check(ledger.ref(jti), at) for jti in ("cut-0", "cut-1", "never-issued")]
    checks.check("cut: every answer is UNKNOWN (stale)", all((a.status, a.source) == (UNKNOWN, "stale") for a in answers),
                 answers)
    proxy.restore()
    await caught_up(checker, ledger.written)
    revoked = await checker.check(ledger.ref("cut-0"), at)
    kept = await checker.check(ledger.ref("cut-1"), at)
    checks.check("cut: caught up, the revoked one is REVOKED", revoked.status == REVOKED, revoked)
    checks.check("cut: the other is still cached ACTIVE", (kept.status, kept.source) == (ACTIVE, "cache"), kept)


async def expiry_is_local(ledger: Ledger, via: Client):
    # Expiry against the node's: the system clock.
    checker = await checker_for(via, clock=SystemClock()).start()
    await ledger.append(ledger.issue("brief", "user:brief", "agent", ttl_s=2))
    await caught_up(checker, ledger.written)
    token, at = ledger.ref("brief"), audience("agent")
    first = await checker.check(token, at)
    checks.check("expiry: ACTIVE first", first.status == ACTIVE, first)
    while int(time.time()) < first.token.expires_at_s:
        await asyncio.sleep(0.05)
    later = await checker.check(token, at)
    checks.check("expiry: EXPIRED from the cache", (later.status, later.source) == (EXPIRED, "cache"), later)
    checks.check("expiry: the node agrees", (await agree(checker, ledger, "brief", at, "expiry: the node agrees"))[0])
    await checker.close()


async def in_flight(ledger: Ledger, node: Client):
    """A revocation the feed delivers while a miss is in flight (the node
    answered ACTIVE before it; the answer arrives after it): asked again,
    REVOKED; an unrelated revocation in flight costs no second call."""
    gate = Gate(node)
    checker = await checker_for(gate).start()
    await ledger.append(ledger.issue("race-0", f"user:{ledger.prefix}race", "agent"),
                        ledger.issue("race-1", f"user:{ledger.prefix}calm", "agent"))
    await caught_up(checker, ledger.written)
    at = audience("agent")
    for jti, subject, expected, misses in [("race-0", "race", REVOKED, 2), ("race-1", "elsewhere", ACTIVE, 3)]:
        answered, release = gate.hold_next()
        asking = asyncio.create_task(checker.check(ledger.ref(jti), at))
        await asyncio.wait_for(answered.wait(), 10)
        await ledger.append(ROOT.sign(revoke(subject=f"user:{ledger.prefix}{subject}", reason="test")))
        await caught_up(checker, ledger.written)
        release.set()
        answer = await asking
        checks.check(f"in flight: {jti} answers {STATUS_NAMES[expected]} from the node",
                     (answer.status, answer.source) == (expected, "node"), answer)
        checks.check(f"in flight: {jti}: {misses} calls in all", checker.stats["misses"] == misses, dict(checker.stats))
        cached = await checker.check(ledger.ref(jti), at)
        checks.check(f"in flight: {jti} then cached", (cached.status, cached.source) == (expected, "cache"), cached)
    await checker.close()


async def max_view_age(ledger: Ledger, target: str):
    """A feed cut for 1.6 s is within the 2 s staleness bound but past a
    1.5 s view age: the bounded checker's cached answers turn UNKNOWN; an
    answer held 1.6 s in flight is too old when it arrives. The unbounded
    checker, on the same feed and clock, answers ACTIVE both times."""
    proxy = Proxy(target)
    via = Client(await proxy.start())
    gate, clock = Gate(via), ManualClock()
    bounded = await checker_for(gate, clock, max_view_age_s=1.5).start()
    unbounded = await checker_for(gate, clock).start()
    await ledger.append(*[ledger.issue(f"age-{i}", "user:age", "agent") for i in range(3)])
    at = audience("agent")
    for checker in (bounded, unbounded):
        await caught_up(checker, ledger.written)
        first = await checker.check(ledger.ref("age-0"), at)
        checks.check("view age: ACTIVE first", (first.status, first.source) == (ACTIVE, "node"), first)
    proxy.cut()
    clock.advance(1.6)
    checks.check("view age: cut 1.6 s, only the bounded checker is stale",
                 not bounded.is_fresh() and unbounded.is_fresh())
    answer = await bounded.check(ledger.ref("age-0"), at)
    checks.check("view age: the bounded cache answers UNKNOWN", (answer.status, answer.source) == (UNKNOWN, "stale"),
                 answer)
    answer = await unbounded.check(ledger.ref("age-0"), at)
    checks.check("view age: the unbounded cache answers ACTIVE", (answer.status, answer.source) == (ACTIVE, "cache"),
                 answer)
    proxy.restore()
    for checker, jti, expected in [(bounded, "age-1", (UNKNOWN, "stale")), (unbounded, "age-2", (ACTIVE, "node"))]:
        await caught_up(checker, ledger.written)
        answered, release = gate.hold_next()
        asking = asyncio.create_task(checker.check(ledger.ref(jti), at))
        await asyncio.wait_for(answered.wait(), 10)
        clock.advance(1.6)
        release.set()
        answer = await asking
        checks.check(f"view age: an answer held 1.6 s: {expected}", (answer.status, answer.source) == expected, answer)
    for checker in (bounded, unbounded):
        await checker.close()
    await via.close()

async def rotation(node: Client):
    """The rotate builder: the authorization server rotates its own key; the
    new key issues, the retired one is refused."""
    ledger = Ledger(node, f"{RUN}rot-")
    await ledger.setup()
    old, new = ledger.keys["as"], Signer.generate()
    await ledger.append(old.sign(rotate(ledger.cid("as"), [new], [old.key_id])))
    ledger.keys["as"] = new
    await ledger.append(ledger.issue("after", "user:rot", "agent"))
    checks.check("rotation: the new key issues", (await node.check(ledger.ref("after"))).status == ACTIVE)
    ledger.keys["as"] = old
    try:
        await ledger.append(ledger.issue("retired", "user:rot", "agent"))
        checks.check("rotation: the retired key is refused", False, "accepted")
    except grpc.aio.AioRpcError as error:
        checks.check("rotation: the retired key is refused",
                     error.code() in REFUSED and "retired" in error.details(), error.details())


def bounds_refused():
    for kwargs, field in [(dict(checkpoint_interval_ms=50), "checkpoint_interval_ms"),
                          (dict(staleness_s=0.15, checkpoint_interval_ms=100), "staleness_s"),
                          (dict(max_view_age_s=0.15, checkpoint_interval_ms=100), "max_view_age_s"),
                          (dict(capacity=0), "capacity")]:
        try:
            Checker(None, **kwargs)
            checks.check(f"bounds: {field} refused", False, "accepted")
        except ValueError as error:
            checks.check(f"bounds: {field} refused", str(error).startswith(field), error)


SCENARIOS = Path(__file__).resolve().parents[3] / "proto" / "testvectors" / "sdk" / "checker.json"


async def scenario(node: Client, proxy: Proxy, checker: Checker, file: dict, scenario: dict):
    """One of the shared checker scenarios (proto/testvectors/sdk/checker.json,
    which the Rust Checker runs too): each op must do what the file says
    (taken, refused, skipped; for a check, the status, which must also be
    the node's own), and at the end every token must answer as recorded."""
    seed = scenario["seed"]
    answers = [op for op in scenario["ops"] if op["expect"] not in ("taken", "refused", "skipped", "cut")]
    checks.check(f"scenario {seed} compares answers", len(answers) + len(scenario["final"]) >= 10)
    # Fresh clients per scenario: a revoked authorization server ends its
    # scenario's issuing, not the next one's.
    ledger = Ledger(node, f"{RUN}s{seed}-")
    await ledger.setup()
    holders, nexts, clients = file["holders"], file["next"], file["clients"]
    tokens: list[tuple[str, str]] = []
    for step, op in enumerate(scenario["ops"]):
        jti, kind, did = f"m-{step}", op["op"], None
        try:
            if kind == "issue":
                holder = holders[op["holder"] % len(holders)]
                await ledger.append(ledger.issue(jti, f"user:{ledger.prefix}{op['subject']}", holder))
                tokens.append((jti, holder))
                did = "taken"
            elif kind == "narrow":
                did = "skipped"
                if tokens:
                    parent, performer = tokens[op["parent"] % len(tokens)]
                    holder = nexts[op["holder"] % len(nexts)]
                    if holder != performer:
                        await ledger.append(ledger.narrow(parent, jti, performer, holder))
                        tokens.append((jti, holder))
                        did = "taken"
            elif kind == "revoke":
                event = ledger.revocation(op["kind"], op["pick"], tokens, clients)
                did = "skipped"
                if event is not None:
                    await ledger.append(event)
                    did = "taken"
            elif kind == "check":
                did = "skipped"
                if tokens:
                    cjti, holder = tokens[op["token"] % len(tokens)]
                    await caught_up(checker, ledger.written)
                    at = "https://elsewhere.example/mcp" if op["elsewhere"] else audience(holder)
                    ok, status = await agree(checker, ledger, cjti, at, f"scenario {seed}: step {step}")
                    did = STATUS_NAMES.get(status) if ok else "disagreed with the node"
            elif kind == "cut":
                proxy.cut()
                for revoke_kind, pick in op["revoke"]:
                    event = ledger.revocation(revoke_kind, pick, tokens, clients)
                    if event is not None:
                        await ledger.append(event)
                if not await stale(checker):
                    checks.check(f"scenario {seed}: step {step}: the feed goes stale", False)
                answers = [await checker.check(ledger.ref(t), audience(h)) for t, h in tokens]
                if any((a.status, a.source) != (UNKNOWN, "stale") for a in answers):
                    checks.check(f"scenario {seed}: step {step}: cut off, every answer UNKNOWN", False, answers)
                proxy.restore()
                did = "cut"
            else:
                raise ValueError(f"{SCENARIOS}: unknown op {kind!r}")
        except grpc.aio.AioRpcError as error:
            # A refused append (a revoked parent, a tool endpoint that may not
            # delegate): the model keeps only what the ledger took.
            if error.code() not in REFUSED:
                raise
            did = "refused"
        checks.check(f"scenario {seed}: step {step}: {kind} {did}", did == op["expect"],
                     f"expected {op['expect']}")
    await caught_up(checker, ledger.written)
    at_end = []
    for jti, holder in tokens:
        ok, status = await agree(checker, ledger, jti, audience(holder), f"scenario {seed}: at the end")
        at_end.append(STATUS_NAMES.get(status) if ok else "disagreed with the node")
    checks.check(f"scenario {seed}: at the end, {len(tokens)} tokens as recorded", at_end == scenario["final"],
                 f"{at_end} != {scenario['final']}")


async def main(target: str) -> None:
    node = Client(target)
    ledger = Ledger(node, RUN)
    await ledger.setup()
    proxy = Proxy(target)
    via = Client(await proxy.start())
    checker = await checker_for(via).start()
    await every_kind_evicts(ledger, checker)
    await cut_answers_unknown(ledger, proxy, checker)
    await expiry_is_local(ledger, via)
    await in_flight(ledger, node)
    await max_view_age(ledger, target)
    bounds_refused()
    await rotation(node)
    file = json.loads(SCENARIOS.read_text())
    checks.check("the shared scenarios are there", len(file["scenarios"]) >= 6, len(file["scenarios"]))
    for one in file["scenarios"]:
        await scenario(node, proxy, checker, file, one)
    checks.check("the cache was hit and invalidated",
                 checker.stats["hits"] > 0 and checker.stats["invalidations"] > 0, dict(checker.stats))
    await checker.close()
    await via.close()
    await node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
    checks.summary("python checker")
