# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The fact aitune.kernel.tuning_facts returns, ``aitune_tuning``: each of its parts and how it is read from the host.

Everything here only reads. A part is read only when it is asked for, so a play that needs the record and the drift
does not pay for probing every knob.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import BASELINE_PATH, Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._cpuidle import (
    current_driver, current_governor, polling_values)
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    CPU_DIR, ONLINE_PATH, CpuPartition, format_cpulist, irq_serving_cpus, numa_nodes, online_cpus)
from ansible_collections.aitune.kernel.plugins.module_utils._engine import CGROUP_ROOT
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import ABSENT, FsError
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import DEBUGFS
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    HUGEPAGE_SIZES_KB, hugepage_knob, subsystem_of)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_block import SYS_BLOCK
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cpuidle import HALTPOLL_KNOBS, KVM_KNOBS
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import neighbours, pm_qos_in_force
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State, file_targets
from ansible_collections.aitune.kernel.plugins.module_utils._persist import FACT_FILE
from ansible_collections.aitune.kernel.plugins.module_utils._record import previous_record
from ansible_collections.aitune.kernel.plugins.module_utils._registry import FIXED, lookup
from ansible_collections.aitune.kernel.plugins.module_utils._run import open_engine
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import systemd_is_init

# The parts of the fact a play may ask for (gather_subset), in the order the module documents them.
SUBSETS = ('all', 'kernel', 'knobs', 'cgroup', 'systemd', 'cpufreq', 'cpuidle', 'block_devices', 'numa_nodes',
           'cpus_online', 'lockdown', 'debugfs_mounted', 'baseline', 'changes', 'drift', 'reboot_required', 'cpus', 'user',
           'recorded', 'neighbours')
ARGUMENT_SPEC = dict(
    gather_subset=dict(type='list', elements='str', default=['all'], choices=list(SUBSETS)),
    probe_debugfs=dict(type='bool', default=True),
)

V1_CONTROLLERS = ('cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids')
# Devices that never carry a workload's I/O, by the names the kernel gives them.
VIRTUAL_BLOCK = re.compile(r'^(loop|ram|zram|dm-|md|sr|fd|nbd)')


def _listdir(fs, path):
    try:
        return fs.listdir(path)
    except FsError:
        return []


def _read(fs, path):
    text = fs.read_optional(path, follow=True)
    return text.strip() if text is not None else None


def known_knobs(fs):
    """Every fixed knob, and the hugepage pools of each size, host-wide and per NUMA node."""
    knobs = [FIXED[name] for name in sorted(FIXED)]
    for size in sorted(HUGEPAGE_SIZES_KB):
        knobs.append(hugepage_knob(size))
        knobs.extend(hugepage_knob(size, node) for node in numa_nodes(fs))
    return knobs


def knob_facts(engine):
    facts = {}
    for knob in known_knobs(engine.fs):
        probe = engine.probe(knob)
        facts[knob.name] = {'state': probe.state, 'path': probe.path, 'value': probe.value, 'reason': probe.reason}
    return facts


def cgroup_facts(engine):
    """The cgroup version (v2, hybrid, v1 or none), where v2 is mounted and the controllers of each hierarchy."""
    mounts = engine.kernel.mounts()
    v2 = [row[1] for row in mounts if row[2] == 'cgroup2']
    v1 = [row for row in mounts if row[2] == 'cgroup']
    if CGROUP_ROOT in v2:
        version, v2_root = 'v2', CGROUP_ROOT
    elif v1:
        version, v2_root = ('hybrid' if v2 else 'v1'), (v2[0] if v2 else None)
    else:
        version, v2_root = 'none', None
    controllers = (_read(engine.fs, v2_root + '/cgroup.controllers') or '').split() if v2_root else []
    v1_controllers = {opt for row in v1 for opt in row[3].split(',') if opt in V1_CONTROLLERS}
    return {'version': version, 'v2_root': v2_root, 'controllers': controllers, 'v1_controllers': sorted(v1_controllers)}


