# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The queue's promise on a real redis-server: trimming, backpressure and a full server never lose a job.

Every count is taken with a second client, before and after the module ran.
"""

from __future__ import annotations

import json

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'


def fill(client, count, start=0, stream=STREAM):
    pipe = client.pipeline(transaction=False)
    for i in range(start, start + count):
        pipe.xadd(stream, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'})
    return pipe.execute()


def read(client, count, group=GROUP, ack=True):
    """A worker reads count jobs (and acknowledges them unless ack=False)."""
    delivered = client.xreadgroup(group, 'agent-1', {STREAM: '>'}, count=count)
    ids = [entry_id for entry_id, dummy in delivered[0][1]] if delivered else []
    if ack and ids:
        client.xack(STREAM, group, *ids)
    return ids


def all_ids(client):
    return [entry_id for entry_id, dummy in client.xrange(STREAM)]


def warned(result, text):
    return any(text in w for w in result.get('warnings', []))


def test_15000_jobs_100_pending_workers_down_nothing_lost(run, redis_server):
    """Issue #10's scenario: group created, 15000 jobs, 100 read without ack, 14900 never delivered."""
    client = redis_server.client()
    assert run('redis_queue', redis_server.login())['changed'] is True
    ids = fill(client, 15000)
    pending = read(client, 100, ack=False)
    assert client.xlen(STREAM) == 15000 and client.xpending(STREAM, GROUP)['pending'] == 100
    args = redis_server.login(max_length=10000)

    predicted = run('redis_queue', args, check=True)
    assert predicted['changed'] is False and predicted['trimmed'] == 0
    assert predicted['kept_unprocessed'] == 5000

    result = run('redis_queue', args)
    assert result['changed'] is False, result
    assert result['trimmed'] == 0 and result['commands'] == []
    assert result['kept_unprocessed'] == 5000 and result['backlog'] == 15000
    assert warned(result, '15000 jobs are waiting in group raibid-workers')
    # 0 jobs lost: every entry is still there, the pending ones too.
    assert all_ids(client) == ids
    assert [e[0] for e in client.xrange(STREAM, min=pending[0], max=pending[-1])] == pending
    assert client.xpending(STREAM, GROUP)['pending'] == 100

    # Workers come back: they finish the 100 and 2900 more. Only those 3000 may go.
    client.xack(STREAM, GROUP, *pending)
    read(client, 2900)
    partly = run('redis_queue', args)
    assert partly['changed'] is True and partly['trimmed'] == 3000 and partly['kept_unprocessed'] == 2000
    assert all_ids(client) == ids[3000:]

    # Everything processed: the history beyond max_length IS trimmed, exactly.
    read(client, 12000)
    history = run('redis_queue', args)
    assert history['trimmed'] == 2000 and history['kept_unprocessed'] == 0
    assert all_ids(client) == ids[5000:]
    assert run('redis_queue', args)['changed'] is False


def test_the_slowest_group_decides(run, redis_server):
    client = redis_server.client()
    client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    client.xgroup_create(STREAM, 'auditors', id='$')
    ids = fill(client, 500)
    read(client, 500)
    read(client, 150, group='auditors')
    result = run('redis_queue', redis_server.login(max_length=100, trim_mode='exact'))
    assert result['trimmed'] == 150 and result['kept_unprocessed'] == 250
    assert all_ids(client) == ids[150:]
    assert warned(result, '350 jobs are waiting in group auditors')


def test_a_new_group_replaying_the_stream_protects_it_in_check_mode_too(run, redis_server):
    client = redis_server.client()
    fill(client, 300)
    args = redis_server.login(max_length=100, trim_mode='exact', start_id='0')
    predicted = run('redis_queue', args, check=True)
    assert predicted['commands'] == ['XGROUP CREATE raibid:jobs raibid-workers 0 MKSTREAM']
    assert predicted['trimmed'] == 0 and predicted['kept_unprocessed'] == 200
    result = run('redis_queue', args)
    assert result['commands'] == predicted['commands'] and result['trimmed'] == 0
    assert client.xlen(STREAM) == 300


def test_redis_job_never_drops_undelivered_jobs(run, redis_server):
    """The old XADD MAXLEN ~ dropped the oldest jobs once the backlog passed max_length."""
    client = redis_server.client()
    client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    ids = fill(client, 10050)
    jobs = [{'job_type': 'build', 'job_id': 'new-%d' % i} for i in range(100)]
    result = run('redis_job', redis_server.login(jobs=jobs))
    assert result['changed'] is True and result['trimmed'] == 0
    assert result['kept_unprocessed'] == 150 and result['backlog'] == 10150
    assert warned(result, '10150 jobs are waiting')
    assert all_ids(client) == ids + result['entry_ids']

    # Once processed, the history is trimmed after the next batch; check mode predicts it exactly.
    read(client, 10150)
    args = redis_server.login(job_type='build', job_id='last')
    predicted = run('redis_job', args, check=True)
    assert predicted['trimmed'] == 151 and predicted['entry_ids'] == []
    assert client.xlen(STREAM) == 10150
    done = run('redis_job', args)
    assert done['trimmed'] == 151
    assert client.xlen(STREAM) == 10000
    assert all_ids(client)[-1] == done['entry_ids'][0]


