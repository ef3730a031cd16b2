# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README as a new user meets it, and the entry points of the installed collection.

- The README's first code block runs verbatim in a fresh copy of the checkout, with nothing activated and no
  cluster configured (so the deploy command brings up or finds the testbed), except its `make test` line: that
  is the command running these tests (CI runs it from a fresh clone).
- The "Try it" line the deployment prints is run as printed, and the job is read back independently.
- The design's own command, `ansible-playbook setup-redis.yml`, from the checkout, changes nothing on a re-run.
- The collection built into a tarball and installed into an empty collections path runs
  `raibid.queue.setup_redis` and `raibid.queue.teardown_redis` by FQCN, and without a cluster stops in preflight.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# A fresh virtualenv and a deployment in one fixture: more than the default 600 s on a busy machine.
pytestmark = pytest.mark.timeout(1800)


def bash_blocks(text):
    return [block.strip() for block in re.findall(r'^```bash\n(.*?)^```', text, flags=re.S | re.M)]


def changed_count(output):
    return sum(int(n) for n in re.findall(r'changed=(\d+)', output))


def user_env(home, **extra):
    """A new user's shell: no virtualenv on PATH, no Ansible or kube settings, an empty HOME; the caches of this
    machine stay shared (pip, Go, the testbed's build cache), so nothing is downloaded or built twice."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('ANSIBLE_', 'MOLECULE_', 'MAKE', 'MFLAGS', 'VIRTUAL_ENV', 'KUBECONFIG'))}
    env['PATH'] = os.pathsep.join(p for p in env['PATH'].split(os.pathsep) if Path(p) != VENV_BIN)
    real_home = Path(os.environ['HOME'])
    env.setdefault('RAIBID_CACHE', str(real_home / '.cache' / 'raibid'))
    env.setdefault('PIP_CACHE_DIR', str(real_home / '.cache' / 'pip'))
    go = shutil.which('go') or '/usr/local/go/bin/go'
    if Path(go).exists():
        for key in ('GOPATH', 'GOCACHE', 'GOMODCACHE'):
            env.setdefault(key, subprocess.run([go, 'env', key], capture_output=True, text=True, check=False).stdout.strip())
    env.update(HOME=str(home), ANSIBLE_NOCOLOR='1', **extra)
    home.mkdir(exist_ok=True)
    return env


def run(argv, env, cwd, timeout=1800, check=True):
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, '%s failed (%d):\n%s' % (argv, proc.returncode, output[-6000:])
    return proc.returncode, output


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """A fresh copy of the checkout: the files git tracks or would track, nothing built or installed."""
    clone = tmp_path_factory.mktemp('readme') / 'raibid-queue'
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split('\0')
    for name in filter(None, files):
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    return clone


@pytest.fixture(scope='module')
def deployed(checkout, kubeconfig, kubectl):
    """The README's first block, run as written (its `make test` line aside), then purged at the end."""
    first = bash_blocks((checkout / 'README.md').read_text())[0]
    commands = [line for line in first.splitlines() if line.strip() and not line.lstrip().startswith('#')]
    assert len(commands) == 2 and commands[1].split('#')[0].strip() == 'make test', first
    home = checkout.parent / 'home'
    env = user_env(home, RAIBID_TEST_KUBECONFIG=kubeconfig)
    dummy, output = run(['bash', '-euo', 'pipefail', '-c', commands[0]], env, checkout)
    yield checkout, env, output
    run(['.venv/bin/ansible-playbook', 'teardown-redis.yml', '-e', 'raibid_redis_purge=true'], env, checkout)
    assert kubectl('get', 'namespace', 'raibid-redis', '--ignore-not-found', '-o', 'name').strip() == ''


def test_first_block_deploys_the_queue(deployed, kubectl):
    checkout, env, output = deployed
    credentials = Path(env['HOME']) / '.raibid' / 'redis-credentials.json'
    assert 'Credentials: %s (mode 0600)' % credentials in output or 'Credentials: ~/.raibid' in output, output[-3000:]
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    creds = json.loads(credentials.read_text())
    assert creds['host'] == 'raibid-redis-master.raibid-redis.svc.cluster.local' and creds['port'] == 6379
    secret = kubectl.json('-n', 'raibid-redis', 'get', 'secret', 'raibid-redis')
    assert base64.b64decode(secret['data']['redis-password']).decode() == creds['password']
    assert creds['password'] not in output

    # The printed one-liner enqueues a job and reads it back; a second client sees it in the stream.
    line = next(line for line in output.splitlines() if '"Try it (' in line)
    try_it = json.loads(line.strip().rstrip(',')).split(': ', 1)[1]
    dummy, answer = run(['bash', '-c', try_it], env, checkout, timeout=120)
    assert 'job_type' in answer and 'hello' in answer, answer
    entries = kubectl('-n', 'raibid-redis', 'exec', 'raibid-redis-master-0', '-c', 'redis', '--', 'bash', '-c',
                      'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e XRANGE raibid:jobs - +')
    assert 'hello' in entries.split()
    groups = kubectl('-n', 'raibid-redis', 'exec', 'raibid-redis-master-0', '-c', 'redis', '--', 'bash', '-c',
                     'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e XINFO GROUPS raibid:jobs')
    assert 'raibid-workers' in groups.split()