def cpufreq_facts(fs):
    # cpu0/cpufreq is the kernel's link to CPU 0's policy directory.
    base = CPU_DIR + '/cpu0/cpufreq'
    driver = _read(fs, base + '/scaling_driver')
    return {'present': driver is not None, 'driver': driver,
            'governors': (_read(fs, base + '/scaling_available_governors') or '').split(),
            'governor': _read(fs, base + '/scaling_governor')}


def cpuidle_facts(fs):
    """The driver, the governor and every idle state of CPU 0, as the kernel lists them, disabled ones included; and
    the halt-polling parameters, the haltpoll governor's and KVM's, where the kernel has them."""
    driver = current_driver(fs)
    states = []
    for name in _listdir(fs, CPU_DIR + '/cpu0/cpuidle'):
        base = '%s/cpu0/cpuidle/%s' % (CPU_DIR, name)
        latency = _read(fs, base + '/latency')
        states.append({'state': name, 'name': _read(fs, base + '/name'),
                       'latency_us': int(latency) if latency and latency.isdigit() else None,
                       'disabled': _read(fs, base + '/disable') == '1'})
    return {'present': driver is not None, 'driver': driver, 'governor': current_governor(fs) if driver else None,
            'states': states, 'haltpoll': polling_values(fs, HALTPOLL_KNOBS), 'kvm': polling_values(fs, KVM_KNOBS),
            'pm_qos_in_force_us': pm_qos_in_force(fs)}


def block_facts(fs):
    devices = {}
    for name in _listdir(fs, SYS_BLOCK):
        queue = '%s/%s/queue' % (SYS_BLOCK, name)
        scheduler = _read(fs, queue + '/scheduler') or ''
        # The kernel lists every scheduler and brackets the one in use: "none [mq-deadline] kyber".
        selected = re.search(r'\[([^\]]+)\]', scheduler)
        devices[name] = {'rotational': _read(fs, queue + '/rotational') == '1',
                         'scheduler': selected.group(1) if selected else (scheduler or None),
                         'virtual': bool(VIRTUAL_BLOCK.match(name))}
    return devices


def baseline_facts(fs):
    try:
        baseline = Baseline(fs)
    except FsError as exc:
        return {'present': True, 'knobs': None, 'files': None, 'error': str(exc)}
    if baseline.unreadable:
        return {'present': None, 'knobs': None, 'files': None, 'error': baseline.unreadable}
    return {'present': baseline.exists, 'knobs': len(baseline.knobs()), 'files': len(baseline.files())}


def changes_facts(fs):
    """What the collection changed on this host, from the baseline: each knob's original and live value, each file it
    wrote (with whether it is there now and still as the collection left it) and each directory it created. None
    when the baseline cannot be read (a user other than root)."""
    try:
        baseline = Baseline(fs)
        if baseline.unreadable:
            return None
        return {'baseline': BASELINE_PATH if baseline.exists else None,
                'recorded': baseline.data.get('created') if baseline.exists else None,
                'knobs': _changed_knobs(fs, baseline), 'files': _written_files(fs, baseline),
                'dirs': {path: {'subsystem': entry['subsystem'], 'live': 'present' if fs.lexists(path) else 'gone'}
                         for path, entry in sorted(baseline.dirs().items())}}
    except FsError as exc:
        # A baseline someone broke: say so here, as the baseline part does, instead of failing the whole read.
        return {'error': str(exc)}


def _changed_knobs(fs, baseline):
    knobs = {}
    for name, record in sorted(baseline.knobs().items()):
        knob = lookup(name)
        # Read where the knob is now (an IRQ by its identity), not at a path that may name another IRQ this boot.
        path, lost = knob.locate(fs, record['path'], record['recorded'])
        try:
            live = 'unknown: %s' % lost if lost else knob.current(fs.read(path))
        except FsError as exc:
            live = None if exc.kind == ABSENT else 'unreadable: %s' % exc
        knobs[name] = {'subsystem': subsystem_of(name), 'original': record['value'], 'live': live}
    return knobs


