# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: redis_url
short_description: The connection URL of a Redis server, with the password percent-encoded
version_added: 0.1.0
description:
  - Builds C(redis://:<password>@<host>:<port>), or C(rediss://) with TLS, the URL that redis-py's
    C(redis.Redis.from_url()) and most Redis clients accept. An IPv6 address is put in brackets.
  - The password and user name are percent-encoded where they need to be (every character but letters, digits
    and C(-._~)), so that C(@), C(:), C(/), C(%), C(#), C(?) and non-ASCII characters work with clients that decode them (redis-py's
    C(from_url), redis-cli) while an alphanumeric password, such as the one the role generates, stands as it is
    for clients that do not.
  - The same code builds the fact C(raibid_redis_url) and the C(url) key of the consumer Secrets of the role
    M(raibid.queue.redis), and the RV(raibid.queue.redis_queue#module:url) of M(raibid.queue.redis_queue) (which
    encodes every byte of the password, see there).
  - The URL holds the password; tasks that show or register it need C(no_log).
author:
  - raibid maintainers (@raibid)
positional: port, password
options:
  _input:
    description: Host name or IP address.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    required: true
  password:
    description: Password; empty or null for a server without one.
    type: str
  username:
    description: ACL user name; empty or null for the C(default) user.
    type: str
  tls:
    description: Whether the server speaks TLS (C(rediss://)).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: The URL workers use inside the cluster
  ansible.builtin.set_fact:
    redis_url: "{{ 'raibid-redis-master.raibid-redis.svc.cluster.local' | raibid.queue.redis_url(6379, redis_password) }}"
  no_log: true
  # redis://:s3cret@raibid-redis-master.raibid-redis.svc.cluster.local:6379 (p@ss gives p%40ss)

- name: With TLS
  ansible.builtin.set_fact:
    redis_url: "{{ 'raibid-redis-master.raibid-redis.svc.cluster.local' | raibid.queue.redis_url(6379, redis_password, tls=true) }}"
  no_log: true
'''

RETURN = r'''
_value:
  description: The URL.
  type: str
  sample: redis://:s3cret@raibid-redis-master.raibid-redis.svc.cluster.local:6379
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.raibid.queue.plugins.module_utils._url import redis_url as build_url


def redis_url(host, port, password=None, username=None, tls=False):
    try:
        return build_url(to_text(host), port, password=to_text(password) if password else None,
                         username=to_text(username) if username else None, tls=boolean(tls, strict=True))
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError('redis_url: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'redis_url': redis_url}
