# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The connection URL of raibid.queue.redis_queue (and the filter raibid.queue.redis_url), used by redis-py's
from_url against a real redis-server, plain and TLS, and never printed."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import redis

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'
SPECIAL = 'p@ss:w/rd%#?&= ü密🔑'


def encode_secret(password):
    """The password as the url holds it: every UTF-8 byte percent-encoded."""
    return ''.join('%%%02X' % b for b in password.encode())


def save_url(path, filter_args):
    """Tasks that write the registered url, and the filter's for the same server, to files (no_log)."""
    # Not named port or password: Ansible warns about reserved names, quoting the playbook's lines.
    filter_args = dict(('url_' + k, v) for k, v in filter_args.items())
    return [
        {'name': 'save the url', 'no_log': True,
         'ansible.builtin.copy': {'content': '{{ result.url }}', 'dest': str(path), 'mode': '0600'}},
        {'name': 'the filter', 'no_log': True, 'vars': filter_args,
         'ansible.builtin.copy': {'content': '{{ url_host | raibid.queue.redis_url(url_port, url_password, '
                                             'tls=url_tls) }}', 'dest': str(path) + '.filter', 'mode': '0600'}},
    ]


def module_url(run, redis_server, tmp_path, args, host, port, tls=False):
    path = tmp_path / 'url'
    result = run('redis_queue', args, no_log=True, verbosity=3,
                 then=save_url(path, dict(host=host, port=port, password=redis_server.password, tls=tls)))
    assert result['rc'] == 0, result.output
    # Neither the password nor its encoded form (the url's) shows, even with -vvv.
    assert redis_server.password not in result.output
    assert encode_secret(redis_server.password) not in result.output
    url, filtered = path.read_text(), (tmp_path / 'url.filter').read_text()
    # The filter (the role's fact and Secrets) encodes only what needs it; both mean the same to redis-py.
    assert filtered == '%s://:%s@%s' % ('rediss' if tls else 'redis', quote(redis_server.password, safe=''),
                                        url.rsplit('@', 1)[1])
    assert redis.connection.parse_url(filtered) == redis.connection.parse_url(url)
    ca = dict(ssl_ca_certs=redis_server.certs['ca.crt']) if tls else {}
    check_worker(redis.Redis.from_url(filtered, decode_responses=True, **ca))
    return url


def check_worker(client):
    """What a worker does first: PING, and find its group on the stream."""
    assert client.ping()
    assert [g['name'] for g in client.xinfo_groups(STREAM)] == [GROUP]


def test_url_connects(run, redis_server, tmp_path):
    url = module_url(run, redis_server, tmp_path, redis_server.login(), '127.0.0.1', redis_server.port)
    assert url == 'redis://:%s@127.0.0.1:%d' % (encode_secret(redis_server.password), redis_server.port)
    check_worker(redis.Redis.from_url(url, decode_responses=True))


@pytest.mark.parametrize('password', [SPECIAL, 'abc'])
def test_password_with_special_characters_round_trips(run, redis_server, tmp_path, password):
    redis_server.client().config_set('requirepass', password)
    redis_server.password = password
    url = module_url(run, redis_server, tmp_path, redis_server.login(), '127.0.0.1', redis_server.port)
    assert redis.connection.parse_url(url)['password'] == password
    check_worker(redis.Redis.from_url(url, decode_responses=True))


def test_tls_url_connects_with_the_ca(run, redis_server, tmp_path):
    ca = redis_server.certs['ca.crt']
    args = dict(login_host='localhost', login_port=redis_server.tls_port, login_password=redis_server.password,
                tls=True, ca_certs=ca)
    url = module_url(run, redis_server, tmp_path, args, 'localhost', redis_server.tls_port, tls=True)
    assert url.startswith('rediss://:%') and url.endswith('@localhost:%d' % redis_server.tls_port)
    check_worker(redis.Redis.from_url(url, ssl_ca_certs=ca, decode_responses=True))
    # The URL alone is not enough: clients need the CA (the consumer Secrets' ca key) to verify the server.
    with pytest.raises(redis.exceptions.ConnectionError, match='certificate verify failed'):
        redis.Redis.from_url(url).ping()


def test_credentials_host_and_port_make_the_url(run, redis_server, tmp_path):
    args = redis_server.login(credentials_host='::1', credentials_port=6390, login_user='raibid-admin',
                              login_password=redis_server.acl_password)
    path = tmp_path / 'url'
    result = run('redis_queue', args, no_log=True, then=save_url(path, {})[:1])
    assert result.get('censored'), result
    assert path.read_text() == 'redis://raibid-admin:%s@[::1]:6390' % encode_secret(redis_server.acl_password)


def test_no_url_for_a_task_without_no_log(run, redis_server):
    result = run('redis_queue', redis_server.login())
    assert result['changed'] is True and 'url' not in result
    printed = run('redis_queue', redis_server.login(), verbosity=3)
    assert printed['rc'] == 0
    assert encode_secret(redis_server.password) not in printed.output


@pytest.mark.parametrize('host', ['redis://somewhere', 'a b'])
def test_a_host_no_url_can_hold_fails_before_any_change(run, redis_server, host):
    result = run('redis_queue', redis_server.login(credentials_host=host))
    assert result['failed'] is True
    assert 'Cannot build the connection URL' in result['msg'] and 'Nothing was changed' in result['msg']
    assert not redis_server.client().exists(STREAM)
