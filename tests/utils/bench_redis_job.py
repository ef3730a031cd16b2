# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time and peak memory of a batch of jobs: the redis_job module run directly vs a plain redis-py pipeline.

usage: python tests/utils/bench_redis_job.py [JOBS] [MODULE_FILE ...]
A MODULE_FILE prefixed with `file:` gets the jobs through its jobs_file option.
Starts its own redis-server on 127.0.0.1 (needs ANSIBLE_COLLECTIONS_PATH as `make` sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import redis

from harness import local_redis, stop_process

HERE = os.path.dirname(os.path.abspath(__file__))


def jobs(count):
    payload = {'repository': 'raibid/raibid-ci', 'ref': 'main'}
    return [dict(job_id='job-%d' % i, job_type='build', payload=dict(payload, attempt=i)) for i in range(count)]


WRAPPER = (
    'import resource, subprocess, sys\n'
    'proc = subprocess.run(sys.argv[1:])\n'
    'sys.stderr.write("\\nmaxrss=%d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n'
    'sys.exit(proc.returncode)\n'
)


def measure(argv, stdin=None):
    """(seconds, peak RSS in MB, stdout) of a child process, measured by a fresh wrapper process each time."""
    began = time.monotonic()
    # The module imports its module_utils from ansible_collections, found where make links the work tree.
    path = os.pathsep.join(filter(None, [os.environ.get('ANSIBLE_COLLECTIONS_PATH'), os.environ.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, '-c', WRAPPER] + argv, input=stdin, capture_output=True, text=True,
                          check=False, env=dict(os.environ, PYTHONPATH=path))
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    peak = int(proc.stderr.rsplit('maxrss=', 1)[1].split()[0])
    return elapsed, peak / 1024.0, proc.stdout


PLAIN = '''
import json, sys, redis
args = json.load(sys.stdin)
client = redis.Redis(host='127.0.0.1', port=args['port'], password=args['password'], decode_responses=True)
pipe = client.pipeline(transaction=False)
for job in args['jobs']:
    pipe.xadd('raibid:jobs', dict(job_id=job['job_id'], job_type=job['job_type'],
                                  payload=json.dumps(job['payload'], sort_keys=True, separators=(',', ':'))))
ids = pipe.execute()
print(len(ids))
'''


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    modules = sys.argv[2:] or [os.path.join(HERE, '..', '..', 'plugins', 'modules', 'redis_job.py')]
    server, workdir, port, password = local_redis(['save ""', 'appendonly no'])
    try:
        client = redis.Redis(host='127.0.0.1', port=port, password=password)
        batch = jobs(count)
        # One run each in a fresh process; the measurement includes starting Python and importing.
        client.delete('raibid:jobs')
        seconds, mb, dummy = measure([sys.executable, '-c', PLAIN],
                                     json.dumps(dict(port=port, password=password, jobs=batch)))
        print('plain redis-py pipeline: %d jobs in %.2f s, peak %.0f MB' % (count, seconds, mb))
        jobs_file = os.path.join(workdir, 'jobs.json')
        with open(jobs_file, 'w') as f:
            json.dump(batch, f)
        for module in modules:
            client.delete('raibid:jobs')
            args = dict(ANSIBLE_MODULE_ARGS=dict(login_host='127.0.0.1', login_port=port, login_password=password,
                                                 max_length=0, jobs=batch))
            if module.startswith('file:'):
                module = module[len('file:'):]
                args['ANSIBLE_MODULE_ARGS'].pop('jobs')
                args['ANSIBLE_MODULE_ARGS']['jobs_file'] = jobs_file
            path = os.path.join(workdir, 'args.json')
            with open(path, 'w') as f:
                json.dump(args, f)
            seconds, mb, out = measure([sys.executable, module, path])
            result = json.loads(out[out.index('{'):])
            assert len(result['entry_ids']) == count and client.xlen('raibid:jobs') == count, result.get('msg')
            print('%s: %d jobs in %.2f s, peak %.0f MB' % (module, count, seconds, mb))
    finally:
        stop_process(server)
        shutil.rmtree(workdir)


if __name__ == '__main__':
    main()
