# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the port-forward relay: bytes both ways, one stream per connection, and the failure paths
(the stream cannot open, it ends with an error). The Kubernetes stream is replaced by a socket pair; the
relay itself, its listener and its threads are the real ones."""

from __future__ import annotations

import socket
import threading

import pytest

from ansible_collections.raibid.queue.plugins.module_utils import _kube_forward


class FakeForward:
    """What kubernetes.stream.portforward returns: socket(port), error(port), close()."""

    def __init__(self, remote, error=None):
        self.remote = remote
        self._error = error
        self.closed = threading.Event()

    def socket(self, port):
        return self.remote

    def error(self, port):
        return self._error

    def close(self):
        # As the real one does: closing the stream closes its socket.
        self.remote.close()
        self.closed.set()


class Cluster:
    """Stands in for the API: each port-forward stream is one end of a socket pair; the test holds the other."""

    def __init__(self, fail=None, error=None):
        self.fail = fail
        self.error = error
        self.streams = []
        self.pod_ends = []
        self.calls = []
        self.opened = threading.Semaphore(0)

    def portforward(self, api_method, pod, namespace, ports):
        self.calls.append((pod, namespace, ports))
        if self.fail:
            raise self.fail
        relay_end, pod_end = socket.socketpair()
        pod_end.settimeout(5)
        stream = FakeForward(relay_end, self.error)
        self.streams.append(stream)
        self.pod_ends.append(pod_end)
        self.opened.release()
        return stream


@pytest.fixture
def cluster(monkeypatch):
    def make(**kwargs):
        fake = Cluster(**kwargs)
        monkeypatch.setattr(_kube_forward, 'portforward', fake.portforward, raising=False)
        monkeypatch.setattr(_kube_forward, 'kube_config', FakeConfig(), raising=False)
        monkeypatch.setattr(_kube_forward, 'kube_client', FakeClient(), raising=False)
        return fake
    return make


class FakeConfig:
    def new_client_from_config(self, config_file=None, context=None):
        return (config_file, context)


class FakeClient:
    class CoreV1Api:
        def __init__(self, api_client):
            self.connect_get_namespaced_pod_portforward = object()


def test_newer_clients_open_the_stream_without_core_v1_api(monkeypatch):
    """kubernetes 35 and later: the request is serialized by the ApiClient (path, query, auth) and opened with
    ws_client.portforward_call, as CoreV1Api's method would through kubernetes.stream."""
    serialized, opened, ready = [], [], threading.Event()

    class ApiClient:
        configuration = 'the configuration'

        def param_serialize(self, method, resource_path, **kwargs):
            serialized.append((method, resource_path, kwargs))
            return (method, 'https://api/api/v1/namespaces/ns/pods/pod/portforward?ports=6379',
                    {'authorization': 'Bearer t'}, None, [])

    class WsClient:
        def portforward_call(self, configuration, method, url, headers=None):
            opened.append((configuration, method, url, headers))
            relay_end, pod_end = socket.socketpair()
            opened.append(pod_end)
            ready.set()
            return FakeForward(relay_end)

    class Config:
        def new_client_from_config(self, config_file=None, context=None):
            return ApiClient()

    monkeypatch.setattr(_kube_forward, 'kube_config', Config(), raising=False)
    monkeypatch.setattr(_kube_forward, 'kube_client', None, raising=False)   # CoreV1Api is never asked for
    monkeypatch.setattr(_kube_forward, 'ws_client', WsClient(), raising=False)
    forward = _kube_forward.PodPortForward('pod', 'ns', 6379)
    conn = local_connection(forward)
    conn.sendall(b'PING\r\n')
    assert ready.wait(5)
    opened[1].settimeout(5)
    assert opened[1].recv(100) == b'PING\r\n'
    assert serialized == [('GET', '/api/v1/namespaces/{namespace}/pods/{name}/portforward',
                           {'path_params': {'namespace': 'ns', 'name': 'pod'}, 'query_params': [('ports', '6379')],
                            'auth_settings': ['BearerToken']})]
    assert opened[0] == ('the configuration', 'GET', 'https://api/api/v1/namespaces/ns/pods/pod/portforward?ports=6379',
                         {'authorization': 'Bearer t'})
    conn.close()
    opened[1].close()


def local_connection(forward):
    conn = socket.create_connection(('127.0.0.1', forward.local_port), timeout=5)
    conn.settimeout(5)
    return conn


