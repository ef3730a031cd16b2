#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: kube_objects_info
short_description: Read several Kubernetes objects in one module run
version_added: 0.1.0
description:
  - Reads Kubernetes objects by name, or lists them by label, through the Kubernetes API, all in one module run.
    Each C(kubernetes.core.k8s_info) task costs a process start and the import of the kubernetes library; reading
    what a role needs to know before it changes anything in one task costs that once.
  - Each object's result has the shape of C(kubernetes.core.k8s_info)'s result, C(resources) and C(api_found), so
    that tasks written against one read the other.
  - A missing object, or objects in a namespace that does not exist, are no error (RV(objects.resources=[])); an
    unknown resource type neither (RV(objects.api_found=false)). Changes nothing.
author:
  - raibid maintainers (@raibid)
extends_documentation_fragment:
  - raibid.queue._attributes.info_module
options:
  objects:
    description:
      - What to read. Each entry is one GET request, in the order given.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description:
          - The key of this entry in RV(objects), chosen by the caller.
        type: str
        required: true
      api_version:
        description:
          - API group and version, V(v1) for the core group, for example V(apps/v1).
        type: str
        default: v1
      resource:
        description:
          - The resource as it appears in API paths, the plural in lower case, for example V(statefulsets) (see
            C(kubectl api-resources)).
        type: str
        required: true
      namespace:
        description:
          - Namespace of a namespaced resource; leave it out for cluster-wide ones such as V(namespaces).
        type: str
      name:
        description:
          - Name of the object. Without it, every object of the resource (in O(objects[].namespace)) is listed.
        type: str
      label_selectors:
        description:
          - Label selectors of a list, for example V(app.kubernetes.io/instance=raibid-redis); all must match.
        type: list
        elements: str
        default: []
  kubeconfig:
    description:
      - Path of the kubeconfig. Without it, E(KUBECONFIG) or C(~/.kube/config); inside a pod without either, the
        pod's service account.
    type: path
  context:
    description:
      - Context of the kubeconfig to use; its current context when left out.
    type: str
requirements:
  - kubernetes >= 24.2.0
notes:
  - Secrets come back with their data, as from C(kubernetes.core.k8s_info), so a task that reads one needs C(no_log).
seealso:
  - module: kubernetes.core.k8s_info
'''

EXAMPLES = r'''
- name: Read the release's objects at once
  raibid.queue.kube_objects_info:
    kubeconfig: ~/.kube/config
    objects:
      - id: namespace
        resource: namespaces
        name: raibid-redis
      - id: statefulset
        api_version: apps/v1
        resource: statefulsets
        namespace: raibid-redis
        name: raibid-redis-master
      - id: volumes
        resource: persistentvolumeclaims
        namespace: raibid-redis
        label_selectors:
          - app.kubernetes.io/instance=raibid-redis
      - id: rule
        api_version: monitoring.coreos.com/v1
        resource: prometheusrules
        namespace: raibid-redis
        name: raibid-redis-queue
  register: found

- name: Say whether the namespace and the Prometheus Operator are there
  ansible.builtin.debug:
    msg: >-
      namespace {{ 'exists' if found.objects.namespace.resources else 'is missing' }},
      PrometheusRule {{ 'known' if found.objects.rule.api_found else 'unknown' }} to this cluster
'''

RETURN = r'''
objects:
  description: The result of each entry of O(objects), by its O(objects[].id).
  returned: success
  type: dict
  contains:
    resources:
      description: The object found (one), the objects listed, or none.
      type: list
      elements: dict
      sample: [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "raibid-redis"}}]
    api_found:
      description: Whether the cluster knows the resource type (false, for example, without the CRD of a custom resource).
      type: bool
      sample: true
'''

import json
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.raibid.queue.plugins.module_utils import _kube_forward


def object_path(entry):
    """The API path of a named object, or of the collection to list."""
    group = '/api/v1' if entry['api_version'] == 'v1' else '/apis/' + entry['api_version']
    namespace = '/namespaces/%s' % entry['namespace'] if entry['namespace'] else ''
    name = '/' + entry['name'] if entry['name'] else ''
    return '%s%s/%s%s' % (group, namespace, entry['resource'], name)


def is_missing_object(body):
    """Whether a 404's body is about the object itself (a Status naming it), not an unknown resource type."""
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return False
    return isinstance(status, dict) and status.get('reason') == 'NotFound' and bool((status.get('details') or {}).get('name'))


def get(api_client, path, query):
    """(HTTP status, body) of a GET through either generation of the kubernetes client's ApiClient."""
    headers = {'Accept': 'application/json'}
    if hasattr(api_client, 'param_serialize'):
        # kubernetes 35 and later: serialize (auth, query), then send; any status comes back.
        response = api_client.call_api(*api_client.param_serialize('GET', path, query_params=query, header_params=headers,
                                                                   auth_settings=['BearerToken']))
        response.read()
        return response.status, response.data
    try:
        response = api_client.call_api(path, 'GET', query_params=query, header_params=headers,
                                       auth_settings=['BearerToken'], _return_http_data_only=True,
                                       _preload_content=False)
    except _kube_forward.kube_client.exceptions.ApiException as e:
        return e.status, e.body
    return response.status, response.data


def read(api_client, entry):
    """One entry's result: {'resources': [...], 'api_found': bool}."""
    query = [('labelSelector', ','.join(entry['label_selectors']))] if entry['label_selectors'] else []
    status, body = get(api_client, object_path(entry), query)
    if status == 404:
        return dict(resources=[], api_found=bool(entry['name']) and is_missing_object(body))
    if not 200 <= status <= 299:
        raise RuntimeError('HTTP %d %s' % (status, body.decode('utf-8', 'replace') if isinstance(body, bytes) else body))
    found = json.loads(body)
    return dict(resources=[found] if entry['name'] else found.get('items') or [], api_found=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            objects=dict(type='list', elements='dict', required=True, options=dict(
                id=dict(type='str', required=True),
                api_version=dict(type='str', default='v1'),
                resource=dict(type='str', required=True),
                namespace=dict(type='str'),
                name=dict(type='str'),
                label_selectors=dict(type='list', elements='str', default=[]),
            )),
            kubeconfig=dict(type='path'),
            context=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    ids = [entry['id'] for entry in module.params['objects']]
    repeated = sorted(set(i for i in ids if ids.count(i) > 1))
    if repeated:
        module.fail_json(msg='objects: each id must be unique; repeated: %s.' % ', '.join(repeated))

    import_error = _kube_forward.load_kubernetes()
    if import_error:
        module.fail_json(msg=missing_required_lib('kubernetes'), exception=import_error)
    try:
        api_client = _kube_forward.new_api_client(module.params['kubeconfig'], module.params['context'])
    except Exception as e:  # pylint: disable=broad-except
        # The kubernetes library raises many unrelated types for a bad kubeconfig or context.
        module.fail_json(msg='Cannot load the Kubernetes configuration: %s' % e, exception=traceback.format_exc())

    objects = {}
    for entry in module.params['objects']:
        try:
            objects[entry['id']] = read(api_client, entry)
        except Exception as e:  # pylint: disable=broad-except
            # An unreachable API server, a refused login, RBAC: the first failure ends the run.
            module.fail_json(msg='Cannot read %s from the Kubernetes API: %s' % (object_path(entry), e),
                             exception=traceback.format_exc())
    module.exit_json(changed=False, objects=objects)


if __name__ == '__main__':
    main()
