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
  - Adds jobs to a Redis stream the way raibid producers do, C(XADD <stream> * job_id <id> job_type <type> payload <json>).
  - Several jobs are sent in pipelines of 1000, in order. The whole list is checked before anything is sent.
  - Never drops a job to make room. After the batch, processed history beyond O(max_length) is trimmed the way
    M(raibid.queue.redis_queue) trims it, never a job some consumer group has not processed.
  - With O(max_backlog), refuses the whole batch when the queue is full.
  - Every run adds entries. This module is not idempotent, like a message sent twice.
author:
  - raibid maintainers (@raibid)
extends_documentation_fragment:
  - raibid.queue._redis
attributes:
  check_mode:
    support: full
    description: Validates the jobs and the stream, checks O(max_backlog), predicts the trim, reports a change,
      and writes nothing.
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
      - Processed entries to keep at most; after the batch, older ones are trimmed. V(0) never trims.
      - An entry is removed only when every consumer group has had it delivered and none holds it pending
        (C(XTRIM MINID)); a stream without groups is trimmed by length (C(XTRIM MAXLEN ~)). Trimming starts once
        the stream is longer than O(max_length) plus C(stream-node-max-entries) (100 when C(CONFIG GET) is
        refused).
      - Jobs are never dropped to make room; see O(max_backlog) to refuse new ones instead.
    type: int
    default: 10000
  max_backlog:
    description:
      - "Refuse the batch when the jobs waiting plus the batch would exceed this number, with the error
        C(queue full: N jobs waiting, limit M), writing nothing of the batch."
      - V(0) (the default) sets no limit.
      - Jobs waiting are those of the slowest consumer group not delivered yet or not acknowledged (lag plus
        pending), or every entry of a stream without groups.
      - The check runs before the batch; producers running at the same moment can together pass the limit by
        their batches.
      - Redis' own C(maxmemory) stays the hard limit; its refusals are reported as errors too.
    type: int
    default: 0
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
      - Each is a dictionary with C(job_type) (required, a string), C(job_id) (a string; a random UUID when not
        set) and C(payload) (any data, stored serialised as JSON; V({}) when not set). Other keys are an error.
      - The list is checked by the module itself in one pass, which keeps batches of 100000 jobs fast.
    type: list
    elements: dict
  jobs_file:
    description:
      - A JSON file on the host that runs the module holding the job list, in the format of O(jobs). Mutually
        exclusive with O(jobs) and O(job_type).
      - For big batches, this skips Ansible's handling of a long argument (copying and echoing it), which takes
        longer than sending the jobs.
    type: path
notes:
  - Job types and IDs, like the stream name, must not be empty, only whitespace, or contain control characters.
  - B(Retrying a refused batch.) When Redis refuses a job part-way (out of memory, read-only replica, a
    permission), the task fails with C(changed=true) if any job was written, RV(entry_ids) with the ID of every
    written job and null for the others, and RV(not_written) with the indexes of the jobs to send again. Retry
    with only those, for example with the expression C(failed.not_written | map('extract', my_jobs\) | list) as
    O(jobs) (see EXAMPLES), and no job is enqueued twice. If the connection broke during a pipeline, RV(uncertain) lists the jobs whose fate is
    unknown; look for their C(job_id) in the stream before sending them again.
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

- name: Enqueue a batch in one round trip, refused as a whole when 50000 jobs already wait
  raibid.queue.redis_job:
    login_password: "{{ redis_password }}"
    max_backlog: 50000
    jobs:
      - job_id: test-1
        job_type: test
        payload: {suite: unit}
      - job_id: test-2
        job_type: test
        payload: {suite: integration}

- name: Enqueue a big batch; should Redis refuse part of it, send only the jobs it did not take
  block:
    - name: Enqueue the batch
      raibid.queue.redis_job:
        login_password: "{{ redis_password }}"
        jobs: "{{ my_jobs }}"
      register: batch
  rescue:
    - name: Send again the jobs that were not written (after freeing memory)
      raibid.queue.redis_job:
        login_password: "{{ redis_password }}"
        jobs: "{{ batch.not_written | map('extract', my_jobs) | list }}"
      when: batch.not_written is defined and not batch.uncertain
