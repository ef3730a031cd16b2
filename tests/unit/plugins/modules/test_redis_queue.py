# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of redis_queue: argument checks, check-mode predictions and error branches (mocked client)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from redis import exceptions

from ansible_collections.raibid.queue.plugins.modules import redis_queue
from fake_stream import fake_client


def client_with(stream_type='none', groups=(), length=0, node_max='100', last='0-0'):
    """A stream of length entries; each group has had everything up to `last` delivered and acknowledged."""
    return fake_client(length=length, groups=[(g, last, 0, 0) for g in groups], stream_type=stream_type,
                       node_max=node_max)


@pytest.fixture
def client(monkeypatch):
    holder = {}

    def connect(module):
        return holder['client']

    monkeypatch.setattr(redis_queue, 'connect', connect)
    return holder


@pytest.mark.parametrize('args, message', [
    (dict(max_length=-1), 'max_length must be 0 (no trimming) or more'),
    (dict(stream=''), 'stream must not be empty'),
    (dict(consumer_group=''), 'consumer_group must not be empty'),
    (dict(credentials_path='/tmp/c.json', credentials_port=0), 'credentials_port must be between 1 and 65535'),
    (dict(trim_mode='sometimes'), 'value of trim_mode must be one of: approximate, exact'),
])
def test_bad_input_fails_before_connecting(run_module, monkeypatch, args, message):
    monkeypatch.setattr(redis_queue, 'connect', mock.Mock(side_effect=AssertionError('must not connect')))
    result, failed = run_module(redis_queue.main, args)
    assert failed and message in result['msg']


