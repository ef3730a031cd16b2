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


def consumer_facts(client, stream, group):
    """XINFO CONSUMERS of a group as dicts name, pending, idle (milliseconds since the consumer's last read or claim)."""
    return [dict(name=c['name'], pending=c.get('pending', 0), idle=c.get('idle', 0))
            for c in client.xinfo_consumers(stream, group)]


def pending_entries(client, stream, group):
    """Every pending entry of the group, from the extended XPENDING, as dicts id, consumer, idle (ms), deliveries."""
    entries, start = [], '-'
    while True:
        batch = client.xpending_range(stream, group, min=start, max='+', count=SCAN_CHUNK)
        entries.extend(dict(id=e['message_id'], consumer=e['consumer'], idle=e['time_since_delivered'],
                            deliveries=e['times_delivered']) for e in batch)
        if len(batch) < SCAN_CHUNK:
            return entries
        start = '(' + batch[-1]['message_id']


def missing_entries(client, stream, ids):
    """The IDs among ids whose entry is no longer in the stream (trimmed or deleted while pending)."""
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(stream, min=entry_id, max=entry_id)
    return set(entry_id for entry_id, found in zip(ids, pipe.execute()) if not found)


def plan_maintenance(client, stream, group, reclaim=None, dead_letter=None, delete_idle_consumers=None):
    """What the maintenance options of redis_queue would do now, read-only (check mode reports exactly this).

    reclaim: dict(min_idle=seconds, consumer=name); dead_letter: dict(max_deliveries=N, stream=name);
    delete_idle_consumers: dict(min_idle=seconds); None turns a step off.

    Returns a dict:
    dead_letter: pending entries delivered more than N times (they go to the dead-letter stream, not to reclaim);
    reclaim: the other pending entries idle at least reclaim's min_idle, those the target consumer holds too (a
    new hand-over counts as a delivery, so an entry nobody works on reaches the dead-letter stream in the end);
    delete_consumers: consumers idle at least delete_idle_consumers' min_idle that hold no pending entry once
    the entries above have moved (the reclaim target only when it receives nothing).
    Each entry is a dict id, consumer, idle, deliveries, missing (its stream entry is gone).
    """
    plan = dict(dead_letter=[], reclaim=[], delete_consumers=[])
    entries = pending_entries(client, stream, group) if reclaim or dead_letter else []
    if dead_letter:
        plan['dead_letter'] = [e for e in entries if e['deliveries'] > dead_letter['max_deliveries']]
    if reclaim:
        dead = set(e['id'] for e in plan['dead_letter'])
        plan['reclaim'] = [e for e in entries if e['id'] not in dead and e['idle'] >= reclaim['min_idle'] * 1000]
    moving = plan['dead_letter'] + plan['reclaim']
    missing = missing_entries(client, stream, [e['id'] for e in moving]) if moving else set()
    for entry in moving:
        entry['missing'] = entry['id'] in missing
    if delete_idle_consumers:
        leaving, dead = {}, set(e['id'] for e in plan['dead_letter'])
        for entry in moving:
            # An entry handed again to the consumer that holds it stays with it (unless its job is gone).
            stays = reclaim and entry['consumer'] == reclaim['consumer'] and entry['id'] not in dead
            if not stays or entry['missing']:
                leaving[entry['consumer']] = leaving.get(entry['consumer'], 0) + 1
        receiving = reclaim['consumer'] if reclaim and any(not e['missing'] for e in plan['reclaim']) else None
        plan['delete_consumers'] = [
            c['name'] for c in consumer_facts(client, stream, group)
            if c['idle'] >= delete_idle_consumers['min_idle'] * 1000 and c['name'] != receiving
            and c['pending'] - leaving.get(c['name'], 0) <= 0]
    return plan


def dead_letter_record(fields, entry, group):
    """The dead-letter stream entry of a pending entry: its fields, then where it came from and how often it was
    delivered (under names a job does not use, so that they never replace a job field)."""
    record = dict(fields)
    record.update(dead_letter_origin_id=entry['id'], dead_letter_group=group, dead_letter_consumer=entry['consumer'],
                  dead_letter_deliveries=str(entry['deliveries']))
    if entry['missing']:
        record['dead_letter_missing'] = 'true'
    return record
