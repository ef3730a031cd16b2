# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""raibid.queue.redis_queue_info against a real redis-server."""

from __future__ import annotations

from conftest import ACL_USER

STREAM = 'raibid:jobs'


def test_missing_stream_is_a_fact(run, redis_server):
    result = run('redis_queue_info', redis_server.login())
    assert result['changed'] is False
    assert result['stream'] == {'name': STREAM, 'exists': False, 'length': 0, 'first_entry_id': None,
                                'last_entry_id': None, 'groups': []}
    assert result['server']['version'] == redis_server.client().info('server')['redis_version']
    assert result['server']['role'] == 'master'
    assert result['server']['mode'] == 'standalone'
    assert result['persistence'] == {'appendonly': 'yes', 'appendfsync': 'everysec',
                                     'maxmemory_policy': redis_server.client().config_get('maxmemory-policy')[
                                         'maxmemory-policy']}
    assert redis_server.client().exists(STREAM) == 0, 'an info module creates nothing'


def test_groups_consumers_pending_and_lag(run, redis_server):
    client = redis_server.client()
    client.xgroup_create(STREAM, 'raibid-workers', id='$', mkstream=True)
    client.xgroup_create(STREAM, 'auditors', id='$')
    ids = [client.xadd(STREAM, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'}) for i in range(4)]
    client.xreadgroup('raibid-workers', 'agent-1', {STREAM: '>'}, count=2)
    client.xreadgroup('raibid-workers', 'agent-2', {STREAM: '>'}, count=1)
    client.xack(STREAM, 'raibid-workers', ids[0])

    result = run('redis_queue_info', redis_server.login(), check=True)
    stream = result['stream']
    assert stream['exists'] is True
    assert stream['length'] == 4
    assert (stream['first_entry_id'], stream['last_entry_id']) == (ids[0], ids[-1])
    groups = {g['name']: g for g in stream['groups']}
    assert set(groups) == {'raibid-workers', 'auditors'}
    workers = groups['raibid-workers']
    assert workers['pending'] == 2
    assert workers['last_delivered_id'] == ids[2]
    assert workers['entries_read'] == 3
    assert workers['lag'] == 1
    assert {c['name']: c['pending'] for c in workers['consumers']} == {'agent-1': 1, 'agent-2': 1}
    assert all(isinstance(c['idle'], int) for c in workers['consumers'])
    assert groups['auditors']['consumers'] == [] and groups['auditors']['lag'] == 4


def test_config_denied_gives_nulls_and_a_warning(run, redis_server):
    result = run('redis_queue_info', dict(login_host='127.0.0.1', login_port=redis_server.port,
                                          login_user=ACL_USER, login_password=redis_server.acl_password))
    assert result.get('failed') is not True, result
    assert result['persistence'] == {'appendonly': None, 'appendfsync': None, 'maxmemory_policy': None}
    assert any('CONFIG GET was refused' in w for w in result.get('warnings', []))


def test_other_type_under_the_stream_name_fails(run, redis_server):
    redis_server.client().rpush(STREAM, 'a')
    result = run('redis_queue_info', redis_server.login())
    assert result.get('failed') is True
    assert 'holds a list, not a stream' in result['msg']
