# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter raibid.queue.redis_url (rendered by ansible-playbook in tests/functional/test_redis_url.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.raibid.queue.plugins.filter.redis_url import FilterModule
from ansible_collections.raibid.queue.plugins.module_utils._url import redis_url

FILTER = FilterModule().filters()['redis_url']


def test_same_url_as_the_module_utils():
    assert FILTER('h.svc', 6379, 'p@ss:/%#?ü', tls='yes') == redis_url('h.svc', 6379, 'p@ss:/%#?ü', tls=True)
    assert FILTER('h.svc', '6379', 'pw', username='u', tls=False) == redis_url('h.svc', 6379, 'pw', username='u')


def test_no_password():
    assert FILTER('h', 6379, '') == FILTER('h', 6379, None) == 'redis://h:6379'


@pytest.mark.parametrize('args,kwargs', [(('a/b', 6379, 'x'), {}), (('h', 6379, 'x'), {'tls': 'maybe'}),
                                         (('h', 'port', 'x'), {})])
def test_bad_input_is_a_clear_error(args, kwargs):
    with pytest.raises(AnsibleFilterError, match='redis_url') as e:
        FILTER(*args, **kwargs)
    assert "'x'" not in str(e.value)
