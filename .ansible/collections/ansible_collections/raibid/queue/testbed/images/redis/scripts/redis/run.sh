#!/usr/bin/env bash
# Default command of the raibid testbed Redis image (the bitnami/redis chart overrides it with its
# own start script). Starts redis-server in the foreground with the image's conventions:
# data in /data, config under /opt/bitnami/redis/etc, password from REDIS_PASSWORD or
# REDIS_PASSWORD_FILE, refusing to run without one unless ALLOW_EMPTY_PASSWORD=yes.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../libvalidations.sh
. /opt/bitnami/scripts/libvalidations.sh

if [[ -n "${REDIS_PASSWORD_FILE:-}" && -f "$REDIS_PASSWORD_FILE" ]]; then
    REDIS_PASSWORD="$(<"$REDIS_PASSWORD_FILE")"
fi

args=(--port "${REDIS_PORT_NUMBER:-${REDIS_PORT:-6379}}" --dir /data)
if [[ -f /opt/bitnami/redis/etc/redis.conf ]]; then
    args=(/opt/bitnami/redis/etc/redis.conf "${args[@]}")
fi
if [[ -n "${REDIS_PASSWORD:-}" ]]; then
    args+=(--requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD")
elif is_boolean_yes "${ALLOW_EMPTY_PASSWORD:-no}"; then
    args+=(--protected-mode no)
else
    echo "run.sh: set REDIS_PASSWORD or REDIS_PASSWORD_FILE (or ALLOW_EMPTY_PASSWORD=yes)" >&2
    exit 1
fi
exec redis-server "${args[@]}" "$@"
