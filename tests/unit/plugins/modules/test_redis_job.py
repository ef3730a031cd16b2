# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of redis_job's argument handling and error branches (mocked client)."""

from __future__ import annotations

from unittest import mock

import pytest
from redis import exceptions

from ansible_collections.raibid.queue.plugins.modules import redis_job
from fake_stream import fake_client


@pytest.fixture
def client(monkeypatch):
    c = fake_client(length=0)
    c.type.return_value = 'stream'
    monkeypatch.setattr(redis_job, 'connect', lambda module: c)
    return c


@pytest.mark.parametrize('args, message', [
    (dict(jobs=[]), 'jobs must not be an empty list'),
    (dict(job_type=''), 'The job_type of the job must not be empty'),
    (dict(job_type=' \t'), 'The job_type of the job must not be only whitespace'),
    (dict(job_type='build\nrm'), 'must not contain control characters'),
    (dict(job_type='build', job_id='a\x00b'), 'The job_id of the job must not contain control characters'),
    (dict(jobs=[{'job_type': 'ok'}, {'job_type': ''}]), 'The job_type of jobs[1] must not be empty'),
    (dict(jobs=[{'job_type': 'ok', 'priority': 1}]), 'jobs[0] has unknown keys priority'),
    (dict(jobs=[{'job_id': 'x'}]), 'jobs[0] needs a job_type'),
    (dict(jobs=[{'job_type': 'x', 'job_id': 5}]), 'The job_id of jobs[0] must be a string'),
    (dict(job_type='build', max_length=-5), 'max_length must be 0 (off) or more'),
    (dict(job_type='build', max_backlog=-1), 'max_backlog must be 0 (off) or more'),
    (dict(job_type='build', stream=''), 'stream must not be empty'),
    (dict(job_type='build', stream='x' * 1025), 'stream must not be longer than 1024 characters'),
    (dict(jobs_file='/nonexistent/jobs.json'), 'Cannot read jobs_file /nonexistent/jobs.json'),
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
    client.xtrim.assert_not_called()


def test_fields_and_no_maxlen(run_module, client):
    pipe = client.pipeline.return_value
    pipe.execute.return_value = ['1-0']
    result, dummy = run_module(redis_job.main, dict(job_type='build', job_id='j1', payload={'b': 1, 'a': [1]}))
    # No MAXLEN on XADD: that would drop the oldest jobs whether processed or not.
    pipe.xadd.assert_called_once_with('raibid:jobs', dict(job_id='j1', job_type='build', payload='{"a":[1],"b":1}'))
    assert result['entry_ids'] == ['1-0']


def test_refused_xadd_fails_with_a_sentence(run_module, client):
    client.pipeline.return_value.execute.return_value = [
        exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")]
    result, failed = run_module(redis_job.main, dict(job_type='build'))
    assert failed and result['msg'].startswith('Redis refused to add a job to raibid:jobs: it is out of memory')
    assert result['changed'] is False and result['entry_ids'] == [None] and result['not_written'] == [0]


def test_refusal_midway_returns_what_was_written(run_module, client, monkeypatch):
    monkeypatch.setattr(redis_job, 'CHUNK', 2)
    oom = exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    client.pipeline.return_value.execute.side_effect = [['1-0', '2-0'], ['3-0', oom], AssertionError('stopped')]
    jobs = [{'job_type': 't', 'job_id': 'j%d' % i} for i in range(6)]
    result, failed = run_module(redis_job.main, dict(jobs=jobs))
    assert failed and result['changed'] is True
    assert result['entry_ids'] == ['1-0', '2-0', '3-0', None, None, None]
    assert result['not_written'] == [3, 4, 5] and result['written'] == 3 and result['uncertain'] == []
    assert '(job 4 of 6, jobs[3]). 3 jobs were written' in result['msg']


def test_connection_lost_midway_marks_the_chunk_uncertain(run_module, client, monkeypatch):
    monkeypatch.setattr(redis_job, 'CHUNK', 2)
    client.pipeline.return_value.execute.side_effect = [['1-0', '2-0'], exceptions.ConnectionError('reset')]
    result, failed = run_module(redis_job.main, dict(jobs=[{'job_type': 't'}] * 5))
    assert failed and result['changed'] is True
    assert result['uncertain'] == [2, 3] and result['not_written'] == [4]
    assert 'may or may not be in the stream' in result['msg']


def test_trim_failure_after_the_batch_is_a_warning(run_module, client, monkeypatch):
    warnings = []
    monkeypatch.setattr(redis_job.AnsibleModule, 'warn', lambda self, w: warnings.append(w))
    client.pipeline.return_value.execute.return_value = ['1-0']
    client.xinfo_groups.side_effect = exceptions.NoPermissionError('no xinfo for you')
    client.exists.return_value = 1
    result, failed = run_module(redis_job.main, dict(job_type='build'))
    assert not failed and result['entry_ids'] == ['1-0']
    assert warnings and warnings[0].startswith('The jobs were added, but trimming the stream failed.')


def test_unserialisable_payload(run_module, client, monkeypatch):
    # Ansible hands modules JSON data, so this only happens to direct callers of job_fields.
    module = mock.Mock()
    module.fail_json.side_effect = SystemExit
    with pytest.raises(SystemExit):
        redis_job.job_fields(module, dict(job_type='x', payload={1j}), 'jobs[0]')
    assert 'cannot be serialised as JSON' in module.fail_json.call_args.kwargs['msg']
