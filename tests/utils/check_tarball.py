# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lists a built collection tarball and fails on any file outside the product's allowlist.

The tarball is what Galaxy users install: the modules, the role, the playbooks and their metadata, and
nothing of the proving ground (testbed, tests, molecule, development files).
"""

from __future__ import annotations

import fnmatch
import sys
import tarfile

ALLOWED = (
    'MANIFEST.json', 'FILES.json', 'README.md', 'COPYING', 'requirements.txt', 'requirements.yml', 'bindep.txt',
    'meta/runtime.yml', 'meta/execution-environment.yml',
    'changelogs/changelog.yaml', 'changelogs/config.yaml', 'changelogs/fragments/*.yml',
    'plugins/modules/*.py', 'plugins/module_utils/*.py', 'plugins/doc_fragments/*.py', 'plugins/lookup/*.py',
    'plugins/filter/*.py',
    'roles/redis/README.md', 'roles/redis/*/*.yml', 'roles/redis/templates/*.j2', 'roles/redis/files/*.json',
    # The scripts of the backup Job and the restore pod.
    'roles/redis/files/*.sh',
    'playbooks/*.yml',
    # User documentation beyond the README (Galaxy shows docs/*.md).
    'docs/*.md',
)


def main(path):
    with tarfile.open(path) as tar:
        files = sorted(m.name for m in tar.getmembers() if m.isfile())
    outside = [f for f in files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in ALLOWED)]
    for name in files:
        print('  %s%s' % (name, '   <- not part of the product' if name in outside else ''))
    print('%s: %d files, %d outside the allowlist' % (path, len(files), len(outside)))
    return 1 if outside else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
