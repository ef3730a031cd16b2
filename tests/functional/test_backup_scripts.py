# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup Job's and the restore pod's scripts (roles/redis/files/backup.sh, restore.sh) against a real
redis-server (AOF on, as the chart runs it): snapshots over TLS, keep N, a failed check or login leaves no file;
Redis with appendonly yes ignores a lone RDB (the reason restore.sh exists), and restore.sh turns the snapshot into
the AOF that Redis then loads, with the group's last-delivered ID and pending entries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import RedisServer

FILES = Path(__file__).resolve().parents[2] / 'roles' / 'redis' / 'files'
STREAM, GROUP = 'raibid:jobs', 'raibid-workers'


def backup(server, directory, keep=2, password=None, path=None):
    env = dict(os.environ, BACKUP_DIR=str(directory), REDIS_HOST='127.0.0.1', REDIS_PORT=str(server.tls_port),
               REDIS_TLS='yes', REDIS_CA=str(server.certs['ca.crt']), BACKUP_KEEP=str(keep),
               REDISCLI_AUTH=password or server.password)
    if path:
        env['PATH'] = '%s:%s' % (path, env['PATH'])
    return subprocess.run(['bash', str(FILES / 'backup.sh')], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def queue(server):
    client = server.client()
    for i in range(1, 6):
        client.xadd(STREAM, {'job_id': 'j-%d' % i, 'job_type': 'build', 'payload': '{}'})
    client.xgroup_create(STREAM, GROUP, id='0')
    client.xreadgroup(GROUP, 'worker-1', {STREAM: '>'}, count=2)


def state(server):
    client = server.client()
    group = client.xinfo_groups(STREAM)[0]
    pending = [(p['message_id'], p['consumer']) for p in client.xpending_range(STREAM, GROUP, '-', '+', 100)]
    return client.xrange(STREAM), group['last-delivered-id'], pending


def test_backup_keeps_the_newest_verified_snapshots_and_fails_cleanly(tmp_path, certs):
    server = RedisServer(tmp_path / 'redis', certs).start()
    try:
        queue(server)
        out = tmp_path / 'backups'
        out.mkdir()
        for dummy in range(3):
            proc = backup(server, out)
            assert proc.returncode == 0, proc.stderr
            assert 'RDB looks OK' in proc.stdout and server.password not in proc.stdout + proc.stderr
            # One snapshot a second at most: names carry the second.
            subprocess.run(['sleep', '1.1'], check=True)
        kept = sorted(p.name for p in out.iterdir())
        assert len(kept) == 2 and all(n.startswith('dump-') and n.endswith('.rdb') for n in kept), kept

        # A snapshot that fails redis-check-rdb is deleted and fails the Job; the older ones stay.
        fake = tmp_path / 'bin'
        fake.mkdir()
        (fake / 'redis-check-rdb').write_text('#!/bin/sh\necho "--- RDB ERROR DETECTED ---"\nexit 1\n')
        (fake / 'redis-check-rdb').chmod(0o755)
        proc = backup(server, out, path=fake)
        assert proc.returncode == 1 and 'failed redis-check-rdb' in proc.stderr
        assert sorted(p.name for p in out.iterdir()) == kept

        # A wrong password: no snapshot, a failed Job.
        proc = backup(server, out, password='wrong')
        assert proc.returncode != 0 and sorted(p.name for p in out.iterdir()) == kept
    finally:
        server.stop()


def test_restore_script_turns_the_snapshot_into_the_aof_redis_loads(tmp_path, certs):
    server = RedisServer(tmp_path / 'redis', certs).start()
    try:
        queue(server)
        before = state(server)
        assert before[2]
        out = tmp_path / 'backups'
        out.mkdir()
        assert backup(server, out).returncode == 0
        snapshot = next(out.iterdir()).read_bytes()
    finally:
        server.stop()

    # Measured: with appendonly yes, an RDB without an AOF is ignored and Redis starts empty.
    lone = RedisServer(tmp_path / 'lone', certs)
    (tmp_path / 'lone' / 'dump.rdb').write_bytes(snapshot)
    lone.start()
    try:
        assert lone.client().dbsize() == 0
    finally:
        lone.stop()

    data = tmp_path / 'data'
    data.mkdir()
    (data / 'restore.rdb').write_bytes(snapshot)
    proc = subprocess.run(['bash', str(FILES / 'restore.sh')], env=dict(os.environ, DATA_DIR=str(data)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Loaded: 1 keys.' in proc.stdout and 'appendonly.aof.1.base.rdb' in proc.stdout
    assert sorted(p.name for p in data.iterdir()) == ['appendonlydir']

    restored = RedisServer(data, certs).start()
    try:
        assert state(restored) == before
        # A second run refuses a volume that holds data.
        proc = subprocess.run(['bash', str(FILES / 'restore.sh')], env=dict(os.environ, DATA_DIR=str(data)),
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 1 and 'appendonlydir exists' in proc.stderr
    finally:
        restored.stop()
