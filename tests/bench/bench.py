# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench: the role beside a bare helm script, side by side in one run, reported as ratios.

On the test cluster (RAIBID_TEST_KUBECONFIG, else the local testbed, started if needed), with the same chart and
images, BENCH_RUNS times (default 3), alternating which goes first:
  bare       tests/bench/bare-setup.sh on a fresh namespace (helm --wait, XGROUP CREATE, credentials file)
  converge   the role in a site playbook on a fresh namespace
  re-run     the same playbook again (must report changed=0)
  50 hosts   the re-run with 50 inventory hosts instead of 1
and redis_job against a plain redis-py pipeline (10k and 100k jobs, time and peak memory, on a local redis-server).
Prints the medians and their ratios, and writes them to BENCH_JSON (default .venv/bench.json).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUNS = int(os.environ.get('BENCH_RUNS', '3'))
TARGETS = {'converge / bare': 1.25, 're-run / converge': 0.30, '50 hosts / 1 host': 1.10}


def say(message):
    print('[bench %s] %s' % (time.strftime('%H:%M:%S'), message), flush=True)


def run(argv, env, timeout=1200):
    began = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        sys.exit('%s failed (%d):\n%s\n%s' % (' '.join(map(str, argv)), proc.returncode, proc.stdout[-4000:],
                                              proc.stderr[-2000:]))
    return time.monotonic() - began, proc.stdout


def kubeconfig():
    given = os.environ.get('RAIBID_TEST_KUBECONFIG')
    if given:
        return given
    say('starting the local testbed')
    proc = subprocess.run(['bash', str(REPO / 'testbed/testbed.sh'), 'up'], stdout=subprocess.PIPE, text=True,
                          check=True)
    return proc.stdout.strip().splitlines()[-1]


