"""Checks the Python SDK's signer (crates/client-python, installed in this
venv) against proto/testvectors/events.json, on protobuf classes generated
from proto/ and the `cryptography` and `blake3` packages Baton did not
write.

For every vector: the event given in proto3 JSON serializes to exactly the
payload bytes; the SDK's `Signer`, from the vector's seed, signs it to
exactly the vector's payload, pre-authentication encoding, signature, key id
and event id; and the SDK's token digest matches.

Usage: python check_vectors.py REPO_ROOT
"""

import json
import pathlib
import sys

from baton.v1 import events_pb2
from baton_client.signing import Signer, event_id, pae, token_digest
from google.protobuf.json_format import ParseDict


def check(vector: dict) -> list:
    problems = []
    payload = bytes.fromhex(vector["payload_hex"])
    event = ParseDict(vector["event"], events_pb2.Event())
    if event.SerializeToString() != payload:
        problems.append("event JSON does not serialize to payload_hex")
    if pae(vector["payload_type"], payload).hex() != vector["pae_hex"]:
        problems.append("pae differs")
    signer = Signer.from_seed(bytes.fromhex(vector["signing_key_seed_hex"]))
    if signer.public_key.hex() != vector["public_key_hex"]:
        problems.append("public key differs")
    if signer.key_id.hex() != vector["key_id_hex"]:
        problems.append("key id differs")
    signed = signer.sign(event, created_at_ms=event.created_at_unix_ms)
    if signed.payload != payload:
        problems.append("the SDK's signed payload differs")
    if signed.signature.hex() != vector["signature_hex"]:
        problems.append("signature differs")
    if event_id(signed).hex() != vector["event_id_hex"]:
        problems.append("event id differs")
    return problems


def main() -> int:
    repo = pathlib.Path(sys.argv[1]).resolve()
    document = json.loads((repo / "proto" / "testvectors" / "events.json").read_text())
    passed = failed = 0
    for vector in document["vectors"]:
        problems = check(vector)
        if problems:
            failed += 1
            print(f"FAIL {vector['name']}: {'; '.join(problems)}")
        else:
            passed += 1
            print(f"ok   {vector['name']}")
    digest = document["token_digest"]
    if token_digest(digest["token_utf8"].encode()).hex() == digest["digest_hex"]:
        passed += 1
        print("ok   token_digest")
    else:
        failed += 1
        print("FAIL token_digest")
    print(f"vectors: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
