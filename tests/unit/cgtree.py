# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""cgroup file systems and systemd for the fake hosts of the unit tests.

``install_layout(host, name)`` adds one of the layouts in ``fixtures/trees/cgroup_layouts.yml`` to a FakeHost and
plugs ``CgroupFS`` into its FakeKernel. ``CgroupFS`` is the kernel's side of cgroupfs, as far as the collection
touches it (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/cpu*.rst):

* mkdir creates a cgroup with its interface files: on v2 the core files plus those of every controller the parent
  enables in cgroup.subtree_control, on v1 those of the hierarchy's controllers;
* rmdir removes one, and answers EBUSY while it holds tasks or child cgroups;
* a PID written to cgroup.procs moves that task (out of every other cgroup of the hierarchy, and in its
  /proc/PID/cgroup); under v2 a non-root cgroup that enables controllers for its children takes no task (EBUSY);
* "+ctrl"/"-ctrl" in cgroup.subtree_control enables or gives back a controller: ENOENT when the cgroup itself does not
  have it, EBUSY when a non-root cgroup with tasks enables one or a child still enables one given back; the children
  gain or lose that controller's files;
* the interface files parse and read back as the kernel does (cpu.max, io.weight "default N", memory.high in whole
  pages, cpu.uclamp.* with two decimals, cpu.shares clamped to 2..262144, ...).

``FakeSystemd`` stands in for systemd as PID 1, a collaborator of the modules under test: it records what it is asked
and, like systemd, creates a started slice's cgroup from its unit file, removes a stopped one, and on a service restart
applies the service's drop-in to the fake process.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re

import yaml

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist, parse_cpulist
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import IO_ERROR, FsError
from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR

LAYOUTS_PATH = os.path.join(TREES_DIR, 'cgroup_layouts.yml')
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE')
UNIT_DIR = '/etc/systemd/system'


def load_layouts():
    with open(LAYOUTS_PATH) as handle:
        return yaml.safe_load(handle)


def install_layout(host, name):
    """Give ``host`` the cgroup layout ``name``; returns its CgroupFS."""
    spec = load_layouts()[name]
    host.write('/proc/1/comm', spec['init'] + '\n')
    host.write('/proc/mounts', host.read('/proc/mounts') + ''.join(line + '\n' for line in spec['mounts']))
    for path, content in (spec.get('files') or {}).items():
        host.write(path, content)
    cgroupfs = CgroupFS(host, spec['hierarchies'])
    cgroupfs.build()
    for link, target in (spec.get('symlinks') or {}).items():
        os.symlink(target, host.path(link))
    host.kernel.cgroupfs = cgroupfs
    return cgroupfs


def _oserror(code):
    return OSError(code, os.strerror(code))


class Hierarchy(object):
    def __init__(self, mount, spec):
        self.mount = mount
        self.version = spec['version']
        self.controllers = list(spec.get('controllers') or [])
        self.subtree_control = list(spec.get('subtree_control') or [])
        self.procs = list(spec.get('procs') or [])
        self.uclamp = bool(spec.get('uclamp'))
        self.io_weight = bool(spec.get('io_weight'))
        self.namespace_root = bool(spec.get('namespace_root'))

    def order(self, controllers):
        """Controllers in the order the kernel prints them (its subsystem order, as cgroup.controllers lists them)."""
        return [name for name in self.controllers if name in controllers]


