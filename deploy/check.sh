#!/usr/bin/env bash
# Validates Baton's packaging (deploy/docker, deploy/helm, deploy/compose,
# deploy/grafana) with third-party tools, on a machine with no Docker engine
# and no network but the package registries. It installs, once and into the
# cache (pinned; skipped when present), what it needs:
#
#   helm         Go module proxy, helm.sh/helm/v3/cmd/helm
#   kubeconform  Go module proxy, github.com/yannh/kubeconform/cmd/kubeconform
#   baton-deploy-lint (deploy/check/main.go): BuildKit's Dockerfile checks
#                (what `docker build --check` runs) and compose-go's loader
#                (what `docker compose config` runs), as libraries
#   schemas      Kubernetes' JSON schemas from PyPI's kubernetes-validate
#                wheel, and the ServiceMonitor's from the prometheus-operator
#                Go module's CRD (deploy/check/schemas.py)
#
# Needs go (>= 1.26.8, for BuildKit) and python3 (>= 3.11, tomllib; with pip,
# or venv to get one). Each check prints `ok - NAME` or `FAIL - NAME` and the
# tool's output; the last line is `deploy: N passed, M failed`; exits
# non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${BATON_CACHE:-$HOME/.cache/baton}"
BIN="$CACHE/bin"
HELM_VERSION=v3.22.0
# Helm bakes the Kubernetes version it assumes into its binary (its Makefile
# passes client-go's; `go install` alone would leave 1.20).
HELM_K8S_MINOR=37
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VALIDATE_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: native
# gRPC probes) and the newest with schemas.
KUBE_VERSIONS=(1.27.0 1.37.0)
# A TEST-ONLY trust root for the compose file's interpolation.
TEST_ROOT=f7e89149a9664ece89eb9d4748d9f7bc5e9d7f676054a0f58dd494861735c218

