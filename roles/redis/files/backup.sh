# shellcheck shell=bash
# The backup Job's script (templates/backup-cronjob.yml.j2): a consistent RDB snapshot of the master through the
# replication protocol, checked before it counts, then only the newest BACKUP_KEEP snapshots are kept.
set -euo pipefail
cd "${BACKUP_DIR:-/backups}"
tls=()
if [[ $REDIS_TLS == yes ]]; then tls=(--tls --cacert "${REDIS_CA:-/certs/ca.crt}"); fi
if [[ ${REDIS_TLS_CLIENT_CERT:-no} == yes ]]; then tls+=(--cert /certs/tls.crt --key /certs/tls.key); fi
name="dump-$(date -u +%Y%m%dT%H%M%SZ).rdb"
part=".$name.part"
trap 'rm -f -- "$part"' EXIT
redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" "${tls[@]}" --rdb "$part"
if ! redis-check-rdb "$part"; then
  echo "The snapshot failed redis-check-rdb: deleted, the older snapshots are kept." >&2
  exit 1
fi
mv -- "$part" "$name"
echo "Saved $name ($(stat -c %s "$name") bytes)."
# The names sort by time: delete all but the newest BACKUP_KEEP.
shopt -s nullglob
snapshots=(dump-*.rdb)
old=$(( ${#snapshots[@]} - BACKUP_KEEP ))
if (( old > 0 )); then
  rm -v -- "${snapshots[@]:0:old}"
fi
