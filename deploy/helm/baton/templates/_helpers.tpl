{{/* Names. */}}
{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless Service: pod DNS names, and the metrics scrape target. */}}
{{- define "baton.headlessName" -}}
{{- printf "%s-headless" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node
{{- end -}}

{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" . }}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: baton
{{- end -}}

{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "baton.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "baton.tlsSecretName" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "baton.fullname" .)) -}}
{{- end -}}

{{- define "baton.clientCASecretName" -}}
{{- .Values.tls.clientCASecretName | default (printf "%s-client-ca" (include "baton.fullname" .)) -}}
{{- end -}}

{{/* Kafka bootstrap servers: a comma-separated string or a list. */}}
{{- define "baton.kafkaBrokers" -}}
{{- if kindIs "slice" .Values.kafka.brokers -}}
{{- join "," .Values.kafka.brokers -}}
{{- else -}}
{{- .Values.kafka.brokers | default "" -}}
{{- end -}}
{{- end -}}

{{/*
What the node would refuse at start, refused at render time instead, with
the fix in the message.
*/}}
{{- define "baton.validate" -}}
{{- if not .Values.trustRoots -}}
{{- fail "trustRoots: set at least one trust-root public key (64 hex digits): `baton keygen --out root.key && baton pubkey root.key`, then --set trustRoots[0]=KEY" -}}
{{- end -}}
{{- range $i, $root := .Values.trustRoots -}}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" (toString $root)) -}}
{{- fail (printf "trustRoots[%d]: expected a public key of 64 hex digits (baton pubkey KEYFILE), not a private key or a file name" $i) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "baton.kafkaBrokers" .)) -}}
{{- fail "replicaCount > 1 needs kafka.brokers: without Kafka a node keeps its log in its own volume, and other nodes cannot follow it" -}}
{{- end -}}
{{- if and (not .Values.tls.enabled) (not .Values.insecure) -}}
{{- fail "tls.enabled=false: a node refuses plaintext on the pod's address; enable TLS (tls.secretName, tls.clientCASecretName) or set insecure=true on a network only you can reach" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.tls.create (not (and .Values.tls.cert .Values.tls.key .Values.tls.clientCA)) -}}
{{- fail "tls.create=true needs tls.cert, tls.key and tls.clientCA (PEM)" -}}
{{- end -}}
{{- $protocol := .Values.kafka.securityProtocol | default "PLAINTEXT" -}}
{{- if not (has $protocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol: %q is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" $protocol) -}}
{{- end -}}
{{- if and (hasPrefix "SASL_" $protocol) (not (and .Values.kafka.sasl.mechanism .Values.kafka.sasl.username .Values.kafka.sasl.passwordSecret.name)) -}}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.passwordSecret.name" $protocol) -}}
{{- end -}}
{{- if and .Values.kafka.tls.secretName (not (hasSuffix "SSL" $protocol)) -}}
{{- fail "kafka.tls.secretName is set, but kafka.securityProtocol does not use TLS (SSL or SASL_SSL)" -}}
{{- end -}}
{{- if .Values.revocation.clientId -}}
{{- if not .Values.revocation.keySecret.name -}}
{{- fail "revocation.clientId needs revocation.keySecret.name (its signing key, from baton keygen)" -}}
{{- end -}}
{{- if not (has .Values.revocation.clientId (.Values.rules.revocation_delegates | default list)) -}}
{{- fail (printf "revocation.clientId %q must be listed in rules.revocation_delegates (the same list on every node)" .Values.revocation.clientId) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* One value in TOML: strings, booleans, integers, floats, lists, inline tables. */}}
{{- define "baton.toml.value" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- $v | toJson -}}
{{- else if kindIs "bool" $v -}}
{{- $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- if eq (float64 $v) (floor $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if kindIs "slice" $v -}}
[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "baton.toml.value" $e }}{{ end }}]
{{- else if kindIs "map" $v -}}
{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }},{{ end }} {{ $k | toJson }} = {{ include "baton.toml.value" (get $v $k) }}{{ end }} }
{{- else -}}
{{- fail (printf "cannot write %v (%s) in the TOML configuration" $v (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{/* The keys of a map as TOML lines. */}}
{{- define "baton.toml.table" -}}
{{- range $k, $v := . }}
{{ $k | toJson }} = {{ include "baton.toml.value" $v }}
{{- end -}}
{{- end -}}

{{/* The node's configuration file (the README's configuration table). */}}
{{- define "baton.config" -}}
# Rendered by the Helm chart from its values.
listen = "0.0.0.0:{{ .Values.ports.grpc }}"
metrics_listen = "0.0.0.0:{{ .Values.ports.metrics }}"
{{- if .Values.http.enabled }}
http_listen = "0.0.0.0:{{ .Values.http.port }}"
{{- end }}
data_dir = "/var/lib/baton"
trust_roots = {{ include "baton.toml.value" .Values.trustRoots }}
insecure = {{ and (not .Values.tls.enabled) .Values.insecure }}
{{- with .Values.depthMax }}
depth_max = {{ int . }}
{{- end }}

[kafka]
brokers = {{ include "baton.kafkaBrokers" . | toJson }}
topic = {{ .Values.kafka.topic | toJson }}
partitions = {{ int .Values.kafka.partitions }}
replication = {{ int .Values.kafka.replication }}
{{- with .Values.kafka.minInsyncReplicas }}
min_insync_replicas = {{ int . }}
{{- end }}
{{- with .Values.kafka.securityProtocol }}
security_protocol = {{ . | toJson }}
{{- end }}
{{- if .Values.kafka.tls.secretName }}
ssl_ca = "/etc/baton/kafka-tls/ca.crt"
{{- if .Values.kafka.tls.certKey }}
ssl_cert = "/etc/baton/kafka-tls/tls.crt"
ssl_key = "/etc/baton/kafka-tls/tls.key"
{{- end }}
{{- end }}
{{- if hasPrefix "SASL_" (.Values.kafka.securityProtocol | default "") }}
sasl_mechanism = {{ .Values.kafka.sasl.mechanism | toJson }}
sasl_username = {{ .Values.kafka.sasl.username | toJson }}
sasl_password_file = "/etc/baton/kafka-sasl/password"
{{- end }}
{{- if .Values.tls.enabled }}

[tls]
cert = "/etc/baton/tls/tls.crt"
key = "/etc/baton/tls/tls.key"
client_ca = ["/etc/baton/client-ca/ca.crt"]
poll_ms = {{ int .Values.tls.pollMs }}
{{- end }}
{{- with .Values.rules }}

[rules]
{{- include "baton.toml.table" . }}
{{- end }}
{{- with .Values.limits }}

[limits]
{{- include "baton.toml.table" . }}
{{- end }}
{{- if .Values.revocation.clientId }}

[revocation]
client_id = {{ .Values.revocation.clientId | toJson }}
key_file = "/run/baton/revocation/node.key"
{{- end }}
{{- range .Values.access }}

[[access]]
{{- include "baton.toml.table" . }}
{{- end }}
{{- range .Values.gatewayResources }}

[[resource]]
{{- include "baton.toml.table" . }}
{{- end }}
{{- range .Values.jwtIssuers }}

[[jwt_issuer]]
{{- include "baton.toml.table" . }}
{{- end }}
{{- end -}}

{{/*
A health probe: the kubelet's own gRPC probe on plaintext; with TLS, which
the kubelet's gRPC probe cannot speak, grpc_health_probe in the container.
*/}}
{{- define "baton.probe" -}}
{{- $root := .root -}}
{{- if $root.Values.tls.enabled }}
exec:
  command:
    - grpc_health_probe
    - -addr=127.0.0.1:{{ $root.Values.ports.grpc }}
    - -tls
    - -tls-no-verify
    - -connect-timeout=2s
    - -rpc-timeout=2s
{{- else }}
grpc:
  port: {{ $root.Values.ports.grpc }}
{{- end }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}
