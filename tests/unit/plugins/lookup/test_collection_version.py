# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection_version lookup: MANIFEST.json, galaxy.yml of a checkout, a missing collection, a bad name."""

from __future__ import annotations

import json
import re

import pytest

from ansible.errors import AnsibleLookupError
from ansible_collections.raibid.queue.plugins.lookup import collection_version as plugin


@pytest.fixture
def lookup():
    # set_options needs the plugin's documented options; none are used beyond the terms.
    module = plugin.LookupModule()
    module.set_options = lambda *args, **kwargs: None
    return module


def test_manifest(tmp_path, monkeypatch, lookup):
    (tmp_path / 'MANIFEST.json').write_text(json.dumps({'collection_info': {'version': '6.2.0'}}))
    monkeypatch.setattr(plugin, 'collection_path', lambda name: str(tmp_path))
    assert lookup.run(['kubernetes.core']) == ['6.2.0']


def test_galaxy_yml_of_a_checkout(tmp_path, monkeypatch, lookup):
    (tmp_path / 'galaxy.yml').write_text('namespace: kubernetes\nname: core\nversion: "6.6.0"  # next\n')
    monkeypatch.setattr(plugin, 'collection_path', lambda name: str(tmp_path))
    assert lookup.run(['kubernetes.core']) == ['6.6.0']


def test_broken_manifest_is_no_version(tmp_path, monkeypatch, lookup):
    (tmp_path / 'MANIFEST.json').write_text('{not json')
    monkeypatch.setattr(plugin, 'collection_path', lambda name: str(tmp_path))
    assert lookup.run(['kubernetes.core']) == ['']


def test_missing_collection(lookup):
    assert lookup.run(['nosuch.collection']) == ['']


def test_bad_name(lookup):
    with pytest.raises(AnsibleLookupError, match='not a collection name'):
        lookup.run(['kubernetes'])


def test_installed_kubernetes_core(lookup):
    # The copy the test environment really has (6.2.0 with ansible 12.3.0, 6.6.0 with ansible 14.5.0).
    version, = lookup.run(['kubernetes.core'])
    assert re.match(r'^6\.[0-9]+\.[0-9]+$', version)
