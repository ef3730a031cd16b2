# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role in a site playbook: check mode on an empty and on a deployed cluster, and 1 host versus 50."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import yaml

REPO = Path(__file__).resolve().parents[2]


def changed_count(output):
    return sum(int(n) for n in re.findall(r'changed=(\d+)', output))


@pytest.fixture
def site(tmp_path, kubeconfig, kubectl):
    """A site playbook over `hosts: all` that includes the role, with its own namespace and credentials file."""
    name = 'rtest-role-%s' % uuid.uuid4().hex[:6]
    credentials = tmp_path / 'creds.json'
    url = tmp_path / 'url'
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
            # What a site playbook does with the connection URL the role returns: hand it on, never print it.
            {'name': 'Keep the connection URL', 'run_once': True, 'delegate_to': 'localhost', 'no_log': True,
             'ansible.builtin.copy': {'content': '{{ raibid_redis_url }}', 'dest': str(url), 'mode': '0600'}},
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
    run.env = env
    run.namespace = name
    run.credentials = credentials
    run.url = url
    yield run
    # The role's teardown for every test's options, without its purge, whose wait for the namespace to go (about 15 s
    # a test) test_readme.py and molecule prove; the namespace goes in the background.
    run('teardown.yml', 'hosts1', '-e', 'raibid_redis_purge=false')
    kubectl('delete', 'namespace', name, '--wait=false', '--ignore-not-found', check=False)


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
    # The URL the role returns (raibid_redis_url) holds the credentials file's host and password, and works.
    creds, url = json.loads(site.credentials.read_text()), site.url.read_text()
    check_url(url, creds['host'], creds['password'], tls=False)
    assert xinfo_with_url(kubectl, site.namespace, pod['metadata']['name'], url) == ['raibid-workers']

    output, again = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output

    output, dummy = site('site.yml', 'hosts1', '--check')
    assert changed_count(output) == 0, output

    # A re-run that changes nothing runs no helm at all (the release is read from Helm's record of it); one that has
    # something for helm to do checks helm first, and stops with nothing changed.
    no_helm = ('-e', 'raibid_redis_helm_binary=/nonexistent/helm')
    output, dummy = site('site.yml', 'hosts1', *no_helm)
    assert changed_count(output) == 0, output
    assert 'TASK [raibid.queue.redis : Check that helm runs]' not in output
    revision = kubectl('get', 'secret', '-n', site.namespace, '-l', 'owner=helm', '-o', 'name').split()
    failed = site.raw('site.yml', 'hosts1', *no_helm, '-e', 'raibid_redis_maxmemory_percent=60')
    assert failed.returncode != 0
    assert "helm could not be run as '/nonexistent/helm'" in failed.stdout and 'Rolled back: nothing to undo' in \
        failed.stdout, failed.stdout[-3000:]
    assert kubectl('get', 'secret', '-n', site.namespace, '-l', 'owner=helm', '-o', 'name').split() == revision

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


def check_url(url, host, password, tls):
    """The design's format, and what redis-py's from_url reads from it: host, port 6379, password and TLS."""
    assert url == '%s://:%s@%s:6379' % ('rediss' if tls else 'redis', password, host)
    parsed = redis.connection.parse_url(url)
    assert (parsed['host'], parsed['port'], parsed['password']) == (host, 6379, password)
    assert (parsed.get('connection_class') is redis.connection.SSLConnection) == tls


def xinfo_with_url(kubectl, namespace, pod, url, **ssl):
    """redis-py's from_url with a connection URL, through `kubectl port-forward` to the pod: the URL's password,
    scheme and TLS, with its in-cluster host and port replaced by the forward's (the certificate names
    localhost), and redis-py's ssl_* options (ssl_ca_certs, ssl_certfile, ssl_keyfile). Returns the names of the
    groups of raibid:jobs."""
    with forwarded_port(kubectl, namespace, pod) as port:
        local = re.sub(r'@[^@]+$', '@localhost:%d' % port, url)
        client = redis.Redis.from_url(local, socket_timeout=30, decode_responses=True, **ssl)
        try:
            return [g['name'] for g in client.xinfo_groups('raibid:jobs')]
        finally:
            client.close()


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
    # The Secret's url is the URL the role returns, and it works over TLS with the CA.
    url = base64.b64decode(consumer['url']).decode()
    assert url == site.url.read_text()
    check_url(url, creds['host'], creds['password'], tls=True)
    ca_file = tmp_path / 'ca.crt'
    ca_file.write_bytes(base64.b64decode(consumer['ca']))
    assert xinfo_with_url(kubectl, ns, pod, url, ssl_ca_certs=str(ca_file)) == ['raibid-workers']

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


