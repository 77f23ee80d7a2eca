#!/usr/bin/env bash
# A/B of two `baton` binaries on the hot path, in one time window: each
# serves a fresh embedded-log node on loopback, the same 3-hop chain is
# recorded on both, then ghz (4 connections, 32 callers) drives `Check` of
# the leaf and the empty RPC (gRPC health) on A and B alternately, ROUNDS
# times each, so that a busy machine's drift falls on both. Prints a table
# and B/A ratios of the medians. Usage:
#   benches/ab.sh OLD/baton NEW/baton [rounds, default 3]   (GHZ_SECONDS, default 5)
# Neither binary is built here: build each checkout (`cargo build --release
# -p baton`) first. Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-3}
GHZ="${BATON_CACHE:-$HOME/.cache/baton}/bin/ghz"
[ -x "$GHZ" ] || { echo "ghz not found at $GHZ: run benches/run.sh once (it installs it)" >&2; exit 1; }
GHZ_SECONDS="${GHZ_SECONDS:-5}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

"$B" keygen --out "$WORK/root.key" >/dev/null
ROOT="$("$B" pubkey "$WORK/root.key")"
start() { # name binary -> ADDR_<name>
    local name=$1 baton=$2
    BATON_LOG=warn "$baton" serve --listen 127.0.0.1:0 --data-dir "$WORK/$name" --trust-root "$ROOT" \
        --loopback-admin >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    for _ in $(seq 300); do grep -q "baton listening on" "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
    local addr
    addr="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' "$WORK/$name.out")"
    [ -n "$addr" ] || { echo "node $name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    printf -v "ADDR_$name" '%s' "$addr"
}
. benches/chain.sh
start a "$A"
start b "$B"
BATON_SERVER="http://$ADDR_a" record_chain "$A" "$WORK/root.key" "$WORK" ab
BATON_SERVER="http://$ADDR_b" record_chain "$B" "$WORK/root.key" "$WORK" ab
run() { # out call data address
    "$GHZ" --insecure --call "$2" -d "$3" --connections 4 -c 32 -z "${GHZ_SECONDS}s" \
        --duration-stop=ignore -O json "$4" >"$WORK/$1.json"
}
for round in $(seq "$ROUNDS"); do
    for node in a b; do
        address=ADDR_$node
        run "check-$node-$round" baton.v1.RevocationService/Check '{"token":{"jti":"ab-3"}}' "${!address}"
        run "health-$node-$round" grpc.health.v1.Health/Check '{"service":""}' "${!address}"
    done
done
python3 - "$WORK" "$ROUNDS" "$A" "$B" <<'EOF'
import json, statistics, sys
work, rounds, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def load(name):
    r = json.load(open(f"{work}/{name}.json"))
    return r["rps"], r["latencyDistribution"], r.get("statusCodeDistribution", {})
def p(dist, q):
    return next((d["latency"] / 1e6 for d in dist or [] if d["percentage"] == q), float("nan"))
print(f"A = {a}\nB = {b}\n")
print("| call | node | round | calls/s | p50 ms | p99 ms | codes |")
print("| --- | --- | --- | --- | --- | --- | --- |")
median = {}
for call in ("check", "health"):
    for node in ("a", "b"):
        rps = []
        for round in range(1, rounds + 1):
            r, dist, codes = load(f"{call}-{node}-{round}")
            rps.append(r)
            print(f"| {call} | {node.upper()} | {round} | {r:,.0f} | {p(dist, 50):.2f} | {p(dist, 99):.2f} | {codes} |")
        median[(call, node)] = statistics.median(rps)
print()
for call in ("check", "health"):
    print(f"{call}: median B/A throughput {median[(call, 'b')] / median[(call, 'a')]:.3f}")
print(f"check / health, A {median[('check', 'a')] / median[('health', 'a')]:.3f}, "
      f"B {median[('check', 'b')] / median[('health', 'b')]:.3f}")
EOF
