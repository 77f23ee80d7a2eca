#!/usr/bin/env bash
# Runs one Baton node on a fresh machine: builds the release binary, creates a
# trust-root key in the data directory on first use (owner-readable only), and
# serves gRPC on 127.0.0.1:7700 with the embedded log — no Kafka needed.
# Plaintext on loopback, every local caller admin (--loopback-admin): a node
# for this machine's developer, not for a shared host or a pod.
# Extra arguments go to `baton serve` (e.g. --kafka-brokers HOST:PORT).
# BATON_DATA_DIR: the data directory (default baton-data/ in the checkout);
# BATON_BINARY: a baton binary to run instead of building one (the README
# test runs this script with the binary it built).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${BATON_DATA_DIR:-baton-data}"  # git-ignored in the checkout
BATON="${BATON_BINARY:-}"
unset BATON_BINARY  # not a variable of baton's own: it would refuse it
if [ -z "$BATON" ]; then
    if [ ! -x target/release/baton ]; then
        echo "building the release binary: the first build takes 5 to 10 minutes (later ones, seconds)" >&2
    fi
    cargo build --release --locked -p baton >&2
    BATON=target/release/baton
fi
mkdir -p "$DATA"
if [ ! -f "$DATA/trust-root.key" ]; then
    "$BATON" keygen --out "$DATA/trust-root.key" >&2
fi
echo "trust root: $DATA/trust-root.key (public key $("$BATON" pubkey "$DATA/trust-root.key"))" >&2
echo "README's walkthrough, in another terminal here: export PATH=\"\$PWD/target/release:\$PATH\"; ln -s $DATA/trust-root.key root.key" >&2
exec "$BATON" serve --loopback-admin --data-dir "$DATA" --trust-root "$("$BATON" pubkey "$DATA/trust-root.key")" "$@"
