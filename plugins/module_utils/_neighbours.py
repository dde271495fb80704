# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The other tuners on a host, and the CPU latency limit in force: what tuning_facts reports, what the profile
module's ``other_tuners`` policy decides on, and what the cpuidle room compares its own request with.

Read from files only, and only read, so that a fake tree answers as a real host does:

* tuned runs when ``/run/tuned/tuned.pid`` names a live process that is tuned (``/proc/PID/comm`` is ``tuned``, or
  its command line runs a file named ``tuned``: the daemon is a Python script), or failing a pid file, when a process
  with that ``comm`` runs. Its profile is ``/etc/tuned/active_profile`` (one or more names), ``/etc/tuned/profile_mode``
  says ``auto`` or ``manual``, and ``reapply_sysctl`` in ``/etc/tuned/tuned-main.conf`` (on unless set off) makes it
  apply /etc/sysctl.d again after its own sysctl values. The profile's plugins are its ``tuned.conf`` sections,
  includes followed.
* power-profiles-daemon runs when a process's ``comm`` is ``power-profiles-``: the kernel keeps the first 15
  characters of the file name. Its profile is ``Profile=`` in ``/var/lib/power-profiles-daemon/state.ini``.
* irqbalance runs when a process's ``comm`` is ``irqbalance``.
* cpupower (Fedora, RHEL, Arch: ``cpupower.service``) and cpufrequtils (Debian's init script, run by systemd as
  ``cpufrequtils.service``) are oneshots that set the governor at boot and keep no process: they count as present
  when enabled, by their symlink in ``multi-user.target.wants`` or an ``S`` link in ``/etc/rc2.d``.
* a setting that drifted from what the collection applied is put down to the tuners found that write it
  (``drift_writers``), so verify says who probably changed it.
* the CPU latency limit in force is the 4-byte native s32 that a read of ``/dev/cpu_dma_latency`` returns: the
  lowest of every open request. Opening the device adds a request at the kernel's "no constraint" value while it is
  open, which never lowers the lowest.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import struct

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import subsystem_of

TUNED = 'tuned'
PPD = 'power_profiles_daemon'
IRQBALANCE = 'irqbalance'
CPUPOWER = 'cpupower'

TUNED_PID = '/run/tuned/tuned.pid'
TUNED_ACTIVE_PROFILE = '/etc/tuned/active_profile'
TUNED_PROFILE_MODE = '/etc/tuned/profile_mode'
TUNED_MAIN_CONF = '/etc/tuned/tuned-main.conf'
# Where a profile's tuned.conf lies, the user's first: /etc/tuned overrides the packaged ones, which moved below
# profiles/ in tuned 2.23.
TUNED_PROFILE_DIRS = ('/etc/tuned/profiles', '/etc/tuned', '/usr/lib/tuned/profiles', '/usr/lib/tuned')
PPD_STATE = '/var/lib/power-profiles-daemon/state.ini'
WANTS_DIR = '/etc/systemd/system/multi-user.target.wants'
SYSV_RUNLEVEL_DIR = '/etc/rc2.d'
CPUPOWER_UNITS = ('cpupower.service', 'cpufrequtils.service')

PMQOS_DEVICE = '/dev/cpu_dma_latency'
# The kernel's own "no constraint" value for CPU latency QoS: 2000 s.
PMQOS_MAX_US = 2000000000

# /proc/PID/comm holds at most 15 characters (TASK_COMM_LEN less its NUL).
COMM = {TUNED: 'tuned', PPD: 'power-profiles-', IRQBALANCE: 'irqbalance'}
_TRUE = ('1', 'true', 'yes', 'y', 'on')
_FALSE = ('0', 'false', 'no', 'n', 'off')
# A profile including itself, or a loop of includes, stops here.
_INCLUDE_DEPTH = 8

# What each tuned plugin writes, by the subsystem of this collection that writes the same: a plugin listed here and
# a subsystem a run selects write the same settings, and whichever writes last wins until the other writes again.
# sysfs and script plugins can write anything, so they count against every subsystem.
ALL_SUBSYSTEMS = ('sched', 'memory', 'hugepages', 'block', 'cpufreq', 'cpuidle', 'cgroup', 'placement', 'irq')
TUNED_PLUGIN_SUBSYSTEMS = {
    'sysctl': ('sched', 'memory'),
    'vm': ('memory',),
    'cpu': ('cpufreq', 'cpuidle'),
    'disk': ('block',),
    'scheduler': ('placement', 'irq'),
    'irqbalance': ('irq',),
    'irq': ('irq',),
    'systemd': ('placement',),
    'bootloader': ('hugepages',),
    'sysfs': ALL_SUBSYSTEMS,
    'script': ALL_SUBSYSTEMS,
}


