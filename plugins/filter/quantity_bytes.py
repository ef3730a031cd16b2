# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: quantity_bytes
short_description: The number of bytes of a Kubernetes memory or storage quantity
version_added: 0.1.0
description:
  - Turns a Kubernetes quantity such as C(512Mi), C(8Gi), C(1.5G) or C(1000) into bytes, rounded down.
  - Binary suffixes C(Ki Mi Gi Ti Pi Ei) are powers of 1024, decimal ones C(k M G T P E) powers of 1000, as
    Kubernetes reads them (unlike P(ansible.builtin.human_to_bytes#filter), where C(M) is 1024 * 1024).
  - Exponents (C(1e3)) and milli-units are not accepted.
author:
  - raibid maintainers (@raibid)
options:
  _input:
    description: The quantity.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: The memory limit in bytes
  ansible.builtin.debug:
    msg: "{{ '512Mi' | raibid.queue.quantity_bytes }}"  # 536870912
'''

RETURN = r'''
_value:
  description: The number of bytes.
  type: int
  sample: 536870912
'''

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_QUANTITY = re.compile(r'^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')
_FACTORS = dict([(suffix, 1024 ** power) for power, suffix in enumerate(('Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'), 1)]
                + [(suffix, 1000 ** power) for power, suffix in enumerate(('k', 'M', 'G', 'T', 'P', 'E'), 1)])


def quantity_bytes(quantity):
    match = _QUANTITY.match(to_text(quantity).strip())
    if not match:
        raise AnsibleFilterError("quantity_bytes: '%s' is not a Kubernetes quantity such as 512Mi or 8Gi" % quantity)
    number, suffix = match.groups()
    factor = _FACTORS[suffix] if suffix else 1
    # Whole numbers stay exact however large (8Ei); only a fraction goes through float.
    if '.' not in number:
        return int(number) * factor
    return int(float(number) * factor)


class FilterModule(object):

    def filters(self):
        return {'quantity_bytes': quantity_bytes}
