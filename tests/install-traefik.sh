#!/usr/bin/env bash
# Builds Traefik into $1 (a directory; the binary is $1/traefik) from the Go
# module proxy. Traefik's go.mod has replace directives, so `go install
# module@version` refuses it: the module is downloaded and built in a copy.
# Used by tests/run.sh and by crates/testkit (tools::traefik), one pin here.
set -euo pipefail
VERSION=v3.6.4
BIN="$1"
mkdir -p "$BIN"
dir=$(go mod download -json "github.com/traefik/traefik/v3@$VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$dir/." "$work"
chmod -R u+w "$work"
(cd "$work" && go build -trimpath -o "$BIN/traefik.partial" ./cmd/traefik)
mv "$BIN/traefik.partial" "$BIN/traefik"
