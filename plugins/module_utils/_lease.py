# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The run lease: one tune, restore or benchmark run holds a host from its first task to its last.

The host lock (_lock.HostLock, a flock) is held by one module call; a playbook run is many calls, and another run's
calls could slip in between them. The lease is a small file, ``/run/aitune/lease.json``, naming the run that holds the
host: its id, what it does, when it started, its controller and the controller's PID, and the AWX job. The
aitune.kernel.lease module takes it at the start of a run and gives it back at the end (in an ``always``). Every call
that writes checks it under the host lock: a call of another run, or a module called alone, waits a bounded time for
the lease to go and then fails before writing, naming the holder.

A lease carries an expiry that each call of its run renews. One that outlives its run (its controller was killed)
expires, and the run that takes the host next reports it. /run is emptied at boot, and every run that held the host
then is gone with it; a lease from an earlier boot (a /run that is not a tmpfs) counts as expired too.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import socket
import time

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import ABSENT, FsError, REFUSED
from ansible_collections.aitune.kernel.plugins.module_utils._state_schema import check_lease, parse

LEASE_DIR = '/run/aitune'
LEASE_PATH = LEASE_DIR + '/lease.json'
BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'
# A host without a boot id (a fake tree) records this one.
NO_BOOT_ID = 'unknown'

# Each text field of the lease: the pattern it must match, and how the error describes it.
FIELDS = {
    'run_id': (re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$'),
               'a run id of 8 to 64 letters, digits, ".", "_", ":" or "-"'),
    # "tune balanced", "restore all", "benchmark balanced,aggressive".
    'purpose': (re.compile(r'^[a-z][a-z0-9 ._,:-]{0,63}$'),
                'a purpose of up to 64 lower-case letters, digits, blanks and ".,:_-", such as "tune balanced"'),
    'controller': (re.compile(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$'), 'a host name'),
    'boot_id': (re.compile(r'^([0-9a-f-]{1,64}|unknown)$'), 'a boot id such as the kernel gives'),
    'job': (re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'), 'a job id of up to 64 letters, digits, ".", "_", ":" or "-"'),
}
FORMAT = 1
# Bounds of the options (the module's argument checks use them too).
MAX_WAIT = 3600
MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600


# What a host name may hold in the lease; anything else in the controller's name becomes "-".
_NOT_IN_HOST_NAME = re.compile(r'[^A-Za-z0-9.-]')


def controller_name():
    """This machine's name as the lease's ``controller`` field accepts it (the lease action plugin's)."""
    name = _NOT_IN_HOST_NAME.sub('-', socket.gethostname())[:253].strip('.-')
    return name or 'unknown'


def check_field(name, value):
    """None when ``value`` may stand in the lease's ``name`` field, else what it must be."""
    pattern, expected = FIELDS[name]
    return None if isinstance(value, str) and pattern.match(value) else expected


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def boot_id(fs):
    try:
        return fs.read(BOOT_ID_PATH).strip() or NO_BOOT_ID
    except FsError:
        return NO_BOOT_ID


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


class Lease(object):
    """One lease document: who holds the host, since when, until when."""

    KEYS = ('run_id', 'purpose', 'controller', 'controller_pid', 'started', 'ttl', 'expires', 'boot_id', 'job')

    def __init__(self, run_id, purpose, controller, controller_pid, started, ttl, expires, boot_id, job=None):
        self.run_id = run_id
        self.purpose = purpose
        self.controller = controller
        self.controller_pid = controller_pid
        self.started = started
        # Seconds: each call of the run pushes the expiry this far past its own start.
        self.ttl = ttl
        self.expires = expires
        self.boot_id = boot_id
        self.job = job

    @classmethod
    def from_document(cls, document):
        return cls(**{key: document.get(key) for key in cls.KEYS})

    def document(self):
        document = dict(format=FORMAT)
        document.update((key, getattr(self, key)) for key in self.KEYS if getattr(self, key) is not None)
        return document

    def holder(self):
        """The holder as results show it."""
        return {key: value for key, value in self.document().items() if key != 'format'}

    def describe(self, now):
        """One sentence naming the holder, for an error or a warning."""
        job = ', AWX job %s' % self.job if self.job else ''
        return ('run %s (%s), started %s (%d s ago) from controller %s PID %d%s; the lease expires %s'
                % (self.run_id, self.purpose, iso(self.started), max(0, now - self.started), self.controller,
                   self.controller_pid, job, iso(self.expires)))

    def gone(self, now, this_boot, this_host):
        """Why this lease no longer holds the host (its run is gone), or None while it does."""
        if self.boot_id != this_boot:
            return 'it was taken before this boot'
        if now >= self.expires:
            return 'it expired %d s ago without being renewed or given back: its run was stopped or killed' \
                % (now - self.expires)
        if self.controller == this_host and not process_alive(self.controller_pid):
            return 'its controller process (PID %d on this host) is gone' % self.controller_pid
        return None


def read_lease(fs):
    """The lease on the host, or None. Trusted only as root's (HostFS.read_trusted); a bad one is refused with the
    way to move it aside (StateFileError)."""
    try:
        text = fs.read_trusted(LEASE_PATH)
    except FsError as exc:
        if exc.kind == ABSENT:
            return None
        raise
    document = parse(text, LEASE_PATH)
    check_lease(document, LEASE_PATH, FIELDS)
    return Lease.from_document(document)


def write_lease(fs, lease):
    fs.write_file_atomic(LEASE_PATH, json.dumps(lease.document(), indent=2, sort_keys=True) + '\n', mode=0o644)


def remove_lease(fs):
    fs.remove_file(LEASE_PATH)
    fs.remove_empty_dir(LEASE_DIR)


class LeaseCheck(object):
    """What a call of run ``run_id`` (None: a module called alone) finds in the lease under the host lock.

    ``blocking``: the live lease of another run (the call must wait); ``gone``: a lease whose run is gone, and why
    (the call may go on, and reports it); ``own``: this run's lease (the call renews it)."""

    def __init__(self, fs, run_id, now=None, this_host=None):
        self.now = int(time.time()) if now is None else now
        self.lease = read_lease(fs)
        self.blocking = self.own = None
        self.gone = None
        if self.lease is None:
            return
        why = self.lease.gone(self.now, boot_id(fs), this_host or socket.gethostname())
        if why:
            self.gone = (self.lease, why)
        elif run_id is not None and self.lease.run_id == run_id:
            self.own = self.lease
        else:
            self.blocking = self.lease

    def refusal(self, waited):
        return FsError(REFUSED, LEASE_PATH, 'another aitune run holds this host: %s. Waited %.0f s; nothing was '
                       'written. Run again once it has finished; if that run is dead, its lease expires by itself'
                       % (self.blocking.describe(self.now), waited))


def renew(fs, lease, now):
    """Push the expiry of the run's own lease its ``ttl`` past ``now`` (never earlier than it was)."""
    expires = max(lease.expires, now + lease.ttl)
    if expires != lease.expires:
        lease.expires = expires
        write_lease(fs, lease)
