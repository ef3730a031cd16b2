# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

"""Connection options and helpers shared by the raibid.queue Redis modules."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import socket
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.raibid.queue.plugins.module_utils._kube_forward import (
    PodPortForward,
    load_kubernetes,
)

REDIS_IMPORT_ERROR = None
try:
    import redis
    from redis import exceptions as redis_exceptions
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    REDIS_IMPORT_ERROR = traceback.format_exc()
    redis = None
    redis_exceptions = None

# Seconds between two PING attempts while waiting for Redis.
RETRY_INTERVAL = 1.0
# The shortest socket timeout of an attempt cut short by wait_timeout, so that it can still succeed.
MIN_ATTEMPT_TIMEOUT = 0.2
# Names (keys, groups, job types and IDs) longer than this are surely a mistake.
MAX_NAME_LENGTH = 1024
# C0 and C1 control characters and DEL: a newline in a key name breaks every tool that prints it.
CONTROL_CHARACTERS = re.compile(u'[\x00-\x1f\x7f-\x9f]')
# Resolver answers that say the name does not exist, as opposed to EAI_AGAIN (try again later).
PERMANENT_DNS_ERRORS = tuple(getattr(socket, name) for name in ('EAI_NONAME', 'EAI_NODATA', 'EAI_SERVICE')
                             if hasattr(socket, name))


def redis_connection_argument_spec():
    """Connection options every module of this collection accepts (see doc fragment raibid.queue._redis)."""
    return dict(
        login_host=dict(type='str', default='localhost'),
        login_port=dict(type='int', default=6379),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        tls=dict(type='bool', default=False),
        validate_certs=dict(type='bool', default=True),
        ca_certs=dict(type='path'),
        ca_data=dict(type='str'),
        client_cert_file=dict(type='path'),
        client_key_file=dict(type='path', no_log=False),
        connect_timeout=dict(type='float', default=5.0),
        wait_timeout=dict(type='int', default=0),
        kubernetes_pod=dict(type='str'),
        kubernetes_namespace=dict(type='str', default='default'),
        kubeconfig=dict(type='path'),
        kubernetes_context=dict(type='str'),
        sentinel_master_set=dict(type='str'),
        sentinel_port=dict(type='int', default=26379),
    )


def name_problem(value, max_length=MAX_NAME_LENGTH):
    """Why a name (key, group, job type or ID) cannot be used, or None when it can."""
    if not value:
        return 'must not be empty'
    if not value.strip():
        return 'must not be only whitespace'
    if CONTROL_CHARACTERS.search(value):
        return 'must not contain control characters such as newlines or tabs'
    if len(value) > max_length:
        return 'must not be longer than %d characters (got %d)' % (max_length, len(value))
    return None


def validate_names(module, names):
    """Fail before connecting when one of the named options holds an unusable name; None values are skipped."""
    for option, value in names:
        if value is None:
            continue
        problem = name_problem(value)
        if problem:
            module.fail_json(msg='%s %s.' % (option, problem))


def host_problem(host):
    """Why login_host cannot be a host name or address, or None."""
    problem = name_problem(host, max_length=253)
    if problem:
        return problem
    if '://' in host or '/' in host:
        return 'must be a host name or IP address, not a URL (got %r)' % host
    if any(c.isspace() for c in host):
        return 'must not contain spaces'
    return None


def check_redis_library(module):
    """Fail with Ansible's usual message when redis-py is missing."""
    if REDIS_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('redis'), exception=REDIS_IMPORT_ERROR)


