{{/*
Sentinel mode (architecture=replication, sentinel.enabled=true) of the stand-in: names and the
node scripts. Written for this project; only names and values keys follow bitnami/redis.
*/}}

{{- define "redis.sentinel.image" -}}
{{- include "redis.imageRef" (dict "image" .Values.sentinel.image "global" (.Values.global | default dict)) -}}
{{- end -}}

{{/* FQDN of the headless Service; node pods are <fullname>-node-<i>.<this>. */}}
{{- define "redis.headlessFQDN" -}}
{{- printf "%s-headless.%s.svc.%s" (include "redis.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* The sentinels require the Redis password too (auth.sentinel, bitnami's default). */}}
{{- define "redis.sentinel.auth" -}}
{{- if and .Values.auth.enabled .Values.auth.sentinel }}true{{ end -}}
{{- end -}}

{{/*
Data keys of the scripts ConfigMap in Sentinel mode:
- sentinel-common.sh (sourced): names, the password, and asking the running sentinels for the master;
- start-node.sh: redis as master when the sentinels say so (or, when none answers, on node 0),
  else as replica of that master; it announces its pod FQDN so everybody uses host names;
- start-sentinel.sh: writes sentinel.conf monitoring that same master, then runs the sentinel (with
  tls.enabled: TLS only on its port, and TLS to Redis and the other sentinels: tls-replication);
- prestop-redis.sh: a master being stopped asks another pod's sentinel to fail over first.
*/}}
{{- define "redis.sentinel.scripts" -}}
{{- $fullname := include "redis.fullname" . -}}
sentinel-common.sh: |
  # shellcheck shell=bash disable=SC2034
  # Sourced by the Sentinel-mode scripts.
  headless={{ include "redis.headlessFQDN" . | quote }}
  master_set={{ .Values.sentinel.masterSet | quote }}
  sentinel_port={{ .Values.sentinel.containerPorts.sentinel | quote }}
  redis_port={{ .Values.replica.containerPorts.redis | quote }}
  my_host="$(hostname).$headless"
  first_host="{{ $fullname }}-node-0.$headless"
  REDIS_PASSWORD="${REDIS_PASSWORD:-}"
  if [[ -n "${REDIS_PASSWORD_FILE:-}" && -f "$REDIS_PASSWORD_FILE" ]]; then
      REDIS_PASSWORD="$(< "$REDIS_PASSWORD_FILE")"
  fi
  {{- include "redis.cli.tlsFunction" . | nindent 2 }}
  # TLS flags of redis-cli (sentinels and Redis share the certificates): from the REDIS_TLS_* env in
  # the redis container, the REDIS_SENTINEL_TLS_* env in the sentinel container; none without TLS.
  tls_flags REDIS_TLS
  if ((${#tls[@]} == 0)); then
      tls_flags REDIS_SENTINEL_TLS
  fi
  # redis-cli to a sentinel (the caller gives -h) or to the local redis; password in REDISCLI_AUTH.
  sentinel_cli() {
  {{- if include "redis.sentinel.auth" . }}
      REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 redis-cli -p "$sentinel_port" "${tls[@]}" "$@"
  {{- else }}
      env -u REDISCLI_AUTH timeout 5 redis-cli -p "$sentinel_port" "${tls[@]}" "$@"
  {{- end }}
  }
  redis_local() {
  {{- if .Values.auth.enabled }}
      REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 redis-cli -h localhost -p "$redis_port" "${tls[@]}" "$@"
  {{- else }}
      env -u REDISCLI_AUTH timeout 5 redis-cli -h localhost -p "$redis_port" "${tls[@]}" "$@"
  {{- end }}
  }
  # Addresses of all node pods (ready or not) behind the headless Service.
  node_ips() {
      { getent ahosts "$headless" || true; } | awk '{print $1}' | sort -u
  }
  # "<host> <port>" of the master in the newest configuration (highest config-epoch) that the
  # answering sentinels report; nothing when none answers.
  sentinel_master() {
      local ip
      node_ips | while read -r ip; do
          sentinel_cli -h "$ip" sentinel master "$master_set" </dev/null 2>/dev/null |
              awk 'NR % 2 {k = $0; next} {v[k] = $0}
                   END {if (v["ip"] != "" && v["port"] ~ /^[0-9]+$/) print v["config-epoch"] + 0, v["ip"], v["port"]}' || true
      done | sort -rn | awk 'NR == 1 {print $2, $3}'
  }
  # Waits (at most 60 s) until the cluster DNS itself (trailing dot: not /etc/hosts) resolves a name.
  wait_for_name() {
      local i
      for ((i = 0; i < 60; i++)); do
          getent hosts "$1." >/dev/null && return 0
          sleep 1
      done
      echo "DNS does not resolve $1 yet; going on" >&2
  }
  # A pod announces its name only once the DNS resolves it: a lookup before its record exists makes
  # the DNS cache answer "no such host" for up to its negative TTL (30 s), and a sentinel ignores
  # peers whose names it cannot resolve. So ask for it only after the few seconds its endpoint
  # usually takes, or once this pod's address is behind the headless Service (whose answer may be
  # cached, hence at most 5 tries).
  wait_for_own_name() {
      local i my_ip
      my_ip="$(hostname -i | awk '{print $1}')"
      sleep 3
      for ((i = 0; i < 5; i++)); do
          node_ips | grep -qxF "$my_ip" && break
          sleep 1
      done
      wait_for_name "$my_host"
      echo "DNS resolves $my_host (waited $((SECONDS))s)"
  }
  # The master to start with: the sentinels' answer, else node 0 (a new installation).
  current_master() {
      local answer
      answer="$(sentinel_master)"
      if [[ -n "$answer" ]]; then
          echo "$answer"
      else
          echo "$first_host $redis_port"
      fi
  }
start-node.sh: |
  #!/bin/bash
  set -euo pipefail
  # shellcheck source=sentinel-common.sh
  . /opt/bitnami/scripts/start-scripts/sentinel-common.sh
  etc=/opt/bitnami/redis/etc
  for f in redis.conf replica.conf; do
      [[ -f "$etc/$f" ]] || cp "/opt/bitnami/redis/mounted-etc/$f" "$etc/$f"
  done
  wait_for_own_name
  read -r master_host master_port <<< "$(current_master)"
  args=(--port "$redis_port" --replica-announce-ip "$my_host")
  if [[ "$master_host" == "$my_host" ]]; then
      echo "Starting as master: $my_host"
  else
      echo "Starting as replica of $master_host:$master_port"
      args+=(--replicaof "$master_host" "$master_port")
  fi
  {{- if .Values.auth.enabled }}
  args+=(--requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD")
  {{- else }}
  args+=(--protected-mode no)
  {{- end }}
  {{- if .Values.tls.enabled }}
  # TLS only on the Redis port; replication (to whichever node is master) over TLS too.
  {{- include "redis.tlsArgs" . | nindent 2 }}
  args+=(--tls-replication yes)
  {{- end }}
  args+=(--include "$etc/redis.conf" --include "$etc/replica.conf")
  {{- range .Values.replica.extraFlags }}
  args+=({{ . | quote }})
  {{- end }}
  exec redis-server "${args[@]}"
start-sentinel.sh: |
  #!/bin/bash
  set -euo pipefail
  # shellcheck source=sentinel-common.sh
  . /opt/bitnami/scripts/start-scripts/sentinel-common.sh
  conf=/opt/bitnami/redis-sentinel/etc/sentinel.conf
  wait_for_own_name
  read -r master_host master_port <<< "$(current_master)"
  # A sentinel refuses to start when the monitored host name does not resolve.
  wait_for_name "$master_host"
  echo "Monitoring $master_set at $master_host:$master_port"
  quote() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
  umask 077
  cat > "$conf" <<EOF
  {{- if .Values.tls.enabled }}
  port 0
  tls-port $REDIS_SENTINEL_TLS_PORT_NUMBER
  tls-cert-file $(quote "$REDIS_SENTINEL_TLS_CERT_FILE")
  tls-key-file $(quote "$REDIS_SENTINEL_TLS_KEY_FILE")
  tls-ca-cert-file $(quote "$REDIS_SENTINEL_TLS_CA_FILE")
  tls-auth-clients $REDIS_SENTINEL_TLS_AUTH_CLIENTS
  tls-replication yes
  {{- else }}
  port $sentinel_port
  {{- end }}
  dir /opt/bitnami/redis-sentinel/tmp
  sentinel resolve-hostnames yes
  sentinel announce-hostnames yes
  sentinel announce-ip $my_host
  sentinel monitor $master_set $master_host $master_port {{ .Values.sentinel.quorum }}
  sentinel down-after-milliseconds $master_set {{ .Values.sentinel.downAfterMilliseconds }}
  sentinel failover-timeout $master_set {{ .Values.sentinel.failoverTimeout }}
  sentinel parallel-syncs $master_set {{ .Values.sentinel.parallelSyncs }}
  EOF
  {{- if .Values.auth.enabled }}
  echo "sentinel auth-pass $master_set $(quote "$REDIS_PASSWORD")" >> "$conf"
  {{- end }}
  {{- if include "redis.sentinel.auth" . }}
  echo "requirepass $(quote "$REDIS_PASSWORD")" >> "$conf"
  {{- end }}
  # redis-sentinel: on PATH in the testbed image (a link to redis-server) and in Bitnami's sentinel image.
  exec redis-sentinel "$conf"
prestop-redis.sh: |
  #!/bin/bash
  set -euo pipefail
  # shellcheck source=sentinel-common.sh
  . /opt/bitnami/scripts/start-scripts/sentinel-common.sh
  # Only a master with connected replicas hands over; the sentinel of this pod is stopping too.
  info="$(redis_local info replication 2>/dev/null | tr -d '\r' || true)"
  grep -qx 'role:master' <<< "$info" || exit 0
  grep -q '^slave0:' <<< "$info" || exit 0
  my_ip="$(hostname -i | awk '{print $1}')"
  while read -r ip; do
      [[ "$ip" != "$my_ip" ]] || continue
      if [[ "$(sentinel_cli -h "$ip" sentinel failover "$master_set" </dev/null 2>/dev/null || true)" == OK ]]; then
          echo "Failover of $master_set asked of the sentinel at $ip"
          break
      fi
  done < <(node_ips)
  for _ in {1..20}; do
      [[ "$(redis_local role 2>/dev/null | head -n 1 || true)" == slave ]] && exit 0
      sleep 1
  done
{{- end -}}
