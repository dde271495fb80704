#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tuning_facts
short_description: Gather what this host's kernel offers for tuning, and how far it has drifted
version_added: 0.1.0
description:
  - Returns, as the fact C(aitune_tuning), the kernel release and scheduler generation (CFS or EEVDF), every knob the
    collection knows with its state (V(applied) meaning present and readable, V(unsupported), V(not_permitted)), its
    path and current value, and the host's cgroup version, init system, cpufreq and cpuidle drivers, block devices,
    NUMA nodes and online CPUs.
  - Also reports whether a baseline exists, and drift between the live values and the ones the collection last applied.
  - The C(changes) part answers what aitune.kernel changed on this host, from its baseline. It lists each setting's
    original and live value, each file the collection wrote, and each directory it created.
  - Reads only. debugfs is mounted for the probe when O(probe_debugfs) is set and unmounted again.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
options:
  gather_subset:
    description:
      - Which parts of C(aitune_tuning) to gather, named by their keys in RV(ansible_facts.aitune_tuning), or V(all).
        Parts left out are not returned.
      - A play that only needs to know whether the host still holds what it recorded asks for
        V([kernel, cpus, user, recorded, drift]) and skips probing every knob.
    type: list
    elements: str
    choices: [all, kernel, knobs, cgroup, systemd, cpufreq, cpuidle, block_devices, numa_nodes, cpus_online, lockdown,
              debugfs_mounted, baseline, changes, drift, reboot_required, cpus, user, recorded]
    default: [all]
    version_added: 0.1.0
  probe_debugfs:
    description:
      - Mount debugfs for the duration of the probe if it is not mounted, so the debugfs scheduler knobs can be
        reported. With V(false) those knobs are reported V(not_permitted) when debugfs is not mounted.
    type: bool
    default: true
attributes:
  check_mode:
    description: Runs in check mode; it changes nothing in any mode.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
  facts:
    description: Sets the fact C(aitune_tuning).
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
'''

EXAMPLES = r'''
- name: Gather tuning facts
  aitune.kernel.tuning_facts:

- name: Only what tells whether the host still holds what was last recorded
  aitune.kernel.tuning_facts:
    gather_subset: [kernel, user, recorded, drift]

- name: What aitune.kernel changed on this host, original and live value per setting (what changes.yml prints)
  aitune.kernel.tuning_facts:
    gather_subset: [changes]

- name: Show which scheduler knobs this kernel has
  ansible.builtin.debug:
    msg: "{{ aitune_tuning.knobs | dict2items | selectattr('key', 'match', '^sched') | items2dict }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts to add to the host's facts.
  returned: always
  type: dict
  contains:
    aitune_tuning:
      description: The host's tuning state.
      returned: always
      type: dict
      contains:
        kernel:
          description: C(release), C(version), C(sched_generation) (V(cfs) or V(eevdf)) and C(boot_id), which changes
            at every boot.
          type: dict
          returned: when gathered
          sample: {release: 6.12.48+deb12-cloud-amd64, version: 6.12.48, sched_generation: eevdf,
                   boot_id: 0f4c7b8e-8a51-4a0e-9d3e-1c2b3a4d5e6f}
        knobs:
          description: Every known knob with C(state), C(path), C(value) and C(reason).
          type: dict
          returned: when gathered
        cgroup:
          description: C(version) (V(v2), V(hybrid) or V(v1)) and the v2 C(controllers).
          type: dict
          returned: when gathered
        systemd:
          description: Whether systemd is PID 1.
          type: bool
          returned: when gathered
        cpufreq:
          description: C(present), C(driver) and C(governors) of CPU 0.
          type: dict
          returned: when gathered
        cpuidle:
          description: C(present), C(driver) and the idle C(states) of CPU 0 with their exit latency in microseconds.
          type: dict
          returned: when gathered
        block_devices:
          description: Whole block devices with C(rotational), C(scheduler) and C(virtual).
          type: dict
          returned: when gathered
        numa_nodes:
          description: NUMA node numbers.
          type: list
          returned: when gathered
        cpus_online:
          description: The online CPU list, as the kernel prints it.
          type: str
          returned: when gathered
        lockdown:
          description: The kernel lockdown mode, or null without the lockdown LSM.
          type: str
          returned: when gathered
        baseline:
          description: C(present), and how many C(knobs) and C(files) it holds.
          type: dict
          returned: when gathered
        changes:
          description:
            - What the collection changed on this host, from its baseline; null when the user cannot read the
              baseline (not root).
            - C(baseline), its path (null when nothing is recorded), and C(recorded), when it was started.
            - C(knobs), per setting the collection changed, its C(subsystem), C(original) (the value before the first
              change) and C(live) value (null when the kernel no longer has it).
            - C(files), per file it wrote, C(original) (V(present) or V(absent)) and C(live) (V(absent), V(as
              original), V(as aitune.kernel wrote it) or V(changed since aitune.kernel wrote it)).
            - C(dirs), per directory it created (cgroups without systemd), its C(subsystem) and whether it is
              V(present) or V(gone).
          type: dict
          returned: when gathered
          sample:
            baseline: /var/lib/aitune/baseline.json
            recorded: '2026-12-06T12:43:31Z'
            knobs: {vm.swappiness: {subsystem: memory, original: '60', live: '10'}}
            files: {/etc/sysctl.d/90-aitune.conf: {original: absent, live: as aitune.kernel wrote it}}
            dirs: {/sys/fs/cgroup/cpu/aitune-latency: {subsystem: cgroup, live: present}}
        drift:
          description: Knobs whose live value differs from the one last applied, with C(desired) and C(live); null
            when the user cannot read the collection's state (not root).
          type: dict
          returned: when gathered
        reboot_required:
          description: Whether applied boot parameters are not yet on the running kernel's command line.
          type: bool
          returned: when gathered
        cpus:
          description: CPU lists. C(online); C(housekeeping), CPU 0 of each NUMA node; a suggested partition into
            C(latency) (the upper half of the CPUs that are not housekeeping) and C(batch) (the rest, housekeeping
            included, where IRQs and kernel threads stay); and C(irq_serving), the CPUs device IRQs reach now.
          type: dict
          returned: when gathered
          sample: {online: 0-7, housekeeping: '0', latency: 4-7, batch: 0-3, irq_serving: 0-7}
        user:
          description: C(uid) of the user the module ran as, and C(root), whether it can change kernel settings.
          type: dict
          returned: when gathered
          sample: {uid: 0, root: true}
        recorded:
          description: What the last C(aitune.kernel.tune) run recorded in C(/etc/ansible/facts.d/aitune.fact), or
            null when it has not run here.
          type: dict
          returned: when gathered
