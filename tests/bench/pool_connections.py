# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How many connections a worker process with N threads opens through one redis-py ConnectionPool, and what each
costs Redis. Starts its own redis-server (the role's settings), counts with CLIENT LIST from a separate connection.

  pool_connections.py [--threads 1,4,16,64] [--json FILE]

Each thread is a raibid worker: XREADGROUP ... BLOCK on the shared pool, XACK what it got. A blocking read holds
its connection for the whole block, so the pool opens one connection per thread that waits at the same time.
Also shown: a pool capped below the thread count (ConnectionPool fails, BlockingConnectionPool makes threads wait).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time

import redis

from queue_rate import LOCAL_CONFIG, local_redis, stop_process

STREAM, GROUP = 'raibid:jobs', 'raibid-workers'


def start_server():
    server, workdir, port, password = local_redis(LOCAL_CONFIG, prefix='pool-')
    return server, workdir, port, password, redis.Redis(port=port, password=password, client_name='bench-admin')


def worker(pool, name, stop, errors):
    client = redis.Redis(connection_pool=pool)
    while not stop.is_set():
        try:
            reply = client.xreadgroup(GROUP, name, {STREAM: '>'}, count=1, block=500)
            if reply:
                client.xack(STREAM, GROUP, reply[0][1][0][0])
        except redis.ConnectionError as e:
            errors.append(str(e))
            return


def run(port, password, admin, threads, pool_class=redis.ConnectionPool, max_connections=None):
    """Starts `threads` workers on one pool, feeds them jobs for 2 s, returns what CLIENT LIST and INFO show."""
    before = admin.info('memory')['used_memory']
    pool = pool_class(port=port, password=password, max_connections=max_connections,
                      **({'timeout': 5} if pool_class is redis.BlockingConnectionPool else {}))
    stop, errors = threading.Event(), []
    workers = [threading.Thread(target=worker, args=(pool, 'w%d' % i, stop, errors)) for i in range(threads)]
    for t in workers:
        t.start()
    producer = redis.Redis(port=port, password=password, client_name='bench-producer')
    for i in range(200):
        producer.xadd(STREAM, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'})
        time.sleep(0.01)
    # The pool's connections: every one but the admin's and the producer's (named).
    clients = [c for c in admin.client_list() if not c.get('name')]
    memory = admin.info('memory')['used_memory'] - before
    stop.set()
    for t in workers:
        t.join()
    producer.close()
    pool.disconnect()
    return {'threads': threads, 'pool': pool_class.__name__, 'max_connections': max_connections,
            'connections': len(clients), 'errors': len(errors), 'first_error': errors[0] if errors else '',
            'used_memory_delta_bytes': memory,
            # Redis' own count per connection (buffers included), while blocked in XREADGROUP.
            'tot_mem_per_connection': round(sum(int(c['tot-mem']) for c in clients) / max(len(clients), 1)),
            'maxclients': int(admin.config_get('maxclients')['maxclients']),
            'timeout': int(admin.config_get('timeout')['timeout'])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', default='1,4,16,64')
    parser.add_argument('--json')
    args = parser.parse_args()
    server, workdir, port, password, admin = start_server()
    results = []
    try:
        admin.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
        for n in [int(x) for x in args.threads.split(',')]:
            results.append(run(port, password, admin, n))
        results.append(run(port, password, admin, 8, max_connections=4))
        results.append(run(port, password, admin, 8, redis.BlockingConnectionPool, max_connections=4))
    finally:
        stop_process(server)
        shutil.rmtree(workdir, ignore_errors=True)
    for r in results:
        print(json.dumps(r))
    if args.json:
        with open(args.json, 'a') as f:
            for r in results:
                f.write(json.dumps(r) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
