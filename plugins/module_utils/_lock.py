# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A host-wide lock, so two runs on one host (two playbooks, or AWX and a person) serialise their changes.

The lock serialises module calls; the run lease (_lease) keeps a whole run's calls together. A call holds the lock
only while no other run's live lease holds the host: otherwise it lets go, waits, and after its timeout fails
before writing, naming the holder."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import time

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, IO_ERROR
from ansible_collections.aitune.kernel.plugins.module_utils._lease import LeaseCheck, renew

LOCK_PATH = STATE_DIR + '/lock'


class HostLock(object):
    """``flock`` on /var/lib/aitune/lock. The kernel drops it when the holder dies, so a killed run never wedges.

    ``run_id``: the run lease this call belongs to (None: a module called alone). Once held, ``lease`` is what the
    call found in the lease (_lease.LeaseCheck): a lease whose run is gone is in its ``gone``."""

    def __init__(self, fs, timeout=60.0, poll=0.1, run_id=None, check_lease=True):
        self.fs = fs
        self.timeout = timeout
        self.poll = poll
        self.run_id = run_id
        # False: the lock alone (the lease module's release, which reads the lease itself).
        self.check_lease = check_lease
        self.fd = None
        self.lease = None
        self.created_state_dir = False

    def __enter__(self):
        start = time.monotonic()
        deadline = start + self.timeout
        # A run that creates the state directory only to lock it, and leaves nothing else there, removes it again.
        self.created_state_dir = not self.fs.lexists(STATE_DIR)
        self.fd = self.fs.open_lock_file(LOCK_PATH)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (IOError, OSError):
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    raise FsError(IO_ERROR, LOCK_PATH, 'another aitune run holds %s; gave up after %.0f s'
                                  % (LOCK_PATH, self.timeout))
                time.sleep(self.poll)
                continue
            # A full restore removes the lock file while holding it, so a run that waited may now hold a lock on a
            # file nobody else will open again: only the file at the path counts.
            if not self.fs.same_file(self.fd, LOCK_PATH):
                os.close(self.fd)
                self.fd = self.fs.open_lock_file(LOCK_PATH)
                continue
            if not self.check_lease:
                return self
            try:
                lease = LeaseCheck(self.fs, self.run_id)
            except FsError:
                self._give_up()
                raise
            if lease.blocking is None:
                break
            if time.monotonic() >= deadline:
                self._give_up()
                raise lease.refusal(time.monotonic() - start)
            # Another run holds the host between its calls: let it have the lock back, and wait for its lease to go.
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            time.sleep(max(self.poll, 0.5))
        self.lease = lease
        if lease.own is not None:
            renew(self.fs, lease.own, lease.now)
        return self

    def _give_up(self):
        """Holding the lock, leave no state directory behind that only this attempt created, and close the lock."""
        self._remove_own_state_dir()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def _remove_own_state_dir(self):
        if self.created_state_dir and self.fs.lexists(STATE_DIR) \
                and self.fs.listdir(STATE_DIR) == [LOCK_PATH.rsplit('/', 1)[1]]:
            self.remove()
            self.fs.remove_empty_dir(STATE_DIR)

    def remove(self):
        """Remove the lock file while holding it (a full restore leaves no state behind); waiting runs notice."""
        self.fs.remove_file(LOCK_PATH)

    def __exit__(self, *exc_info):
        if self.fd is not None:
            self._remove_own_state_dir()
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False
