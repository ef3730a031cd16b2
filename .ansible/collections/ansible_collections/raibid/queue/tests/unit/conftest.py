# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run modules in-process with given arguments; exit_json/fail_json become exceptions to inspect."""

from __future__ import annotations

import os
import sys

import pytest

# `make deps` links the work tree as ansible_collections/raibid/queue under this path.
for path in reversed(os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep)):
    if path and path not in sys.path:
        sys.path.insert(0, path)

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


def _exit_json(self, **result):
    raise ModuleExit(result, failed=False)


def _fail_json(self, msg, **result):
    raise ModuleExit(dict(result, msg=msg, failed=True), failed=True)


@pytest.fixture
def run_module(monkeypatch):
    """run_module(main, args, check_mode=False) -> (result dict, failed bool)."""
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _fail_json)

    def run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as exc:
                main()
        return exc.value.result, exc.value.failed

    return run
