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
  - Keeps the stream near O(max_length) entries with C(XTRIM), and writes the credentials file that raibid
    workers and tools read.
  - With O(state=absent), removes the consumer group, the credentials file, and the stream only when
    O(delete_stream=true).
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
    description: Shows the consumer group, stream length and credentials file before and after, password masked.
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
      - Entries to keep at most. A longer stream is trimmed, oldest entries first. V(0) never trims.
      - With O(trim_mode=approximate), Redis removes whole internal nodes only, so the stream stays up to
        C(stream-node-max-entries) (100 by default) entries above O(max_length); the module trims only when
        the stream is longer than that, so that check mode predicts the change exactly.
    type: int
    default: 10000
  trim_mode:
    description:
      - V(approximate) trims with C(XTRIM MAXLEN ~), which is much cheaper; V(exact) with C(XTRIM MAXLEN =).
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
    type: dict
notes:
  - The consumer group is created with C(MKSTREAM), so the stream appears empty at first.
  - The credentials file holds the password; the module never returns nor logs it, and the diff masks it.
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
    - Entries removed by trimming. In check mode with O(trim_mode=approximate), the most that would be removed.
  returned: success
  type: int
  sample: 0
credentials_path:
  description: Absolute path of the credentials file, when O(credentials_path) is set.
  returned: when O(credentials_path) is set
  type: str
  sample: /home/ci/.raibid/redis-credentials.json
commands:
  description: Redis commands that changed something (in check mode, that would have), without secrets.
  returned: success
  type: list
  elements: str
  sample: ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']
