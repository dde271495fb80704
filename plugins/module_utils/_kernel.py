# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What kernel this is: version, scheduler generation, preemption model, lockdown, mounts, and debugfs mounted on
demand."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError

DEBUGFS = '/sys/kernel/debug'
EEVDF_SINCE = (6, 6)

# Where the preemption build shows. /sys/kernel/realtime reads 1 on a PREEMPT_RT kernel (the RT patch set has it, and
# mainline since the RT merge in 6.12); a kernel without RT has no such file.
REALTIME_PATH = '/sys/kernel/realtime'
VERSION_PATH = '/proc/version'
# A PREEMPT_DYNAMIC kernel shows the model it runs with here, the current one in parentheses: "none voluntary (full)".
PREEMPT_DEBUGFS = DEBUGFS + '/sched/preempt'
PREEMPT_MODELS = ('none', 'voluntary', 'full', 'lazy')
# The Kconfig choice of the model, as /boot/config-<release> lists it; on a PREEMPT_DYNAMIC kernel, the model it boots
# with unless preempt= on the command line says otherwise.
# A release as it may stand in a file name (/boot/config-RELEASE): never a path of its own.
RELEASE_NAME = re.compile(r'^[A-Za-z0-9._+~-]{1,200}$')
_CONFIG_MODELS = (('CONFIG_PREEMPT_LAZY', 'lazy'), ('CONFIG_PREEMPT', 'full'), ('CONFIG_PREEMPT_VOLUNTARY', 'voluntary'),
                  ('CONFIG_PREEMPT_NONE', 'none'))


def preemption_from_version(text):
    """``(preempt_rt, model)`` from the kernel's version string (``uname -v``, /proc/version).

    The build adds one word after SMP (init/Makefile, scripts/mkcompile_h before 5.19): ``PREEMPT_RT`` on a real-time
    kernel (``PREEMPT RT`` in older RT patch sets), ``PREEMPT_DYNAMIC`` where the model is picked at boot, ``PREEMPT``
    for full preemption, and nothing for the none and voluntary models, which the string cannot tell apart.
    ``(None, None)`` for an empty string."""
    if not text:
        return None, None
    if re.search(r'\bPREEMPT[_ ]RT\b', text):
        # RT makes every section preemptible that is not a raw spinlock: full preemption and more.
        return True, 'full'
    if re.search(r'\bPREEMPT_DYNAMIC\b', text):
        return False, 'dynamic'
    if re.search(r'\bPREEMPT\b', text):
        return False, 'full'
    return False, 'none_or_voluntary'


def preemption_from_config(text):
    """``(preempt_rt, model, dynamic)`` from a kernel config (/boot/config-<release>); Nones for an empty text."""
    if not text:
        return None, None, None
    enabled = set(re.findall(r'^(CONFIG_PREEMPT\w*)=y\s*$', text, re.MULTILINE))
    model = next((name for option, name in _CONFIG_MODELS if option in enabled), None)
    if 'CONFIG_PREEMPT_RT' in enabled:
        model = model if model in ('full', 'lazy') else 'full'
    return 'CONFIG_PREEMPT_RT' in enabled, model, 'CONFIG_PREEMPT_DYNAMIC' in enabled


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
        # preempt_rt(), read once: every unsupported knob's reason asks.
        self._rt = []

    @property
    def version_string(self):
        return '%d.%d.%d' % self.version

    def sched_generation(self):
        """EEVDF replaced CFS in 6.6. The version decides; a distro backport shows up in the knob probes instead."""
        return 'eevdf' if self.version >= EEVDF_SINCE else 'cfs'

    def version_text(self):
        """The kernel's version string as /proc/version gives it; ``uname -v`` is the part from ``#``."""
        return (self.fs.read_optional(VERSION_PATH, follow=True) or '').strip()

    def preempt_rt(self):
        """True on a PREEMPT_RT kernel, False on another, None where nothing tells (no /proc/version)."""
        if not self._rt:
            self._rt = [self.preemption()['preempt_rt']]
        return self._rt[0]

    def preemption(self):
        """``{preempt_rt, model, source}``: whether this is a PREEMPT_RT kernel, and the preemption model it runs
        (none, voluntary, full or lazy; ``dynamic`` where a PREEMPT_DYNAMIC kernel does not show which it booted with;
        ``none_or_voluntary`` where only the version string speaks), with where the model was read: ``debugfs``,
        ``cmdline`` (preempt= on a PREEMPT_DYNAMIC kernel), ``config`` (/boot/config-<release>) or ``version``."""
        realtime = (self.fs.read_optional(REALTIME_PATH) or '').strip()
        rt, model = preemption_from_version(self.version_text())
        source = 'version' if model else None
        config_rt, config_model, dynamic = preemption_from_config(
            self.fs.read_optional('/boot/config-%s' % self.release) if RELEASE_NAME.match(self.release) else None)
        if config_model and model in (None, 'none_or_voluntary', 'dynamic'):
            model, source = config_model, 'config'
        # preempt= acts only on a PREEMPT_DYNAMIC kernel; elsewhere the kernel ignores it.
        chosen = re.search(r'(?:^|\s)preempt=(\w+)', self.cmdline())
        if (dynamic or model == 'dynamic') and chosen and chosen.group(1) in PREEMPT_MODELS:
            model, source = chosen.group(1), 'cmdline'
        # Only a PREEMPT_DYNAMIC kernel has the file. debugfs may be unmounted or locked down (EPERM): then the other
        # sources stand.
        current = re.search(r'\((\w+)\)', self.fs.read_optional(PREEMPT_DEBUGFS) or '')
        if current and current.group(1) in PREEMPT_MODELS:
            model, source = current.group(1), 'debugfs'
        if realtime == '1' or config_rt:
            rt = True
        return {'preempt_rt': rt, 'model': model, 'source': source}

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
