#!/usr/bin/env bash
# The README's walkthrough, command for command, with its claims checked: a
# 3-hop delegation chain, a widened hop refused, the middle hop revoked, the
# cascade seen by `check`, and an exported chain verified offline (and a
# tampered copy rejected). Runs against a node it starts itself on a free port.
# Usage: tests/walkthrough.sh [BATON_BINARY_DIR]   (default: target/debug)
# grpcurl must be on PATH (tests/run.sh puts its cached copy there).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$(cd "${1:-$ROOT/target/debug}" && pwd):$PATH"
WORK="$(mktemp -d)"
trap 'kill "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "walkthrough: FAIL: $*" >&2; exit 1; }

baton keygen --out root.key
baton serve --data-dir data --listen 127.0.0.1:0 --trust-root "$(baton pubkey root.key)" --loopback-admin >node.out 2>node.err &
NODE=$!
for _ in $(seq 100); do grep -q "baton listening on" node.out 2>/dev/null && break; sleep 0.1; done
export BATON_SERVER="http://$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' node.out)"
[ "$BATON_SERVER" != "http://" ] || fail "the node did not start: $(cat node.err)"

# --- the README walkthrough, verbatim from here on ---------------------------
baton keygen --out auth.key
baton keygen --out gateway.key
baton keygen --out github.key
baton keygen --out search.key
baton register --key root.key --client-id auth.example --kind authorization-server \
  --role delegating-layer --client-key auth.key \
  --scopes repo:read,repo:write --tools github/search,github/create_issue,github/delete_repo
baton register --key auth.key --registered-by auth.example --client-id gateway --kind gateway \
  --role delegating-layer --client-key gateway.key \
  --scopes repo:read,repo:write --tools github/search,github/create_issue,github/delete_repo
baton register --key auth.key --registered-by auth.example --client-id mcp-github --kind mcp-server \
  --role mixed-trust-boundary --client-key github.key \
  --scopes repo:read,repo:write --tools github/search,github/create_issue
baton register --key auth.key --registered-by auth.example --client-id mcp-search --kind mcp-server \
  --role tool-endpoint --client-key search.key --scopes repo:read --tools github/search
baton issue --key auth.key --issuer auth.example --token jti:alice-1 --subject user:alice@example.com \
  --holder gateway --audience https://gateway.example/mcp \
  --scopes repo:read,repo:write --tools github/search,github/create_issue,github/delete_repo
baton narrow --key gateway.key --parent jti:alice-1 --token jti:alice-2 --performed-by gateway \
  --holder mcp-github --audience https://github.mcp.example/ \
  --scopes repo:read,repo:write --tools github/search,github/create_issue
baton narrow --key github.key --parent jti:alice-2 --token jti:alice-3 --performed-by mcp-github \
  --holder mcp-search --audience https://search.mcp.example/ --scopes repo:read --tools github/search
baton chain jti:alice-3
if baton narrow --key github.key --parent jti:alice-2 --token jti:alice-x --performed-by mcp-github \
  --holder mcp-search --audience https://search.mcp.example/ --scopes repo:read --tools github/delete_repo; then
  fail "a widened hop was accepted"
fi
baton check jti:alice-3 --presented-to https://search.mcp.example/ || fail "alice-3 should be ACTIVE"
baton check jti:alice-3 --presented-to https://github.mcp.example/ && fail "passthrough should be refused"
[ $? -eq 6 ] || fail "passthrough should exit 6"
baton revoke --key gateway.key --revoked-by gateway --token jti:alice-2 --reason "session ended"
baton check jti:alice-1 || fail "alice-1 should stay ACTIVE"
baton check jti:alice-2 && fail "alice-2 should be REVOKED"
baton check jti:alice-3 && fail "alice-3 should be REVOKED"
[ $? -eq 3 ] || fail "REVOKED should exit 3"
baton export jti:alice-3 --out alice-3.bundle
baton verify alice-3.bundle --trust-root "$(baton pubkey root.key)" || fail "the bundle should verify"
cp alice-3.bundle tampered.bundle && printf 'X' | dd of=tampered.bundle bs=1 seek=200 conv=notrunc 2>/dev/null
baton verify tampered.bundle --trust-root "$(baton pubkey root.key)" && fail "a tampered bundle verified"
[ $? -eq 3 ] || fail "a rejected bundle should exit 3"
grpcurl -plaintext "${BATON_SERVER#http://}" list
grpcurl -plaintext -d '{"token": {"jti": "alice-3"}}' "${BATON_SERVER#http://}" baton.v1.RevocationService/Check \
  | tee check.json
grep -q '"status": "TOKEN_STATUS_REVOKED"' check.json || fail "grpcurl should see alice-3 REVOKED"
# --- end of the walkthrough ----------------------------------------------------

# README "Identifiers and time": a client's own (static) chain reads as such,
# and no client id may be in the `user:` namespace.
baton keygen --out svc.key
baton register --key auth.key --registered-by auth.example --client-id svc-1 --kind service \
  --role tool-endpoint --client-key svc.key --scopes repo:read --tools github/search
baton issue --key auth.key --issuer auth.example --token jti:svc-1 --subject svc-1 --holder svc-1 \
  --grant client-credentials --audience https://search.mcp.example/ --scopes repo:read --tools github/search
baton chain jti:svc-1 | tee chain.txt
grep -q "jti:svc-1  static (client-credentials) for client svc-1: auth.example -> svc-1" chain.txt \
  || fail "a static chain should read as static"
if baton register --key auth.key --registered-by auth.example --client-id user:bob --kind service \
  --role tool-endpoint --client-key svc.key --scopes repo:read --tools github/search 2>refused.txt; then
  fail "a client id in user: was registered"
fi
grep -q "names users" refused.txt || fail "the user: refusal should say why: $(cat refused.txt)"

# README "Who may do what": a key's proof names the registrar it is for, and
# serves no other.
baton keygen --out svc2.key
baton register --key auth.key --registered-by auth.example --client-id svc-2 --kind service \
  --role tool-endpoint --client-key "$(baton pubkey svc2.key --proof-for svc-2 --registrar other.example)" \
  --scopes repo:read --tools github/search 2>refused.txt && fail "a proof for another registrar was taken"
grep -q "public_key_proofs" refused.txt || fail "the proof refusal should name the field: $(cat refused.txt)"
baton register --key auth.key --registered-by auth.example --client-id svc-2 --kind service \
  --role tool-endpoint --client-key "$(baton pubkey svc2.key --proof-for svc-2 --registrar auth.example)" \
  --scopes repo:read --tools github/search
echo "walkthrough: 1 passed, 0 failed"
