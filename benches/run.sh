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
# TLS (same chain, same load), as a ratio measured in the same run; then Check
# with metrics on against off (two fresh nodes, alternated); then the
# bridges next to empty handlers on the plaintext node: Envoy's ext_authz
# Check over gRPC (ghz, with a protoset made from Envoy's published protos)
# against gRPC health, and RFC 7662 introspection and forward-auth over HTTP
# (hey, the Go HTTP load generator) against the HTTP listener's /healthz.
# Then baton-bench-connections (idle TLS peers) and baton-bench-freshness
# (issue 20: the false-ACTIVE window under cuts, parked floods).
# Writes OUT/report.json, OUT/report.md, OUT/ghz.md, OUT/connections.md,
# OUT/freshness.md and OUT/micro.txt (default
# OUT: target/bench-report). Extra arguments go to baton-bench (e.g. --duration-s 5).
#
# `benches/run.sh --scale [--kafka] [ARGS]` runs only the scale run instead
# (opt-in, long, not in CI): ledgers of growing size (default 10k, 100k, 1M
# events; `--sizes`), each generated in process and written to a fresh log
# (the embedded log, or with --kafka a broker this script starts), replayed
# by a new projection verifying every event, then checked, snapshotted and
# restored. Writes OUT/scale.json, OUT/scale.md and OUT/scale.svg. ARGS go to
# baton-bench-scale (--help lists them).
#
# `benches/run.sh --sled [ARGS]` runs only baton-bench-sled (opt-in, not in
# CI): what sled charges per entry on layouts shaped like the projection's
# (`--layouts`, `--events`; default 100k events a layout). Writes
# OUT/sled.json and OUT/sled.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="target/bench-report"
mkdir -p "$OUT"

if [ "${1:-}" = "--sled" ]; then
    shift
    cargo build --release --locked -p baton-benches --bin baton-bench-sled >&2
    exec target/release/baton-bench-sled --out "$OUT" "$@"
fi

if [ "${1:-}" = "--scale" ]; then
    shift
    cargo build --release --locked -p baton-benches --bin baton-bench-scale >&2
    if [ "${1:-}" = "--kafka" ]; then
        shift
        KAFKA_DIR="$(mktemp -d)"
        trap 'deploy/kafka/kafka.sh stop --dir "$KAFKA_DIR" >&2 || true; rm -rf "$KAFKA_DIR"' EXIT
        BOOTSTRAP="$(deploy/kafka/kafka.sh start --dir "$KAFKA_DIR")"
        target/release/baton-bench-scale --out "$OUT" --kafka-brokers "$BOOTSTRAP" "$@"
        exit
    fi
    exec target/release/baton-bench-scale --out "$OUT" "$@"
fi

cargo build --release --locked -p baton -p baton-benches >&2
BATON=target/release/baton
CACHE="${BATON_CACHE:-$HOME/.cache/baton}"
GHZ_VERSION=v0.120.0  # pinned: the module proxy's "latest" is an older v0.93.0
if [ ! -x "$CACHE/bin/ghz" ]; then
    GOBIN="$CACHE/bin" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2
fi
GHZ="$CACHE/bin/ghz"
HEY_VERSION=v0.1.4
if [ ! -x "$CACHE/bin/hey" ]; then
    GOBIN="$CACHE/bin" go install "github.com/rakyll/hey@$HEY_VERSION" >&2
fi
HEY="$CACHE/bin/hey"
# Python with Envoy's protos (the interop venv tests/run.sh builds).
VENV="$CACHE/venv-interop"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s tests/interop/requirements.txt "$VENV/.requirements"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt >&2
    cp tests/interop/requirements.txt "$VENV/.requirements"
fi
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
    if [ "${1:-}" = "--embedded" ]; then
        shift
    elif [ $# -eq 0 ]; then
        set -- --kafka-brokers "$BOOTSTRAP" --kafka-topic "$TOPIC" --kafka-partitions 4
    fi
    BATON_LOG=warn "$BATON" serve --listen 127.0.0.1:0 --data-dir "$WORK/$name" --trust-root "$ROOT" --loopback-admin \
        "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    set -- "$name"
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 300); do grep -q "baton listening on" "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
    local addr
    addr="$(sed -n 's/^baton listening on \([^ ]*\).*/\1/p' "$WORK/$1.out")"
    [ -n "$addr" ] || { echo "node $1 did not start:" >&2; cat "$WORK/$1.err" >&2; exit 1; }
    printf -v "ADDR_$1" '%s' "$addr"
    printf -v "HTTP_$1" '%s' "$(sed -n 's/^baton http listening on \([^ ]*\).*/\1/p' "$WORK/$1.out")"
    printf -v "PID_$1" '%s' "$pid"
}
start_node a
start_node b

