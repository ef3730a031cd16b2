# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the shared connection code: argument checks, TLS mapping, and the retry loop."""

from __future__ import annotations

import socket
from unittest import mock

import pytest
from redis import exceptions

from ansible_collections.raibid.queue.plugins.module_utils import _redis


class FakeModule:
    """Just enough of AnsibleModule: params with the spec's defaults, fail_json raising."""

    def __init__(self, **params):
        self.params = {name: spec.get('default') for name, spec in _redis.redis_connection_argument_spec().items()}
        self.params.update(params)

    def fail_json(self, msg, **kwargs):
        raise AssertionError(dict(kwargs, msg=msg))


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def failure(call):
    with pytest.raises(AssertionError) as exc:
        call()
    return exc.value.args[0]


def fake_redis(outcomes):
    """redis.Redis stand-in whose successive clients answer PING with the given outcomes."""
    clients = []

    def factory(**kwargs):
        client = mock.Mock()
        outcome = outcomes[min(len(clients), len(outcomes) - 1)]
        if isinstance(outcome, Exception):
            client.ping.side_effect = outcome
        else:
            client.ping.return_value = outcome
        clients.append(client)
        return client

    return factory, clients


def test_spec_marks_only_the_password_as_secret():
    spec = _redis.redis_connection_argument_spec()
    assert spec['login_password']['no_log'] is True
    assert spec['client_key_file']['no_log'] is False
    assert spec['login_host']['default'] == 'localhost' and spec['login_port']['default'] == 6379


def test_missing_library_gives_missing_required_lib(monkeypatch):
    monkeypatch.setattr(_redis, 'REDIS_IMPORT_ERROR', 'Traceback: No module named redis')
    error = failure(lambda: _redis.connect(FakeModule()))
    assert 'Failed to import the required Python library (redis)' in error['msg']
    assert error['exception'] == 'Traceback: No module named redis'


@pytest.mark.parametrize('params, message', [
    (dict(login_port=0), 'login_port must be between 1 and 65535'),
    (dict(login_port=70000), 'login_port must be between 1 and 65535'),
    (dict(connect_timeout=0), 'connect_timeout must be greater than 0'),
    (dict(wait_timeout=-1), 'wait_timeout must be 0'),
    (dict(ca_certs='/ca.crt', client_key_file='/k'), 'ca_certs, client_key_file only apply with tls=true'),
])
def test_bad_connection_options_fail_before_connecting(monkeypatch, params, message):
    monkeypatch.setattr(_redis.redis, 'Redis', mock.Mock(side_effect=AssertionError('must not connect')))
    assert message in failure(lambda: _redis.connect(FakeModule(**params)))['msg']


def test_client_kwargs_without_tls():
    kwargs = _redis.client_kwargs(FakeModule(login_user='u', login_password='p').params)
    assert kwargs['username'] == 'u' and kwargs['password'] == 'p'
    assert 'ssl' not in kwargs


@pytest.mark.parametrize('validate, reqs', [(True, 'required'), (False, 'none')])
def test_client_kwargs_with_tls(validate, reqs):
    kwargs = _redis.client_kwargs(FakeModule(tls=True, validate_certs=validate, ca_certs='/ca').params)
    assert kwargs['ssl'] is True
    assert kwargs['ssl_cert_reqs'] == reqs
    assert kwargs['ssl_check_hostname'] is validate
    assert kwargs['ssl_ca_certs'] == '/ca'


def test_connect_retries_transient_errors_until_redis_answers(monkeypatch):
    factory, clients = fake_redis([exceptions.ConnectionError('refused'),
                                   exceptions.BusyLoadingError('loading'), True])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    client = _redis.connect(FakeModule(wait_timeout=10), sleep=clock.sleep, clock=clock)
    assert client is clients[-1]
    assert len(clients) == 3
    assert clients[0].close.called and clients[1].close.called


def test_connect_gives_up_after_wait_timeout_with_the_last_error(monkeypatch):
    factory, clients = fake_redis([exceptions.TimeoutError('timed out')])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    error = failure(lambda: _redis.connect(FakeModule(wait_timeout=5), sleep=clock.sleep, clock=clock))
    assert 'did not answer PING within 5 seconds (6 attempts)' in error['msg']
    assert error['msg'].endswith('Last error: timed out')
    assert error['attempts'] == 6


def test_wait_timeout_zero_tries_once(monkeypatch):
    factory, clients = fake_redis([exceptions.ConnectionError('refused')])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    failure(lambda: _redis.connect(FakeModule(), sleep=clock.sleep, clock=clock))
    assert len(clients) == 1 and clock.now == 0


@pytest.mark.parametrize('error, message', [
    (exceptions.AuthenticationError('WRONGPASS invalid'), 'rejected the login: WRONGPASS'),
    (exceptions.ResponseError('NOPERM no ping for you'), 'refused PING: NOPERM'),
])
def test_errors_that_waiting_cannot_fix_fail_at_once(monkeypatch, error, message):
    factory, clients = fake_redis([error])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    assert message in failure(lambda: _redis.connect(FakeModule(wait_timeout=60), sleep=clock.sleep, clock=clock))['msg']
    assert len(clients) == 1


