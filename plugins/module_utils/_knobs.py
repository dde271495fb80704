# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The knob registry: abstract names, typed validators, where each knob lives on which kernel, and how it persists.

A knob's ``locations`` are candidate paths tagged with the kernel versions they belong to (FIELD_NOTES section 1).
Resolution probes them, trying the ones that match the running kernel first, so a distribution backport that moved a
knob early is still found.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._kernel import DEBUGFS

PERSIST_SYSCTL = 'sysctl'
PERSIST_TMPFILES = 'tmpfiles'
# Set by systemd from a unit the collection owns (a slice's CPUWeight=): read back, never written by the engine.
PERSIST_SYSTEMD = 'systemd'
# A parameter of a loadable kernel module: an ``options`` line in the modprobe.d file, which modprobe reads each time
# the module loads. A tmpfiles.d line would race the module's load at boot, and is skipped when the file is not there.
PERSIST_MODPROBE = 'modprobe'
# Live only: the knob's module persists it some other way (udev rules, irqbalance), or it cannot persist at all.
PERSIST_NONE = None

# Dotted abstract names; later segments may carry '-' for device, unit and cgroup names. No '/' and no empty segment,
# so a name can never be a path or climb out of one.
KNOB_NAME = re.compile(r'^[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+$')
# The one wider form: an IRQ known by its identity (_knobs_irq), whose action names carry '.', ':', '@', '[' and ']',
# and whose qualifier adds '~', '#' and ','. The fixed suffix ends the name, so the middle may hold dots; the family's
# own pattern in _knobs_irq is the strict one, and no name may hold '/' or '..' (valid_knob_name).
IDENTITY_KNOB_NAME = re.compile(r'^irq\.[A-Za-z0-9_][A-Za-z0-9_.:@+,~#\[\]-]{0,400}\.affinity$')


def valid_knob_name(name):
    """Whether ``name`` has the form of a knob name: never a path, never a climb out of one."""
    return isinstance(name, str) and bool(KNOB_NAME.match(name) or IDENTITY_KNOB_NAME.match(name)) \
        and '/' not in name and '..' not in name


INT64_MAX = (1 << 63) - 1
# Where the kernel shows a module's parameters, built in or loaded: /sys/module/<module>/parameters/<parameter>. The
# names are C identifiers, so the modprobe.d line made from them cannot carry anything else.
MODULE_DIR = '/sys/module'
MODULE_PARAM_PATH = re.compile(r'^%s/([A-Za-z0-9_]+)/parameters/([A-Za-z0-9_]+)$' % MODULE_DIR)


class ValidationError(ValueError):
    pass


# How much of a refused value a message shows: enough to recognise it, never a whole megabyte pasted into a variable.
SHOWN_CHARS = 80


