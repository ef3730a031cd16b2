# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the build context `ansible-builder create -f execution-environment.yml` wrote.

Building the image needs a container engine; what can be checked without one: the context carries this
collection's tarball and kubernetes.core, builds helm, and ansible-builder's own introspection finds the Python
requirements of the installed collection (what the image would pip-install).
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import yaml


def main(context, tarball, collections):
    context = Path(context)
    failures = []
    requirements = yaml.safe_load((context / '_build/requirements.yml').read_text())
    names = [c['name'] for c in requirements['collections']]
    if 'kubernetes.core' not in names:
        failures.append('kubernetes.core is not in the EE requirements: %s' % names)
    shipped = context / '_build/collections' / Path(tarball).name
    if not shipped.is_file() or not filecmp.cmp(shipped, tarball, shallow=False):
        failures.append('%s is not the tarball just built' % shipped)
    if '/build/collections/%s' % Path(tarball).name not in names:
        failures.append('the EE requirements do not install the shipped tarball: %s' % names)
    containerfile = (context / 'Dockerfile').read_text()
    if 'helm.sh/helm/v3/cmd/helm@' not in containerfile or 'helm version' not in containerfile:
        failures.append('the Containerfile does not build and check helm')
    introspected = yaml.safe_load(subprocess.run(
        [sys.executable, str(context / '_build/scripts/introspect.py'), 'introspect', collections],
        check=True, capture_output=True, text=True).stdout)
    python = ' '.join(introspected['python'] or [])
    for package in ('redis', 'kubernetes'):
        if '%s>=' % package not in python:
            failures.append('introspection does not find %s in the collection: %s' % (package, python))
    for failure in failures:
        print('EE context: ' + failure)
    if not failures:
        print('EE context %s: collection tarball, kubernetes.core, helm and Python requirements (%s) present'
              % (context, python))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
