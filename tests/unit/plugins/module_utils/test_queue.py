# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the safe trim plan and the maintenance plan (mock clients; the real thing is in tests/functional)."""

from __future__ import annotations

from unittest import mock

from redis import exceptions

from ansible_collections.raibid.queue.plugins.module_utils import _queue
from fake_stream import fake_client


def plan(client, max_length=100, threshold=100, **kwargs):
    return _queue.plan_trim(client, 'raibid:jobs', max_length, threshold, approximate=False, **kwargs)


def test_ids():
    assert _queue.next_id('5-3') == '5-4' and _queue.next_id('5') == '5-1'
    assert _queue.next_id('5-%d' % (2 ** 64 - 1)) == '6-0'
    assert _queue.parse_id('10-2') > _queue.parse_id('9-99')


def test_without_groups_trims_by_length():
    result = plan(fake_client(length=150))
    assert result['trim'] == dict(maxlen=100, approximate=False) and result['trimmed'] == 50
    assert result['backlog'] == 150 and result['kept_unprocessed'] == 0


def test_slowest_group_decides():
    # fast has processed everything, slow only up to 20-0.
    client = fake_client(length=150, groups=[('fast', '150-0', 0, 0), ('slow', '20-0', 0, 130)])
    result = plan(client)
    assert result['trim'] == dict(minid='20-1') and result['trimmed'] == 20
    assert result['kept_unprocessed'] == 30
    assert result['backlog'] == 130 and result['slowest_group'] == 'slow'


def test_oldest_pending_entry_is_kept():
    client = fake_client(length=150, groups=[('g', '140-0', 5, 10)], pending_min={'g': '11-0'})
    result = plan(client)
    assert result['trim'] == dict(minid='10-1') and result['trimmed'] == 10
    assert result['backlog'] == 15


def test_processed_history_is_trimmed_down_to_max_length_only():
    result = plan(fake_client(length=150, groups=[('g', '150-0', 0, 0)]))
    assert result['trim'] == dict(minid='50-1') and result['trimmed'] == 50 and result['kept_unprocessed'] == 0


def test_nothing_processed_nothing_trimmed():
    result = plan(fake_client(length=15000, groups=[('g', '0-0', 0, 15000)]), max_length=10000, threshold=10100)
    assert result['trim'] is None and result['trimmed'] == 0 and result['kept_unprocessed'] == 5000
    assert 'kept, since trimming never removes unprocessed jobs' in _queue.backlog_warning(result, 10000)


def test_unknown_lag_is_counted():
    result = plan(fake_client(length=150, groups=[('g', '100-0', 0, None)]))
    assert result['backlog'] == 50


def test_threshold_and_zero():
    assert plan(fake_client(length=150, groups=[('g', '150-0', 0, 0)]), threshold=200)['trim'] is None
    assert plan(fake_client(length=150), max_length=0)['trim'] is None


def test_pending_batch_and_pretend_group():
    result = plan(fake_client(length=50, groups=[('g', '50-0', 0, 0)]), adding=80)
    assert result['length'] == 130 and result['backlog'] == 80
    pretend = dict(name='new', consumers=0, pending=0, last_delivered_id='0-0', entries_read=None, lag=None)
    assert plan(fake_client(length=150), pretend_group=pretend)['trim'] is None


def test_node_max_entries_falls_back():
    client = fake_client()
    assert _queue.node_max_entries(client) == (100, True)
    client.config_get.side_effect = exceptions.ResponseError('NOPERM')
    assert _queue.node_max_entries(client) == (100, False)


def test_memory_facts():
    client = fake_client()
    client.info.return_value = {'used_memory': 90, 'maxmemory': 100, 'maxmemory_policy': 'noeviction'}
    assert _queue.memory_facts(client) == dict(used_memory=90, maxmemory=100, used_ratio=0.9,
                                               maxmemory_policy='noeviction')
    client.info.return_value = {'used_memory': 90, 'maxmemory': 0}
    assert _queue.memory_facts(client)['used_ratio'] is None


