# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Queue maintenance of raibid.queue.redis_queue (reclaim, dead letter, idle consumers) on a real redis-server.

A group with several consumers: one "dead" that read 10 jobs and went silent, one whose 2 jobs were delivered too
often, one long idle holding nothing, and two live ones (their activity is refreshed before every run). Every
effect is read back with a second client: who holds what (XPENDING), the dead-letter stream, the consumers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import RedisServer

STREAM = 'raibid:jobs'
DEAD = 'raibid:jobs:dead'
GROUP = 'raibid-workers'
IDLE = 10  # seconds: the thresholds of the test, well above the ~3 s an ansible-playbook run takes here
MAINTENANCE = dict(max_length=0, reclaim=dict(min_idle=IDLE), dead_letter=dict(max_deliveries=3),
                   delete_idle_consumers=dict(min_idle=IDLE))


def read(client, consumer, count):
    delivered = client.xreadgroup(GROUP, consumer, {STREAM: '>'}, count=count)
    return [entry_id for entry_id, dummy in delivered[0][1]] if delivered else []


def pending(client):
    """Who holds which entry, and how often it was delivered."""
    return {e['message_id']: (e['consumer'], e['times_delivered'])
            for e in client.xpending_range(STREAM, GROUP, min='-', max='+', count=1000)}


def consumers(client):
    return {c['name']: c['pending'] for c in client.xinfo_consumers(STREAM, GROUP)}


def state(client):
    """Everything maintenance may change, without the idle times (reading does not change them, time does)."""
    return dict(entries=client.xrange(STREAM), pending=pending(client), consumers=consumers(client),
                groups=[(g['name'], g['pending'], g['last-delivered-id']) for g in client.xinfo_groups(STREAM)],
                dead=client.xrange(DEAD) if client.exists(DEAD) else None)


class Queue:
    """The scene: 15 jobs, all delivered, to consumers in different conditions."""

    def __init__(self, client):
        self.client = client
        client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
        self.ids = [client.xadd(STREAM, {'job_id': 'job-%d' % i, 'job_type': 'build', 'payload': '{"n": %d}' % i})
                    for i in range(15)]
        self.dead = read(client, 'dead-agent', 10)
        self.flaky = read(client, 'flaky-agent', 2)
        # Failed twice more: handed over again (as XCLAIM does), 3 deliveries more, 4 in all.
        for dummy in range(3):
            client.xclaim(STREAM, GROUP, 'flaky-agent', 0, self.flaky)
        client.xgroup_createconsumer(STREAM, GROUP, 'idle-empty')
        # One of the dead agent's jobs and one of the flaky ones were deleted (by someone's XTRIM MAXLEN, say).
        self.ghost, self.flaky_ghost = self.dead[-1], self.flaky[-1]
        client.xdel(STREAM, self.ghost, self.flaky_ghost)
        time.sleep(IDLE + 0.5)
        self.live = read(client, 'live-agent', 3)
        self.heartbeat()
        # The live consumers keep showing activity while the module runs, however slow the machine.
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.keep_alive, daemon=True)
        self.thread.start()

    def keep_alive(self):
        while not self.stopped.wait(0.5):
            self.heartbeat()

    def stop(self):
        self.stopped.set()
        self.thread.join()

    def heartbeat(self):
        """The live consumers show activity: a worker extends its claim, another reads its own (empty) history.

        (On Redis 7.0 a read of new entries that finds none does not count as activity.)
        """
        self.client.xclaim(STREAM, GROUP, 'live-agent', 0, self.live, justid=True)
        assert self.client.xreadgroup(GROUP, 'live-poller', {STREAM: '0'}) == [[STREAM, []]]


@pytest.fixture
def queue(redis_server):
    scene = Queue(redis_server.client())
    yield scene
    scene.stop()


