# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for pip's get-pip.py, which ansible-test downloads from a host these machines cannot reach.

ansible-test runs it inside a new, empty virtual environment with the arguments of get-pip.py
(`--disable-pip-version-check --no-setuptools --no-wheel pip==X ...`). Python's own ensurepip provides a pip,
which then installs the requested versions from the package index like get-pip.py would.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def main():
    # A child process: ensurepip turns off the pip configuration (and so a configured CA bundle) in its own process.
    subprocess.check_call([sys.executable, '-m', 'ensurepip'])
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--force-reinstall'] + args))


if __name__ == '__main__':
    main()