mkdir -p "$BIN"
log() { printf '== %s\n' "$*" >&2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
summary() {
    echo "deploy: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
# check NAME COMMAND...: runs COMMAND, prints its output only when it fails.
check() {
    local name="$1"
    shift
    if "$@" >"$WORK/out" 2>&1; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "FAIL - $name"
        sed 's/^/    /' "$WORK/out"
        failed=$((failed + 1))
    fi
}
# An install that fails ends the run as one failed check.
install_failed() {
    echo "FAIL - install $1"
    sed 's/^/    /' "$WORK/install.log" 2>/dev/null || true
    failed=$((failed + 1))
    summary || exit 1
}

# ---------------------------------------------------------------- tools
command -v go >/dev/null || { echo "go is required (>= 1.26.8)" >"$WORK/install.log"; install_failed go; }
command -v python3 >/dev/null || { echo "python3 is required (>= 3.11)" >"$WORK/install.log"; install_failed python3; }

# Each tool is rebuilt only when its stamp (version, or the hash of its
# sources) changes.
stamped() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.stamp" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$BIN/.$1.stamp"; }

if ! stamped helm "$HELM_VERSION/$HELM_K8S_MINOR"; then
    log "installing helm $HELM_VERSION"
    GOBIN="$BIN" go install -trimpath -ldflags "-s -w \
        -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$WORK/install.log" 2>&1 || install_failed helm
    stamp helm "$HELM_VERSION/$HELM_K8S_MINOR"
fi
if ! stamped kubeconform "$KUBECONFORM_VERSION"; then
    log "installing kubeconform $KUBECONFORM_VERSION"
    GOBIN="$BIN" go install -trimpath -ldflags "-s -w" \
        "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >"$WORK/install.log" 2>&1 ||
        install_failed kubeconform
    stamp kubeconform "$KUBECONFORM_VERSION"
fi
LINT_STAMP="$(cat deploy/check/go.mod deploy/check/go.sum deploy/check/main.go | sha256sum | cut -c1-16)"
if ! stamped baton-deploy-lint "$LINT_STAMP"; then
    log "building baton-deploy-lint (BuildKit, compose-go)"
    (cd deploy/check && go build -trimpath -ldflags "-s -w" -o "$BIN/baton-deploy-lint" .) >"$WORK/install.log" 2>&1 ||
        install_failed baton-deploy-lint
    stamp baton-deploy-lint "$LINT_STAMP"
fi

SCHEMA_STAMP="kv$KUBERNETES_VALIDATE_VERSION-po$PROMETHEUS_OPERATOR_VERSION-$(sha256sum deploy/check/schemas.py | cut -c1-12)"
SCHEMAS="$CACHE/k8s-schemas/$SCHEMA_STAMP"
missing_schemas=0
for version in "${KUBE_VERSIONS[@]}"; do
    [ -f "$SCHEMAS/v$version/servicemonitor-monitoring-v1.json" ] || missing_schemas=1
done
# (Called on the left of ||, where set -e does not apply: every step checks.)
build_schemas() {
    local pip=(python3 -m pip) wheel operator version args=()
    # PyPI, with pip (or a venv's pip where Debian's python3 has none).
    if ! python3 -m pip --version >/dev/null 2>&1; then
        [ -x "$CACHE/venv-deploy/bin/pip" ] || python3 -m venv "$CACHE/venv-deploy" || return 1
        pip=("$CACHE/venv-deploy/bin/pip")
    fi
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$WORK/wheel" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" || return 1
    wheel="$(echo "$WORK"/wheel/kubernetes_validate-*.whl)"
    echo "$KUBERNETES_VALIDATE_SHA256  $wheel" | sha256sum -c --quiet - || return 1
    # The Go module proxy: prometheus-operator ships its CRDs as JSON too.
    (cd "$WORK" && go mod download -json \
        "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION") >"$WORK/operator.json" ||
        return 1
    operator="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["Dir"])' "$WORK/operator.json")" ||
        return 1
    for version in "${KUBE_VERSIONS[@]}"; do args+=(--version "$version"); done
    rm -rf "$SCHEMAS.tmp"
    python3 deploy/check/schemas.py --wheel "$wheel" --out "$SCHEMAS.tmp" "${args[@]}" \
        --crd "$operator/jsonnet/prometheus-operator/servicemonitors-crd.json" || return 1
    rm -rf "$SCHEMAS" && mv "$SCHEMAS.tmp" "$SCHEMAS"
}
if [ "$missing_schemas" = 1 ]; then
    log "building JSON schemas in $SCHEMAS"
    build_schemas >"$WORK/install.log" 2>&1 || install_failed "JSON schemas"
fi

HELM="$BIN/helm"
KUBECONFORM="$BIN/kubeconform"
LINT="$BIN/baton-deploy-lint"
# Helm keeps no state of ours outside this run.
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
CHART=deploy/helm/baton
VALUES=deploy/check/values

# ---------------------------------------------------------------- checks
log "helm chart"
check "helm lint $CHART (chart defaults)" "$HELM" lint "$CHART"
for values in minimal production insecure; do
    check "helm lint --strict $CHART -f $VALUES/$values.yaml" "$HELM" lint --strict "$CHART" -f "$VALUES/$values.yaml"
done

# Without a trust root the chart refuses to render, naming the fix.
refuses_without_trust_root() {
    if "$HELM" template baton "$CHART" >"$WORK/no-root.out" 2>&1 ||
        ! grep -q 'trustRoots: set at least one trust-root public key' "$WORK/no-root.out"; then
        cat "$WORK/no-root.out"
        return 1
    fi
}
check "helm template refuses chart defaults without trustRoots" refuses_without_trust_root

# helm template | kubeconform -strict, for each values file and Kubernetes version.
conforms() {
    local values="$1" version="$2" out="$WORK/$1-$2.yaml"
    "$HELM" template baton "$CHART" --namespace baton --kube-version "$version" \
        -f "$VALUES/$values.yaml" >"$out" || return 1
    "$KUBECONFORM" -strict -summary -kubernetes-version "$version" \
        -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        "$out" | tee "$out.summary" || return 1
    # Something was validated, and nothing skipped for want of a schema.
    grep -qE '^Summary: [1-9][0-9]* resources? found .* Invalid: 0, Errors: 0, Skipped: 0$' "$out.summary"
}
for values in minimal production insecure; do
    for version in "${KUBE_VERSIONS[@]}"; do
        check "helm template -f $values.yaml | kubeconform -strict (Kubernetes $version)" conforms "$values" "$version"
    done
done

# What the production values must have produced.
renders() {
    local out="$WORK/production-${KUBE_VERSIONS[0]}.yaml"
    local want
    for want in 'kind: ServiceMonitor' 'replicas: 3' '- -tls' 'cert = "/etc/baton/tls/tls.crt"' \
        'metrics_listen = "0.0.0.0:9464"' 'enableServiceLinks: false' 'readOnlyRootFilesystem: true' \
        'runAsNonRoot: true' 'failureThreshold: 360'; do
        grep -qF -- "$want" "$out" || { echo "missing from the rendered manifests: $want"; return 1; }
    done
    out="$WORK/insecure-${KUBE_VERSIONS[0]}.yaml"
    grep -q '^            grpc:$' "$out" || { echo "insecure.yaml: no native gRPC probe"; return 1; }
}
check "production values render TLS, ServiceMonitor, 3 replicas; plaintext uses native gRPC probes" renders
# NOTES.txt is rendered only at install; render it here as a template.
notes_render() {
    local chart="$WORK/notes-chart" values
    rm -rf "$chart" && cp -r "$CHART" "$chart"
    { echo '{{- define "baton.notes" -}}'; cat "$CHART/templates/NOTES.txt"; echo '{{- end -}}'
      echo 'notes: {{ include "baton.notes" . | toJson }}'; } >"$chart/templates/notes-as-yaml.yaml"
    rm "$chart/templates/NOTES.txt"
    for values in minimal production insecure; do
        "$HELM" template baton "$chart" -f "$VALUES/$values.yaml" --show-only templates/notes-as-yaml.yaml >"$WORK/notes.out" || return 1
        grep -q 'baton.*svc:7700' "$WORK/notes.out" || { cat "$WORK/notes.out"; return 1; }
    done
}
check "NOTES.txt renders with each values file" notes_render
for values in minimal production insecure; do
    check "rendered baton.toml ($values.yaml) has only keys the node knows" \
        python3 deploy/check/config_keys.py crates/cli/src/config.rs "$WORK/$values-${KUBE_VERSIONS[0]}.yaml"
done

log "Dockerfile"
check "Dockerfile: BuildKit checks (docker build --check rules)" "$LINT" dockerfile deploy/docker/Dockerfile
check "Dockerfile: non-root uid, HEALTHCHECK, EXPOSE 7700 9464, pinned bases" "$LINT" image-policy deploy/docker/Dockerfile

log "compose"
check "compose.yaml: compose-go loads it (docker compose config), healthchecks, loopback ports" \
    env BATON_TRUST_ROOT="$TEST_ROOT" "$LINT" compose deploy/compose/compose.yaml
refuses_without_root() {
    if env -u BATON_TRUST_ROOT "$LINT" compose deploy/compose/compose.yaml >"$WORK/compose.out" 2>&1 ||
        ! grep -q 'required variable BATON_TRUST_ROOT' "$WORK/compose.out"; then
        cat "$WORK/compose.out"
        return 1
    fi
}
check "compose.yaml refuses to load without BATON_TRUST_ROOT" refuses_without_root

log "Grafana dashboard"
check "baton.json is JSON" python3 -m json.tool deploy/grafana/baton.json /dev/null
check "baton.json queries only metrics the node exports, each on some panel" \
    python3 deploy/check/dashboard.py deploy/grafana/baton.json

summary