def test_listens_on_loopback_and_relays_both_ways(cluster):
    fake = cluster()
    forward = _kube_forward.PodPortForward('raibid-redis-master-0', 'raibid-redis', 6379, kubeconfig='/kc')
    assert forward.listener.getsockname()[0] == '127.0.0.1'
    conn = local_connection(forward)
    conn.sendall(b'PING\r\n')
    assert fake.opened.acquire(timeout=5)
    pod = fake.pod_ends[0]
    assert pod.recv(100) == b'PING\r\n'
    pod.sendall(b'+PONG\r\n')
    assert conn.recv(100) == b'+PONG\r\n'
    assert fake.calls == [('raibid-redis-master-0', 'raibid-redis', '6379')]
    conn.close()
    assert pod.recv(100) == b''   # the local side closed: the stream is closed too
    assert fake.streams[0].closed.wait(5)
    assert forward.last_error is None


def test_each_connection_gets_its_own_stream(cluster):
    fake = cluster()
    forward = _kube_forward.PodPortForward('pod', 'ns', 6379)
    first, second = local_connection(forward), local_connection(forward)
    for conn, data in ((first, b'one'), (second, b'two')):
        conn.sendall(data)
    assert fake.opened.acquire(timeout=5) and fake.opened.acquire(timeout=5)
    assert sorted(end.recv(10) for end in fake.pod_ends) == [b'one', b'two']
    first.close()
    second.close()


def test_a_stream_that_cannot_open_closes_the_connection_and_keeps_the_reason(cluster):
    cluster(fail=RuntimeError('pods "pod" not found'))
    forward = _kube_forward.PodPortForward('pod', 'ns', 6379)
    conn = local_connection(forward)
    assert conn.recv(100) == b''
    assert forward.last_error == 'RuntimeError: pods "pod" not found'


def test_the_error_a_stream_ends_with_is_kept(cluster):
    fake = cluster(error='error forwarding port 6379: connection refused')
    forward = _kube_forward.PodPortForward('pod', 'ns', 6379)
    conn = local_connection(forward)
    conn.sendall(b'x')
    assert fake.opened.acquire(timeout=5)
    assert fake.pod_ends[0].recv(10) == b'x'
    fake.pod_ends[0].close()   # the pod side ends the stream
    assert conn.recv(100) == b''
    assert forward.last_error == 'error forwarding port 6379: connection refused'


@pytest.mark.parametrize('kubeconfig, env, home_config, expected', [
    ('/k/config', {'KUBERNETES_SERVICE_HOST': '10.0.0.1'}, False, 'file'),
    (None, {}, True, 'file'),
    (None, {'KUBERNETES_SERVICE_HOST': '10.0.0.1'}, True, 'file'),
    (None, {'KUBERNETES_SERVICE_HOST': '10.0.0.1'}, False, 'in-cluster'),
    # No configuration at all and not in a pod: the library's own error names the missing file.
    (None, {}, False, 'file'),
    # KUBECONFIG lists files as kubectl reads it: one that exists is enough.
    (None, {'KUBERNETES_SERVICE_HOST': '10.0.0.1', 'KUBECONFIG': '/nowhere:{home}/.kube/config'}, True, 'file'),
])
def test_new_api_client_takes_the_service_account_only_in_a_pod_without_kubeconfig(
        monkeypatch, tmp_path, kubeconfig, env, home_config, expected):
    calls = []

    class Config:
        def new_client_from_config(self, config_file=None, context=None):
            calls.append(('file', config_file, context))

        def load_incluster_config(self, client_configuration=None):
            calls.append(('in-cluster', None, None))

    class Client:
        Configuration = dict

        def ApiClient(self, configuration):  # pylint: disable=invalid-name
            return configuration

    monkeypatch.setattr(_kube_forward, 'kube_config', Config(), raising=False)
    monkeypatch.setattr(_kube_forward, 'kube_client', Client(), raising=False)
    monkeypatch.delenv('KUBECONFIG', raising=False)
    monkeypatch.delenv('KUBERNETES_SERVICE_HOST', raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(home=tmp_path))
    monkeypatch.setenv('HOME', str(tmp_path))
    if home_config:
        (tmp_path / '.kube').mkdir()
        (tmp_path / '.kube' / 'config').write_text('{}')
    _kube_forward.new_api_client(kubeconfig, 'ctx')
    assert [call[0] for call in calls] == [expected]
    if expected == 'file':
        assert calls[0][1:] == (kubeconfig, 'ctx')