def test_design_command_from_the_checkout(deployed):
    checkout, env, dummy = deployed
    block = next(b for b in bash_blocks((checkout / 'README.md').read_text()) if 'ansible-playbook setup-redis.yml' in b)
    dummy, output = run(['bash', '-euo', 'pipefail', '-c', block], env, checkout, timeout=900)
    assert 'PLAY RECAP' in output and changed_count(output) == 0, output[-4000:]


@pytest.fixture(scope='module')
def installed(tmp_path_factory, checkout):
    """The collection as Galaxy users get it: built into a tarball, installed into an empty collections path."""
    work = tmp_path_factory.mktemp('installed')
    run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(work), str(checkout)],
        dict(os.environ), work)
    tarball = next(work.glob('raibid-queue-*.tar.gz'))
    collections = work / 'collections'
    run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps', '-p', str(collections),
         str(tarball)], dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections)), work)
    installed = collections / 'ansible_collections' / 'raibid' / 'queue'
    # The product never names the proving ground.
    product = [p for folder in ('plugins', 'roles', 'playbooks', 'meta') for p in (installed / folder).rglob('*')
               if p.is_file()]
    assert product and not [str(p) for p in product if 'testbed' in p.read_text(errors='ignore').lower()]
    return work, collections


def test_installed_playbooks_by_fqcn(installed, checkout, kubeconfig, kubectl):
    work, collections = installed
    # The test cluster's settings (kubeconfig, helm, the stand-in chart where the registry is unreachable).
    cluster_vars = work / 'cluster-vars.yml'
    env = user_env(work / 'home', RAIBID_TEST_KUBECONFIG=kubeconfig)
    run([str(VENV_BIN / 'ansible-playbook'), str(checkout / 'testbed/ansible/cluster-vars.yml'),
         '-e', 'raibid_cluster_vars_file=%s' % cluster_vars], env, work, timeout=600)
    env['ANSIBLE_COLLECTIONS_PATH'] = str(collections)
    name = 'rtest-fqcn-%s' % uuid.uuid4().hex[:6]
    args = ['-e', '@%s' % cluster_vars, '-e', 'raibid_redis_release=%s raibid_redis_namespace=%s' % (name, name)]

    dummy, output = run([str(VENV_BIN / 'ansible-playbook'), 'raibid.queue.setup_redis', *args], env, work, timeout=900)
    assert changed_count(output) >= 1
    pod = kubectl.json('-n', name, 'get', 'pod', name + '-master-0')
    assert all(c['ready'] for c in pod['status']['containerStatuses'])
    dummy, output = run([str(VENV_BIN / 'ansible-playbook'), 'raibid.queue.setup_redis', *args], env, work, timeout=900)
    assert changed_count(output) == 0, output[-4000:]

    run([str(VENV_BIN / 'ansible-playbook'), 'raibid.queue.teardown_redis', *args, '-e', 'raibid_redis_purge=true'],
        env, work, timeout=900)
    assert kubectl('get', 'namespace', name, '--ignore-not-found', '-o', 'name').strip() == ''


def test_installed_playbook_without_a_cluster_stops_in_preflight(installed):
    work, collections = installed
    env = user_env(work / 'nocluster-home', ANSIBLE_COLLECTIONS_PATH=str(collections))
    env.pop('RAIBID_TEST_KUBECONFIG', None)
    code, output = run([str(VENV_BIN / 'ansible-playbook'), 'raibid.queue.setup_redis'], env, work, timeout=300,
                       check=False)
    assert code != 0
    assert 'No Kubernetes cluster is configured' in output and 'raibid_redis_kubeconfig' in output, output[-3000:]
    assert 'KUBECONFIG' in output and '/etc/rancher/k3s/k3s.yaml' in output
    # It stopped before helm or the cluster were asked, and never reached for a testbed.
    assert 'Check that helm runs' not in output and 'testbed' not in output.lower()
