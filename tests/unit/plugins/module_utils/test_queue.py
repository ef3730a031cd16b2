# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the safe trim plan (a fake stream of IDs 1-0 .. N-0; the real thing is in tests/functional)."""

from __future__ import annotations

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
