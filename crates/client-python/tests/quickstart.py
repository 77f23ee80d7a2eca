"""README.md's quick start, run as written against a real node: this script
leaves the node as the main README's walkthrough does for it (the clients
`auth.example` and `gateway` registered, `auth.key` in the working
directory), runs the README's Python block in that directory with the
node's address in place of 127.0.0.1:7700, and compares what it prints with
the README's `text` block after it (`…` standing for an id's 64 hex
digits). Then it
type-checks the block with `mypy --strict`. The node trusts the TEST-ONLY
root of proto/testvectors (seed 01..01); every other key is made here.

usage: quickstart.py HOST:PORT
Prints "sdk quickstart: N passed, M failed" last; exits non-zero on any
failure.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "interop"))

import checks  # noqa: E402
from baton_client import (  # noqa: E402
    Client, ClientKind, ClientRole, Signer, key_id_text, register,
)
from baton_client.signing import KEY_FILE_TYPE  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
ROOT = Signer.from_seed(bytes([1]) * 32)
# The walkthrough's ceilings (README.md, "Register an authorization server").
SCOPES = ["repo:read", "repo:write"]
TOOLS = ["github/search", "github/create_issue", "github/delete_repo"]
WALKTHROUGH_ADDRESS = "127.0.0.1:7700"


def blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def write_key_file(path: Path, seed: bytes) -> Signer:
    """A key file as `baton keygen` writes it (mode 0600)."""
    signer = Signer.from_seed(seed)
    document = {"type": KEY_FILE_TYPE, "seed_hex": seed.hex(), "public_key_hex": signer.public_key.hex(),
                "key_id": key_id_text(signer.key_id)}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(json.dumps(document, indent=2) + "\n")
    return signer


async def walkthrough(address: str, directory: Path) -> None:
    """`auth.key`, and the walkthrough's `auth.example` (by the trust root)
    and `gateway` (by `auth.example`) registered on the node."""
    auth = write_key_file(directory / "auth.key", os.urandom(32))
    gateway = Signer.generate()
    client = Client(f"http://{address}")
    try:
        appended = await client.append([
            ROOT.sign(register("auth.example", ClientKind.AUTHORIZATION_SERVER, ClientRole.DELEGATING_LAYER,
                               [auth], SCOPES, TOOLS)),
            auth.sign(register("gateway", ClientKind.GATEWAY, ClientRole.DELEGATING_LAYER, [gateway], SCOPES, TOOLS,
                               registered_by="auth.example")),
        ])
        checks.check("the walkthrough's clients are registered", appended.accepted == [True, True], appended)
    finally:
        await client.close()


def matches(expected: str, got: str) -> bool:
    """Whether `got` is the line `expected`, where `…` stands for an id's 64
    hex digits."""
    return re.fullmatch("[0-9a-f]{64}".join(re.escape(part) for part in expected.split("…")), got) is not None


def main(address: str) -> None:
    text = README.read_text()
    python, printed = blocks(text, "python"), blocks(text, "text")
    checks.check("README has a Python quick start and what it prints", bool(python) and bool(printed))
    quickstart, expected = python[0], printed[0].splitlines()
    lines = len(quickstart.strip().splitlines())
    checks.check(f"the quick start is about 30 lines ({lines})", lines <= 35, lines)
    checks.check(f"the quick start names the walkthrough's node ({WALKTHROUGH_ADDRESS}) once",
                 quickstart.count(WALKTHROUGH_ADDRESS) == 1, quickstart)
    with tempfile.TemporaryDirectory(prefix="baton-quickstart-") as scratch:
        directory = Path(scratch)
        asyncio.run(walkthrough(address, directory))
        script = directory / "quickstart.py"
        script.write_text(quickstart.replace(WALKTHROUGH_ADDRESS, address))
        run = subprocess.run([sys.executable, str(script)], cwd=directory, capture_output=True, text=True,
                             timeout=120)
        print(run.stdout, end="")
        print(run.stderr, end="", file=sys.stderr)
        checks.check("the quick start runs", run.returncode == 0, run.stderr[-2000:])
        got = run.stdout.splitlines()
        checks.check(f"it prints {len(expected)} lines, as README shows", len(got) == len(expected), got)
        for want, line in zip(expected, got):
            checks.check(f"it prints {want!r}", matches(want, line), line)
        typed = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(directory / "cache"), str(script)],
            cwd=directory, capture_output=True, text=True, timeout=300,
        )
        print(typed.stdout, end="")
        checks.check("the quick start passes mypy --strict", typed.returncode == 0, typed.stdout + typed.stderr)


main(sys.argv[1])
checks.summary("sdk quickstart")
