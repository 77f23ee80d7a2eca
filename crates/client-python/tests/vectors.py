"""The Python half of the vectors both SDKs run (proto/testvectors/sdk/; the
Rust SDK runs the same files in crates/client/src/checker.rs's unit tests
and crates/client/tests/vectors.rs), through the code paths production
takes:

- targets.json: every target through `targets.parse` and through the
  Checker's `_entry_of` (an answer depending on an unreadable target is not
  kept); every eviction as a cached ACTIVE answer (made by `_entry_of` from
  an IntrospectResponse) and a bystander, then the Watch message delivered
  by the Checker's `_deliver`;
- consistency.json: every section through `baton_client.consistency`;
- gateway.json: every case through `gateway.admit` and `gateway.conclude`,
  the calls `BatonMiddleware` makes around the checker's answer.

usage: vectors.py REPO_ROOT
Prints one line per failure, then `sdk vectors: N passed, M failed`; exits
non-zero on any failure.
"""

import asyncio
import json
import logging
import pathlib
import re
import sys

from baton.v1 import events_pb2, revocation_pb2
from baton_client import consistency, gateway, targets
from baton_client.checker import Checker, _entry_of

passed, failed = 0, 0


def check(name: str, ok: bool, detail: object = "") -> None:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAILED: {name}: {detail}", flush=True)


def load(root: pathlib.Path, name: str) -> dict:
    return json.loads((root / "proto" / "testvectors" / "sdk" / name).read_text())


def cases(document: dict, section: str) -> list:
    found = document[section]
    check(f"{section}: has cases", bool(found))
    return found


# targets.json


def as_vector(target: targets.Target) -> dict:
    """A parsed target as targets.json writes it."""
    kind, value = target
    return {"kind": kind, "hex": value.hex()} if isinstance(value, bytes) else {"kind": kind, "value": value}


def parsed(target: events_pb2.RevocationTarget) -> dict | None:
    try:
        return as_vector(targets.parse(target))
    except ValueError:
        return None


def answered(key: str, depends_on: list[events_pb2.RevocationTarget]):
    """An ACTIVE answer for `key` depending on `depends_on`, through the path
    a miss takes (`_entry_of`): None when it is not kept."""
    response = revocation_pb2.IntrospectResponse()
    response.check.status = revocation_pb2.TOKEN_STATUS_ACTIVE
    response.check.expires_at_unix_s = 2**62
    response.check.audience = "https://a"
    response.check.depends_on.extend(depends_on)
    return _entry_of(key, response)


def wire_target(hex_text: str) -> events_pb2.RevocationTarget:
    return events_pb2.RevocationTarget.FromString(bytes.fromhex(hex_text))


async def evicts(case: dict) -> tuple[bool, bool]:
    """(entry kept, bystander kept) after the case's Watch message."""
    checker = Checker(client=None)
    checker._insert("jti:t", answered("jti:t", [wire_target(case["depends_on_hex"])]))
    checker._insert("jti:b", answered("jti:b", [events_pb2.RevocationTarget(subject="user:bystander")]))
    message = revocation_pb2.WatchResponse(revocation_event_id=bytes([1]) * 32)
    message.revoked.CopyFrom(events_pb2.Revoked.FromString(bytes.fromhex(case["revoked_hex"])))
    await checker._deliver(message)
    return "jti:t" in checker._entries, "jti:b" in checker._entries


def run_targets(document: dict) -> None:
    for case in cases(document, "targets"):
        name = f"targets: {case['name']}"
        target = wire_target(case["wire_hex"])
        got = parsed(target)
        check(name, got == case["parsed"], f"parsed {got}, expected {case['parsed']}")
        kept = answered("jti:t", [target]) is not None
        check(f"{name}: cached exactly when readable", kept == (case["parsed"] is not None), f"cached: {kept}")
    expected = {"entry": (False, True), "none": (True, True), "all": (False, False)}
    for case in cases(document, "evictions"):
        got = asyncio.run(evicts(case))
        check(f"evictions: {case['name']}", got == expected[case["evicts"]],
              f"(entry kept, bystander kept) = {got}, expected {expected[case['evicts']]} ({case['evicts']})")


