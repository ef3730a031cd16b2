# -*- coding: utf-8 -*-
# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection. Breaking changes can occur any time.

"""The credentials file of raibid.queue.redis_queue: a 0600 JSON object, checked before anything changes,
written atomically, shown in diffs with its secrets masked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import stat
import tempfile

from ansible.module_utils.common.text.converters import to_native

CREDENTIALS_MODE = 0o600
DIRECTORY_MODE = 0o700
MASK = '********'
MASK_CHANGED = '******** (changed)'
# Keys of the credentials file whose values are secrets, besides those in credentials_secret_keys.
SECRET_KEY_PATTERN = re.compile(r'pass(word|wd)?|secret|token|credential|private|api_?key', re.IGNORECASE)


class CredentialsFile(object):
    """The credentials file: what it holds now, what it should hold, and the atomic write.

    Everything that can stop the write or the removal is checked by preflight(), before Redis is touched.
    """

    def __init__(self, module, path, content, secret_keys):
        self.module = module
        self.path = os.path.abspath(path)
        self.content = content
        self.secret_keys = set(secret_keys)
        self.before = None
        self.before_mode = None

    def fail(self, problem):
        self.module.fail_json(msg='credentials_path %s %s Nothing was changed.' % (self.path, problem))

    def preflight(self, state):
        """Fail before any change unless the path is absent or a readable, writable regular file holding a
        JSON object (or nothing), and the file can be created or removed where it is."""
        try:
            st = os.lstat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            # A missing file, or a parent that is not a directory: the parent check below says which.
            st = None
        except OSError as e:
            self.fail('cannot be examined: %s.' % to_native(e))
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                self.fail('is a symbolic link; the module replaces the file atomically and would replace the link '
                          'itself, so name the real file instead.')
            if stat.S_ISDIR(st.st_mode):
                self.fail('is a directory.')
            if not stat.S_ISREG(st.st_mode):
                self.fail('is not a regular file (a FIFO, socket or device).')
            if not os.access(self.path, os.R_OK | os.W_OK):
                self.fail('is not readable and writable by this user.')
            self.before, self.before_mode = self.read(), stat.S_IMODE(st.st_mode)
        if state == 'present':
            parent = os.path.dirname(self.path)
            while not os.path.lexists(parent):
                parent = os.path.dirname(parent)
            if not os.path.isdir(parent):
                self.fail('cannot be created: %s is not a directory.' % parent)
            if not os.access(parent, os.W_OK | os.X_OK):
                self.fail('cannot be written: directory %s is not writable.' % parent)
        elif st is not None and not os.access(os.path.dirname(self.path), os.W_OK | os.X_OK):
            self.fail('cannot be removed: directory %s is not writable.' % os.path.dirname(self.path))

    def read(self):
        try:
            with open(self.path) as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            self.fail('cannot be read: %s.' % to_native(e))
        if not text.strip():
            return None
        try:
            content = json.loads(text)
        except ValueError as e:
            self.fail('does not hold JSON (%s); move it away or fix it.' % e)
        if not isinstance(content, dict):
            self.fail('holds JSON that is not an object (%s); the credentials file is an object, so move it away '
                      'or fix it.' % type(content).__name__)
        return content

    def needs_write(self):
        return self.before != self.content or self.before_mode != CREDENTIALS_MODE

    def changes(self):
        """Names of what a write changes: keys added, removed or changed, and 'mode'. Never values."""
        before = self.before or {}
        keys = sorted(k for k in set(before) | set(self.content)
                      if (k in before) != (k in self.content) or before.get(k) != self.content.get(k))
        if self.before_mode is not None and self.before_mode != CREDENTIALS_MODE:
            keys.append('mode')
        return keys

    def is_secret(self, key):
        return key in self.secret_keys or bool(SECRET_KEY_PATTERN.search(key))

    def shown_before(self):
        """The file as it is, for the diff: secrets masked, and keys the module does not write masked too,
        since their values are not the module's to show."""
        if self.before is None:
            return None
        return dict((k, MASK if k not in self.content or self.is_secret(k) else v) for k, v in self.before.items())

    def shown_after(self):
        before = self.before or {}
        shown = {}
        for key, value in self.content.items():
            if self.is_secret(key) and value is not None:
                value = MASK_CHANGED if key in before and before[key] != value else MASK
            shown[key] = value
        return shown

    def write(self):
        directory = os.path.dirname(self.path)
        tmp = None
        try:
            make_private_dirs(directory)
            # mkstemp creates the file 0600, so the password is never readable by others, not even briefly.
            fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(self.path), suffix='.tmp')
            with os.fdopen(fd, 'w') as f:
                json.dump(self.content, f, indent=2, sort_keys=True)
                f.write('\n')
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as e:
            return 'Cannot write the credentials file %s: %s' % (self.path, to_native(e))
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        return None

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            return 'Cannot remove the credentials file %s: %s' % (self.path, to_native(e))
        return None


def make_private_dirs(directory):
    """Create the missing directories of a path, each 0700 whatever the umask (os.makedirs applies its mode
    to the last one only, and through the umask)."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        os.mkdir(path, DIRECTORY_MODE)
        os.chmod(path, DIRECTORY_MODE)
