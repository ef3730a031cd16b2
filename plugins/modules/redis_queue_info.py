#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: redis_queue_info
short_description: Read facts about the raibid job queue for health checks and troubleshooting
version_added: 0.1.0
description:
  - Reads the Redis server version and role, its persistence settings, and the state of a job stream,
    its length, first and last entry, every consumer group with its consumers, pending entries and lag.
  - Reads memory use against C(maxmemory) and warns when it passes 80%, since at C(maxmemory) a queue with the
    C(noeviction) policy refuses new jobs.
  - Changes nothing. A missing stream is a fact (RV(stream.exists=false)), not an error.
author:
  - raibid maintainers (@raibid)
extends_documentation_fragment:
  - raibid.queue._redis
  - raibid.queue._attributes.info_module
options:
  stream:
    description:
      - Name of the stream key to describe.
    type: str
    default: 'raibid:jobs'
notes:
  - Persistence settings are read with C(CONFIG GET); where that command is disabled or denied by an ACL, they
    are returned as null with a warning.
seealso:
  - module: raibid.queue.redis_queue
'''

EXAMPLES = r'''
- name: Read the queue's state
  raibid.queue.redis_queue_info:
    login_host: 127.0.0.1
    login_port: 16379
    login_password: "{{ redis_password }}"
  register: queue

- name: Fail when workers fall behind
  ansible.builtin.assert:
    that:
      - queue.stream.exists
      - (queue.stream.groups | selectattr('name', 'equalto', 'raibid-workers') | first).lag < 1000
      - queue.persistence.appendonly == 'yes'
      - queue.memory.used_ratio is none or queue.memory.used_ratio < 0.8
'''

RETURN = r'''
server:
  description: The Redis server.
  returned: success
  type: dict
  contains:
    version:
      description: Redis version.
      type: str
      sample: 7.0.15
    role:
      description: Replication role, V(master) or V(slave).
      type: str
      sample: master
    mode:
      description: V(standalone), V(sentinel) or V(cluster).
      type: str
      sample: standalone
persistence:
  description: Persistence and eviction settings; each value is null where C(CONFIG GET) is not allowed.
  returned: success
  type: dict
  contains:
    appendonly:
      description: Whether the append-only file is on (V(yes) or V(no)).
      type: str
      sample: 'yes'
    appendfsync:
      description: AOF fsync policy.
      type: str
      sample: everysec
    maxmemory_policy:
      description: Eviction policy; a queue needs V(noeviction).
      type: str
      sample: noeviction
memory:
  description: Memory use, from C(INFO memory).
  returned: success
  type: dict
  contains:
    used_memory:
      description: Bytes Redis has allocated.
      type: int
      sample: 1048576
    maxmemory:
      description: The C(maxmemory) limit in bytes; V(0) means no limit, and Redis then grows until the container
        or the machine runs out of memory.
      type: int
      sample: 402653184
    used_ratio:
      description: RV(memory.used_memory) divided by RV(memory.maxmemory), null without a limit. Above 0.8 the
        module warns.
      type: float
      sample: 0.0026
    maxmemory_policy:
      description: Eviction policy; a queue needs V(noeviction).
      type: str
      sample: noeviction
stream:
  description: The stream.
  returned: success
  type: dict
  contains:
    name:
      description: Key name.
      type: str
      sample: 'raibid:jobs'
    exists:
      description: Whether the stream exists.
      type: bool
      sample: true
    length:
      description: Number of entries (0 when missing).
      type: int
      sample: 42
    first_entry_id:
      description: ID of the oldest entry, null when empty or missing.
      type: str
      sample: 1764557000000-0
    last_entry_id:
      description: ID of the newest entry, null when empty or missing.
      type: str
      sample: 1764557999000-3
    groups:
      description: Every consumer group of the stream.
      type: list
      elements: dict
      contains:
        name:
          description: Group name.
          type: str
          sample: raibid-workers
        consumers:
          description: Each consumer of the group.
          type: list
          elements: dict
          contains:
            name:
              description: Consumer name.
              type: str
              sample: agent-1
            pending:
              description: Entries delivered to this consumer and not acknowledged.
              type: int
              sample: 1
            idle:
              description: Milliseconds since the consumer last read.
              type: int
              sample: 1200
        pending:
          description: Entries delivered and not acknowledged, all consumers together.
          type: int
          sample: 1
        last_delivered_id:
          description: ID of the last entry delivered.
          type: str
          sample: 1764557999000-3
        entries_read:
          description: Entries the group has read (Redis 7 or newer, else null).
          type: int
          sample: 42
        lag:
          description: Entries not delivered yet (Redis 7 or newer; null when Redis cannot tell).
          type: int
          sample: 0
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.raibid.queue.plugins.module_utils._queue import (
    MEMORY_WARN_RATIO,
    consumer_facts,
    memory_facts,
)
from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    connect,
    ensure_stream_type,
    group_facts,
    redis_connection_argument_spec,
    redis_error_message,
    redis_exceptions,
    stream_summary,
    validate_names,
)

PERSISTENCE_SETTINGS = ('appendonly', 'appendfsync', 'maxmemory-policy')


def persistence_facts(module, client):
    facts = dict((name.replace('-', '_'), None) for name in PERSISTENCE_SETTINGS)
    try:
        for name in PERSISTENCE_SETTINGS:
            facts[name.replace('-', '_')] = client.config_get(name).get(name)
    except redis_exceptions.ResponseError as e:
        # CONFIG is often renamed, disabled or denied by an ACL on managed Redis services.
        module.warn('Persistence settings are unknown: CONFIG GET was refused (%s).' % e)
    return facts


def run_module():
    argument_spec = redis_connection_argument_spec()
    argument_spec.update(stream=dict(type='str', default='raibid:jobs'))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    stream = module.params['stream']
    validate_names(module, [('stream', stream)])

    client = connect(module)
    try:
        stream_exists = ensure_stream_type(module, client, stream)
        info = client.info('server')
        result = dict(
            changed=False,
            server=dict(version=info.get('redis_version'), role=client.info('replication').get('role'),
                        mode=info.get('redis_mode')),
            persistence=persistence_facts(module, client),
            memory=memory_facts(client),
            stream=stream_summary(client, stream),
        )
        memory = result['memory']
        if memory['used_ratio'] is not None and memory['used_ratio'] > MEMORY_WARN_RATIO:
            module.warn('Redis uses %d%% of its maxmemory (%d of %d bytes); at 100%% it refuses new jobs. Let workers '
                        'catch up and trim the stream, or raise maxmemory.'
                        % (memory['used_ratio'] * 100, memory['used_memory'], memory['maxmemory']))
        groups = group_facts(client, stream) if stream_exists else []
        for group in groups:
            group['consumers'] = consumer_facts(client, stream, group['name'])
        result['stream']['groups'] = groups
    except redis_exceptions.RedisError as e:
        module.fail_json(msg=redis_error_message('describe stream %s' % stream, e))
    finally:
        client.close()
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
