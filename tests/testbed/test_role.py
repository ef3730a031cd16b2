# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role in a site playbook: check mode on an empty and on a deployed cluster, and 1 host versus 50."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def changed_count(output):
    return sum(int(n) for n in re.findall(r'changed=(\d+)', output))


@pytest.fixture
def site(tmp_path, kubeconfig, kubectl):
    """A site playbook over `hosts: all` that includes the role, with its own namespace and credentials file."""
    name = 'rtest-role-%s' % uuid.uuid4().hex[:6]
    credentials = tmp_path / 'creds.json'
    common = {
        'raibid_testbed_dir': str(REPO / 'testbed'),
        'raibid_redis_namespace': name,
        'raibid_redis_release': name,
        'raibid_redis_credentials_path': str(credentials),
    }
    play = {
        'name': 'A site playbook that also sets up the queue',
        'hosts': 'all',
        'gather_facts': False,
        'vars': common,
        'tasks': [
            {'name': 'Use the test cluster, and the stand-in chart where the registry is unreachable',
             'ansible.builtin.include_tasks': {'file': str(REPO / 'testbed/ansible/local-testbed.yml'),
                                               'apply': {'run_once': True, 'delegate_to': 'localhost'}},
             'run_once': True},
            {'name': 'Deploy the queue', 'ansible.builtin.include_role': {'name': 'raibid.queue.redis'}},
        ],
    }
    teardown = dict(play, name='Teardown', tasks=[
        play['tasks'][0],
        {'name': 'Purge', 'ansible.builtin.include_role': {'name': 'raibid.queue.redis', 'tasks_from': 'teardown'},
         'vars': {'raibid_redis_purge': True}},
    ])
    (tmp_path / 'site.yml').write_text(yaml.safe_dump([play]))
    (tmp_path / 'teardown.yml').write_text(yaml.safe_dump([teardown]))
    for hosts in (1, 50):
        lines = ['h%02d ansible_connection=local ansible_python_interpreter=%s' % (i, sys.executable)
                 for i in range(1, hosts + 1)]
        (tmp_path / ('hosts%d' % hosts)).write_text('\n'.join(lines) + '\n')

    env = dict(os.environ, RAIBID_TEST_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR='1')
    env.pop('KUBECONFIG', None)

    def run(playbook, inventory, *extra):
        began = time.monotonic()
        proc = subprocess.run(['ansible-playbook', '-i', str(tmp_path / inventory), str(tmp_path / playbook), *extra],
                              env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc.stdout, time.monotonic() - began

    def raw(playbook, inventory, *extra):
        """The same, for a run expected to fail: returns the completed process."""
        return subprocess.run(['ansible-playbook', '-i', str(tmp_path / inventory), str(tmp_path / playbook), *extra],
                              env=env, capture_output=True, text=True, timeout=900, check=False)

    run.raw = raw
    run.namespace = name
    run.credentials = credentials
    yield run
    run('teardown.yml', 'hosts1')


def test_check_mode_then_deploy_once_for_any_number_of_hosts(site, kubectl):
    output, dummy = site('site.yml', 'hosts1', '--check')
    assert changed_count(output) >= 1, output
    assert 'Install or upgrade the Helm release' in output
    # Check mode created nothing.
    assert kubectl('get', 'namespace', site.namespace, check=False) == ''
    assert not site.credentials.exists()

    output, first = site('site.yml', 'hosts1')
    assert changed_count(output) >= 1
    assert site.credentials.exists()
    pod = kubectl.json('-n', site.namespace, 'get', 'pod', site.namespace + '-master-0')
    assert all(c['ready'] for c in pod['status']['containerStatuses'])

    output, again = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output

    output, dummy = site('site.yml', 'hosts1', '--check')
    assert changed_count(output) == 0, output

    output, many = site('site.yml', 'hosts50')
    assert changed_count(output) == 0, output
    # The role ran once, for the first host, however many hosts the play has.
    assert len(re.findall(r'TASK \[raibid.queue.redis : Install or upgrade the Helm release\]', output)) == 1
    assert output.count('ok: [h01 -> localhost]') > 5
    assert 'h37 -> localhost' not in output
    assert many < again * 1.5 + 15, (first, again, many)
    # Same pod: nothing was restarted by the re-runs.
    assert kubectl.json('-n', site.namespace, 'get', 'pod', site.namespace + '-master-0')['metadata']['uid'] == \
        pod['metadata']['uid']


def secret_password(kubectl, namespace):
    data = kubectl.json('-n', namespace, 'get', 'secret', namespace)['data']['redis-password']
    return base64.b64decode(data).decode()


def test_password_is_kept_and_rotates_only_on_request(site, kubectl, tmp_path):
    site('site.yml', 'hosts1')
    password = json.loads(site.credentials.read_text())['password']
    assert re.fullmatch(r'[A-Za-z0-9]{32}', password)
    assert secret_password(kubectl, site.namespace) == password

    # Rotation: an explicit password wins, passed in a file so it never shows in the process list.
    rotated = 'Rotated' + uuid.uuid4().hex
    extra = tmp_path / 'rotate.yml'
    extra.write_text(yaml.safe_dump({'raibid_redis_password': rotated}))
    extra.chmod(0o600)
    output, dummy = site('site.yml', 'hosts1', '-e', '@%s' % extra)
    assert changed_count(output) >= 1
    assert rotated not in output and password not in output
    assert secret_password(kubectl, site.namespace) == rotated
    assert json.loads(site.credentials.read_text())['password'] == rotated
    # The pod restarted with the new password, and the queue created before is still there (AOF on the PVC).
    groups = kubectl('-n', site.namespace, 'exec', site.namespace + '-master-0', '-c', 'redis', '--', 'bash', '-c',
                     'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e XINFO GROUPS raibid:jobs')
    assert 'raibid-workers' in groups.split()

    # Without the explicit password, the next run keeps the rotated one.
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output
    assert secret_password(kubectl, site.namespace) == rotated


# A ServiceMonitor CRD reduced to what the API server needs to store the objects (no Prometheus Operator).
SERVICE_MONITOR_CRD = {
    'apiVersion': 'apiextensions.k8s.io/v1',
    'kind': 'CustomResourceDefinition',
    'metadata': {'name': 'servicemonitors.monitoring.coreos.com'},
    'spec': {
        'group': 'monitoring.coreos.com',
        'scope': 'Namespaced',
        'names': {'kind': 'ServiceMonitor', 'plural': 'servicemonitors', 'singular': 'servicemonitor',
                  'listKind': 'ServiceMonitorList'},
        'versions': [{'name': 'v1', 'served': True, 'storage': True, 'schema': {'openAPIV3Schema': {
            'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}],
    },
}


@pytest.fixture
def service_monitor_crd(kubectl):
    """Installs the ServiceMonitor CRD unless the cluster has it; removes it again only if it installed it."""
    name = SERVICE_MONITOR_CRD['metadata']['name']
    had = kubectl('get', 'crd', name, '--ignore-not-found', '-o', 'name').strip() != ''
    if not had:
        kubectl.apply(SERVICE_MONITOR_CRD)
        kubectl('wait', '--for=condition=Established', 'crd/' + name, '--timeout=60s')
    yield
    if not had:
        kubectl('delete', 'crd', name, '--wait=false')


def redis_cli(kubectl, namespace, pod, command, tls=True, check=True):
    """redis-cli in the Redis container, with the pod's own password file and, with tls, its CA."""
    flags = '--tls --cacert "$REDIS_TLS_CA_FILE" ' if tls else ''
    return kubectl('-n', namespace, 'exec', pod, '-c', 'redis', '--', 'bash', '-c',
                   'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e %s%s' % (flags, command), check=check)


def test_options_tls_service_monitor_pvc_retention_network_policy(site, kubectl, namespace, tmp_path,
                                                                  service_monitor_crd):
    options = tmp_path / 'options.yml'
    options.write_text(yaml.safe_dump({
        'raibid_redis_tls': True,
        'raibid_redis_service_monitor': True,
        'raibid_redis_pvc_retention_when_deleted': 'Delete',
        'raibid_redis_pvc_retention_when_scaled': 'Delete',
        'raibid_redis_consumer_secrets': [{'namespace': namespace}],
    }))
    ns, pod = site.namespace, site.namespace + '-master-0'
    output, converge = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert 'TLS (CA in Secret %s-crt)' % ns in output

    # TLS: the server speaks only TLS, with the chart's CA; the queue is there and workers are told to use TLS.
    creds = json.loads(site.credentials.read_text())
    assert creds['tls'] is True and creds['host'] == '%s-master.%s.svc.cluster.local' % (ns, ns)
    assert 'raibid-workers' in redis_cli(kubectl, ns, pod, 'XINFO GROUPS raibid:jobs').split()
    # With the password but without TLS: a plain-text server would answer PONG.
    assert 'PONG' not in redis_cli(kubectl, ns, pod, 'PING', tls=False, check=False)
    # The exporter reaches Redis over TLS too (scraped through the API server's pod proxy).
    metrics = kubectl('get', '--raw', '/api/v1/namespaces/%s/pods/%s:9121/proxy/metrics' % (ns, pod))
    assert re.search(r'^redis_up 1$', metrics, re.M), metrics[:2000]
    ca = kubectl.json('-n', ns, 'get', 'secret', ns + '-crt')['data']['ca.crt']
    consumer = kubectl.json('-n', namespace, 'get', 'secret', 'raibid-redis-auth')['data']
    assert base64.b64decode(consumer['tls']) == b'enable' and consumer['ca'] == ca
    assert base64.b64decode(consumer['password']).decode() == creds['password']

    # ServiceMonitor, PVC retention and NetworkPolicy, as the API server has them.
    monitor = kubectl.json('-n', ns, 'get', 'servicemonitor', ns)
    assert [e['port'] for e in monitor['spec']['endpoints']] == ['http-metrics']
    service = kubectl.json('-n', ns, 'get', 'service', ns + '-metrics')
    assert monitor['spec']['selector']['matchLabels'].items() <= service['metadata']['labels'].items()
    statefulset = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')
    retention = statefulset['spec']['persistentVolumeClaimRetentionPolicy']
    assert retention == {'whenDeleted': 'Delete', 'whenScaled': 'Delete'}
    policy = kubectl.json('-n', ns, 'get', 'networkpolicy', ns)['spec']
    assert policy['podSelector']['matchLabels']['app.kubernetes.io/instance'] == ns
    assert {p['port'] for p in policy['ingress'][0]['ports']} == {6379, 9121}

    output, again = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 0, output
    print('options converge %.0f s, re-run %.0f s' % (converge, again))

    # whenDeleted=Delete: uninstalling (without purge) takes the PVC too, which by default would stay.
    site('teardown.yml', 'hosts1', '-e', 'raibid_redis_purge=false')
    pvc = 'redis-data-%s' % pod
    kubectl('-n', ns, 'wait', '--for=delete', 'pvc/' + pvc, '--timeout=120s', check=False)
    assert kubectl('-n', ns, 'get', 'pvc', pvc, '--ignore-not-found', '-o', 'name').strip() == ''


def test_sentinel_over_tls(site, kubectl, tmp_path):
    options = tmp_path / 'options.yml'
    options.write_text(yaml.safe_dump({
        'raibid_redis_architecture': 'replication',
        'raibid_redis_sentinel': True,
        'raibid_redis_replica_count': 3,
        'raibid_redis_tls': True,
        'raibid_redis_resources': {'requests': {'memory': '64Mi', 'cpu': '50m'},
                                   'limits': {'memory': '256Mi', 'cpu': '500m'}},
    }))
    ns = site.namespace
    output, converge = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert 'Sentinel on port 26379' in output and 'TLS (CA in Secret' in output
    creds = json.loads(site.credentials.read_text())
    assert creds['tls'] is True and creds['sentinel_port'] == 26379
    assert creds['host'] == '%s.%s.svc.cluster.local' % (ns, ns)

    # Sentinel answers over TLS only, and names node-0, where the queue is (and, replicated, on the others).
    ask = 'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e -p 26379 %s --raw SENTINEL get-master-addr-by-name mymaster'
    sentinel = ['-n', ns, 'exec', ns + '-node-1', '-c', 'sentinel', '--', 'bash', '-c']
    master = kubectl(*sentinel, ask % '--tls --cacert "$REDIS_SENTINEL_TLS_CA_FILE"').split()[0]
    assert master.startswith(ns + '-node-0.')
    plain = subprocess.run(kubectl.argv(*sentinel, ask % ''), capture_output=True, text=True, timeout=60, check=False)
    assert master not in plain.stdout
    for node in range(3):
        groups, deadline = '', time.monotonic() + 60
        while 'raibid-workers' not in groups.split() and time.monotonic() < deadline:
            # Replicas may take a moment to copy what the role just created on the master.
            groups = redis_cli(kubectl, ns, '%s-node-%d' % (ns, node), 'XINFO GROUPS raibid:jobs', check=False)
            time.sleep(1)
        assert 'raibid-workers' in groups.split(), (node, groups)

    output, again = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 0, output
    print('sentinel over TLS: converge %.0f s, re-run %.0f s' % (converge, again))
