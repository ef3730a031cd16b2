# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""raibid.queue.redis_queue against a real redis-server, checked with an independent client."""

from __future__ import annotations

import json
import stat
import subprocess
import threading
import time

import pytest

from conftest import ACL_USER

STREAM = 'raibid:jobs'
GROUP = 'raibid-workers'


def group_names(client, stream=STREAM):
    return [g['name'] for g in client.xinfo_groups(stream)]


def fill(client, count, stream=STREAM):
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(stream, {'job_id': str(i), 'job_type': 'build', 'payload': '{}'})
    pipe.execute()


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_then_second_run_changes_nothing(run, redis_server):
    first = run('redis_queue', redis_server.login())
    assert first['changed'] is True, first
    assert first['group']['created'] is True
    assert first['commands'] == ['XGROUP CREATE raibid:jobs raibid-workers $ MKSTREAM']
    # Independent check, as an operator would: redis-cli XINFO GROUPS.
    assert 'raibid-workers' in redis_server.cli('XINFO', 'GROUPS', STREAM)
    assert redis_server.client().type(STREAM) == 'stream'

    second = run('redis_queue', redis_server.login())
    assert second['changed'] is False, second
    assert second['group']['created'] is False
    assert second['commands'] == []
    assert second['redis_version'] == redis_server.client().info('server')['redis_version']
    assert group_names(redis_server.client()) == [GROUP]


def test_check_mode_reports_the_change_and_changes_nothing(run, redis_server, tmp_path):
    creds = tmp_path / 'home' / '.raibid' / 'redis-credentials.json'
    args = redis_server.login(credentials_path=str(creds))
    predicted = run('redis_queue', args, check=True)
    assert predicted['changed'] is True
    assert predicted['group']['created'] is True
    assert redis_server.client().exists(STREAM) == 0
    assert not creds.parent.exists()

    assert run('redis_queue', args)['changed'] is True
    again = run('redis_queue', args, check=True)
    assert again['changed'] is False, again
    assert again['group']['created'] is False


def test_existing_group_is_not_moved_and_other_start_id(run, redis_server):
    client = redis_server.client()
    fill(client, 3)
    result = run('redis_queue', redis_server.login(start_id='0', consumer_group='replay'))
    assert result['changed'] is True
    info = {g['name']: g for g in client.xinfo_groups(STREAM)}
    # Started at 0: the three existing entries are still to be delivered.
    assert info['replay']['last-delivered-id'] == '0-0'
    assert info['replay']['lag'] == 3
    client.xreadgroup('replay', 'w1', {STREAM: '>'}, count=1)
    assert run('redis_queue', redis_server.login(start_id='$', consumer_group='replay'))['changed'] is False
    assert client.xinfo_groups(STREAM)[0]['pending'] == 1


def test_wrong_password_fails_clearly_and_changes_nothing(run, redis_server):
    result = run('redis_queue', redis_server.login(login_password='not-the-password', wait_timeout=5))
    assert result.get('failed') is True
    assert 'rejected the login' in result['msg']
    assert 'not-the-password' not in result.output
    assert redis_server.client().exists(STREAM) == 0


def test_acl_user(run, redis_server, tmp_path):
    creds = tmp_path / 'creds.json'
    args = dict(login_host='127.0.0.1', login_port=redis_server.port, login_user=ACL_USER,
                login_password=redis_server.acl_password, credentials_path=str(creds))
    assert run('redis_queue', args)['changed'] is True
    assert group_names(redis_server.client()) == [GROUP]
    content = json.loads(creds.read_text())
    assert content['username'] == ACL_USER
    assert content['password'] == redis_server.acl_password
    # The ACL user may not run CONFIG: the approximate trim threshold falls back to Redis' default.
    fill(redis_server.client(), 250)
    trimmed = run('redis_queue', dict(args, max_length=100))
    assert trimmed['changed'] is True
    assert 100 <= redis_server.client().xlen(STREAM) < 250


@pytest.mark.parametrize('ca', ['ca_certs', 'ca_data', 'no validation'])
def test_tls(run, redis_server, tmp_path, ca):
    creds = tmp_path / 'redis-credentials.json'
    args = dict(login_host='localhost', login_port=redis_server.tls_port, login_password=redis_server.password,
                tls=True, validate_certs=ca != 'no validation', client_cert_file=redis_server.certs['client.crt'],
                client_key_file=redis_server.certs['client.key'], credentials_path=str(creds))
    if ca == 'ca_certs':
        args['ca_certs'] = redis_server.certs['ca.crt']
    elif ca == 'ca_data':
        with open(redis_server.certs['ca.crt']) as f:
            args['ca_data'] = f.read()
    assert run('redis_queue', args)['changed'] is True
    assert group_names(redis_server.client()) == [GROUP]
    # Workers must use TLS too: the credentials file says so.
    assert json.loads(creds.read_text())['tls'] is True


