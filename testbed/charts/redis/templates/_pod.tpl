{{/*
Pod parts shared by the master/replicas StatefulSets (statefulsets.yaml) and the Sentinel node
StatefulSet (sentinel-statefulset.yaml). Those taking a dict find the root context in "context".
*/}}

{{/*
Pod annotations: a changed config, script or password rolls the pods. dict: context, role ("master" or
"replica": whose podAnnotations; as in bitnami/redis, Sentinel node pods take replica.podAnnotations).
*/}}
{{- define "redis.podAnnotations" -}}
{{- $ := .context -}}
checksum/configmap: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
checksum/health: {{ include (print $.Template.BasePath "/health-configmap.yaml") $ | sha256sum }}
checksum/scripts: {{ include (print $.Template.BasePath "/scripts-configmap.yaml") $ | sha256sum }}
checksum/secret: {{ include "redis.secretChecksum" $ }}
{{- with (index $.Values .role).podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Container securityContext from master.containerSecurityContext (root context); empty when off. */}}
{{- define "redis.containerSecurityContext" -}}
{{- $sc := .Values.master.containerSecurityContext -}}
{{- if $sc.enabled -}}
securityContext: {{- omit $sc "enabled" | toYaml | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
Password env of a redis container: REDIS_PASSWORD_FILE (or REDIS_PASSWORD from the Secret), and the
REDIS_MASTER_PASSWORD* twin when "replica" is true. dict: context, replica.
*/}}
{{- define "redis.passwordEnv" -}}
{{- $ := .context -}}
{{- if $.Values.auth.enabled }}
{{- if $.Values.auth.usePasswordFiles }}
- name: REDIS_PASSWORD_FILE
  value: /opt/bitnami/redis/secrets/redis-password
{{- if .replica }}
- name: REDIS_MASTER_PASSWORD_FILE
  value: /opt/bitnami/redis/secrets/redis-password
{{- end }}
{{- else }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "redis.secretName" $ }}
      key: {{ include "redis.secretPasswordKey" $ }}
{{- if .replica }}
- name: REDIS_MASTER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "redis.secretName" $ }}
      key: {{ include "redis.secretPasswordKey" $ }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* TLS env of a redis container (root context): the bitnami/redis names, read by the scripts. */}}
{{- define "redis.tlsEnv" -}}
{{- $tls := include "redis.tlsFiles" . | fromYaml -}}
- name: REDIS_TLS_ENABLED
  value: {{ ternary "yes" "no" .Values.tls.enabled | quote }}
{{- if .Values.tls.enabled }}
- name: REDIS_TLS_CERT_FILE
  value: {{ $tls.cert }}
- name: REDIS_TLS_KEY_FILE
  value: {{ $tls.key }}
- name: REDIS_TLS_CA_FILE
  value: {{ $tls.ca }}
- name: REDIS_TLS_AUTH_CLIENTS
  value: {{ ternary "yes" "no" .Values.tls.authClients | quote }}
{{- end }}
{{- end -}}

{{/* The certificates, mounted in the redis and metrics containers (root context). */}}
{{- define "redis.tlsVolumeMount" -}}
{{- if .Values.tls.enabled }}
- name: redis-certificates
  mountPath: /opt/bitnami/redis/certs
  readOnly: true
{{- end }}
{{- end -}}

{{/* Liveness and readiness probes of the redis container (root context). */}}
{{- define "redis.redisProbes" -}}
{{- with .Values.master.livenessProbe }}
{{- if .enabled }}
livenessProbe:
  initialDelaySeconds: {{ .initialDelaySeconds }}
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ add1 .timeoutSeconds }}
  successThreshold: {{ .successThreshold }}
  failureThreshold: {{ .failureThreshold }}
  exec:
    command: [/bin/bash, -ec, {{ printf "/health/ping_liveness_local.sh %v" .timeoutSeconds | quote }}]
{{- end }}
{{- end }}
{{- with .Values.master.readinessProbe }}
{{- if .enabled }}
readinessProbe:
  initialDelaySeconds: {{ .initialDelaySeconds }}
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ add1 .timeoutSeconds }}
  successThreshold: {{ .successThreshold }}
  failureThreshold: {{ .failureThreshold }}
  exec:
    command: [/bin/bash, -ec, {{ printf "/health/ping_readiness_local.sh %v" .timeoutSeconds | quote }}]
{{- end }}
{{- end }}
{{- end -}}

{{/* volumeMounts of the redis container. dict: context, dataPath. */}}
{{- define "redis.redisVolumeMounts" -}}
{{- $ := .context -}}
- name: start-scripts
  mountPath: /opt/bitnami/scripts/start-scripts
- name: health
  mountPath: /health
{{- if and $.Values.auth.enabled $.Values.auth.usePasswordFiles }}
- name: redis-password
  mountPath: /opt/bitnami/redis/secrets/
{{- end }}
- name: redis-data
  mountPath: {{ .dataPath }}
- name: config
  mountPath: /opt/bitnami/redis/mounted-etc
- name: empty-dir
  mountPath: /opt/bitnami/redis/etc/
  subPath: app-conf-dir
- name: empty-dir
  mountPath: /tmp
  subPath: tmp-dir
{{- include "redis.tlsVolumeMount" $ }}
{{- end -}}

