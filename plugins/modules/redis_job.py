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

from ansible_collections.raibid.queue.plugins.module_utils._queue import (
    backlog_warning,
    node_max_entries,
    plan_trim,
    run_trim,
)
from ansible_collections.raibid.queue.plugins.module_utils._redis import (
    connect,
    ensure_stream_type,
    name_problem,
    redis_connection_argument_spec,
    redis_error_message,
    redis_exceptions,
    validate_names,
)

JOB_KEYS = frozenset(('job_type', 'job_id', 'payload'))
# Jobs per pipeline round trip: big enough to be fast, small enough that a refusal stops the batch soon.
CHUNK = 1000
_encode = json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode


def job_fields(module, job, where):
    """The stream entry fields of one job, in the order producers write them."""
    job_type, job_id = job.get('job_type'), job.get('job_id')
    if not isinstance(job_type, str):
        module.fail_json(msg='%s needs a job_type (a string).' % where)
    problem = name_problem(job_type)
    if problem:
        module.fail_json(msg='The job_type of %s %s.' % (where, problem))
    if job_id is None or job_id == '':
        job_id = str(uuid.uuid4())
    elif not isinstance(job_id, str):
        module.fail_json(msg='The job_id of %s must be a string.' % where)
    else:
        problem = name_problem(job_id)
        if problem:
            module.fail_json(msg='The job_id of %s %s.' % (where, problem))
    try:
        payload = _encode(job.get('payload', {}))
    except (TypeError, ValueError) as e:
        module.fail_json(msg='The payload of %s cannot be serialised as JSON: %s' % (where, e))
    return dict(job_id=job_id, job_type=job_type, payload=payload)


def batch_fields(module, jobs):
    """Check every job of the list and build its fields: one plain loop, no per-item argument spec."""
    fields = []
    for index, job in enumerate(jobs):
        where = 'jobs[%d]' % index
        if not isinstance(job, dict):
            module.fail_json(msg='%s must be a dictionary with job_type, job_id and payload.' % where)
        unknown = set(job) - JOB_KEYS
        if unknown:
            module.fail_json(msg='%s has unknown keys %s; a job has job_type, job_id and payload.'
                                 % (where, ', '.join(sorted(unknown))))
        fields.append(job_fields(module, job, where))
    return fields


def write_batch(client, stream, jobs):
    """XADD every job, CHUNK at a time; stops after the first chunk with a refusal.

    Returns (entry IDs aligned with jobs, None where not written; first error or None; indexes whose
    fate is unknown because the connection broke during their chunk).
    """
    entry_ids = [None] * len(jobs)
    for start in range(0, len(jobs), CHUNK):
        chunk = jobs[start:start + CHUNK]
        pipe = client.pipeline(transaction=False)
        for job in chunk:
            pipe.xadd(stream, job)
        try:
            answers = pipe.execute(raise_on_error=False)
        except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError) as e:
            return entry_ids, e, list(range(start, start + len(chunk)))
        error = None
        for offset, answer in enumerate(answers):
            if isinstance(answer, Exception):
                error = error or (start + offset, answer)
            else:
                entry_ids[start + offset] = answer
        if error:
            return entry_ids, error, []
    return entry_ids, None, []


def fail_partial(module, result, error, uncertain):
    """The batch stopped part-way: say exactly which jobs are in the stream, so a retry can skip them."""
    entry_ids = result['entry_ids']
    written = sum(1 for entry_id in entry_ids if entry_id is not None)
    unknown = set(uncertain)
    result['not_written'] = [i for i, entry_id in enumerate(entry_ids) if entry_id is None and i not in unknown]
    result['uncertain'] = uncertain
    result['written'] = written
    result['changed'] = written > 0
    total = len(entry_ids)
    if uncertain:
        msg = ('The connection to Redis broke while writing jobs %d to %d of %d (%s); those may or may not be in the '
               'stream: look for their job_ids before sending them again. %d jobs were written (entry_ids), '
               'not_written lists the indexes of those that surely were not.'
               % (uncertain[0], uncertain[-1], total, error, written))
    else:
        index, refusal = error
        msg = ('%s (job %d of %d, jobs[%d]). %d jobs were written: entry_ids holds their IDs, null for the others; '
               'not_written lists the indexes to send again, and only those.'
               % (redis_error_message('add a job to %s' % module.params['stream'], refusal), index + 1, total,
                  index, written))
    module.fail_json(msg=msg, **result)


def trim_after_batch(module, client, result, threshold):
    """Trim processed history safely once the jobs are in; a failure here is a warning, not an error, since
    failing would invite a retry that duplicates the jobs."""
    stream, max_length = module.params['stream'], module.params['max_length']
    try:
        plan = plan_trim(client, stream, max_length, threshold, approximate=True)
        result.update(kept_unprocessed=plan['kept_unprocessed'], backlog=plan['backlog'])
        if plan['trim']:
            result['trimmed'] = run_trim(client, stream, plan['trim'])
    except redis_exceptions.RedisError as e:
        module.warn('The jobs were added, but trimming the stream failed. %s' % redis_error_message('trim %s' % stream, e))
        return
    warning = backlog_warning(plan, max_length)
    if warning:
        module.warn(warning)


def run_module():
    argument_spec = redis_connection_argument_spec()
    argument_spec.update(
        stream=dict(type='str', default='raibid:jobs'),
        max_length=dict(type='int', default=10000),
        max_backlog=dict(type='int', default=0),
        job_type=dict(type='str'),
        job_id=dict(type='str'),
        payload=dict(type='raw', default={}),
        jobs=dict(type='list', elements='dict'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('jobs', 'job_type'), ('jobs', 'job_id')],
        required_one_of=[('jobs', 'job_type')],
        supports_check_mode=True,
    )
    params = module.params
    stream = params['stream']
    validate_names(module, [('stream', stream)])
    for name in ('max_length', 'max_backlog'):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 (off) or more, got %d.' % (name, params[name]))
    if params['jobs'] is not None:
        if not params['jobs']:
            module.fail_json(msg='jobs must not be an empty list.')
        jobs = batch_fields(module, params['jobs'])
    else:
        jobs = [job_fields(module, params, 'the job')]

    client = connect(module)
    result = dict(changed=True, stream=stream, job_ids=[job['job_id'] for job in jobs], entry_ids=[], trimmed=0,
                  kept_unprocessed=0)
    try:
        ensure_stream_type(module, client, stream)
        threshold = params['max_length'] + node_max_entries(client)[0] if params['max_length'] else 0
        if module.check_mode or params['max_backlog']:
            plan = plan_trim(client, stream, params['max_length'], threshold, approximate=True, adding=len(jobs))
            if params['max_backlog'] and plan['backlog'] > params['max_backlog']:
                module.fail_json(msg='queue full: %d jobs waiting, limit %d (max_backlog); nothing of this batch of %d '
                                     'was written.' % (plan['backlog'] - len(jobs), params['max_backlog'], len(jobs)),
                                 changed=False, backlog=plan['backlog'] - len(jobs))
            if module.check_mode:
                result.update(trimmed=plan['trimmed'], kept_unprocessed=plan['kept_unprocessed'],
                              backlog=plan['backlog'])
                module.exit_json(**result)
        result['entry_ids'], error, uncertain = write_batch(client, stream, jobs)
        if error:
            fail_partial(module, result, error, uncertain)
        if params['max_length']:
            trim_after_batch(module, client, result, threshold)
    except redis_exceptions.RedisError as e:
        written = any(result['entry_ids'])
        module.fail_json(msg=redis_error_message('add jobs to %s' % stream, e), **dict(result, changed=written))
    finally:
        client.close()
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
