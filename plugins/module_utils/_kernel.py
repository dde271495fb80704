# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What kernel this is: version, scheduler generation, lockdown, mounts, and debugfs mounted on demand."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError

DEBUGFS = '/sys/kernel/debug'
EEVDF_SINCE = (6, 6)


def parse_version(release):
    """``'6.12.48+deb12-cloud-amd64'`` -> ``(6, 12, 48)``; unknown parts are 0."""
    match = re.match(r'(\d+)\.(\d+)(?:\.(\d+))?', release or '')
    if not match:
        return (0, 0, 0)
    return tuple(int(part or 0) for part in match.groups())


class KernelInfo(object):
    """Facts about the running kernel, read once per module run."""

    def __init__(self, fs):
        self.fs = fs
        self.release = (fs.read_optional('/proc/sys/kernel/osrelease') or '').strip()
        self.version = parse_version(self.release)

    @property
    def version_string(self):
        return '%d.%d.%d' % self.version

    def sched_generation(self):
        """EEVDF replaced CFS in 6.6. The version decides; a distro backport shows up in the knob probes instead."""
        return 'eevdf' if self.version >= EEVDF_SINCE else 'cfs'

    def lockdown(self):
        """The active lockdown mode (``none``, ``integrity``, ``confidentiality``) or None when the LSM is absent."""
        text = self.fs.read_optional('/sys/kernel/security/lockdown')
        if not text:
            return None
        match = re.search(r'\[(\w+)\]', text)
        return match.group(1) if match else None

    def mounts(self):
        """``[(source, mountpoint, fstype, options)]`` from /proc/mounts."""
        text = self.fs.read_optional('/proc/mounts', follow=True) or ''
        rows = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 4:
                rows.append((fields[0], _unescape_mount(fields[1]), fields[2], fields[3]))
        return rows

    def is_mounted(self, mountpoint, fstype=None):
        return any(row[1] == mountpoint and (fstype is None or row[2] == fstype) for row in self.mounts())

    def cmdline(self):
        return (self.fs.read_optional('/proc/cmdline', follow=True) or '').strip()


def _unescape_mount(field):
    # /proc/mounts escapes spaces and friends as octal (\040).
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)


class Debugfs(object):
    """Mount debugfs only when a knob needs it, and leave it as it was found.

    ``mounter`` is an object with ``mount_debugfs(host_path)`` and ``umount(host_path)`` that raise FsError on failure,
    or None where mounting is not possible (a fake root). ``release()`` must run before the module exits.
    """

    def __init__(self, kernel, mounter):
        self.kernel = kernel
        self.mounter = mounter
        self._we_mounted = False
        self._failure = None

    def ensure(self):
        """Return None when debugfs is usable, else the reason it is not."""
        if self._we_mounted or self.kernel.is_mounted(DEBUGFS, 'debugfs'):
            return None
        if self._failure is not None:
            return self._failure
        if self.mounter is None:
            self._failure = 'debugfs is not mounted at %s and cannot be mounted here' % DEBUGFS
            return self._failure
        try:
            self.mounter.mount_debugfs(self.kernel.fs.host_path(DEBUGFS))
        except FsError as exc:
            self._failure = 'debugfs is not mounted and mounting it failed: %s' % exc
            return self._failure
        self._we_mounted = True
        return None

    def release(self):
        if self._we_mounted:
            self._we_mounted = False
            self.mounter.umount(self.kernel.fs.host_path(DEBUGFS))

    def denied_reason(self, message):
        """Explain an EPERM from debugfs, naming lockdown when it is active."""
        mode = self.kernel.lockdown()
        if mode and mode != 'none':
            return '%s (kernel lockdown is "%s", which closes debugfs even to root)' % (message, mode)
        return '%s (debugfs access is restricted on this kernel: lockdown, debugfs=, or a security module)' % message


class CommandMounter(object):
    """Mounts through the mount(8)/umount(8) binaries via AnsibleModule.run_command (argument lists, no shell)."""

    def __init__(self, module):
        self.module = module

    def _run(self, argv):
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise FsError('not_permitted', argv[-1], '%s: %s' % (' '.join(argv), (err or out).strip()))

    def mount_debugfs(self, host_path):
        self._run([self.module.get_bin_path('mount', required=True), '-t', 'debugfs', 'debugfs', host_path])

    def umount(self, host_path):
        self._run([self.module.get_bin_path('umount', required=True), host_path])
