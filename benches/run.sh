#!/usr/bin/env bash
# The one command behind docs/benchmarks.md: builds release binaries, starts a
# real single-broker Kafka and two `baton serve` nodes on loopback, drives them
# with `baton-bench` (appends, checks at a fixed rate and at saturation,
# propagation A -> B, replay, disk, memory, and the baselines), then runs the
# criterion micro-benchmarks. Everything stops by itself. Beside the
# project's own generator, ghz (the Go gRPC load generator, a client we did not
# write) drives Check on a 3-hop chain's leaf and the gRPC health call on the
# same node, 4 connections and 32 callers each; then Check over mTLS against
# Check over plaintext, on two fresh embedded-log nodes that differ only in
# TLS (same chain, same load), as a ratio measured in the same run.
# Writes OUT/report.json, OUT/report.md, OUT/ghz.md and OUT/micro.txt (default
# OUT: target/bench-report). Extra arguments go to baton-bench (e.g. --duration-s 5).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="target/bench-report"
mkdir -p "$OUT"

cargo build --release --locked -p baton -p baton-benches >&2
BATON=target/release/baton
CACHE="${BATON_CACHE:-$HOME/.cache/baton}"
GHZ_VERSION=v0.120.0  # pinned: the module proxy's "latest" is an older v0.93.0
if [ ! -x "$CACHE/bin/ghz" ]; then
    GOBIN="$CACHE/bin" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2
fi
GHZ="$CACHE/bin/ghz"
GHZ_SECONDS="${GHZ_SECONDS:-10}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    deploy/kafka/kafka.sh stop --dir "$WORK/kafka" >&2 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

BOOTSTRAP="$(deploy/kafka/kafka.sh start --dir "$WORK/kafka")"
"$BATON" keygen --out "$WORK/root.key" >/dev/null
ROOT="$("$BATON" pubkey "$WORK/root.key")"
TOPIC="bench-$(date +%s)"

start_node() { # name [serve args] -> sets ADDR_<name>, PID_<name>
    local name=$1; shift
    [ $# -gt 0 ] || set -- --kafka-brokers "$BOOTSTRAP" --kafka-topic "$TOPIC" --kafka-partitions 4
    BATON_LOG=warn "$BATON" serve --listen 127.0.0.1:0 --data-dir "$WORK/$name" --trust-root "$ROOT" \
        "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    set -- "$name"
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 300); do grep -q "baton listening on" "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
    local addr
    addr="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' "$WORK/$1.out")"
    [ -n "$addr" ] || { echo "node $1 did not start:" >&2; cat "$WORK/$1.err" >&2; exit 1; }
    printf -v "ADDR_$1" '%s' "$addr"
    printf -v "PID_$1" '%s' "$pid"
}
start_node a
start_node b

target/release/baton-bench --node-a "http://$ADDR_a" --node-b "http://$ADDR_b" \
    --trust-root-key "$WORK/root.key" --kafka-brokers "$BOOTSTRAP" --topic "$TOPIC" --partitions 4 \
    --data-a "$WORK/a" --pid-a "$PID_a" --pid-b "$PID_b" --out "$OUT" "$@"

