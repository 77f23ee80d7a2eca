"""The package builds a wheel (`python -m build --wheel --no-isolation`, so
with this venv's setuptools and grpcio-tools) whose metadata is complete
and whose files are the generated stubs (messages with their `.pyi`, the
services), every module of `baton_client` and both `py.typed` markers;
and the wheel installs and imports on its own.

usage: wheel.py OUT_DIR (empty or missing; the wheel is built there)
Prints "sdk wheel: N passed, M failed" last; exits non-zero on any failure.
"""

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "interop"))

import checks  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1]
PROTOS = PACKAGE.parents[1] / "proto" / "baton" / "v1"


def main(out: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out / "dist"), str(PACKAGE)],
        capture_output=True, text=True, timeout=600,
    )
    checks.check("python -m build --wheel builds", built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:])
    wheels = sorted((out / "dist").glob("*.whl"))
    checks.check("one wheel, named for baton-client 0.1.0",
                 [w.name for w in wheels] == ["baton_client-0.1.0-py3-none-any.whl"], wheels)
    if not wheels:
        return
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = "baton_client-0.1.0.dist-info/METADATA"
        text = archive.read(metadata_name).decode() if metadata_name in names else ""
    print(text.split("\n\n", 1)[0], flush=True)
    metadata = email.parser.Parser().parsestr(text)

    def field(name: str, want: str) -> None:
        checks.check(f"METADATA {name}: {want}", metadata.get(name) == want, metadata.get_all(name))

    field("Name", "baton-client")
    field("Version", "0.1.0")
    field("License-Expression", "Apache-2.0")
    field("Requires-Python", ">=3.11")
    field("Description-Content-Type", "text/markdown")
    checks.check("METADATA Summary", (metadata.get("Summary") or "").startswith("Baton's Python SDK"), metadata.get("Summary"))
    requires = [r.replace(" ", "") for r in metadata.get_all("Requires-Dist") or []]
    for wanted in ["grpcio>=1.85", "protobuf<8,>=7.35.1", "blake3>=1.0", "cryptography>=44",
                   'mcp>=2.3;extra=="mcp"']:
        checks.check(f"METADATA Requires-Dist {wanted}", wanted in requires, requires)
    checks.check("METADATA Provides-Extra mcp", metadata.get_all("Provides-Extra") == ["mcp"],
                 metadata.get_all("Provides-Extra"))
    classifiers = metadata.get_all("Classifier") or []
    for wanted in ["Typing :: Typed", "Programming Language :: Python :: 3.11"]:
        checks.check(f"METADATA Classifier {wanted}", wanted in classifiers, classifiers)
    checks.check("METADATA Keywords", "delegation" in (metadata.get("Keywords") or ""), metadata.get("Keywords"))
    readme = (PACKAGE / "README.md").read_text()
    checks.check("the description is the README", metadata.get_payload().strip() == readme.strip(),
                 metadata.get_payload()[:200])

    protos = sorted(p.stem for p in PROTOS.glob("*.proto"))
    wanted_files = {"baton/__init__.py", "baton/py.typed", "baton/v1/__init__.py", "baton_client/py.typed"}
    for proto in protos:
        wanted_files |= {f"baton/v1/{proto}_pb2.py", f"baton/v1/{proto}_pb2.pyi", f"baton/v1/{proto}_pb2_grpc.py"}
    wanted_files |= {f"baton_client/{p.name}" for p in (PACKAGE / "src" / "baton_client").glob("*.py")}
    checks.check(f"the wheel has the stubs of {len(protos)} protos and every module", wanted_files <= names,
                 sorted(wanted_files - names))
    stray = sorted(n for n in names - wanted_files if not n.startswith("baton_client-0.1.0.dist-info/"))
    checks.check("and nothing else", not stray, stray)

    target = out / "installed"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    checks.check("the wheel installs", installed.returncode == 0, installed.stderr[-2000:])
    imported = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import baton_client, baton.v1.events_pb2;"
         " print(baton_client.__file__, baton_client.ClientKind.GATEWAY.name)", str(target)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""},
    )
    checks.check("and imports from where it was installed",
                 imported.returncode == 0 and imported.stdout.startswith(str(target))
                 and imported.stdout.split()[-1] == "GATEWAY", imported.stdout + imported.stderr)


main(Path(sys.argv[1]))
checks.summary("sdk wheel")
