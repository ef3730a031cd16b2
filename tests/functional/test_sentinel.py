# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sentinel_master_set against a real redis-server and a real Sentinel (redis-server --sentinel) watching it.

Here Sentinel answers with the master's IP address, the direct connection; through a port-forward (the role's
way, Sentinel answering with pod host names) it is tested on the cluster: tests/testbed/test_role.py,
test_chart_sentinel.py and molecule/sentinel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import redis

from conftest import REDIS_SERVER
from harness import free_port

# The chart's master set name, which raibid.queue.maintain_queue assumes.
MASTER_SET = 'mymaster'


@pytest.fixture
def sentinel(tmp_path, redis_server):
    """A Sentinel that monitors redis_server as MASTER_SET, with the same password on both (as the chart does)."""
    port = free_port()
    conf = tmp_path / 'sentinel.conf'
    conf.write_text('\n'.join([
        'bind 127.0.0.1',
        'port %d' % port,
        'requirepass %s' % redis_server.password,
        'sentinel monitor %s 127.0.0.1 %d 1' % (MASTER_SET, redis_server.port),
        'sentinel auth-pass %s %s' % (MASTER_SET, redis_server.password),
        'dir %s' % tmp_path,
        'logfile %s' % (tmp_path / 'sentinel.log'),
    ]) + '\n')
    conf.chmod(0o600)
    process = subprocess.Popen([REDIS_SERVER, str(conf), '--sentinel'])
    client = redis.Redis(host='127.0.0.1', port=port, password=redis_server.password, decode_responses=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.sentinel_get_master_addr_by_name(MASTER_SET):
                break
        except redis.exceptions.ConnectionError:
            pass
        assert time.monotonic() < deadline, (tmp_path / 'sentinel.log').read_text()
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(10)


def test_the_master_sentinel_names_is_the_one_worked_on(run, redis_server, sentinel, tmp_path):
    # login_port points at nothing: only Sentinel's answer leads to the master.
    login = redis_server.login(login_port=free_port(), sentinel_port=sentinel, sentinel_master_set=MASTER_SET)
    result = run('redis_queue', login)
    assert result['changed'] is True, result
    assert result['master'] == {'kubernetes_pod': None, 'login_host': '127.0.0.1', 'login_port': redis_server.port}
    # Independently: the group is on the server Sentinel watches.
    assert [g['name'] for g in redis_server.client().xinfo_groups('raibid:jobs')] == ['raibid-workers']

    info = run('redis_queue_info', login)
    assert info['stream']['exists'] is True, info


def test_unknown_master_set_fails_clearly(run, redis_server, sentinel):
    result = run('redis_queue', redis_server.login(sentinel_port=sentinel, sentinel_master_set='nope'))
    assert result['failed'] is True
    assert result['msg'] == 'Sentinel at redis://127.0.0.1:%d does not know the master set nope.' % sentinel
    assert redis_server.client().exists('raibid:jobs') == 0


def test_wrong_password_for_sentinel_fails_at_once(run, redis_server, sentinel):
    result = run('redis_queue', redis_server.login(login_password='wrong', sentinel_port=sentinel,
                                                   sentinel_master_set=MASTER_SET, wait_timeout=30))
    assert result['failed'] is True
    assert result['msg'].startswith('Sentinel at redis://127.0.0.1:%d rejected the login' % sentinel), result['msg']


def test_no_sentinel_waits_then_names_sentinel(run, redis_server):
    port = free_port()
    result = run('redis_queue', redis_server.login(sentinel_port=port, sentinel_master_set=MASTER_SET, wait_timeout=2))
    assert result['failed'] is True
    assert result['msg'].startswith('Sentinel at redis://127.0.0.1:%d did not answer PING within 2 seconds' % port)


def test_bad_sentinel_options_fail_before_connecting(run, redis_server):
    result = run('redis_queue', redis_server.login(sentinel_master_set='a\nb'))
    assert result['msg'] == 'sentinel_master_set must not contain control characters such as newlines or tabs.'
    result = run('redis_queue', redis_server.login(sentinel_master_set=MASTER_SET, sentinel_port=0))
    assert result['msg'] == 'sentinel_port must be between 1 and 65535, got 0.'


def test_maintenance_playbook_follows_sentinel(redis_server, sentinel, tmp_path):
    """raibid.queue.maintain_queue with raibid_redis_sentinel: the direct port points at nothing, Sentinel leads."""
    redis_server.client().xgroup_create('raibid:jobs', 'raibid-workers', id='$', mkstream=True)
    extra = dict(raibid_redis_connection='direct', raibid_redis_direct_host='127.0.0.1',
                 raibid_redis_direct_port=free_port(), raibid_redis_sentinel=True, raibid_redis_sentinel_port=sentinel,
                 raibid_redis_password=redis_server.password, ansible_python_interpreter=sys.executable)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run(['ansible-playbook', 'raibid.queue.maintain_queue', '-e', json.dumps(extra)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert redis_server.password not in proc.stdout + proc.stderr
