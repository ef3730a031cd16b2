# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when a log contains the password that a test run generated, verbatim or percent-encoded as the
connection URL (fact raibid_redis_url, Secret key url) holds it.

Usage: python check_no_leak.py CANARY_FILE LOG [LOG ...]. The canary file holds the password (written by the
molecule default scenario); it is deleted afterwards either way.
"""

from __future__ import annotations

import os
import sys


def main():
    canary, logs = sys.argv[1], sys.argv[2:]
    try:
        with open(canary) as f:
            password = f.read().strip()
    except FileNotFoundError:
        print('leak check: %s is missing, so the scenario that writes it did not run' % canary)
        return 1
    os.unlink(canary)
    if len(password) < 16:
        print('leak check: the canary holds no generated password')
        return 1
    # Every UTF-8 byte as %XX, as plugins/module_utils/_url.py writes it; hex digits in either case.
    encoded = ''.join('%%%02X' % b for b in password.encode()).lower()
    leaks = []
    for log in logs:
        with open(log, errors='replace') as f:
            leaks += ['%s:%d' % (log, number) for number, line in enumerate(f, 1)
                      if password in line or encoded in line.lower()]
    if leaks:
        print('leak check: the generated password (verbatim or percent-encoded) appears in %s' % ', '.join(leaks))
        return 1
    print('leak check: the generated password appears, verbatim or percent-encoded, in none of %d logs' % len(logs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
