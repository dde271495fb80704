# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""cgroup slices for latency and batch work: the ``cgroup.`` knob families, the host's cgroup layout, and the planning
behind aitune.kernel.cgroup.

Why: under CPU contention, a high CPU weight for the agent's cgroup against a low one for the CPU hogs cut the agent's
wake p99 to 0.006 of stock, as well as SCHED_FIFO did and with no real-time starvation risk (FIELD_NOTES section 4).

A slice is named as systemd names it, and a ``-`` in the name means hierarchy: ``aitune-latency.slice`` lives at
``aitune.slice/aitune-latency.slice``. The same layout is used in every mode, so one knob name finds one cgroup:

* ``systemd``: systemd (PID 1) owns the cgroup tree and undoes writes made behind its back. The slices become unit
  files the cgroup subsystem owns (the engine writes them, reloads systemd and starts them), and the values systemd
  sets from them are read back from cgroupfs. Persistent.
* ``cgroupfs-v2`` (no systemd; containers, minimal VMs): the slice directories are created on the unified hierarchy,
  the controllers they need are enabled in their parents' ``cgroup.subtree_control`` (knobs too, so restore gives
  them back), and the values are written directly. Live only: the directories are gone after a reboot.
* ``cgroupfs-v1`` (no systemd, the cpu controller on a v1 hierarchy): the slices are created in the cpu hierarchy, and
  ``cpu.shares`` stands in for the weight, converted as systemd converts CPUWeight= on v1. Live only.

Knob names: ``cgroup.<slice stem>.<interface file>`` (``cgroup.aitune-latency.cpu.weight``) and
``cgroup.<stem or ->.subtree_control.<controller>`` for a parent's controllers, where ``-`` is the root, as systemd
names the root slice ``-.slice``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    PartitionUnsupported, format_cpulist, guard_reserved, online_cpus, option_cpus)
from ansible_collections.aitune.kernel.plugins.module_utils._invariants import check_reservation
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError, shown
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cgroup import (
    CONTROLLERS, MemoryBytes, PERIOD_US, ROOT_STEM, RT_RUNTIME_FILE, SHARES_DEFAULT, SHARES_MAX,
    SHARES_MIN, SLICE_FILES, SLICE_FILE_NAME, STEM, Uclamp, V1_CPU_MOUNTS, V2_MOUNTS,
    WEIGHT_DEFAULT, cgroup_path, parse_bytes, parse_percent)
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State
from ansible_collections.aitune.kernel.plugins.module_utils._report import APPLIED, Report
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import systemd_is_init
from ansible_collections.aitune.kernel.plugins.module_utils._run import run_engine

SUBSYSTEM = 'cgroup'
SYSTEMD = 'systemd'
CGROUPFS_V2 = 'cgroupfs-v2'
CGROUPFS_V1 = 'cgroupfs-v1'

SLICE_NAME = re.compile(r'^(%s)\.slice$' % STEM)
# systemd's own top-level slices: a unit file of ours would replace systemd's, and their children are systemd's too.
SYSTEMD_SLICE_STEMS = ('system', 'user', 'machine', 'init')


