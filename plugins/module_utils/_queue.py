# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

"""The queue's promise, shared by the modules: trimming never removes a job some group has not processed.

An entry may go only when every consumer group has had it delivered and none holds it pending. For each group
that is every ID below its oldest pending entry, or, with nothing pending, every ID up to its last delivered
one; the slowest group decides. The trim then runs as `XTRIM <stream> MINID = <id>`, which removes only IDs
below <id>, so it stays safe when producers add entries or workers advance meanwhile. (A group created
between the plan and the trim is not protected: Redis has no atomic "trim what every group processed" before
8.2, and 8.2's ACKED option is not used here.)
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    group_facts,
    redis_exceptions,
)

# Redis' default stream-node-max-entries, used when CONFIG GET is not allowed.
DEFAULT_NODE_MAX_ENTRIES = 100
# Entries fetched per XRANGE while counting, so that counting never holds much in memory.
SCAN_CHUNK = 1000
MAX_SEQUENCE = 2 ** 64 - 1
# redis_queue_info warns when used memory passes this share of maxmemory.
MEMORY_WARN_RATIO = 0.8


def parse_id(entry_id):
    """A stream ID as a comparable (milliseconds, sequence) tuple."""
    ms, dummy, seq = entry_id.partition('-')
    return int(ms), int(seq or 0)


def next_id(entry_id):
    """The smallest ID above entry_id: MINID <next_id(x)> removes x and everything before it."""
    ms, seq = parse_id(entry_id)
    if seq >= MAX_SEQUENCE:
        return '%d-0' % (ms + 1)
    return '%d-%d' % (ms, seq + 1)


def node_max_entries(client):
    """(stream-node-max-entries, known): Redis' default and known=False when CONFIG GET is refused."""
    try:
        value = client.config_get('stream-node-max-entries').get('stream-node-max-entries')
    except redis_exceptions.ResponseError:
        return DEFAULT_NODE_MAX_ENTRIES, False
    try:
        return int(value), True
    except (TypeError, ValueError):
        return DEFAULT_NODE_MAX_ENTRIES, False


def count_between(client, stream, start, end, limit):
    """(count, last ID) of the entries from start to end (XRANGE syntax), counting at most limit of them."""
    count, last = 0, None
    while count < limit:
        batch = client.xrange(stream, min=start, max=end, count=min(SCAN_CHUNK, limit - count))
        if not batch:
            break
        count += len(batch)
        last = batch[-1][0]
        start = '(' + last
    return count, last


def unprocessed_from(client, stream, group):
    """The smallest ID the group has not processed: its oldest pending entry, else the one after its last delivered."""
    safe = next_id(group['last_delivered_id'] or '0-0')
    if group['pending']:
        oldest = client.xpending(stream, group['name']).get('min')
        if oldest and parse_id(oldest) < parse_id(safe):
            safe = oldest
    return safe


def group_backlog(client, stream, group, limit):
    """Entries the group still has to process: lag (not delivered) plus pending (not acknowledged).

    Redis answers lag null when it cannot tell (after XDEL, for instance); the undelivered entries are then
    counted, up to limit.
    """
    lag = group['lag']
    if lag is None:
        lag = count_between(client, stream, '(' + (group['last_delivered_id'] or '0-0'), '+', limit)[0]
    return lag + group['pending']


def plan_trim(client, stream, max_length, threshold, approximate, adding=0, pretend_group=None):
    """What trimming would do now, read-only: the command to run and the counts it would produce.

    max_length 0 never trims. threshold is the length above which a trim is due (max_length, or more to
    leave room for approximate trimming). adding counts entries about to be added (check mode of redis_job);
    pretend_group is a group about to be created (check mode of redis_queue).

    Returns a dict: length, groups (facts), trim (XTRIM arguments or None), trimmed (entries it removes;
    for an approximate trim without groups, the most), kept_unprocessed (entries above max_length kept
    because a group has not processed them), backlog and slowest_group.
    """
    exists = bool(client.exists(stream))
    length = (client.xlen(stream) if exists else 0) + adding
    groups = group_facts(client, stream) if exists else []
    if pretend_group:
        groups.append(pretend_group)
    plan = dict(length=length, groups=groups, trim=None, trimmed=0, kept_unprocessed=0, backlog=length,
                slowest_group=None)
    excess = max(0, length - max_length) if max_length else 0
    if groups:
        # Undelivered entries in the stream are at most its length; no need to count further.
        backlogs = [(group_backlog(client, stream, g, length) + adding, g['name']) for g in groups]
        plan['backlog'], plan['slowest_group'] = max(backlogs)
    if not excess:
        return plan
    if not groups:
        # Nobody reads through a group: trim by length, as producers' MAXLEN would.
        if length > threshold:
            plan['trim'] = dict(maxlen=max_length, approximate=approximate)
            plan['trimmed'] = excess
        return plan
    safe = min((unprocessed_from(client, stream, g) for g in groups), key=parse_id)
    removable, last = count_between(client, stream, '-', '(' + safe, excess)
    plan['kept_unprocessed'] = excess - removable
    if removable and length > threshold:
        plan['trim'] = dict(minid=next_id(last))
        plan['trimmed'] = removable
    return plan


def trim_command(stream, trim):
    """The XTRIM of a plan as text, for the `commands` a module returns."""
    if 'minid' in trim:
        return 'XTRIM %s MINID = %s' % (stream, trim['minid'])
    return 'XTRIM %s MAXLEN %s %d' % (stream, '~' if trim['approximate'] else '=', trim['maxlen'])


def run_trim(client, stream, trim):
    """Run a planned XTRIM; returns the entries Redis removed."""
    if 'minid' in trim:
        return client.xtrim(stream, minid=trim['minid'], approximate=False)
    return client.xtrim(stream, maxlen=trim['maxlen'], approximate=trim['approximate'])


def backlog_warning(plan, max_length):
    """A sentence when the jobs waiting exceed max_length (they are kept: the workers are behind), else None."""
    if not max_length or plan['backlog'] <= max_length:
        return None
    who = 'group %s' % plan['slowest_group'] if plan['slowest_group'] else 'the stream (no consumer group)'
    return ('%d jobs are waiting in %s (not delivered or not acknowledged), more than max_length %d. They are '
            'kept, since trimming never removes unprocessed jobs; the workers are behind or down.'
            % (plan['backlog'], who, max_length))


def memory_facts(client):
    """used_memory, maxmemory (0 = no limit) and their ratio (null without a limit), from INFO memory."""
    info = client.info('memory')
    used, limit = int(info.get('used_memory', 0)), int(info.get('maxmemory', 0))
    return dict(used_memory=used, maxmemory=limit, used_ratio=round(float(used) / limit, 4) if limit else None,
                maxmemory_policy=info.get('maxmemory_policy'))
