# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The off-cluster copy to S3 and back, against moto's S3 server on 127.0.0.1 (`make s3`).

Runs in .venv-s3 (boto3, moto), which is also the Python of the role's S3 tasks (raibid_redis_backup_s3_python);
ansible-playbook is .venv's, whose kubernetes library cannot share a virtualenv with boto3. The snapshot is a real
RDB file written by redis-cli --rdb from a redis-server holding a stream; every object is read back with boto3.
Every run is at -vvv and its output must not hold the secret key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'utils'))
from harness import free_port, stop_process  # noqa: E402

pytestmark = pytest.mark.timeout(300)

# .venv's ansible-playbook (the Makefile puts .venv/bin first on PATH) and the Python next to it.
ANSIBLE_PLAYBOOK = shutil.which('ansible-playbook')
ACCESS_KEY = 'AKIARAIBIDTEST000001'
SECRET_KEY = 'raibid-s3-canary-' + uuid.uuid4().hex
REGION = 'us-east-1'


@pytest.fixture(scope='module')
def endpoint(tmp_path_factory):
    """moto's S3 server on a free loopback port, stopped by its PID at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp('moto') / 'moto.log'
    with open(log, 'wb') as out:
        server = subprocess.Popen([str(Path(sys.executable).parent / 'moto_server'), '-H', '127.0.0.1', '-p', str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = 'http://127.0.0.1:%d' % port
    client = s3_client(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            break
        except Exception:  # noqa: BLE001 - any failure means not up yet, until the deadline
            if time.monotonic() > deadline or server.poll() is not None:
                stop_process(server)
                pytest.fail('moto_server did not start: %s' % log.read_text())
            time.sleep(0.2)
    yield url
    stop_process(server)


def s3_client(url):
    return boto3.client('s3', endpoint_url=url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


@pytest.fixture
def bucket(endpoint):
    name = 'raibid-%s' % uuid.uuid4().hex[:12]
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    """A real RDB file: a redis-server with a stream and a consumer group, dumped with redis-cli --rdb."""
    workdir = tmp_path_factory.mktemp('redis')
    port = free_port()
    server = subprocess.Popen(['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--dir', str(workdir),
                               '--save', '', '--appendonly', 'no'], stdout=subprocess.DEVNULL)
    cli = ['redis-cli', '-e', '-h', '127.0.0.1', '-p', str(port)]
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(cli + ['PING'], capture_output=True, check=False).returncode != 0:
            assert time.monotonic() < deadline and server.poll() is None, 'redis-server did not start'
            time.sleep(0.1)
        for n in range(200):
            subprocess.run(cli + ['XADD', 'raibid:jobs', '*', 'job', 'job-%d' % n], capture_output=True, check=True)
        subprocess.run(cli + ['XGROUP', 'CREATE', 'raibid:jobs', 'raibid-workers', '0'], capture_output=True, check=True)
        rdb = workdir / 'dump-20261204T190000Z.rdb'
        subprocess.run(cli + ['--rdb', str(rdb)], capture_output=True, check=True)
    finally:
        stop_process(server)
    subprocess.run(['redis-check-rdb', str(rdb)], capture_output=True, check=True)
    return rdb


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.changed = sum(int(n) for n in re.findall(r'changed=(\d+)', self.output))


def play(tmp_path, tasks_from, check=False, env=None, extra=(), **role_vars):
    """The role's entry point or tasks file `tasks_from` on localhost, at -vvv; the secret must not show."""
    playbook = tmp_path / ('play-%s.yml' % uuid.uuid4().hex[:8])
    playbook.write_text(yaml.safe_dump([{
        'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
        'vars': dict({'ansible_python_interpreter': str(Path(ANSIBLE_PLAYBOOK).parent / 'python'),
                      'raibid_redis_backup_s3_python': sys.executable}, **role_vars),
        'tasks': [{'ansible.builtin.include_role': {'name': 'raibid.queue.redis', 'tasks_from': tasks_from}}],
    }]))
    # No AWS settings from the caller's environment: only what the test gives.
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(('AWS_', 'ANSIBLE_'))}
    run_env.update(ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
                   ANSIBLE_COLLECTIONS_PATH=os.environ['ANSIBLE_COLLECTIONS_PATH'], TMPDIR=str(tmp_path / 'tmp'),
                   **(env or {}))
    (tmp_path / 'tmp').mkdir(exist_ok=True)
    cmd = [ANSIBLE_PLAYBOOK, '-i', 'localhost,', '-vvv', str(playbook), *extra] + (['--check'] if check else [])
    result = Run(subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=240, check=False))
    assert SECRET_KEY not in result.output
    return result


def settings(endpoint, bucket, **extra):
    return dict(dict(bucket=bucket, prefix='raibid-redis/', endpoint_url=endpoint, region=REGION,
                     access_key=ACCESS_KEY, secret_key=SECRET_KEY), **extra)


def objects(endpoint, bucket):
    return [o['Key'] for o in s3_client(endpoint).list_objects_v2(Bucket=bucket).get('Contents', [])]


