{{/*
Helpers of the raibid testbed stand-in for bitnami/redis. The names and labels follow the real
chart (bitnami common library conventions) so that the role sees the same objects.
*/}}

{{/* Chart name (nameOverride wins). */}}
{{- define "redis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: fullnameOverride, else the release name when it already contains the chart name
(release "raibid-redis" -> "raibid-redis"), else "<release>-redis". Same rule as Bitnami.
*/}}
{{- define "redis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "redis.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels (stable across upgrades). */}}
{{- define "redis.matchLabels" -}}
app.kubernetes.io/name: {{ include "redis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "redis.labels" -}}
{{ include "redis.matchLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image ref from an image values block: registry/repository:tag (global.imageRegistry wins). */}}
{{- define "redis.imageRef" -}}
{{- $img := .image -}}
{{- $registry := default $img.registry .global.imageRegistry -}}
{{- $ref := $img.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $ref $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (toString $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "redis.image" -}}
{{- include "redis.imageRef" (dict "image" .Values.image "global" (.Values.global | default dict)) -}}
{{- end -}}

{{- define "redis.metrics.image" -}}
{{- include "redis.imageRef" (dict "image" .Values.metrics.image "global" (.Values.global | default dict)) -}}
{{- end -}}

{{/* Name of the Secret holding the password: auth.existingSecret, else the release's own. */}}
{{- define "redis.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- tpl .Values.auth.existingSecret . -}}
{{- else -}}
{{- include "redis.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "redis.secretPasswordKey" -}}
{{- if and .Values.auth.existingSecret .Values.auth.existingSecretPasswordKey -}}
{{- .Values.auth.existingSecretPasswordKey -}}
{{- else -}}
redis-password
{{- end -}}
{{- end -}}

{{/*
The password the chart's own Secret carries: auth.password (or global.redis.password) when set;
otherwise the one already stored in the Secret (lookup, so upgrades keep it); otherwise a new
random 10-character alphanumeric one. Under `helm template` lookup returns nothing.
*/}}
{{- define "redis.password" -}}
{{- $given := coalesce ((.Values.global).redis).password .Values.auth.password "" -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "redis.fullname" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "redis-password") -}}
{{- index $existing.data "redis-password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 10 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Features of the real chart that this stand-in does not implement: fail clearly. */}}
{{- define "redis.validate" -}}
{{- if not (has .Values.architecture (list "standalone" "replication")) -}}
{{- fail (printf "architecture must be 'standalone' or 'replication', got %q" .Values.architecture) -}}
{{- end -}}
{{- if .Values.sentinel.enabled -}}
{{- if ne .Values.architecture "replication" -}}
{{- fail "sentinel.enabled=true needs architecture=replication" -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- fail "sentinel.enabled=true with tls.enabled=true is not implemented by the raibid testbed stand-in chart; use the real bitnami/redis chart for Sentinel over TLS" -}}
{{- end -}}
{{- if (.Values.sentinel.masterService).enabled -}}
{{- fail "sentinel.masterService.enabled=true is not implemented by the raibid testbed stand-in chart; ask the sentinels for the master (SENTINEL get-master-addr-by-name)" -}}
{{- end -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- fail "tls.enabled=true is not supported by the raibid testbed stand-in chart; use the real bitnami/redis chart for TLS" -}}
{{- end -}}
{{- if and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
{{- fail "metrics.serviceMonitor.enabled=true needs the ServiceMonitor CRD (monitoring.coreos.com/v1), which this cluster does not have" -}}
{{- end -}}
{{- end -}}

{{/*
The password computed once per render and remembered, so the Secret and the pod's checksum
annotation agree even when it is freshly generated.
*/}}
{{- define "redis.password.once" -}}
{{- if not (hasKey .Values.auth "_rendered") -}}
{{- $_ := set .Values.auth "_rendered" (include "redis.password" .) -}}
{{- end -}}
{{- .Values.auth._rendered -}}
{{- end -}}

{{/* Checksum that changes when the chart's own Secret's password changes. */}}
{{- define "redis.secretChecksum" -}}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) -}}
{{- include "redis.password.once" . | sha256sum -}}
{{- else -}}
{{- printf "%s/%s" (include "redis.secretName" .) (include "redis.secretPasswordKey" .) | sha256sum -}}
{{- end -}}
{{- end -}}
