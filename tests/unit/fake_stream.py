# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A mock redis client whose stream reads answer like Redis for a stream of IDs 1-0 .. N-0."""

from __future__ import annotations

from unittest import mock


def _key(entry_id):
    ms, dummy, seq = entry_id.partition('-')
    return int(ms), int(seq or 0)


def fake_client(length=0, groups=(), stream_type=None, node_max='100', pending_min=None):
    """groups: (name, last_delivered_id, pending, lag) tuples; pending_min: {group: oldest pending ID}."""
    ids = ['%d-0' % (i + 1) for i in range(length)]
    client = mock.Mock()
    client.type.return_value = stream_type or ('stream' if length or groups else 'none')
    client.exists.return_value = int(client.type.return_value != 'none')
    client.xlen.return_value = length
    client.xinfo_groups.return_value = [
        {'name': name, 'consumers': 0, 'pending': pending, 'last-delivered-id': last, 'entries-read': None,
         'lag': lag} for name, last, pending, lag in groups]
    client.xpending.side_effect = lambda stream, group: {'pending': 1, 'min': (pending_min or {}).get(group)}

    def xrange(stream, min='-', max='+', count=None):
        def above(entry_id):
            if min == '-':
                return True
            return _key(entry_id) > _key(min[1:]) if min.startswith('(') else _key(entry_id) >= _key(min)

        def below(entry_id):
            if max == '+':
                return True
            return _key(entry_id) < _key(max[1:]) if max.startswith('(') else _key(entry_id) <= _key(max)

        found = [(i, {}) for i in ids if above(i) and below(i)]
        return found[:count] if count else found

    client.xrange.side_effect = xrange
    client.xrevrange.side_effect = lambda stream, count=None: [(i, {}) for i in reversed(ids)][:count]
    client.info.return_value = {'redis_version': '7.0.15', 'used_memory': 100, 'maxmemory': 0}
    client.config_get.return_value = {'stream-node-max-entries': node_max}
    client.xtrim.return_value = 0

    def xgroup_create(stream, group, id='$', mkstream=False):
        client.xinfo_groups.return_value.append({'name': group, 'consumers': 0, 'pending': 0,
                                                 'last-delivered-id': ids[-1] if ids else '0-0', 'lag': 0})
        client.type.return_value, client.exists.return_value = 'stream', 1

    client.xgroup_create.side_effect = xgroup_create
    return client