class CgroupFS(object):
    """The cgroup file systems of a fake host; see the module docstring."""

    def __init__(self, host, hierarchies):
        self.host = host
        self.hierarchies = {mount: Hierarchy(mount, spec) for mount, spec in hierarchies.items()}

    # -- the tree ------------------------------------------------------------------------------------------------------
    def build(self):
        for h in self.hierarchies.values():
            files = {'cgroup.procs': ''.join('%d\n' % pid for pid in h.procs)}
            if h.version == 2:
                files.update({'cgroup.controllers': ' '.join(h.controllers) + '\n',
                              'cgroup.subtree_control': ' '.join(h.order(h.subtree_control)) + '\n',
                              'cgroup.max.depth': 'max\n', 'cpu.stat': 'usage_usec 0\n'})
                if h.namespace_root:
                    files['cgroup.type'] = 'domain\n'
            else:
                files.update(self._v1_files(h))
                files['cpu.rt_runtime_us'] = '950000\n' if 'cpu' in h.controllers else None
            for leaf, content in files.items():
                if content is not None:
                    self.host.write('%s/%s' % (h.mount, leaf), content)

    def owns(self, host_path):
        return host_path in self.hierarchies or self.hierarchy(host_path) is not None

    def hierarchy(self, host_path):
        for mount in sorted(self.hierarchies, key=len, reverse=True):
            if host_path.startswith(mount + '/'):
                return self.hierarchies[mount]
        return None

    def _words(self, host_path):
        return self.host.read(host_path).split() if self.host.exists(host_path) else []

    def procs(self, directory):
        return [int(word) for word in self._words(directory + '/cgroup.procs')]

    def children(self, directory):
        full = self.host.path(directory)
        return sorted('%s/%s' % (directory, name) for name in os.listdir(full) if os.path.isdir(os.path.join(full, name)))

    def _put(self, host_path, value):
        self.host.write(host_path, value + '\n')

    @staticmethod
    def _v2_files(h, controller):
        files = {
            'cpu': {'cpu.weight': '100', 'cpu.weight.nice': '0', 'cpu.max': 'max 100000', 'cpu.idle': '0'},
            'cpuset': {'cpuset.cpus': '', 'cpuset.mems': '', 'cpuset.cpus.partition': 'member'},
            'memory': {'memory.high': 'max', 'memory.max': 'max', 'memory.low': '0', 'memory.min': '0'},
            'io': {'io.max': ''},
            'pids': {'pids.max': 'max'},
        }.get(controller, {})
        if controller == 'cpu' and h.uclamp:
            files.update({'cpu.uclamp.min': '0.00', 'cpu.uclamp.max': 'max'})
        if controller == 'io' and h.io_weight:
            files['io.weight'] = 'default 100'
        return files

    @staticmethod
    def _v1_files(h):
        files = {'tasks': '', 'cgroup.clone_children': '0', 'notify_on_release': '0'}
        if 'cpu' in h.controllers:
            # RT group scheduling (CONFIG_RT_GROUP_SCHED, as on the development machines): a new cgroup gets no
            # real-time runtime; the root's is set in build().
            files.update({'cpu.shares': '1024', 'cpu.cfs_quota_us': '-1', 'cpu.cfs_period_us': '100000',
                          'cpu.stat': 'nr_periods 0', 'cpu.rt_runtime_us': '0', 'cpu.rt_period_us': '1000000'})
            if h.uclamp:
                files.update({'cpu.uclamp.min': '0.00', 'cpu.uclamp.max': 'max'})
        if 'cpuacct' in h.controllers:
            files['cpuacct.usage'] = '0'
        return {leaf: value + '\n' for leaf, value in files.items()}

    # -- mkdir and rmdir -----------------------------------------------------------------------------------------------
    def created(self, directory):
        h = self.hierarchy(directory)
        files = {'cgroup.procs': '\n'}
        if h.version == 2:
            enabled = self._words(directory.rsplit('/', 1)[0] + '/cgroup.subtree_control')
            files.update({'cgroup.controllers': ' '.join(enabled) + '\n', 'cgroup.subtree_control': '\n',
                          'cgroup.type': 'domain\n', 'cgroup.events': 'populated 0\nfrozen 0\n'})
            for controller in enabled:
                files.update({leaf: value + '\n' for leaf, value in self._v2_files(h, controller).items()})
        else:
            files.update(self._v1_files(h))
        for leaf, content in files.items():
            self.host.write('%s/%s' % (directory, leaf), content)

    def removing(self, directory):
        if self.children(directory) or self.procs(directory):
            raise _oserror(errno.EBUSY)
        full = self.host.path(directory)
        for name in os.listdir(full):
            os.unlink(os.path.join(full, name))

    # -- writes --------------------------------------------------------------------------------------------------------
    def write(self, host_path, text):
        directory, leaf = host_path.rsplit('/', 1)
        h = self.hierarchy(host_path)
        handler = _WRITERS.get(leaf)
        if handler is None:
            raise _oserror(errno.EINVAL)
        handler(self, h, directory, host_path, text)

    def _procs(self, h, directory, host_path, text):
        if not text.isdigit():
            raise _oserror(errno.EINVAL)
        pid = int(text)
        is_root = directory == h.mount and not h.namespace_root
        if h.version == 2 and not is_root and self._words(directory + '/cgroup.subtree_control'):
            raise _oserror(errno.EBUSY)
        for dirpath, _dirnames, filenames in os.walk(self.host.path(h.mount)):
            if 'cgroup.procs' in filenames:
                path = '/' + os.path.relpath(os.path.join(dirpath, 'cgroup.procs'), self.host.root)
                kept = [word for word in self._words(path) if word != text]
                self.host.write(path, ''.join(word + '\n' for word in kept))
        self.host.write(host_path, ''.join('%d\n' % p for p in self.procs(directory) + [pid]))
        self._proc_cgroup(h, pid, directory[len(h.mount):] or '/')

    def _proc_cgroup(self, h, pid, relative):
        path = '/proc/%d/cgroup' % pid
        if not self.host.exists(path):
            return
        lines = []
        for line in self.host.read(path).splitlines():
            hid, controllers, dummy = line.split(':', 2)
            mine = controllers == '' if h.version == 2 else controllers == ','.join(h.controllers)
            lines.append('%s:%s:%s' % (hid, controllers, relative) if mine else line)
        self.host.write(path, '\n'.join(lines) + '\n')

    def _subtree_control(self, h, directory, host_path, text):
        if h.version != 2:
            raise _oserror(errno.EINVAL)
        enabled = self._words(host_path)
        offered = h.controllers if directory == h.mount else self._words(directory + '/cgroup.controllers')
        enable, disable = [], []
        for token in text.split():
            name = token[1:]
            if token[:1] not in '+-' or name not in h.controllers:
                raise _oserror(errno.EINVAL)
            (enable if token[0] == '+' else disable).append(name)
        enable = [name for name in enable if name not in enabled]
        disable = [name for name in disable if name in enabled]
        if any(name not in offered for name in enable):
            raise _oserror(errno.ENOENT)
        is_root = directory == h.mount and not h.namespace_root
        if enable and not is_root and self.procs(directory):
            raise _oserror(errno.EBUSY)
        children = self.children(directory)
        if any(name in self._words(child + '/cgroup.subtree_control') for child in children for name in disable):
            raise _oserror(errno.EBUSY)
        now = h.order([name for name in enabled + enable if name not in disable])
        self._put(host_path, ' '.join(now))
        for child in children:
            self._put(child + '/cgroup.controllers', ' '.join(now))
            for name in enable:
                for leaf, value in self._v2_files(h, name).items():
                    self._put('%s/%s' % (child, leaf), value)
            for name in disable:
                for leaf in self._v2_files(h, name):
                    os.unlink(self.host.path('%s/%s' % (child, leaf)))

    def _int(self, host_path, text, low, high, clamp=False):
        if not re.match(r'^-?\d+$', text):
            raise _oserror(errno.EINVAL)
        value = int(text)
        if clamp:
            value = min(max(value, low), high)
        elif not low <= value <= high:
            raise _oserror(errno.ERANGE)
        self._put(host_path, str(value))

    def _cpu_weight(self, h, directory, host_path, text):
        self._int(host_path, text, 1, 10000)

    def _cpu_shares(self, h, directory, host_path, text):
        self._int(host_path, text, 2, 262144, clamp=True)

    def _rt_runtime(self, h, directory, host_path, text):
        """As the kernel's tg_rt_schedulable: no more than the parent has, the children's sum within it, and never
        below what the children already hold (EBUSY)."""
        if not re.match(r'^(-1|[0-9]+)$', text) or directory == h.mount:
            raise _oserror(errno.EINVAL)
        value = int(text)
        parent = directory.rsplit('/', 1)[0]
        siblings = [int(self.host.value(child + '/cpu.rt_runtime_us')) for child in self.children(parent)
                    if child != directory]
        if value < 0 or value + sum(siblings) > int(self.host.value(parent + '/cpu.rt_runtime_us')):
            raise _oserror(errno.EINVAL)
        if sum(int(self.host.value(child + '/cpu.rt_runtime_us')) for child in self.children(directory)) > value:
            raise _oserror(errno.EBUSY)
        self._put(host_path, text)

    def _cfs_quota(self, h, directory, host_path, text):
        if text != '-1' and not (text.isdigit() and int(text) >= 1000):
            raise _oserror(errno.EINVAL)
        self._put(host_path, text)

    def _cfs_period(self, h, directory, host_path, text):
        self._int(host_path, text, 1000, 1000000)

    def _cpu_max(self, h, directory, host_path, text):
        words = text.split()
        period = words[1] if len(words) == 2 else self.host.read(host_path).split()[1]
        if not words or len(words) > 2 or not period.isdigit() or not (words[0] == 'max' or words[0].isdigit()):
            raise _oserror(errno.EINVAL)
        self._put(host_path, '%s %s' % (words[0], period))

    def _cpuset_cpus(self, h, directory, host_path, text):
        try:
            cpus = parse_cpulist(text) if text else set()
        except ValueError:
            raise _oserror(errno.EINVAL)
        online = parse_cpulist(self.host.value('/sys/devices/system/cpu/online'))
        if cpus - online:
            raise _oserror(errno.EINVAL)
        self._put(host_path, format_cpulist(cpus))

    def _memory_high(self, h, directory, host_path, text):
        if text == 'max':
            self._put(host_path, 'max')
        elif text.isdigit():
            self._put(host_path, str(int(text) // PAGE_SIZE * PAGE_SIZE))
        else:
            raise _oserror(errno.EINVAL)

    def _io_weight(self, h, directory, host_path, text):
        match = re.match(r'^(?:default\s+)?(\d+)$', text)
        if not match or not 1 <= int(match.group(1)) <= 10000:
            raise _oserror(errno.EINVAL if not match else errno.ERANGE)
        self._put(host_path, 'default %s' % match.group(1))

    def _uclamp(self, h, directory, host_path, text):
        if text == 'max':
            percent = 100.0
        elif re.match(r'^\d+(\.\d{1,2})?$', text):
            percent = float(text)
        else:
            raise _oserror(errno.EINVAL)
        if percent > 100:
            raise _oserror(errno.ERANGE)
        is_max = host_path.endswith('.max')
        self._put(host_path, 'max' if is_max and percent == 100 else '%.2f' % percent)

    # -- what systemd does ---------------------------------------------------------------------------------------------
    def make_dirs(self, directory):
        """mkdir -p, through the emulation: each new cgroup gets its files."""
        os.makedirs(self.host.path(directory), exist_ok=True)

    def remove_tree(self, directory, to_root=None):
        """Remove a cgroup and those below it, deepest first; their tasks go to the hierarchy's root."""
        h = self.hierarchy(directory + '/x')
        for child in self.children(directory):
            self.remove_tree(child, to_root)
        for pid in self.procs(directory):
            self.write(h.mount + '/cgroup.procs', str(pid))
            if to_root is not None:
                to_root(pid)
        os.rmdir(self.host.path(directory))


_WRITERS = {
    'cgroup.procs': CgroupFS._procs,
    'cgroup.subtree_control': CgroupFS._subtree_control,
    'cpu.weight': CgroupFS._cpu_weight,
    'cpu.max': CgroupFS._cpu_max,
    'cpu.shares': CgroupFS._cpu_shares,
    'cpu.cfs_quota_us': CgroupFS._cfs_quota,
    'cpu.cfs_period_us': CgroupFS._cfs_period,
    'cpu.rt_runtime_us': CgroupFS._rt_runtime,
    'cpuset.cpus': CgroupFS._cpuset_cpus,
    'memory.high': CgroupFS._memory_high,
    'io.weight': CgroupFS._io_weight,
    'cpu.uclamp.min': CgroupFS._uclamp,
    'cpu.uclamp.max': CgroupFS._uclamp,
}

_STAT_POLICY = {'other': 0, 'fifo': 1, 'rr': 2, 'batch': 3, 'idle': 5}
_CONTROLLER_OF = {'CPUWeight': 'cpu', 'CPUQuota': 'cpu', 'AllowedCPUs': 'cpuset', 'MemoryHigh': 'memory',
                  'IOWeight': 'io'}


def unit_settings(text, section):
    """``{setting: value}`` of one section of a unit file or drop-in."""
    settings, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('[') and line.endswith(']'):
            current = line[1:-1]
        elif current == section and '=' in line and not line.startswith('#'):
            key, value = line.split('=', 1)
            settings[key] = value
    return settings


def slice_relative(unit):
    parts = unit[:-len('.slice')].split('-')
    return '/'.join('%s.slice' % '-'.join(parts[:depth]) for depth in range(1, len(parts) + 1))


class FakeSystemd(object):
    """systemd as PID 1 of a fake host; see the module docstring. ``ignore`` holds unit settings whose value does not
    land (the controller is enabled, the value left as it was); ``fail_restart`` units whose restart fails."""

    def __init__(self, host, cgroupfs):
        self.host = host
        self.cgroupfs = cgroupfs
        self.calls = []
        self.services = {}
        # Services stopped along with their slice, by unit: a restart brings the same process back.
        self.stopped = {}
        self.processes = {}
        self.ignore = set()
        self.fail_restart = set()
        # Units started (other than slices, whose cgroup tells) and enabled, as systemd would know them.
        self.running = set()
        self.enabled = set()
        # Slices whose start creates no cgroup: the slice is there, its cgroup is not (its values cannot be read).
        self.hollow = set()

    # -- the Systemctl interface ---------------------------------------------------------------------------------------
    def daemon_reload(self):
        self.calls.append(('daemon-reload',))

    def start(self, unit, restart=False):
        self.calls.append(('restart' if restart else 'start', unit))
        self.enabled.add(unit)
        self.running.add(unit)
        if unit.endswith('.slice') and unit not in self.hollow:
            self._realize(unit)

    def stop(self, unit):
        self.calls.append(('stop', unit))
        self.enabled.discard(unit)
        self.running.discard(unit)
        if unit.endswith('.slice'):
            for h in self.cgroupfs.hierarchies.values():
                directory = '%s/%s' % (h.mount, slice_relative(unit))
                if self.host.exists(directory):
                    # Stopping a slice stops what runs in it.
                    self.cgroupfs.remove_tree(directory, to_root=self._stopped)

    def restart(self, unit):
        self.calls.append(('restart', unit))
        if unit in self.fail_restart:
            raise FsError(IO_ERROR, unit, 'systemctl restart %s failed (rc=1): Job for %s failed.' % (unit, unit))
        if unit in self.stopped:
            self.services[unit] = self.stopped.pop(unit)
        self._place(unit)

    def try_restart(self, unit):
        self.calls.append(('try-restart', unit))

    def is_active(self, unit):
        if unit.endswith('.slice') and unit not in self.hollow:
            return any(self.host.exists('%s/%s' % (h.mount, slice_relative(unit)))
                       for h in self.cgroupfs.hierarchies.values())
        return unit in self.services or unit in self.running

    def is_enabled(self, unit):
        return unit in self.enabled

    def main_pid(self, unit):
        return self.services.get(unit, 0)

    # -- services ------------------------------------------------------------------------------------------------------
    def add_service(self, unit, pid, comm='python3'):
        """A running service with its main process in system.slice, as systemd starts it without a drop-in."""
        self.services[unit] = pid
        self.processes[pid] = {'comm': comm, 'policy': 'other', 'priority': 0, 'nice': 0, 'slack': 50000,
                               'cpus': self.host.value('/sys/devices/system/cpu/online'), 'mems': '0'}
        lines = ['%d:%s:/' % (index + 1, ','.join(h.controllers)) for index, h in
                 enumerate(h for h in self.cgroupfs.hierarchies.values() if h.version == 1)]
        self.host.write('/proc/%d/cgroup' % pid, '\n'.join(lines + ['0::/']) + '\n')
        self._write_process(pid)
        self._move(unit, pid, 'system.slice')

    def _stopped(self, pid):
        for unit in [u for u, p in self.services.items() if p == pid]:
            self.stopped[unit] = self.services.pop(unit)

    def _place(self, unit):
        pid = self.services[unit]
        dropin = '%s/%s.d/90-aitune.conf' % (UNIT_DIR, unit)
        settings = unit_settings(self.host.read(dropin), 'Service') if self.host.exists(dropin) else {}
        process = self.processes[pid]
        policy = settings.get('CPUSchedulingPolicy', 'other')
        process.update(policy=policy, priority=int(settings.get('CPUSchedulingPriority', 0)),
                       nice=int(settings.get('Nice', 0)), slack=int(settings.get('TimerSlackNSec', 50000)),
                       cpus=settings.get('CPUAffinity', self.host.value('/sys/devices/system/cpu/online')))
        self._write_process(pid)
        self._move(unit, pid, settings.get('Slice', 'system.slice'))

    def _move(self, unit, pid, slice_unit):
        for h in self.cgroupfs.hierarchies.values():
            old = self._service_dirs(h, unit)
            directory = '%s/%s/%s' % (h.mount, slice_relative(slice_unit), unit)
            self.cgroupfs.make_dirs(directory)
            self.cgroupfs.write(directory + '/cgroup.procs', str(pid))
            for stale in old:
                if stale != directory and not self.cgroupfs.procs(stale):
                    os.rmdir(self.host.path(stale))

    def _service_dirs(self, h, unit):
        found = []
        for dirpath, _dirnames, _filenames in os.walk(self.host.path(h.mount)):
            if os.path.basename(dirpath) == unit:
                found.append('/' + os.path.relpath(dirpath, self.host.root))
        return found

    def _write_process(self, pid):
        p = self.processes[pid]
        fields = ['0'] * 52
        fields[0], fields[1], fields[2], fields[3] = str(pid), '(%s)' % p['comm'], 'S', '1'
        rt = p['policy'] in ('fifo', 'rr')
        fields[17] = str(-1 - p['priority'] if rt else 20 + p['nice'])
        fields[18] = str(p['nice'])
        fields[19] = '1'
        fields[39] = str(p['priority'])
        fields[40] = str(_STAT_POLICY[p['policy']])
        base = '/proc/%d' % pid
        self.host.write(base + '/stat', ' '.join(fields) + '\n')
        self.host.write(base + '/status', 'Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nCpus_allowed_list:\t%s\n'
                                          'Mems_allowed_list:\t%s\n' % (p['comm'], pid, p['cpus'], p['mems']))
        self.host.write(base + '/timerslack_ns', '%d\n' % p['slack'])

    # -- slices --------------------------------------------------------------------------------------------------------
    def _realize(self, unit):
        settings = unit_settings(self.host.read('%s/%s' % (UNIT_DIR, unit)), 'Slice')
        needed = {_CONTROLLER_OF[key] for key in settings if key in _CONTROLLER_OF}
        settings = {key: value for key, value in settings.items() if key not in self.ignore}
        relative = slice_relative(unit)
        for h in self.cgroupfs.hierarchies.values():
            directory = '%s/%s' % (h.mount, relative)
            if h.version == 2 and h.controllers:
                parent = h.mount
                for part in relative.split('/'):
                    for controller in h.order(needed):
                        if controller not in self.cgroupfs._words(parent + '/cgroup.subtree_control'):
                            self.cgroupfs.write(parent + '/cgroup.subtree_control', '+' + controller)
                    parent = '%s/%s' % (parent, part)
                    self.cgroupfs.make_dirs(parent)
                self._set_v2(directory, settings)
            elif h.version == 2 or 'cpu' in h.controllers:
                self.cgroupfs.make_dirs(directory)
                if 'cpu' in h.controllers:
                    self._set_v1(directory, settings)

    def _set_v2(self, directory, settings):
        values = {}
        if 'CPUWeight' in settings:
            values['cpu.weight'] = settings['CPUWeight']
        if 'CPUQuota' in settings:
            values['cpu.max'] = '%d 100000' % (int(settings['CPUQuota'].rstrip('%')) * 1000)
        if 'AllowedCPUs' in settings:
            values['cpuset.cpus'] = settings['AllowedCPUs']
        if 'MemoryHigh' in settings:
            values['memory.high'] = 'max' if settings['MemoryHigh'] == 'infinity' else settings['MemoryHigh']
        if 'IOWeight' in settings:
            values['io.weight'] = 'default ' + settings['IOWeight']
        for leaf, value in values.items():
            path = '%s/%s' % (directory, leaf)
            if self.host.exists(path):
                self.cgroupfs.write(path, value)

    def _set_v1(self, directory, settings):
        if 'CPUWeight' in settings:
            shares = min(max(int(settings['CPUWeight']) * 1024 // 100, 2), 262144)
            self.cgroupfs.write(directory + '/cpu.shares', str(shares))
        if 'CPUQuota' in settings:
            self.cgroupfs.write(directory + '/cpu.cfs_period_us', '100000')
            self.cgroupfs.write(directory + '/cpu.cfs_quota_us', str(int(settings['CPUQuota'].rstrip('%')) * 1000))