def shown(value, limit=SHOWN_CHARS):
    """``repr(value)`` for an error message, cut to its first ``limit`` characters with the full size said after it:
    every refusal that echoes what it was given goes through this, so a huge value cannot flood the message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, (list, tuple, dict)):
        return '%s... (%d items)' % (text[:limit], len(value))
    return '%s... (%d characters)' % (text[:limit], len(value) if isinstance(value, (str, bytes)) else len(text))


# Restore scopes: the abstract-name prefixes each subsystem owns.
SUBSYSTEM_PREFIXES = {
    'sched': ('sched.',),
    'memory': ('vm.', 'thp.'),
    'hugepages': ('hugepages.',),
    'block': ('block.',),
    'cpufreq': ('cpufreq.',),
    'cpuidle': ('cpuidle.',),
    'cgroup': ('cgroup.',),
    'placement': ('placement.',),
    'irq': ('irq.', 'workqueue.'),
}
SUBSYSTEMS = tuple(sorted(SUBSYSTEM_PREFIXES))


def subsystem_of(name):
    for subsystem, prefixes in SUBSYSTEM_PREFIXES.items():
        if name.startswith(prefixes):
            return subsystem
    return name.split('.', 1)[0]


# -- validators ------------------------------------------------------------------------------------------------------
class IntRange(object):
    """An integer between ``low`` and ``high``, inclusive. Booleans are refused: ``True`` is not a count."""

    kind = 'int'

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def describe(self):
        return 'an integer from %d to %d' % (self.low, self.high)

    def canonical(self, name, value, raw_current=None):
        if isinstance(value, bool):
            raise ValidationError('%s: expected %s, got the boolean %s' % (name, self.describe(), shown(value)))
        try:
            number = int(str(value).strip(), 10)
        except (TypeError, ValueError):
            raise ValidationError('%s: expected %s, got %s' % (name, self.describe(), shown(value)))
        if not self.low <= number <= self.high:
            raise ValidationError('%s: %d is out of range, expected %s' % (name, number, self.describe()))
        return str(number)

    def current(self, raw):
        return raw.strip()


class Switch(IntRange):
    """A 0/1 kernel switch. Accepts booleans and the usual spellings, stores ``0`` or ``1``."""

    kind = 'bool'
    _TRUE = ('1', 'true', 'yes', 'on')
    _FALSE = ('0', 'false', 'no', 'off')

    def __init__(self):
        super(Switch, self).__init__(0, 1)

    def describe(self):
        return 'a boolean (0 or 1)'

    def canonical(self, name, value, raw_current=None):
        text = str(value).strip().lower()
        if text in self._TRUE:
            return '1'
        if text in self._FALSE:
            return '0'
        raise ValidationError('%s: expected %s, got %s' % (name, self.describe(), shown(value)))


class YesNo(object):
    """A bool module parameter: the kernel reads ``Y`` or ``N`` back, whatever spelling was written. Accepts booleans
    and the usual spellings, stores ``Y`` or ``N``."""

    kind = 'bool'
    _TRUE = ('y', 'yes', '1', 'true', 'on')
    _FALSE = ('n', 'no', '0', 'false', 'off')

    def describe(self):
        return 'a boolean (Y or N)'

    def canonical(self, name, value, raw_current=None):
        text = str(value).strip().lower()
        if text in self._TRUE:
            return 'Y'
        if text in self._FALSE:
            return 'N'
        raise ValidationError('%s: expected %s, got %s' % (name, self.describe(), shown(value)))

    def current(self, raw):
        return raw.strip()


class KernelChoice(object):
    """A word from the kernel's own bracketed list, as in ``always [madvise] never``; the brackets mark the current."""

    kind = 'choice'

    def describe(self):
        return "one of the values the kernel lists in the knob's file"

    @staticmethod
    def offered(raw):
        return [word.strip('[]') for word in raw.split()]

    def canonical(self, name, value, raw_current=None):
        text = str(value).strip()
        offered = self.offered(raw_current or '')
        if text not in offered:
            raise ValidationError('%s: %s is not offered by this kernel, which offers: %s'
                                  % (name, shown(text), ', '.join(offered) or 'nothing'))
        return text

    def current(self, raw):
        match = re.search(r'\[([^\]]+)\]', raw)
        return match.group(1) if match else raw.strip()


# -- knobs -----------------------------------------------------------------------------------------------------------
class Location(object):
    """A candidate path for a knob, valid from kernel ``since`` up to, not including, ``until``."""

    def __init__(self, path, since=None, until=None):
        self.path = path
        self.since = since
        self.until = until

    def matches(self, version):
        return (self.since is None or version >= self.since) and (self.until is None or version < self.until)

    @property
    def on_debugfs(self):
        return self.path.startswith(DEBUGFS + '/')

    def span(self):
        """The kernels this location belongs to, as a reason names them: ``from 5.13``, ``before 6.6``, ``from 5.13,
        before 6.6``; None for a location every kernel has, which needs no words."""
        parts = (['from %d.%d' % self.since] if self.since else []) + \
            (['before %d.%d' % self.until] if self.until else [])
        return ', '.join(parts) or None


