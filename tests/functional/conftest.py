# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures that run the modules through real ansible-playbook against a real redis-server."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'utils'))
from harness import free_port  # noqa: E402

REDIS_SERVER = shutil.which('redis-server')
REDIS_CLI = shutil.which('redis-cli')
ACL_USER = 'raibid-admin'


def make_certificates(directory: Path):
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, made with openssl."""
    def openssl(*args):
        subprocess.run(['openssl', *args], cwd=directory, check=True, capture_output=True)

    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=raibid test CA',
            '-keyout', 'ca.key', '-out', 'ca.crt')
    for name, extra in (('server', 'subjectAltName=DNS:localhost,IP:127.0.0.1'), ('client', 'extendedKeyUsage=clientAuth')):
        openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=%s' % name, '-keyout', name + '.key',
                '-out', name + '.csr')
        (directory / (name + '.ext')).write_text(extra + '\n')
        openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
                '-days', '2', '-extfile', name + '.ext', '-out', name + '.crt')
    return {name: str(directory / name) for name in
            ('ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key')}


class RedisServer:
    """A redis-server on 127.0.0.1 with requirepass, AOF, an ACL user and a TLS listener."""

    def __init__(self, workdir: Path, certs: dict, port=None, extra=()):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # More configuration lines: a replica, renamed commands, a small maxmemory.
        self.extra = list(extra)
        self.certs = certs
        self.port = port or free_port()
        self.tls_port = free_port()
        self.password = secrets.token_hex(16)
        self.acl_password = secrets.token_hex(16)
        self.process = None

    def config(self):
        return '\n'.join([
            'bind 127.0.0.1',
            'port %d' % self.port,
            'tls-port %d' % self.tls_port,
            'tls-cert-file %s' % self.certs['server.crt'],
            'tls-key-file %s' % self.certs['server.key'],
            'tls-ca-cert-file %s' % self.certs['ca.crt'],
            'tls-auth-clients optional',
            'requirepass %s' % self.password,
            # May use the queue's keys and read server facts, but not CONFIG.
            'user %s on >%s ~raibid:* +@all -config' % (ACL_USER, self.acl_password),
            'appendonly yes',
            'appendfsync everysec',
            'save ""',
            'dir %s' % self.workdir,
            'daemonize no',
            'logfile %s' % (self.workdir / 'redis.log'),
        ] + self.extra) + '\n'

    def start(self):
        conf = self.workdir / 'redis.conf'
        conf.write_text(self.config())
        conf.chmod(0o600)
        self.process = subprocess.Popen([REDIS_SERVER, str(conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError('redis-server did not start: %s' % (self.workdir / 'redis.log').read_text())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def snapshot(self):
        """Every key with its content (streams with their entries and groups), read with a second client."""
        client, state = self.client(), {}
        for key in sorted(client.keys('*')):
            kind = client.type(key)
            if kind == 'stream':
                groups = [(g['name'], g['pending'], g['last-delivered-id']) for g in client.xinfo_groups(key)]
                state[key] = (kind, client.xrange(key), groups)
            elif kind == 'string':
                state[key] = (kind, client.get(key))
            elif kind == 'hash':
                state[key] = (kind, client.hgetall(key))
            else:
                state[key] = (kind, None)
        return state

    def client(self) -> redis.Redis:
        """An independent client, to check what the modules did."""
        return redis.Redis(host='127.0.0.1', port=self.port, password=self.password, decode_responses=True)

    def cli(self, *args) -> str:
        """redis-cli, with the password in the environment (never on the command line)."""
        env = dict(os.environ, REDISCLI_AUTH=self.password)
        out = subprocess.run([REDIS_CLI, '-e', '-h', '127.0.0.1', '-p', str(self.port), *args],
                             env=env, check=True, capture_output=True, text=True)
        return out.stdout

    def login(self, **extra):
        """Module connection options for this server."""
        return dict(dict(login_host='127.0.0.1', login_port=self.port, login_password=self.password), **extra)


@pytest.fixture(scope='session')
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp('certs'))


@pytest.fixture
def redis_server(tmp_path, certs):
    if not REDIS_SERVER or not REDIS_CLI:
        pytest.fail('redis-server and redis-cli are needed: run `make deps`.')
    server = RedisServer(tmp_path, certs).start()
    yield server
    server.stop()


@pytest.fixture
def unstarted_redis(tmp_path, certs):
    """A server the test starts itself (for waiting tests); stopped afterwards."""
    server = RedisServer(tmp_path, certs)
    yield server
    server.stop()


class Result(dict):
    """A task result, with the raw output of ansible-playbook for leak checks."""
    output = ''


class PlaybookRunner:
    """Runs one task of a module through ansible-playbook on localhost and returns its result."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.count = 0

    def __call__(self, module, args, check=False, diff=False, verbosity=0, module_defaults=None, no_log=False,
                 then=()):
        """Tasks in `then` run after the module's, which registers `result`; a no_log result shows censored."""
        self.count += 1
        task = {'name': 'under test', 'raibid.queue.%s' % module: args, 'register': 'result'}
        if no_log:
            task['no_log'] = True
        play = {
            'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
            'vars': {'ansible_python_interpreter': sys.executable},
            'tasks': [task] + list(then),
        }
        if module_defaults:
            play['module_defaults'] = module_defaults
        playbook = self.workdir / ('play%d.yml' % self.count)
        playbook.write_text(yaml.safe_dump([play]))
        cmd = ['ansible-playbook', '-i', 'localhost,', str(playbook)]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        if verbosity:
            cmd.append('-' + 'v' * verbosity)
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0',
                   ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
        if verbosity:
            # Verbose runs are for reading the output as a user would see it (leak checks).
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
            result = Result(rc=proc.returncode)
            result.output = proc.stdout + proc.stderr
            return result
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        try:
            report = json.loads(proc.stdout[proc.stdout.index('{'):])
        except ValueError:
            raise AssertionError('ansible-playbook printed no JSON:\n%s\n%s' % (proc.stdout, proc.stderr))
        result = Result(report['plays'][0]['tasks'][0]['hosts']['localhost'])
        result.output = proc.stdout + proc.stderr
        return result


@pytest.fixture
def run(tmp_path):
    return PlaybookRunner(tmp_path)
