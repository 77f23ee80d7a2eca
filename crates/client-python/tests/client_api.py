"""The Python SDK as a user calls it, against a real node: `Client` takes the
`http://host:port` form every other Baton tool takes (and refuses an
http:// target with a CA, naming `server`), `issue` takes a lifetime (`ttl_s`), answers
carry a `TokenStatus` (an int enum that names itself) and event ids print as
Baton prints them. The node trusts the TEST-ONLY root of proto/testvectors
(seed 01..01); every other key is made here.

usage: client_api.py HOST:PORT
"""

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "interop"))

import checks  # noqa: E402
from baton.v1 import events_pb2  # noqa: E402
from baton_client import (  # noqa: E402
    ACTIVE, REVOKED, Answer, Client, Signer, TokenStatus, issue, register, revoke,
)
from baton_client.client import _target  # noqa: E402

ROOT = Signer.from_seed(bytes([1]) * 32)
RUN = f"api{time.time_ns()}"


def readme() -> None:
    """README.md's example is Python that parses and makes the calls this
    script then makes against a node (with its own clients and token)."""
    import ast
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    tree = ast.parse(block)
    calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    checks.check("README's example parses and calls Client, issue(ttl_s=), append, check",
                 {"Client", "issue", "append", "check", "from_key_file", "of"} <= calls, calls)


def offline() -> None:
    checks.check("http://host:port is plaintext", _target("http://127.0.0.1:7700", None) == ("127.0.0.1:7700", False))
    checks.check("https://host:port is TLS", _target("https://node:7700/", None) == ("node:7700", True))
    checks.check("a bare host:port is TLS with a CA", _target("node:7700", "ca.pem") == ("node:7700", True))
    checks.check("a gRPC target passes as grpcio reads it",
                 _target("unix:/run/baton.sock", None) == ("unix:/run/baton.sock", False)
                 and _target("dns:///node:7700", None) == ("dns:///node:7700", False))
    try:
        Client("http://n:1", ca="ca.pem")
        checks.check("http:// with a CA refused", False, "accepted")
    except ValueError as error:
        checks.check("http:// with a CA refused, naming server", str(error).startswith("server:"), error)
    checks.check("TokenStatus is the wire's int and names itself",
                 TokenStatus.ACTIVE == 1 and ACTIVE.name == "ACTIVE" and ACTIVE is TokenStatus.ACTIVE)
    checks.check("a status this SDK does not know is UNKNOWN", TokenStatus.of(99) is TokenStatus.UNKNOWN)
    answer = Answer(status=int(REVOKED), source="node")
    checks.check("an Answer built from a wire value carries a TokenStatus",
                 answer.status is TokenStatus.REVOKED and not answer.allows, answer)
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
        auth = Signer.generate()
        as_id = f"{RUN}-as"
        registered = await client.append([ROOT.sign(register(
            as_id, events_pb2.CLIENT_KIND_AUTHORIZATION_SERVER, events_pb2.CLIENT_ROLE_DELEGATING_LAYER,
            [auth], ["files:read"], ["fs/read"]))])
        checks.check("Client(http://host:port) appends", registered.accepted == [True], registered)
        checks.check("event ids print as Baton prints them",
                     all(i.startswith("ev:") and len(i) == 67 for i in registered.ids), registered.ids)
        token = f"jti:{RUN}-t1"
        appended = await client.append([auth.sign(issue(
            token, "user:alice@example.com", as_id, as_id, "https://mcp.example/", ["files:read"], ["fs/read"],
            ttl_s=600))], after=registered.consistency_token)
        checks.check("a grant issued with ttl_s is accepted", appended.accepted == [True], appended)
        answer = await client.check(token, after=appended.consistency_token)
        status = TokenStatus.of(answer.status)
        checks.check("its check is ACTIVE, by name", status is TokenStatus.ACTIVE and status.name == "ACTIVE", answer)
        checks.check("its expiry is the lifetime asked for",
                     abs(answer.expires_at_unix_s - (time.time() + 600)) < 10, answer.expires_at_unix_s)
        revoked = await client.append([ROOT.sign(revoke(token=token, reason="test"))], after=appended.consistency_token)
        answer = await client.check(token, after=revoked.consistency_token)
        checks.check("revoked, by name", TokenStatus.of(answer.status).name == "REVOKED", answer)
    finally:
        await client.close()


readme()
offline()
asyncio.run(live(sys.argv[1]))
checks.summary("sdk api")