def test_round_trip(tmp_path, endpoint, bucket, snapshot):
    """Check mode uploads nothing; the upload is the snapshot byte for byte; a second one changes nothing; the
    download (keys from the environment this time) is the same bytes again, private."""
    s3 = settings(endpoint, bucket)
    key = 'raibid-redis/' + snapshot.name

    run = play(tmp_path, 'backup_s3', check=True, raibid_redis_backup_s3=s3, raibid_redis_backup_file=str(snapshot))
    assert run.rc == 0, run.output
    assert run.changed == 1
    assert objects(endpoint, bucket) == []

    run = play(tmp_path, 'backup_s3', raibid_redis_backup_s3=s3, raibid_redis_backup_file=str(snapshot))
    assert run.rc == 0, run.output
    assert run.changed == 1
    assert '"raibid_redis_backup_s3_object": "%s"' % key in run.output
    assert objects(endpoint, bucket) == [key]
    assert s3_client(endpoint).get_object(Bucket=bucket, Key=key)['Body'].read() == snapshot.read_bytes()

    run = play(tmp_path, 'backup_s3', raibid_redis_backup_s3=s3, raibid_redis_backup_file=str(snapshot))
    assert run.rc == 0, run.output
    assert run.changed == 0

    # The keys from boto3's own chain (the environment) instead of raibid_redis_backup_s3.
    run = play(tmp_path, 'restore_s3', raibid_redis_restore_s3_object=key,
               raibid_redis_backup_s3=dict(bucket=bucket, endpoint_url=endpoint, region=REGION),
               env=dict(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY))
    assert run.rc == 0, run.output
    [directory] = (tmp_path / 'tmp').glob('raibid-restore-*')
    downloaded = directory / snapshot.name
    assert downloaded.read_bytes() == snapshot.read_bytes()
    assert directory.stat().st_mode & 0o777 == 0o700
    assert downloaded.stat().st_mode & 0o777 == 0o600
    subprocess.run(['redis-check-rdb', str(downloaded)], capture_output=True, check=True)


def test_restore_removes_the_download(tmp_path, endpoint, bucket, snapshot):
    """The restore entry point downloads the snapshot and removes it again, here after the cluster step fails
    (a kubeconfig whose API server does not answer)."""
    key = 'raibid-redis/' + snapshot.name
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=snapshot.read_bytes())
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(yaml.safe_dump({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'nowhere',
        'clusters': [{'name': 'nowhere', 'cluster': {'server': 'https://127.0.0.1:%d' % free_port()}}],
        'contexts': [{'name': 'nowhere', 'context': {'cluster': 'nowhere', 'user': 'nobody'}}],
        'users': [{'name': 'nobody', 'user': {'token': 'none'}}]}))
    run = play(tmp_path, 'restore', raibid_redis_restore_s3_object=key, raibid_redis_backup_s3=settings(endpoint, bucket),
               raibid_redis_kubeconfig=str(kubeconfig))
    assert run.rc != 0
    assert 'Download the snapshot from S3' in run.output
    assert re.search(r'TASK \[raibid.queue.redis : Remove the snapshot downloaded from S3\].*?\nchanged:', run.output, re.S)
    assert list((tmp_path / 'tmp').iterdir()) == []


@pytest.mark.parametrize('tasks_from, role_vars, message', [
    ('backup_now', {'raibid_redis_backup_s3': {'bucket': None}},
     'raibid_redis_backup_s3.bucket is empty or missing'),
    ('backup_now', {'raibid_redis_backup_s3': {'prefix': '/raibid/'}},
     "raibid_redis_backup_s3.prefix '/raibid/' starts with '/'"),
    ('backup_now', {'raibid_redis_backup_s3': {'endpoint_url': '127.0.0.1:9000'}},
     "raibid_redis_backup_s3.endpoint_url '127.0.0.1:9000' is not an http:// or https:// URL"),
    # An extra var outranks the interpreter the S3 tasks set: said plainly instead of "boto3 is missing".
    ('backup_now', {'raibid_redis_backup_s3': {}, 'extra': ['-e', 'ansible_python_interpreter=/usr/bin/python3']},
     "raibid_redis_backup_s3_python '%s' cannot take effect: ansible_python_interpreter is an extra var" % sys.executable),
    ('restore', {'raibid_redis_restore_file': '/tmp/dump.rdb', 'raibid_redis_restore_s3_object': 'raibid-redis/x.rdb',
                 'raibid_redis_backup_s3': {}},
     'Give the snapshot to restore as exactly one of'),
    ('restore', {'raibid_redis_restore_s3_object': 'raibid-redis/x.rdb'},
     'raibid_redis_restore_s3_object is set but raibid_redis_backup_s3'),
    # Without S3 settings (the default {}), the restore's own checks run as before.
    ('restore', {'raibid_redis_restore_file': 'dump.rdb'},
     "raibid_redis_restore_file 'dump.rdb' is not an absolute path"),
    ('restore', {'raibid_redis_restore_s3_object': 'no/such.rdb', 'raibid_redis_backup_s3': {}},
     'downloading s3://BUCKET/no/such.rdb failed'),
])
def test_bad_input(tmp_path, endpoint, bucket, tasks_from, role_vars, message):
    """Bad S3 settings stop the backup and the restore before anything changes, with no cluster needed: the
    checks come before the first cluster read; the destination directory is not made, the bucket stays empty.
    raibid_redis_backup_s3 given is the test's settings with these changes (None: left out)."""
    dest = tmp_path / 'backups'
    role_vars = dict(role_vars)
    if 'raibid_redis_backup_s3' in role_vars:
        s3 = dict(settings(endpoint, bucket), **role_vars['raibid_redis_backup_s3'])
        role_vars['raibid_redis_backup_s3'] = {k: v for k, v in s3.items() if v is not None}
    run = play(tmp_path, tasks_from, raibid_redis_backup_dest=str(dest), raibid_redis_kubeconfig='/nonexistent',
               **role_vars)
    assert run.rc != 0
    assert message.replace('BUCKET', bucket) in run.output, run.output[-3000:]
    assert not dest.exists()
    assert objects(endpoint, bucket) == []
    assert list((tmp_path / 'tmp').iterdir()) == []