def test_ensure_stream_type():
    client = mock.Mock()
    module = FakeModule()
    client.type.return_value = b'none'
    assert _redis.ensure_stream_type(module, client, 's') is False
    client.type.return_value = 'stream'
    assert _redis.ensure_stream_type(module, client, 's') is True
    client.type.return_value = 'hash'
    assert "holds a hash, not a stream" in failure(lambda: _redis.ensure_stream_type(module, client, 's'))['msg']


def test_non_redis_peer_fails_at_once(monkeypatch):
    factory, clients = fake_redis([exceptions.InvalidResponse('Protocol Error: H, b\'TTP/1.1 400\'')])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    error = failure(lambda: _redis.connect(FakeModule(wait_timeout=60), sleep=clock.sleep, clock=clock))
    assert 'answered, but not as Redis does' in error['msg'] and 'Check login_port' in error['msg']
    assert len(clients) == 1


def raised_from_gaierror(code, text):
    """A ConnectionError raised while handling a resolver error, as redis-py raises it."""
    try:
        try:
            raise socket.gaierror(code, text)
        except socket.gaierror:
            raise exceptions.ConnectionError('Error %d connecting to somewhere:6379. %s.' % (code, text))
    except exceptions.ConnectionError as e:
        return e


def test_permanent_dns_failure_is_not_retried(monkeypatch):
    error = raised_from_gaierror(socket.EAI_NONAME, 'Name or service not known')
    factory, clients = fake_redis([error])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    message = failure(lambda: _redis.connect(FakeModule(wait_timeout=60), sleep=clock.sleep, clock=clock))['msg']
    assert 'the host name does not resolve' in message and 'not retried' in message
    assert len(clients) == 1


def test_temporary_dns_failure_is_retried(monkeypatch):
    error = raised_from_gaierror(socket.EAI_AGAIN, 'Temporary failure in name resolution')
    factory, clients = fake_redis([error, True])
    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    _redis.connect(FakeModule(wait_timeout=10), sleep=clock.sleep, clock=clock)
    assert len(clients) == 2


def test_attempts_never_run_past_wait_timeout(monkeypatch):
    """Each attempt's socket timeouts are cut to the time left, so wait_timeout bounds the whole wait."""
    seen = []

    def factory(**kwargs):
        seen.append(kwargs['socket_connect_timeout'])
        client = mock.Mock()
        client.ping.side_effect = exceptions.TimeoutError('timed out')
        return client

    monkeypatch.setattr(_redis.redis, 'Redis', factory)
    clock = FakeClock()
    failure(lambda: _redis.connect(FakeModule(wait_timeout=3, connect_timeout=5.0), sleep=clock.sleep, clock=clock))
    assert seen[0] == 3 and all(t <= 3 for t in seen)
    assert clock.now <= 3


@pytest.mark.parametrize('host, message', [
    ('redis://10.0.0.1', 'not a URL'),
    ('', 'must not be empty'),
    ('a b', 'must not contain spaces'),
    ('host\n', 'control characters'),
])
def test_bad_login_host_fails_before_connecting(monkeypatch, host, message):
    monkeypatch.setattr(_redis.redis, 'Redis', mock.Mock(side_effect=AssertionError('must not connect')))
    assert message in failure(lambda: _redis.connect(FakeModule(login_host=host)))['msg']


@pytest.mark.parametrize('error, text', [
    (exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), 'it is out of memory'),
    (exceptions.ReadOnlyError("You can't write against a read only replica."), 'read-only replica'),
    (exceptions.NoPermissionError("this user has no permissions to run the 'xadd' command"), 'lacks a permission'),
])
def test_redis_error_message_explains(error, text):
    assert text in _redis.redis_error_message('add a job', error)


@pytest.mark.parametrize('answer,expected', [
    (('raibid-redis-node-2.raibid-redis-headless.ns.svc.cluster.local', '6379'), None),
    (('other-node-1.x', 6379), 'Sentinel in pod ns/raibid-redis-node-0 named other-node-1.x:6379 as the master of '
                               'mymaster, not a pod of StatefulSet raibid-redis-node.'),
    (('10.42.0.7', 6379), 'not a pod of StatefulSet raibid-redis-node'),
    (None, 'Sentinel at redis://pod ns/raibid-redis-node-0:26379 (port-forward) does not know the master set mymaster.'),
    (exceptions.ResponseError('NOAUTH'), 'could not name the master of mymaster: NOAUTH'),
])
def test_sentinel_answer_through_a_port_forward(answer, expected):
    """Sentinel announces pods by their headless-Service host name; anything else is refused (the cluster tests
    cover the path that works end to end)."""
    module = FakeModule(kubernetes_pod='raibid-redis-node-0', kubernetes_namespace='ns', sentinel_master_set='mymaster')
    sentinel = mock.Mock()
    if isinstance(answer, Exception):
        sentinel.sentinel_get_master_addr_by_name.side_effect = answer
    else:
        sentinel.sentinel_get_master_addr_by_name.return_value = answer
    if expected is None:
        assert _redis.sentinel_master(module, sentinel) == {'kubernetes_pod': 'raibid-redis-node-2', 'login_port': 6379}
    else:
        assert expected in failure(lambda: _redis.sentinel_master(module, sentinel))['msg']
