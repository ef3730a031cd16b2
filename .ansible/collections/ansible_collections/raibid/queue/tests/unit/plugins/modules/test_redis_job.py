# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of redis_job's argument handling and error branches (mocked client)."""

from __future__ import annotations

from unittest import mock

import pytest
from redis import exceptions

from ansible_collections.raibid.queue.plugins.modules import redis_job


@pytest.fixture
def client(monkeypatch):
    c = mock.Mock()
    c.type.return_value = 'stream'
    monkeypatch.setattr(redis_job, 'connect', lambda module: c)
    return c


@pytest.mark.parametrize('args, message', [
    (dict(jobs=[]), 'jobs must not be an empty list'),
    (dict(job_type=''), 'Every job needs a non-empty job_type'),
    (dict(job_type='build', max_length=-5), 'max_length must be 0 (no cap) or more'),
    (dict(job_type='build', stream=''), 'stream must not be empty'),
])
def test_bad_input_fails_before_connecting(run_module, monkeypatch, args, message):
    monkeypatch.setattr(redis_job, 'connect', mock.Mock(side_effect=AssertionError('must not connect')))
    result, failed = run_module(redis_job.main, args)
    assert failed and message in result['msg']


def test_check_mode_sends_nothing(run_module, client):
    result, failed = run_module(redis_job.main, dict(job_type='build', job_id='j1'), check_mode=True)
    assert not failed and result['changed'] is True
    assert result['job_ids'] == ['j1'] and result['entry_ids'] == []
    client.pipeline.assert_not_called()


def test_fields_and_cap(run_module, client):
    pipe = client.pipeline.return_value
    pipe.execute.return_value = ['1-0']
    result, dummy = run_module(redis_job.main, dict(job_type='build', job_id='j1', payload={'b': 1, 'a': [1]}))
    pipe.xadd.assert_called_once_with(
        'raibid:jobs', dict(job_id='j1', job_type='build', payload='{"a":[1],"b":1}'), maxlen=10000, approximate=True)
    assert result['entry_ids'] == ['1-0']


def test_no_cap_with_max_length_zero(run_module, client):
    client.pipeline.return_value.execute.return_value = ['1-0']
    run_module(redis_job.main, dict(job_type='build', max_length=0))
    assert client.pipeline.return_value.xadd.call_args.kwargs == {}


def test_refused_xadd_fails_with_a_sentence(run_module, client):
    client.pipeline.return_value.execute.side_effect = exceptions.ResponseError('OOM command not allowed')
    result, failed = run_module(redis_job.main, dict(job_type='build'))
    assert failed and result['msg'] == 'Redis refused to add jobs to raibid:jobs: OOM command not allowed'


def test_unserialisable_payload(run_module, client, monkeypatch):
    # Ansible hands modules JSON data, so this only happens to direct callers of job_fields.
    module = mock.Mock()
    module.fail_json.side_effect = SystemExit
    with pytest.raises(SystemExit):
        redis_job.job_fields(module, dict(job_type='x', payload={1j}))
    assert 'cannot be serialised as JSON' in module.fail_json.call_args.kwargs['msg']
