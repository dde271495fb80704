# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""CPU power trees for the unit tests: cpufreq policies and cpuidle states laid out as the kernel lays them out, and
the kernel's rules for writes to them.

``fixtures/trees/cpu_*.yml`` describe one side each (a cpufreq driver, a cpuidle driver); ``add_cpu_tree(host,
'cpu_intel_pstate', 'cpu_intel_idle')`` adds them to a FakeHost. A description holds:

* ``online`` / ``present``: CPU lists; every present CPU gets its ``cpuN`` directory;
* ``policies``: ``{policy number: [CPUs]}``, each with ``policy_files`` (``{cpus}`` is the policy's CPU list) in
  ``/sys/devices/system/cpu/cpufreq/policyN``, and for each CPU the kernel's symlink ``cpuN/cpufreq ->
  ../cpufreq/policyN``;
* ``cpu_files``: files in every present ``cpuN`` directory;
* ``idle``: the cpuidle driver, governor and states, written into every online CPU;
* ``modules``: ``{module: {parameters: {name: value}, loadable: bool, read_only: bool}}``, each module's
  ``/sys/module/<module>/parameters``. A loadable module also has the ``initstate``, ``refcnt`` and ``holders`` the
  kernel gives a loaded module; a built-in one shows its parameters alone. ``read_only`` gives every parameter mode
  0444, as ``module_param(..., 0444)`` does. Later trees add modules, and keys of a module, to earlier ones;
* ``files`` and ``dirs``: anything else.

``CpuKernel`` sits over FakeKernel's write emulation, for the files whose rules FakeKernel does not know: a governor
or EPP write must name an offered value (EINVAL otherwise), intel_pstate and amd-pstate-epp refuse a preference
other than ``performance`` under the performance governor (EBUSY), and force it to ``performance`` while that
governor is set (giving the old one back after), and ``scaling_min_freq`` is clamped between ``cpuinfo_min_freq`` and
``scaling_max_freq``. It also parses writes to module parameters as the kernel's ``param_set_uint`` and
``param_set_bool`` do: a bool parameter (one that reads ``Y`` or ``N``) takes the spellings ``kstrtobool`` knows and
reads back ``Y`` or ``N``; any other takes an unsigned 32-bit integer (EINVAL otherwise, ERANGE beyond 32 bits).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re

import yaml

from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR

CPU_DIR = '/sys/devices/system/cpu'
PMQOS_DEVICE = '/dev/cpu_dma_latency'
MODULE_PARAM = re.compile(r'^/sys/module/[^/]+/parameters/[^/]+$')
UINT_MAX = (1 << 32) - 1
KSTRTOUINT = re.compile(r'^\+?(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))$')
EPP_LOCKED_BY_PERFORMANCE = ('intel_pstate', 'amd-pstate-epp')


def _cpus(text):
    cpus = set()
    for part in str(text).split(','):
        low, dummy, high = part.partition('-')
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def load_cpu_spec(*names):
    """The merged description of the named ``cpu_*.yml`` trees; later trees add to and override earlier ones."""
    spec = {'policies': {}, 'policy_files': {}, 'cpu_files': {}, 'files': {}, 'dirs': [], 'idle': None, 'modules': {}}
    for name in names:
        with open(os.path.join(TREES_DIR, '%s.yml' % name)) as handle:
            part = yaml.safe_load(handle)
        for key in ('online', 'present'):
            if key in part:
                spec[key] = str(part[key])
        for key in ('policies', 'policy_files', 'cpu_files', 'files'):
            spec[key].update(part.get(key) or {})
        spec['dirs'].extend(part.get('dirs') or [])
        if part.get('idle') is not None:
            spec['idle'] = part['idle']
        for module, description in (part.get('modules') or {}).items():
            spec['modules'].setdefault(module, {}).update(description)
    spec.setdefault('online', '0-3')
    spec.setdefault('present', spec['online'])
    return spec


def add_cpu_tree(host, *names):
    """Write the named CPU trees into ``host``; returns the merged description."""
    spec = load_cpu_spec(*names)
    online, present = _cpus(spec['online']), _cpus(spec['present'])
    files = {
        CPU_DIR + '/online': spec['online'],
        CPU_DIR + '/present': spec['present'],
        CPU_DIR + '/possible': spec['present'],
        CPU_DIR + '/offline': ','.join(str(cpu) for cpu in sorted(present - online)),
    }
    for cpu in sorted(present):
        if cpu:
            files['%s/cpu%d/online' % (CPU_DIR, cpu)] = '1' if cpu in online else '0'
        for leaf, content in spec['cpu_files'].items():
            files['%s/cpu%d/%s' % (CPU_DIR, cpu, leaf)] = content
    for number, cpus in spec['policies'].items():
        for leaf, content in spec['policy_files'].items():
            files['%s/cpufreq/policy%d/%s' % (CPU_DIR, number, leaf)] = str(content).replace(
                '{cpus}', ' '.join(str(cpu) for cpu in cpus))
    idle = spec['idle']
    if idle is not None:
        files[CPU_DIR + '/cpuidle/current_driver'] = idle['driver']
        files[CPU_DIR + '/cpuidle/current_governor'] = idle['governor']
        files[CPU_DIR + '/cpuidle/current_governor_ro'] = idle['governor']
        files[CPU_DIR + '/cpuidle/available_governors'] = idle['available_governors']
        files[PMQOS_DEVICE] = ''
        for cpu in sorted(online):
            for number, state in enumerate(idle['states']):
                base = '%s/cpu%d/cpuidle/state%d/' % (CPU_DIR, cpu, number)
                for leaf in ('name', 'desc', 'latency', 'residency'):
                    files[base + leaf] = state[leaf]
                files.update({base + 'disable': '0', base + 'default_status': 'enabled', base + 'usage': '0',
                              base + 'time': '0', base + 'above': '0', base + 'below': '0', base + 'rejected': '0',
                              base + 'power': '4294967295'})
    read_only = []
    for module, description in spec['modules'].items():
        base = '/sys/module/%s/' % module
        for param, value in (description.get('parameters') or {}).items():
            files[base + 'parameters/' + param] = value
            if description.get('read_only'):
                read_only.append(base + 'parameters/' + param)
        if description.get('loadable'):
            files.update({base + 'initstate': 'live', base + 'refcnt': '1'})
            spec['dirs'].append(base + 'holders')
    files.update(spec['files'])
    for path, content in sorted(files.items()):
        host.write(path, '%s\n' % content if content != '' else '')
    for path in read_only:
        os.chmod(host.path(path), 0o444)
    for path in spec['dirs'] + ['%s/cpu%d' % (CPU_DIR, cpu) for cpu in sorted(present)]:
        os.makedirs(host.path(path), exist_ok=True)
    for number, cpus in spec['policies'].items():
        for cpu in cpus:
            if cpu in online:
                os.symlink('../cpufreq/policy%d' % number, host.path('%s/cpu%d/cpufreq' % (CPU_DIR, cpu)))
    return spec


class CpuKernel(object):
    """The kernel's rules for cpufreq word and frequency files, over FakeKernel (see the module docstring).

    Writes it handles are recorded in ``host.kernel.writes`` and honour ``host.kernel.reject`` like FakeKernel's own.
    """

    def __init__(self, host):
        self.host = host
        self.below = None
        self.saved_preference = {}

    def install(self, setattr_):
        self.below = os.write
        setattr_(os, 'write', self._write)

    def _write(self, fd, data):
        path = self.host.kernel._host_path(fd=fd)
        leaf = os.path.basename(path or '')
        rule = {'scaling_governor': self._governor, 'energy_performance_preference': self._preference,
                'scaling_min_freq': self._min_freq}.get(leaf)
        if path and MODULE_PARAM.match(path):
            rule, argument = self._module_param, path
        elif rule is None or not path.startswith(CPU_DIR + '/cpufreq/'):
            return self.below(fd, data)
        else:
            argument = os.path.dirname(path)
        text = bytes(data).decode('utf-8').strip()
        self.host.kernel.writes.append((path, text))
        if path in self.host.kernel.reject:
            raise OSError(self.host.kernel.reject[path], os.strerror(self.host.kernel.reject[path]))
        self.host.kernel._replace(fd, rule(argument, text))
        return len(data)

    def _value(self, policy_dir, leaf):
        return self.host.value('%s/%s' % (policy_dir, leaf))

    @staticmethod
    def _refuse(code):
        raise OSError(code, os.strerror(code))

    def _governor(self, policy_dir, text):
        if text not in self._value(policy_dir, 'scaling_available_governors').split():
            self._refuse(errno.EINVAL)
        preference = policy_dir + '/energy_performance_preference'
        if self.host.exists(preference) and self._value(policy_dir, 'scaling_driver') in EPP_LOCKED_BY_PERFORMANCE:
            was = self._value(policy_dir, 'scaling_governor')
            if text == 'performance' and was != 'performance':
                self.saved_preference[policy_dir] = self.host.value(preference)
                self.host.write(preference, 'performance\n')
            elif text != 'performance' and was == 'performance' and policy_dir in self.saved_preference:
                self.host.write(preference, self.saved_preference.pop(policy_dir) + '\n')
        return text

    def _preference(self, policy_dir, text):
        if text not in self._value(policy_dir, 'energy_performance_available_preferences').split():
            self._refuse(errno.EINVAL)
        if self._value(policy_dir, 'scaling_driver') in EPP_LOCKED_BY_PERFORMANCE \
                and self._value(policy_dir, 'scaling_governor') == 'performance' and text != 'performance':
            self._refuse(errno.EBUSY)
        self.saved_preference.pop(policy_dir, None)
        return text

    def _module_param(self, path, text):
        """What a module parameter reads after ``text`` was written: Y or N for a bool one, else an unsigned int."""
        if self.host.value(path) in ('Y', 'N'):
            # kstrtobool: "on" and "off" are spelled out, otherwise the first character decides.
            if text.lower() in ('on', 'off'):
                return 'Y' if text.lower() == 'on' else 'N'
            if text[:1] not in ('y', 'Y', '1', 'n', 'N', '0'):
                self._refuse(errno.EINVAL)
            return 'Y' if text[:1] in ('y', 'Y', '1') else 'N'
        # kstrtouint with base 0: an optional "+", then decimal, 0x hex or 0 octal; nothing beyond 32 bits.
        match = KSTRTOUINT.match(text)
        if not match:
            self._refuse(errno.EINVAL)
        hexa, octal, decimal = match.groups()
        number = int(hexa, 16) if hexa else int(octal, 8) if octal else int(decimal, 10)
        if number > UINT_MAX:
            self._refuse(errno.ERANGE)
        return str(number)

    def _min_freq(self, policy_dir, text):
        if not text.isdigit():
            self._refuse(errno.EINVAL)
        low = int(self._value(policy_dir, 'cpuinfo_min_freq'))
        high = int(self._value(policy_dir, 'scaling_max_freq'))
        return str(min(max(int(text), low), high))


def make_cpu_host(make_host, setattr_, *trees, **kwargs):
    """A FakeHost with the named CPU trees and both kernel emulations live."""
    host = make_host(kwargs.pop('kernel', '6.12'), **kwargs)
    add_cpu_tree(host, *trees)
    CpuKernel(host).install(setattr_)
    return host


def make_case_host(make_cpu, case):
    """The host a case-table row describes: its CPU trees, then the values its ``set`` entry writes first."""
    host = make_cpu(*case['trees'])
    for path, value in (case.get('set') or {}).items():
        host.write(path, value + '\n')
    return host
