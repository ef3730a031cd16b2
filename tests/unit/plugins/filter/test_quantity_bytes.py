# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter raibid.queue.quantity_bytes (the role renders it in every run: maxmemory and the volume sizes)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.raibid.queue.plugins.filter.quantity_bytes import FilterModule

FILTER = FilterModule().filters()['quantity_bytes']


@pytest.mark.parametrize('quantity,expected', [
    ('512Mi', 512 * 1024 ** 2), ('8Gi', 8 * 1024 ** 3), ('1Ki', 1024), ('2Ei', 2 * 1024 ** 6),
    ('1k', 1000), ('384M', 384 * 10 ** 6), ('1.5G', 1500000000), ('0.5Gi', 512 * 1024 ** 2),
    ('1000', 1000), (1000, 1000), ('  1Mi ', 1048576),
])
def test_kubernetes_suffixes(quantity, expected):
    assert FILTER(quantity) == expected


@pytest.mark.parametrize('quantity', ['', 'Mi', '1MB', '1mi', '-1Mi', '1e3', '100m', '1.Mi', None])
def test_not_a_quantity_is_a_clear_error(quantity):
    with pytest.raises(AnsibleFilterError, match="quantity_bytes: .* is not a Kubernetes quantity"):
        FILTER(quantity)