target/release/baton-bench --node-a "http://$ADDR_a" --node-b "http://$ADDR_b" \
    --trust-root-key "$WORK/root.key" --kafka-brokers "$BOOTSTRAP" --topic "$TOPIC" --partitions 4 \
    --data-a "$WORK/a" --pid-a "$PID_a" --pid-b "$PID_b" --out "$OUT" "$@"

# ghz against node A: Check of a real chain's leaf, and the empty RPC (health).
. benches/chain.sh
ghz_chain() { # BATON_SERVER (and BATON_CA...) name the node
    record_chain "$BATON" "$WORK/root.key" "$WORK" ghz "$BEARER_REF"
}
BEARER="bench-bearer-TEST-ONLY-$(date +%s%N)"
BEARER_REF="$(printf '%s' "$BEARER" | "$BATON" digest)"
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
SECRET_HASH="$("$BATON" secret new "$WORK/bench.secret" 2>/dev/null)"
printf '[[resource]]\nurl = "https://mcp.bench/mcp"\naudience = "https://ghz-mcp.example/"\nscopes = ["repo:read"]\n[[access]]\nprincipal = "bench-rs"\nsecret_hash = "%s"\nroles = ["checker"]\n' \
    "$SECRET_HASH" >"$WORK/bridges.toml"
start_node p --config "$WORK/bridges.toml" --http-listen 127.0.0.1:0
start_node t --config "$WORK/access.toml" --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key" \
    --tls-client-ca "$WORK/pki/ca.pem"
BATON_SERVER="http://$ADDR_p" ghz_chain
BATON_SERVER="https://$ADDR_t" BATON_CA="$WORK/pki/ca.pem" BATON_CERT="$WORK/pki/admin.pem" \
    BATON_CERT_KEY="$WORK/pki/admin.key" ghz_chain
ghz_run check-plaintext baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_p"
ghz_run check-mtls baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_t" \
    --cacert "$WORK/pki/ca.pem" --cert "$WORK/pki/checker.pem" --key "$WORK/pki/checker.key"
# Metrics on and off: two fresh embedded-log nodes that differ only in
# --metrics-listen (on: every call is counted and timed), same chain, same
# load, alternated twice.
start_node mon --metrics-listen 127.0.0.1:0
start_node moff --embedded
BATON_SERVER="http://$ADDR_mon" ghz_chain
BATON_SERVER="http://$ADDR_moff" ghz_chain
for round in 1 2; do
    ghz_run "check-metrics-off-$round" baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_moff"
    ghz_run "check-metrics-on-$round" baton.v1.RevocationService/Check '{"token":{"jti":"ghz-3"}}' "$ADDR_mon"
done
# The bridges on node P, each next to an empty handler on the same listener.
"$VENV/bin/python" tests/interop/envoy_protoset.py "$WORK/envoy.protoset"
EXT_AUTHZ="$(printf '{"attributes":{"request":{"http":{"method":"POST","scheme":"https","host":"mcp.bench","path":"/mcp","headers":{"authorization":"Bearer %s","mcp-method":"tools/call","mcp-name":"github/search","mcp-protocol-version":"2026-07-28"}}}}}' "$BEARER")"
ghz_run health-p grpc.health.v1.Health/Check '{"service":""}' "$ADDR_p"
ghz_run ext-authz envoy.service.auth.v3.Authorization/Check "$EXT_AUTHZ" "$ADDR_p" \
    --insecure --protoset "$WORK/envoy.protoset"
hey_run() { # name url [hey args]
    local name=$1 url=$2; shift 2
    "$HEY" -z "${GHZ_SECONDS}s" -c 32 "$@" "$url" >"$OUT/hey-$name.txt"
}
hey_run healthz "http://$HTTP_p/healthz"
# (hey's -a sends no header at v0.1.4: the Basic header is spelled out.)
BASIC="$(printf 'bench-rs:%s' "$(cat "$WORK/bench.secret")" | base64 -w0)"
hey_run introspect "http://$HTTP_p/oauth2/introspect" -m POST -H "Authorization: Basic $BASIC" \
    -T application/x-www-form-urlencoded -d "token=$BEARER"
hey_run forward-auth "http://$HTTP_p/authz" -H "Authorization: Bearer $BEARER" -H "X-Forwarded-Proto: https" \
    -H "X-Forwarded-Host: mcp.bench" -H "X-Original-URI: /mcp" -H "X-Original-Method: POST" \
    -H "Mcp-Method: tools/call" -H "Mcp-Name: github/search" -H "MCP-Protocol-Version: 2026-07-28"
