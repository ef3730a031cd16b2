# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the connection URL builder, read back with redis-py's own URL parser."""

from __future__ import annotations

import pytest
from redis.connection import SSLConnection, parse_url

from ansible_collections.raibid.queue.plugins.module_utils._url import encode_secret, redis_url

HOST = 'raibid-redis-master.raibid-redis.svc.cluster.local'
SPECIAL = ['p@ss:w/rd%#?', 'a b+c&d=e;f', '[]!$\'()*,', 'pässwörd-密码-🔑', '%41', 'plain123']


def test_the_design_format():
    # A generated (alphanumeric) password stands as it is, for clients that do not decode.
    assert redis_url(HOST, 6379, 'aB3-._~') == 'redis://:aB3-._~@' + HOST + ':6379'
    assert redis_url(HOST, 6379) == 'redis://' + HOST + ':6379'
    assert redis_url(HOST, '6380', '') == 'redis://' + HOST + ':6380'


def test_tls_scheme():
    url = redis_url(HOST, 6379, 'ab', tls=True)
    assert url.startswith('rediss://:ab@')
    assert parse_url(url)['connection_class'] is SSLConnection
    assert parse_url(redis_url(HOST, 6379, 'ab')).get('connection_class') is not SSLConnection


@pytest.mark.parametrize('password', SPECIAL)
@pytest.mark.parametrize('encode_all', [False, True])
def test_special_passwords_parse_back(password, encode_all):
    url = redis_url(HOST, 6379, password, encode_all=encode_all)
    parsed = parse_url(url)
    assert (parsed['host'], parsed['port'], parsed['password']) == (HOST, 6379, password)
    assert parsed.get('username') in (None, '')
    userinfo = url[len('redis://:'):url.rindex('@')]
    assert '@' not in userinfo and ':' not in userinfo and '/' not in userinfo
    if encode_all:
        # Never verbatim, so that Ansible's no_log masking leaves a module's URL intact.
        assert password not in url
        assert set(userinfo) <= set('%0123456789ABCDEF') and len(userinfo) == 3 * len(password.encode())


def test_encode_secret_is_utf8_bytes():
    assert encode_secret(u'é') == '%C3%A9'
    assert encode_secret(b'\xff') == '%FF'


@pytest.mark.parametrize('username', ['raibid-admin', 'us:er@x', 'ü'])
def test_username(username):
    parsed = parse_url(redis_url(HOST, 6379, 'pw', username=username))
    assert (parsed['username'], parsed['password']) == (username, 'pw')
    assert parse_url(redis_url(HOST, 6379, username=username))['username'] == username


@pytest.mark.parametrize('host,shown', [('::1', '[::1]'), ('[fd00::10]', '[fd00::10]'), ('10.0.0.1', '10.0.0.1')])
def test_ipv6_in_brackets(host, shown):
    url = redis_url(host, 6379, 'pw')
    assert url == 'redis://:pw@' + shown + ':6379'
    assert parse_url(url)['host'] == shown.strip('[]')


@pytest.mark.parametrize('host', ['', 'a/b', 'user@host', 'host?x', 'host#x', 'a b', '[::1', 'fe80::1%eth0'])
def test_hosts_no_url_can_hold(host):
    with pytest.raises(ValueError):
        redis_url(host, 6379, 'pw')


@pytest.mark.parametrize('port', [0, 65536, 'x'])
def test_bad_port(port):
    with pytest.raises(ValueError):
        redis_url(HOST, port, 'pw')
