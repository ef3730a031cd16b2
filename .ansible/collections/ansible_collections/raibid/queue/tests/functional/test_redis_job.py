# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""raibid.queue.redis_job against a real redis-server, read back the way workers read jobs."""

from __future__ import annotations

import json
import uuid

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'


def test_one_job_is_read_by_a_worker(run, redis_server):
    client = redis_server.client()
    assert run('redis_queue', redis_server.login())['changed'] is True
    payload = {'repository': 'raibid/raibid-ci', 'ref': 'main', 'attempt': 1}

    result = run('redis_job', redis_server.login(job_type='build', job_id='job-1', payload=payload))
    assert result['changed'] is True
    assert result['job_ids'] == ['job-1']
    assert len(result['entry_ids']) == 1

    # A worker, as in the design: XREADGROUP GROUP raibid-workers <consumer> COUNT 1 STREAMS raibid:jobs >
    delivered = client.xreadgroup(GROUP, 'agent-1', {STREAM: '>'}, count=1)
    entry_id, fields = delivered[0][1][0]
    assert entry_id == result['entry_ids'][0]
    assert fields['job_id'] == 'job-1'
    assert fields['job_type'] == 'build'
    assert json.loads(fields['payload']) == payload
    # And with redis-cli, field order as producers write it.
    assert redis_server.cli('XRANGE', STREAM, '-', '+').split('\n')[1:6:2] == ['job_id', 'job_type', 'payload']


def test_many_jobs_in_order_with_generated_ids(run, redis_server):
    client = redis_server.client()
    jobs = [{'job_type': 'test', 'payload': {'suite': 'unit'}},
            {'job_type': 'test', 'job_id': 'given', 'payload': 'plain text'},
            {'job_type': 'lint'}]
    result = run('redis_job', redis_server.login(jobs=jobs))
    assert len(result['entry_ids']) == 3
    entries = client.xrange(STREAM)
    assert [e[0] for e in entries] == result['entry_ids']
    assert [e[1]['job_type'] for e in entries] == ['test', 'test', 'lint']
    assert [e[1]['job_id'] for e in entries] == result['job_ids']
    assert uuid.UUID(result['job_ids'][0]) and result['job_ids'][1] == 'given'
    assert [json.loads(e[1]['payload']) for e in entries] == [{'suite': 'unit'}, 'plain text', {}]


def test_check_mode_writes_nothing(run, redis_server):
    result = run('redis_job', redis_server.login(job_type='build'), check=True)
    assert result['changed'] is True
    assert result['entry_ids'] == []
    assert redis_server.client().exists(STREAM) == 0


def test_max_length_caps_the_stream(run, redis_server):
    client = redis_server.client()
    pipe = client.pipeline()
    for i in range(500):
        pipe.xadd(STREAM, {'job_id': str(i), 'job_type': 'old', 'payload': '{}'})
    pipe.execute()
    run('redis_job', redis_server.login(max_length=100, jobs=[{'job_type': 'new'}] * 2))
    assert 100 <= client.xlen(STREAM) < 300
    assert client.xrevrange(STREAM, count=1)[0][1]['job_type'] == 'new'


def test_bad_input_fails_before_anything_is_written(run, redis_server):
    both = run('redis_job', redis_server.login(job_type='build', jobs=[{'job_type': 'x'}]))
    assert both.get('failed') is True and 'mutually exclusive' in both['msg']
    neither = run('redis_job', redis_server.login())
    assert neither.get('failed') is True and 'one of the following is required' in neither['msg']
    missing_type = run('redis_job', redis_server.login(jobs=[{'job_id': 'x'}]))
    assert missing_type.get('failed') is True and 'job_type' in missing_type['msg']
    assert redis_server.client().exists(STREAM) == 0


def test_wrong_type_key_is_left_alone(run, redis_server):
    redis_server.client().set(STREAM, 'precious')
    result = run('redis_job', redis_server.login(job_type='build'))
    assert result.get('failed') is True and 'not a stream' in result['msg']
    assert redis_server.client().get(STREAM) == 'precious'