def _written_files(fs, baseline):
    files = {}
    drifted = file_targets(fs, State(fs), baseline)
    for path, record in sorted(baseline.files().items()):
        existed, content, dummy = fs.file_state(path)
        if not existed:
            live = 'absent'
        elif record['existed'] and content == record['content']:
            live = 'as original'
        else:
            live = 'changed since aitune.kernel wrote it' if path in drifted else 'as aitune.kernel wrote it'
        files[path] = {'original': 'present' if record['existed'] else 'absent', 'live': live}
    return files


def cpu_facts(fs):
    """The host's CPU partition (_cpus.CpuPartition), whether it can be had, and the CPUs device IRQs reach now."""
    partition = CpuPartition(fs).result()
    return {'online': format_cpulist(online_cpus(fs)), 'housekeeping': partition['housekeeping'],
            'latency': partition['latency'], 'batch': partition['batch'], 'partition': partition['state'],
            'partition_reason': partition['reason'], 'irq_serving': format_cpulist(irq_serving_cpus(fs))}


def kernel_facts(kernel):
    """The release, scheduler generation and preemption build of the running kernel, and its boot."""
    preemption = kernel.preemption()
    return {'release': kernel.release, 'version': kernel.version_string, 'sched_generation': kernel.sched_generation(),
            'preempt_rt': preemption['preempt_rt'], 'preemption': preemption['model'],
            'preemption_source': preemption['source'], 'boot_id': _read(kernel.fs, '/proc/sys/kernel/random/boot_id')}


def gatherers(engine):
    """Each part of the fact and how to read it, in the order they are read: lazily, so a subset reads only itself."""
    fs, kernel = engine.fs, engine.kernel
    return (
        ('kernel', lambda: kernel_facts(kernel)),
        # Read before any probe can mount debugfs, so the fact shows the host as it was found.
        ('debugfs_mounted', lambda: kernel.is_mounted(DEBUGFS, 'debugfs')),
        ('knobs', lambda: knob_facts(engine)),
        ('cgroup', lambda: cgroup_facts(engine)),
        ('systemd', lambda: systemd_is_init(fs)),
        ('cpufreq', lambda: cpufreq_facts(fs)),
        ('cpuidle', lambda: cpuidle_facts(fs)),
        ('block_devices', lambda: block_facts(fs)),
        ('numa_nodes', lambda: numa_nodes(fs)),
        ('cpus_online', lambda: _read(fs, ONLINE_PATH)),
        ('lockdown', kernel.lockdown),
        ('baseline', lambda: baseline_facts(fs)),
        ('changes', lambda: changes_facts(fs)),
        # Without root the state is unreadable: drift is unknown (null), not "none".
        ('drift', lambda: None if State(fs).unreadable else engine.drift()),
        ('reboot_required', engine.reboot_required),
        ('cpus', lambda: cpu_facts(fs)),
        ('user', lambda: {'uid': os.geteuid(), 'root': os.geteuid() == 0}),
        ('recorded', lambda: previous_record(fs, FACT_FILE)),
        ('neighbours', lambda: neighbours(fs)),
    )


def gather(engine, subset=('all',)):
    """``{part: value}`` for the parts in ``subset`` (or every part, for ``all``)."""
    wanted = None if 'all' in subset else set(subset)
    return {name: read_part() for name, read_part in gatherers(engine) if wanted is None or name in wanted}


def read_facts(module):
    """The fact for the module's options: ``gather_subset`` read through an engine that ``probe_debugfs`` lets mount
    debugfs, and that unmounts it again."""
    engine = open_engine(module, mount_debugfs=module.params['probe_debugfs'])
    try:
        return gather(engine, module.params['gather_subset'])
    finally:
        engine.close()
