# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: collection_version
short_description: The version of an installed collection, as this controller loads it
version_added: 0.1.0
description:
  - Returns the version of each named collection from the copy that this controller would use
    (the same search as for its modules), read from its C(MANIFEST.json), or from C(galaxy.yml) for a source checkout.
  - An empty string stands for a collection that is not installed or has no version.
  - The role M(raibid.queue.redis) uses it to refuse Helm 4 with a kubernetes.core older than 6.4.0.
author:
  - raibid maintainers (@raibid)
options:
  _terms:
    description: Collection names, C(namespace.name).
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Show the kubernetes.core version in use
  ansible.builtin.debug:
    msg: "{{ lookup('raibid.queue.collection_version', 'kubernetes.core') }}"
'''

RETURN = r'''
_raw:
  description: One version per collection name, an empty string when not found.
  type: list
  elements: str
'''

import importlib
import json
import os
import re

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

_NAME = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+$')
_GALAXY_VERSION = re.compile(r'^version:\s*["\']?([^"\'\s#]+)', re.MULTILINE)


def collection_path(name):
    """The directory the collection loader resolves namespace.name to, or None."""
    try:
        package = importlib.import_module('ansible_collections.%s' % name)
    except ImportError:
        return None
    paths = list(getattr(package, '__path__', []))
    return paths[0] if paths else None


def collection_version(name):
    path = collection_path(name)
    if not path:
        return ''
    manifest = os.path.join(path, 'MANIFEST.json')
    if os.path.isfile(manifest):
        with open(manifest, 'rb') as handle:
            try:
                return str(json.load(handle).get('collection_info', {}).get('version') or '')
            except ValueError:
                return ''
    galaxy = os.path.join(path, 'galaxy.yml')
    if os.path.isfile(galaxy):
        with open(galaxy) as handle:
            match = _GALAXY_VERSION.search(handle.read())
        return match.group(1) if match else ''
    return ''


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        versions = []
        for term in terms:
            if not isinstance(term, str) or not _NAME.match(term):
                raise AnsibleLookupError('%r is not a collection name such as kubernetes.core' % (term,))
            versions.append(collection_version(term))
        return versions
