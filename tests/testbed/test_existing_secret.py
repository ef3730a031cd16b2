# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""raibid_redis_existing_secret: the password from a Secret made out of band (as External Secrets Operator, a Vault
operator or sealed secrets would), never generated; followed after an in-place change; a missing or unusable
Secret stops the role before helm runs; a failed run leaves that Secret alone."""

from __future__ import annotations

import base64
import json
import re
import uuid

import yaml

# site is a fixture: pytest finds it by name in this module.
from test_role import changed_count, site  # noqa: F401  # pylint: disable=unused-import

SECRET, KEY = 'redis-auth-external', 'pw'


def put_secret(kubectl, namespace, data):
    """Creates or replaces the Secret in place, as a secret manager would (kubectl apply keeps name and UID)."""
    kubectl.apply({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': SECRET, 'namespace': namespace},
                   'type': 'Opaque',
                   'data': {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def auth(kubectl, namespace, pod, password):
    """AUTH with `password` and PING from inside the Redis container, the password on stdin (never in argv)."""
    return kubectl('-n', namespace, 'exec', '-i', pod, '-c', 'redis', '--', 'bash', '-c',
                   'IFS= read -r REDISCLI_AUTH; export REDISCLI_AUTH; redis-cli --no-auth-warning PING 2>&1',
                   input=password + '\n', check=False).strip()


def options(tmp_path, **extra):
    path = tmp_path / ('options-%s.yml' % uuid.uuid4().hex[:6])
    path.write_text(yaml.safe_dump(dict({'raibid_redis_existing_secret': {'name': SECRET, 'key': KEY}}, **extra)))
    return '@%s' % path


def test_existing_secret_is_used_and_followed_after_an_in_place_change(site, kubectl, namespace, tmp_path):
    ns, pod = site.namespace, site.namespace + '-master-0'
    first = 'First-' + uuid.uuid4().hex
    kubectl('create', 'namespace', ns)
    put_secret(kubectl, ns, {KEY: first, 'other': 'not-the-password'})
    opts = options(tmp_path, raibid_redis_consumer_secrets=[{'namespace': namespace}])

    output, converge = site('site.yml', 'hosts1', '-e', opts)
    assert first not in output
    assert 'password from Secret %s, key %s, managed outside the role' % (SECRET, KEY) in output
    # The chart reads the password from that Secret and made none of its own: nothing was generated.
    assert kubectl('-n', ns, 'get', 'secret', ns, '--ignore-not-found', '-o', 'name').strip() == ''
    sts = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')
    volume = next(v for v in sts['spec']['template']['spec']['volumes'] if v['name'] == 'redis-password')
    assert volume['secret']['secretName'] == SECRET
    assert volume['secret']['items'] == [{'key': KEY, 'path': 'redis-password'}]
    assert auth(kubectl, ns, pod, first) == 'PONG'
    assert json.loads(site.credentials.read_text())['password'] == first
    consumer = kubectl.json('-n', namespace, 'get', 'secret', 'raibid-redis-auth')['data']
    assert base64.b64decode(consumer['password']).decode() == first

    output, dummy = site('site.yml', 'hosts1', '-e', opts)
    assert changed_count(output) == 0, output
    uid = kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid']

    # The secret manager rotates the password in place; the next run restarts Redis with it.
    second = 'Second-' + uuid.uuid4().hex
    put_secret(kubectl, ns, {KEY: second, 'other': 'not-the-password'})
    output, rotate = site('site.yml', 'hosts1', '-e', opts)
    assert changed_count(output) >= 1
    assert first not in output and second not in output
    assert kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid'] != uid
    assert auth(kubectl, ns, pod, second) == 'PONG'
    refused = auth(kubectl, ns, pod, first)
    assert 'WRONGPASS' in refused or 'NOAUTH' in refused, refused
    assert json.loads(site.credentials.read_text())['password'] == second
    consumer = kubectl.json('-n', namespace, 'get', 'secret', 'raibid-redis-auth')['data']
    assert base64.b64decode(consumer['password']).decode() == second
    # The queue made before the restart is still there (AOF on the PVC).
    groups = kubectl('-n', ns, 'exec', pod, '-c', 'redis', '--', 'bash', '-c',
                     'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e XINFO GROUPS raibid:jobs')
    assert 'raibid-workers' in groups.split()
    # The role wrote nothing into the Secret it does not own.
    data = kubectl.json('-n', ns, 'get', 'secret', SECRET)['data']
    assert sorted(data) == sorted([KEY, 'other']) and base64.b64decode(data[KEY]).decode() == second

    output, dummy = site('site.yml', 'hosts1', '-e', opts)
    assert changed_count(output) == 0, output
    uid = kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid']
    output, dummy = site('site.yml', 'hosts1', '-e', opts, '--check')
    assert changed_count(output) == 0, output

    # The health entry point reads the password from the same Secret (a wrong one would be refused by Redis).
    play = yaml.safe_load((tmp_path / 'site.yml').read_text())
    play[0]['tasks'][1:] = [{'name': 'Check the queue', 'ansible.builtin.include_role': {
        'name': 'raibid.queue.redis', 'tasks_from': 'health'}}]
    (tmp_path / 'health.yml').write_text(yaml.safe_dump(play))
    output, dummy = site('health.yml', 'hosts1', '-e', opts)
    assert re.search(r'"backlog": 0,', output), output[-3000:]
    assert second not in output
    assert kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid'] == uid
    print('existing Secret: converge %.0f s, rotation run %.0f s' % (converge, rotate))


def test_missing_or_unusable_secret_stops_before_helm_and_a_failed_run_keeps_it(site, kubectl, tmp_path):
    ns = site.namespace
    kubectl('create', 'namespace', ns)
    opts = options(tmp_path)

    def fails(expected):
        proc = site.raw('site.yml', 'hosts1', '-e', opts)
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert re.search(expected, proc.stdout), proc.stdout[-3000:]
        assert 'Nothing was changed' in proc.stdout
        # Stopped before helm: no release, no objects, no credentials file.
        assert 'TASK [raibid.queue.redis : Install or upgrade the Helm release]' not in proc.stdout
        assert kubectl('-n', ns, 'get', 'statefulsets,services,configmaps', '-l', 'app.kubernetes.io/instance=' + ns,
                       '-o', 'name').strip() == ''
        assert not site.credentials.exists()
        return proc.stdout

    fails(r'Secret %s in namespace %s does not exist' % (SECRET, ns))
    put_secret(kubectl, ns, {'redis-password': 'x' * 20})
    fails(r'Secret %s in namespace %s has no key %s \(it has: redis-password\)' % (SECRET, ns, KEY))
    put_secret(kubectl, ns, {KEY: ''})
    fails(r'key %s of Secret %s in namespace %s is empty' % (KEY, SECRET, ns))
    newline = 'Echoed-' + uuid.uuid4().hex
    put_secret(kubectl, ns, {KEY: newline + '\n'})
    assert newline not in fails(r'contains a line break or another control character')

    # A run that fails after helm installed the release rolls back what it made, and only that.
    password = 'Kept-' + uuid.uuid4().hex
    put_secret(kubectl, ns, {KEY: password})
    before = kubectl.json('-n', ns, 'get', 'secret', SECRET)['metadata']
    broken = options(tmp_path, raibid_redis_image={'registry': 'localhost', 'repository': 'raibid/does-not-exist',
                                                   'tag': '7.0.15-missing'},
                     raibid_redis_image_pull_policy='Never', raibid_redis_timeout=30)
    proc = site.raw('site.yml', 'hosts1', '-e', broken)
    assert proc.returncode != 0
    assert 'release %s uninstalled' % ns in proc.stdout, proc.stdout[-3000:]
    assert password not in proc.stdout
    after = kubectl.json('-n', ns, 'get', 'secret', SECRET)
    assert after['metadata']['uid'] == before['uid']
    assert after['metadata']['resourceVersion'] == before['resourceVersion']
    assert base64.b64decode(after['data'][KEY]).decode() == password
    assert kubectl('get', 'namespace', ns, '-o', 'name').strip() == 'namespace/' + ns
