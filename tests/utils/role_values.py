# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Helm values the raibid.queue.redis role gives the chart, rendered from the role itself.

render_role_values(**role_vars) renders roles/redis/templates/values.yaml.j2 with Ansible's own templating (the
template module of the ansible in this Python's virtualenv), the role's defaults and vars, and role_vars over
them: tests of the chart then see exactly what the role would install, and cannot drift from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "redis"
# tasks/password.yml sets it during a run; a fixed one here.
PASSWORD = "p" * 32


def render_role_values(**role_vars):
    """The values dict the role would pass to kubernetes.core.helm for these role variables."""
    role_vars = {"_raibid_redis_password": PASSWORD, **role_vars}
    ansible = Path(sys.executable).parent / "ansible"
    with tempfile.TemporaryDirectory() as tmp:
        overrides, rendered = Path(tmp) / "role-vars.json", Path(tmp) / "values.yaml"
        overrides.write_text(json.dumps(role_vars))
        # Extra vars, later files over earlier ones: defaults, then vars/main.yml, then the test's variables.
        res = subprocess.run(
            [str(ansible), "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.template",
             "-a", f"src={ROLE / 'templates' / 'values.yaml.j2'} dest={rendered} mode=0600",
             "-e", f"@{ROLE / 'defaults' / 'main.yml'}", "-e", f"@{ROLE / 'vars' / 'main.yml'}",
             "-e", f"@{overrides}", "-e", f"ansible_python_interpreter={sys.executable}"],
            capture_output=True, text=True, timeout=120, check=False,
            env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0"))
        assert res.returncode == 0, f"rendering values.yaml.j2 failed:\n{res.stdout}\n{res.stderr}"
        return yaml.safe_load(rendered.read_text())
