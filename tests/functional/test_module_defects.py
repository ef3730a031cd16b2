# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #16, case by case, on a real redis-server: message, changed flag, Redis state (second client or
redis-cli) and the file system afterwards. Case 1 (a refused batch) is in test_no_job_lost.py; the
whitespace and control-character names and the non-Redis peer are also in the table of test_bad_input.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from conftest import ACL_USER
from test_bad_input import Listener, unused_port

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'


def groups(server):
    return [g['name'] for g in server.client().xinfo_groups(STREAM)] if server.client().exists(STREAM) else []


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# Case 2: a credentials file holding JSON other than an object.
@pytest.mark.parametrize('text', ['42', '[1,2]', '"a string"', 'true'])
def test_credentials_json_that_is_not_an_object(run, redis_server, tmp_path, text):
    path = tmp_path / 'c.json'
    path.write_text(text)
    for dummy in range(2):  # and a re-run fails the same way, without a crash
        result = run('redis_queue', redis_server.login(credentials_path=str(path)))
        assert result.get('failed') is True and result['changed'] is False
        assert result['msg'].startswith('credentials_path %s holds JSON that is not an object' % path)
    assert redis_server.client().exists(STREAM) == 0, 'nothing may be created before the file is known good'
    assert path.read_text() == text


# Case 3: failures after a change, or that used to come after one.
def test_credentials_file_on_a_read_only_mount_fails_before_any_change(run, redis_server, tmp_path):
    readonly = tmp_path / 'ro'
    readonly.mkdir()
    (readonly / 'c.json').write_text('{}')
    subprocess.run(['mount', '--bind', str(readonly), str(readonly)], check=True)
    subprocess.run(['mount', '-o', 'remount,bind,ro', str(readonly)], check=True)
    try:
        present = run('redis_queue', redis_server.login(credentials_path=str(readonly / 'c.json')))
        redis_server.client().xgroup_create(STREAM, GROUP, id='$', mkstream=True)
        absent = run('redis_queue', redis_server.login(state='absent', credentials_path=str(readonly / 'c.json')))
    finally:
        subprocess.run(['umount', str(readonly)], check=True)
    assert present.get('failed') is True and present['changed'] is False
    assert 'is not readable and writable' in present['msg']
    assert absent.get('failed') is True and absent['changed'] is False
    assert groups(redis_server) == [GROUP], 'the group must survive a failed removal'


def test_state_absent_with_a_directory_keeps_the_group(run, redis_server, tmp_path):
    redis_server.client().xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    result = run('redis_queue', redis_server.login(state='absent', credentials_path=str(tmp_path)))
    assert result.get('failed') is True and result['changed'] is False and 'is a directory' in result['msg']
    assert 'raibid-workers' in redis_server.cli('XINFO', 'GROUPS', STREAM)


def test_fifo_fails_at_once_and_changes_nothing(run, redis_server, tmp_path):
    fifo = tmp_path / 'c.json'
    os.mkfifo(fifo)
    began = time.monotonic()
    result = run('redis_queue', redis_server.login(credentials_path=str(fifo)))
    assert time.monotonic() - began < 15
    assert result.get('failed') is True and 'is not a regular file (a FIFO' in result['msg']
    assert redis_server.client().exists(STREAM) == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_failure_after_a_change_is_reported_as_a_change(run, redis_server, tmp_path):
    """A full disk is only found when writing: the group was created by then, and the result says so."""
    full = tmp_path / 'full'
    full.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(full)], check=True)
    try:
        subprocess.run(['dd', 'if=/dev/zero', 'of=%s' % (full / 'filler'), 'bs=4k'], capture_output=True,
                       check=False)
        result = run('redis_queue', redis_server.login(credentials_path=str(full / 'c.json')))
        left = sorted(p.name for p in full.iterdir())
    finally:
        subprocess.run(['umount', str(full)], check=True)
    assert result.get('failed') is True
    assert 'Cannot write the credentials file' in result['msg'] and 'No space left' in result['msg']
    assert result['changed'] is True
    assert result['commands'] == ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']
    assert groups(redis_server) == [GROUP]
    assert left == ['filler'], 'no temporary file may be left behind'


# Case 4: diffs show nothing the module did not write, and mask every secret.
def test_symlinked_credentials_path_is_refused_without_showing_the_target(run, redis_server, tmp_path):
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'token': 'foreign-token-1234'}))
    link = tmp_path / 'c.json'
    link.symlink_to(other)
    result = run('redis_queue', redis_server.login(credentials_path=str(link)), diff=True)
    assert result.get('failed') is True and 'is a symbolic link' in result['msg']
    assert 'foreign-token-1234' not in result.output
    assert os.path.islink(link) and json.loads(other.read_text()) == {'token': 'foreign-token-1234'}
    assert redis_server.client().exists(STREAM) == 0


def test_diff_masks_foreign_keys_and_every_secret(run, redis_server, tmp_path):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps({'token': 'foreign-token-1234', 'note': 'someone else'}))
    path.chmod(0o600)
    extra = {'sentinel_port': 26379, 'sentinel_password': 'sentinel-secret-99', 'api': 'api-value-77'}
    args = redis_server.login(credentials_path=str(path), credentials_extra=extra, credentials_secret_keys=['api'])
    result = run('redis_queue', args, diff=True)
    assert result['changed'] is True
    assert result['diff']['before']['credentials'] == {'token': '********', 'note': '********'}
    after = result['diff']['after']['credentials']
    assert after['password'] == after['sentinel_password'] == after['api'] == '********'
    assert after['sentinel_port'] == 26379
    for secret in ('foreign-token-1234', 'someone else', 'sentinel-secret-99', 'api-value-77', redis_server.password):
        assert secret not in result.output
    written = json.loads(path.read_text())
    assert written['sentinel_password'] == 'sentinel-secret-99' and 'token' not in written
    assert run('redis_queue', args)['changed'] is False