def _read(fs, path):
    text = fs.read_optional(path)
    return text.strip() if text is not None else None


def processes(fs):
    """``{comm: [PIDs]}`` of every process /proc shows; empty where /proc cannot be listed."""
    found = {}
    try:
        entries = fs.listdir('/proc')
    except FsError:
        return found
    for entry in entries:
        if entry.isdigit():
            comm = _read(fs, '/proc/%s/comm' % entry)
            if comm:
                found.setdefault(comm, []).append(int(entry))
    return found


def _is_tuned(fs, pid):
    if _read(fs, '/proc/%d/comm' % pid) == COMM[TUNED]:
        return True
    cmdline = fs.read_optional('/proc/%d/cmdline' % pid) or ''
    return any(arg.rsplit('/', 1)[-1] == COMM[TUNED] for arg in cmdline.split('\0'))


def tuned_pid(fs, running):
    """The PID of a running tuned, or None: the pid file's, where it names a live tuned; a stale pid file (its
    process gone, or the PID since given to another program) does not count."""
    text = _read(fs, TUNED_PID)
    if text and text.isdigit():
        return int(text) if _is_tuned(fs, int(text)) else None
    pids = running.get(COMM[TUNED])
    return min(pids) if pids else None


def ini_value(text, key, section=None):
    """The last value of ``key`` in an INI text (in ``section`` when given), or None."""
    value, current = None, None
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('[') and line.endswith(']'):
            current = line[1:-1].strip()
        elif '=' in line and not line.startswith(('#', ';')) and section in (None, current):
            name, dummy, found = line.partition('=')
            if name.strip() == key:
                value = found.strip()
    return value


def is_profile_name(name):
    """Whether ``name`` is a tuned profile name: a directory name in tuned's profile directories, never a path, and
    nothing a command line could take for an option."""
    return bool(re.match(r'^[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,99}$', name)) and name not in ('.', '..')


def tuned_plugins(fs, profiles, depth=0):
    """The plugins (tuned.conf sections, by their ``type`` or name) of ``profiles`` and of what they include, sorted;
    None when a profile's tuned.conf is nowhere to be read."""
    plugins = set()
    for name in profiles:
        text = None
        if is_profile_name(name):
            for directory in TUNED_PROFILE_DIRS:
                text = fs.read_optional('%s/%s/tuned.conf' % (directory, name))
                if text is not None:
                    break
        if text is None:
            return None
        for section in re.findall(r'^\s*\[([^\]]+)\]\s*$', text, re.MULTILINE):
            section = section.strip()
            if section != 'main':
                plugins.add(ini_value(text, 'type', section) or section)
        include = ini_value(text, 'include', 'main')
        if include and depth < _INCLUDE_DEPTH:
            included = tuned_plugins(fs, re.split(r'[\s,]+', include.strip()), depth + 1)
            if included is None:
                return None
            plugins.update(included)
    return sorted(plugins)


def tuned_facts(fs, running):
    pid = tuned_pid(fs, running)
    reapply = (ini_value(fs.read_optional(TUNED_MAIN_CONF), 'reapply_sysctl') or '1').lower()
    profile = _read(fs, TUNED_ACTIVE_PROFILE) or None
    plugins = tuned_plugins(fs, profile.split()) if profile else []
    if plugins is None:
        # A profile whose tuned.conf cannot be read may hold any plugin.
        contested = list(ALL_SUBSYSTEMS)
    else:
        contested = [name for name in ALL_SUBSYSTEMS
                     if any(name in TUNED_PLUGIN_SUBSYSTEMS.get(plugin, ()) for plugin in plugins)]
    return {'running': pid is not None, 'pid': pid, 'profile': profile,
            'profile_mode': _read(fs, TUNED_PROFILE_MODE) or None,
            'reapply_sysctl': reapply not in _FALSE, 'plugins': plugins, 'subsystems': contested}


def ppd_facts(fs, running):
    pids = running.get(COMM[PPD])
    state = fs.read_optional(PPD_STATE)
    return {'running': bool(pids), 'pid': min(pids) if pids else None,
            'profile': ini_value(state, 'Profile', 'State') if state is not None else None,
            'subsystems': ['cpufreq']}


