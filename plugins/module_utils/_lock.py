# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A host-wide lock, so two runs on one host (two playbooks, or AWX and a person) serialise their changes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import time

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, IO_ERROR

LOCK_PATH = STATE_DIR + '/lock'


class HostLock(object):
    """``flock`` on /var/lib/aitune/lock. The kernel drops it when the holder dies, so a killed run never wedges."""

    def __init__(self, fs, timeout=60.0, poll=0.1):
        self.fs = fs
        self.timeout = timeout
        self.poll = poll
        self.fd = None

    def __enter__(self):
        self.fd = self.fs.open_lock_file(LOCK_PATH)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError):
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    raise FsError(IO_ERROR, LOCK_PATH, 'another aitune run holds %s; gave up after %.0f s'
                                  % (LOCK_PATH, self.timeout))
                time.sleep(self.poll)

    def __exit__(self, *exc_info):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False
