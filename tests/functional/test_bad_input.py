# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input and hostile conditions, as a table: each case is a clear error, nothing changed, no secret shown.

Every case runs a module through ansible-playbook against a real redis-server holding a queue with jobs and a
credentials file; afterwards a second client compares every key (streams with entries and groups) with the
state before, the credentials file is compared byte for byte, and the whole output is searched for every
password of the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import RedisServer

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'
LIMITED_USER, LIMITED_PASSWORD = 'no-xgroup', 'limited-user-password-5f1e'
NO_XADD_USER = 'no-xadd'


class Listener:
    """A loopback TCP port that accepts connections and never answers (a black hole), or answers like HTTP."""

    def __init__(self, http=False):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        if http:
            threading.Thread(target=self._http, daemon=True).start()

    def _http(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
            self.held.append(conn)

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def unused_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# (id, module, arguments (callable of the context), message expected in msg, seconds the failure may take)
CASES = [
    ('empty stream', 'redis_queue', lambda c: dict(stream=''), 'stream must not be empty'),
    ('whitespace stream', 'redis_queue', lambda c: dict(stream='   '), 'stream must not be only whitespace'),
    ('newline in stream', 'redis_queue', lambda c: dict(stream='raibid:\njobs'), 'stream must not contain control'),
    ('tab group', 'redis_queue', lambda c: dict(consumer_group='\t'), 'consumer_group must not be only whitespace'),
    ('control char group', 'redis_queue', lambda c: dict(consumer_group='work\x1bers'),
     'consumer_group must not contain control characters'),
    ('too long group', 'redis_queue', lambda c: dict(consumer_group='g' * 1025),
     'consumer_group must not be longer than 1024 characters'),
    ('bad start_id', 'redis_queue', lambda c: dict(start_id='yesterday'), "start_id must be '$', '0' or a stream ID"),
    ('negative max_length', 'redis_queue', lambda c: dict(max_length=-1), 'max_length must be 0 (no trimming)'),
    ('credentials_port 0', 'redis_queue', lambda c: dict(credentials_path=c['creds'], credentials_port=0),
     'credentials_port must be between 1 and 65535'),
    ('credentials_port too big', 'redis_queue', lambda c: dict(credentials_path=c['creds'], credentials_port=70000),
     'credentials_port must be between 1 and 65535'),
    ('login_port 0', 'redis_queue', lambda c: dict(login_port=0), 'login_port must be between 1 and 65535'),
    ('login_port too big', 'redis_job', lambda c: dict(login_port=65536, job_type='build'),
     'login_port must be between 1 and 65535'),
    ('host is a URL', 'redis_queue', lambda c: dict(login_host='redis://127.0.0.1'), 'not a URL'),
    ('host with a space', 'redis_job', lambda c: dict(login_host='127.0.0.1 x', job_type='b'),
     'login_host must not contain spaces'),
    ('connect_timeout 0', 'redis_queue', lambda c: dict(connect_timeout=0), 'connect_timeout must be greater than 0'),
    ('negative wait_timeout', 'redis_queue_info', lambda c: dict(wait_timeout=-1), 'wait_timeout must be 0'),
    ('credentials path is a directory', 'redis_queue', lambda c: dict(credentials_path=c['dir']), 'is a directory'),
    ('credentials path is a directory, absent', 'redis_queue',
     lambda c: dict(state='absent', credentials_path=c['dir']), 'is a directory'),
    ('credentials path is a symlink', 'redis_queue', lambda c: dict(credentials_path=c['symlink']),
     'is a symbolic link'),
    ('credentials path is a FIFO', 'redis_queue', lambda c: dict(credentials_path=c['fifo']),
     'is not a regular file (a FIFO'),
    ('credentials path under a file', 'redis_queue', lambda c: dict(credentials_path=c['creds'] + '/c.json'),
     'is not a directory'),
    ('credentials path on a read-only file system', 'redis_queue',
     lambda c: dict(credentials_path=c['readonly'] + '/.raibid/c.json'), 'is not writable'),
    ('existing credentials on a read-only file system, absent', 'redis_queue',
     lambda c: dict(state='absent', credentials_path=c['readonly_file']), 'is not readable and writable'),
    ('credentials file holds a list', 'redis_queue', lambda c: dict(credentials_path=c['list_file']),
     'holds JSON that is not an object (list)'),
    ('credentials_extra replaces password', 'redis_queue',
     lambda c: dict(credentials_path=c['creds'], credentials_extra={'password': 'x'}),
     'credentials_extra cannot replace the keys password'),
    ('credentials_extra key with a newline', 'redis_queue',
     lambda c: dict(credentials_path=c['creds'], credentials_extra={'a\nb': 1}),
     'credentials_extra key must not contain control characters'),
    ('stream name holds a string', 'redis_queue', lambda c: dict(stream='raibid:string'),
     "Key 'raibid:string' holds a string, not a stream"),
    ('stream name holds a hash, redis_job', 'redis_job', lambda c: dict(stream='raibid:hash', job_type='b'),
     "Key 'raibid:hash' holds a hash, not a stream"),
    ('empty job_type in a batch', 'redis_job', lambda c: dict(jobs=[{'job_type': 'b'}, {'job_type': ' '}]),
     'The job_type of jobs[1] must not be only whitespace'),
    ('newline in job_id', 'redis_job', lambda c: dict(job_type='b', job_id='j\n1'),
     'The job_id of the job must not contain control characters'),
    ('unknown job key', 'redis_job', lambda c: dict(jobs=[{'job_type': 'b', 'paylaod': {}}]),
     'jobs[0] has unknown keys paylaod'),
    ('negative max_backlog', 'redis_job', lambda c: dict(job_type='b', max_backlog=-1), 'max_backlog must be 0'),
    # 3 jobs never delivered and 1 delivered but not acknowledged are waiting.
    ('queue full', 'redis_job', lambda c: dict(jobs=[{'job_type': 'b'}] * 2, max_backlog=5),
     'queue full: 4 jobs waiting, limit 5'),
    ('reclaim min_idle 0', 'redis_queue', lambda c: dict(reclaim=dict(min_idle=0)),
     'reclaim.min_idle must be 1 or more, got 0'),
    ('reclaim without min_idle', 'redis_queue', lambda c: dict(reclaim=dict(consumer='x')),
     'missing required arguments: min_idle found in reclaim'),
    ('reclaim consumer with a newline', 'redis_queue', lambda c: dict(reclaim=dict(min_idle=60, consumer='a\nb')),
     'reclaim.consumer must not contain control characters'),
    ('reclaim with state absent', 'redis_queue', lambda c: dict(state='absent', reclaim=dict(min_idle=60)),
     'reclaim only applies with state=present'),
    ('dead_letter max_deliveries 0', 'redis_queue', lambda c: dict(dead_letter=dict(max_deliveries=0)),
     'dead_letter.max_deliveries must be 1 or more, got 0'),
    ('dead_letter stream is the stream', 'redis_queue',
     lambda c: dict(dead_letter=dict(max_deliveries=3, stream=STREAM)), 'dead_letter.stream must differ from stream'),
    ('empty dead_letter stream', 'redis_queue', lambda c: dict(dead_letter=dict(max_deliveries=3, stream='')),
     'dead_letter.stream must not be empty'),
    ('dead_letter stream holds a string', 'redis_queue',
     lambda c: dict(dead_letter=dict(max_deliveries=1, stream='raibid:string'), reclaim=dict(min_idle=1)),
     "Key 'raibid:string' holds a string, not a stream"),
    ('negative delete_idle_consumers', 'redis_queue', lambda c: dict(delete_idle_consumers=dict(min_idle=-5)),
     'delete_idle_consumers.min_idle must be 1 or more, got -5'),
    ('TLS options without TLS', 'redis_queue', lambda c: dict(ca_data='x'), 'ca_data only apply with tls=true'),
    ('nobody listens', 'redis_queue', lambda c: dict(login_port=c['unused'], wait_timeout=2),
     'did not answer PING within 2 seconds'),
    ('black hole', 'redis_queue', lambda c: dict(login_port=c['blackhole'], wait_timeout=3, connect_timeout=10),
     'did not answer PING within 3 seconds'),
    ('not a Redis server', 'redis_queue', lambda c: dict(login_port=c['http'], wait_timeout=10),
     'answered, but not as Redis does'),
    ('wrong password', 'redis_queue', lambda c: dict(login_password='wrong-password-1234', wait_timeout=10),
     'rejected the login'),
    ('missing password', 'redis_job', lambda c: dict(login_password=None, job_type='b', wait_timeout=10),
     'rejected the login'),
    ('ACL user lacking XGROUP', 'redis_queue',
     lambda c: dict(login_user=LIMITED_USER, login_password=LIMITED_PASSWORD, consumer_group='new-group'),
     'lacks a permission (ACL)'),
    ('ACL user lacking XADD', 'redis_job',
     lambda c: dict(login_user=NO_XADD_USER, login_password=LIMITED_PASSWORD, job_type='b'),
     'lacks a permission (ACL)'),
    ('read-only replica, redis_queue', 'redis_queue', lambda c: dict(login_port=c['replica'].port,
                                                                     login_password=c['replica'].password,
                                                                     consumer_group='new-group'),
     'the server is a read-only replica'),
    ('read-only replica, redis_job', 'redis_job', lambda c: dict(login_port=c['replica'].port,
                                                                 login_password=c['replica'].password, job_type='b'),
     'the server is a read-only replica'),
    ('renamed XGROUP', 'redis_queue', lambda c: dict(login_port=c['renamed'].port,
                                                     login_password=c['renamed'].password),
     "unknown command 'xgroup'"),
]
# Cases whose failure must come within this many seconds (ansible-playbook itself takes about 2).
TIME_BOUNDS = {'nobody listens': 8, 'black hole': 9, 'not a Redis server': 6}


@pytest.fixture
def context(redis_server, tmp_path, certs):
    """A queue with 5 jobs (2 delivered, 1 acknowledged), other keys, a credentials file and odd paths."""
    client = redis_server.client()
    client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    ids = [client.xadd(STREAM, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'}) for i in range(5)]
    client.xreadgroup(GROUP, 'agent-1', {STREAM: '>'}, count=2)
    client.xack(STREAM, GROUP, ids[0])
    client.set('raibid:string', 'precious')
    client.hset('raibid:hash', 'a', '1')
    client.execute_command('ACL', 'SETUSER', LIMITED_USER, 'on', '>' + LIMITED_PASSWORD, '~raibid:*', '+@all',
                           '-xgroup')
    client.execute_command('ACL', 'SETUSER', NO_XADD_USER, 'on', '>' + LIMITED_PASSWORD, '~raibid:*', '+@all',
                           '-xadd')
    # Everything the modules might touch on disk lives here, apart from the playbooks and Redis' own files.
    home = tmp_path / 'files'
    home.mkdir()
    creds = home / 'creds.json'
    creds.write_text('{"host": "kept", "password": "%s"}\n' % redis_server.password)
    creds.chmod(0o600)
    (home / 'a-dir').mkdir()
    (home / 'other.json').write_text('{"token": "foreign-token-value"}')
    os.symlink(home / 'other.json', home / 'link.json')
    os.mkfifo(home / 'fifo.json')
    (home / 'list.json').write_text('[1, 2]')
    readonly = home / 'readonly'
    readonly.mkdir()
    (readonly / 'c.json').write_text('{}')
    subprocess.run(['mount', '--bind', '-o', 'ro', str(readonly), str(readonly)], check=True)
    subprocess.run(['mount', '-o', 'remount,bind,ro', str(readonly)], check=True)
    blackhole, http = Listener(), Listener(http=True)
    ctx = dict(creds=str(creds), dir=str(home / 'a-dir'), symlink=str(home / 'link.json'),
               fifo=str(home / 'fifo.json'), list_file=str(home / 'list.json'), readonly=str(readonly),
               readonly_file=str(readonly / 'c.json'), unused=unused_port(), blackhole=blackhole.port,
               http=http.port, files=home, servers=[])
    yield ctx
    subprocess.run(['umount', str(readonly)], check=True)
    blackhole.close()
    http.close()
    for server in ctx['servers']:
        server.stop()


def files(directory):
    """Every file under the directory (not following links) with its content, or its kind."""
    found = {}
    for root, dirs, names in os.walk(directory):
        for name in names + dirs:
            path = os.path.join(root, name)
            if os.path.islink(path):
                found[path] = 'link -> %s' % os.readlink(path)
            elif os.path.isfile(path):
                with open(path, 'rb') as f:
                    found[path] = f.read()
            else:
                found[path] = 'dir' if os.path.isdir(path) else 'other'
    return found


@pytest.mark.parametrize('name, module, make_args, message', CASES, ids=[c[0] for c in CASES])
def test_bad_input(run, redis_server, context, tmp_path, certs, name, module, make_args, message):
    if name.startswith('read-only replica'):
        replica = RedisServer(tmp_path / 'replica', certs, extra=[
            'replicaof 127.0.0.1 %d' % redis_server.port, 'masterauth %s' % redis_server.password]).start()
        context['servers'].append(replica)
        deadline = time.monotonic() + 10
        while replica.client().info('replication').get('master_link_status') != 'up':
            assert time.monotonic() < deadline, 'the replica did not sync'
            time.sleep(0.1)
        context['replica'] = replica
    if name.startswith('renamed'):
        renamed = RedisServer(tmp_path / 'renamed', certs, extra=['rename-command XGROUP ""']).start()
        context['servers'].append(renamed)
        context['renamed'] = renamed
    others = context['servers']
    before, others_before = redis_server.snapshot(), [s.snapshot() for s in others]
    files_before = files(context['files'])
    args = redis_server.login(**make_args(context))
    args = {k: v for k, v in args.items() if v is not None}

    began = time.monotonic()
    result = run(module, args)
    took = time.monotonic() - began

    assert result.get('failed') is True, result
    assert message.lower() in result['msg'].lower(), result['msg']
    # Ansible 2.19 adds "(traceback unavailable)" to every failure; a crash would carry a real traceback.
    assert 'Traceback' not in result['msg'] and 'most recent call last' not in str(result.get('exception', ''))
    assert result.get('changed') is not True
    assert redis_server.snapshot() == before, 'Redis changed'
    assert [s.snapshot() for s in others] == others_before, 'the other server changed'
    assert files(context['files']) == files_before, 'files changed'
    for secret in [redis_server.password, redis_server.acl_password, LIMITED_PASSWORD, 'foreign-token-value'] + [
            s.password for s in others]:
        assert secret not in result.output, 'a secret was printed'
    if name in TIME_BOUNDS:
        assert took < TIME_BOUNDS[name], 'took %.1f s' % took


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30