def maintenance_client(entries, consumers, missing=()):
    """A mock whose XPENDING lists entries (id, consumer, idle ms, deliveries) and XINFO CONSUMERS consumers
    (name, pending, idle ms); IDs in missing are no longer in the stream."""
    client = mock.Mock()
    client.xpending_range.return_value = [dict(message_id=i, consumer=c, time_since_delivered=idle,
                                               times_delivered=n) for i, c, idle, n in entries]
    client.xinfo_consumers.return_value = [dict(name=n, pending=p, idle=idle) for n, p, idle in consumers]
    pipe = client.pipeline.return_value
    looked_up = []
    pipe.xrange.side_effect = lambda stream, min, max: looked_up.append(min)
    pipe.execute.side_effect = lambda: [[] if i in missing else [(i, {})] for i in looked_up]
    return client


def test_maintenance_plan():
    client = maintenance_client(
        entries=[('1-0', 'dead', 90000, 1), ('2-0', 'dead', 90000, 7), ('3-0', 'live', 100, 1),
                 ('4-0', 'raibid-reclaimer', 90000, 2), ('5-0', 'dead', 90000, 1)],
        consumers=[('dead', 3, 90000), ('live', 1, 100), ('empty', 0, 90000), ('fresh', 0, 10),
                   ('raibid-reclaimer', 1, 90000)],
        missing={'5-0'})
    plan = _queue.plan_maintenance(client, 'raibid:jobs', 'g', reclaim=dict(min_idle=60, consumer='raibid-reclaimer'),
                                   dead_letter=dict(max_deliveries=5, stream='raibid:jobs:dead'),
                                   delete_idle_consumers=dict(min_idle=60))
    assert [e['id'] for e in plan['dead_letter']] == ['2-0']
    # The reclaimer's own idle entry is handed over again; the live one is left alone.
    assert [(e['id'], e['missing']) for e in plan['reclaim']] == [('1-0', False), ('4-0', False), ('5-0', True)]
    # dead loses all 3; the reclaimer receives entries so it stays; fresh is not idle long enough.
    assert plan['delete_consumers'] == ['dead', 'empty']


def test_maintenance_plan_steps_alone():
    client = maintenance_client(entries=[('1-0', 'dead', 90000, 9)], consumers=[('dead', 1, 90000)])
    only_dead = _queue.plan_maintenance(client, 's', 'g', dead_letter=dict(max_deliveries=9, stream='d'))
    assert only_dead == dict(dead_letter=[], reclaim=[], delete_consumers=[])
    # Without reclaim or dead_letter, XPENDING is not even read, and a consumer holding an entry stays.
    client.xpending_range.reset_mock()
    only_consumers = _queue.plan_maintenance(client, 's', 'g', delete_idle_consumers=dict(min_idle=1))
    assert only_consumers['delete_consumers'] == [] and not client.xpending_range.called


def test_pending_entries_are_read_in_chunks():
    client = mock.Mock()
    first = [dict(message_id='%d-0' % i, consumer='c', time_since_delivered=0, times_delivered=1)
             for i in range(_queue.SCAN_CHUNK)]
    client.xpending_range.side_effect = [first, first[:1]]
    assert len(_queue.pending_entries(client, 's', 'g')) == _queue.SCAN_CHUNK + 1
    assert client.xpending_range.call_args[1]['min'] == '(%d-0' % (_queue.SCAN_CHUNK - 1)


def test_dead_letter_record_keeps_job_fields_and_marks_missing():
    entry = dict(id='7-0', consumer='c', deliveries=6, missing=False)
    assert _queue.dead_letter_record({'job_id': 'j'}, entry, 'g') == {
        'job_id': 'j', 'dead_letter_origin_id': '7-0', 'dead_letter_group': 'g', 'dead_letter_consumer': 'c',
        'dead_letter_deliveries': '6'}
    assert _queue.dead_letter_record({}, dict(entry, missing=True), 'g')['dead_letter_missing'] == 'true'
