"""Test-only JWTs made with a library we did not write (`cryptography`): an
RS256 key whose JWKS goes to a file, and tokens signed with it (and with
others) for the JWT-verification test. Nothing here is a real secret: the
keys are made at run time and thrown away.

usage: make_jwts.py OUT_DIR ISS JTI OTHER_ISS
Writes OUT_DIR/jwks.json; prints one JSON object of named tokens.
"""

import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

OUT, ISS, JTI, OTHER_ISS = sys.argv[1:5]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwt(key, header: dict, claims: dict) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public = key.public_key().public_numbers()
with open(f"{OUT}/jwks.json", "w") as f:
    json.dump({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                         "n": number(public.n), "e": number(public.e)}]}, f)

now = int(time.time())
claims = {"iss": ISS, "jti": JTI, "sub": "user:alice@example.com", "iat": now, "exp": now + 600}
header = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
good = jwt(key, header, claims)
head, payload, signature = good.split(".")
forged_claims = b64(json.dumps({**claims, "exp": now + 86400}).encode())
print(json.dumps({
    "good": good,
    "tampered": f"{head}.{forged_claims}.{signature}",
    "stranger": jwt(stranger, header, claims),
    "none": f"{b64(json.dumps({'alg': 'none'}).encode())}.{payload}.",
    "other_issuer": jwt(key, header, {**claims, "iss": OTHER_ISS}),
    "expired": jwt(key, header, {**claims, "exp": now - 5}),
}))
