#!/usr/bin/env bash
# What a running release does when its raibid_redis_existing_secret is changed in place and nobody re-runs the role
# (docs/scaling.md, roles/redis/README.md): deploys release "rsecret" with the checkout's setup-redis.yml, changes
# the Secret, then prints every 2 s whether the pod's mounted password file, readiness, restarts and the new
# password have followed; then tears down with purge. On the cluster of RAIBID_TEST_KUBECONFIG.
#   RAIBID_TEST_KUBECONFIG=... bash tests/bench/secret_in_place.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$PWD/.venv/collections
ns=rsecret work="$(mktemp -d)"
k=(kubectl --kubeconfig "$RAIBID_TEST_KUBECONFIG" -n "$ns")
vars=(-e "raibid_redis_namespace=$ns" -e "raibid_redis_release=$ns" -e "raibid_redis_credentials_path=$work/creds.json")
trap 'ansible-playbook teardown-redis.yml "${vars[@]}" -e raibid_redis_purge=true >/dev/null; rm -rf "$work"' EXIT
first=$(head -c 18 /dev/urandom | base64 | tr -d '/+=') second=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
# Passwords go through files (mode 0600), never on a command line.
umask 077
mkdir "$work/first" "$work/second"
printf '%s' "$first" >"$work/first/redis-password"
printf '%s' "$second" >"$work/second/redis-password"
kubectl --kubeconfig "$RAIBID_TEST_KUBECONFIG" create namespace "$ns" >/dev/null
"${k[@]}" create secret generic external --from-file="$work/first/redis-password" >/dev/null
echo '{"raibid_redis_existing_secret": {"name": "external"}}' >"$work/vars.json"
ansible-playbook setup-redis.yml "${vars[@]}" -e "@$work/vars.json" >"$work/setup.log" || { tail -20 "$work/setup.log"; exit 1; }
pod="$ns-master-0"
ping() {  # AUTH with $1 (on stdin) from inside the container: PONG or the refusal
  printf '%s\n' "$1" | "${k[@]}" exec -i "$pod" -c redis -- bash -c \
    'IFS= read -r REDISCLI_AUTH; export REDISCLI_AUTH; redis-cli --no-auth-warning PING 2>&1' 2>&1 | head -1
}
echo "before: first password $(ping "$first")"
"${k[@]}" create secret generic external --from-file="$work/second/redis-password" --dry-run=client -o yaml |
  "${k[@]}" apply -f - >/dev/null
began=$(date +%s)
echo "Secret changed at $(date -u +%T); t = seconds since"
while (($(date +%s) - began <= ${1:-240})); do
  # shellcheck disable=SC2016  # expanded inside the pod
  file=$("${k[@]}" exec "$pod" -c redis -- bash -c 'cat "$REDIS_PASSWORD_FILE"' 2>/dev/null || echo '?')
  case "$file" in "$first") file=old ;; "$second") file=new ;; *) file='?' ;; esac
  state=$("${k[@]}" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[?(@.name=="redis")].restartCount}')
  echo "t=$(($(date +%s) - began)) file=$file ready,restarts=$state new=$(ping "$second") old=$(ping "$first")"
  sleep 2
done
