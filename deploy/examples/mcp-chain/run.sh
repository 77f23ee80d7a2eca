#!/usr/bin/env bash
# The mcp-chain example, end to end, in one command (docs/sdks.md: "A real
# MCP delegation chain"): Apache Kafka and two Baton nodes; an authorization step
# that issues Alice's root grant to the gateway; the gateway (Python, the
# SDK) exchanging it for MCP server A; server A (the Python MCP SDK, Baton as
# its token verifier) exchanging its token for MCP server B (Rust, rmcp behind
# Baton's tower layer) and calling B's tool; the Python MCP SDK's client
# driving it, then revoking the middle hop on the second node and calling
# until the chain refuses; finally `baton chain` on B's token.
#
# Uses target/debug binaries (built here if missing) and the interop venv
# with the Python SDK installed from this checkout; BATON, SERVER_B and
# PYTHON override them. Everything it starts stops when it exits.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
CACHE="${BATON_CACHE:-$HOME/.cache/baton}"
if [ -z "${BATON:-}" ] || [ -z "${SERVER_B:-}" ]; then
    (cd "$REPO" && cargo build --locked -q -p baton -p mcp-chain-server-b)
fi
BATON="${BATON:-$REPO/target/debug/baton}"
SERVER_B="${SERVER_B:-$REPO/target/debug/mcp-chain-server-b}"
if [ -z "${PYTHON:-}" ]; then
    VENV="$CACHE/venv-interop"
    if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REPO/tests/interop/requirements.txt" "$VENV/.requirements"; then
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO/tests/interop/requirements.txt"
        cp "$REPO/tests/interop/requirements.txt" "$VENV/.requirements"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
        --force-reinstall "$REPO/crates/client-python"
    PYTHON="$VENV/bin/python"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$REPO/deploy/kafka/kafka.sh" stop --dir "$WORK/kafka" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '== %s\n' "$*"; }
# Waits for LINE in FILE (a process's stdout), or shows its logs and fails.
wait_for() {
    local file=$1 line=$2 name=$3
    for _ in $(seq 600); do grep -q "$line" "$file" 2>/dev/null && return 0; sleep 0.1; done
    echo "$name did not start:" >&2
    cat "$file" "${file%.out}.err" >&2 || true
    exit 1
}
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "Kafka and two Baton nodes"
BOOTSTRAP="$("$REPO/deploy/kafka/kafka.sh" start --dir "$WORK/kafka")"
for who in root as gateway server-a server-b; do "$BATON" keygen --out "$WORK/$who.key" >/dev/null; done
ROOT="$("$BATON" pubkey "$WORK/root.key")"
TOPIC="mcp-chain-$$-$(date +%s)"
for node in 1 2; do
    BATON_LOG=warn "$BATON" serve --listen 127.0.0.1:0 --data-dir "$WORK/node$node" --trust-root "$ROOT" --loopback-admin \
        --kafka-brokers "$BOOTSTRAP" --kafka-topic "$TOPIC" --kafka-partitions 2 \
        >"$WORK/node$node.out" 2>"$WORK/node$node.err" &
    PIDS+=("$!")
    wait_for "$WORK/node$node.out" "baton listening on" "node $node"
done
NODE1="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' "$WORK/node1.out")"
NODE2="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' "$WORK/node2.out")"
export BATON_SERVER="http://$NODE1"

say "clients: an authorization server, the gateway, MCP servers A and B"
register() { "$BATON" register "$@" --scopes kb:read --tools research,lookup >/dev/null; }
register --key "$WORK/root.key" --client-id as --kind authorization-server --role delegating-layer \
    --client-key "$WORK/as.key"
register --key "$WORK/as.key" --registered-by as --client-id gateway --kind gateway --role delegating-layer \
    --client-key "$WORK/gateway.key"
register --key "$WORK/as.key" --registered-by as --client-id server-a --kind mcp-server \
    --role mixed-trust-boundary --client-key "$WORK/server-a.key"
register --key "$WORK/as.key" --registered-by as --client-id server-b --kind mcp-server --role tool-endpoint \
    --client-key "$WORK/server-b.key"

PORT_B="$(free_port)"; PORT_A="$(free_port)"; PORT_G="$(free_port)"
URL_B="http://127.0.0.1:$PORT_B/mcp"; URL_A="http://127.0.0.1:$PORT_A/mcp"; URL_G="http://127.0.0.1:$PORT_G/mcp"

say "the authorization step: Alice's root grant, held by the gateway"
"$BATON" secret new "$WORK/alice.bearer" >/dev/null 2>&1
ALICE="$("$BATON" digest <"$WORK/alice.bearer")"
"$BATON" issue --key "$WORK/as.key" --issuer as --token "$ALICE" --subject user:alice@example.com \
    --holder gateway --audience "$URL_G" --scopes kb:read --tools research,lookup >/dev/null

say "MCP server B (Rust, rmcp + Baton's layer), server A (Python MCP SDK), the gateway"
"$SERVER_B" --listen "127.0.0.1:$PORT_B" --baton "http://$NODE1" --url "$URL_B" --audience "$URL_B" \
    >"$WORK/b.out" 2>"$WORK/b.err" &
PIDS+=("$!")
wait_for "$WORK/b.out" "server-b listening" "server B"
"$PYTHON" -u "$HERE/server_a.py" "$PORT_A" "$NODE1" "$WORK/server-a.key" "$URL_B" >"$WORK/a.out" 2>"$WORK/a.err" &
PIDS+=("$!")
wait_for "$WORK/a.err" "Uvicorn running" "server A"
"$PYTHON" -u "$HERE/gateway.py" "$PORT_G" "$NODE1" "$WORK/gateway.key" "$URL_A" >"$WORK/g.out" 2>"$WORK/g.err" &
PIDS+=("$!")
wait_for "$WORK/g.out" "gateway listening" "the gateway"
"$PYTHON" - "$PORT_G" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        break
    except OSError:
        time.sleep(0.1)
PY

say "the Python MCP SDK's client, through the gateway"
"$PYTHON" -u "$HERE/client.py" "$URL_G" "$NODE2" "$WORK/root.key" "$WORK/alice.bearer" | tee "$WORK/client.out"
cat "$WORK/g.out" "$WORK/a.out"
LEAF="$(sed -n 's/^leaf token //p' "$WORK/client.out")"

say "baton chain $LEAF (node 2)"
"$BATON" chain "$LEAF" --server "http://$NODE2"