class Knob(object):
    """One tunable. ``option`` is the module option that sets it; ``absent_note`` explains why a kernel may lack it;
    ``absent_on_rt`` says that its kernel option depends on !PREEMPT_RT (in 6.1, and in the RT patch sets before the
    merge), so a PREEMPT_RT kernel is built without it and its reason says so."""

    def __init__(self, name, option, validator, locations, persist, description, absent_note=None, pair=None,
                 absent_on_rt=False):
        if not valid_knob_name(name):
            raise ValueError('invalid knob name %r' % name)
        self.name = name
        self.subsystem = subsystem_of(name)
        self.option = option
        self.validator = validator
        self.locations = locations
        self.persist = persist
        self.description = description
        self.absent_note = absent_note
        self.absent_on_rt = absent_on_rt
        # The other half of a ratio/bytes pair: writing one makes the kernel zero the other (vm.dirty_*).
        self.pair = pair

    # A knob whose file is found on the host at each run (an IRQ known by its identity, whose number changes across
    # boots), not given by its locations: the engine asks locate() before probing, restoring and reading back.
    dynamic = False
    # A knob whose recorded original, where another knob names the same file, is the older one (the numbered IRQ knobs
    # of earlier versions): restore writes it after the others, so the older original is what the file ends with.
    restore_last = False

    def ordered_locations(self, version):
        matching = [loc for loc in self.locations if loc.matches(version)]
        return matching + [loc for loc in self.locations if loc not in matching]

    def locate(self, fs, recorded_path=None, recorded_at=None):
        """The knob's file on the host now: ``(path, None)``, or ``(None, reason)`` where the setting can no longer be
        found there and nothing may be written for it. ``recorded_path`` and ``recorded_at`` are what a baseline or
        state entry recorded (for a fixed file, the path to use)."""
        return recorded_path, None

    def refused(self, fs, path, error):
        """Why the kernel refused to put this knob's original back (``error``, an FsError from the write), and whether
        that refusal is final: ``(reason, final)``. A final refusal leaves nothing a later restore could do, so the
        original is dropped; any other keeps it for the next restore."""
        return 'cannot restore: %s' % error, False

    def canonical(self, value, raw_current=None):
        return self.validator.canonical(self.name, value, raw_current)

    def current(self, raw):
        return self.validator.current(raw)


def _sched_debug(leaf, since=(5, 13), until=None):
    return Location('%s/sched/%s' % (DEBUGFS, leaf), since=since, until=until)


def _proc_sched(leaf):
    # Before 5.13 the knobs were sysctls, and only with CONFIG_SCHED_DEBUG.
    return Location('/proc/sys/kernel/sched_%s' % leaf, until=(5, 13))


def _vm(leaf):
    return Location('/proc/sys/vm/%s' % leaf)


_THP = '/sys/kernel/mm/transparent_hugepage'
_NS_MAX = 1000000000