@pytest.mark.parametrize('state, groups, length, changed, commands', [
    (dict(stream_type='none'), (), 0, True, ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']),
    (dict(stream_type='stream', last='99999-0'), ('raibid-workers',), 10100, False, []),
    (dict(stream_type='stream', last='99999-0'), ('raibid-workers',), 10101, True, ['XTRIM raibid:jobs MINID = 101-1']),
    # Nothing processed: nothing trimmed, however long the stream.
    (dict(stream_type='stream'), ('raibid-workers',), 20000, False, []),
    (dict(stream_type='stream'), ('other',), 5, True, ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']),
])
def test_check_mode_predicts_and_writes_nothing(run_module, client, state, groups, length, changed, commands):
    client['client'] = c = client_with(groups=groups, length=length, **state)
    result, failed = run_module(redis_queue.main, {}, check_mode=True)
    assert not failed
    assert result['changed'] is changed
    assert result['commands'] == commands
    c.xgroup_create.assert_not_called()
    c.xtrim.assert_not_called()


def test_exact_trim_threshold_is_max_length(run_module, client):
    client['client'] = c = client_with('stream', ('raibid-workers',), length=10001, last='99999-0')
    result, dummy = run_module(redis_queue.main, dict(trim_mode='exact'), check_mode=True)
    assert result['changed'] is True and result['trimmed'] == 1
    c.config_get.assert_not_called()


def test_trim_threshold_falls_back_when_config_is_refused(run_module, client):
    client['client'] = c = client_with('stream', ('raibid-workers',), length=10100, last='99999-0')
    c.config_get.side_effect = exceptions.ResponseError("unknown command 'CONFIG'")
    result, dummy = run_module(redis_queue.main, {}, check_mode=True)
    assert result['changed'] is False


def test_group_created_concurrently_is_not_an_error(run_module, client):
    client['client'] = c = client_with('stream')
    c.xgroup_create.side_effect = exceptions.ResponseError('BUSYGROUP Consumer Group name already exists')
    c.xinfo_groups.side_effect = [[], [dict(name='raibid-workers', consumers=0, pending=0)],
                                  [dict(name='raibid-workers', consumers=0, pending=0)]]
    result, failed = run_module(redis_queue.main, {})
    assert not failed
    assert result['group']['created'] is False


def test_refused_group_creation_fails_with_a_sentence(run_module, client):
    client['client'] = c = client_with('none')
    c.xgroup_create.side_effect = exceptions.ResponseError("NOPERM this user has no permissions to run 'xgroup'")
    result, failed = run_module(redis_queue.main, {})
    assert failed
    assert result['msg'].startswith('Redis refused to create consumer group raibid-workers on raibid:jobs: the user '
                                    'lacks a permission (ACL): NOPERM')
    assert result['changed'] is False and result['commands'] == []


def test_connection_lost_midway_fails_with_a_sentence(run_module, client):
    client['client'] = c = client_with('none')
    c.xinfo_groups.side_effect = exceptions.ConnectionError('Connection reset by peer')
    c.type.return_value = 'stream'
    result, failed = run_module(redis_queue.main, {})
    assert failed and result['msg'] == 'Redis refused to manage stream raibid:jobs: Connection reset by peer'
    c.close.assert_called_once()


def test_failed_write_leaves_no_temporary_file(run_module, client, tmp_path, monkeypatch):
    client['client'] = client_with('stream', ('raibid-workers',))
    monkeypatch.setattr(redis_queue.os, 'replace', mock.Mock(side_effect=OSError(28, 'No space left on device')))
    args = dict(credentials_path=str(tmp_path / 'c.json'), login_password='s3cret')
    result, failed = run_module(redis_queue.main, args)
    assert failed
    assert 'Cannot write the credentials file' in result['msg'] and 'No space left' in result['msg']
    assert list(tmp_path.iterdir()) == []
    assert result['changed'] is False and result['commands'] == []


def test_failed_write_after_a_redis_change_reports_the_change(run_module, client, tmp_path, monkeypatch):
    client['client'] = client_with('none')
    monkeypatch.setattr(redis_queue.os, 'replace', mock.Mock(side_effect=OSError(28, 'No space left on device')))
    result, failed = run_module(redis_queue.main, dict(credentials_path=str(tmp_path / 'c.json')))
    assert failed and 'No space left' in result['msg']
    assert result['changed'] is True
    assert result['commands'] == ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']


def test_credentials_diff_masks_the_password(run_module, client, tmp_path):
    client['client'] = client_with('stream', ('raibid-workers',))
    path = tmp_path / 'c.json'
    path.write_text(json.dumps({'password': 'old-secret', 'token': 'foreign', 'note': 'not ours'}))
    result, dummy = run_module(redis_queue.main, dict(credentials_path=str(path), login_password='new-secret'),
                               check_mode=True, diff=True)
    assert result['changed'] is True
    # Keys the module does not write are not shown either, whatever their names.
    assert result['diff']['before']['credentials'] == {'password': '********', 'token': '********',
                                                       'note': '********'}
    assert result['diff']['after']['credentials']['password'] == '******** (changed)'
    assert result['credentials_changes'] == ['consumer_group', 'host', 'namespace', 'note', 'password', 'port',
                                             'stream', 'token', 'mode']
    assert 'secret' not in json.dumps(result) and 'foreign' not in json.dumps(result)
    assert json.loads(path.read_text())['password'] == 'old-secret', 'check mode must not write'


@pytest.mark.parametrize('text, message', [
    ('not json', 'does not hold JSON'),
    ('42', 'holds JSON that is not an object (int)'),
    ('[1, 2]', 'holds JSON that is not an object (list)'),
    ('"a string"', 'holds JSON that is not an object (str)'),
    ('true', 'holds JSON that is not an object (bool)'),
])
def test_credentials_file_that_is_not_an_object_fails_before_connecting(run_module, monkeypatch, tmp_path,
                                                                        text, message):
    monkeypatch.setattr(redis_queue, 'connect', mock.Mock(side_effect=AssertionError('must not connect')))
    path = tmp_path / 'c.json'
    path.write_text(text)
    result, failed = run_module(redis_queue.main, dict(credentials_path=str(path)))
    assert failed and message in result['msg'] and str(path) in result['msg']
    assert path.read_text() == text


def test_empty_credentials_file_is_written(run_module, client, tmp_path):
    client['client'] = client_with('stream', ('raibid-workers',))
    path = tmp_path / 'c.json'
    path.write_text('')
    result, dummy = run_module(redis_queue.main, dict(credentials_path=str(path)))
    assert result['changed'] is True
    assert json.loads(path.read_text())['stream'] == 'raibid:jobs'


def test_credentials_path_that_is_a_directory(run_module, client, tmp_path):
    client['client'] = client_with('stream', ('raibid-workers',))
    result, failed = run_module(redis_queue.main, dict(credentials_path=str(tmp_path)))
    assert failed and 'is a directory' in result['msg']


def test_url_only_for_a_task_with_no_log(run_module, client):
    """The url holds the password: returned only where Ansible hides the result (the task's no_log)."""
    client['client'] = client_with()
    args = dict(login_password='pw', credentials_host='redis.svc', credentials_port=6380)
    result, failed = run_module(redis_queue.main, dict(args, _ansible_no_log=True), check_mode=True)
    assert not failed and result['url'] == 'redis://:%70%77@redis.svc:6380'
    result, failed = run_module(redis_queue.main, args, check_mode=True)
    assert not failed and 'url' not in result
    result, failed = run_module(redis_queue.main, dict(args, state='absent', _ansible_no_log=True), check_mode=True)
    assert not failed and 'url' not in result


def test_url_that_ansible_would_mask_warns(run_module, client, monkeypatch):
    client['client'] = client_with()
    warnings = []
    monkeypatch.setattr(redis_queue.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    result, failed = run_module(redis_queue.main, dict(login_password='local', credentials_host='localhost',
                                                       _ansible_no_log=True), check_mode=True)
    assert not failed and 'redis://' in result['url']
    assert any('Ansible masks it in the returned url' in w for w in warnings), warnings


def test_host_no_url_can_hold_fails_before_connecting(run_module, monkeypatch):
    monkeypatch.setattr(redis_queue, 'connect', mock.Mock(side_effect=AssertionError('must not connect')))
    result, failed = run_module(redis_queue.main, dict(credentials_host='user@host'))
    assert failed and 'Cannot build the connection URL' in result['msg']
