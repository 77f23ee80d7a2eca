#!/usr/bin/env bash
# Runs every Baton test on a bare machine. It installs, once and into a cache,
# what the tests need besides cargo (buf for proto lint, a Python venv for the
# interop checks and the MCP SDKs, nginx, Caddy and Traefik, the Apache Kafka jars), then runs formatting and lint checks,
# the Rust tests (those that need Kafka start it through deploy/kafka/kafka.sh),
# the packaging checks (deploy/check.sh: helm, kubeconform, BuildKit's
# Dockerfile rules, compose-go), buf lint, and the Python interop checks. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${BATON_CACHE:-$HOME/.cache/baton}"
BUF_VERSION=v1.75.0
GRPCURL_VERSION=v1.9.4
# Caddy: a gateway the bridge tests put in front of a recording upstream.
CADDY_VERSION=v2.11.9
mkdir -p "$CACHE/bin"
# A run from a fresh clone gains nothing from incremental state and would keep
# gigabytes of it; a developer who wants it sets CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
log() { printf '\n== %s\n' "$*" >&2; }

log "tools"
command -v cargo >/dev/null || { echo "cargo is required: install Rust (https://rustup.rs)" >&2; exit 1; }
# librdkafka is built against the system OpenSSL (TLS and SASL/SCRAM to Kafka).
if ! pkg-config --exists openssl 2>/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q libssl-dev pkg-config >&2
    else
        echo "OpenSSL's development files are required: apt-get install libssl-dev pkg-config" >&2
        exit 1
    fi
fi
# Debian's nginx (nginx-light has auth_request): the gateway in the bridge tests.
if [ ! -x /usr/sbin/nginx ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q nginx-light >&2
    else
        echo "nginx is required for the gateway tests: apt-get install nginx-light" >&2
        exit 1
    fi
fi
if [ ! -x "$CACHE/bin/buf" ]; then
    command -v go >/dev/null || { echo "go is required to install buf" >&2; exit 1; }
    GOBIN="$CACHE/bin" go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
fi
if [ ! -x "$CACHE/bin/grpcurl" ]; then
    GOBIN="$CACHE/bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
fi
if [ ! -x "$CACHE/bin/caddy" ]; then
    GOBIN="$CACHE/bin" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
fi
# Traefik: the third gateway of the differential test (about 8 minutes to
# build on a bare machine, once).
if [ ! -x "$CACHE/bin/traefik" ]; then
    tests/install-traefik.sh "$CACHE/bin"
fi
# The interop venv; the tests check the same stamp (crates/testkit/src/tools.rs).
VENV="$CACHE/venv-interop"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s tests/interop/requirements.txt "$VENV/.requirements"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
    cp tests/interop/requirements.txt "$VENV/.requirements"
fi
# The Python SDK from this checkout (its stubs generated from proto/ by pip's
# build): the vectors check and the Python clients use it.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall ./crates/client-python
if [ -x deploy/kafka/kafka.sh ]; then
    deploy/kafka/kafka.sh fetch >&2
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "baton-core stays pure"
# The core decides every verdict; it must not grow I/O, async or wire dependencies.
if cargo tree -p baton-core -e normal --prefix none | grep -Ei '^(tokio|async-|futures|tonic|prost|rdkafka|sled)'; then
    echo "baton-core depends on a crate it must not (above)" >&2
    exit 1
fi

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT
# --no-fail-fast: one run reports every failing test binary, not just the first.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$RESULTS"
[ "${PIPESTATUS[0]}" -eq 0 ]

log "walkthrough (README)"
PATH="$CACHE/bin:$PATH" tests/walkthrough.sh target/debug | tee -a "$RESULTS"
[ "${PIPESTATUS[0]}" -eq 0 ]

log "deploy: Dockerfile, Helm chart, compose file, Grafana dashboard"
deploy/check.sh | tee -a "$RESULTS"
[ "${PIPESTATUS[0]}" -eq 0 ]

log "buf lint"
(cd proto && "$CACHE/bin/buf" lint)

log "interop: signing test vectors"
"$VENV/bin/python" tests/interop/check_vectors.py . | tee -a "$RESULTS"
[ "${PIPESTATUS[0]}" -eq 0 ]

# One closing line for the whole run, summed over every runner above.
awk '
    /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
    /^(vectors|walkthrough|deploy): [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
    END { printf "all tests: %d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }
' "$RESULTS"
