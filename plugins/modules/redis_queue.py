#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: redis_queue
short_description: Make sure the raibid job queue (a Redis stream and its consumer group) exists
version_added: 0.1.0
description:
  - Checks that Redis answers C(PING), then makes sure a stream and its consumer group exist with
    C(XGROUP CREATE <stream> <group> <start_id> MKSTREAM).
  - Trims processed history beyond O(max_length) entries with C(XTRIM), never a job some consumer group has not
    processed, and writes the credentials file that raibid workers and tools read.
  - Checks every option and the credentials file before anything is sent to Redis. Should a step fail after an
    earlier one changed Redis, the failure says so with C(changed=true) and the RV(commands) that ran.
  - With O(state=absent), removes the consumer group, the credentials file, and the stream only when
    O(delete_stream=true).
  - Maintenance, each step off unless asked for (the playbook C(raibid.queue.maintain_queue) runs them).
    O(dead_letter) moves jobs delivered too often to a dead-letter stream, O(reclaim) hands jobs whose worker went
    silent to another consumer, O(delete_idle_consumers) removes consumers that are long idle and hold nothing.
    They run in that order, after trimming; check mode predicts each with C(XPENDING) and C(XINFO CONSUMERS).
author:
  - raibid maintainers (@raibid)
extends_documentation_fragment:
  - raibid.queue._redis
attributes:
  check_mode:
    support: full
    description: Predicts every change with read-only commands and changes nothing.
  diff_mode:
    support: full
    description:
      - Shows the consumer group, stream length and credentials file before and after.
      - Secrets are masked (V(******** (changed\)) when a new value replaces an old one), and so are the values of
        keys in the file that the module does not write.
  idempotent:
    support: full
    description: A second run with the same options reports no change.
