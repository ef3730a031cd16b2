# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The proving ground's settings, one reader each, for every Python test and tool.

- harness_settings(): the build cache and the image refs, as testbed/settings.sh evaluates them (the testbed's
  own scripts read them through testbed/lib.sh, so both see the same values).
- free_port(): a TCP port on 127.0.0.1 that nothing listens on.
- stop_process(proc): ends a process the test started (SIGTERM, then SIGKILL if it lingers).
- local_redis(config): a throw-away redis-server for the benchmarks (the functional tests' fixture is richer).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def harness_settings():
    """RAIBID_CACHE, RAIBID_IMAGES_DIR, RAIBID_*_IMAGE ... as a dict (testbed/settings.sh)."""
    out = subprocess.run(["bash", str(REPO / "testbed" / "settings.sh")],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout=10):
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def local_redis(config=(), prefix='raibid-bench-'):
    """Starts redis-server on a free 127.0.0.1 port with `config` lines and a random password, in a new temporary
    directory, and waits for PING. The password is in a 0600 config file, not on the command line.
    Returns (process, workdir, port, password); stop it with stop_process()."""
    import redis  # only the benchmarks need redis-py here

    workdir, port, password = tempfile.mkdtemp(prefix=prefix), free_port(), uuid.uuid4().hex
    conf = os.path.join(workdir, 'redis.conf')
    with open(conf, 'w') as f:
        lines = list(config) + ['port %d' % port, 'bind 127.0.0.1', 'dir %s' % workdir,
                                'requirepass %s' % password, 'daemonize no']
        f.write('\n'.join(lines) + '\n')
    os.chmod(conf, 0o600)
    server = subprocess.Popen(['redis-server', conf], stdout=subprocess.DEVNULL)
    client = redis.Redis(host='127.0.0.1', port=port, password=password)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return server, workdir, port, password
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop_process(server)
                raise
            time.sleep(0.1)
        finally:
            client.close()
