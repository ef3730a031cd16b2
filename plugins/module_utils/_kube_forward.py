# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

"""A port-forward to a pod through the Kubernetes API, like `kubectl port-forward`, without kubectl.

The controller usually can neither resolve nor route to cluster addresses; kubeconfig access is enough for
this. A local listener on 127.0.0.1 accepts connections and relays each one over its own port-forward
stream, so that redis-py connects to a plain host and port. Everything stops with the module process.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import select
import socket
import threading
import traceback

# The kubernetes library is imported on first use (load_kubernetes): it takes about 0.3 s to import, and only a
# port-forward or a read of the API needs it, not a module run with login_host.
kube_client = kube_config = portforward = ws_client = None

BUFFER_SIZE = 65536


def load_kubernetes():
    """Import the kubernetes library once; return None, or the traceback when it is missing."""
    global kube_client, kube_config, portforward, ws_client  # pylint: disable=global-statement
    if portforward is not None:
        return None
    try:
        from kubernetes import client
        from kubernetes import config
        from kubernetes.stream import portforward as forward
        from kubernetes.stream import ws_client as websocket_client
    except ImportError:
        return traceback.format_exc()
    kube_client, kube_config, portforward, ws_client = client, config, forward, websocket_client
    return None


def new_api_client(kubeconfig=None, context=None):
    """An ApiClient for the kubeconfig (else KUBECONFIG or ~/.kube/config); inside a pod without any of them, the
    pod's service account, as kubernetes.core does."""
    # KUBECONFIG may list several files, as kubectl reads it.
    defaults = (os.environ.get('KUBECONFIG') or os.path.expanduser('~/.kube/config')).split(os.pathsep)
    if not kubeconfig and not any(os.path.exists(path) for path in defaults) and os.environ.get('KUBERNETES_SERVICE_HOST'):
        configuration = kube_client.Configuration()
        kube_config.load_incluster_config(client_configuration=configuration)
        return kube_client.ApiClient(configuration)
    return kube_config.new_client_from_config(config_file=kubeconfig, context=context)


class PodPortForward(object):
    """Listen on 127.0.0.1:<ephemeral> and relay every connection to <pod>:<port> in <namespace>."""

    def __init__(self, pod, namespace, port, kubeconfig=None, context=None):
        self.pod = pod
        self.namespace = namespace
        self.port = port
        self.api_client = new_api_client(kubeconfig, context)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.local_port = self.listener.getsockname()[1]
        self.last_error = None
        thread = threading.Thread(target=self._accept, name='port-forward %s/%s' % (namespace, pod))
        thread.daemon = True
        thread.start()

    def _accept(self):
        # The listener lives as long as the module process: nothing closes it earlier.
        while True:
            try:
                local, dummy = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(local,))
            thread.daemon = True
            thread.start()

    def _open(self):
        """A port-forward stream to the pod's port."""
        if hasattr(self.api_client, 'param_serialize'):
            # kubernetes 35 and later: the request as CoreV1Api would make it, without importing CoreV1Api, whose
            # models take about 1 s to import.
            method, url, headers = self.api_client.param_serialize(
                'GET', '/api/v1/namespaces/{namespace}/pods/{name}/portforward',
                path_params={'namespace': self.namespace, 'name': self.pod}, query_params=[('ports', str(self.port))],
                auth_settings=['BearerToken'])[:3]
            return ws_client.portforward_call(self.api_client.configuration, method, url, headers=headers)
        api = kube_client.CoreV1Api(self.api_client)
        return portforward(api.connect_get_namespaced_pod_portforward, self.pod, self.namespace, ports=str(self.port))

    def _relay(self, local):
        forward = None
        try:
            forward = self._open()
            remote = forward.socket(self.port)
            remote.setblocking(True)
            sockets = [local, remote]
            while True:
                readable = select.select(sockets, [], [])[0]
                for source in readable:
                    data = source.recv(BUFFER_SIZE)
                    if not data:
                        self.last_error = forward.error(self.port) or self.last_error
                        return
                    (remote if source is local else local).sendall(data)
        except Exception as e:  # pylint: disable=broad-except
            # Any failure of the stream (pod not running, API refused) reaches redis-py as a closed connection;
            # the message is kept for the module's error.
            self.last_error = '%s: %s' % (type(e).__name__, e)
        finally:
            local.close()
            if forward is not None:
                forward.close()