def test_mutual_tls_refuses_clients_without_a_certificate(site, kubectl, namespace, tmp_path):
    options = tmp_path / 'options.yml'
    options.write_text(yaml.safe_dump({
        'raibid_redis_tls': True,
        'raibid_redis_tls_client_auth': True,
        'raibid_redis_backup': True,
        'raibid_redis_consumer_secrets': [{'namespace': namespace}],
    }))
    ns, pod = site.namespace, site.namespace + '-master-0'
    # Check mode issues certificates only in memory: no namespace, no Secret, no file.
    site('site.yml', 'hosts1', '--check', '-e', '@%s' % options)
    assert kubectl('get', 'namespace', ns, '--ignore-not-found', '-o', 'name').strip() == ''
    assert not list(tmp_path.glob(ns + '-*'))
    output, converge = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert 'TLS with client certificates' in output

    # The controller's files, named by the credentials file, private; the consumer's pair in its Secret.
    creds = json.loads(site.credentials.read_text())
    files = {name: creds['tls_%s_file' % name] for name in ('ca', 'cert', 'key')}
    assert all(os.stat(path).st_mode & 0o777 == 0o600 for path in files.values())
    consumer = kubectl.json('-n', namespace, 'get', 'secret', 'raibid-redis-auth')['data']
    for key in ('ca', 'cert', 'key'):
        (tmp_path / ('consumer.' + key)).write_bytes(base64.b64decode(consumer[key]))
    assert (tmp_path / 'consumer.ca').read_text() == Path(files['ca']).read_text()
    # The role keeps its CA, with its key, in a Secret of its own: not in the one the pods mount.
    assert 'tls.key' in kubectl.json('-n', ns, 'get', 'secret', ns + '-ca')['data']
    assert kubectl.json('-n', ns, 'get', 'secret', ns + '-tls')['data']['ca.crt'] == consumer['ca']

    url = site.url.read_text()
    ca = str(tmp_path / 'consumer.ca')
    env = dict(os.environ, REDISCLI_AUTH=creds['password'])

    def ping(*flags):
        """redis-cli PING with the password and the CA, through a port-forward of its own (kubectl port-forward
        ends when the server drops a connection, as it does a refused handshake)."""
        with forwarded_port(kubectl, ns, pod) as port:
            return subprocess.run(['redis-cli', '-p', str(port), '--tls', '--cacert', ca, '--no-auth-warning', '-e',
                                   *flags, 'PING'], env=env, capture_output=True, text=True, timeout=60, check=False)

    # With the consumer's certificate, PONG; without one the handshake fails, with the password right.
    served = ping('--cert', str(tmp_path / 'consumer.cert'), '--key', str(tmp_path / 'consumer.key'))
    assert served.stdout.strip() == 'PONG', served
    refused = ping()
    assert refused.returncode != 0 and 'PONG' not in refused.stdout, refused
    with pytest.raises(redis.exceptions.ConnectionError):
        xinfo_with_url(kubectl, ns, pod, url, ssl_ca_certs=ca)
    # redis-py with the controller's files, as the credentials file names them.
    assert xinfo_with_url(kubectl, ns, pod, url, ssl_ca_certs=files['ca'], ssl_certfile=files['cert'],
                          ssl_keyfile=files['key']) == ['raibid-workers']

    # The backup Job presents a certificate too, and its snapshot passes redis-check-rdb.
    backups = tmp_path / 'backups'
    site_play = yaml.safe_load((tmp_path / 'site.yml').read_text())[0]
    (tmp_path / 'backup.yml').write_text(yaml.safe_dump([dict(site_play, name='Back up', tasks=[
        site_play['tasks'][0],
        {'name': 'Back up now', 'ansible.builtin.include_role': {'name': 'raibid.queue.redis', 'tasks_from': 'backup_now'},
         'vars': {'raibid_redis_backup_dest': str(backups)}}])]))
    site('backup.yml', 'hosts1', '-e', '@%s' % options)
    assert [path.name for path in backups.iterdir()][0].endswith('.rdb')

    output, again = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 0, output
    print('mutual TLS converge %.0f s, re-run %.0f s' % (converge, again))

    # A CA managed elsewhere (the shape of a cert-manager CA issuer's Secret): every certificate is issued again, the
    # pods restart with the new one, and a consumer certificate of the old CA is refused.
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-days', '30', '-subj', '/CN=team CA', '-addext', 'basicConstraints=critical,CA:TRUE',
                    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', str(tmp_path / 'team.key'),
                    '-out', str(tmp_path / 'team.crt')], check=True, capture_output=True)
    kubectl('-n', ns, 'create', 'secret', 'tls', 'team-ca', '--cert', str(tmp_path / 'team.crt'),
            '--key', str(tmp_path / 'team.key'))
    site('site.yml', 'hosts1', '-e', '@%s' % options, '-e', 'raibid_redis_tls_ca_secret=team-ca')
    assert Path(files['ca']).read_text() == (tmp_path / 'team.crt').read_text()
    assert ping('--cert', str(tmp_path / 'consumer.cert'), '--key', str(tmp_path / 'consumer.key')).returncode != 0
    consumer = kubectl.json('-n', namespace, 'get', 'secret', 'raibid-redis-auth')['data']
    for key in ('ca', 'cert', 'key'):
        (tmp_path / ('consumer.' + key)).write_bytes(base64.b64decode(consumer[key]))
    served = ping('--cert', str(tmp_path / 'consumer.cert'), '--key', str(tmp_path / 'consumer.key'))
    assert served.stdout.strip() == 'PONG', served
    assert xinfo_with_url(kubectl, ns, pod, url, ssl_ca_certs=files['ca'], ssl_certfile=files['cert'],
                          ssl_keyfile=files['key']) == ['raibid-workers']
    output, dummy = site('site.yml', 'hosts1', '-e', '@%s' % options, '-e', 'raibid_redis_tls_ca_secret=team-ca')
    assert changed_count(output) == 0, output


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
    # The try-it hint execs into the master the queue module found through Sentinel.
    assert 'exec %s-node-0 -c redis' % ns in output
    creds = json.loads(site.credentials.read_text())
    assert creds['tls'] is True and creds['sentinel_port'] == 26379
    assert creds['host'] == '%s.%s.svc.cluster.local' % (ns, ns)
    # With Sentinel the URL names the same Service as the address: any node, the master or a replica.
    check_url(site.url.read_text(), creds['host'], creds['password'], tls=True)

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


