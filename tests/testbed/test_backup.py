# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups and restore on the testbed, one deployment shared by the module's tests (raibid_redis_backup on).

- The backup CronJob: made as asked (the release's image, the password from its Secret), idempotent, honest in check
  mode; Jobs made from it leave verified snapshots on the backup PVC and keep only the newest N.
- The restore, end to end: jobs enqueued, some delivered and left pending, a backup taken and copied off the
  cluster, the release purged (namespace and PVCs gone), raibid.queue.restore_redis from the copy: the stream, the
  group with its last-delivered ID and pending entries are back, and a worker carries on.
- The off-cluster copy to S3 (moto's S3 server on 127.0.0.1, the S3 tasks with the Python of .venv-s3): the backup
  uploads the same bytes it copied, and a restore from that object under another release brings the queue back.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from harness import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STREAM, GROUP = 'raibid:jobs', 'raibid-workers'
KEEP = 2
# `make s3`'s virtualenv (boto3, moto), which `make kube` builds first: moto's server and the S3 tasks' Python.
S3_PYTHON = REPO / '.venv-s3' / 'bin' / 'python'
pytestmark = pytest.mark.timeout(1200)


def changed_count(output):
    return sum(int(n) for n in re.findall(r'changed=(\d+)', output))


class Site:
    """ansible-playbook by FQCN against the test cluster, with this module's release and options."""

    def __init__(self, work, kubeconfig, kubectl):
        self.work, self.kubectl = work, kubectl
        self.name = 'rtest-bk-%s' % uuid.uuid4().hex[:6]
        self.credentials = work / 'creds.json'
        self.env = dict(os.environ, RAIBID_TEST_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR='1')
        self.env.pop('KUBECONFIG', None)
        self.cluster_vars = work / 'cluster-vars.yml'
        self.raw([str(REPO / 'testbed/ansible/cluster-vars.yml'), '-e',
                  'raibid_cluster_vars_file=%s' % self.cluster_vars], check=True)
        self.options = work / 'options.yml'
        self.options.write_text(yaml.safe_dump({
            'raibid_redis_release': self.name, 'raibid_redis_namespace': self.name,
            'raibid_redis_credentials_path': str(self.credentials),
            'raibid_redis_persistence_size': '64Mi',
            # Jobs are made from the CronJob by hand here; its schedule never comes round during the test.
            'raibid_redis_backup': True, 'raibid_redis_backup_schedule': '0 0 1 1 *',
            'raibid_redis_backup_keep': KEEP, 'raibid_redis_backup_size': '64Mi',
            'ansible_python_interpreter': sys.executable,
        }))

    def raw(self, args, check=False):
        proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), *args], env=self.env, cwd=self.work,
                              capture_output=True, text=True, timeout=900, check=False)
        if check:
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc

    def __call__(self, playbook, *extra):
        began = time.monotonic()
        proc = self.raw([playbook, '-e', '@%s' % self.cluster_vars, '-e', '@%s' % self.options, *extra], check=True)
        return proc.stdout, time.monotonic() - began

    def redis(self, *command):
        """redis-cli in the master's container, the password from its own file (never in argv)."""
        return self.kubectl('-n', self.name, 'exec', self.name + '-master-0', '-c', 'redis', '--', 'bash', '-c',
                            'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e "$@"', '-', *command)

    def run_backup(self, job):
        """A Job made from the CronJob, as `kubectl create job --from` does; returns its pod's log."""
        self.kubectl('-n', self.name, 'create', 'job', job, '--from=cronjob/%s-backup' % self.name)
        self.kubectl('-n', self.name, 'wait', '--for=condition=Complete', 'job/' + job, '--timeout=120s')
        return self.kubectl('-n', self.name, 'logs', 'job/' + job)


@pytest.fixture(scope='module')
def site(tmp_path_factory, kubeconfig, kubectl):
    site = Site(tmp_path_factory.mktemp('backup'), kubeconfig, kubectl)
    output, took = site('raibid.queue.setup_redis')
    site.converge = took
    yield site
    site('raibid.queue.teardown_redis', '-e', 'raibid_redis_purge=true')


def reader(site, claim):
    """A pod of the Redis image mounting PVC `claim` at /backups, to list and fetch snapshots."""
    pod = 'reader-%s' % uuid.uuid4().hex[:4]
    image = yaml.safe_load(site.cluster_vars.read_text())['raibid_redis_image']
    site.kubectl.apply({
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': pod, 'namespace': site.name},
        'spec': {'securityContext': {'runAsUser': 1001, 'fsGroup': 1001},
                 'containers': [{'name': 'reader', 'image': '%(registry)s/%(repository)s:%(tag)s' % image,
                                 'imagePullPolicy': 'Never', 'command': ['sleep', 'infinity'],
                                 'volumeMounts': [{'name': 'b', 'mountPath': '/backups'}]}],
                 'volumes': [{'name': 'b', 'persistentVolumeClaim': {'claimName': claim}}]}})
    site.kubectl('-n', site.name, 'wait', '--for=condition=Ready', 'pod/' + pod, '--timeout=120s')
    return pod


