# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: helm_release
short_description: A Helm release's latest revision, read from the Secrets Helm keeps it in
version_added: 0.1.0
description:
  - Helm 3 (with its default storage driver) keeps each revision of a release in a Secret of type
    C(helm.sh/release.v1), labelled C(owner=helm), C(name=<release>), C(status) and C(version). This filter takes
    such Secrets, as P(raibid.queue.kube_objects_info#module) or P(kubernetes.core.k8s_info#module) return them,
    and gives the newest revision in the shape of P(kubernetes.core.helm_info#module)'s result (without the
    manifest, notes and hooks), without running helm.
  - Secrets of other types, or whose record cannot be decoded, are ignored. An empty result means that none was
    found, for instance with another storage driver (C(HELM_DRIVER)); then ask P(kubernetes.core.helm_info#module).
author:
  - raibid maintainers (@raibid)
options:
  _input:
    description: The release's Secrets (any revisions, in any order).
    type: list
    elements: dict
    required: true
'''

EXAMPLES = r'''
- name: Read the Secrets of release raibid-redis
  raibid.queue.kube_objects_info:
    objects:
      - id: release
        resource: secrets
        namespace: raibid-redis
        label_selectors: [owner=helm, name=raibid-redis, status!=superseded]
  register: _read
  no_log: true  # the release's values

- name: The status of the latest revision
  ansible.builtin.debug:
    msg: "{{ (_read.objects.release.resources | raibid.queue.helm_release).status.status | default('not installed') }}"
'''

RETURN = r'''
_value:
  description:
    - C({}) when no revision was found, else C(status) with the newest revision as helm_info returns it.
    - C(values) are the values given to helm (helm get values), and hold any password given that way.
  type: dict
  sample:
    status:
      name: raibid-redis
      namespace: raibid-redis
      revision: '2'
      status: deployed
      chart: redis-23.1.1
      app_version: 8.2.1
      updated: '2026-12-05T05:23:10.123456789Z'
      values: {architecture: standalone}
'''

import base64
import binascii
import gzip
import json
import zlib

_RELEASE_TYPE = 'helm.sh/release.v1'
_GZIP_MAGIC = b'\x1f\x8b\x08'


def _decode(secret):
    """The release record of one Secret, or None."""
    if secret.get('type') != _RELEASE_TYPE:
        return None
    try:
        # The Secret's base64 holds Helm's own base64 of the (usually gzipped) JSON record.
        data = base64.b64decode(base64.b64decode((secret.get('data') or {})['release']))
        if data.startswith(_GZIP_MAGIC):
            data = gzip.decompress(data)
        record = json.loads(data)
    except (KeyError, TypeError, ValueError, binascii.Error, OSError, EOFError, zlib.error):
        return None
    return record if isinstance(record, dict) and isinstance(record.get('version'), int) else None


def helm_release(secrets):
    records = [record for record in (_decode(secret) for secret in secrets or []) if record]
    if not records:
        return {}
    record = max(records, key=lambda r: r['version'])
    info = record.get('info') or {}
    metadata = (record.get('chart') or {}).get('metadata') or {}
    # As helm list prints it (the revision is a string there), and helm get values.
    return {'status': {
        'name': record.get('name'),
        'namespace': record.get('namespace'),
        'revision': str(record['version']),
        'status': info.get('status'),
        'updated': info.get('last_deployed'),
        'chart': '%s-%s' % (metadata.get('name'), metadata.get('version')),
        'app_version': metadata.get('appVersion', ''),
        'values': record.get('config') or {},
    }}


class FilterModule(object):

    def filters(self):
        return {'helm_release': helm_release}