'''

RETURN = r'''
entry_ids:
  description:
    - Stream entry IDs assigned by Redis, in the order of the jobs; empty in check mode.
    - When the batch failed part-way, one item per job, null for the jobs that were not written.
  returned: success, and failure after the batch started
  type: list
  elements: str
  sample: ['1764557999000-0']
job_ids:
  description: The job IDs enqueued, including generated ones, in the order of the jobs.
  returned: success, and failure after the batch started
  type: list
  elements: str
  sample: ['8c0f5d1e-6a3b-4f7e-9a59-0c1c4f4f3b7a']
stream:
  description: Name of the stream the jobs went to.
  returned: success
  type: str
  sample: 'raibid:jobs'
trimmed:
  description: Processed entries trimmed after the batch (in check mode, that would be).
  returned: success
  type: int
  sample: 0
kept_unprocessed:
  description: Entries above O(max_length) kept because a consumer group has not processed them yet.
  returned: success
  type: int
  sample: 0
backlog:
  description:
    - Jobs waiting in the slowest consumer group (lag plus pending), or the stream length without groups, after
      the batch (in check mode, as it would be). On a V(queue full) failure, before the batch.
  returned: when O(max_length) or O(max_backlog) is set, or in check mode
  type: int
  sample: 12
written:
  description: Number of jobs written before the batch failed.
  returned: failure after the batch started
  type: int
  sample: 7474
not_written:
  description: Indexes (from 0) in the job list of the jobs that were surely not written; send only these again.
  returned: failure after the batch started
  type: list
  elements: int
  sample: [7474, 7475]
uncertain:
  description:
    - Indexes of jobs whose fate is unknown because the connection broke while their pipeline ran.
  returned: failure after the batch started
  type: list
  elements: int
  sample: []
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


def read_jobs_file(module, path):
    try:
        with open(path) as f:
            jobs = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        module.fail_json(msg='Cannot read jobs_file %s: %s' % (path, e))
    except ValueError as e:
        module.fail_json(msg='jobs_file %s does not hold JSON: %s' % (path, e))
    if not isinstance(jobs, list):
        module.fail_json(msg='jobs_file %s must hold a JSON list of jobs, not %s.' % (path, type(jobs).__name__))
    return jobs


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
    module.fail_json(msg=msg, invocation=invocation(module), **result)


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


def invocation(module):
    """The module arguments Ansible echoes back, with a long job list summarised: echoing and scrubbing 100000
    jobs cost more than sending them."""
    params = dict(module.params)
    if params['jobs'] is not None and len(params['jobs']) > 10:
        params['jobs'] = '(%d jobs)' % len(params['jobs'])
    return dict(module_args=params)


def exit_batch(module, result):
    module.exit_json(invocation=invocation(module), **result)


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
        jobs_file=dict(type='path'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('jobs', 'jobs_file', 'job_type'), ('jobs', 'jobs_file', 'job_id')],
        required_one_of=[('jobs', 'jobs_file', 'job_type')],
        supports_check_mode=True,
    )
    params = module.params
    stream = params['stream']
    validate_names(module, [('stream', stream)])
    for name in ('max_length', 'max_backlog'):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 (off) or more, got %d.' % (name, params[name]))
    if params['jobs_file']:
        params['jobs'] = read_jobs_file(module, params['jobs_file'])
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
                exit_batch(module, result)
        result['entry_ids'], error, uncertain = write_batch(client, stream, jobs)
        if error:
            fail_partial(module, result, error, uncertain)
        if params['max_length']:
            trim_after_batch(module, client, result, threshold)
    except redis_exceptions.RedisError as e:
        result['changed'] = any(result['entry_ids'])
        module.fail_json(msg=redis_error_message('add jobs to %s' % stream, e), invocation=invocation(module), **result)
    finally:
        client.close()
    exit_batch(module, result)


def main():
    run_module()


if __name__ == '__main__':
    main()
