#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: redis_job
short_description: Enqueue jobs on the raibid job queue
version_added: 0.1.0
description:
  - Adds jobs to a Redis stream the way raibid producers do,
    C(XADD <stream> MAXLEN ~ <max_length> * job_id <id> job_type <type> payload <json>).
  - Several jobs are sent in one pipeline, in order.
  - Every run adds entries. This module is not idempotent, like a message sent twice.
author:
  - raibid maintainers (@raibid)
extends_documentation_fragment:
  - raibid.queue._redis
attributes:
  check_mode:
    support: full
    description: Validates the jobs and the stream, reports a change, and writes nothing.
  diff_mode:
    support: none
    description: There is nothing to compare; the new entries are returned.
  idempotent:
    support: none
    description: Each run enqueues the jobs again.
options:
  stream:
    description:
      - Name of the stream key. It is created by the first job when missing.
    type: str
    default: 'raibid:jobs'
  max_length:
    description:
      - Approximate cap passed with each C(XADD) as C(MAXLEN ~). V(0) adds without a cap.
    type: int
    default: 10000
  job_type:
    description:
      - Type of the one job to enqueue. Mutually exclusive with O(jobs).
    type: str
  job_id:
    description:
      - ID of the one job to enqueue; a random UUID when not set.
    type: str
  payload:
    description:
      - Data of the one job, any type; it is stored serialised as JSON.
    type: raw
    default: {}
  jobs:
    description:
      - Several jobs to enqueue, in order. Mutually exclusive with O(job_type).
    type: list
    elements: dict
    suboptions:
      job_type:
        description: Type of the job.
        type: str
        required: true
      job_id:
        description: ID of the job; a random UUID when not set.
        type: str
      payload:
        description: Data of the job, any type; it is stored serialised as JSON.
        type: raw
        default: {}
seealso:
  - module: raibid.queue.redis_queue
'''

EXAMPLES = r'''
- name: Enqueue one build
  raibid.queue.redis_job:
    login_password: "{{ redis_password }}"
    job_type: build
    payload:
      repository: raibid/raibid-ci
      ref: main
  register: job

- name: Enqueue a batch in one round trip
  raibid.queue.redis_job:
    login_password: "{{ redis_password }}"
    jobs:
      - job_id: test-1
        job_type: test
        payload: {suite: unit}
      - job_id: test-2
        job_type: test
        payload: {suite: integration}
'''

RETURN = r'''
entry_ids:
  description: Stream entry IDs assigned by Redis, in the order of the jobs; empty in check mode.
  returned: success
  type: list
  elements: str
  sample: ['1764557999000-0']
job_ids:
  description: The job IDs enqueued, including generated ones, in the order of the jobs.
  returned: success
  type: list
  elements: str
  sample: ['8c0f5d1e-6a3b-4f7e-9a59-0c1c4f4f3b7a']
stream:
  description: Name of the stream the jobs went to.
  returned: success
  type: str
  sample: 'raibid:jobs'
'''

import json
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    connect,
    ensure_stream_type,
    redis_connection_argument_spec,
    redis_error_message,
    redis_exceptions,
)


def job_fields(module, job):
    """The stream entry fields of one job, in the order producers write them."""
    if not job.get('job_type'):
        module.fail_json(msg='Every job needs a non-empty job_type.')
    try:
        payload = json.dumps(job.get('payload', {}), sort_keys=True, separators=(',', ':'))
    except (TypeError, ValueError) as e:
        module.fail_json(msg='The payload of job %s cannot be serialised as JSON: %s' % (job.get('job_id'), e))
    return dict(job_id=job.get('job_id') or str(uuid.uuid4()), job_type=job['job_type'], payload=payload)


def run_module():
    argument_spec = redis_connection_argument_spec()
    argument_spec.update(
        stream=dict(type='str', default='raibid:jobs'),
        max_length=dict(type='int', default=10000),
        job_type=dict(type='str'),
        job_id=dict(type='str'),
        payload=dict(type='raw', default={}),
        jobs=dict(type='list', elements='dict', options=dict(
            job_type=dict(type='str', required=True),
            job_id=dict(type='str'),
            payload=dict(type='raw', default={}),
        )),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('jobs', 'job_type'), ('jobs', 'job_id')],
        required_one_of=[('jobs', 'job_type')],
        supports_check_mode=True,
    )
    params = module.params
    stream = params['stream']
    if not stream:
        module.fail_json(msg='stream must not be empty.')
    if params['max_length'] < 0:
        module.fail_json(msg='max_length must be 0 (no cap) or more, got %d.' % params['max_length'])
    if params['jobs'] is not None:
        if not params['jobs']:
            module.fail_json(msg='jobs must not be an empty list.')
        jobs = [job_fields(module, job) for job in params['jobs']]
    else:
        jobs = [job_fields(module, params)]

    client = connect(module)
    result = dict(changed=True, stream=stream, job_ids=[job['job_id'] for job in jobs], entry_ids=[])
    try:
        ensure_stream_type(module, client, stream)
        if not module.check_mode:
            cap = dict(maxlen=params['max_length'], approximate=True) if params['max_length'] else {}
            pipe = client.pipeline(transaction=False)
            for job in jobs:
                pipe.xadd(stream, job, **cap)
            result['entry_ids'] = pipe.execute()
    except redis_exceptions.RedisError as e:
        module.fail_json(msg=redis_error_message('add jobs to %s' % stream, e))
    finally:
        client.close()
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