SCHED_KNOBS = (
    Knob('sched.base_slice_ns', 'base_slice_ns', IntRange(100000, _NS_MAX),
         [_sched_debug('base_slice_ns', since=(6, 6)), _sched_debug('min_granularity_ns', until=(6, 6)),
          _proc_sched('min_granularity_ns')],
         PERSIST_TMPFILES,
         'Scheduler base slice (EEVDF, 6.6+) or minimum granularity (CFS, before 6.6).',
         absent_note='needs CONFIG_SCHED_DEBUG before 5.13'),
    Knob('sched.wakeup_granularity_ns', 'wakeup_granularity_ns', IntRange(0, _NS_MAX),
         [_sched_debug('wakeup_granularity_ns', until=(6, 6)), _proc_sched('wakeup_granularity_ns')],
         PERSIST_TMPFILES, 'CFS wakeup preemption granularity.',
         absent_note='removed with EEVDF in 6.6'),
    Knob('sched.migration_cost_ns', 'migration_cost_ns', IntRange(0, _NS_MAX),
         [_sched_debug('migration_cost_ns'), _proc_sched('migration_cost_ns')],
         PERSIST_TMPFILES, 'How long a task stays cache-hot against migration.',
         absent_note='needs CONFIG_SCHED_DEBUG before 5.13'),
    Knob('sched.nr_migrate', 'nr_migrate', IntRange(1, 1 << 20),
         [_sched_debug('nr_migrate'), _proc_sched('nr_migrate')],
         PERSIST_TMPFILES, 'Tasks moved per load-balancing pass.',
         absent_note='needs CONFIG_SCHED_DEBUG before 5.13'),
    Knob('sched.autogroup', 'autogroup', Switch(),
         [Location('/proc/sys/kernel/sched_autogroup_enabled')],
         PERSIST_SYSCTL, 'Per-session autogrouping of tasks in the root cpu cgroup.',
         absent_note='needs CONFIG_SCHED_AUTOGROUP'),
    Knob('sched.numa_balancing', 'numa_balancing', IntRange(0, 3),
         [Location('/proc/sys/kernel/numa_balancing')],
         PERSIST_SYSCTL, 'Automatic NUMA balancing (0 off, 1 normal, 2 memory tiering, 3 both).',
         absent_note='needs CONFIG_NUMA_BALANCING', absent_on_rt=True),
    Knob('sched.timer_migration', 'timer_migration', Switch(),
         [Location('/proc/sys/kernel/timer_migration')],
         PERSIST_SYSCTL, 'Migration of timers away from idle CPUs.',
         absent_note='needs CONFIG_NO_HZ_COMMON and SMP'),
    Knob('sched.rt_runtime_us', 'rt_runtime_us', IntRange(-1, (1 << 31) - 1),
         [Location('/proc/sys/kernel/sched_rt_runtime_us')],
         PERSIST_SYSCTL, 'RT throttling: microseconds per period that RT tasks may run; -1 disables throttling.'),
)

MEMORY_KNOBS = (
    Knob('vm.swappiness', 'swappiness', IntRange(0, 200), [_vm('swappiness')], PERSIST_SYSCTL,
         'Relative preference for reclaiming anonymous memory over file cache.'),
    Knob('thp.enabled', 'thp_enabled', KernelChoice(), [Location(_THP + '/enabled')], PERSIST_TMPFILES,
         'Transparent hugepages policy.', absent_note='needs CONFIG_TRANSPARENT_HUGEPAGE', absent_on_rt=True),
    Knob('thp.defrag', 'thp_defrag', KernelChoice(), [Location(_THP + '/defrag')], PERSIST_TMPFILES,
         'Transparent hugepages direct-compaction policy.', absent_note='needs CONFIG_TRANSPARENT_HUGEPAGE',
         absent_on_rt=True),
    Knob('thp.khugepaged_defrag', 'khugepaged_defrag', Switch(), [Location(_THP + '/khugepaged/defrag')],
         PERSIST_TMPFILES, 'Whether khugepaged compacts memory to build hugepages.',
         absent_note='needs CONFIG_TRANSPARENT_HUGEPAGE', absent_on_rt=True),
    Knob('vm.dirty_ratio', 'dirty_ratio', IntRange(0, 100), [_vm('dirty_ratio')], PERSIST_SYSCTL,
         'Dirty page-cache limit, percent of available memory, at which writers block.', pair='vm.dirty_bytes'),
    Knob('vm.dirty_bytes', 'dirty_bytes', IntRange(8192, INT64_MAX), [_vm('dirty_bytes')], PERSIST_SYSCTL,
         'Dirty page-cache limit in bytes at which writers block.', pair='vm.dirty_ratio'),
    Knob('vm.dirty_background_ratio', 'dirty_background_ratio', IntRange(0, 100), [_vm('dirty_background_ratio')],
         PERSIST_SYSCTL, 'Dirty page-cache percent at which background writeback starts.',
         pair='vm.dirty_background_bytes'),
    Knob('vm.dirty_background_bytes', 'dirty_background_bytes', IntRange(1, INT64_MAX),
         [_vm('dirty_background_bytes')], PERSIST_SYSCTL, 'Dirty page-cache bytes at which background writeback starts.',
         pair='vm.dirty_background_ratio'),
    Knob('vm.zone_reclaim_mode', 'zone_reclaim_mode', IntRange(0, 7), [_vm('zone_reclaim_mode')], PERSIST_SYSCTL,
         'Reclaim on the local NUMA node before allocating remotely (bitmask).', absent_note='needs CONFIG_NUMA'),
    Knob('vm.min_free_kbytes', 'min_free_kbytes', IntRange(0, (1 << 31) - 1), [_vm('min_free_kbytes')],
         PERSIST_SYSCTL, 'Memory kept free for atomic allocations.'),
    Knob('vm.compaction_proactiveness', 'compaction_proactiveness', IntRange(0, 100),
         [_vm('compaction_proactiveness')], PERSIST_SYSCTL, 'Background compaction effort.',
         absent_note='added in 5.9, needs CONFIG_COMPACTION'),
    Knob('vm.watermark_scale_factor', 'watermark_scale_factor', IntRange(1, 3000), [_vm('watermark_scale_factor')],
         PERSIST_SYSCTL, 'Distance between the kswapd watermarks, in fractions of 10,000 of memory.'),
    Knob('vm.stat_interval', 'stat_interval', IntRange(1, 3600), [_vm('stat_interval')], PERSIST_SYSCTL,
         'Seconds between vm statistics updates (per-CPU vmstat work).'),
)