def test_backup_cronjob_keeps_verified_snapshots(site):
    kubectl, ns, name = site.kubectl, site.name, site.name + '-backup'
    cron = kubectl.json('-n', ns, 'get', 'cronjob', name)
    assert cron['spec']['schedule'] == '0 0 1 1 *'
    pod = cron['spec']['jobTemplate']['spec']['template']['spec']
    container = pod['containers'][0]
    image = yaml.safe_load(site.cluster_vars.read_text())['raibid_redis_image']
    assert container['image'] == '%(registry)s/%(repository)s:%(tag)s' % image
    assert container['imagePullPolicy'] == 'Never'
    auth = next(e for e in container['env'] if e['name'] == 'REDISCLI_AUTH')
    assert auth['valueFrom']['secretKeyRef'] == {'name': ns, 'key': 'redis-password'}
    assert kubectl.json('-n', ns, 'get', 'pvc', name)['spec']['resources']['requests']['storage'] == '64Mi'

    output, dummy = site('raibid.queue.setup_redis')
    assert changed_count(output) == 0, output[-4000:]
    output, dummy = site('raibid.queue.setup_redis', '--check')
    assert changed_count(output) == 0, output[-4000:]

    # Turned off: the CronJob goes, the PVC with the snapshots stays; turned on again, the CronJob is back.
    output, dummy = site('raibid.queue.setup_redis', '-e', 'raibid_redis_backup=false')
    assert changed_count(output) == 1, output[-4000:]
    assert kubectl('-n', ns, 'get', 'cronjob', name, '--ignore-not-found', '-o', 'name').strip() == ''
    assert kubectl('-n', ns, 'get', 'pvc', name, '-o', 'name').strip() == 'persistentvolumeclaim/' + name
    output, dummy = site('raibid.queue.setup_redis')
    assert changed_count(output) == 1, output[-4000:]

    site.redis('XADD', STREAM, '*', 'job_id', 'b-1', 'job_type', 'build', 'payload', '{}')
    began = time.monotonic()
    logs = [site.run_backup('manual-%d' % i) for i in range(3)]
    took = (time.monotonic() - began) / 3
    assert all(re.search(r'Saved dump-\d{8}T\d{6}Z\.rdb', log) for log in logs), logs
    assert 'RDB looks OK' in logs[0] or 'Checking RDB file' in logs[0], logs[0]
    pod = reader(site, name)
    files = kubectl('-n', ns, 'exec', pod, '--', 'ls', '-a', '/backups').split()
    snapshots = sorted(f for f in files if f.startswith('dump-'))
    # Keep 2: the third run deleted the first snapshot; no partial file is left.
    assert len(snapshots) == KEEP and not [f for f in files if f.endswith('.part')], files
    assert snapshots[-1] in logs[-1] and snapshots[0] in logs[1]
    check = kubectl('-n', ns, 'exec', pod, '--', 'redis-check-rdb', '/backups/' + snapshots[-1])
    assert 'RDB looks OK' in check, check
    kubectl('-n', ns, 'delete', 'pod', pod, '--wait=false')
    print('backup: converge %.0f s, one backup Job %.1f s' % (site.converge, took))


def readme_command(site, playbook):
    """The arguments of the README's `ansible-playbook <playbook> ...` line (section "Backups and restore")."""
    line = next(line for line in (REPO / 'README.md').read_text().splitlines()
                if line.startswith('ansible-playbook %s ' % playbook))
    return [arg.replace('$PWD', str(site.work)) for arg in shlex.split(line.split('#')[0])[1:]]


def queue_state(site):
    """The stream's entries, the group's last-delivered ID and its pending entries (ID and consumer)."""
    entries = site.redis('XRANGE', STREAM, '-', '+').split()
    groups = site.redis('XINFO', 'GROUPS', STREAM).split()
    last = groups[groups.index('last-delivered-id') + 1]
    pending = site.redis('XPENDING', STREAM, GROUP, '-', '+', '100').split()
    return entries, last, [(pending[i], pending[i + 1]) for i in range(0, len(pending), 4)]