@contextlib.contextmanager
def forwarded_port(kubectl, namespace, pod):
    """A local port forwarded to the pod's 6379 by `kubectl port-forward`."""
    proc = subprocess.Popen(kubectl.argv('-n', namespace, 'port-forward', 'pod/' + pod, ':6379'),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = re.search(r'127\.0\.0\.1:(\d+) ->', line)
        assert port, (line, proc.stderr.read() if proc.poll() is not None else '')
        yield int(port.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def redis_client(kubectl, namespace, pod, password):
    """redis-py through `kubectl port-forward` (a connection of its own, independent of the role's module)."""
    with forwarded_port(kubectl, namespace, pod) as port:
        client = redis.Redis(port=port, password=password, socket_timeout=60, decode_responses=True)
        yield client
        client.close()


def redis_restarts(kubectl, namespace, pod):
    status = kubectl.json('-n', namespace, 'get', 'pod', pod)['status']['containerStatuses']
    return {c['name']: c['restartCount'] for c in status}


def test_memory_full_refuses_writes_loses_nothing_and_recovers(site, kubectl, tmp_path):
    """A small memory limit: Redis refuses XADD with OOM at maxmemory instead of being killed, keeps every job it
    accepted, and takes writes again once the jobs are read, acknowledged and trimmed."""
    options = tmp_path / 'options.yml'
    options.write_text(yaml.safe_dump({
        'raibid_redis_resources': {'requests': {'memory': '64Mi', 'cpu': '50m'},
                                   'limits': {'memory': '96Mi', 'cpu': '500m'}},
    }))
    ns, pod = site.namespace, site.namespace + '-master-0'
    output, dummy = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert 'maxmemory 75497472 bytes' in output
    # 75% of 96Mi, as the server has it.
    assert redis_cli(kubectl, ns, pod, 'CONFIG GET maxmemory', tls=False).split() == ['maxmemory', '75497472']
    assert redis_cli(kubectl, ns, pod, 'CONFIG GET maxmemory-policy', tls=False).split()[1] == 'noeviction'
    uid = kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid']
    before = redis_restarts(kubectl, ns, pod)
    password = json.loads(site.credentials.read_text())['password']
    stream, group = 'raibid:jobs', 'raibid-workers'

    began = time.monotonic()
    accepted, refused, payload = [], 0, 'x' * 4000
    with redis_client(kubectl, ns, pod, password) as client:
        # Flood until whole batches are refused; 40000 x 4 kB is far beyond 72 MiB, so the loop must end in refusals.
        while len(accepted) < 40000:
            pipe = client.pipeline(transaction=False)
            for dummy in range(100):
                pipe.xadd(stream, {'job_type': 'flood', 'payload': payload})
            replies = pipe.execute(raise_on_error=False)
            errors = [r for r in replies if isinstance(r, Exception)]
            assert all(isinstance(e, redis.exceptions.OutOfMemoryError) for e in errors), errors[:3]
            accepted += [r for r in replies if not isinstance(r, Exception)]
            refused += len(errors)
            if len(errors) == len(replies):
                break
        flood_seconds = time.monotonic() - began
        assert refused > 0, 'no write was refused after %d jobs' % len(accepted)
        info = client.info('memory')
        assert info['maxmemory'] == 75497472 and info['used_memory'] >= info['maxmemory'] * 0.9, info
        # Near the limit a lone small write may still fit (buffers freed after the pipeline); if so, it counts.
        try:
            accepted.append(client.xadd(stream, {'job_type': 'one-more'}))
        except redis.exceptions.OutOfMemoryError:
            refused += 1

        # Every accepted job is in the stream (counted by the server and by a second route, kubectl exec).
        assert client.xlen(stream) == len(accepted)
        assert int(redis_cli(kubectl, ns, pod, 'XLEN %s' % stream, tls=False)) == len(accepted)
        # Redis was not killed: same pod, no container restart.
        assert kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid'] == uid
        assert redis_restarts(kubectl, ns, pod) == before

        # Workers can still read and acknowledge while memory is full, and get exactly the accepted jobs. In batches
        # of 100 (400 kB replies): 2000 at a time (8 MB replies) got Redis OOM-killed at this tiny 96Mi limit, since
        # reply buffers are not bounded by maxmemory.
        delivered = []
        while True:
            try:
                batch = client.xreadgroup(group, 'worker-1', {stream: '>'}, count=100)
            except redis.exceptions.ConnectionError:
                pytest.fail('connection lost after %d of %d jobs; pod status %s' % (
                    len(delivered), len(accepted), json.dumps(kubectl.json('-n', ns, 'get', 'pod', pod)['status'])))
            if not batch:
                break
            ids = [entry_id for entry_id, dummy in batch[0][1]]
            assert client.xack(stream, group, *ids) == len(ids)
            delivered += ids
        assert delivered == accepted
        assert client.xpending(stream, group)['pending'] == 0

        # Trim what was processed (MINID just above the last delivered ID), then writes work again.
        last = client.xinfo_groups(stream)[0]['last-delivered-id']
        ms, seq = last.split('-')
        assert client.xtrim(stream, minid='%s-%d' % (ms, int(seq) + 1), approximate=False) == len(accepted)
        assert client.xlen(stream) == 0
        new_id = client.xadd(stream, {'job_type': 'after-trim'})
        assert client.xrange(stream) == [(new_id, {'job_type': 'after-trim'})]
    assert redis_restarts(kubectl, ns, pod) == before
    print('memory flood: %d jobs accepted, %d refused, %.0f s' % (len(accepted), refused, flood_seconds))


def test_hardened_commands_disabled_while_workers_keda_and_exporter_work(site, kubectl):
    ns, pod = site.namespace, site.namespace + '-master-0'
    output, dummy = site('site.yml', 'hosts1')
    # The testbed's Redis 7.0.15 is in CVE-2025-49844's range; Lua is off, so the summary says it is mitigated.
    assert re.search(r'CVE-2025-49844.*mitigated: EVAL ', output), output[-3000:]
    disabled = ['EVAL "return 1" 0', 'EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0', 'EVAL_RO "return 1" 0',
                'EVALSHA_RO e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0', 'SCRIPT LOAD "return 1"', 'SCRIPT FLUSH',
                'FUNCTION LIST', 'FCALL f 0', 'FCALL_RO f 0', 'FLUSHALL', 'FLUSHDB']
    for command in disabled:
        res = subprocess.run(kubectl.argv('-n', ns, 'exec', pod, '-c', 'redis', '--', 'bash', '-c',
                                          'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli %s' % command),
                             capture_output=True, text=True, timeout=60, check=False)
        assert 'unknown command' in res.stdout + res.stderr, (command, res.stdout, res.stderr)
    # The queue survived FLUSHALL/FLUSHDB attempts.
    assert 'raibid-workers' in redis_cli(kubectl, ns, pod, 'XINFO GROUPS raibid:jobs', tls=False).split()

    password = json.loads(site.credentials.read_text())['password']
    stream, group = 'raibid:jobs', 'raibid-workers'
    with redis_client(kubectl, ns, pod, password) as client:
        # A producer and a worker, as raibid-ci's agents do it.
        job = client.xadd(stream, {'job_id': 'j1', 'job_type': 'build', 'payload': '{}'})
        [[dummy, entries]] = client.xreadgroup(group, 'agent-1', {stream: '>'}, count=10, block=1000)
        assert [e[0] for e in entries] == [job]
        # KEDA's redis-streams scaler: XPENDING, XLEN, XINFO GROUPS (lag).
        assert client.xpending(stream, group)['pending'] == 1
        assert client.xlen(stream) >= 1
        assert client.xinfo_groups(stream)[0]['lag'] == 0
        assert client.xautoclaim(stream, group, 'agent-2', 0, '0-0', count=10)[1][0][0] == job
        assert client.xack(stream, group, job) == 1
        assert client.xpending(stream, group)['pending'] == 0
    # The exporter still scrapes Redis without errors.
    metrics = kubectl('get', '--raw', '/api/v1/namespaces/%s/pods/%s:9121/proxy/metrics' % (ns, pod))
    assert re.search(r'^redis_up 1$', metrics, re.M), metrics[:2000]
    assert re.search(r'^redis_exporter_last_scrape_error(\{[^}]*\})? 0$', metrics, re.M), metrics[:2000]
    assert re.search(r'^redis_config_maxmemory (402653184|4\.02653184e\+08)$', metrics, re.M), metrics[:2000]
    # The role's own module (PING, XINFO, XGROUP, XTRIM, INFO, CONFIG GET...) still works: a re-run changes nothing.
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output


@pytest.fixture(scope='session')
def helm_binary():
    """The helm the role uses on the testbed (testbed/tools/helm.sh prints its path last), unless one is on PATH."""
    proc = subprocess.run(['bash', str(REPO / 'testbed' / 'tools' / 'helm.sh')], capture_output=True, text=True,
                          timeout=900, check=True)
    return proc.stdout.split()[-1]


def helm_status(helm_binary, kubeconfig, namespace):
    proc = subprocess.run([helm_binary, '--kubeconfig', kubeconfig, 'status', namespace, '-n', namespace, '-o', 'json'],
                          capture_output=True, text=True, timeout=60, check=True)
    info = json.loads(proc.stdout)
    return info['info']['status'], info['version']


def interrupt_helm(helm_binary, kubeconfig, namespace, args, pending, before=None):
    """Runs `helm <args> --wait` and kills it (SIGKILL, as a lost controller would) once the release is `pending`
    and `before` (if given) returns true: the release stays behind in that state."""
    proc = subprocess.Popen([helm_binary, '--kubeconfig', kubeconfig, *args, '--wait', '--timeout', '600s'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            res = subprocess.run([helm_binary, '--kubeconfig', kubeconfig, 'status', namespace, '-n', namespace, '-o',
                                  'json'], capture_output=True, text=True, timeout=60, check=False)
            if res.returncode == 0 and json.loads(res.stdout)['info']['status'] == pending and (before is None or before()):
                break
            time.sleep(0.5)
        assert proc.poll() is None, 'helm finished before it could be interrupted'
    finally:
        proc.kill()
        proc.wait()
    assert helm_status(helm_binary, kubeconfig, namespace)[0] == pending


def test_helm_storage_driver_other_than_secrets(site, kubectl):
    """With HELM_DRIVER=configmap there is no Secret of the release to read: the role asks helm, and a re-run is
    still changed=0."""
    site.env['HELM_DRIVER'] = 'configmap'
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) >= 1
    assert kubectl('get', 'configmap', '-n', site.namespace, '-l', 'owner=helm', '-o', 'name').split() == \
        ['configmap/sh.helm.release.v1.%s.v1' % site.namespace]
    assert kubectl('get', 'secret', '-n', site.namespace, '-l', 'owner=helm', '-o', 'name') == ''
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output
    assert 'TASK [raibid.queue.redis : Read the Helm release, whatever its state]' in output


def test_release_left_pending_upgrade_or_failed_is_rolled_back(site, kubectl, kubeconfig, helm_binary):
    ns, pod = site.namespace, site.namespace + '-master-0'
    chart = str(REPO / 'testbed' / 'charts' / 'redis')
    site('site.yml', 'hosts1')
    job = redis_cli(kubectl, ns, pod, 'XADD raibid:jobs "*" job_id kept', tls=False).strip()
    pvc_uid = kubectl.json('-n', ns, 'get', 'pvc', 'redis-data-' + pod)['metadata']['uid']
    assert helm_status(helm_binary, kubeconfig, ns) == ('deployed', 1)

    # An upgrade interrupted while helm waits for the rollout (a new pod annotation restarts the pod).
    interrupt_helm(helm_binary, kubeconfig, ns, ['upgrade', ns, chart, '-n', ns, '--reuse-values', '--set',
                                                 'master.podAnnotations.interrupted=yes'], 'pending-upgrade')
    output, dummy = site('site.yml', 'hosts1')
    assert "was 'pending-upgrade' at revision 2" in output and 'rolled back to revision 1' in output, output[-3000:]
    # Revision 3 is the rollback; the role's own values equal revision 1, so it upgraded nothing after it.
    assert helm_status(helm_binary, kubeconfig, ns) == ('deployed', 3)
    template = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')['spec']['template']
    assert 'interrupted' not in template['metadata'].get('annotations', {})

    # A failed upgrade: an image that does not exist never becomes Ready.
    res = subprocess.run([helm_binary, '--kubeconfig', kubeconfig, 'upgrade', ns, chart, '-n', ns, '--reuse-values',
                          '--set', 'image.tag=does-not-exist', '--wait', '--timeout', '30s'],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode != 0
    assert helm_status(helm_binary, kubeconfig, ns) == ('failed', 4)
    output, dummy = site('site.yml', 'hosts1')
    assert "was 'failed' at revision 4" in output and 'rolled back to revision 3' in output, output[-3000:]
    assert helm_status(helm_binary, kubeconfig, ns) == ('deployed', 5)

    # The queue, its job and its volume came through; the pod runs the right image and is Ready.
    assert redis_cli(kubectl, ns, pod, 'XRANGE raibid:jobs - +', tls=False).split()[:3] == [job, 'job_id', 'kept']
    assert kubectl.json('-n', ns, 'get', 'pvc', 'redis-data-' + pod)['metadata']['uid'] == pvc_uid
    status = kubectl.json('-n', ns, 'get', 'pod', pod)['status']
    assert all(c['ready'] for c in status['containerStatuses'])
    assert 'does-not-exist' not in json.dumps(status['containerStatuses'])
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output


def test_release_left_pending_install_is_uninstalled_keeping_its_volume(site, kubectl, kubeconfig, helm_binary):
    ns, pod = site.namespace, site.namespace + '-master-0'
    chart = str(REPO / 'testbed' / 'charts' / 'redis')

    def redis_has_a_job():
        res = subprocess.run(kubectl.argv('-n', ns, 'exec', pod, '-c', 'redis', '--', 'bash', '-c',
                                          'REDISCLI_AUTH="$(< $REDIS_PASSWORD_FILE)" redis-cli -e '
                                          'XADD raibid:jobs "*" job_id kept'), capture_output=True, text=True,
                             timeout=60, check=False)
        return res.returncode == 0

    # A first install interrupted while helm waits: the exporter image does not exist, so the pod never becomes
    # Ready, but Redis runs and takes a job onto the PVC; whenDeleted=Delete would take that PVC with the StatefulSet.
    interrupt_helm(helm_binary, kubeconfig, ns, [
        'install', ns, chart, '-n', ns, '--create-namespace', '--set', 'fullnameOverride=%s' % ns,
        '--set', 'metrics.enabled=true,metrics.image.tag=does-not-exist',
        '--set', 'master.persistentVolumeClaimRetentionPolicy.enabled=true',
        '--set', 'master.persistentVolumeClaimRetentionPolicy.whenDeleted=Delete'], 'pending-install', redis_has_a_job)
    pvc_uid = kubectl.json('-n', ns, 'get', 'pvc', 'redis-data-' + pod)['metadata']['uid']

    output, dummy = site('site.yml', 'hosts1')
    assert "was 'pending-install' at revision 1" in output and 'uninstalled, since no revision' in output, output[-3000:]
    assert helm_status(helm_binary, kubeconfig, ns) == ('deployed', 1)
    assert kubectl.json('-n', ns, 'get', 'pvc', 'redis-data-' + pod)['metadata']['uid'] == pvc_uid
    assert 'kept' in redis_cli(kubectl, ns, pod, 'XRANGE raibid:jobs - +', tls=False).split()
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output


def test_volume_size_change_expands_or_stops_before_any_change(site, kubectl, kubeconfig, helm_binary, tmp_path):
    ns, pod = site.namespace, site.namespace + '-master-0'
    pvc = 'redis-data-' + pod

    def run_with_size(size, expect_success=True):
        options = tmp_path / ('size-%s.yml' % size)
        options.write_text(yaml.safe_dump({'raibid_redis_persistence_size': size}))
        if expect_success:
            return site('site.yml', 'hosts1', '-e', '@%s' % options)[0]
        env = dict(os.environ, RAIBID_TEST_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR='1')
        env.pop('KUBECONFIG', None)
        proc = subprocess.run(['ansible-playbook', '-i', str(tmp_path / 'hosts1'), str(tmp_path / 'site.yml'), '-e',
                               '@%s' % options], env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode != 0, proc.stdout[-3000:]
        return proc.stdout

    def state():
        claim = kubectl.json('-n', ns, 'get', 'pvc', pvc)
        sts = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')
        return (claim['spec']['resources']['requests']['storage'],
                sts['spec']['volumeClaimTemplates'][0]['spec']['resources']['requests']['storage'],
                helm_status(helm_binary, kubeconfig, ns), kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid'])

    run_with_size('1Gi')
    before = state()
    assert before[:3] == ('1Gi', '1Gi', ('deployed', 1))
    storage_class = kubectl.json('-n', ns, 'get', 'pvc', pvc)['spec']['storageClassName']
    expandable = kubectl.json('get', 'storageclass', storage_class).get('allowVolumeExpansion', False)

    # Shrinking is refused before anything changes.
    output = run_with_size('512Mi', expect_success=False)
    assert 'cannot shrink' in output and 'Nothing was changed' in output
    assert state() == before

    def patch(value):
        kubectl('patch', 'storageclass', storage_class, '--type=merge', '-p', json.dumps({'allowVolumeExpansion': value}))

    try:
        # A StorageClass without volume expansion: a clear error, nothing changed.
        patch(False)
        output = run_with_size('2Gi', expect_success=False)
        assert 'does not allow volume' in output and 'Nothing was changed' in output, output[-3000:]
        assert state() == before

        # With volume expansion: the PVC is patched; the StatefulSet (immutable template) and the pod stay as they are.
        patch(True)
        output = run_with_size('2Gi')
        assert changed_count(output) >= 1
        assert state() == ('2Gi', '1Gi', ('deployed', 1), before[3])
        output = run_with_size('2Gi')
        assert changed_count(output) == 0, output
    finally:
        patch(expandable)


def during_the_wait(kubeconfig, tmp_path, options, ready, act):
    """Runs the site playbook with the extra vars file `options` in the background; once the role waits for the
    rollout and ready() holds, calls act() (the fault) once. The role must still succeed; returns act()'s result."""
    env = dict(os.environ, RAIBID_TEST_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR='1')
    env.pop('KUBECONFIG', None)
    log = tmp_path / 'run.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(['ansible-playbook', '-i', str(tmp_path / 'hosts1'), str(tmp_path / 'site.yml'), '-e',
                                 '@%s' % options], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            deadline, done = time.monotonic() + 300, None
            while time.monotonic() < deadline and proc.poll() is None and done is None:
                if 'Wait for the master StatefulSet to roll out' in log.read_text() and ready():
                    done = act()
                time.sleep(0.5)
            assert done, 'no fault while the role waited:\n' + log.read_text()[-3000:]
            assert proc.wait(timeout=900) == 0, log.read_text()[-4000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    return done


def fsync_change(site, kubectl, tmp_path):
    """Deploys, enqueues a job, and writes options whose configuration change restarts the pod (a rollout)."""
    ns, pod = site.namespace, site.namespace + '-master-0'
    site('site.yml', 'hosts1')
    job = redis_cli(kubectl, ns, pod, 'XADD raibid:jobs "*" job_id kept', tls=False).strip()
    options = tmp_path / 'fsync.yml'
    options.write_text(yaml.safe_dump({'raibid_redis_appendfsync': 'always'}))
    uid = kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid']
    generation = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')['metadata']['generation']
    return job, options, uid, generation


def assert_rolled_out_with_the_job(site, kubectl, job, options, not_uids):
    """The role waited for the new pod: Ready, new settings, the queue and its job there; a re-run changes nothing."""
    ns, pod = site.namespace, site.namespace + '-master-0'
    now = kubectl.json('-n', ns, 'get', 'pod', pod)
    assert now['metadata']['uid'] not in not_uids
    assert all(c['ready'] for c in now['status']['containerStatuses'])
    assert redis_cli(kubectl, ns, pod, 'CONFIG GET appendfsync', tls=False).split() == ['appendfsync', 'always']
    assert redis_cli(kubectl, ns, pod, 'XRANGE raibid:jobs - +', tls=False).split()[:3] == [job, 'job_id', 'kept']
    output, dummy = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 0, output


def test_redis_pod_deleted_while_the_role_waits(site, kubectl, kubeconfig, tmp_path):
    ns, pod = site.namespace, site.namespace + '-master-0'
    job, options, first, generation = fsync_change(site, kubectl, tmp_path)

    def replaced():
        if not kubectl('-n', ns, 'get', 'pod', pod, '--ignore-not-found', '-o', 'name').strip():
            return False
        sts = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')['metadata']['generation']
        return sts > generation and kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid'] != first

    def delete():
        # While the role waits for the rollout, the new pod is deleted too.
        uid = kubectl.json('-n', ns, 'get', 'pod', pod)['metadata']['uid']
        kubectl('-n', ns, 'delete', 'pod', pod, '--wait=false')
        return uid

    deleted = during_the_wait(kubeconfig, tmp_path, options, replaced, delete)
    assert_rolled_out_with_the_job(site, kubectl, job, options, (first, deleted))


def test_api_server_restarted_while_the_role_waits(site, kubectl, kubeconfig, tmp_path):
    """The API server goes away for some seconds during the rollout wait (a control-plane upgrade, say): the waits
    ride through it and the run ends as usual. Needs the testbed, whose API server the test can restart."""
    if kubeconfig != str(Path(os.environ.get('RAIBID_TESTBED_DIR', '/var/lib/raibid-testbed')) / 'admin.kubeconfig'):
        pytest.skip('restarting the API server needs the local testbed')
    ns = site.namespace
    job, options, first, generation = fsync_change(site, kubectl, tmp_path)

    def upgraded():
        return kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')['metadata']['generation'] > generation

    def restart():
        subprocess.run(['bash', str(REPO / 'testbed/testbed.sh'), 'restart-apiserver'], check=True, timeout=300,
                       capture_output=True)
        return True

    during_the_wait(kubeconfig, tmp_path, options, upgraded, restart)
    assert_rolled_out_with_the_job(site, kubectl, job, options, (first,))


def test_truncated_aof_after_a_crash_keeps_the_jobs_written_before(site, kubectl, images):
    ns, pod = site.namespace, site.namespace + '-master-0'
    site('site.yml', 'hosts1')
    for n in range(50):
        redis_cli(kubectl, ns, pod, 'XADD raibid:jobs "*" job_id job-%d' % n, tls=False)
    ids = redis_cli(kubectl, ns, pod, 'XRANGE raibid:jobs - +', tls=False).split()
    assert ids.count('job_id') == 50
    # Stop Redis (its AOF is complete on the PVC), then leave a torn command at the end of the last AOF file, as a
    # crash in the middle of a write does.
    kubectl('-n', ns, 'scale', 'statefulset', ns + '-master', '--replicas=0')
    kubectl('-n', ns, 'wait', '--for=delete', 'pod/' + pod, '--timeout=120s')
    # printf turns the escapes into CR LF: a RESP command cut off in its last argument.
    torn = r"""printf '*5\r\n$4\r\nXADD\r\n$11\r\nraibid:jobs\r\n$1\r\n*\r\n$6\r\njob_' >> "$f"; """
    kubectl.apply({
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'tear-aof', 'namespace': ns},
        'spec': {
            'restartPolicy': 'Never',
            'securityContext': {'runAsUser': 1001, 'runAsGroup': 1001, 'fsGroup': 1001},
            'containers': [{
                'name': 'tear', 'image': images['RAIBID_REDIS_IMAGE'], 'imagePullPolicy': 'Never',
                'command': ['bash', '-ec', 'f=$(ls /data/appendonlydir/*.incr.aof | sort -V | tail -1); ' + torn
                            + 'tail -c 60 "$f" | od -c; ! redis-check-aof "$f"'],
                'volumeMounts': [{'name': 'data', 'mountPath': '/data'}],
            }],
            'volumes': [{'name': 'data', 'persistentVolumeClaim': {'claimName': 'redis-data-' + pod}}],
        },
    })
    kubectl('-n', ns, 'wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/tear-aof', '--timeout=120s')
    kubectl('-n', ns, 'delete', 'pod', 'tear-aof')

    # Redis starts (aof-load-truncated yes drops the torn command), with every job written before the cut.
    kubectl('-n', ns, 'scale', 'statefulset', ns + '-master', '--replicas=1')
    deadline = time.monotonic() + 60
    while not kubectl('-n', ns, 'get', 'pod', pod, '--ignore-not-found', '-o', 'name').strip():
        assert time.monotonic() < deadline, 'the StatefulSet did not recreate ' + pod
        time.sleep(1)
    kubectl('-n', ns, 'wait', '--for=condition=Ready', 'pod/' + pod, '--timeout=180s')
    assert redis_cli(kubectl, ns, pod, 'XRANGE raibid:jobs - +', tls=False).split() == ids
    logs = kubectl('-n', ns, 'logs', pod, '-c', 'redis')
    assert 'loaded anyway because aof-load-truncated is enabled' in logs, logs[-2000:]
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output


def test_rerun_with_a_backlog_beyond_max_length_loses_no_job(site, kubectl):
    """Issue #10's scenario through the role: 15000 jobs, a worker read 100 without acknowledging them and the rest
    were never delivered (workers down). Re-running the role (max_length 10000) removes none of them; once the
    workers have processed everything, a re-run trims the processed history to max_length. Counted with a
    connection of the test's own."""
    ns, pod = site.namespace, site.namespace + '-master-0'
    site('site.yml', 'hosts1')
    password = json.loads(site.credentials.read_text())['password']
    stream, group = 'raibid:jobs', 'raibid-workers'
    with redis_client(kubectl, ns, pod, password) as client:
        pipe = client.pipeline(transaction=False)
        for i in range(15000):
            pipe.xadd(stream, {'job_id': 'j%d' % i, 'job_type': 'build', 'payload': '{}'})
        pipe.execute()
        held = client.xreadgroup(group, 'worker-1', {stream: '>'}, count=100)[0][1]
        assert len(held) == 100

    proc = site.raw('site.yml', 'hosts1')
    assert proc.returncode == 0, proc.stdout[-3000:]
    # The module's warning (on stderr, possibly wrapped).
    assert '15000 jobs are waiting in group raibid-workers' in ' '.join(proc.stderr.split()), proc.stderr[-3000:]
    with redis_client(kubectl, ns, pod, password) as client:
        assert client.xlen(stream) == 15000
        assert client.xpending(stream, group)['pending'] == 100
        assert client.xrange(stream, count=1)[0][1]['job_id'] == 'j0'
        # The workers come back and process everything.
        client.xack(stream, group, *[entry_id for entry_id, dummy in held])
        while True:
            reply = client.xreadgroup(group, 'worker-1', {stream: '>'}, count=1000)
            if not reply or not reply[0][1]:
                break
            client.xack(stream, group, *[entry_id for entry_id, dummy in reply[0][1]])
        assert client.xpending(stream, group)['pending'] == 0

    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) >= 1
    with redis_client(kubectl, ns, pod, password) as client:
        assert client.xlen(stream) == 10000
        # The oldest processed jobs went; the newest 10000 stayed.
        assert client.xrange(stream, count=1)[0][1]['job_id'] == 'j5000'
    output, dummy = site('site.yml', 'hosts1')
    assert changed_count(output) == 0, output[-3000:]


def test_port_forward_dropped_during_a_batch(site, kubectl, kubeconfig, tmp_path):
    """The controller's port-forward breaks (the API server restarts) while redis_job writes a big batch: a clear
    error, changed, and an exact account: every entry ID it reports is in the stream, and the jobs it says were
    surely not written are not. Needs the testbed, whose API server the test can restart."""
    if kubeconfig != str(Path(os.environ.get('RAIBID_TESTBED_DIR', '/var/lib/raibid-testbed')) / 'admin.kubeconfig'):
        pytest.skip('restarting the API server needs the local testbed')
    ns, pod = site.namespace, site.namespace + '-master-0'
    site('site.yml', 'hosts1')
    jobs = tmp_path / 'jobs.json'
    jobs.write_text(json.dumps([{'job_id': 'b%d' % i, 'job_type': 'build', 'payload': {'n': i}}
                                for i in range(200000)]))
    result = tmp_path / 'result.json'
    (tmp_path / 'batch.yml').write_text(yaml.safe_dump([{
        'name': 'A big batch through the port-forward', 'hosts': 'localhost', 'gather_facts': False,
        'tasks': [
            {'name': 'Enqueue', 'raibid.queue.redis_job': {
                'kubernetes_pod': pod, 'kubernetes_namespace': ns, 'kubeconfig': kubeconfig,
                'login_password': "{{ (lookup('ansible.builtin.file', '%s') | from_json).password }}" % site.credentials,
                'jobs_file': str(jobs), 'max_length': 0},
             'register': 'batch', 'ignore_errors': True, 'no_log': True},
            {'name': 'Keep the result', 'ansible.builtin.copy': {
                'dest': str(result), 'mode': '0600',
                'content': '{{ batch | ansible.builtin.dict2items | rejectattr("key", "equalto", "invocation")'
                           ' | ansible.builtin.items2dict | to_json }}'}},
        ]}]))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1')
    with open(tmp_path / 'batch.log', 'w') as out:
        proc = subprocess.Popen(['ansible-playbook', '-i', 'localhost,', '-c', 'local', str(tmp_path / 'batch.yml'),
                                 '-e', 'ansible_python_interpreter=%s' % sys.executable],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                if int(redis_cli(kubectl, ns, pod, 'XLEN raibid:jobs', tls=False).strip() or 0) > 1000:
                    break
                time.sleep(0.3)
            assert proc.poll() is None, 'the batch ended before the fault:\n' + (tmp_path / 'batch.log').read_text()
            subprocess.run(['bash', str(REPO / 'testbed/testbed.sh'), 'restart-apiserver'], check=True, timeout=300,
                           capture_output=True)
            assert proc.wait(timeout=600) == 0, (tmp_path / 'batch.log').read_text()[-4000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    batch = json.loads(result.read_text())
    assert batch['failed'] and batch['changed'], batch.get('msg')
    assert 'connection to Redis broke' in batch['msg'] and 'Traceback' not in batch['msg'], batch['msg']
    written = {i: entry_id for i, entry_id in enumerate(batch['entry_ids']) if entry_id}
    assert 0 < len(written) == batch['written'] < 200000
    in_stream = {}
    with redis_client(kubectl, ns, pod, json.loads(site.credentials.read_text())['password']) as client:
        for entry_id, fields in client.xrange('raibid:jobs'):
            in_stream[fields['job_id']] = entry_id
    assert all(in_stream.get('b%d' % i) == entry_id for i, entry_id in written.items())
    assert not [i for i in batch['not_written'] if 'b%d' % i in in_stream]
