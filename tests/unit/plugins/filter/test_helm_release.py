# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter raibid.queue.helm_release, on Secrets encoded as Helm encodes them. That it reads what helm itself
reports is proven against real releases in tests/testbed/test_kube_objects_info.py."""

from __future__ import annotations

import base64
import gzip
import json

from ansible_collections.raibid.queue.plugins.filter.helm_release import FilterModule

FILTER = FilterModule().filters()['helm_release']


def secret(version, status='deployed', config=None, compress=True, kind='helm.sh/release.v1', app_version='8.2.1'):
    """A Secret as Helm 3 writes it: base64 (Kubernetes) of base64 (Helm) of the gzipped JSON record."""
    metadata = {'name': 'redis', 'version': '23.1.%d' % version}
    if app_version is not None:
        metadata['appVersion'] = app_version
    record = json.dumps({'name': 'rel', 'namespace': 'ns', 'version': version, 'config': config,
                         'info': {'status': status, 'last_deployed': '2026-12-05T05:00:0%dZ' % version},
                         'chart': {'metadata': metadata}, 'manifest': '---'}).encode()
    data = base64.b64encode(gzip.compress(record) if compress else record)
    return {'type': kind, 'metadata': {'name': 'sh.helm.release.v1.rel.v%d' % version},
            'data': {'release': base64.b64encode(data).decode()}}


def test_the_newest_revision_in_helm_info_shape():
    result = FILTER([secret(3, 'failed', {'a': 3}), secret(5, 'pending-upgrade', {'a': 5}), secret(4, config={'a': 4})])
    assert result == {'status': {
        'name': 'rel', 'namespace': 'ns', 'revision': '5', 'status': 'pending-upgrade',
        'updated': '2026-12-05T05:00:05Z', 'chart': 'redis-23.1.5', 'app_version': '8.2.1', 'values': {'a': 5}}}


def test_uncompressed_records_and_no_values_or_app_version():
    status = FILTER([secret(1, config=None, compress=False, app_version=None)])['status']
    assert (status['values'], status['app_version'], status['revision']) == ({}, '', '1')


def test_nothing_found_or_nothing_readable_is_empty():
    broken = secret(7)
    broken['data']['release'] = base64.b64encode(b'not base64 of a record').decode()
    assert FILTER([]) == {}
    assert FILTER(None) == {}
    assert FILTER([broken, secret(8, kind='Opaque'), {'type': 'helm.sh/release.v1'}]) == {}
    # The readable one wins over a newer one that cannot be read.
    assert FILTER([broken, secret(2)])['status']['revision'] == '2'