def test_restore_after_purge_brings_back_the_stream_the_group_and_its_pending_jobs(site, tmp_path):
    kubectl, ns = site.kubectl, site.name
    for i in range(1, 6):
        site.redis('XADD', STREAM, '*', 'job_id', 'r-%d' % i, 'job_type', 'build', 'payload', '{"n": %d}' % i)
    delivered = site.redis('XREADGROUP', 'GROUP', GROUP, 'worker-1', 'COUNT', '3', 'STREAMS', STREAM, '>').split()
    assert 'r-1' in delivered or 'b-1' in delivered, delivered
    before = queue_state(site)
    assert before[2], 'jobs are pending before the backup'
    undelivered = site.redis('XRANGE', STREAM, '(' + before[1], '+', 'COUNT', '1').split()
    assert undelivered, 'a job is left to deliver'

    # The README's backup command: a Job now, its snapshot copied off the cluster.
    output, dummy = site(*readme_command(site, 'raibid.queue.backup_redis'))
    copy = next((site.work / 'backups').glob('dump-*.rdb'))
    assert 'Snapshot copied off the cluster to %s' % copy in output, output[-3000:]
    assert copy.read_bytes().startswith(b'REDIS') and oct(copy.stat().st_mode & 0o777) == '0o600'
    # It cleaned up after itself: only the CronJob's own Jobs remain, and no copy pod.
    assert [j for j in kubectl('-n', ns, 'get', 'jobs', '-o', 'name').split() if 'manual-' not in j] == []
    assert 'copy' not in kubectl('-n', ns, 'get', 'pods', '-o', 'name')

    began = time.monotonic()
    site('raibid.queue.teardown_redis', '-e', 'raibid_redis_purge=true')
    assert kubectl('get', 'namespace', ns, '--ignore-not-found', '-o', 'name').strip() == ''
    assert kubectl('get', 'pv', '-o', 'jsonpath={.items[*].spec.claimRef.namespace}').split().count(ns) == 0

    restore = [re.sub(r'=\S+$', '=' + str(copy), arg) for arg in readme_command(site, 'raibid.queue.restore_redis')[1:]]
    assert restore[0] == '-e' and restore[1] == 'raibid_redis_restore_file=' + str(copy)
    output, dummy = site('raibid.queue.restore_redis', *restore, '--check')
    assert 'would create PVC redis-data-%s-master-0' % ns in output, output[-3000:]
    assert kubectl('get', 'namespace', ns, '--ignore-not-found', '-o', 'name').strip() == ''

    output, took = site('raibid.queue.restore_redis', *restore)
    assert re.search(r'Loaded: \d+ keys', output) and 'appendonly.aof.1.base.rdb' in output, output[-3000:]
    after = queue_state(site)
    assert after == before
    # Redis runs from the AOF written from the snapshot, which it keeps appending to.
    assert 'aof_enabled:1' in site.redis('INFO', 'persistence').split()
    files = kubectl('-n', ns, 'exec', ns + '-master-0', '-c', 'redis', '--', 'ls', '/data', '/data/appendonlydir')
    assert 'restore.rdb' not in files and 'appendonly.aof.manifest' in files, files

    # A worker carries on: the next undelivered job, and the old ones still pending for a retry or XCLAIM.
    nxt = site.redis('XREADGROUP', 'GROUP', GROUP, 'worker-2', 'COUNT', '1', 'STREAMS', STREAM, '>').split()
    assert undelivered[0] in nxt, (nxt, undelivered)
    pending = site.redis('XPENDING', STREAM, GROUP, '-', '+', '100').split()
    assert all(entry_id in pending for entry_id, dummy in before[2]) and undelivered[0] in pending

    # The data volume exists now: a second restore refuses and changes nothing.
    proc = site.raw(['raibid.queue.restore_redis', *restore, '-e', '@%s' % site.cluster_vars, '-e',
                     '@%s' % site.options])
    assert proc.returncode != 0 and 'the restore fills a new volume only, and nothing was changed' in proc.stdout
    assert queue_state(site)[2] == before[2] + [(undelivered[0], 'worker-2')]
    print('restore: purge + restore %.0f s (restore playbook %.0f s)' % (time.monotonic() - began, took))


def test_a_failed_restore_removes_what_it_made(site, tmp_path):
    """A snapshot that fails redis-check-rdb: the restore stops, and the pod, PVC and namespace it made are gone."""
    name = 'rtest-bkf-%s' % uuid.uuid4().hex[:6]
    broken = tmp_path / 'broken.rdb'
    broken.write_bytes(b'REDIS0010 not a snapshot')
    proc = site.raw(['raibid.queue.restore_redis', '-e', '@%s' % site.cluster_vars, '-e', '@%s' % site.options,
                     '-e', 'raibid_redis_release=%s raibid_redis_namespace=%s' % (name, name),
                     '-e', 'raibid_redis_restore_file=%s' % broken])
    assert proc.returncode != 0
    assert "Step 'Check the snapshot and write the AOF that Redis loads' failed" in proc.stdout, proc.stdout[-3000:]
    assert 'Removed what this run created' in proc.stdout
    assert site.kubectl('get', 'namespace', name, '--ignore-not-found', '-o', 'name').strip() == ''
    # Stopped before the deployment.
    assert 'Install or upgrade the Helm release' not in proc.stdout