def main(work):
    config = kubeconfig()
    env = dict(os.environ, RAIBID_TEST_KUBECONFIG=config, KUBECONFIG=config, ANSIBLE_NOCOLOR='1')
    cluster_vars = work / 'cluster-vars.yml'
    run([BIN / 'ansible-playbook', REPO / 'testbed/ansible/cluster-vars.yml',
         '-e', 'raibid_cluster_vars_file=%s' % cluster_vars], env)
    settings = yaml.safe_load(cluster_vars.read_text())
    chart = settings.get('raibid_redis_chart_ref') or 'oci://registry-1.docker.io/bitnamicharts/redis'
    env.update(HELM=settings['raibid_redis_helm_binary'], CHART_VERSION=str(settings.get('raibid_redis_chart_version',
                                                                                         '23.1.1') or ''))
    play = [{'name': 'A site playbook that sets up the queue', 'hosts': 'all', 'gather_facts': False,
             'roles': [{'role': 'raibid.queue.redis'}]}]
    (work / 'site.yml').write_text(yaml.safe_dump(play))
    for hosts in (1, 50):
        (work / ('hosts%d' % hosts)).write_text(''.join(
            'h%02d ansible_connection=local ansible_python_interpreter=%s\n' % (i, sys.executable)
            for i in range(1, hosts + 1)))

    def role(name, hosts=1):
        seconds, output = run([BIN / 'ansible-playbook', '-i', work / ('hosts%d' % hosts), work / 'site.yml',
                               '-e', '@%s' % cluster_vars, '-e', 'raibid_redis_release=%s' % name,
                               '-e', 'raibid_redis_namespace=%s' % name,
                               '-e', 'raibid_redis_credentials_path=%s' % (work / (name + '.json'))], env)
        return seconds, sum(int(n) for n in re.findall(r'changed=(\d+)', output))

    values = work / 'values.yaml'

    def bare(name):
        # The role's own values for this chart and these images, with the bare release's name.
        data = yaml.safe_load(values.read_text())
        data['fullnameOverride'] = name
        own = work / (name + '-values.yaml')
        own.write_text(yaml.safe_dump(data))
        own.chmod(0o600)
        seconds, dummy = run(['bash', REPO / 'tests/bench/bare-setup.sh', name, chart, own, work / (name + '.json')],
                             env)
        return seconds

    def delete(name):
        run(['kubectl', 'delete', 'namespace', name, '--wait=true', '--timeout=300s'], env)

    times = {'bare': [], 'converge': [], 're-run': [], '50 hosts': []}
    for i in range(RUNS):
        tag = uuid.uuid4().hex[:5]
        role_name, bare_name = 'bench-role-%s' % tag, 'bench-bare-%s' % tag
        if i == 0:
            say('run 1/%d: role converge first (the bare script takes its values)' % RUNS)
        for which in (['role', 'bare'] if i % 2 == 0 else ['bare', 'role']):
            if which == 'role':
                seconds, changed = role(role_name)
                times['converge'].append(seconds)
                say('converge %.1fs (changed=%d)' % (seconds, changed))
                seconds, changed = role(role_name)
                if changed:
                    sys.exit('the re-run reported changed=%d' % changed)
                times['re-run'].append(seconds)
                seconds, changed = role(role_name, hosts=50)
                times['50 hosts'].append(seconds)
                say('re-run %.1fs, with 50 hosts %.1fs (changed=0)' % (times['re-run'][-1], seconds))
                if not values.exists():
                    dummy, out = run([env['HELM'], 'get', 'values', role_name, '-n', role_name, '-o', 'yaml'], env)
                    values.write_text(out)
                    values.chmod(0o600)
            else:
                times['bare'].append(bare(bare_name))
                say('bare script %.1fs' % times['bare'][-1])
        delete(role_name)
        delete(bare_name)

    median = {key: statistics.median(value) for key, value in times.items()}
    ratios = {'converge / bare': median['converge'] / median['bare'],
              're-run / converge': median['re-run'] / median['converge'],
              '50 hosts / 1 host': median['50 hosts'] / median['re-run']}
    # redis_job beside a plain redis-py pipeline (tests/utils/bench_redis_job.py: its own redis-server).
    jobs = {}
    module = REPO / 'plugins/modules/redis_job.py'
    for count in (10000, 100000):
        say('redis_job with %d jobs (inline and from a jobs_file) beside a plain pipeline' % count)
        dummy, out = run([sys.executable, REPO / 'tests/utils/bench_redis_job.py', str(count), str(module),
                          'file:%s' % module], env)
        lines = re.findall(r'^(.*): \d+ jobs in ([\d.]+) s, peak (\d+) MB$', out, flags=re.M)
        (dummy, plain, plain_mb), (dummy, inline, inline_mb), (dummy, from_file, file_mb) = lines
        jobs[count] = {'pipeline s': float(plain), 'inline s': float(inline), 'jobs_file s': float(from_file),
                       'pipeline MB': int(plain_mb), 'inline MB': int(inline_mb), 'jobs_file MB': int(file_mb)}
    print()
    print('| measure | median (s) | runs |')
    print('| --- | --- | --- |')
    for key, value in times.items():
        print('| %s | %.1f | %s |' % (key, median[key], ', '.join('%.1f' % v for v in value)))
    print()
    print('| ratio | measured | target |')
    print('| --- | --- | --- |')
    for key, value in ratios.items():
        print('| %s | %.2fx | <= %.2fx |' % (key, value, TARGETS[key]))
    for count, result in jobs.items():
        for how in ('inline', 'jobs_file'):
            print('| redis_job (%s) rate / pipeline rate, %d jobs | %.2fx (peak %d MB / %d MB) | >= 0.50x |' % (
                how, count, result['pipeline s'] / result[how + ' s'], result[how + ' MB'], result['pipeline MB']))
    out = Path(os.environ.get('BENCH_JSON', REPO / '.venv/bench.json'))
    out.write_text(json.dumps({'runs': RUNS, 'seconds': times, 'median': median, 'ratios': ratios,
                               'redis_job': jobs}, indent=2))
    say('written to %s' % out)


if __name__ == '__main__':
    # The work directory holds the runs' credentials files: removed whatever happens.
    with tempfile.TemporaryDirectory(prefix='raibid-bench-') as tmp:
        main(Path(tmp))
