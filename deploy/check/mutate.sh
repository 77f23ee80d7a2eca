#!/usr/bin/env bash
# Checks that deploy/check.sh catches what it is for: each mutation below
# breaks one thing in a temporary copy of deploy/ (and config.rs, which the
# configuration check reads), runs the copy's check.sh, and expects it to
# exit non-zero with a FAIL line naming the check that should catch it.
# Run deploy/check.sh once first (it installs the tools this reuses).
# Ends with `mutations: N passed, M failed` (passed: the mutation was caught).
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

# mutate NAME FILE OLD NEW EXPECTED_FAIL: replace OLD by NEW in FILE (it
# must occur), run check.sh, expect a `FAIL - ` line containing EXPECTED_FAIL.
mutate() {
    local name="$1" file="$2" old="$3" new="$4" expect="$5"
    local tree="$WORK/tree"
    rm -rf "$tree"
    mkdir -p "$tree/crates/cli/src"
    cp -r deploy "$tree/deploy"
    cp crates/cli/src/config.rs "$tree/crates/cli/src/config.rs"
    if ! OLD="$old" NEW="$new" python3 - "$tree/$file" <<'EOF'
import os, sys
path = sys.argv[1]
text = open(path).read()
old, new = os.environ["OLD"], os.environ["NEW"]
if old not in text:
    sys.exit(f"{path}: {old!r} not found: the mutation would change nothing")
open(path, "w").write(text.replace(old, new, 1))
EOF
    then
        echo "FAIL - mutation: $name (could not apply)"
        failed=$((failed + 1))
        return
    fi
    local rc=0
    "$tree/deploy/check.sh" >"$WORK/out" 2>/dev/null || rc=$?
    if [ "$rc" -ne 0 ] && grep -q "^FAIL - .*$expect" "$WORK/out" && grep -qE '^deploy: [0-9]+ passed, [1-9][0-9]* failed$' "$WORK/out"; then
        echo "ok - mutation: $name -> $(grep -m1 "^FAIL - .*$expect" "$WORK/out")"
        passed=$((passed + 1))
    else
        echo "FAIL - mutation: $name was not caught by '$expect' (exit $rc)"
        sed 's/^/    /' "$WORK/out"
        failed=$((failed + 1))
    fi
}

T=deploy/helm/baton/templates
mutate "misspelt StatefulSet field" $T/statefulset.yaml \
    "podManagementPolicy: Parallel" "podManagmentPolicy: Parallel" "kubeconform"
mutate "bad field in the native gRPC probe" $T/_helpers.tpl \
    "grpc:
  port:" "grpc:
  prot:" "insecure.yaml | kubeconform"
mutate "ServiceMonitor endpoint field" $T/servicemonitor.yaml \
    "      path: /metrics" "      metricsPath: /metrics" "production.yaml | kubeconform"
mutate "config key the node does not know" $T/_helpers.tpl \
    'metrics_listen = ' 'metric_listen = ' "has only keys the node knows"
mutate "config that is not TOML" $T/_helpers.tpl \
    'topic = {{ .Values.kafka.topic | toJson }}' 'topic = {{ .Values.kafka.topic }}' "has only keys the node knows"
mutate "NOTES.txt reads a value that does not exist" $T/NOTES.txt \
    '.svc:{{ .Values.ports.grpc }} ({{ if' '.svc:{{ .Values.port.grpc }} ({{ if' "NOTES.txt renders"
mutate "readOnlyRootFilesystem dropped" deploy/helm/baton/values.yaml \
    "readOnlyRootFilesystem: true" "readOnlyRootFilesystem: false" "production values render"
mutate "Dockerfile runs as root" deploy/docker/Dockerfile \
    "USER 10001:10001" "USER root" "non-root uid"
mutate "Dockerfile shell-form ENTRYPOINT" deploy/docker/Dockerfile \
    'ENTRYPOINT ["baton"]' 'ENTRYPOINT baton' "BuildKit checks"
mutate "Dockerfile unpinned base image" deploy/docker/Dockerfile \
    "FROM debian:bookworm-slim" "FROM debian" "pinned bases"
mutate "Dockerfile without HEALTHCHECK" deploy/docker/Dockerfile \
    "HEALTHCHECK --interval" "# HEALTHCHECK --interval" "HEALTHCHECK"
mutate "compose: misspelt service key" deploy/compose/compose.yaml \
    "  healthcheck:
    # SERVING" "  healthchek:
    # SERVING" "compose-go loads it"
mutate "compose: depends on a service that does not exist" deploy/compose/compose.yaml \
    "kafka-3: {condition: service_healthy}" "kafka-4: {condition: service_healthy}" "compose-go loads it"
mutate "compose: port published on every interface" deploy/compose/compose.yaml \
    "- 127.0.0.1:7701:7700" "- 7701:7700" "loopback ports"
mutate "dashboard: a metric the node does not export" deploy/grafana/baton.json \
    "baton_projector_lag_records{" "baton_projector_lag_record{" "only metrics the node exports"
mutate "dashboard: not JSON" deploy/grafana/baton.json \
    '"schemaVersion": 39,' '"schemaVersion": 39' "is JSON"

echo "mutations: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
