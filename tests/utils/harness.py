# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The proving ground's settings, one reader each, for every Python test and tool.

- harness_settings(): the build cache and the image refs, as testbed/settings.sh evaluates them (the testbed's
  own scripts read them through testbed/lib.sh, so both see the same values).
- free_port(): a TCP port on 127.0.0.1 that nothing listens on.
- stop_process(proc): ends a process the test started (SIGTERM, then SIGKILL if it lingers).
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
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