# Every bridge call measured must be an allow, or the figures measure
# refusals: ghz counts an in-band denial as an OK call, so one sample call
# is checked to be an allow; hey's status codes are checked below.
"$VENV/bin/python" - "$ADDR_p" "$BEARER" <<'PY'
import sys
import grpc
from envoy.service.auth.v3 import attribute_context_pb2 as ac, external_auth_pb2 as ea, external_auth_pb2_grpc as ea_grpc
address, bearer = sys.argv[1:3]
http = ac.AttributeContext.HttpRequest(method="POST", scheme="https", host="mcp.bench", path="/mcp", headers={
    "authorization": f"Bearer {bearer}", "mcp-method": "tools/call", "mcp-name": "github/search",
    "mcp-protocol-version": "2026-07-28"})
with grpc.insecure_channel(address) as channel:
    answer = ea_grpc.AuthorizationStub(channel).Check(ea.CheckRequest(
        attributes=ac.AttributeContext(request=ac.AttributeContext.Request(http=http))), timeout=30)
if answer.status.code != 0 or answer.WhichOneof("http_response") != "ok_response":
    sys.exit(f"the benchmarked ext_authz request is not an allow: {answer}")
PY
python3 - "$OUT" <<'PY' | tee "$OUT/ghz.md"
import json, re, sys
out = sys.argv[1]
rows = {}
for name in ("health", "check", "check-plaintext", "check-mtls", "health-p", "ext-authz",
             "check-metrics-off-1", "check-metrics-on-1", "check-metrics-off-2", "check-metrics-on-2"):
    r = json.load(open(f"{out}/ghz-{name}.json"))
    p = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"]}
    rows[name] = (r["rps"], p[50], p[99], r["statusCodeDistribution"])
for name in ("healthz", "introspect", "forward-auth"):
    text = open(f"{out}/hey-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    pct = {int(m.group(1)): float(m.group(2)) * 1000 for m in re.finditer(r"\s(\d+)%+ in ([0-9.]+) secs", text)}
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
    rows[name] = (rps, pct[50], pct[99], codes)
    if set(codes) != {"200"}:
        sys.exit(f"{name}: not every answer was a 200: {codes}")
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
print(f"\nmTLS / plaintext Check throughput: {rows['check-mtls'][0] / rows['check-plaintext'][0]:.2f}\n")
table("ghz, two fresh embedded-log nodes, metrics on and off, alternated (4 connections, 32 callers)",
      (("check-metrics-off-1", "Check, metrics off (1)"), ("check-metrics-on-1", "Check, metrics on (1)"),
       ("check-metrics-off-2", "Check, metrics off (2)"), ("check-metrics-on-2", "Check, metrics on (2)")))
on = rows["check-metrics-on-1"][0] + rows["check-metrics-on-2"][0]
off = rows["check-metrics-off-1"][0] + rows["check-metrics-off-2"][0]
print(f"\nmetrics on / off Check throughput: {on / off:.2f} (target >= 0.95)\n")
table("the bridges, node P (ghz: 4 connections, 32 callers; hey: 32 workers)",
      (("ext-authz", "ext_authz Check over gRPC (allow, 4-hop chain)"), ("health-p", "gRPC health (empty RPC)"),
       ("introspect", "RFC 7662 introspection over HTTP (Basic client)"),
       ("forward-auth", "forward-auth over HTTP (allow)"), ("healthz", "HTTP /healthz (empty handler)")))
print(f"\next_authz / empty RPC throughput: {rows['ext-authz'][0] / rows['health-p'][0]:.2f}")
print(f"introspection / empty HTTP handler throughput: {rows['introspect'][0] / rows['healthz'][0]:.2f}")
print(f"forward-auth / empty HTTP handler throughput: {rows['forward-auth'][0] / rows['healthz'][0]:.2f}")
PY

# Micro-benchmarks, with the nodes and Kafka stopped so they have the machine.
cleanup
trap - EXIT
# A checker's fresh-connection call with 1,100 idle anonymous TLS peers
# connected, against the same call with nothing else connected (issue 19).
target/release/baton-bench-connections --baton "$BATON" | tee "$OUT/connections.md"
# Freshness (issue 20), on a Kafka of its own with a detour node B reaches it
# through: the false-ACTIVE window while B is cut, stalled and healed, against
# the bound; revocation latency with and without 10,000 parked records.
target/release/baton-bench-freshness --baton "$BATON" | tee "$OUT/freshness.md"
rm -rf target/criterion  # no comparisons with earlier runs in the output
cargo bench --locked -p baton-benches --bench micro 2>&1 | grep -E '^[a-z_/0-9]+ *$|time:|thrpt:' | tee "$OUT/micro.txt"
echo "wrote $OUT/report.json, $OUT/report.md, $OUT/ghz.md, $OUT/connections.md, $OUT/freshness.md, $OUT/micro.txt" >&2