def validate_connection_params(module):
    """Reject option combinations that cannot work, before anything is sent."""
    params = module.params
    problem = host_problem(params['login_host'] or '')
    if problem and not params['kubernetes_pod']:
        module.fail_json(msg='login_host %s.' % problem)
    if not 1 <= params['login_port'] <= 65535:
        module.fail_json(msg='login_port must be between 1 and 65535, got %d.' % params['login_port'])
    if params['connect_timeout'] <= 0:
        module.fail_json(msg='connect_timeout must be greater than 0.')
    if params['wait_timeout'] < 0:
        module.fail_json(msg='wait_timeout must be 0 (try once) or more seconds.')
    if not params['kubernetes_pod']:
        kube_only = [name for name in ('kubeconfig', 'kubernetes_context') if params[name]]
        if kube_only:
            module.fail_json(msg='%s only apply with kubernetes_pod.' % ', '.join(kube_only))
    if not params['tls']:
        tls_only = [name for name in ('ca_certs', 'ca_data', 'client_cert_file', 'client_key_file') if params[name]]
        if tls_only:
            module.fail_json(msg='%s only apply with tls=true.' % ', '.join(tls_only))
    if params['ca_certs'] and params['ca_data']:
        module.fail_json(msg='ca_certs and ca_data are mutually exclusive.')
    if params['sentinel_master_set'] is not None and name_problem(params['sentinel_master_set']):
        module.fail_json(msg='sentinel_master_set %s.' % name_problem(params['sentinel_master_set']))
    if not 1 <= params['sentinel_port'] <= 65535:
        module.fail_json(msg='sentinel_port must be between 1 and 65535, got %d.' % params['sentinel_port'])


def client_kwargs(params):
    """Translate the module options into redis.Redis() keyword arguments."""
    kwargs = dict(
        host=params['login_host'],
        port=params['login_port'],
        username=params['login_user'],
        password=params['login_password'],
        socket_connect_timeout=params['connect_timeout'],
        socket_timeout=params['connect_timeout'],
        decode_responses=True,
        # redis-py 6+ retries failed commands with backoff by itself; connect() does the waiting here,
        # so that wait_timeout means what it says.
        retry=Retry(NoBackoff(), 0),
    )
    if params['tls']:
        kwargs.update(
            ssl=True,
            ssl_cert_reqs='required' if params['validate_certs'] else 'none',
            ssl_check_hostname=params['validate_certs'],
            ssl_ca_certs=params['ca_certs'],
            ssl_ca_data=params['ca_data'],
            ssl_certfile=params['client_cert_file'],
            ssl_keyfile=params['client_key_file'],
        )
    return kwargs


def describe_target(params):
    scheme = 'rediss' if params['tls'] else 'redis'
    if params['kubernetes_pod']:
        return '%s://pod %s/%s:%d (port-forward)' % (scheme, params['kubernetes_namespace'], params['kubernetes_pod'],
                                                     params['login_port'])
    return '%s://%s:%d' % (scheme, params['login_host'], params['login_port'])


def start_port_forward(module, params):
    """Forward a local port to the pod through the Kubernetes API; it closes when the module exits."""
    import_error = load_kubernetes()
    if import_error:
        module.fail_json(msg=missing_required_lib('kubernetes'), exception=import_error)
    try:
        return PodPortForward(params['kubernetes_pod'], params['kubernetes_namespace'], params['login_port'],
                              kubeconfig=params['kubeconfig'], context=params['kubernetes_context'])
    except Exception as e:  # pylint: disable=broad-except
        # The kubernetes library raises many unrelated types for a bad kubeconfig or context.
        module.fail_json(msg='Cannot use the Kubernetes API to reach pod %s/%s: %s'
                             % (params['kubernetes_namespace'], params['kubernetes_pod'], e))


