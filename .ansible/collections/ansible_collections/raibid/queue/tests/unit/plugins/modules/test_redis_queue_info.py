# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of redis_queue_info's error branches (mocked client)."""

from __future__ import annotations

from unittest import mock

from redis import exceptions

from ansible_collections.raibid.queue.plugins.modules import redis_queue_info


def test_stream_name_required(run_module, monkeypatch):
    monkeypatch.setattr(redis_queue_info, 'connect', mock.Mock(side_effect=AssertionError('must not connect')))
    result, failed = run_module(redis_queue_info.main, dict(stream=''))
    assert failed and result['msg'] == 'stream must not be empty.'


def test_redis_error_fails_with_a_sentence(run_module, monkeypatch):
    client = mock.Mock()
    client.type.side_effect = exceptions.ConnectionError('Connection reset by peer')
    monkeypatch.setattr(redis_queue_info, 'connect', lambda module: client)
    result, failed = run_module(redis_queue_info.main, {})
    assert failed and result['msg'] == 'Redis refused to describe stream raibid:jobs: Connection reset by peer'
    client.close.assert_called_once()
