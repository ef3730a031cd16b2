# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of kube_objects_info's paths and its reading of 404 answers; the module against a real API server is
tested in tests/testbed/test_kube_objects_info.py."""

from __future__ import annotations

import pytest

from ansible_collections.raibid.queue.plugins.modules import kube_objects_info


def entry(**kwargs):
    return dict(dict(api_version='v1', namespace=None, name=None, label_selectors=[]), **kwargs)


@pytest.mark.parametrize('kwargs, path', [
    (dict(resource='namespaces', name='q'), '/api/v1/namespaces/q'),
    (dict(resource='secrets', namespace='q', name='s'), '/api/v1/namespaces/q/secrets/s'),
    (dict(api_version='apps/v1', resource='statefulsets', namespace='q', name='m'),
     '/apis/apps/v1/namespaces/q/statefulsets/m'),
    (dict(resource='persistentvolumeclaims', namespace='q'), '/api/v1/namespaces/q/persistentvolumeclaims'),
    (dict(api_version='storage.k8s.io/v1', resource='storageclasses'), '/apis/storage.k8s.io/v1/storageclasses'),
])
def test_object_path(kwargs, path):
    assert kube_objects_info.object_path(entry(**kwargs)) == path


@pytest.mark.parametrize('body, missing_object', [
    ('{"kind":"Status","reason":"NotFound","details":{"name":"s","kind":"secrets"}}', True),
    # A group the API server does not serve, or a resource it does not know.
    ('404 page not found\n', False),
    ('{"kind":"Status","reason":"NotFound","details":{}}', False),
    ('{"kind":"Status","reason":"NotFound"}', False),
    (None, False),
    ('[]', False),
])
def test_a_404_for_the_object_or_for_its_type(body, missing_object):
    assert kube_objects_info.is_missing_object(body) is missing_object
