# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``cgroup.`` knob families: where a slice's interface files live on each cgroup layout, and how their values are
read and checked. Part of the knob registry (_registry.py); the planning behind aitune.kernel.cgroup is in _cgroup.py.

Knob names: ``cgroup.<slice stem>.<interface file>`` (``cgroup.aitune-latency.cpu.weight``) and
``cgroup.<stem or ->.subtree_control.<controller>`` for a parent's controllers, where ``-`` is the root, as systemd
names the root slice ``-.slice``. A ``-`` in a stem means hierarchy: ``aitune-latency`` lives at
``aitune.slice/aitune-latency.slice``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist, parse_cpulist
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_NONE, Family, IntRange, Knob, Location, ValidationError, shown)

# Where a unified (v2) hierarchy is mounted: alone at /sys/fs/cgroup, or at .../unified beside v1 ones (hybrid).
V2_MOUNTS = ('/sys/fs/cgroup', '/sys/fs/cgroup/unified')
# Where the v1 cpu controller is mounted. Hosts that co-mount cpu and cpuacct often add cpu and cpuacct as symlinks to
# the real directory; those are never written through, so the real names come first.
V1_CPU_MOUNTS = ('/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpuacct,cpu', '/sys/fs/cgroup/cpu')

STEM = r'[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*'
ROOT_STEM = '-'

PERIOD_US = 100000
WEIGHT_DEFAULT = 100
SHARES_DEFAULT, SHARES_MIN, SHARES_MAX = 1024, 2, 262144
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
RT_RUNTIME_FILE = 'cpu.rt_runtime_us'


def slice_dir(stem):
    """The slice's cgroup below the hierarchy's root: ``a-b`` -> ``a.slice/a-b.slice``; the root stem -> ``''``."""
    if stem == ROOT_STEM:
        return ''
    parts = stem.split('-')
    return '/'.join('%s.slice' % '-'.join(parts[:depth]) for depth in range(1, len(parts) + 1))


def cgroup_path(mount, stem):
    rel = slice_dir(stem)
    return '%s/%s' % (mount, rel) if rel else mount


# -- validators of the interface files -----------------------------------------------------------------------------------
class _Text(object):
    kind = 'text'

    def current(self, raw):
        return ' '.join(raw.split())


class CpuMax(_Text):
    """cpu.max: ``"QUOTA PERIOD"`` in microseconds, or ``"max PERIOD"``."""

    def describe(self):
        return '"QUOTA PERIOD" in microseconds or "max PERIOD"'

    def canonical(self, name, value, raw_current=None):
        parts = str(value).split() if isinstance(value, (str, int)) and not isinstance(value, bool) else []
        if len(parts) == 1:
            parts.append(str(PERIOD_US))
        try:
            if len(parts) != 2:
                raise ValueError
            quota = 'max' if parts[0] == 'max' else int(parts[0], 10)
            period = int(parts[1], 10)
        except ValueError:
            raise ValidationError('%s: expected %s, got %s' % (name, self.describe(), shown(value)))
        if not 1000 <= period <= 1000000 or (quota != 'max' and quota < 1000):
            raise ValidationError('%s: %s is out of range (quota at least 1000, period 1000 to 1000000)' % (name, shown(value)))
        return '%s %d' % (quota, period)


class CpuListValue(_Text):
    """cpuset.cpus: a CPU list in the kernel's form; empty means "as the parent"."""

    def describe(self):
        return 'a CPU list such as "2-7"'

    def canonical(self, name, value, raw_current=None):
        if value in ('', None):
            return ''
        return format_cpulist(parse_cpulist(value, what=name))

    def current(self, raw):
        text = raw.strip()
        return format_cpulist(parse_cpulist(text)) if text else ''