# The slice properties, the v2 controller each needs, and the systemd setting that carries it. uclamp has no systemd
# setting, and systemd does not manage cpu.uclamp.*, so those are written to cgroupfs directly in every mode.
PROPERTY_CONTROLLER = {
    'cpu_weight': 'cpu',
    'cpu_quota_percent': 'cpu',
    'allowed_cpus': 'cpuset',
    'memory_high': 'memory',
    'io_weight': 'io',
    'uclamp_min': 'cpu',
    'uclamp_max': 'cpu',
    'rt_runtime_us': 'cpu',
}
PROPERTIES = tuple(sorted(PROPERTY_CONTROLLER))
UNIT_SETTING = {
    'cpu_weight': 'CPUWeight',
    'cpu_quota_percent': 'CPUQuota',
    'allowed_cpus': 'AllowedCPUs',
    'memory_high': 'MemoryHigh',
    'io_weight': 'IOWeight',
}
DIRECT_PROPERTIES = ('uclamp_min', 'uclamp_max')
# Present on every kernel built with CONFIG_UCLAMP_TASK, which cgroup uclamp (UCLAMP_TASK_GROUP) needs.
UCLAMP_SYSCTL = '/proc/sys/kernel/sched_util_clamp_min'
V2_FILE = {
    'cpu_weight': 'cpu.weight',
    'cpu_quota_percent': 'cpu.max',
    'allowed_cpus': 'cpuset.cpus',
    'memory_high': 'memory.high',
    'io_weight': 'io.weight',
    'uclamp_min': 'cpu.uclamp.min',
    'uclamp_max': 'cpu.uclamp.max',
    # A v1 file: cgroup v2 has no real-time runtime per cgroup. The key only names the knob.
    'rt_runtime_us': 'cpu.rt_runtime_us',
}
# Kernels built with CONFIG_RT_GROUP_SCHED give each v1 cpu cgroup a share of the real-time runtime, and a new cgroup
# gets none: a SCHED_FIFO or SCHED_RR task cannot even be moved into it (sched_setscheduler fails with EPERM). A slice
# that is to run real-time work asks for rt_runtime_us; its parents get the sum of what their children ask.
RT_RUNTIME_NO_V2_REASON = ('cgroup v2 has no real-time runtime per cgroup: real-time tasks run in any cgroup (a kernel '
                           'with CONFIG_RT_GROUP_SCHED keeps them in the root of the v2 cpu controller)')
RT_RUNTIME_SYSTEMD_REASON = ('systemd has no setting for cpu.rt_runtime_us and recreates the cgroups of its slices: '
                             'give the slice real-time runtime where systemd does not manage the cpu controller')
NO_V1_REASON = {
    'allowed_cpus': 'the v1 cpuset hierarchy is not managed: a v1 cpuset needs cpuset.mems and a cpuset of its own in '
                    'every parent; use cgroup v2, or the CPUAffinity of aitune.kernel.placement',
    'memory_high': 'memory.high has no cgroup v1 equivalent (memory.soft_limit_in_bytes acts differently)',
    'io_weight': 'io.weight has no dependable cgroup v1 equivalent (blkio.weight needs CFQ or BFQ)',
}
UNIFIED_ONLY_REASON = ('systemd applies %s= only on the unified hierarchy (cgroup v2), and this host runs the cpu '
                       'controller on cgroup v1')


# -- names and paths ---------------------------------------------------------------------------------------------------
def slice_stem(name, own=True):
    """``aitune-latency.slice`` -> ``aitune-latency``. With ``own``, refuses the slices systemd keeps for itself."""
    match = SLICE_NAME.match(name) if isinstance(name, str) else None
    if not match or len(name) > 255:
        raise ValidationError('slice %s: not a systemd slice name such as aitune-latency.slice (letters, digits and '
                              '"_" in parts joined by "-", then ".slice"; a "-" means hierarchy: a-b.slice lives in '
                              'a.slice)' % (shown(name),))
    stem = match.group(1)
    if own and stem.split('-')[0] in SYSTEMD_SLICE_STEMS:
        raise ValidationError('slice %s: %s.slice and the slices below it belong to systemd; give the slice a '
                              'top-level name of its own, such as aitune-latency.slice' % (shown(name), stem.split('-')[0]))
    return stem


def ancestors(stem):
    """The stems of the slices above ``stem``, outermost first: ``a-b-c`` -> ``['a', 'a-b']``."""
    parts = stem.split('-')
    return ['-'.join(parts[:depth]) for depth in range(1, len(parts))]