options:
  state:
    description:
      - V(present) creates what is missing; V(absent) removes the consumer group and the credentials file.
    type: str
    choices: [present, absent]
    default: present
  stream:
    description:
      - Name of the stream key that holds the jobs.
      - A key of another type under this name is an error, and that key is left untouched.
    type: str
    default: 'raibid:jobs'
  consumer_group:
    description:
      - Name of the consumer group the workers read with C(XREADGROUP).
    type: str
    default: raibid-workers
    aliases: [group]
  start_id:
    description:
      - Where a newly created group starts reading. V($) delivers only entries added later, V(0) replays the
        whole stream. An existing group is never moved.
    type: str
    default: '$'
  max_length:
    description:
      - Processed entries to keep at most. V(0) never trims.
      - An entry is removed only when every consumer group of the stream has had it delivered and none holds it
        pending (the slowest group decides), oldest first, and only as many as bring the stream down to
        O(max_length); this runs as C(XTRIM <stream> MINID = <id>). Jobs not processed yet are kept however many
        they are; RV(kept_unprocessed) counts those above O(max_length), and the module warns when the jobs
        waiting in the slowest group (lag plus pending) exceed O(max_length).
      - With O(trim_mode=approximate) the module trims only when the stream is longer than O(max_length) plus
        C(stream-node-max-entries) (read from the server; 100, the Redis default, when C(CONFIG GET) is refused),
        so that it does not trim a few entries on every run.
    type: int
    default: 10000
  trim_mode:
    description:
      - V(approximate) leaves up to C(stream-node-max-entries) entries above O(max_length) before trimming
        (without groups it trims with the cheaper C(XTRIM MAXLEN ~)); V(exact) trims down to O(max_length) on every
        run.
      - Trimming by C(MINID) is always exact, so that check mode predicts it exactly.
    type: str
    choices: [approximate, exact]
    default: approximate
  delete_stream:
    description:
      - With O(state=absent), also delete the stream and every job in it. This loses data, so it is off by default.
    type: bool
    default: false
  credentials_path:
    description:
      - Where to write the credentials file, as JSON with the keys C(host), C(port), C(password),
        C(namespace), C(stream) and C(consumer_group), plus C(username) when O(login_user) is set and
        C(tls) (V(true)) when O(tls=true), since workers then need TLS too.
      - The file is replaced atomically with mode C(0600); missing directories are created with mode C(0700).
        The same content again is not a change.
      - The path must be absent or a regular file (not a symbolic link, directory or FIFO) that this user can read
        and write, holding a JSON object (or nothing); anything else is an error that names the file, before
        Redis is touched.
      - When not set, no file is written (or removed).
    type: path
  credentials_host:
    description:
      - Host written to the credentials file. This is the address workers use, which often differs from
        O(login_host), for example C(raibid-redis-master.raibid-redis.svc.cluster.local).
      - Defaults to O(login_host).
    type: str
  credentials_port:
    description:
      - Port written to the credentials file. Defaults to O(login_port).
    type: int
  credentials_namespace:
    description:
      - Kubernetes namespace written to the credentials file.
    type: str
    default: raibid-redis
  credentials_extra:
    description:
      - More keys for the credentials file, for example how Sentinel-aware clients find the master.
      - They cannot replace the keys the module writes itself.
      - Values of keys whose names contain C(password), C(passwd), C(secret), C(token), C(credential), C(private)
        or C(api_key), and of keys listed in O(credentials_secret_keys), are secrets, masked in the diff and
        never shown in any output.
    type: dict
  credentials_secret_keys:
    description:
      - More keys of O(credentials_extra) whose values are secrets (see there).
    type: list
    elements: str
  reclaim:
    description:
      - Hand pending entries idle at least O(reclaim.min_idle) seconds (delivered, not acknowledged, and untouched
        since, because their worker died or hangs) to the consumer O(reclaim.consumer), with
        C(XCLAIM <stream> <group> <consumer> <min-idle-ms> <id>...).
      - Redis cannot give a pending entry back to the group for any consumer to read with C(>); an entry always
        belongs to one consumer until acknowledged. So name a consumer that will process the entries (a worker
        that reads its own pending entries with C(XREADGROUP ... 0) or claims with C(XAUTOCLAIM)), or leave the
        default C(raibid-reclaimer) to park them where an operator can look at them.
      - XCLAIM checks the idle time again for each entry, so an entry whose worker touched or acknowledged it
        since the plan is not taken. Each hand-over counts as a delivery; with O(dead_letter) an entry that
        nobody processes reaches the dead-letter stream after enough runs.
      - An entry no longer in the stream (trimmed or deleted while pending) is dropped from the pending list by
        C(XCLAIM) instead and listed with RV(reclaimed[].missing=true).
      - Only with O(state=present). Off when not set.
    type: dict
    suboptions:
      min_idle:
        description: Seconds an entry must have been idle, at least 1. Set it above your longest job.
        type: int
        required: true
      consumer:
        description: Consumer that receives the entries; created when it does not exist.
        type: str
        default: raibid-reclaimer
  dead_letter:
    description:
      - Move pending entries delivered more than O(dead_letter.max_deliveries) times (the delivery count of
        C(XPENDING)) to the stream O(dead_letter.stream), then acknowledge them in the group.
      - The copy holds the entry's fields plus C(dead_letter_origin_id), C(dead_letter_group),
        C(dead_letter_consumer), C(dead_letter_deliveries), and C(dead_letter_missing=true) when the entry was no
        longer in the stream. C(XADD) runs before C(XACK), so a job is never lost (a run stopped between the two
        leaves a copy that the next run makes again); should its worker acknowledge the entry in the meantime,
        the copy is deleted again and the entry not listed.
      - An entry is moved whoever holds it, even a worker still busy with it; its later C(XACK) then answers 0.
      - The dead-letter stream is never trimmed by this module.
      - Only with O(state=present). Off when not set.
    type: dict
    suboptions:
      max_deliveries:
        description: Deliveries allowed, at least 1; an entry delivered more often is moved.
        type: int
        required: true
      stream:
        description: The dead-letter stream; must differ from O(stream). A key of another type is an error.
        type: str
        default: 'raibid:jobs:dead'
  delete_idle_consumers:
    description:
      - Delete consumers of the group idle at least O(delete_idle_consumers.min_idle) seconds that hold no pending
        entry (after O(dead_letter) and O(reclaim) ran), with C(XGROUP DELCONSUMER).
      - Idle is the C(idle) of C(XINFO CONSUMERS). Before Redis 7.2 a read that finds no new entry does not reset
        it, so a worker waiting for work on an empty queue may be deleted; its next read creates it again, and
        nothing is lost since it held nothing.
      - Consumers are read again right before the deletion, and one that holds an entry or became active by then
        is kept.
      - Only with O(state=present). Off when not set.
    type: dict
    suboptions:
      min_idle:
        description: Seconds a consumer must have been idle, at least 1.
        type: int
        required: true
