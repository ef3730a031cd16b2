# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job rate one Redis primary sustains for raibid's workload: XADD by producers, XREADGROUP + XACK by workers.

  queue_rate.py --local                          a redis-server started here with the role's settings (AOF
                                                 everysec, no RDB, maxmemory 384 MiB noeviction, a password)
  queue_rate.py --host H [--port P]              a running Redis; the password from $REDISCLI_AUTH (never argv)

Three phases on a fresh stream (deleted afterwards), each client a separate process:
  produce   --producers processes XADD --jobs jobs in all (--batch per round trip)
  consume   --workers processes drain them: XREADGROUP COUNT --batch, then one XACK for what they got
  mixed     producers and workers together for --seconds, producers holding back beyond --window unacknowledged
            jobs: the steady rate of whole jobs (XADD + XREADGROUP + XACK)

Per phase it prints jobs/s and the CPU Redis itself used (INFO used_cpu_user + used_cpu_sys): cores busy, and
microseconds of Redis CPU per job. When Redis was below its CPU limit the clients were the bottleneck; the
ceiling with Redis as the bottleneck is then about limit / (CPU per job), printed with --cpu-limit.
A job is raibid's shape: job_id, job_type, a ~100-byte JSON payload. Results also go to --json as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
import uuid

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'utils'))
from harness import local_redis, stop_process  # noqa: E402

PAYLOAD = json.dumps({'repo': 'raibid/raibid-ci', 'ref': 'refs/heads/main', 'commit': 'f' * 40, 'runner': 'k3s'})
GROUP = 'bench-workers'
# The role's defaults: maxmemory = 75 % of the 512Mi limit, AOF every second, no RDB snapshots, noeviction.
LOCAL_CONFIG = ['appendonly yes', 'appendfsync everysec', 'save ""', 'maxmemory 402653184',
                'maxmemory-policy noeviction']


def connect(args):
    return redis.Redis(host=args.host, port=args.port, password=os.environ.get('REDISCLI_AUTH') or None,
                       socket_timeout=30)


def produce(args, stream, count, counter, acked=None):
    """XADDs count jobs (None: until stopped); with acked, waits while more than --window jobs are unacknowledged,
    so that the mixed phase measures a steady state rather than a growing backlog."""
    client = connect(args)
    pipe = client.pipeline(transaction=False)
    done = 0
    while count is None or done < count:
        if acked is not None and counter.value - acked.value > args.window:
            time.sleep(0.001)
            continue
        n = args.batch if count is None else min(args.batch, count - done)
        for i in range(n):
            pipe.xadd(stream, {'job_id': 'job-%d-%d' % (os.getpid(), done + i), 'job_type': 'build',
                               'payload': PAYLOAD})
        pipe.execute()
        done += n
        with counter.get_lock():
            counter.value += n


def consume(args, stream, stop_when_empty, counter):
    client = connect(args)
    name = 'worker-%d' % os.getpid()
    while True:
        reply = client.xreadgroup(GROUP, name, {stream: '>'}, count=args.batch, block=200)
        if not reply:
            if stop_when_empty:
                return
            continue
        ids = [entry_id for entry_id, dummy in reply[0][1]]
        client.xack(stream, GROUP, *ids)
        with counter.get_lock():
            counter.value += len(ids)


def redis_cpu(client):
    info = client.info('cpu')
    return info['used_cpu_user'] + info['used_cpu_sys']


