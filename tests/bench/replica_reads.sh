#!/usr/bin/env bash
# What a read replica can and cannot serve for the queue (docs/scaling.md): a local primary and replica
# (redis-server, AOF on, no RDB), the queue's commands sent to the replica.   bash tests/bench/replica_reads.sh
set -euo pipefail
d="$(mktemp -d)" p1="${PORT:-16401}" p2=$((${PORT:-16401} + 1))
mkdir -p "$d/m" "$d/r"
trap 'redis-cli -p $p1 shutdown nosave >/dev/null 2>&1; redis-cli -p $p2 shutdown nosave >/dev/null 2>&1; rm -rf "$d"' EXIT
redis-server --port "$p1" --bind 127.0.0.1 --dir "$d/m" --appendonly yes --save '' --daemonize yes --logfile "$d/m/log"
redis-server --port "$p2" --bind 127.0.0.1 --dir "$d/r" --appendonly yes --save '' --daemonize yes --logfile "$d/r/log" \
  --replicaof 127.0.0.1 "$p1"
until redis-cli -p "$p2" INFO replication 2>/dev/null | grep -q master_link_status:up; do sleep 0.2; done
m=(redis-cli -p "$p1") r=(redis-cli -p "$p2")
"${m[@]}" XGROUP CREATE raibid:jobs raibid-workers '$' MKSTREAM >/dev/null
id=$("${m[@]}" XADD raibid:jobs '*' job_id j1 job_type build payload '{}')
echo "primary XADD $id, acknowledged by $("${m[@]}" WAIT 1 1000) replica"
echo "replica XREADGROUP: $("${r[@]}" XREADGROUP GROUP raibid-workers w1 COUNT 1 STREAMS raibid:jobs '>' 2>&1)"
echo "replica XACK:       $("${r[@]}" XACK raibid:jobs raibid-workers "$id" 2>&1)"
echo "replica XADD:       $("${r[@]}" XADD raibid:jobs '*' job_id j2 2>&1)"
echo "replica XRANGE:     $("${r[@]}" XRANGE raibid:jobs - + COUNT 1 | head -1)"
echo "replica XLEN:       $("${r[@]}" XLEN raibid:jobs)"
echo "replica XINFO GROUPS lag: $("${r[@]}" XINFO GROUPS raibid:jobs | sed -n '/^lag$/{n;p}')"
"${m[@]}" XREADGROUP GROUP raibid-workers w1 COUNT 1 STREAMS raibid:jobs '>' >/dev/null
"${m[@]}" WAIT 1 1000 >/dev/null
echo "replica XPENDING after the primary delivered it: $("${r[@]}" XPENDING raibid:jobs raibid-workers | head -1) pending"
