#!/usr/bin/env bash
# The README's walkthrough, command for command, with its claims checked: a
# 3-hop delegation chain, a widened hop refused, the middle hop revoked, the
# cascade seen by `check`, and an exported chain verified offline (and a
# tampered copy rejected). Starts from README's first command, deploy/serve.sh,
# on a fresh data directory and a free port. Then docs/security.md's
# production snippet, as written there: a CA, client certificates, a node
# over mTLS, its clients' calls.
# Usage: tests/walkthrough.sh [BATON_BINARY_DIR]   (default: target/debug)
# grpcurl must be on PATH (tests/run.sh puts its cached copy there).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$(cd "${1:-$ROOT/target/debug}" && pwd):$PATH"
WORK="$(mktemp -d)"
NODE="" PRODUCTION=""
trap 'kill $NODE $PRODUCTION 2>/dev/null || true; wait $NODE $PRODUCTION 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "walkthrough: FAIL: $*" >&2; exit 1; }

# README's first command, deploy/serve.sh, on a fresh data directory (with
# the binary under test instead of a release build, on a free port).
BATON_BINARY="$(command -v baton)" BATON_DATA_DIR="$WORK/baton-data" \
  "$ROOT/deploy/serve.sh" --listen 127.0.0.1:0 >node.out 2>node.err &
NODE=$!
for _ in $(seq 100); do grep -q "baton listening on" node.out 2>/dev/null && break; sleep 0.1; done
export BATON_SERVER="http://$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' node.out)"
[ "$BATON_SERVER" != "http://" ] || fail "serve.sh did not start a node: $(cat node.err)"
grep -q "^trust root: $WORK/baton-data/trust-root.key" node.err || fail "serve.sh did not name its trust root: $(cat node.err)"

# --- the README walkthrough, verbatim from here on ---------------------------
ln -s baton-data/trust-root.key root.key
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

# --- docs/security.md's production snippet, as written there -------------------
# The ```sh block of FILE that contains TEXT; fails unless exactly one does.
block() {
  awk -v text="$2" '
    /^```sh$/ { inside = 1; body = ""; next }
    inside && /^```$/ { inside = 0; if (index(body, text)) { found++; printf "%s", body }; next }
    inside { body = body $0 "\n" }
    END { if (found != 1) exit 3 }
  ' "$1"
}
unset BATON_SERVER  # the snippet names its own
mkdir "$WORK/production" && cd "$WORK/production"
baton keygen --out root.key >/dev/null
block "$ROOT/docs/security.md" "baton pki init" >serve.block \
  && block "$ROOT/docs/security.md" "export BATON_SERVER=https://" >calls.block \
  || fail "docs/security.md should hold its production snippet's two blocks, once each"
# As written, on a free loopback port instead of 0.0.0.0:7700, the node in
# the background.
sed -e 's/^listen = "0.0.0.0:7700"$/listen = "127.0.0.1:0"/' \
    -e 's/^baton serve .*/& >node.out 2>node.err \&/' serve.block >serve.sh
grep -q '^listen = "127.0.0.1:0"$' serve.sh && grep -q '^baton serve .*&$' serve.sh \
  || fail "the production snippet no longer listens on 0.0.0.0:7700 or runs baton serve: $(cat serve.block)"
. ./serve.sh
PRODUCTION=$!
for _ in $(seq 100); do grep -q "baton listening on" node.out 2>/dev/null && break; sleep 0.1; done
ADDRESS="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' node.out)"
[ -n "$ADDRESS" ] || fail "the production node did not start: $(cat node.err)"
# Each call as written (continued lines joined), against that port, its exit
# code recorded.
sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' -e "s/127\.0\.0\.1:7700/$ADDRESS/g" \
    -e 's/^\(baton\|grpcurl\) .*/& ; echo "exit $?"/' calls.block >calls.sh
(set +e; . ./calls.sh) >calls.out 2>&1
cat calls.out
[ "$(grep -c '^exit ' calls.out)" = 3 ] || fail "the production calls were not three: $(cat calls.block)"
grep -q "^jti:abc UNKNOWN$" calls.out || fail "mcp-a's check should answer UNKNOWN"
grep -q "^node: ready" calls.out || fail "the operator's status should say the node is ready"
grep -q '"status": "TOKEN_STATUS_UNKNOWN"' calls.out || fail "the gateway's grpcurl check should answer"
[ "$(sed -n 's/^exit //p' calls.out | tr '\n' ' ')" = "5 0 0 " ] \
  || fail "exit codes should be 5 (UNKNOWN), 0 (grpcurl), 0 (status)"
# The operator's certificate is what makes status work: mcp-a's is refused.
BATON_SERVER="https://$ADDRESS" BATON_CA=pki/ca.pem baton status --cert pki/mcp-a.pem \
  --cert-key pki/mcp-a.key 2>refused.txt && fail "a checker read the admin status"
grep -q "needs role admin" refused.txt || fail "status as a checker should be refused for the role: $(cat refused.txt)"
echo "walkthrough: 2 passed, 0 failed"