def test_tls_with_unknown_ca_fails_when_validating(run, redis_server):
    args = dict(login_host='localhost', login_port=redis_server.tls_port, login_password=redis_server.password,
                tls=True)
    result = run('redis_queue', args)
    assert result.get('failed') is True
    assert 'certificate verify failed' in result['msg']
    assert redis_server.client().exists(STREAM) == 0


def test_tls_options_need_tls(run, redis_server):
    result = run('redis_queue', redis_server.login(ca_certs=redis_server.certs['ca.crt']))
    assert result.get('failed') is True
    assert 'only apply with tls=true' in result['msg']
    result = run('redis_queue', redis_server.login(tls=True, ca_certs=redis_server.certs['ca.crt'], ca_data='x'))
    assert result.get('failed') is True
    assert 'mutually exclusive' in result['msg']
    assert redis_server.client().exists(STREAM) == 0


def test_key_of_another_type_is_an_error_and_left_untouched(run, redis_server):
    client = redis_server.client()
    client.set(STREAM, 'precious')
    result = run('redis_queue', redis_server.login())
    assert result.get('failed') is True
    assert 'holds a string, not a stream' in result['msg']
    assert client.get(STREAM) == 'precious'


def test_waits_for_redis_that_starts_later(run, unstarted_redis):
    starter = threading.Timer(4, unstarted_redis.start)
    starter.start()
    began = time.monotonic()
    try:
        result = run('redis_queue', unstarted_redis.login(wait_timeout=30))
    finally:
        starter.join()
    assert result['changed'] is True, result
    assert time.monotonic() - began >= 4
    assert group_names(unstarted_redis.client()) == [GROUP]


def test_redis_never_up_fails_after_wait_timeout(run, unstarted_redis):
    began = time.monotonic()
    result = run('redis_queue', unstarted_redis.login(wait_timeout=3))
    assert result.get('failed') is True
    assert 'did not answer PING within 3 seconds' in result['msg']
    assert 'Connection refused' in result['msg']
    assert result['attempts'] >= 3
    assert time.monotonic() - began >= 3


def test_approximate_trim_keeps_the_stream_near_max_length(run, redis_server):
    client = redis_server.client()
    run('redis_queue', redis_server.login())
    fill(client, 1000)
    args = redis_server.login(max_length=300)

    predicted = run('redis_queue', args, check=True)
    assert predicted['changed'] is True
    assert predicted['commands'] == ['XTRIM raibid:jobs MAXLEN ~ 300']
    assert client.xlen(STREAM) == 1000

    trimmed = run('redis_queue', args)
    length = client.xlen(STREAM)
    assert trimmed['changed'] is True
    assert 300 <= length <= 400
    assert trimmed['trimmed'] == 1000 - length
    assert trimmed['stream']['length'] == length
    # The oldest entries went.
    assert client.xrange(STREAM, count=1)[0][1]['job_id'] == str(1000 - length)

    assert run('redis_queue', args, check=True)['changed'] is False
    assert run('redis_queue', args)['changed'] is False
    assert client.xlen(STREAM) == length


def test_exact_trim_and_no_trim(run, redis_server):
    client = redis_server.client()
    fill(client, 150)
    assert run('redis_queue', redis_server.login(max_length=0))['trimmed'] == 0
    assert client.xlen(STREAM) == 150
    result = run('redis_queue', redis_server.login(max_length=100, trim_mode='exact'))
    assert result['trimmed'] == 50
    assert client.xlen(STREAM) == 100
    assert run('redis_queue', redis_server.login(max_length=100, trim_mode='exact'))['changed'] is False