def test_maintenance_moves_what_it_should_and_nothing_else(run, redis_server, queue):
    client = redis_server.client()
    before = state(client)

    # Check mode: predicts, changes nothing.
    predicted = run('redis_queue', dict(redis_server.login(), **MAINTENANCE), check=True)
    assert predicted['changed'] is True, predicted
    assert state(client) == before

    done = run('redis_queue', dict(redis_server.login(), **MAINTENANCE))
    assert done['changed'] is True, done

    # What moved, as the module tells it; the prediction was the same, apart from the new IDs.
    assert [(e['id'], e['consumer'], e['deliveries'], e['missing']) for e in done['dead_lettered']] == [
        (queue.flaky[0], 'flaky-agent', 4, False), (queue.flaky_ghost, 'flaky-agent', 4, True)]
    assert all(e['dead_letter_id'] for e in done['dead_lettered'])
    assert [dict(e, dead_letter_id=None) for e in done['dead_lettered']] == predicted['dead_lettered']
    assert done['reclaimed'] == predicted['reclaimed']
    assert [(e['id'], e['from_consumer'], e['to_consumer'], e['deliveries'], e['missing'])
            for e in done['reclaimed']] == [
        (i, 'dead-agent', None if i == queue.ghost else 'raibid-reclaimer', 1 if i == queue.ghost else 2,
         i == queue.ghost) for i in queue.dead]
    assert sorted(done['deleted_consumers']) == ['dead-agent', 'flaky-agent', 'idle-empty']
    assert done['deleted_consumers'] == predicted['deleted_consumers']
    assert done['commands'] == predicted['commands']

    # The effects, read independently.
    held = pending(client)
    assert held == dict([(i, ('raibid-reclaimer', 2)) for i in queue.dead if i != queue.ghost]
                        + [(i, ('live-agent', 1)) for i in queue.live])
    assert consumers(client) == {'raibid-reclaimer': 9, 'live-agent': 3, 'live-poller': 0}
    dead = client.xrange(DEAD)
    assert [fields for dummy, fields in dead] == [
        {'job_id': 'job-10', 'job_type': 'build', 'payload': '{"n": 10}', 'dead_letter_origin_id': queue.flaky[0],
         'dead_letter_group': GROUP, 'dead_letter_consumer': 'flaky-agent', 'dead_letter_deliveries': '4'},
        {'dead_letter_origin_id': queue.flaky_ghost, 'dead_letter_group': GROUP,
         'dead_letter_consumer': 'flaky-agent', 'dead_letter_deliveries': '4', 'dead_letter_missing': 'true'}]
    assert [i for i, dummy in dead] == [e['dead_letter_id'] for e in done['dead_lettered']]
    # Nothing else: the jobs themselves, the group's position and the live consumers are as they were.
    assert client.xrange(STREAM) == before['entries']
    assert client.xinfo_groups(STREAM)[0]['last-delivered-id'] == before['groups'][0][2]
    assert client.xinfo_groups(STREAM)[0]['pending'] == 12

    # Idempotent: the reclaimed jobs were just handed over, nobody else is idle long enough.
    again = run('redis_queue', dict(redis_server.login(), **MAINTENANCE))
    assert again['changed'] is False, again
    assert (again['reclaimed'], again['dead_lettered'], again['deleted_consumers'], again['commands']) == (
        [], [], [], [])
    assert pending(client) == held


def test_parked_jobs_reach_the_dead_letter_stream(run, redis_server, queue):
    """Nobody processes what raibid-reclaimer holds: each run hands it over again, until it is dead-lettered."""
    client = redis_server.client()
    options = dict(redis_server.login(), **MAINTENANCE)
    first = run('redis_queue', options)
    assert len(first['reclaimed']) == 10
    for expected in (3, 4):
        time.sleep(IDLE + 0.2)
        result = run('redis_queue', options)
        assert {e['from_consumer'] for e in result['reclaimed']} == {'raibid-reclaimer'}
        assert {e['deliveries'] for e in result['reclaimed']} == {expected}
    time.sleep(IDLE + 0.2)
    last = run('redis_queue', options)
    # Delivered 4 times, more than 3: dead-lettered, not reclaimed; the reclaimer then holds nothing and is idle
    # for less than the threshold, so it stays.
    assert len(last['dead_lettered']) == 9 and last['reclaimed'] == []
    assert set(pending(client)) == set(queue.live)
    assert client.xlen(DEAD) == 2 + 9


def test_steps_are_off_by_default_and_each_alone(run, redis_server, queue):
    client = redis_server.client()
    before = state(client)
    plain = run('redis_queue', dict(redis_server.login(), max_length=0))
    assert plain['changed'] is False and 'reclaimed' not in plain and 'dead_lettered' not in plain
    assert state(client) == before

    only_consumers = run('redis_queue', dict(redis_server.login(), max_length=0,
                                             delete_idle_consumers=dict(min_idle=IDLE)))
    # Only the consumer that holds nothing goes; the dead agent still holds its jobs.
    assert only_consumers['deleted_consumers'] == ['idle-empty']
    assert 'idle-empty' not in consumers(client) and 'dead-agent' in consumers(client)

    to_worker = run('redis_queue', dict(redis_server.login(), max_length=0,
                                        reclaim=dict(min_idle=IDLE, consumer='live-agent')))
    # The dead agent's 9 jobs and the flaky agent's 1 (idle too), to a live worker; the 2 deleted ones dropped.
    assert [e['to_consumer'] for e in to_worker['reclaimed'] if not e['missing']] == ['live-agent'] * 10
    assert sorted(e['id'] for e in to_worker['reclaimed'] if e['missing']) == sorted([queue.ghost, queue.flaky_ghost])
    assert {c for c, dummy in pending(client).values()} == {'live-agent'}
    assert 'XCLAIM raibid:jobs raibid-workers live-agent 10000 ' in to_worker['commands'][0]


