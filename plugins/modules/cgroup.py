#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cgroup
short_description: Slices that separate latency work from batch work by CPU weight, quota, CPUs, memory and I/O
version_added: 0.1.0
description:
  - Creates cgroup slices and sets their resource controls. Under CPU contention, a high CPU weight for the
    latency-critical work against a low one for the CPU hogs cut the agent's wake p99 to 0.006 of stock in the
    collection's measurements, as well as C(SCHED_FIFO) did and with no risk of real-time starvation.
  - Slices are named as systemd names them, and a C(-) in the name means hierarchy, so C(aitune-latency.slice) lives
    at C(/sys/fs/cgroup/aitune.slice/aitune-latency.slice). Weights count among siblings only, which is why both
    default slices sit below C(aitune.slice). Work that should lose to the latency slice must run in a sibling of it
    (the batch slice); against the rest of the host, C(aitune.slice) has the weight given to it here, or the default.
  - With systemd as PID 1, systemd owns the cgroup tree and undoes writes made behind its back. Each slice, and each
    slice above it, becomes a unit file in C(/etc/systemd/system) (C(CPUWeight=), C(CPUQuota=), C(AllowedCPUs=),
    C(MemoryHigh=), C(IOWeight=)); systemd is reloaded and the slices are started and enabled. The values systemd then
    sets in cgroupfs are read back, so V(applied) means the kernel shows them. On a hybrid host, where the cpu
    controller is on cgroup v1, the weight and quota read back as C(cpu.shares) and C(cpu.cfs_quota_us); the other
    settings act on cgroup v2 only and are reported V(unsupported).
  - Without systemd (containers, minimal VMs) the slice directories are created directly. On cgroup v2 the
    controllers they need are first enabled in their parents' C(cgroup.subtree_control); a parent that holds
    processes and is not the root cgroup (a container's cgroup namespace) cannot do that, and the properties are
    reported V(not_permitted) with the reason. On a host with the cpu controller on cgroup v1, C(cpu.shares) stands in
    for the weight, converted as systemd converts C(CPUWeight=) (weight * 1024 / 100, within 2 to 262144), and the
    quota becomes C(cpu.cfs_quota_us); the other properties are V(unsupported). Such slices are live only, reported
    with C(persistent=false), and are gone after a reboot.
  - The C(uclamp_min) and C(uclamp_max) properties of O(slices) are written to C(cpu.uclamp.min) and
    C(cpu.uclamp.max) in every mode. systemd has no setting for them and does not manage those files, so it leaves
    them alone, but they are live only and must be applied again after a reboot.
  - A property dropped from a listed slice goes back to the kernel default. Under systemd a slice dropped from
    O(slices) is stopped and its unit removed; without systemd its directory stays until M(aitune.kernel.restore).
  - M(aitune.kernel.restore) with scope V(cgroup) stops the slices and removes their units, or removes the created
    directories, handing any task still in them to the nearest cgroup the collection did not create. Stopping a slice
    stops the services running in it, so restore the placement of those services (and restart them) first.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  slices:
    description:
      - The slices this module manages, by name, each with its properties; the complete set, so a slice that was
        managed before and is missing here is taken away (see above). V({}) takes all of them away.
      - Names are systemd slice names of letters, digits and C(_) in parts joined by C(-), ending in C(.slice).
        C(system.slice), C(user.slice), C(machine.slice) and the slices below them belong to systemd and are refused.
      - "Properties: C(cpu_weight) (1 to 10000, default 100: C(CPUWeight=), C(cpu.weight));
        C(cpu_quota_percent) (CPU time per period as percent of one CPU, 200 for two CPUs: C(CPUQuota=),
        C(cpu.max));
        C(allowed_cpus) (a CPU list such as V(2-7), or a set of the host's CPU partition, V(@latency_cpus),
        V(@batch_cpus) or V(@housekeeping_cpus), see M(aitune.kernel.profile): C(AllowedCPUs=), C(cpuset.cpus); where
        the host's shape leaves no partition, one CPU per NUMA node, a set of it is V(unsupported) with the reason);
        C(memory_high) (bytes, or with a K, M, G or T suffix, or V(max): C(MemoryHigh=), C(memory.high), which reads
        back rounded down to whole pages);
        C(io_weight) (1 to 10000: C(IOWeight=), C(io.weight));
        C(uclamp_min) and C(uclamp_max) (percent, 0 to 100: C(cpu.uclamp.min), C(cpu.uclamp.max), on kernels built
        with C(CONFIG_UCLAMP_TASK_GROUP));
        C(rt_runtime_us) (microseconds per C(cpu.rt_period_us), or V(max) for all the root cgroup has:
        C(cpu.rt_runtime_us), written directly on a cgroup v1 cpu hierarchy of a kernel with RT group scheduling,
        C(CONFIG_RT_GROUP_SCHED), where a new cgroup gets no real-time runtime and a SCHED_FIFO or SCHED_RR task
        cannot enter it. The slices above it get the sum their children ask for. Elsewhere real-time tasks need no
        runtime of their cgroup, and it is reported V(unsupported) with the reason)."
      - The C(allowed_cpus) of a slice whose C(cpu_weight) is above 100, which outranks the rest of the host, must
        leave at least one housekeeping CPU (CPU 0 of each NUMA node and the CPUs serving device IRQs) out; see
        O(allow_housekeeping_cpus).
    type: dict
    default: {aitune-latency.slice: {cpu_weight: 10000}, aitune-batch.slice: {cpu_weight: 1}}
  allow_housekeeping_cpus:
    description:
      - Let a high-weight slice's C(allowed_cpus) take every housekeeping CPU. Isolating the housekeeping cores is the
        mistake that cut H100 inference throughput from 148k to 50k tokens/s in NVIDIA's tuned profiles; set this
        only where other CPUs really do that work.
    type: bool
    default: false
notes:
  - O(persist) does not apply to slices. Under systemd the unit files are how systemd is told, so they are always
    written; without systemd nothing about a slice can persist.
seealso:
  - module: aitune.kernel.placement
  - module: aitune.kernel.restore
'''

EXAMPLES = r'''
- name: A latency slice that outranks a batch slice by 10000 to 1 (the defaults)
  aitune.kernel.cgroup:

- name: Latency slice on CPUs 2-15 with a memory ceiling; batch work capped at four CPUs' worth
  aitune.kernel.cgroup:
    slices:
      aitune-latency.slice:
        cpu_weight: 10000
        allowed_cpus: 2-15
        memory_high: 96G
        uclamp_min: 50
      aitune-batch.slice:
        cpu_weight: 1
        cpu_quota_percent: 400
        io_weight: 10
  register: slices

- name: Show where the slices are
  ansible.builtin.debug:
    msg: "{{ slices.slices['aitune-latency.slice'].path }} ({{ slices.slices['aitune-latency.slice'].mode }})"

- name: Take every slice of this module away again
  aitune.kernel.cgroup:
    slices: {}
'''

RETURN = r'''
slices:
  description: Per requested slice, its cgroup C(path), the C(mode) it was made in (V(systemd), V(cgroupfs-v2),
    V(cgroupfs-v1), or null where it cannot be made, with the C(reason)), whether it is C(persistent) across reboots,
    and whether it C(exists) in the kernel now.
  returned: always
  type: dict
  sample:
    aitune-latency.slice: {path: /sys/fs/cgroup/aitune.slice/aitune-latency.slice, mode: systemd, persistent: true,
                           exists: true, reason: null}
knobs:
  description: Outcome per cgroup knob (C(cgroup.<slice>.<file>), and C(cgroup.<parent or ->.subtree_control.<controller>)
    for the controllers enabled without systemd), each with C(state), C(path), C(previous), C(desired), C(value),
    C(reason) and C(changed). Under systemd these are the values systemd set, read back.
  returned: always
  type: dict
  sample:
    cgroup.aitune-latency.cpu.weight: {state: applied, path: /sys/fs/cgroup/aitune.slice/aitune-latency.slice/cpu.weight,
                                       previous: null, desired: '10000', value: '10000', reason: null, changed: true}
applied:
  description: Knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
unsupported:
  description: Knobs this host cannot have, with the reason (no such controller, no v1 equivalent, no uclamp, no CPU
    partition for a CPU word).
  returned: always
  type: dict
not_permitted:
  description: Knobs the kernel or systemd refused or changed, with the reason.
  returned: always
  type: dict
files:
  description: Slice unit files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/aitune-latency.slice, /etc/systemd/system/aitune.slice]
dirs:
  description: cgroup directories created without systemd, each with what happened to it.
  returned: always
  type: dict
  sample: {/sys/fs/cgroup/aitune.slice: created}
actions:
  description: What was asked of systemd (reload, start, stop).
  returned: always
  type: list
  elements: str
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('cgroup')


if __name__ == '__main__':
    main()
