#!/usr/bin/env bash
# The one command behind docs/benchmarks.md: builds release binaries, starts a
# real single-broker Kafka and two `baton serve` nodes on loopback, drives them
# with `baton-bench` (appends, checks at a fixed rate and at saturation,
# propagation A -> B, replay, disk, memory, and the baselines), then runs the
# criterion micro-benchmarks. Everything stops by itself.
# Writes OUT/report.json, OUT/report.md and OUT/micro.txt (default OUT:
# target/bench-report). Extra arguments go to baton-bench (e.g. --duration-s 5).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="target/bench-report"
mkdir -p "$OUT"

cargo build --release --locked -p baton -p baton-benches >&2
BATON=target/release/baton
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

start_node() { # name -> sets ADDR_<name>, PID_<name>
    BATON_LOG=warn "$BATON" serve --listen 127.0.0.1:0 --data-dir "$WORK/$1" --trust-root "$ROOT" \
        --kafka-brokers "$BOOTSTRAP" --kafka-topic "$TOPIC" --kafka-partitions 4 >"$WORK/$1.out" 2>"$WORK/$1.err" &
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

# Micro-benchmarks, with the nodes and Kafka stopped so they have the machine.
cleanup
trap - EXIT
rm -rf target/criterion  # no comparisons with earlier runs in the output
cargo bench --locked -p baton-benches --bench micro 2>&1 | grep -E '^[a-z_/0-9]+ *$|time:|thrpt:' | tee "$OUT/micro.txt"
echo "wrote $OUT/report.json, $OUT/report.md, $OUT/micro.txt" >&2