def test_backpressure_refuses_the_whole_batch(run, redis_server):
    client = redis_server.client()
    client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    fill(client, 8)
    read(client, 3)
    read(client, 2, ack=False)
    # Waiting: 3 never delivered + 2 pending = 5.
    jobs = [{'job_type': 'build'}] * 3
    before = all_ids(client)
    full = run('redis_job', redis_server.login(jobs=jobs, max_backlog=7))
    assert full.get('failed') is True and full['changed'] is False
    assert full['msg'].startswith('queue full: 5 jobs waiting, limit 7')
    assert all_ids(client) == before, 'nothing of the batch may be written'
    assert run('redis_job', redis_server.login(jobs=jobs, max_backlog=7), check=True).get('failed') is True

    fits = run('redis_job', redis_server.login(jobs=jobs, max_backlog=8))
    assert fits['changed'] is True and fits['backlog'] == 8 and client.xlen(STREAM) == 11

    # Without a group every entry counts as waiting.
    client.delete('raibid:other')
    fill(client, 4, stream='raibid:other')
    groupless = run('redis_job', redis_server.login(stream='raibid:other', job_type='b', max_backlog=4))
    assert groupless['msg'].startswith('queue full: 4 jobs waiting, limit 4')
    assert client.xlen('raibid:other') == 4


def test_20000_jobs_against_a_full_server_then_a_safe_retry(run, redis_server):
    """Issue #16 case 1: Redis refuses part of the batch (maxmemory, noeviction). The module returns which jobs
    were accepted; sending only the others leaves every job exactly once."""
    client = redis_server.client()
    client.config_set('maxmemory-policy', 'noeviction')
    client.config_set('maxmemory', int(client.info('memory')['used_memory']) + 600 * 1024)
    jobs = [{'job_type': 'build', 'job_id': 'j%d' % i, 'payload': {'n': i, 'pad': 'x' * 40}} for i in range(20000)]

    refused = run('redis_job', redis_server.login(jobs=jobs, max_length=0))
    assert refused.get('failed') is True
    assert 'it is out of memory' in refused['msg'] and 'not_written lists the indexes' in refused['msg']
    assert refused['changed'] is True
    entry_ids = refused['entry_ids']
    assert len(entry_ids) == 20000 and refused['uncertain'] == []
    written = {i for i, entry_id in enumerate(entry_ids) if entry_id is not None}
    assert 0 < len(written) < 20000 and refused['written'] == len(written)
    assert set(refused['not_written']) == set(range(20000)) - written
    # The second client sees exactly the jobs reported as written, under the reported IDs.
    in_redis = {fields['job_id']: entry_id for entry_id, fields in client.xrange(STREAM)}
    assert in_redis == {'j%d' % i: entry_ids[i] for i in written}

    client.config_set('maxmemory', 0)
    retry = run('redis_job', redis_server.login(jobs=[jobs[i] for i in refused['not_written']], max_length=0))
    assert retry['changed'] is True and None not in retry['entry_ids']
    job_ids = [fields['job_id'] for dummy, fields in client.xrange(STREAM)]
    assert len(job_ids) == 20000 and set(job_ids) == {'j%d' % i for i in range(20000)}, 'a duplicate or a loss'


def test_queue_info_reports_memory_and_warns_near_maxmemory(run, redis_server):
    client = redis_server.client()
    info = run('redis_queue_info', redis_server.login())
    assert info['memory']['maxmemory'] == 0 and info['memory']['used_ratio'] is None
    assert info['memory']['used_memory'] > 0
    used = int(client.info('memory')['used_memory'])
    client.config_set('maxmemory', int(used / 0.9))
    near = run('redis_queue_info', redis_server.login())
    assert 0.8 < near['memory']['used_ratio'] <= 1.0
    assert warned(near, 'of its maxmemory')
    assert near['changed'] is False


def test_100000_jobs_from_a_file(run, redis_server, tmp_path):
    """The fast path for big batches: the job list read by the module itself."""
    path = tmp_path / 'jobs.json'
    path.write_text(json.dumps([{'job_type': 'build', 'job_id': 'j%d' % i, 'payload': {'n': i}}
                                for i in range(100000)]))
    result = run('redis_job', redis_server.login(jobs_file=str(path), max_length=0))
    assert result['changed'] is True and len(result['entry_ids']) == 100000
    assert redis_server.client().xlen(STREAM) == 100000
    assert result['invocation']['module_args']['jobs'] == '(100000 jobs)'