def weight_to_shares(weight):
    """CPUWeight= as cpu.shares, as systemd converts it on v1 (cgroup_cpu_weight_to_shares in src/core/cgroup.c):
    ``weight * 1024 / 100``, clamped to 2..262144."""
    return min(max(weight * SHARES_DEFAULT // WEIGHT_DEFAULT, SHARES_MIN), SHARES_MAX)


def quota_us(percent):
    """CPUQuota=N% as microseconds per 100 ms period, as systemd writes it (at least 1 ms)."""
    return max(percent * PERIOD_US // 100, 1000)


# -- the request -------------------------------------------------------------------------------------------------------
class Slice(object):
    """One requested slice: its name, stem and validated properties (python values, not yet file values), and the
    properties this host cannot carry with why (``unsupported``: a CPU word of a partition its shape cannot have)."""

    def __init__(self, name, stem, props, unsupported=None):
        self.name = name
        self.stem = stem
        self.props = props
        self.unsupported = unsupported or {}


def _integer(what, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError('%s: expected an integer from %d to %d, got %s' % (what, low, high, shown(value)))
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise ValidationError('%s: expected an integer from %d to %d, got %s' % (what, low, high, shown(value)))
    if not low <= number <= high:
        raise ValidationError('%s: %d is out of range, expected an integer from %d to %d' % (what, number, low, high))
    return number


def parse_slices(fs, slices, allow_housekeeping_cpus=False):
    """Validate the ``slices`` option; returns ``[Slice]`` sorted by name. Raises ValidationError listing every problem."""
    if not isinstance(slices, dict):
        raise ValidationError('slices: expected a mapping of slice name to properties, got %s' % (shown(slices),))
    problems = []
    result = []
    online = online_cpus(fs)
    for name in sorted(slices, key=str):
        props = slices[name] if slices[name] is not None else {}
        try:
            stem = slice_stem(name)
            if not isinstance(props, dict):
                raise ValidationError('slice %s: expected a mapping of properties, got %s' % (name, shown(props)))
            unknown = sorted(set(props) - set(PROPERTIES), key=str)
            if unknown:
                raise ValidationError('slice %s: unknown propert%s %s; known: %s' % (
                    name, 'y' if len(unknown) == 1 else 'ies', ', '.join(map(str, unknown)), ', '.join(PROPERTIES)))
            unsupported = {}
            parsed = _parse_props(fs, name, props, online, allow_housekeeping_cpus, unsupported)
            result.append(Slice(name, stem, parsed, unsupported))
        except ValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise ValidationError('invalid slices, nothing was changed: ' + '; '.join(problems))
    return result


def _parse_props(fs, name, props, online, allow_housekeeping_cpus, unsupported):
    """The slice's properties as python values; a CPU word this host's shape leaves without CPUs goes into
    ``unsupported`` (property -> reason) instead."""
    parsed = {}
    for prop in sorted(props):
        value = props[prop]
        if value is None:
            continue
        what = '%s %s' % (name, prop)
        if prop in ('cpu_weight', 'io_weight'):
            parsed[prop] = _integer(what, value, 1, 10000)
        elif prop == 'cpu_quota_percent':
            parsed[prop] = _integer(what, value, 1, 100 * max(len(online), 1))
        elif prop == 'allowed_cpus':
            try:
                parsed[prop] = option_cpus(fs, value, what)
            except PartitionUnsupported as exc:
                unsupported[prop] = str(exc)
        elif prop == 'memory_high':
            parsed[prop] = 'max' if str(value).strip() in ('max', 'infinity') else parse_bytes(what, value)
        elif prop == 'rt_runtime_us':
            parsed[prop] = 'max' if str(value).strip() == 'max' else _integer(what, value, 0, (1 << 31) - 1)
        else:
            parsed[prop] = parse_percent(what, value)
    if parsed.get('uclamp_min', 0) > parsed.get('uclamp_max', 100):
        raise ValidationError('%s: uclamp_min %s is above uclamp_max %s' % (name, parsed['uclamp_min'], parsed['uclamp_max']))
    # A slice that outranks the default weight is latency work: the CPUs it is kept to must leave housekeeping some.
    if 'allowed_cpus' in parsed and parsed.get('cpu_weight', WEIGHT_DEFAULT) > WEIGHT_DEFAULT:
        guard_reserved(fs, parsed['allowed_cpus'], '%s allowed_cpus' % name, allow=allow_housekeeping_cpus)
        # Rule irq-and-workqueue-keep-housekeeping (_invariants.RULES): the CPUs IRQs are steered to stay free.
        check_reservation(fs, parsed['allowed_cpus'], '%s allowed_cpus' % name, allow=allow_housekeeping_cpus)
    return parsed


def file_values(prop, value, version):
    """``[(interface file, value)]`` that carry ``prop`` on a v1 or v2 hierarchy; empty when v1 has no equivalent."""
    if version == 1:
        if prop == 'cpu_weight':
            return [('cpu.shares', str(weight_to_shares(value)))]
        if prop == 'cpu_quota_percent':
            return [('cpu.cfs_period_us', str(PERIOD_US)), ('cpu.cfs_quota_us', str(quota_us(value)))]
        if prop == 'rt_runtime_us':
            return [(RT_RUNTIME_FILE, str(value))]
        if prop not in DIRECT_PROPERTIES:
            return []
    leaf = V2_FILE[prop]
    if prop == 'cpu_quota_percent':
        return [(leaf, '%d %d' % (quota_us(value), PERIOD_US))]
    if prop == 'allowed_cpus':
        return [(leaf, format_cpulist(value))]
    if prop == 'memory_high':
        return [(leaf, MemoryBytes().canonical(leaf, value))]
    if prop in DIRECT_PROPERTIES:
        return [(leaf, Uclamp(prop == 'uclamp_max').canonical(leaf, value))]
    return [(leaf, str(value))]


def unit_value(prop, value):
    if prop == 'cpu_quota_percent':
        return '%d%%' % value
    if prop == 'allowed_cpus':
        return format_cpulist(value)
    if prop == 'memory_high':
        return 'infinity' if value == 'max' else str(value)
    return str(value)


def slice_unit(name, settings):
    """The unit file of one slice; ``settings`` are ``[(systemd setting, value)]``."""
    lines = ['# Managed by aitune.kernel; removed by aitune.kernel.restore.',
             '[Unit]', 'Description=aitune.kernel slice %s' % name, '', '[Slice]']
    lines.extend('%s=%s' % pair for pair in settings)
    # Started at boot, so the cgroup and its values exist before the first service is placed in it.
    lines.extend(['', '[Install]', 'WantedBy=slices.target', ''])
    return '\n'.join(lines)


# -- the host --------------------------------------------------------------------------------------------------------
class Layout(object):
    """The cgroup hierarchies of this host, from /proc/mounts."""

    def __init__(self, fs, kernel):
        self.fs = fs
        mounts = kernel.mounts()
        self.v2_root = next((m for m in V2_MOUNTS if any(r[1] == m and r[2] == 'cgroup2' for r in mounts)), None)
        self.v2_controllers = self._words(self.v2_root + '/cgroup.controllers') if self.v2_root else []
        self.v1_cpu = next((m for m in V1_CPU_MOUNTS
                            if any(r[1] == m and r[2] == 'cgroup' and 'cpu' in r[3].split(',') for r in mounts)), None)

    def _words(self, path):
        return (self.fs.read_optional(path) or '').split()

    @property
    def unified(self):
        return self.v2_root == V2_MOUNTS[0]

    def describe(self):
        parts = []
        if self.v2_root:
            parts.append('cgroup v2 at %s (controllers: %s)' % (self.v2_root, ' '.join(self.v2_controllers) or 'none'))
        if self.v1_cpu:
            parts.append('the v1 cpu controller at %s' % self.v1_cpu)
        return ', '.join(parts) or 'no cgroup hierarchy under /sys/fs/cgroup'

    def internal_process_block(self, path, controller):
        """Why ``controller`` cannot be enabled for the children of the existing cgroup ``path``, or None.

        cgroup v2 lets no cgroup but the real root enable controllers for its children while it holds processes (the
        no-internal-process rule). The root of a container's cgroup namespace is such a cgroup: it is not the root
        (it has cgroup.type) and the container's processes live in it."""
        if not self.fs.is_dir(path) or controller in self._words(path + '/cgroup.subtree_control'):
            return None
        if not self.fs.lexists(path + '/cgroup.type') or not self._words(path + '/cgroup.procs'):
            return None
        return ('%s holds processes and is not the root cgroup (the root of a container\'s cgroup namespace, say): '
                'cgroup v2 lets no such cgroup enable the %s controller for its children (the no-internal-process '
                'rule); move its processes into a leaf cgroup first' % (path, controller))


class Plan(object):
    """What one run asks of the engine, and what it reports itself."""

    def __init__(self, specs, layout, mode, reason=None):
        self.specs = specs
        self.layout = layout
        self.mode = mode
        self.reason = reason
        self.desired = {}
        self.expect = {}
        self.units = {}
        self.dirs = []
        # Under systemd: {knob: (value, cgroup)} written once systemd has created the slice's cgroup.
        self.direct = {}
        # (knob, state, path, desired, reason) decided here, without the engine.
        self.presets = []
        self.paths = {}

    @property
    def version(self):
        if self.mode == CGROUPFS_V1 or (self.mode == SYSTEMD and not self.layout.unified and self.layout.v1_cpu):
            return 1
        return 2

    @property
    def mount(self):
        if self.version == 1:
            return self.layout.v1_cpu
        return self.layout.v2_root

    def preset(self, name, state, path, desired, reason):
        self.presets.append((name, state, path, desired, reason))


def choose_mode(engine, layout):
    """``(mode, reason)``: how slices are made on this host, or None and why they cannot be."""
    if engine.systemctl is not None:
        return SYSTEMD, None
    if systemd_is_init(engine.fs):
        return None, ('systemd is PID 1 but is not reachable from this run (root is not /): it owns the cgroup tree '
                      'and would undo writes made behind its back')
    if layout.v2_root and set(layout.v2_controllers) & set(CONTROLLERS):
        return CGROUPFS_V2, None
    if layout.v1_cpu:
        return CGROUPFS_V1, None
    return None, 'no cgroup hierarchy with the cpu, cpuset, io or memory controller: %s' % layout.describe()


def plan_slices(engine, specs):
    """Decide, per slice and property, what the engine writes, what systemd sets, and what cannot be had here."""
    layout = Layout(engine.fs, engine.kernel)
    mode, reason = choose_mode(engine, layout)
    plan = Plan(specs, layout, mode, reason)
    for spec in specs:
        plan.paths[spec.name] = cgroup_path(plan.mount, spec.stem) if mode and plan.mount else None
        for prop, why in sorted(spec.unsupported.items()):
            plan.preset('cgroup.%s.%s' % (spec.stem, V2_FILE[prop]), 'unsupported', None, None, why)
    if mode is None:
        for spec in specs:
            for prop in sorted(spec.props):
                plan.preset('cgroup.%s.%s' % (spec.stem, V2_FILE[prop]), 'unsupported', None, None, reason)
        return plan
    if mode == SYSTEMD:
        _plan_systemd(plan)
    else:
        _plan_cgroupfs(plan)
    _reset_dropped(plan, State(engine.fs))
    return plan


def _unsupported_here(plan, prop):
    """Why ``prop`` cannot be had on this host in this mode, or None."""
    controller = PROPERTY_CONTROLLER[prop]
    if prop in DIRECT_PROPERTIES and not plan.layout.fs.lexists(UCLAMP_SYSCTL):
        # Decided here, so check mode tells it too; a kernel with uclamp but without UCLAMP_TASK_GROUP shows only
        # once the cgroup exists, and the engine reports that.
        return 'cpu.uclamp.* needs a kernel with CONFIG_UCLAMP_TASK_GROUP; this one has no uclamp at all (%s is ' \
               'missing)' % UCLAMP_SYSCTL
    if prop == 'rt_runtime_us':
        if plan.version == 2:
            return RT_RUNTIME_NO_V2_REASON
        if plan.mode == SYSTEMD:
            return RT_RUNTIME_SYSTEMD_REASON
        if not plan.layout.fs.lexists('%s/%s' % (plan.layout.v1_cpu, RT_RUNTIME_FILE)):
            return ('this kernel has no RT group scheduling (CONFIG_RT_GROUP_SCHED; %s/%s is missing): real-time '
                    'tasks need no runtime of their cgroup' % (plan.layout.v1_cpu, RT_RUNTIME_FILE))
        return None
    if plan.version == 1:
        if prop in DIRECT_PROPERTIES or prop in ('cpu_weight', 'cpu_quota_percent'):
            return None if plan.layout.v1_cpu else 'no v1 cpu hierarchy is mounted: %s' % plan.layout.describe()
        return UNIFIED_ONLY_REASON % UNIT_SETTING[prop] if plan.mode == SYSTEMD else NO_V1_REASON[prop]
    if controller not in plan.layout.v2_controllers:
        return ('the %s controller is not available: %s/cgroup.controllers lists %s'
                % (controller, plan.layout.v2_root, ' '.join(plan.layout.v2_controllers) or 'nothing'))
    return None


def _plan_systemd(plan):
    stems = {}
    for spec in plan.specs:
        stems[spec.stem] = []
        for stem in ancestors(spec.stem):
            stems.setdefault(stem, [])
    for spec in plan.specs:
        path = plan.paths[spec.name]
        for prop in sorted(spec.props):
            value = spec.props[prop]
            why = _unsupported_here(plan, prop)
            if why:
                plan.preset('cgroup.%s.%s' % (spec.stem, V2_FILE[prop]), 'unsupported', None, None, why)
                continue
            for leaf, file_value in file_values(prop, value, plan.version):
                name = 'cgroup.%s.%s' % (spec.stem, leaf)
                if prop in DIRECT_PROPERTIES:
                    plan.direct[name] = (file_value, path)
                else:
                    plan.expect[name] = file_value
            if prop in UNIT_SETTING:
                stems[spec.stem].append((UNIT_SETTING[prop], unit_value(prop, value)))
    plan.units = {'%s.slice' % stem: slice_unit('%s.slice' % stem, settings) for stem, settings in stems.items()}


def _plan_cgroupfs(plan):
    mount = plan.mount
    dirs = set()
    for spec in plan.specs:
        for stem in ancestors(spec.stem) + [spec.stem]:
            dirs.add(cgroup_path(mount, stem))
    plan.dirs = sorted(dirs, key=lambda path: (path.count('/'), path))
    blocked = {}
    rt_requests = {}
    for spec in plan.specs:
        for prop in sorted(spec.props):
            name = 'cgroup.%s.%s' % (spec.stem, V2_FILE[prop])
            why = _unsupported_here(plan, prop)
            if why:
                plan.preset(name, 'unsupported', None, None, why)
                continue
            controller = PROPERTY_CONTROLLER[prop]
            if plan.version == 2:
                why = _enable(plan, spec.stem, controller, blocked)
                if why:
                    plan.preset(name, 'not_permitted', None, None, why)
                    continue
            if prop == 'rt_runtime_us':
                rt_requests[spec.stem] = spec.props[prop]
                continue
            for leaf, file_value in file_values(prop, spec.props[prop], plan.version):
                plan.desired['cgroup.%s.%s' % (spec.stem, leaf)] = file_value
    if rt_requests:
        _plan_rt_runtime(plan, rt_requests)


def _plan_rt_runtime(plan, requests):
    """cpu.rt_runtime_us for the slices that asked ({stem: microseconds or 'max'}) and every slice above them: the
    kernel refuses a child more runtime than its parent, and children whose sum exceeds the parent's."""
    root_path = '%s/%s' % (plan.mount, RT_RUNTIME_FILE)
    root = int(plan.layout.fs.read(root_path).strip())
    if root <= 0:
        for stem in requests:
            plan.preset('cgroup.%s.%s' % (stem, RT_RUNTIME_FILE), 'unsupported', None, None,
                        '%s is %d: the root cgroup has no real-time runtime to hand out' % (root_path, root))
        return
    wanted = {stem: root if value == 'max' else value for stem, value in requests.items()}
    totals = dict(wanted)
    for stem, value in wanted.items():
        for parent in ancestors(stem):
            if parent not in wanted:
                totals[parent] = totals.get(parent, 0) + value
    over = sorted('%s.slice (%d)' % (stem, value) for stem, value in totals.items() if value > root)
    if over:
        raise ValidationError('invalid slices, nothing was changed: rt_runtime_us asks more real-time runtime than '
                              'the root cgroup has (%s is %d) for %s' % (root_path, root, ', '.join(over)))
    for stem, value in totals.items():
        plan.desired['cgroup.%s.%s' % (stem, RT_RUNTIME_FILE)] = str(value)


def _enable(plan, stem, controller, blocked):
    """Ask for ``controller`` in the subtree_control of the root and of every slice above ``stem``; returns why it
    cannot be had, or None."""
    for parent in [ROOT_STEM] + ancestors(stem):
        name = 'cgroup.%s.subtree_control.%s' % (parent, controller)
        if name not in blocked:
            path = cgroup_path(plan.mount, parent)
            blocked[name] = plan.layout.internal_process_block(path, controller)
            if blocked[name]:
                plan.preset(name, 'not_permitted', path + '/cgroup.subtree_control', '+' + controller, blocked[name])
        if blocked[name]:
            return blocked[name]
        plan.desired[name] = '+' + controller
    return None


def _reset_dropped(plan, state):
    """A property dropped from a slice the collection still manages goes back to the kernel's default: the slice has
    exactly the properties asked for. (Under systemd only the values written directly need this; systemd resets the
    rest when the unit file loses the setting.)"""
    stems = {spec.stem for spec in plan.specs}
    target = plan.direct if plan.mode == SYSTEMD else plan.desired
    taken = set(plan.desired) | set(plan.direct) | set(plan.expect) | {preset[0] for preset in plan.presets}
    for name, entry in state.knobs().items():
        match = SLICE_FILE_NAME.match(name)
        if not match or entry.get('persist') is not None or name in taken or match.group(1) not in stems:
            continue
        default = SLICE_FILES[match.group(2)][3]
        if plan.mode == SYSTEMD:
            target[name] = (default, entry['path'].rsplit('/', 1)[0])
        else:
            target[name] = default


# -- applying ----------------------------------------------------------------------------------------------------------
def apply_plan(engine, plan, persist=True, strict=False):
    """Run the plan through the engine; returns its Report with this module's own outcomes added."""
    if strict and plan.presets:
        raise ValidationError('strict mode, nothing was changed: ' + '; '.join(
            '%s is %s: %s' % (name, state, reason) for name, state, dummy, dummy2, reason in plan.presets))
    if plan.mode == SYSTEMD:
        report = engine.apply({}, persist=persist, strict=strict, units=(SUBSYSTEM, plan.units), expect=plan.expect)
        if plan.direct:
            _apply_direct(engine, plan, report, persist, strict, APPLIED)
    elif plan.mode in (CGROUPFS_V2, CGROUPFS_V1):
        report = engine.apply(plan.desired, persist=persist, strict=strict, dirs=(SUBSYSTEM, plan.dirs))
    else:
        report = Report(engine).finish(State(engine.fs))
    for name, state, path, desired, reason in plan.presets:
        report.record(name, state, path=path, desired=desired, reason=reason)
    return report


def _apply_direct(engine, plan, report, persist, strict, applied):
    """uclamp under systemd: written to the cgroup systemd created from the unit, so after the units started."""
    now = {name: value for name, (value, path) in plan.direct.items() if engine.fs.is_dir(path) or not engine.check_mode}
    if now:
        extra = engine.apply(now, persist=persist, strict=strict)
        report.knobs.update(extra.knobs)
        report.files.update(extra.files)
        report.actions.extend(extra.actions)
    for name in sorted(set(plan.direct) - set(now)):
        value, path = plan.direct[name]
        report.record(name, applied, path='%s/%s' % (path, name.split('.', 2)[2]), desired=value, value=value,
                      changed=True, reason='check mode: written once systemd has created %s' % path)


def slice_results(engine, plan):
    """``{slice name: {path, mode, persistent, exists, reason}}``; ``exists`` is what the kernel shows now."""
    results = {}
    for spec in plan.specs:
        path = plan.paths.get(spec.name)
        results[spec.name] = {'path': path, 'mode': plan.mode, 'persistent': plan.mode == SYSTEMD,
                              'exists': bool(path) and engine.fs.is_dir(path), 'reason': plan.reason}
    return results


# -- the module's options and run --------------------------------------------------------------------------------------
DEFAULT_SLICES = {'aitune-latency.slice': {'cpu_weight': 10000}, 'aitune-batch.slice': {'cpu_weight': 1}}
ARGUMENT_SPEC = dict(
    slices=dict(type='dict', default=DEFAULT_SLICES),
    allow_housekeeping_cpus=dict(type='bool', default=False),
)


def run(subsystem_run):
    """aitune.kernel.cgroup: parse and plan the slices, then apply them in the host's cgroup mode."""
    params = subsystem_run.params

    def body(engine):
        specs = parse_slices(engine.fs, params['slices'], params['allow_housekeeping_cpus'])
        plan = plan_slices(engine, specs)
        report = apply_plan(engine, plan, persist=params['persist'], strict=params['strict'])
        return report, dict(slices=slice_results(engine, plan))
    return run_engine(subsystem_run, body)
