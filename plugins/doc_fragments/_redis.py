# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by every module (plugins/module_utils/_redis.py).
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or IP address of the Redis server to connect to.
      - This is the address the controller (or the managed node the module runs on) reaches Redis through,
        for example C(127.0.0.1) behind a C(kubectl port-forward).
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the Redis server.
    type: int
    default: 6379
  login_user:
    description:
      - ACL user name (Redis 6 or newer). When not set, the C(default) user is used.
    type: str
  login_password:
    description:
      - Password of O(login_user), or of the C(default) user (C(requirepass)) when O(login_user) is not set.
      - Never logged nor returned.
    type: str
  tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description:
      - With O(tls=true), verify the server certificate and its host name.
      - Set to V(false) only for testing with self-signed certificates.
    type: bool
    default: true
  ca_certs:
    description:
      - Path of a CA bundle used to verify the server certificate. Only with O(tls=true).
    type: path
  client_cert_file:
    description:
      - Path of a client certificate for mutual TLS. Only with O(tls=true).
    type: path
  client_key_file:
    description:
      - Path of the private key of O(client_cert_file). Only with O(tls=true).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the TCP connection and for each reply.
    type: float
    default: 5.0
  wait_timeout:
    description:
      - Seconds to keep retrying C(PING) while Redis refuses connections, times out or is still loading
        its data set, for example right after a deployment.
      - V(0) tries once. A rejected login fails at once, since waiting cannot fix it.
      - When the time has passed the module fails with the last error.
    type: int
    default: 0
  kubernetes_pod:
    description:
      - Reach Redis through a port-forward to this pod, over the Kubernetes API, like C(kubectl port-forward)
        but without kubectl. O(login_host) is then ignored and O(login_port) is the port in the pod.
      - Use it when the host that runs the module cannot route to cluster addresses; kubeconfig access is enough.
        The forward closes when the module ends.
    type: str
  kubernetes_namespace:
    description:
      - Namespace of O(kubernetes_pod).
    type: str
    default: default
  kubeconfig:
    description:
      - Kubeconfig file used with O(kubernetes_pod). Defaults to E(KUBECONFIG) or C(~/.kube/config).
    type: path
  kubernetes_context:
    description:
      - Kubeconfig context used with O(kubernetes_pod). Defaults to the current context.
    type: str
requirements:
  - redis (the redis-py Python library) 4.2 or newer, on the host that runs the module.
  - kubernetes (the Kubernetes Python client), only with O(kubernetes_pod).
notes:
  - Set these options once for every module of the collection with the action group
    C(group/raibid.queue.redis) in C(module_defaults).
'''