'''

import os
import re

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    format_cpulist, irq_serving_cpus, numa_first_cpus, online_cpus)
from ansible_collections.aitune.kernel.plugins.module_utils._engine import EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    HUGEPAGE_SIZES_KB, REGISTRY, hugepage_knob)
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module
from ansible_collections.aitune.kernel.plugins.module_utils._run import open_engine
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State
from ansible_collections.aitune.kernel.plugins.module_utils._record import FACT_FILE, previous_record

CPU = '/sys/devices/system/cpu'
NODES = '/sys/devices/system/node'
# Devices that never carry a workload's I/O and are skipped by default.
V1_CONTROLLERS = ('cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids')
VIRTUAL_BLOCK = re.compile(r'^(loop|ram|zram|dm-|md|sr|fd|nbd)')


def listdir(fs, path):
    try:
        return fs.listdir(path)
    except FsError:
        return []


def read(fs, path):
    text = fs.read_optional(path, follow=True)
    return text.strip() if text is not None else None


def numa_nodes(fs):
    return sorted(int(name[4:]) for name in listdir(fs, NODES) if re.match(r'^node\d+$', name))


def known_knobs(fs):
    knobs = [REGISTRY[name] for name in sorted(REGISTRY)]
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
    mounts = engine.kernel.mounts()
    v2 = [row[1] for row in mounts if row[2] == 'cgroup2']
    v1 = [row for row in mounts if row[2] == 'cgroup']
    if '/sys/fs/cgroup' in v2:
        version, v2_root = 'v2', '/sys/fs/cgroup'
    elif v1:
        version, v2_root = ('hybrid' if v2 else 'v1'), (v2[0] if v2 else None)
    else:
        version, v2_root = 'none', None
    controllers = (read(engine.fs, v2_root + '/cgroup.controllers') or '').split() if v2_root else []
    v1_controllers = {opt for row in v1 for opt in row[3].split(',') if opt in V1_CONTROLLERS}
    return {'version': version, 'v2_root': v2_root, 'controllers': controllers, 'v1_controllers': sorted(v1_controllers)}


def cpufreq_facts(fs):
    base = CPU + '/cpu0/cpufreq'
    driver = read(fs, base + '/scaling_driver')
    return {'present': driver is not None, 'driver': driver,
            'governors': (read(fs, base + '/scaling_available_governors') or '').split(),
            'governor': read(fs, base + '/scaling_governor')}


def cpuidle_facts(fs):
    driver = read(fs, CPU + '/cpuidle/current_driver')
    states = []
    for name in listdir(fs, CPU + '/cpu0/cpuidle'):
        base = '%s/cpu0/cpuidle/%s' % (CPU, name)
        latency = read(fs, base + '/latency')
        states.append({'state': name, 'name': read(fs, base + '/name'),
                       'latency_us': int(latency) if latency and latency.isdigit() else None,
                       'disabled': read(fs, base + '/disable') == '1'})
    present = driver not in (None, '', 'none')
    return {'present': present, 'driver': driver if present else None, 'states': states}


def block_facts(fs):
    devices = {}
    for name in listdir(fs, '/sys/block'):
        queue = '/sys/block/%s/queue' % name
        scheduler = read(fs, queue + '/scheduler') or ''
        selected = re.search(r'\[([^\]]+)\]', scheduler)
        devices[name] = {'rotational': read(fs, queue + '/rotational') == '1',
                         'scheduler': selected.group(1) if selected else (scheduler or None),
                         'virtual': bool(VIRTUAL_BLOCK.match(name))}
    return devices


def baseline_facts(engine):
    try:
        baseline = Baseline(engine.fs)
    except FsError as exc:
        return {'present': True, 'knobs': None, 'files': None, 'error': str(exc)}
    if baseline.unreadable:
        return {'present': None, 'knobs': None, 'files': None, 'error': baseline.unreadable}
    return {'present': baseline.exists, 'knobs': len(baseline.knobs()), 'files': len(baseline.files())}


def changes_facts(engine):
    try:
        return engine.changes()
    except FsError as exc:
        # A baseline someone broke: say so here, as the baseline part does, instead of failing the whole read.
        return {'error': str(exc)}


SUBSETS = ('all', 'kernel', 'knobs', 'cgroup', 'systemd', 'cpufreq', 'cpuidle', 'block_devices', 'numa_nodes',
           'cpus_online', 'lockdown', 'debugfs_mounted', 'baseline', 'changes', 'drift', 'reboot_required', 'cpus', 'user',
           'recorded')


def cpu_facts(fs):
    """The CPU sets a partition starts from. Housekeeping: CPU 0 of each NUMA node. The suggested latency set is the
    upper half of the other CPUs, so batch work, IRQs and kernel threads keep the lower half plus housekeeping."""
    online = online_cpus(fs)
    housekeeping = numa_first_cpus(fs) & online
    others = sorted(online - housekeeping)
    latency = set(others[len(others) // 2:])
    return {'online': format_cpulist(online), 'housekeeping': format_cpulist(housekeeping),
            'latency': format_cpulist(latency), 'batch': format_cpulist(online - latency),
            'irq_serving': format_cpulist(irq_serving_cpus(fs))}


def gatherers(engine):
    """Each part of the fact and how to read it, in the order they are read: lazily, so a subset reads only itself."""
    fs, kernel = engine.fs, engine.kernel
    return (
        ('kernel', lambda: {'release': kernel.release, 'version': kernel.version_string,
                            'sched_generation': kernel.sched_generation(),
                            'boot_id': read(fs, '/proc/sys/kernel/random/boot_id')}),
        # Read before any probe can mount debugfs, so the fact shows the host as it was found.
        ('debugfs_mounted', lambda: kernel.is_mounted('/sys/kernel/debug', 'debugfs')),
        ('knobs', lambda: knob_facts(engine)),
        ('cgroup', lambda: cgroup_facts(engine)),
        ('systemd', lambda: read(fs, '/proc/1/comm') == 'systemd'),
        ('cpufreq', lambda: cpufreq_facts(fs)),
        ('cpuidle', lambda: cpuidle_facts(fs)),
        ('block_devices', lambda: block_facts(fs)),
        ('numa_nodes', lambda: numa_nodes(fs)),
        ('cpus_online', lambda: read(fs, CPU + '/online')),
        ('lockdown', kernel.lockdown),
        ('baseline', lambda: baseline_facts(engine)),
        ('changes', lambda: changes_facts(engine)),
        # Without root the state is unreadable: drift is unknown (null), not "none".
        ('drift', lambda: None if State(fs).unreadable else engine.drift()),
        ('reboot_required', engine.reboot_required),
        ('cpus', lambda: cpu_facts(fs)),
        ('user', lambda: {'uid': os.geteuid(), 'root': os.geteuid() == 0}),
        ('recorded', lambda: previous_record(fs, FACT_FILE)),
    )


def gather(engine, subset=('all',)):
    wanted = None if 'all' in subset else set(subset)
    return {name: read_part() for name, read_part in gatherers(engine) if wanted is None or name in wanted}


def main():
    module = build_module(dict(
        gather_subset=dict(type='list', elements='str', default=['all'], choices=list(SUBSETS)),
        probe_debugfs=dict(type='bool', default=True),
    ), apply_options=False)
    engine = open_engine(module, mount_debugfs=module.params['probe_debugfs'])
    try:
        facts = gather(engine, module.params['gather_subset'])
    except (EngineError, FsError) as exc:
        module.fail_json(msg=str(exc))
    finally:
        engine.close()
    module.exit_json(changed=False, ansible_facts={'aitune_tuning': facts})


if __name__ == '__main__':
    main()