class MemoryBytes(_Text):
    """memory.high: ``max`` or bytes; the kernel keeps whole pages, so the value reads back rounded down to one."""

    def describe(self):
        return 'a byte count, or "max"'

    def canonical(self, name, value, raw_current=None):
        if str(value).strip() in ('max', 'infinity'):
            return 'max'
        number = parse_bytes(name, value)
        return str(number // PAGE_SIZE * PAGE_SIZE)


class IoWeight(_Text):
    """io.weight: reads ``default N`` (then per-device lines); a plain ``N`` written sets the default."""

    def describe(self):
        return 'an integer from 1 to 10000'

    def canonical(self, name, value, raw_current=None):
        return IntRange(1, 10000).canonical(name, value)

    def current(self, raw):
        for line in raw.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == 'default':
                return words[1]
        return raw.strip()


class Uclamp(_Text):
    """cpu.uclamp.min/max: a percent with two decimals; the kernel prints 100% of uclamp.max as ``max``."""

    def __init__(self, is_max):
        self.is_max = is_max

    def describe(self):
        return 'a percent from 0 to 100'

    def canonical(self, name, value, raw_current=None):
        percent = 100.0 if str(value).strip() == 'max' else parse_percent(name, value)
        if self.is_max and percent >= 100:
            return 'max'
        return '%.2f' % percent


class ControllerToggle(_Text):
    """One controller in a cgroup's cgroup.subtree_control, as the token the kernel takes: ``+cpu`` or ``-cpu``.

    The value is written as it is, so enabling and giving back are both one write; the kernel reads the file back as
    the list of enabled controllers."""

    def __init__(self, controller):
        self.controller = controller

    def describe(self):
        return '"+%s" or "-%s"' % (self.controller, self.controller)

    def canonical(self, name, value, raw_current=None):
        text = str(value).strip().lower()
        if text in ('+' + self.controller, '1', 'true', 'yes', 'on'):
            return '+' + self.controller
        if text in ('-' + self.controller, '0', 'false', 'no', 'off'):
            return '-' + self.controller
        raise ValidationError('%s: expected %s, got %s' % (name, self.describe(), shown(value)))

    def current(self, raw):
        return ('+' if self.controller in raw.split() else '-') + self.controller


def parse_bytes(name, value):
    """``8G``, ``512M``, ``1024K`` or a plain byte count -> bytes."""
    if isinstance(value, bool):
        raise ValidationError('%s: expected a byte count such as 8G, got the boolean %s' % (name, shown(value)))
    match = re.match(r'^\s*(\d+)\s*([KMGT]?)B?\s*$', str(value), re.IGNORECASE)
    if not match:
        raise ValidationError('%s: expected a byte count such as 8G, 512M or 1073741824, got %s' % (name, shown(value)))
    number = int(match.group(1)) << (10 * ' KMGT'.index(match.group(2).upper() or ' '))
    if number < PAGE_SIZE:
        raise ValidationError('%s: %d bytes is less than a page (%d bytes); that would throttle every allocation'
                              % (name, number, PAGE_SIZE))
    return number


def parse_percent(name, value):
    if isinstance(value, bool):
        raise ValidationError('%s: expected a percent from 0 to 100, got the boolean %s' % (name, shown(value)))
    try:
        percent = round(float(str(value).strip().rstrip('%')), 2)
    except ValueError:
        raise ValidationError('%s: expected a percent from 0 to 100, got %s' % (name, shown(value)))
    if not 0 <= percent <= 100:
        raise ValidationError('%s: %s is out of range, expected a percent from 0 to 100' % (name, value))
    return percent


# -- the knob families -------------------------------------------------------------------------------------------------
_V2, _V1, _ANY = 'v2', 'v1', 'any'
# interface file -> (validator, hierarchy, what it is, its value in a new cgroup)
SLICE_FILES = {
    'cpu.weight': (lambda: IntRange(1, 10000), _V2, 'CPU weight against sibling cgroups', '100'),
    'cpu.max': (CpuMax, _V2, 'CPU bandwidth limit, "quota period" in microseconds', 'max 100000'),
    'cpuset.cpus': (CpuListValue, _V2, 'CPUs the cgroup may run on', ''),
    'memory.high': (MemoryBytes, _V2, 'memory use above which the cgroup is throttled and reclaimed', 'max'),
    'io.weight': (IoWeight, _V2, 'I/O weight against sibling cgroups', '100'),
    'cpu.uclamp.min': (lambda: Uclamp(False), _ANY, 'utilization clamp floor, percent', '0.00'),
    'cpu.uclamp.max': (lambda: Uclamp(True), _ANY, 'utilization clamp ceiling, percent', 'max'),
    'cpu.shares': (lambda: IntRange(SHARES_MIN, SHARES_MAX), _V1, 'CPU shares against sibling cgroups (v1)', '1024'),
    'cpu.cfs_quota_us': (lambda: IntRange(-1, 1 << 40), _V1, 'CPU bandwidth quota per period (v1), -1 for none', '-1'),
    'cpu.cfs_period_us': (lambda: IntRange(1000, 1000000), _V1, 'CPU bandwidth period (v1)', '100000'),
    RT_RUNTIME_FILE: (lambda: IntRange(-1, (1 << 31) - 1), _V1,
                      'real-time runtime per cpu.rt_period_us (v1 with RT group scheduling)', '0'),
}
CONTROLLERS = ('cpu', 'cpuset', 'io', 'memory')
SLICE_FILE_PATTERN = r'cgroup\.(%s)\.(%s)' % (STEM, '|'.join(re.escape(leaf) for leaf in sorted(SLICE_FILES)))
TOGGLE_PATTERN = r'cgroup\.(-|%s)\.subtree_control\.(%s)' % (STEM, '|'.join(CONTROLLERS))
SLICE_FILE_NAME = re.compile('^%s$' % SLICE_FILE_PATTERN)


def _locations(stem, leaf, hierarchy):
    mounts = {_V2: V2_MOUNTS, _V1: V1_CPU_MOUNTS, _ANY: V2_MOUNTS + V1_CPU_MOUNTS}[hierarchy]
    return [Location('%s/%s' % (cgroup_path(mount, stem), leaf)) for mount in mounts]


def slice_file_knob(stem, leaf):
    validator, hierarchy, what, dummy = SLICE_FILES[leaf]
    name = '%s.slice' % stem
    note = 'the cgroup of %s does not exist (the slice is not started or created) or its controller is not enabled' % name
    if leaf.startswith('cpu.uclamp'):
        note += '; cpu.uclamp.* also needs a kernel with CONFIG_UCLAMP_TASK_GROUP'
    return Knob('cgroup.%s.%s' % (stem, leaf), 'slices', validator(), _locations(stem, leaf, hierarchy), PERSIST_NONE,
                '%s of %s (%s)' % (leaf, name, what), absent_note=note)


def toggle_knob(stem, controller):
    where = 'the root cgroup' if stem == ROOT_STEM else '%s.slice' % stem
    return Knob('cgroup.%s.subtree_control.%s' % (stem, controller), 'slices', ControllerToggle(controller),
                _locations(stem, 'cgroup.subtree_control', _V2), PERSIST_NONE,
                'the %s controller for the children of %s (cgroup v2)' % (controller, where),
                absent_note='no cgroup v2 hierarchy holds %s' % where)


FAMILIES = (
    Family(SLICE_FILE_PATTERN, lambda match: slice_file_knob(match.group(1), match.group(2)),
           'cgroup.aitune-latency.cpu.weight'),
    Family(TOGGLE_PATTERN, lambda match: toggle_knob(match.group(1), match.group(2)), 'cgroup.-.subtree_control.cpu'),
)