def test_a_job_acknowledged_meanwhile_is_not_dead_lettered(run, redis_server, queue):
    """The flaky agent finally acknowledges one of its jobs between check mode and the run."""
    client = redis_server.client()
    options = dict(redis_server.login(), max_length=0, dead_letter=dict(max_deliveries=3, stream='raibid:poison'))
    predicted = run('redis_queue', options, check=True)
    assert [e['id'] for e in predicted['dead_lettered']] == queue.flaky
    client.xack(STREAM, GROUP, queue.flaky[0])
    done = run('redis_queue', options)
    assert [e['id'] for e in done['dead_lettered']] == [queue.flaky_ghost]
    assert [f['dead_letter_origin_id'] for dummy, f in client.xrange('raibid:poison')] == [queue.flaky_ghost]


def test_maintenance_playbook(redis_server, queue, tmp_path):
    """raibid.queue.maintain_queue with a direct connection and the password from a credentials file."""
    client = redis_server.client()
    credentials = tmp_path / 'credentials.json'
    credentials.write_text(json.dumps({'host': 'unused', 'port': 6379, 'password': redis_server.password}))
    credentials.chmod(0o600)
    extra = dict(raibid_redis_connection='direct', raibid_redis_direct_host='127.0.0.1',
                 raibid_redis_direct_port=redis_server.port, raibid_redis_credentials_path=str(credentials),
                 raibid_redis_dead_letter_deliveries=3, raibid_redis_reclaim_idle=IDLE,
                 raibid_redis_consumer_max_idle=IDLE, ansible_python_interpreter=sys.executable)

    def playbook(*options):
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
        proc = subprocess.run(['ansible-playbook', 'raibid.queue.maintain_queue', '-e', json.dumps(extra), *options],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert redis_server.password not in proc.stdout + proc.stderr
        tasks = json.loads(proc.stdout[proc.stdout.index('{'):])['plays'][0]['tasks']
        return {t['task']['name']: t['hosts']['localhost'] for t in tasks}

    before = state(client)
    predicted = playbook('--check')
    assert state(client) == before
    done = playbook()
    assert done['Dead-letter, reclaim and delete idle consumers']['changed'] is True
    shown, shown_predicted = done['Show what moved']['msg'], predicted['Show what moved']['msg']
    assert [e['id'] for e in shown['dead_lettered']] == queue.flaky
    assert [e['id'] for e in shown['reclaimed']] == queue.dead
    assert sorted(shown['deleted_consumers']) == ['dead-agent', 'flaky-agent', 'idle-empty']
    assert shown['reclaimed'] == shown_predicted['reclaimed']
    assert shown['deleted_consumers'] == shown_predicted['deleted_consumers']
    assert client.xlen('raibid:jobs:dead') == 2
    assert {c for c, dummy in pending(client).values()} == {'raibid-reclaimer', 'live-agent'}
    # Nothing trimmed, whatever the module's default max_length.
    assert client.xrange(STREAM) == before['entries']


def test_maintenance_playbook_with_mutual_tls(certs, tmp_path):
    """With mutual TLS the playbook takes TLS, the controller's certificate, key and CA from the credentials file, as
    the role writes them; the server refuses a client without a certificate."""
    server = RedisServer(tmp_path / 'redis', certs, extra=['tls-auth-clients yes']).start()
    try:
        env = dict(os.environ, REDISCLI_AUTH=server.password)
        refused = subprocess.run(['redis-cli', '-p', str(server.tls_port), '--tls', '--cacert', certs['ca.crt'], '-e',
                                  'PING'], env=env, capture_output=True, text=True, timeout=30, check=False)
        assert refused.returncode != 0 and 'PONG' not in refused.stdout, refused
        credentials = tmp_path / 'credentials.json'
        credentials.write_text(json.dumps({'host': 'unused', 'port': 6379, 'password': server.password, 'tls': True,
                                           'tls_ca_file': certs['ca.crt'], 'tls_cert_file': certs['client.crt'],
                                           'tls_key_file': certs['client.key']}))
        credentials.chmod(0o600)
        server.client().xgroup_create(STREAM, GROUP, id='$', mkstream=True)
        server.client().xadd(STREAM, {'job_id': 'j1'})
        server.client().xreadgroup(GROUP, 'gone-agent', {STREAM: '>'})
        extra = dict(raibid_redis_connection='direct', raibid_redis_direct_host='127.0.0.1',
                     raibid_redis_direct_port=server.tls_port, raibid_redis_credentials_path=str(credentials),
                     raibid_redis_reclaim_idle=1, ansible_python_interpreter=sys.executable)
        time.sleep(1.1)
        proc = subprocess.run(['ansible-playbook', 'raibid.queue.maintain_queue', '-e', json.dumps(extra)],
                              env=dict(os.environ, ANSIBLE_NOCOLOR='1'), capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Done over TLS with the certificate: the job now pends with the reclaimer (read over the plain port).
        assert [c['name'] for c in server.client().xinfo_consumers(STREAM, GROUP) if c['pending']] == ['raibid-reclaimer']
    finally:
        server.stop()