'''

import json
import os
import stat
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    connect,
    ensure_stream_type,
    group_facts,
    redis_connection_argument_spec,
    redis_error_message,
    redis_exceptions,
    server_version,
    stream_summary,
)

CREDENTIALS_MODE = 0o600
MASK = '********'
# Redis' default stream-node-max-entries, used when CONFIG GET is not allowed.
DEFAULT_NODE_MAX_ENTRIES = 100


class CredentialsFile(object):
    """The credentials file: what it holds now, what it should hold, and the atomic write."""

    def __init__(self, module, path, content):
        self.module = module
        self.path = os.path.abspath(path)
        self.content = content

    def current(self):
        """(content, mode) of the file on disk, (None, None) when missing, content None when not JSON."""
        try:
            with open(self.path) as f:
                mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
                try:
                    return json.load(f), mode
                except ValueError:
                    return None, mode
        except FileNotFoundError:
            return None, None
        except (IsADirectoryError, NotADirectoryError, PermissionError) as e:
            self.module.fail_json(msg='Cannot read the credentials file %s: %s' % (self.path, to_native(e)))

    def exists(self):
        return os.path.lexists(self.path)

    def needs_write(self):
        content, mode = self.current()
        return content != self.content or mode != CREDENTIALS_MODE

    def check_writable(self):
        """Fail before anything changes when the file cannot be created where it was asked for."""
        if os.path.isdir(self.path):
            self.module.fail_json(msg='credentials_path %s is a directory.' % self.path)
        parent = os.path.dirname(self.path)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            self.module.fail_json(msg='Cannot write the credentials file %s: %s is not a directory.'
                                      % (self.path, parent))
        if not os.access(parent, os.W_OK | os.X_OK):
            self.module.fail_json(msg='Cannot write the credentials file %s: directory %s is not writable.'
                                      % (self.path, parent))

    def write(self):
        directory = os.path.dirname(self.path)
        tmp = None
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            # mkstemp creates the file 0600, so the password is never readable by others, not even briefly.
            fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(self.path), suffix='.tmp')
            with os.fdopen(fd, 'w') as f:
                json.dump(self.content, f, indent=2, sort_keys=True)
                f.write('\n')
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as e:
            self.module.fail_json(msg='Cannot write the credentials file %s: %s' % (self.path, to_native(e)),
                                  exception=traceback.format_exc())
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def remove(self):
        try:
            os.unlink(self.path)
        except OSError as e:
            self.module.fail_json(msg='Cannot remove the credentials file %s: %s' % (self.path, to_native(e)))

    @staticmethod
    def masked(content):
        if content is None:
            return None
        shown = dict(content)
        if shown.get('password') is not None:
            shown['password'] = MASK
        return shown


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


def trim_threshold(module, client):
    """Length above which trimming removes entries for sure (see the max_length documentation).

    Approximate XTRIM only drops whole radix-tree nodes, each holding at most stream-node-max-entries
    entries; beyond max_length + that number at least one node must go, so the change is predictable.
    """
    params = module.params
    if params['trim_mode'] == 'exact':
        return params['max_length']
    try:
        node_max = int(client.config_get('stream-node-max-entries').get('stream-node-max-entries', 0))
    except redis_exceptions.ResponseError:
        node_max = DEFAULT_NODE_MAX_ENTRIES
    return params['max_length'] + node_max


def ensure_present(module, client, result):
    params = module.params
    stream, group = params['stream'], params['consumer_group']
    stream_exists = ensure_stream_type(module, client, stream)
    existing = group_facts(client, stream, group) if stream_exists else []
    length = client.xlen(stream) if stream_exists else 0
    must_trim = params['max_length'] > 0 and length > trim_threshold(module, client)

    if not existing:
        result['commands'].append('XGROUP CREATE %s %s %s MKSTREAM' % (stream, group, params['start_id']))
    if must_trim:
        result['commands'].append('XTRIM %s MAXLEN %s %d' % (
            stream, '~' if params['trim_mode'] == 'approximate' else '=', params['max_length']))
        result['trimmed'] = length - params['max_length']

    if not module.check_mode:
        created = False
        if not existing:
            try:
                client.xgroup_create(stream, group, id=params['start_id'], mkstream=True)
                created = True
            except redis_exceptions.ResponseError as e:
                # Someone else created it between our check and now: that is the state we want.
                if 'BUSYGROUP' not in str(e):
                    module.fail_json(msg=redis_error_message('create consumer group %s on %s' % (group, stream), e))
        if must_trim:
            result['trimmed'] = client.xtrim(stream, maxlen=params['max_length'],
                                             approximate=params['trim_mode'] == 'approximate')
        groups = group_facts(client, stream, group)
        result['group'] = dict(groups[0], created=created)
        result['stream'] = stream_summary(client, stream)
    else:
        result['stream'] = stream_summary(client, stream)
        if existing:
            result['group'] = dict(existing[0], created=False)
        else:
            result['group'] = dict(name=group, created=True, consumers=0, pending=0, last_delivered_id=None,
                                   entries_read=None, lag=None)

    result['diff']['before'].update(group_exists=bool(existing), stream_length=length)
    result['diff']['after'].update(group_exists=True, stream_length=length - result['trimmed'])
    return bool(result['commands'])


def ensure_absent(module, client, result):
    params = module.params
    stream, group = params['stream'], params['consumer_group']
    stream_exists = ensure_stream_type(module, client, stream)
    group_exists = stream_exists and bool(group_facts(client, stream, group))
    if group_exists:
        result['commands'].append('XGROUP DESTROY %s %s' % (stream, group))
    delete = params['delete_stream'] and stream_exists
    if delete:
        result['commands'].append('DEL %s' % stream)

    if not module.check_mode:
        try:
            if group_exists:
                client.xgroup_destroy(stream, group)
            if delete:
                client.delete(stream)
        except redis_exceptions.ResponseError as e:
            module.fail_json(msg=redis_error_message('remove %s' % stream, e))
    result['stream'] = stream_summary(client, stream)
    result['diff']['before'].update(group_exists=group_exists, stream_exists=stream_exists)
    result['diff']['after'].update(group_exists=False, stream_exists=stream_exists and not delete)
    return bool(result['commands'])


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
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    for name in ('stream', 'consumer_group', 'start_id'):
        if not params[name]:
            module.fail_json(msg='%s must not be empty.' % name)
    if params['max_length'] < 0:
        module.fail_json(msg='max_length must be 0 (no trimming) or more, got %d.' % params['max_length'])
    if params['credentials_port'] is not None and not 1 <= params['credentials_port'] <= 65535:
        module.fail_json(msg='credentials_port must be between 1 and 65535, got %d.' % params['credentials_port'])

    credentials = None
    if params['credentials_path']:
        content, extra = credentials_content(params), params['credentials_extra'] or {}
        clash = sorted(set(content) & set(extra))
        if clash:
            module.fail_json(msg='credentials_extra cannot replace the keys %s.' % ', '.join(clash))
        content.update(extra)
        credentials = CredentialsFile(module, params['credentials_path'], content)
        if params['state'] == 'present':
            credentials.check_writable()

    client = connect(module)
    result = dict(changed=False, trimmed=0, commands=[], diff=dict(before={}, after={}))
    try:
        result['redis_version'] = server_version(client)
        if params['state'] == 'present':
            changed = ensure_present(module, client, result)
        else:
            changed = ensure_absent(module, client, result)
    except redis_exceptions.RedisError as e:
        module.fail_json(msg=redis_error_message('manage stream %s' % params['stream'], e))
    finally:
        client.close()

    if credentials is not None:
        result['credentials_path'] = credentials.path
        before, dummy = credentials.current()
        result['diff']['before']['credentials'] = credentials.masked(before)
        if params['state'] == 'present':
            result['diff']['after']['credentials'] = credentials.masked(credentials.content)
            if credentials.needs_write():
                changed = True
                if not module.check_mode:
                    credentials.write()
        else:
            result['diff']['after']['credentials'] = None
            if credentials.exists():
                changed = True
                if not module.check_mode:
                    credentials.remove()

    result['changed'] = changed
    if not module._diff:
        del result['diff']
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