def s3_call(endpoint, script, *args):
    """boto3 in .venv-s3 (it cannot live in .venv beside kubernetes 37): `script` gets client s3 and argv."""
    code = ('import sys, boto3\ns3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", '
            'aws_access_key_id="testing", aws_secret_access_key="testing")\n' + script)
    return subprocess.run([str(S3_PYTHON), '-c', code, endpoint, *args], capture_output=True, text=True, check=True)


@pytest.fixture
def s3_bucket(tmp_path):
    """moto's S3 server on a free loopback port with a new bucket; stopped by its PID afterwards."""
    if not S3_PYTHON.exists():
        pytest.fail('%s is missing: run `make s3` (or `make kube`, which builds it)' % S3_PYTHON)
    endpoint = 'http://127.0.0.1:%d' % free_port()
    with open(tmp_path / 'moto.log', 'wb') as log:
        server = subprocess.Popen([str(S3_PYTHON.parent / 'moto_server'), '-H', '127.0.0.1', '-p',
                                   endpoint.rsplit(':', 1)[1]], stdout=log, stderr=subprocess.STDOUT)
    bucket = 'raibid-%s' % uuid.uuid4().hex[:8]
    deadline = time.monotonic() + 30
    while True:
        try:
            s3_call(endpoint, 's3.create_bucket(Bucket=sys.argv[2])', bucket)
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                stop_process(server)
                pytest.fail('moto_server did not start: %s' % (tmp_path / 'moto.log').read_text())
            time.sleep(0.5)
    yield endpoint, bucket
    stop_process(server)


def test_backup_to_s3_and_restore_from_it_under_another_release(site, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    secret = 'raibid-s3-canary-%s' % uuid.uuid4().hex
    # The module's options and the S3 settings; .venv's Python for the other tasks from the inventory, since an
    # extra var ansible_python_interpreter would outrank raibid_redis_backup_s3_python (tasks/s3_check.yml says so).
    options = dict(yaml.safe_load(site.options.read_text()), raibid_redis_backup_s3_python=str(S3_PYTHON),
                   raibid_redis_backup_s3={'bucket': bucket, 'prefix': 'raibid-redis/', 'endpoint_url': endpoint,
                                           'region': 'us-east-1', 'access_key': 'testing', 'secret_key': secret})
    del options['ansible_python_interpreter']
    (tmp_path / 'options.yml').write_text(yaml.safe_dump(options))
    (tmp_path / 'inventory').write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n'
                                        % sys.executable)

    def run(playbook, *extra):
        began = time.monotonic()
        proc = site.raw([playbook, '-i', str(tmp_path / 'inventory'), '-e', '@%s' % site.cluster_vars,
                         '-e', '@%s' % (tmp_path / 'options.yml'), *extra], check=True)
        assert secret not in proc.stdout + proc.stderr
        return proc.stdout, time.monotonic() - began

    before = queue_state(site)
    output, took_backup = run('raibid.queue.backup_redis', '-e', 'raibid_redis_backup_dest=%s' % (tmp_path / 'b'))
    copy = next((tmp_path / 'b').glob('dump-*.rdb'))
    key = 'raibid-redis/' + copy.name
    assert 'uploaded to s3://%s/%s' % (bucket, key) in output, output[-3000:]
    fetched = tmp_path / 'fetched.rdb'
    s3_call(endpoint, 's3.download_file(sys.argv[2], sys.argv[3], sys.argv[4])', bucket, key, str(fetched))
    assert fetched.read_bytes() == copy.read_bytes()

    # Restored from the object under another release: the queue as it was at the backup.
    other = copy_site(site, 'rtest-bks-%s' % uuid.uuid4().hex[:6])
    began = time.monotonic()
    try:
        output, dummy = run('raibid.queue.restore_redis', '-e', 'raibid_redis_restore_s3_object=%s' % key,
                            '-e', 'raibid_redis_release=%s raibid_redis_namespace=%s' % (other.name, other.name),
                            '-e', 'raibid_redis_credentials_path=%s' % (tmp_path / 'creds.json'))
        assert 'filled from s3://%s/%s' % (bucket, key) in output, output[-3000:]
        assert queue_state(other) == before
    finally:
        run('raibid.queue.teardown_redis', '-e', 'raibid_redis_purge=true',
            '-e', 'raibid_redis_release=%s raibid_redis_namespace=%s' % (other.name, other.name),
            '-e', 'raibid_redis_credentials_path=%s' % (tmp_path / 'creds.json'))
    print('s3: backup with upload %.0f s, restore from S3 + deploy %.0f s' % (took_backup, time.monotonic() - began))


def copy_site(site, name):
    """The same Site pointed at another release (its redis-cli and queue_state)."""
    other = object.__new__(Site)
    other.__dict__.update(site.__dict__, name=name)
    return other
