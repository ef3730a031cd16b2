# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

"""The connection URL of the queue, shared by raibid.queue.redis_queue and the filter raibid.queue.redis_url.

It has no dependencies, so that the filter can import it on the controller without redis-py or kubernetes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from urllib.parse import quote

# Characters that cannot stand in the host part of a URL unescaped; a name with one is a mistake.
BAD_HOST_CHARACTERS = frozenset('/?#@[]% \t\r\n')


def encode_secret(value):
    """Percent-encode every byte of the UTF-8 form of value, even letters and digits.

    RFC 3986 (2.3) makes %41 and A equivalent, and clients that decode the user information (redis-py, redis-cli)
    read the same password. Ansible masks every verbatim occurrence of a no_log value (the password) in a module's
    result; fully encoded, the password no longer occurs verbatim, so a URL a module returns stays usable.
    """
    data = value if isinstance(value, bytes) else value.encode('utf-8')
    return ''.join('%%%02X' % b for b in data)


def url_host(host):
    """The host as a URL needs it: IPv6 addresses in brackets. Raises ValueError for what no URL can hold."""
    if not host:
        raise ValueError('the host must not be empty')
    if host.startswith('[') and host.endswith(']') and ':' in host:
        host = host[1:-1]
    if any(c in BAD_HOST_CHARACTERS for c in host):
        raise ValueError('%r cannot be the host of a URL; give a host name or an IP address' % host)
    return '[%s]' % host if ':' in host else host


def redis_url(host, port, password=None, username=None, tls=False, encode_all=False):
    """redis://[[username]:password@]host:port, or rediss:// with TLS.

    The user name and password are percent-encoded where they need to be (anything but letters, digits and
    -._~), so that a generated alphanumeric password stands as it is: some clients pass the password on without
    decoding it. encode_all encodes every byte of the password (see encode_secret), for a module's result. No
    database number: clients use 0. Raises ValueError for a host or port that cannot be part of a URL.
    """
    port = int(port)
    if not 1 <= port <= 65535:
        raise ValueError('the port must be between 1 and 65535, got %d' % port)
    userinfo = ''
    if password or username:
        userinfo = quote(username or '', safe='')
        if password:
            userinfo += ':' + (encode_secret(password) if encode_all else quote(password, safe=''))
        userinfo += '@'
    return '%s://%s%s:%d' % ('rediss' if tls else 'redis', userinfo, url_host(host), port)