def permanent_dns_failure(error):
    """True when a connection error comes from a name that does not resolve (waiting cannot fix it)."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, socket.gaierror):
        return cause.errno in PERMANENT_DNS_ERRORS
    # Older redis-py versions keep only the message.
    text = str(error)
    return 'Name or service not known' in text or 'nodename nor servname' in text


def connect(module, sleep=time.sleep, clock=time.monotonic):
    """Return a client whose PING was answered, retrying until wait_timeout has passed.

    Only transient failures (refused, timed out, still loading) are retried; a rejected login, a refused
    command, a peer that does not speak Redis or a host name that does not exist fail at once, because
    waiting cannot fix them. No attempt runs past wait_timeout: the socket timeouts of the last attempts are
    cut to the time left.

    With sentinel_master_set, Sentinel is asked first (within the same wait_timeout) and the client is the
    master's; module.params then names it (kubernetes_pod, or login_host and login_port).
    """
    check_redis_library(module)
    validate_connection_params(module)
    params = module.params
    deadline = clock() + params['wait_timeout']
    if params['sentinel_master_set']:
        sentinel = _ping_until(module, dict(params, login_port=params['sentinel_port']), deadline, sleep, clock,
                               what='Sentinel')
        params.update(sentinel_master(module, sentinel))
        sentinel.close()
    return _ping_until(module, params, deadline, sleep, clock)


def sentinel_master(module, sentinel):
    """The connection options of the master that Sentinel names for sentinel_master_set.

    Through a port-forward the answer must be a pod of the same StatefulSet as kubernetes_pod, named by its
    headless-Service host name (<pod>.<service>.<namespace>...), as the bitnami/redis chart announces pods.
    """
    params = module.params
    master_set = params['sentinel_master_set']
    try:
        answer = sentinel.sentinel_get_master_addr_by_name(master_set)
    except redis_exceptions.RedisError as e:
        module.fail_json(msg='Sentinel at %s could not name the master of %s: %s'
                             % (describe_target(dict(params, login_port=params['sentinel_port'])), master_set, e))
    if not answer:
        module.fail_json(msg='Sentinel at %s does not know the master set %s.'
                             % (describe_target(dict(params, login_port=params['sentinel_port'])), master_set))
    host, port = answer[0], int(answer[1])
    if not params['kubernetes_pod']:
        return dict(login_host=host, login_port=port)
    pod = host.split('.')[0]
    statefulset = re.sub(r'-[0-9]+$', '', params['kubernetes_pod'])
    if not re.match(r'^%s-[0-9]+$' % re.escape(statefulset), pod):
        module.fail_json(msg='Sentinel in pod %s/%s named %s:%d as the master of %s, not a pod of StatefulSet %s.'
                             % (params['kubernetes_namespace'], params['kubernetes_pod'], host, port, master_set,
                                statefulset))
    return dict(kubernetes_pod=pod, login_port=port)


def _ping_until(module, params, deadline, sleep, clock, what='Redis'):
    """A client of the server params name whose PING was answered before deadline (see connect())."""
    target = describe_target(params)
    kwargs = client_kwargs(params)
    forward = None
    if params['kubernetes_pod']:
        forward = start_port_forward(module, params)
        # The listener is on 127.0.0.1; with TLS connect by name, since certificates made for a cluster name
        # localhost (bitnami/redis does) rather than the IP address.
        kwargs.update(host='localhost' if params['tls'] else '127.0.0.1', port=forward.local_port)
    attempts = 0
    while True:
        attempts += 1
        timeout = params['connect_timeout']
        if params['wait_timeout']:
            timeout = max(MIN_ATTEMPT_TIMEOUT, min(timeout, deadline - clock()))
        shortened = timeout < params['connect_timeout']
        client = redis.Redis(**dict(kwargs, socket_connect_timeout=timeout, socket_timeout=timeout))
        try:
            if client.ping():
                if shortened:
                    # Later commands get the full connect_timeout again.
                    client.close()
                    client = redis.Redis(**kwargs)
                return client
            last_error = 'PING was not answered with PONG'
        except redis_exceptions.AuthenticationError as e:
            module.fail_json(msg='%s at %s rejected the login: %s' % (what, target, e))
        except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError,
                redis_exceptions.BusyLoadingError) as e:
            if permanent_dns_failure(e):
                module.fail_json(msg='Cannot reach %s at %s: the host name does not resolve (%s). '
                                     'Check login_host; this is not retried.' % (what, target, e))
            last_error = str(e)
            if forward is not None and forward.last_error:
                last_error = 'port-forward: %s' % forward.last_error
        except redis_exceptions.InvalidResponse as e:
            module.fail_json(msg='The server at %s answered, but not as Redis does (%s). Check login_port, '
                                 'and tls: a TLS port needs tls=true.' % (target, e))
        except redis_exceptions.ResponseError as e:
            module.fail_json(msg='%s at %s refused PING: %s' % (what, target, e))
        client.close()
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(RETRY_INTERVAL, left))
    module.fail_json(
        msg='%s at %s did not answer PING within %d seconds (%d attempts). Last error: %s'
            % (what, target, params['wait_timeout'], attempts, last_error),
        attempts=attempts)


def _is_a(error, name):
    """isinstance() against a redis-py exception class that older versions may lack."""
    cls = getattr(redis_exceptions, name, None)
    return cls is not None and isinstance(error, cls)


def is_out_of_memory(error):
    """True for the refusal of a write at maxmemory with the noeviction policy."""
    return str(error).startswith('OOM ') or 'used memory > \'maxmemory\'' in str(error)


def redis_error_message(action, error):
    """One sentence for a failed command, naming what was being done."""
    if is_out_of_memory(error):
        return ('Redis refused to %s: it is out of memory (used memory has reached maxmemory and the noeviction '
                'policy keeps every job). Let workers acknowledge jobs and trim the stream, or raise maxmemory. '
                'Redis said: %s' % (action, error))
    if _is_a(error, 'ReadOnlyError') or str(error).startswith('READONLY'):
        return 'Redis refused to %s: the server is a read-only replica; connect to the master. (%s)' % (action, error)
    if _is_a(error, 'NoPermissionError') or str(error).startswith('NOPERM'):
        return 'Redis refused to %s: the user lacks a permission (ACL): %s' % (action, error)
    return 'Redis refused to %s: %s' % (action, error)


def stream_summary(client, stream):
    """Length and first/last entry ids of a stream; exists=False when the key is missing."""
    if not client.exists(stream):
        return dict(name=stream, exists=False, length=0, first_entry_id=None, last_entry_id=None)
    first = client.xrange(stream, count=1)
    last = client.xrevrange(stream, count=1)
    return dict(
        name=stream,
        exists=True,
        length=client.xlen(stream),
        first_entry_id=first[0][0] if first else None,
        last_entry_id=last[0][0] if last else None,
    )


def key_type(client, key):
    """The Redis type of a key ('none' when missing), the same on every redis-py version."""
    value = client.type(key)
    return value.decode() if isinstance(value, bytes) else value


def ensure_stream_type(module, client, stream):
    """Fail without touching anything when another type of key holds the stream name."""
    found = key_type(client, stream)
    if found not in ('none', 'stream'):
        module.fail_json(msg='Key %r holds a %s, not a stream; it was left untouched. '
                             'Choose another stream name or remove that key yourself.' % (stream, found))
    return found == 'stream'


def group_facts(client, stream, group=None):
    """XINFO GROUPS of a stream as a list of dicts with stable keys (only `group` when given)."""
    groups = []
    for info in client.xinfo_groups(stream):
        if group is not None and info['name'] != group:
            continue
        groups.append(dict(
            name=info['name'],
            consumers=info.get('consumers', 0),
            pending=info.get('pending', 0),
            last_delivered_id=info.get('last-delivered-id'),
            # entries-read and lag exist since Redis 7.0.
            entries_read=info.get('entries-read'),
            lag=info.get('lag'),
        ))
    return groups


def server_version(module, client):
    """The server's version, or None with a warning when INFO is not allowed (an ACL without +info)."""
    try:
        return client.info('server').get('redis_version')
    except redis_exceptions.ResponseError as e:
        module.warn('The Redis version is unknown: INFO was refused (%s).' % e)
        return None