def test_credentials_file(run, redis_server, tmp_path):
    creds = tmp_path / 'home' / '.raibid' / 'redis-credentials.json'
    args = redis_server.login(
        credentials_path=str(creds),
        credentials_host='raibid-redis-master.raibid-redis.svc.cluster.local',
        credentials_port=6379,
        credentials_namespace='raibid-redis',
    )
    result = run('redis_queue', args, diff=True)
    assert result['changed'] is True
    assert result['credentials_path'] == str(creds)
    assert mode(creds) == 0o600
    assert mode(creds.parent) == 0o700
    assert json.loads(creds.read_text()) == {
        'host': 'raibid-redis-master.raibid-redis.svc.cluster.local',
        'port': 6379,
        'password': redis_server.password,
        'namespace': 'raibid-redis',
        'stream': STREAM,
        'consumer_group': GROUP,
    }
    # The diff shows the file with the password masked; nothing returns the password.
    assert result['diff']['after']['credentials']['password'] == '********'
    assert redis_server.password not in json.dumps(result)
    assert not [p for p in creds.parent.iterdir() if p.name != creds.name], 'temporary file left behind'

    assert run('redis_queue', args)['changed'] is False

    # A file made readable by others is put back to 0600, and that is a change.
    creds.chmod(0o644)
    assert run('redis_queue', args)['changed'] is True
    assert mode(creds) == 0o600

    # A new password (rotation) rewrites the file.
    redis_server.client().config_set('requirepass', 'rotated-password')
    redis_server.password = 'rotated-password'
    rotated = run('redis_queue', dict(args, login_password='rotated-password'), diff=True)
    assert rotated['changed'] is True
    assert json.loads(creds.read_text())['password'] == 'rotated-password'


def test_credentials_extra_keys(run, redis_server, tmp_path):
    creds = tmp_path / 'redis-credentials.json'
    extra = {'sentinel_port': 26379, 'sentinel_master_set': 'mymaster'}
    args = redis_server.login(credentials_path=str(creds), credentials_extra=extra)
    assert run('redis_queue', args)['changed'] is True
    content = json.loads(creds.read_text())
    assert content['sentinel_port'] == 26379 and content['sentinel_master_set'] == 'mymaster'
    assert content['password'] == redis_server.password
    assert run('redis_queue', args)['changed'] is False

    # The standard keys cannot be replaced, and nothing changes when that is asked.
    clash = run('redis_queue', dict(args, credentials_extra={'password': 'x', 'host': 'y'}))
    assert clash.get('failed') is True
    assert clash['msg'] == 'credentials_extra cannot replace the keys host, password.'
    assert json.loads(creds.read_text()) == content


def test_unwritable_credentials_directory_fails_before_any_change(run, redis_server, tmp_path):
    readonly = tmp_path / 'readonly'
    readonly.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(readonly)], check=True)
    try:
        result = run('redis_queue', redis_server.login(credentials_path=str(readonly / '.raibid' / 'c.json')))
    finally:
        subprocess.run(['umount', str(readonly)], check=True)
    assert result.get('failed') is True
    assert 'is not writable' in result['msg']
    assert redis_server.client().exists(STREAM) == 0

    a_file = tmp_path / 'a-file'
    a_file.write_text('')
    result = run('redis_queue', redis_server.login(credentials_path=str(a_file / 'c.json')))
    assert result.get('failed') is True
    assert 'is not a directory' in result['msg']
    assert redis_server.client().exists(STREAM) == 0


def test_state_absent(run, redis_server, tmp_path):
    client = redis_server.client()
    creds = tmp_path / 'creds.json'
    run('redis_queue', redis_server.login(credentials_path=str(creds)))
    fill(client, 5)

    predicted = run('redis_queue', redis_server.login(state='absent', credentials_path=str(creds)), check=True)
    assert predicted['changed'] is True
    assert group_names(client) == [GROUP] and creds.exists()

    removed = run('redis_queue', redis_server.login(state='absent', credentials_path=str(creds)))
    assert removed['changed'] is True
    assert removed['commands'] == ['XGROUP DESTROY raibid:jobs raibid-workers']
    assert group_names(client) == []
    assert client.xlen(STREAM) == 5, 'the jobs are kept unless delete_stream is set'
    assert not creds.exists()
    assert run('redis_queue', redis_server.login(state='absent'))['changed'] is False

    deleted = run('redis_queue', redis_server.login(state='absent', delete_stream=True))
    assert deleted['changed'] is True
    assert client.exists(STREAM) == 0
    assert run('redis_queue', redis_server.login(state='absent', delete_stream=True))['changed'] is False


def test_module_defaults_group(run, redis_server):
    defaults = {'group/raibid.queue.redis': redis_server.login()}
    assert run('redis_queue', {'max_length': 50}, module_defaults=defaults)['changed'] is True
    assert group_names(redis_server.client()) == [GROUP]


def test_password_never_printed_even_with_vvv(run, redis_server, tmp_path):
    creds = tmp_path / 'creds.json'
    result = run('redis_queue', redis_server.login(credentials_path=str(creds)), diff=True, verbosity=3)
    assert result['rc'] == 0, result.output
    assert 'changed=1' in result.output
    assert redis_server.password not in result.output
    failed = run('redis_queue', redis_server.login(login_password='wrong-' + redis_server.password), verbosity=3)
    assert failed['rc'] != 0
    assert redis_server.password not in failed.output
