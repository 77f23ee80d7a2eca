"""Checks proto/testvectors/events.json with an implementation Baton did not
write: Python protobuf classes generated from proto/, the `cryptography`
package's ed25519 and the `blake3` package.

For every vector: the event given in proto3 JSON serializes to exactly the
payload bytes, the pre-authentication encoding matches, signing with the seed
gives exactly the signature, and the key id and event id hash as documented.

Usage: python check_vectors.py REPO_ROOT
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.json_format import ParseDict


def generate(repo: pathlib.Path, out: pathlib.Path) -> None:
    protos = sorted(str(p.relative_to(repo / "proto")) for p in (repo / "proto" / "baton" / "v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(repo / "proto"),
         f"--python_out={out}", f"--grpc_python_out={out}", *protos],
        check=True,
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d " % (len(t), t, len(payload)) + payload


def derive(context: str, data: bytes) -> bytes:
    return blake3.blake3(data, derive_key_context=context).digest()


def check(vector: dict, events_pb2) -> list:
    problems = []
    payload = bytes.fromhex(vector["payload_hex"])
    encoded = ParseDict(vector["event"], events_pb2.Event()).SerializeToString()
    if encoded != payload:
        problems.append("event JSON does not serialize to payload_hex")
    signed = pae(vector["payload_type"], payload)
    if signed.hex() != vector["pae_hex"]:
        problems.append("pae differs")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["signing_key_seed_hex"]))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if public.hex() != vector["public_key_hex"]:
        problems.append("public key differs")
    if derive("baton.v1 key id", public).hex() != vector["key_id_hex"]:
        problems.append("key id differs")
    if key.sign(signed).hex() != vector["signature_hex"]:
        problems.append("signature differs")
    if derive("baton.v1 event id", signed).hex() != vector["event_id_hex"]:
        problems.append("event id differs")
    return problems


def main() -> int:
    repo = pathlib.Path(sys.argv[1]).resolve()
    document = json.loads((repo / "proto" / "testvectors" / "events.json").read_text())
    with tempfile.TemporaryDirectory() as out:
        generate(repo, pathlib.Path(out))
        sys.path.insert(0, out)
        from baton.v1 import events_pb2  # noqa: E402  (generated just above)

        passed = failed = 0
        for vector in document["vectors"]:
            problems = check(vector, events_pb2)
            if problems:
                failed += 1
                print(f"FAIL {vector['name']}: {'; '.join(problems)}")
            else:
                passed += 1
                print(f"ok   {vector['name']}")
        digest = document["token_digest"]
        if derive("baton.v1 token digest", digest["token_utf8"].encode()).hex() == digest["digest_hex"]:
            passed += 1
            print("ok   token_digest")
        else:
            failed += 1
            print("FAIL token_digest")
    print(f"vectors: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
