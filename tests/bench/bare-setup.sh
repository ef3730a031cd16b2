#!/usr/bin/env bash
# The bare script the role is measured against (make bench): what a hand-written deployment of the same chart,
# values and queue does, with no checks, no rollback and no idempotence.
#   bare-setup.sh RELEASE CHART VALUES_FILE CREDENTIALS_FILE   (HELM, KUBECTL, KUBECONFIG, CHART_VERSION from env)
set -euo pipefail
release="$1" chart="$2" values="$3" credentials="$4"
helm="${HELM:-helm}" kubectl="${KUBECTL:-kubectl}"
version=()
[[ -z "${CHART_VERSION:-}" ]] || version=(--version "$CHART_VERSION")

"$helm" upgrade --install "$release" "$chart" "${version[@]}" -n "$release" --create-namespace -f "$values" \
  --wait --timeout 10m >/dev/null
# shellcheck disable=SC2016  # expanded inside the pod
"$kubectl" -n "$release" exec "$release-master-0" -c redis -- bash -c \
  'REDISCLI_AUTH="$(< "$REDIS_PASSWORD_FILE")" redis-cli -e XGROUP CREATE raibid:jobs raibid-workers "\$" MKSTREAM' >/dev/null
password="$("$kubectl" -n "$release" get secret "$release" -o jsonpath='{.data.redis-password}' | base64 -d)"
umask 077
jq -n --arg host "$release-master.$release.svc.cluster.local" --arg password "$password" --arg ns "$release" \
  '{host: $host, port: 6379, password: $password, namespace: $ns, stream: "raibid:jobs", consumer_group: "raibid-workers"}' \
  >"$credentials"