def cpupower_facts(fs):
    """The governor-at-boot services that are enabled: their unit names, in the order of CPUPOWER_UNITS."""
    enabled = [unit for unit in CPUPOWER_UNITS if fs.lexists('%s/%s' % (WANTS_DIR, unit))]
    try:
        sysv = [entry for entry in fs.listdir(SYSV_RUNLEVEL_DIR) if re.match(r'^S\d*cpufrequtils$', entry)]
    except FsError:
        sysv = []
    if sysv and 'cpufrequtils.service' not in enabled:
        enabled.append('cpufrequtils.service')
    return {'enabled': bool(enabled), 'units': enabled, 'subsystems': ['cpufreq']}


def pm_qos_in_force(fs):
    """The CPU latency limit in force in microseconds (PMQOS_MAX_US where nothing limits it), or None where the
    device cannot be read: absent, a kernel without CPU latency QoS, or a user other than root."""
    try:
        data = fs.read_bytes(PMQOS_DEVICE, 4)
    except FsError:
        return None
    return struct.unpack('=i', data)[0] if len(data) == 4 else None


def neighbours(fs):
    """What tuning_facts reports as ``neighbours``: each other tuner found and the PM QoS limit in force."""
    running = processes(fs)
    irqbalance = running.get(COMM[IRQBALANCE])
    return {TUNED: tuned_facts(fs, running), PPD: ppd_facts(fs, running),
            IRQBALANCE: {'running': bool(irqbalance), 'pid': min(irqbalance) if irqbalance else None},
            CPUPOWER: cpupower_facts(fs), 'pm_qos_in_force_us': pm_qos_in_force(fs)}


def describe_tuned(tuned):
    """``tuned (pid 812, profile latency-performance, manual)`` for a message."""
    parts = ['pid %d' % tuned['pid'], 'profile %s' % (tuned['profile'] or 'none')]
    if tuned['profile_mode']:
        parts.append('profile_mode %s' % tuned['profile_mode'])
    return 'tuned (%s)' % ', '.join(parts)


# tuned plugins that write only sysctls: they cover a subsystem's knobs under /proc/sys, not its debugfs or sysfs ones.
_SYSCTL_PLUGINS = ('sysctl',)
# The cpufreq settings that power-profiles-daemon writes on each profile change (the governor where the driver has
# no EPP, the energy-performance preference where it has), and that cpupower.service and cpufrequtils set at boot.
_PPD_SETTINGS = ('governor', 'preference')
_BOOT_GOVERNOR_SETTINGS = ('governor', 'min_freq')


def _tuned_writer(tuned, name, path):
    subsystem = subsystem_of(name)
    if not tuned['running'] or subsystem not in tuned['subsystems']:
        return None
    who = 'tuned is running with profile %s' % (tuned['profile'] or 'none')
    if tuned['plugins'] is None:
        return '%s, whose tuned.conf could not be read, so any of its plugins may write this' % who
    plugins = [plugin for plugin in tuned['plugins'] if subsystem in TUNED_PLUGIN_SUBSYSTEMS.get(plugin, ())
               and (plugin not in _SYSCTL_PLUGINS or (path or '').startswith('/proc/sys/'))]
    if not plugins:
        return None
    several = len(plugins) > 1
    text = '%s and its %s %s this' % (who, '/'.join(plugins), 'plugins write' if several else 'plugin writes')
    if tuned['profile_mode'] == 'auto':
        text += ' (profile_mode auto: tuned picked the profile itself)'
    return text


def drift_writers(found, name, path=None):
    """Who else on the host probably changed the knob ``name`` (at ``path``) after the collection applied it: a
    sentence per tuner in ``found`` (what ``neighbours`` returns) that writes that setting, joined; None where none
    does."""
    writers = [_tuned_writer(found[TUNED], name, path)]
    setting = name.rsplit('.', 1)[-1]
    if name.startswith('cpufreq.policy'):
        ppd = found[PPD]
        if ppd['running'] and setting in _PPD_SETTINGS:
            writers.append('power-profiles-daemon is running with profile %s and sets the governor or the '
                           'energy-performance preference on every profile change' % (ppd['profile'] or 'unknown'))
        if found[CPUPOWER]['enabled'] and setting in _BOOT_GOVERNOR_SETTINGS:
            writers.append('%s is enabled and sets the governor and frequencies at boot'
                           % ' and '.join(found[CPUPOWER]['units']))
    if name.startswith('irq.') and name.endswith('.affinity') and found[IRQBALANCE]['running']:
        writers.append('irqbalance is running (pid %d) and moves IRQ affinities to every CPU it does not ban'
                       % found[IRQBALANCE]['pid'])
    writers = [writer for writer in writers if writer]
    return '; '.join(writers) if writers else None