def phase(args, client, name, procs, counter, seconds=None, also=None):
    """Runs procs, returns the phase's figures (jobs counted by counter; also: jobs added meanwhile); with seconds,
    measures that long after a 1 s warm-up."""
    for p in procs:
        p.start()
    if seconds:
        time.sleep(1)
    began, cpu0, n0, a0 = time.monotonic(), redis_cpu(client), counter.value, also.value if also else 0
    if seconds:
        time.sleep(seconds)
    else:
        for p in procs:
            p.join()
    elapsed, cpu, n = time.monotonic() - began, redis_cpu(client) - cpu0, counter.value - n0
    added = (also.value - a0) if also else None
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join()
    result = {'phase': name, 'jobs': n, 'seconds': round(elapsed, 2), 'jobs_per_s': round(n / elapsed),
              'redis_cores': round(cpu / elapsed, 2), 'redis_us_per_job': round(cpu / max(n, 1) * 1e6, 1)}
    if also:
        result['added_per_s'] = round(added / elapsed)
    if args.cpu_limit:
        result['ceiling_jobs_per_s'] = round(args.cpu_limit / (cpu / max(n, 1)))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--local', action='store_true', help='start a local redis-server with the role settings')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=None)
    parser.add_argument('--producers', type=int, default=2)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--batch', type=int, default=1, help='jobs per round trip (XADD pipeline, XREADGROUP COUNT)')
    parser.add_argument('--jobs', type=int, default=20000, help='jobs of the produce and consume phases')
    parser.add_argument('--seconds', type=float, default=10, help='length of the mixed phase')
    parser.add_argument('--window', type=int, default=1000, help='most unacknowledged jobs in the mixed phase')
    parser.add_argument('--cpu-limit', type=float, default=0, help="Redis container's CPU limit in cores")
    parser.add_argument('--label', default='')
    parser.add_argument('--json', help='append the results to this file (one JSON object per line)')
    args = parser.parse_args()
    server = workdir = None
    if args.local:
        server, workdir, args.port, os.environ['REDISCLI_AUTH'] = local_redis(LOCAL_CONFIG, prefix='queue-rate-')
    args.port = args.port or 6379
    client = connect(args)
    stream = 'bench:%s' % uuid.uuid4().hex[:8]
    results = []
    try:
        client.xgroup_create(stream, GROUP, id='$', mkstream=True)
        counter = multiprocessing.Value('q', 0)
        per = args.jobs // args.producers
        results.append(phase(args, client, 'produce', [multiprocessing.Process(
            target=produce, args=(args, stream, per, counter)) for i in range(args.producers)], counter))
        # What a waiting job costs in memory (the whole stream, exactly: SAMPLES 0), against maxmemory.
        results[-1]['bytes_per_job'] = round(client.memory_usage(stream, samples=0) / client.xlen(stream))
        results[-1]['maxmemory'] = int(client.config_get('maxmemory')['maxmemory'])
        counter = multiprocessing.Value('q', 0)
        results.append(phase(args, client, 'consume', [multiprocessing.Process(
            target=consume, args=(args, stream, True, counter)) for i in range(args.workers)], counter))
        produced, acked = multiprocessing.Value('q', 0), multiprocessing.Value('q', 0)
        procs = [multiprocessing.Process(target=produce, args=(args, stream, None, produced, acked))
                 for i in range(args.producers)]
        procs += [multiprocessing.Process(target=consume, args=(args, stream, False, acked))
                  for i in range(args.workers)]
        mixed = phase(args, client, 'mixed', procs, acked, seconds=args.seconds, also=produced)
        mixed['backlog_at_end'] = client.xinfo_groups(stream)[0].get('lag')
        results.append(mixed)
        server_info = client.info('server')
    finally:
        client.delete(stream)
        if server:
            stop_process(server)
            shutil.rmtree(workdir, ignore_errors=True)
    head = {'label': args.label, 'target': 'local redis-server' if args.local else '%s:%d' % (args.host, args.port),
            'redis_version': server_info['redis_version'], 'producers': args.producers, 'workers': args.workers,
            'batch': args.batch, 'client_cpus': os.cpu_count(),
            # Other work on the machine competes with Redis and the clients for the same cores.
            'load_average_1m': round(os.getloadavg()[0], 2)}
    print(json.dumps(head))
    print('  a waiting job takes %d bytes: %s jobs fit in maxmemory' % (
        results[0]['bytes_per_job'], results[0]['maxmemory'] // results[0]['bytes_per_job']
        if results[0]['maxmemory'] else 'unlimited'))
    for r in results:
        print('  %-8s %7d jobs/s%s   Redis %.2f cores, %6.1f us CPU/job%s' % (
            r['phase'], r['jobs_per_s'],
            ' acked (%d added, backlog %s at the end)' % (r['added_per_s'], r['backlog_at_end'])
            if 'added_per_s' in r else '', r['redis_cores'], r['redis_us_per_job'],
            ('   ceiling at %.2g cores: %d jobs/s' % (args.cpu_limit, r['ceiling_jobs_per_s']))
            if args.cpu_limit else ''))
    if args.json:
        with open(args.json, 'a') as f:
            f.write(json.dumps(dict(head, results=results)) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