{{/* The redis_exporter sidecar. dict: context, redisPort. */}}
{{- define "redis.metricsContainer" -}}
{{- $ := .context -}}
- name: metrics
  image: {{ include "redis.metrics.image" $ }}
  imagePullPolicy: {{ $.Values.metrics.image.pullPolicy | quote }}
  {{- include "redis.containerSecurityContext" $ | nindent 2 }}
  # Same shape as the real chart: bash reads the password file, then runs the exporter.
  command:
    - /bin/bash
    - -ec
    - |
      {{- if and $.Values.auth.enabled $.Values.auth.usePasswordFiles }}
      export REDIS_PASSWORD="$(< $REDIS_PASSWORD_FILE)"
      {{- end }}
      exec redis_exporter{{- range $key, $value := $.Values.metrics.extraArgs }} --{{ $key }}={{ $value }}{{- end }}
  env:
    - name: REDIS_ALIAS
      value: {{ include "redis.fullname" $ }}
    - name: REDIS_ADDR
      value: {{ printf "%s://localhost:%v" (ternary "rediss" "redis" $.Values.tls.enabled) .redisPort | quote }}
    {{- if $.Values.tls.enabled }}
    {{- $tls := include "redis.tlsFiles" $ | fromYaml }}
    - name: REDIS_EXPORTER_TLS_CA_CERT_FILE
      value: {{ $tls.ca }}
    {{- if $.Values.tls.authClients }}
    - name: REDIS_EXPORTER_TLS_CLIENT_CERT_FILE
      value: {{ $tls.cert }}
    - name: REDIS_EXPORTER_TLS_CLIENT_KEY_FILE
      value: {{ $tls.key }}
    {{- end }}
    {{- end }}
    - name: REDIS_EXPORTER_WEB_LISTEN_ADDRESS
      value: {{ printf ":%v" $.Values.metrics.containerPorts.http | quote }}
    {{- if $.Values.auth.enabled }}
    - name: REDIS_USER
      value: default
    {{- if $.Values.auth.usePasswordFiles }}
    - name: REDIS_PASSWORD_FILE
      value: /secrets/redis-password
    {{- else }}
    - name: REDIS_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ include "redis.secretName" $ }}
          key: {{ include "redis.secretPasswordKey" $ }}
    {{- end }}
    {{- end }}
  ports:
    - name: metrics
      containerPort: {{ $.Values.metrics.containerPorts.http }}
  livenessProbe:
    tcpSocket:
      port: metrics
    initialDelaySeconds: 10
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 5
  readinessProbe:
    httpGet:
      path: /
      port: metrics
    initialDelaySeconds: 5
    periodSeconds: 10
    timeoutSeconds: 1
    failureThreshold: 3
  {{- with $.Values.metrics.resources }}
  resources: {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: empty-dir
      mountPath: /tmp
      subPath: app-tmp-dir
    {{- if and $.Values.auth.enabled $.Values.auth.usePasswordFiles }}
    - name: redis-password
      mountPath: /secrets/
    {{- end }}
    {{- include "redis.tlsVolumeMount" $ | nindent 4 }}
{{- end -}}

{{/* Pod volumes (redis-data as emptyDir when persistence is off). dict: context, persistence. */}}
{{- define "redis.podVolumes" -}}
{{- $ := .context -}}
{{- $fullname := include "redis.fullname" $ -}}
- name: start-scripts
  configMap:
    name: {{ printf "%s-scripts" $fullname }}
    defaultMode: 0755
- name: health
  configMap:
    name: {{ printf "%s-health" $fullname }}
    defaultMode: 0755
{{- if and $.Values.auth.enabled $.Values.auth.usePasswordFiles }}
- name: redis-password
  secret:
    secretName: {{ include "redis.secretName" $ }}
    items:
      - key: {{ include "redis.secretPasswordKey" $ }}
        path: redis-password
{{- end }}
- name: config
  configMap:
    name: {{ printf "%s-configuration" $fullname }}
- name: empty-dir
  emptyDir: {}
{{- if $.Values.tls.enabled }}
- name: redis-certificates
  secret:
    secretName: {{ (include "redis.tlsFiles" $ | fromYaml).secret }}
    defaultMode: 0440
{{- end }}
{{- if not .persistence.enabled }}
- name: redis-data
  emptyDir: {}
{{- end }}
{{- end -}}

{{/* StatefulSet spec fields for the data PVC. dict: context, values (master/replica block), component. */}}
{{- define "redis.dataVolumeClaim" -}}
{{- $ := .context -}}
{{- $v := .values -}}
{{- with $v.persistentVolumeClaimRetentionPolicy }}
{{- if .enabled }}
persistentVolumeClaimRetentionPolicy:
  whenDeleted: {{ .whenDeleted }}
  whenScaled: {{ .whenScaled }}
{{- end }}
{{- end }}
{{- if $v.persistence.enabled }}
volumeClaimTemplates:
  - apiVersion: v1
    kind: PersistentVolumeClaim
    metadata:
      name: redis-data
      labels: {{- include "redis.matchLabels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
    spec:
      accessModes: {{- toYaml $v.persistence.accessModes | nindent 8 }}
      resources:
        requests:
          storage: {{ $v.persistence.size | quote }}
      {{- $class := coalesce $v.persistence.storageClass ($.Values.global).storageClass "" }}
      {{- if $class }}
      {{- if eq "-" $class }}
      storageClassName: ""
      {{- else }}
      storageClassName: {{ $class | quote }}
      {{- end }}
      {{- end }}
{{- end }}
{{- end -}}