HUGEPAGE_SIZES_KB = {'2M': 2048, '1G': 1048576}


def hugepage_knob(size, node=None):
    """The knob for one hugepage pool: ``hugepages.2M`` or, per NUMA node, ``hugepages.2M.node1``."""
    kb = HUGEPAGE_SIZES_KB[size]
    if node is None:
        name = 'hugepages.%s' % size
        location = Location('/sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages' % kb)
        description = 'Persistent %s hugepage pool, all nodes.' % size
    else:
        name = 'hugepages.%s.node%d' % (size, int(node))
        location = Location('/sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages' % (int(node), kb))
        description = 'Persistent %s hugepage pool on NUMA node %d.' % (size, int(node))
    return Knob(name, 'pools', IntRange(0, 1 << 31), [location], PERSIST_TMPFILES, description,
                absent_note='the kernel or CPU does not offer %s pages%s' % (size, '' if node is None else
                                                                             ' or node %d does not exist' % int(node)))


REGISTRY = {knob.name: knob for knob in SCHED_KNOBS + MEMORY_KNOBS}
SUBSYSTEM_KNOBS = {
    'sched': SCHED_KNOBS,
    'memory': MEMORY_KNOBS,
}


class Family(object):
    """Knobs that come in numbers (pools, devices, CPUs, IRQs, cgroups), made on demand from their name.

    The name alone must be enough to rebuild the knob: restore and drift only have the name the baseline or the state
    recorded. ``factory`` gets the regular-expression match of the name and returns the Knob.
    """

    def __init__(self, pattern, factory, example):
        self.pattern = re.compile('^%s$' % pattern)
        self.factory = factory
        self.example = example


# Knob families of the base registry; the other subsystems' families live beside it (_knobs_*.py), and _registry.py
# joins them all.
HUGEPAGE_FAMILIES = (
    Family(r'hugepages\.(2M|1G)(?:\.node(\d{1,4}))?', lambda match: hugepage_knob(match.group(1), match.group(2)),
           'hugepages.2M.node0'),
)


def sysctl_key(path):
    """``/proc/sys/vm/swappiness`` -> ``vm.swappiness``."""
    return path[len('/proc/sys/'):].replace('/', '.')