# consistency.json


def attempt(call, *args):
    try:
        return call(*args)
    except ValueError:
        return None


def run_consistency(document: dict) -> None:
    for case in cases(document, "parse"):
        got = attempt(consistency.parse, case["text"])
        check(f"parse {case['text']!r}", got == case["offsets"], f"{got}, expected {case['offsets']}")
    for case in cases(document, "format"):
        got = consistency.format(case["offsets"])
        check(f"format {case['offsets']}", got == case["text"], f"{got!r}, expected {case['text']!r}")
    for case in cases(document, "covers"):
        got = consistency.covers(case["applied"], case["token"])
        check(f"covers {case['applied']!r} {case['token']!r}", got == case["covers"], got)
    for case in cases(document, "merge"):
        got = consistency.merge(case["a"], case["b"])
        check(f"merge {case['a']!r} {case['b']!r}", got == case["merged"], f"{got!r}, expected {case['merged']!r}")
    for case in cases(document, "include"):
        got = attempt(consistency.include, case["token"], case["partition"], case["offset"])
        check(f"include {case['token']!r} ({case['partition']}, {case['offset']})", got == case["result"],
              f"{got!r}, expected {case['result']!r}")


# gateway.json


def parameter(challenge: str, name: str) -> str | None:
    """`Bearer …, name="…"`'s value, if present."""
    found = re.search(rf'(?:^Bearer |, ){name}="([^"]*)"', challenge)
    return found.group(1) if found else None


def decide(resource: gateway.Resource, case: dict) -> gateway.Verdict:
    """The verdict for one case, by the calls `BatonMiddleware` makes."""
    headers = [(name.encode(), value.encode()) for name, value in case["headers"]]
    presented = gateway.admit(resource, case["method"], headers)
    if isinstance(presented, gateway.Verdict):
        return presented
    answer = case["answer"]
    details = revocation_pb2.TokenDetails(
        scopes=answer["scopes"], tools=answer["tools"], subject="user:alice", holder="mcp-client"
    )
    status = revocation_pb2.TokenStatus.Value(f"TOKEN_STATUS_{answer['status']}")
    return gateway.conclude(resource, presented, status, details, bytes([7]) * 32)


def run_gateway(document: dict) -> None:
    config = document["resource"]
    resource = gateway.Resource(config["audience"], tuple(config["scopes"]), config["metadata_url"])
    allowed = 0
    for case in cases(document, "cases"):
        name, expect = f"gateway: {case['name']}", case["expect"]
        verdict = decide(resource, case)
        challenge = verdict.www_authenticate or ""
        shown = f"{verdict.status} {challenge!r} ({verdict.reason})"
        check(f"{name}: status", verdict.status == expect["status"], shown)
        if verdict.allowed:
            allowed += 1
            continue
        check(f"{name}: error", parameter(challenge, "error") == expect.get("error"), shown)
        if "scope" in expect:
            check(f"{name}: scope", parameter(challenge, "scope") == expect["scope"], shown)
        if verdict.status == 401:
            # RFC 9728 §5.1: every 401 names the metadata.
            check(f"{name}: resource_metadata", parameter(challenge, "resource_metadata") == config["metadata_url"],
                  shown)
    check("gateway: some cases are allowed", allowed >= 5, allowed)


def main() -> None:
    root = pathlib.Path(sys.argv[1])
    # The Checker warns of every unreadable target: here, made on purpose.
    logging.getLogger("baton_client").setLevel(logging.ERROR)
    run_targets(load(root, "targets.json"))
    run_consistency(load(root, "consistency.json"))
    run_gateway(load(root, "gateway.json"))
    print(f"sdk vectors: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
