# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the credentials file, on real files under tmp_path."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.raibid.queue.plugins.module_utils._credentials import (
    MASK,
    MASK_CHANGED,
    CredentialsFile,
)

CONTENT = {'host': 'h', 'port': 6379, 'password': 's3cret', 'stream': 'raibid:jobs'}


class Failed(Exception):
    pass


class FakeModule:
    def fail_json(self, msg, **kwargs):
        raise Failed(msg)


def credentials(path, content=None, secret_keys=()):
    return CredentialsFile(FakeModule(), str(path), dict(CONTENT if content is None else content), secret_keys)


def preflight_error(path, state='present'):
    with pytest.raises(Failed) as e:
        credentials(path).preflight(state)
    return str(e.value)


def test_preflight_symlink(tmp_path):
    (tmp_path / 'real.json').write_text('{}')
    os.symlink(tmp_path / 'real.json', tmp_path / 'link.json')
    assert preflight_error(tmp_path / 'link.json') == (
        'credentials_path %s is a symbolic link; the module replaces the file atomically and would replace the '
        'link itself, so name the real file instead. Nothing was changed.' % (tmp_path / 'link.json'))


def test_preflight_directory(tmp_path):
    assert preflight_error(tmp_path) == 'credentials_path %s is a directory. Nothing was changed.' % tmp_path


def test_preflight_fifo(tmp_path):
    os.mkfifo(tmp_path / 'fifo')
    assert preflight_error(tmp_path / 'fifo') == (
        'credentials_path %s is not a regular file (a FIFO, socket or device). Nothing was changed.'
        % (tmp_path / 'fifo'))


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads and writes any file')
def test_preflight_unreadable(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('{}')
    path.chmod(0o200)
    assert preflight_error(path) == (
        'credentials_path %s is not readable and writable by this user. Nothing was changed.' % path)


def test_preflight_not_json(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('password=x\n')
    msg = preflight_error(path)
    assert msg.startswith('credentials_path %s does not hold JSON (' % path)
    assert msg.endswith('); move it away or fix it. Nothing was changed.')


def test_preflight_json_not_object(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('["a"]')
    assert preflight_error(path) == (
        'credentials_path %s holds JSON that is not an object (list); the credentials file is an object, so move '
        'it away or fix it. Nothing was changed.' % path)


def test_preflight_parent_not_a_directory(tmp_path):
    (tmp_path / 'file').write_text('')
    assert preflight_error(tmp_path / 'file' / 'sub' / 'c.json') == (
        'credentials_path %s cannot be created: %s is not a directory. Nothing was changed.'
        % (tmp_path / 'file' / 'sub' / 'c.json', tmp_path / 'file'))


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes any directory')
def test_preflight_unwritable_parent(tmp_path):
    parent = tmp_path / 'ro'
    parent.mkdir()
    parent.chmod(0o500)
    try:
        assert preflight_error(parent / 'new' / 'c.json') == (
            'credentials_path %s cannot be written: directory %s is not writable. Nothing was changed.'
            % (parent / 'new' / 'c.json', parent))
    finally:
        parent.chmod(0o700)


def test_preflight_missing_and_empty_files_pass(tmp_path):
    missing = credentials(tmp_path / 'a' / 'b' / 'c.json')
    missing.preflight('present')
    assert missing.before is None and missing.needs_write()
    (tmp_path / 'empty.json').write_text('\n')
    empty = credentials(tmp_path / 'empty.json')
    empty.preflight('present')
    assert empty.before is None and empty.needs_write()
    credentials(tmp_path / 'missing.json').preflight('absent')


def test_needs_write_and_changes_name_keys_and_mode_never_values(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(dict(CONTENT, password='old', extra='x')))
    path.chmod(0o644)
    cred = credentials(path)
    cred.preflight('present')
    assert cred.needs_write()
    assert cred.changes() == ['extra', 'password', 'mode']
    assert 'old' not in repr(cred.changes()) and 's3cret' not in repr(cred.changes())

    path.write_text(json.dumps(CONTENT))
    path.chmod(0o600)
    same = credentials(path)
    same.preflight('present')
    assert not same.needs_write() and same.changes() == []

    path.chmod(0o640)
    mode_only = credentials(path)
    mode_only.preflight('present')
    assert mode_only.needs_write() and mode_only.changes() == ['mode']


def test_shown_masks_secrets_and_keys_not_written(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(dict(CONTENT, password='old', api_key='k', other='mine', token='t')))
    cred = credentials(path, dict(CONTENT, token='t', user_key='u'), secret_keys=['user_key'])
    cred.preflight('present')
    assert cred.shown_before() == dict(host='h', port=6379, stream='raibid:jobs', password=MASK, api_key=MASK,
                                       other=MASK, token=MASK)
    assert cred.shown_after() == dict(host='h', port=6379, stream='raibid:jobs', password=MASK_CHANGED,
                                      token=MASK, user_key=MASK)
    assert credentials(tmp_path / 'new.json').shown_before() is None


def test_shown_after_keeps_a_null_secret(tmp_path):
    cred = credentials(tmp_path / 'c.json', dict(CONTENT, password=None))
    cred.preflight('present')
    assert cred.shown_after()['password'] is None


def test_write_modes_whatever_the_umask(tmp_path):
    path = tmp_path / 'a' / 'b' / 'c.json'
    cred = credentials(path)
    cred.preflight('present')
    old = os.umask(0o000)
    try:
        assert cred.write() is None
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == CONTENT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / 'a').stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / 'a' / 'b').stat().st_mode) == 0o700
    assert sorted(os.listdir(tmp_path / 'a' / 'b')) == ['c.json']


def test_write_replaces_mode_of_existing_file(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('{}')
    path.chmod(0o644)
    cred = credentials(path)
    cred.preflight('present')
    assert cred.write() is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_failure_leaves_no_temp_file(tmp_path):
    # Made a directory after the preflight: os.replace cannot put a file over it.
    path = tmp_path / 'c.json'
    cred = credentials(path)
    cred.preflight('present')
    path.mkdir()
    (path / 'keep').write_text('')
    error = cred.write()
    assert error.startswith('Cannot write the credentials file %s: ' % path)
    assert 's3cret' not in error
    assert sorted(os.listdir(tmp_path)) == ['c.json']


def test_remove(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('{}')
    cred = credentials(path)
    assert cred.remove() is None
    assert not path.exists()
    assert cred.remove() is None


def test_remove_failure_is_reported(tmp_path):
    path = tmp_path / 'c.json'
    path.mkdir()
    assert credentials(path).remove().startswith('Cannot remove the credentials file %s: ' % path)