notes:
  - The consumer group is created with C(MKSTREAM), so the stream appears empty at first.
  - "Commands used: C(PING), C(TYPE), C(EXISTS), C(XLEN), C(XRANGE), C(XREVRANGE), C(XINFO GROUPS), C(XPENDING),
    C(XGROUP CREATE) or C(XGROUP DESTROY), C(XTRIM), C(DEL) (with O(delete_stream=true)), and if allowed C(INFO)
    and C(CONFIG GET) (without them the version is null and the node size assumed, with a warning). An ACL user
    needs these on the stream's key. Maintenance adds C(XINFO CONSUMERS), C(XCLAIM), C(XADD), C(XACK), C(XDEL)
    and C(XGROUP DELCONSUMER) (and the dead-letter stream's key)."
  - The trim point is computed, then applied; a consumer group created in between by someone else is not
    protected by that run.
  - Redis cannot delete a consumer only if it holds nothing, and consumer group commands do not trigger C(WATCH).
    Should a consumer idle for O(delete_idle_consumers.min_idle) read an entry in the instant between the last
    check and its deletion, that entry leaves the pending list; the module warns with the count when this happens.
  - The credentials file holds the password; the module never logs it, the diff masks it, and it returns it only
    inside RV(url), which needs C(no_log) on the task that registers it.
seealso:
  - module: raibid.queue.redis_queue_info
  - module: raibid.queue.redis_job
  - name: Redis Streams
    description: Streams, consumer groups and trimming.
    link: https://redis.io/docs/latest/develop/data-types/streams/
'''

EXAMPLES = r'''
- name: Make sure the job queue exists, behind a port-forward, and write the credentials file
  raibid.queue.redis_queue:
    login_host: 127.0.0.1
    login_port: 16379
    login_password: "{{ redis_password }}"
    wait_timeout: 60
    credentials_path: ~/.raibid/redis-credentials.json
    credentials_host: raibid-redis-master.raibid-redis.svc.cluster.local
    credentials_port: 6379
    credentials_namespace: raibid-redis
  register: queue
  no_log: true

- name: Hand the connection URL to a worker deployment (never print it)
  ansible.builtin.set_fact:
    worker_redis_url: "{{ queue.url }}"
  no_log: true

- name: Keep at most 50000 jobs, trimming exactly
  raibid.queue.redis_queue:
    login_password: "{{ redis_password }}"
    max_length: 50000
    trim_mode: exact

- name: A second queue whose group replays every existing entry
  raibid.queue.redis_queue:
    stream: 'raibid:builds'
    consumer_group: builders
    start_id: '0'

- name: Maintenance only (no trimming), dead-letter, reclaim, remove idle consumers
  raibid.queue.redis_queue:
    login_password: "{{ redis_password }}"
    max_length: 0
    dead_letter:
      max_deliveries: 5
    reclaim:
      min_idle: 3600
    delete_idle_consumers:
      min_idle: 86400
  register: maintenance

- name: Remove the consumer group and the stream with all its jobs
  raibid.queue.redis_queue:
    state: absent
    delete_stream: true
    credentials_path: ~/.raibid/redis-credentials.json
'''

RETURN = r'''
redis_version:
  description: Version of the Redis server.
  returned: success
  type: str
  sample: 7.0.15
stream:
  description: The stream after the run (in check mode, as it is now).
  returned: success
  type: dict
  contains:
    name:
      description: Key name.
      type: str
      sample: 'raibid:jobs'
    exists:
      description: Whether the key exists.
      type: bool
      sample: true
    length:
      description: Number of entries.
      type: int
      sample: 42
    first_entry_id:
      description: ID of the oldest entry, null when empty.
      type: str
      sample: 1764557000000-0
    last_entry_id:
      description: ID of the newest entry, null when empty.
      type: str
      sample: 1764557999000-3
group:
  description: The consumer group after the run; absent with O(state=absent).
  returned: when O(state=present)
  type: dict
  contains:
    name:
      description: Group name.
      type: str
      sample: raibid-workers
    created:
      description: Whether this run created the group (or would, in check mode).
      type: bool
      sample: true
    consumers:
      description: Number of consumers that have read from the group.
      type: int
      sample: 2
    pending:
      description: Entries delivered but not acknowledged yet.
      type: int
      sample: 0
    last_delivered_id:
      description: ID of the last entry delivered to a consumer.
      type: str
      sample: 0-0
    entries_read:
      description: Entries the group has read (Redis 7 or newer, else null).
      type: int
      sample: 0
    lag:
      description: Entries not delivered yet (Redis 7 or newer; null when Redis cannot tell).
      type: int
      sample: 0
trimmed:
  description:
    - Entries removed by trimming (in check mode, that would be). Without consumer groups and with
      O(trim_mode=approximate), check mode gives the most that would be removed.
  returned: success
  type: int
  sample: 0
kept_unprocessed:
  description:
    - Entries above O(max_length) that were kept because a consumer group has not processed them yet.
  returned: success
  type: int
  sample: 4900
backlog:
  description:
    - Jobs waiting in the slowest consumer group, not delivered yet (lag) plus delivered and not acknowledged
      (pending); the stream length when it has no group.
  returned: when O(state=present), the stream existed and O(max_length) is not 0
  type: int
  sample: 15000
credentials_changes:
  description:
    - What a write of the credentials file changes, as key names (and C(mode) when the file mode is corrected),
      never values, for example V([password]) after a password rotation.
  returned: when the credentials file is written
  type: list
  elements: str
  sample: [password]
credentials_path:
  description: Absolute path of the credentials file, when O(credentials_path) is set.
  returned: when O(credentials_path) is set
  type: str
  sample: /home/ci/.raibid/redis-credentials.json
reclaimed:
  description:
    - Pending entries handed to O(reclaim.consumer) (in check mode, that would be), oldest first.
  returned: when O(reclaim) is set and O(state=present)
  type: list
  elements: dict
  contains:
    id:
      description: Entry ID.
      type: str
      sample: 1764557000000-0
    from_consumer:
      description: Consumer that held the entry.
      type: str
      sample: agent-7
    to_consumer:
      description: Consumer that holds it now; null when the entry was missing and only left the pending list.
      type: str
      sample: raibid-reclaimer
    deliveries:
      description: Delivery count after the hand-over.
      type: int
      sample: 2
    missing:
      description: The entry was no longer in the stream (trimmed or deleted), so it was dropped, not handed over.
      type: bool
      sample: false
dead_lettered:
  description:
    - Pending entries copied to the dead-letter stream and acknowledged (in check mode, that would be).
  returned: when O(dead_letter) is set and O(state=present)
  type: list
  elements: dict
  contains:
    id:
      description: Entry ID in O(stream).
      type: str
      sample: 1764557000000-0
    consumer:
      description: Consumer that held the entry.
      type: str
      sample: agent-7
    deliveries:
      description: How often it was delivered.
      type: int
      sample: 6
    dead_letter_id:
      description: ID of the copy in the dead-letter stream; null in check mode.
      type: str
      sample: 1764557999000-0
    missing:
      description: The entry was no longer in the stream; the copy holds only the C(dead_letter_*) fields.
      type: bool
      sample: false
deleted_consumers:
  description: Consumers deleted (in check mode, that would be).
  returned: when O(delete_idle_consumers) is set and O(state=present)
  type: list
  elements: str
  sample: [agent-3]
url:
  description:
    - The connection URL for workers, C(redis://:<password>@<host>:<port>) (C(rediss://) with O(tls=true),
      C(<user>:<password>@) with O(login_user)), built from O(credentials_host), O(credentials_port) and the login
      options; redis-py's C(redis.Redis.from_url()) and most clients accept it. An IPv6 address is put in brackets.
    - B(It holds the password), so it is returned only to a task with C(no_log) true, whose output Ansible never
      shows; register the result there and pass RV(url) on to tasks that have C(no_log) too.
    - Every byte of the password is percent-encoded (C(%41) for C(A), equivalent by RFC 3986 and decoded by
      redis-py's C(from_url) and redis-cli) because Ansible masks each verbatim occurrence of a C(no_log) value in
      a module's result, which would leave C(redis://:********@...). A password so short that it also occurs in
      the host name or in its own encoding is masked even so (with a warning).
    - For a client that does not decode the password, build the URL with the filter P(raibid.queue.redis_url#filter)
      in a C(no_log) task instead; it encodes only what needs it, so an alphanumeric password stays as it is.
    - With O(tls=true) clients also need the CA, for example C(from_url(url, ssl_ca_certs=path)).
  returned: when O(state=present) and the task has C(no_log) true
  type: str
  sample: redis://:%73%33%63%72%65%74@raibid-redis-master.raibid-redis.svc.cluster.local:6379
master:
  description: With O(sentinel_master_set), the master Sentinel named, which the module worked on.
  returned: when O(sentinel_master_set) is set
  type: dict
  contains:
    kubernetes_pod:
      description: The master's pod, with O(kubernetes_pod); null without.
      type: str
      sample: raibid-redis-node-1
    login_host:
      description: The master's address as Sentinel announces it, without O(kubernetes_pod); null with.
      type: str
      sample: 10.42.0.17
    login_port:
      description: The master's port.
      type: int
      sample: 6379
commands:
  description:
    - Redis commands that changed something (in check mode, that would have), without secrets.
    - On a failure, the commands that ran before it; C(changed) is then V(true) when there are any.
  returned: always
  type: list
  elements: str
  sample: ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']
'''

import os
import re
from functools import partial

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.raibid.queue.plugins.module_utils._credentials import CredentialsFile
from ansible_collections.raibid.queue.plugins.module_utils._queue import (
    SCAN_CHUNK,
    backlog_warning,
    consumer_facts,
    dead_letter_record,
    node_max_entries,
    plan_maintenance,
    plan_trim,
    run_trim,
    trim_command,
)
from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    connect,
    ensure_stream_type,
    group_facts,
    redis_connection_argument_spec,
    redis_error_message,
    redis_exceptions,
    server_version,
    stream_summary,
    validate_connection_params,
    validate_names,
)
from ansible_collections.raibid.queue.plugins.module_utils._url import redis_url

START_ID_PATTERN = re.compile(r'^(\$|0|[0-9]+(-[0-9]+)?)$')
# The maintenance options and the threshold each must have at 1 or more.
MAINTENANCE = (('dead_letter', 'max_deliveries'), ('reclaim', 'min_idle'), ('delete_idle_consumers', 'min_idle'))


def credentials_content(params):
    content = dict(
        host=params['credentials_host'] or params['login_host'],
        port=params['credentials_port'] or params['login_port'],
        password=params['login_password'],
        namespace=params['credentials_namespace'],
        stream=params['stream'],
        consumer_group=params['consumer_group'],
    )
    if params['login_user']:
        content['username'] = params['login_user']
    if params['tls']:
        content['tls'] = True
    return content


class Run(object):
    """What this run did so far, so that a failure after a change is reported as a change."""

    def __init__(self, module):
        self.module = module
        self.done = []
        self.result = dict(changed=False, trimmed=0, kept_unprocessed=0, commands=[], diff=dict(before={}, after={}))

    def fail(self, msg):
        self.module.fail_json(msg=msg, changed=bool(self.done), commands=self.done)

    def execute(self, command, call):
        """Run one changing Redis command (unless in check mode) and record it."""
        self.result['commands'].append(command)
        if self.module.check_mode:
            return None
        value = call()
        self.done.append(command)
        return value


def trim_threshold(module, client):
    """Length above which a trim is due: max_length, plus stream-node-max-entries in approximate mode, so that
    a few entries are not trimmed on every run (see the max_length documentation)."""
    params = module.params
    if params['trim_mode'] == 'exact':
        return params['max_length']
    return params['max_length'] + node_max_entries(client)[0]


def new_group(module, client):
    """The group XGROUP CREATE would make now, as group_facts() shows groups, for check mode's trim plan."""
    params = module.params
    if params['start_id'] == '$':
        last = client.xrevrange(params['stream'], count=1)
        start, lag = (last[0][0] if last else '0-0'), 0
    else:
        start, lag = ('0-0' if params['start_id'] == '0' else params['start_id']), None
    return dict(name=params['consumer_group'], consumers=0, pending=0, last_delivered_id=start, entries_read=None,
                lag=lag)


def ensure_present(module, client, run):
    params, result = module.params, run.result
    stream, group = params['stream'], params['consumer_group']
    stream_exists = ensure_stream_type(module, client, stream)
    if params['dead_letter']:
        ensure_stream_type(module, client, params['dead_letter']['stream'])
    existing = group_facts(client, stream, group) if stream_exists else []
    length = client.xlen(stream) if stream_exists else 0

    created = False
    if not existing:
        try:
            run.execute('XGROUP CREATE %s %s %s MKSTREAM' % (stream, group, params['start_id']),
                        lambda: client.xgroup_create(stream, group, id=params['start_id'], mkstream=True))
            created = True
        except redis_exceptions.ResponseError as e:
            # Someone else created it between our check and now: that is the state we want.
            if 'BUSYGROUP' not in str(e):
                run.fail(redis_error_message('create consumer group %s on %s' % (group, stream), e))
            result['commands'].pop()

    if stream_exists and params['max_length']:
        threshold = trim_threshold(module, client)
        plan = plan_trim(client, stream, params['max_length'], threshold,
                         approximate=params['trim_mode'] == 'approximate',
                         pretend_group=None if existing or not module.check_mode else new_group(module, client))
        result['kept_unprocessed'] = plan['kept_unprocessed']
        result['backlog'] = plan['backlog']
        if plan['trim']:
            result['trimmed'] = plan['trimmed']
            trimmed = run.execute(trim_command(stream, plan['trim']), lambda: run_trim(client, stream, plan['trim']))
            if trimmed is not None:
                result['trimmed'] = trimmed
                if not trimmed:
                    # Someone else trimmed in between: a trim that removed nothing is no change.
                    result['commands'].pop()
                    run.done.pop()
        warning = backlog_warning(plan, params['max_length'])
        if warning:
            module.warn(warning)
    if any(params[option] for option, dummy in MAINTENANCE):
        # A group created by this run has nothing pending and no consumers yet.
        maintain(module, client, run, existing)
    if module.check_mode:
        result['stream'] = stream_summary(client, stream)
        result['group'] = dict(existing[0], created=False) if existing else dict(
            name=group, created=True, consumers=0, pending=0, last_delivered_id=None, entries_read=None, lag=None)
    else:
        result['group'] = dict(group_facts(client, stream, group)[0], created=created)
        result['stream'] = stream_summary(client, stream)

    result['diff']['before'].update(group_exists=bool(existing), stream_length=length)
    result['diff']['after'].update(group_exists=True, stream_length=length - result['trimmed'])


def maintain(module, client, run, group_existed):
    """Dead-letter, reclaim and delete idle consumers as planned by plan_maintenance, in that order."""
    params, result = module.params, run.result
    stream, group = params['stream'], params['consumer_group']
    reclaim, dead_letter, idle = params['reclaim'], params['dead_letter'], params['delete_idle_consumers']
    plan = dict(dead_letter=[], reclaim=[], delete_consumers=[])
    if group_existed:
        plan = plan_maintenance(client, stream, group, reclaim=reclaim, dead_letter=dead_letter,
                                delete_idle_consumers=idle)

    if dead_letter:
        result['dead_lettered'] = []
        dead_stream = dead_letter['stream']
        for entry in plan['dead_letter']:
            # The copy first, then the acknowledgement: whatever stops the run, the job is kept somewhere.
            # (Not in MULTI: a command failing inside EXEC does not stop the next one.)
            found = client.xrange(stream, min=entry['id'], max=entry['id'])
            entry['missing'] = not found
            record = dead_letter_record(found[0][1] if found else {}, entry, group)
            new_id = run.execute('XADD %s * <fields of %s>' % (dead_stream, entry['id']),
                                 partial(client.xadd, dead_stream, record))
            acknowledged = run.execute('XACK %s %s %s' % (stream, group, entry['id']),
                                       partial(client.xack, stream, group, entry['id']))
            if acknowledged == 0:
                # Its worker acknowledged it in the meantime: the job succeeded, so the copy goes again.
                run.execute('XDEL %s %s' % (dead_stream, new_id), partial(client.xdel, dead_stream, new_id))
                continue
            result['dead_lettered'].append(dict(id=entry['id'], consumer=entry['consumer'],
                                                deliveries=entry['deliveries'], dead_letter_id=new_id,
                                                missing=entry['missing']))

    if reclaim:
        result['reclaimed'] = []
        target, min_idle = reclaim['consumer'], reclaim['min_idle'] * 1000
        for start in range(0, len(plan['reclaim']), SCAN_CHUNK):
            batch = plan['reclaim'][start:start + SCAN_CHUNK]
            ids = [e['id'] for e in batch]
            claimed = run.execute('XCLAIM %s %s %s %d %s' % (stream, group, target, min_idle, ' '.join(ids)),
                                  partial(client.xclaim, stream, group, target, min_idle, ids))
            moved = batch
            if claimed is not None:
                # Missing entries left the pending list; others not claimed were touched by their worker meanwhile.
                got = set(entry_id for entry_id, dummy in claimed)
                moved = [e for e in batch if e['missing'] or e['id'] in got]
                if not moved:
                    result['commands'].pop()
                    run.done.pop()
            result['reclaimed'].extend(
                dict(id=e['id'], from_consumer=e['consumer'], to_consumer=None if e['missing'] else target,
                     deliveries=e['deliveries'] + (0 if e['missing'] else 1), missing=e['missing']) for e in moved)

    if idle:
        result['deleted_consumers'] = []
        names = plan['delete_consumers']
        if names and not module.check_mode:
            # Read again right before deleting: a consumer that read or was given an entry since is kept.
            now = dict((c['name'], c) for c in consumer_facts(client, stream, group))
            names = [n for n in names if n in now and not now[n]['pending'] and now[n]['idle'] >= idle['min_idle'] * 1000]
        for name in names:
            dropped = run.execute('XGROUP DELCONSUMER %s %s %s' % (stream, group, name),
                                  partial(client.xgroup_delconsumer, stream, group, name))
            if dropped:
                module.warn('Consumer %s read %d entries in the instant before its deletion; they left the pending '
                            'list of group %s and will not be delivered again. Find them with XRANGE after the '
                            "group's last acknowledged entries, or add them again." % (name, dropped, group))
            result['deleted_consumers'].append(name)


def ensure_absent(module, client, run):
    params, result = module.params, run.result
    stream, group = params['stream'], params['consumer_group']
    stream_exists = ensure_stream_type(module, client, stream)
    group_exists = stream_exists and bool(group_facts(client, stream, group))
    delete = params['delete_stream'] and stream_exists
    try:
        if group_exists:
            run.execute('XGROUP DESTROY %s %s' % (stream, group), lambda: client.xgroup_destroy(stream, group))
        if delete:
            run.execute('DEL %s' % stream, lambda: client.delete(stream))
    except redis_exceptions.ResponseError as e:
        run.fail(redis_error_message('remove %s' % stream, e))
    result['stream'] = stream_summary(client, stream)
    result['diff']['before'].update(group_exists=group_exists, stream_exists=stream_exists)
    result['diff']['after'].update(group_exists=False, stream_exists=stream_exists and not delete)


def validate(module):
    """Everything that can be checked before Redis is touched."""
    params = module.params
    validate_names(module, [(name, params[name]) for name in
                            ('stream', 'consumer_group', 'credentials_host', 'credentials_namespace')])
    if not START_ID_PATTERN.match(params['start_id']):
        module.fail_json(msg="start_id must be '$', '0' or a stream ID such as 1764557000000-0, got %r."
                             % params['start_id'])
    if params['max_length'] < 0:
        module.fail_json(msg='max_length must be 0 (no trimming) or more, got %d.' % params['max_length'])
    for option, threshold in MAINTENANCE:
        if params[option] is None:
            continue
        if params['state'] == 'absent':
            module.fail_json(msg='%s only applies with state=present.' % option)
        if params[option][threshold] < 1:
            module.fail_json(msg='%s.%s must be 1 or more, got %d.' % (option, threshold, params[option][threshold]))
    validate_names(module, [('reclaim.consumer', (params['reclaim'] or {}).get('consumer')),
                            ('dead_letter.stream', (params['dead_letter'] or {}).get('stream'))])
    if params['dead_letter'] and params['dead_letter']['stream'] == params['stream']:
        module.fail_json(msg='dead_letter.stream must differ from stream (both are %r).' % params['stream'])
    if params['credentials_port'] is not None and not 1 <= params['credentials_port'] <= 65535:
        module.fail_json(msg='credentials_port must be between 1 and 65535, got %d.' % params['credentials_port'])
    if not params['credentials_path']:
        return None
    content, extra = credentials_content(params), params['credentials_extra'] or {}
    clash = sorted(set(content) & set(extra))
    if clash:
        module.fail_json(msg='credentials_extra cannot replace the keys %s.' % ', '.join(clash))
    validate_names(module, [('credentials_extra key', key) for key in extra])
    content.update(extra)
    credentials = CredentialsFile(module, params['credentials_path'], content, params['credentials_secret_keys'] or ())
    for key, value in extra.items():
        # Secret values written to the file must never show in any output either.
        if credentials.is_secret(key) and isinstance(value, str) and value:
            module.no_log_values.add(value)
    credentials.preflight(params['state'])
    return credentials


def connection_url(module):
    """RV url, checked before Redis is touched; None with state=absent."""
    params = module.params
    if params['state'] != 'present':
        return None
    try:
        url = redis_url(params['credentials_host'] or params['login_host'],
                        params['credentials_port'] or params['login_port'],
                        password=params['login_password'], username=params['login_user'], tls=params['tls'],
                        encode_all=True)
    except ValueError as e:
        module.fail_json(msg='Cannot build the connection URL from credentials_host and credentials_port (or '
                             'login_host and login_port): %s. Nothing was changed.' % e)
    if module.no_log and params['login_password'] and params['login_password'] in url:
        module.warn('The password occurs in the host name or in its own percent-encoding, so Ansible masks it in '
                    'the returned url; use a longer password.')
    return url


def manage_credentials(module, credentials, run):
    params, result = module.params, run.result
    result['credentials_path'] = credentials.path
    result['diff']['before']['credentials'] = credentials.shown_before()
    if params['state'] == 'present':
        result['diff']['after']['credentials'] = credentials.shown_after()
        if credentials.needs_write():
            result['credentials_changes'] = credentials.changes()
            run.result['changed'] = True
            if not module.check_mode:
                error = credentials.write()
                if error:
                    run.fail(error)
    else:
        result['diff']['after']['credentials'] = None
        if os.path.lexists(credentials.path):
            run.result['changed'] = True
            if not module.check_mode:
                error = credentials.remove()
                if error:
                    run.fail(error)


def run_module():
    argument_spec = redis_connection_argument_spec()
    argument_spec.update(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        stream=dict(type='str', default='raibid:jobs'),
        consumer_group=dict(type='str', default='raibid-workers', aliases=['group']),
        start_id=dict(type='str', default='$'),
        max_length=dict(type='int', default=10000),
        trim_mode=dict(type='str', choices=['approximate', 'exact'], default='approximate'),
        delete_stream=dict(type='bool', default=False),
        credentials_path=dict(type='path'),
        credentials_host=dict(type='str'),
        credentials_port=dict(type='int'),
        credentials_namespace=dict(type='str', default='raibid-redis'),
        credentials_extra=dict(type='dict'),
        credentials_secret_keys=dict(type='list', elements='str', no_log=False),
        reclaim=dict(type='dict', options=dict(
            min_idle=dict(type='int', required=True),
            consumer=dict(type='str', default='raibid-reclaimer'),
        )),
        dead_letter=dict(type='dict', options=dict(
            max_deliveries=dict(type='int', required=True),
            stream=dict(type='str', default='raibid:jobs:dead'),
        )),
        delete_idle_consumers=dict(type='dict', options=dict(
            min_idle=dict(type='int', required=True),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    credentials = validate(module)
    # The login options first, so that their own messages name a bad login_host or login_port.
    validate_connection_params(module)
    url = connection_url(module)

    client = connect(module)
    run = Run(module)
    if params['sentinel_master_set']:
        run.result['master'] = dict((name, None if params['kubernetes_pod'] and name == 'login_host' else params[name])
                                    for name in ('kubernetes_pod', 'login_host', 'login_port'))
    try:
        run.result['redis_version'] = server_version(module, client)
        if params['state'] == 'present':
            ensure_present(module, client, run)
        else:
            ensure_absent(module, client, run)
    except redis_exceptions.RedisError as e:
        run.fail(redis_error_message('manage stream %s' % params['stream'], e))
    finally:
        client.close()
    run.result['changed'] = bool(run.result['commands'])

    if credentials is not None:
        manage_credentials(module, credentials, run)

    # The URL holds the password: only a task whose output Ansible hides (no_log) gets it.
    if url is not None and module.no_log:
        run.result['url'] = url
    if not module._diff:
        del run.result['diff']
    module.exit_json(**run.result)


def main():
    run_module()


if __name__ == '__main__':
    main()
