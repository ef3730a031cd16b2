# shellcheck shell=bash
# Run in the restore pod (tasks/restore.yml) on the new data volume at /data, which holds /data/restore.rdb.
# The chart's Redis runs with appendonly yes, and Redis 7 with appendonly yes loads only the AOF: an RDB file alone
# in /data is ignored and Redis starts empty (measured with 7.0.15). So a Redis of the same image loads the snapshot
# here with appendonly off, then CONFIG SET appendonly yes makes it write the AOF (appendonlydir/, its base file
# holding the whole dataset) by a rewrite; once the rewrite is done it shuts down, and the release's Redis starts
# from that AOF as after any restart.
set -euo pipefail
data=${DATA_DIR:-/data}
cd "$data"
if [[ -e appendonlydir ]]; then
  echo "$data/appendonlydir exists: this volume holds data already, nothing restored." >&2
  exit 1
fi
redis-check-rdb restore.rdb
sock=$data/.restore.sock
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$data" --dbfilename restore.rdb \
  --appendonly no --save "" --appenddirname appendonlydir --appendfilename appendonly.aof &
pid=$!
cli() { redis-cli -s "$sock" "$@"; }
for _ in $(seq 600); do
  [[ $(cli PING 2>/dev/null) == PONG ]] && break
  sleep 0.5
done
[[ $(cli PING) == PONG ]]
echo "Loaded: $(cli DBSIZE) keys."
[[ $(cli CONFIG SET appendonly yes) == OK ]]
for _ in $(seq 1200); do
  info=$(cli INFO persistence | tr -d '\r')
  if grep -qx 'aof_rewrite_in_progress:0' <<<"$info" && grep -qx 'aof_rewrite_scheduled:0' <<<"$info" \
     && grep -qx 'aof_last_bgrewrite_status:ok' <<<"$info" && [[ -e appendonlydir/appendonly.aof.manifest ]]; then
    break
  fi
  sleep 0.5
done
grep -qx 'aof_last_bgrewrite_status:ok' <<<"$info"
cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$pid" || true
rm -f -- restore.rdb "$sock"
echo "AOF written: $(tr "\n" " " < appendonlydir/appendonly.aof.manifest)"