# Case 5, one by one.
def test_non_redis_peer_gives_a_sentence(run, redis_server):
    http = Listener(http=True)
    try:
        result = run('redis_queue_info', redis_server.login(login_port=http.port, wait_timeout=30))
    finally:
        http.close()
    assert result.get('failed') is True
    assert result['msg'].startswith('The server at redis://127.0.0.1:%d answered, but not as Redis does' % http.port)
    assert 'InvalidResponse' not in result.output and 'most recent call last' not in result.output


def test_url_as_host_fails_at_once(run, redis_server):
    began = time.monotonic()
    result = run('redis_queue', redis_server.login(login_host='redis://127.0.0.1:%d' % redis_server.port,
                                                   wait_timeout=30))
    assert time.monotonic() - began < 10
    assert result.get('failed') is True and 'must be a host name or IP address, not a URL' in result['msg']


def test_wait_timeout_is_a_real_bound(run, redis_server):
    """7 s asked with a 5 s connect_timeout used to take 12.7 s against a peer that never answers."""
    hole = Listener()
    try:
        # What ansible-playbook itself takes here: a run that fails at once (nobody listens, no waiting).
        began = time.monotonic()
        run('redis_queue', redis_server.login(login_port=unused_port()))
        overhead = time.monotonic() - began
        began = time.monotonic()
        result = run('redis_queue', redis_server.login(login_port=hole.port, wait_timeout=7, connect_timeout=5))
        took = time.monotonic() - began
    finally:
        hole.close()
    assert result.get('failed') is True and 'did not answer PING within 7 seconds' in result['msg']
    assert 7 <= took < overhead + 7 + 1, (took, overhead)


def process(client, count):
    """Enqueues count jobs, and a worker reads and acknowledges them all: processed history."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(STREAM, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'})
    pipe.execute()
    ids = [i for i, dummy in client.xreadgroup(GROUP, 'w', {STREAM: '>'}, count=count)[0][1]]
    client.xack(STREAM, GROUP, *ids)


def test_node_size_from_the_server_and_no_false_change_without_config(run, redis_server):
    client = redis_server.client()
    client.config_set('stream-node-max-entries', 1000)
    client.xgroup_create(STREAM, GROUP, id='$', mkstream=True)
    process(client, 3000)

    # The admin can read the node size: 1000, so 2500 entries are within max_length 1500 + 1000.
    admin = redis_server.login(max_length=1500)
    assert run('redis_queue', admin, check=True)['changed'] is True  # 3000 > 2500
    assert run('redis_queue', admin)['trimmed'] == 1500
    # The ACL user cannot run CONFIG: whatever it assumes, a run that removes nothing reports no change.
    user = dict(login_host='127.0.0.1', login_port=redis_server.port, login_user=ACL_USER,
                login_password=redis_server.acl_password, max_length=1500)
    for dummy in range(2):
        result = run('redis_queue', user)
        assert result['changed'] is False and result['trimmed'] == 0 and result['commands'] == []
    assert client.xlen(STREAM) == 1500
    # 200 more processed: it assumes 100 entries per node, so it trims, and the change is real.
    process(client, 200)
    result = run('redis_queue', user)
    assert result['changed'] is True and result['trimmed'] == 200 and client.xlen(STREAM) == 1500
    assert run('redis_queue', user)['changed'] is False


def test_created_directories_are_0700(run, redis_server, tmp_path):
    creds = tmp_path / 'a' / 'b' / 'c' / 'creds.json'
    result = run('redis_queue', redis_server.login(credentials_path=str(creds)))
    assert result['changed'] is True
    assert [mode(p) for p in (tmp_path / 'a', tmp_path / 'a' / 'b', creds.parent)] == [0o700] * 3
    assert mode(creds) == 0o600


def test_password_rotation_says_what_changed(run, redis_server, tmp_path):
    creds = tmp_path / 'creds.json'
    args = redis_server.login(credentials_path=str(creds))
    run('redis_queue', args)
    redis_server.client().config_set('requirepass', 'rotated-password-42')
    old = redis_server.password
    redis_server.password = 'rotated-password-42'
    rotated = run('redis_queue', dict(args, login_password='rotated-password-42'), diff=True)
    assert rotated['changed'] is True
    assert rotated['credentials_changes'] == ['password']
    assert rotated['diff']['before']['credentials']['password'] == '********'
    assert rotated['diff']['after']['credentials']['password'] == '******** (changed)'
    assert old not in rotated.output and 'rotated-password-42' not in rotated.output
    assert json.loads(creds.read_text())['password'] == 'rotated-password-42'


def test_info_is_not_required(run, redis_server):
    client = redis_server.client()
    client.execute_command('ACL', 'SETUSER', 'no-info', 'on', '>no-info-password-1', '~raibid:*', '+@all', '-info',
                           '-config')
    result = run('redis_queue', dict(login_host='127.0.0.1', login_port=redis_server.port, login_user='no-info',
                                     login_password='no-info-password-1'))
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['redis_version'] is None
    assert any('INFO was refused' in w for w in result['warnings'])
    assert groups(redis_server) == [GROUP]