# ghz against node A: Check of a real chain's leaf, and the empty RPC (health).
ghz_chain() { # BATON_SERVER (and BATON_CA...) name the node
    for k in as gw mcp; do [ -f "$WORK/ghz-$k.key" ] || "$BATON" keygen --out "$WORK/ghz-$k.key" >/dev/null; done
    "$BATON" register --key "$WORK/root.key" --client-id ghz-as.example --kind authorization-server \
        --role delegating-layer --client-key "$WORK/ghz-as.key" --scopes repo:read --tools github/search >/dev/null
    for c in gw mcp; do
        "$BATON" register --key "$WORK/ghz-as.key" --registered-by ghz-as.example --client-id "ghz-$c" \
            --kind gateway --role delegating-layer --client-key "$WORK/ghz-$c.key" \
            --scopes repo:read --tools github/search >/dev/null
    done
    "$BATON" issue --key "$WORK/ghz-as.key" --issuer ghz-as.example --token jti:ghz-1 --subject user:ghz \
        --holder ghz-gw --audience https://ghz-gw.example/ --scopes repo:read --tools github/search >/dev/null
    "$BATON" narrow --key "$WORK/ghz-gw.key" --parent jti:ghz-1 --token jti:ghz-2 --performed-by ghz-gw \
        --holder ghz-mcp --audience https://ghz-mcp.example/ --scopes repo:read --tools github/search >/dev/null
    "$BATON" narrow --key "$WORK/ghz-mcp.key" --parent jti:ghz-2 --token jti:ghz-3 --performed-by ghz-mcp \
        --holder ghz-mcp --audience https://ghz-mcp.example/ --scopes repo:read --tools github/search >/dev/null
    "$BATON" check jti:ghz-3 >/dev/null
}
ghz_run() { # name call data [address [tls args]] (the method is found through server reflection)
    local name=$1 call=$2 data=$3 address=${4:-$ADDR_a}; shift 3; shift || true
    [ $# -gt 0 ] || set -- --insecure
    "$GHZ" "$@" --call "$call" -d "$data" --connections 4 -c 32 -z "${GHZ_SECONDS}s" \
        --duration-stop=ignore -O json "$address" >"$OUT/ghz-$name.json"
}
BATON_SERVER="http://$ADDR_a" ghz_chain
ghz_run health grpc.health.v1.Health/Check '{"service":""}'
ghz_run check baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}'

# Plaintext and mTLS, side by side: nodes P and T, embedded logs, same chain.
"$BATON" pki init "$WORK/pki" >/dev/null
"$BATON" pki issue --dir "$WORK/pki" --principal spiffe://bench/admin --name admin >/dev/null
"$BATON" pki issue --dir "$WORK/pki" --principal spiffe://bench/checker --name checker >/dev/null
printf '[[access]]\nprincipal = "spiffe://bench/admin"\nroles = ["admin"]\n[[access]]\nprincipal = "spiffe://bench/checker"\nroles = ["checker"]\n' >"$WORK/access.toml"
start_node p --config /dev/null
start_node t --config "$WORK/access.toml" --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key" \
    --tls-client-ca "$WORK/pki/ca.pem"
BATON_SERVER="http://$ADDR_p" ghz_chain
BATON_SERVER="https://$ADDR_t" BATON_CA="$WORK/pki/ca.pem" BATON_CERT="$WORK/pki/admin.pem" \
    BATON_CERT_KEY="$WORK/pki/admin.key" ghz_chain
ghz_run check-plaintext baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_p"
ghz_run check-mtls baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_t" \
    --cacert "$WORK/pki/ca.pem" --cert "$WORK/pki/checker.pem" --key "$WORK/pki/checker.key"
python3 - "$OUT" <<'PY' | tee "$OUT/ghz.md"
import json, sys
out = sys.argv[1]
rows = {}
for name in ("health", "check", "check-plaintext", "check-mtls"):
    r = json.load(open(f"{out}/ghz-{name}.json"))
    p = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"]}
    rows[name] = (r["rps"], p[50], p[99], r["statusCodeDistribution"])
def table(title, entries):
    print(f"| {title} | calls/s | p50 ms | p99 ms | codes |")
    print("| --- | --- | --- | --- | --- |")
    for name, label in entries:
        rps, p50, p99, codes = rows[name]
        print(f"| {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {codes} |")
table("ghz (4 connections, 32 callers)", (("check", "Check (3-hop leaf)"), ("health", "gRPC health (empty RPC)")))
print(f"\nCheck / empty RPC throughput: {rows['check'][0] / rows['health'][0]:.2f}\n")
table("ghz, two fresh embedded-log nodes (4 connections, 32 callers)",
      (("check-plaintext", "Check, plaintext"), ("check-mtls", "Check, mTLS (checker principal)")))
print(f"\nmTLS / plaintext Check throughput: {rows['check-mtls'][0] / rows['check-plaintext'][0]:.2f}")
PY

# Micro-benchmarks, with the nodes and Kafka stopped so they have the machine.
cleanup
trap - EXIT
rm -rf target/criterion  # no comparisons with earlier runs in the output
cargo bench --locked -p baton-benches --bench micro 2>&1 | grep -E '^[a-z_/0-9]+ *$|time:|thrpt:' | tee "$OUT/micro.txt"
echo "wrote $OUT/report.json, $OUT/report.md, $OUT/ghz.md, $OUT/micro.txt" >&2
