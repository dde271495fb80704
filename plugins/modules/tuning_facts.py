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
  - Returns, as the fact C(aitune_tuning), the kernel release, scheduler generation (CFS or EEVDF) and preemption
    model (PREEMPT_RT or not), every knob the collection knows with its state (V(applied) meaning present and
    readable, V(unsupported), V(not_permitted)), its path and current value, and the host's cgroup version, init
    system, cpufreq and cpuidle drivers, the cpuidle governor and the halt-polling parameters (the haltpoll
    governor's, KVM's), block devices, NUMA nodes and online CPUs.
  - Also reports whether a baseline exists, and drift between the live values and the ones the collection last applied.
  - The C(changes) part answers what aitune.kernel changed on this host, from its baseline. It lists each setting's
    original and live value, each file the collection wrote, and each directory it created.
  - The C(neighbours) part names the other tuners on the host (tuned, power-profiles-daemon, irqbalance, a cpupower
    or cpufrequtils service), what each holds and which of the collection's subsystems each writes too, and the CPU
    latency limit in force.
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
              debugfs_mounted, baseline, changes, drift, reboot_required, cpus, user, recorded, neighbours]
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
          description:
            - C(release), C(version), C(sched_generation) (V(cfs) or V(eevdf)) and C(boot_id), which changes at every
              boot.
            - C(preempt_rt), true on a PREEMPT_RT kernel (C(/sys/kernel/realtime) reads 1, or the version string in
              C(/proc/version) says PREEMPT_RT), null where neither can be read. Such a kernel is built without
              transparent hugepages and automatic NUMA balancing in 6.1, and the reasons of those knobs say so.
            - C(preemption), the preemption model, V(none), V(voluntary), V(full) or V(lazy). V(dynamic) is a
              PREEMPT_DYNAMIC kernel that does not show which model it booted with, V(none_or_voluntary) a kernel
              whose version string alone speaks and cannot tell those two apart. Null where nothing can be read.
            - C(preemption_source), where the model was read. V(debugfs) is C(/sys/kernel/debug/sched/preempt),
              V(cmdline) the C(preempt=) boot parameter, V(config) the file C(/boot/config-RELEASE) and V(version)
              the version string.
          type: dict
          returned: when gathered
          sample: {release: 6.1.0-31-rt-amd64, version: 6.1.0, sched_generation: cfs, preempt_rt: true,
                   preemption: full, preemption_source: version, boot_id: 0f4c7b8e-8a51-4a0e-9d3e-1c2b3a4d5e6f}
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
          description:
            - C(present), C(driver), C(governor) (null without a driver) and the idle C(states) of CPU 0 with their
              exit latency in microseconds.
            - C(haltpoll) holds the haltpoll governor's parameters as the kernel shows them
              (C(guest_halt_poll_ns), C(guest_halt_poll_grow), C(guest_halt_poll_grow_start),
              C(guest_halt_poll_shrink), and C(guest_halt_poll_allow_shrink) as a boolean), null where the kernel
              has no such governor. They act only while C(governor) is V(haltpoll).
            - C(kvm) holds KVM's host-side polling (C(halt_poll_ns), C(halt_poll_ns_grow), C(halt_poll_ns_grow_start),
              C(halt_poll_ns_shrink)), null where KVM is not loaded.
            - C(pm_qos_in_force_us) is the CPU latency limit in force, the lowest request of every holder of
              C(/dev/cpu_dma_latency) (this collection's, tuned's, any other), V(2000000000) where none limits it, null
              where the device cannot be read (no CPU latency QoS, or not root).
          type: dict
          returned: when gathered
          sample:
            present: true
            driver: haltpoll
            governor: haltpoll
            states:
              - {state: state0, name: POLL, latency_us: 0, disabled: false}
              - {state: state1, name: haltpoll idle, latency_us: 1, disabled: false}
            haltpoll: {guest_halt_poll_ns: 200000, guest_halt_poll_grow: 2, guest_halt_poll_grow_start: 50000,
                       guest_halt_poll_shrink: 2, guest_halt_poll_allow_shrink: true}
            kvm: null
            pm_qos_in_force_us: 2000000000
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
              change) and C(live) value (null when the kernel no longer has it; V(unknown) with the reason for an IRQ
              that cannot be found again, as restore would report it).
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
          description:
            - Knobs whose live value differs from the one last applied, with C(desired) and C(live), and persistence
              files that no longer hold what the collection wrote; null when the user cannot read the collection's
              state (not root).
            - An IRQ knob whose identity no IRQ or several IRQs have now has C(live) null and a C(reason).
            - C(probable_writer), on a drifted knob that another tuner on the host writes, names it and what of it
              writes the knob (the plugin of tuned's active profile, power-profiles-daemon's profile, irqbalance, a
              cpupower or cpufrequtils service). It is absent where no tuner found writes that knob.
          type: dict
          returned: when gathered
          sample:
            vm.dirty_ratio: {desired: '5', live: '40', probable_writer: tuned is running with profile
                             throughput-performance and its sysctl plugin writes this}
        reboot_required:
          description: Whether applied boot parameters are not yet on the running kernel's command line.
          type: bool
          returned: when gathered
        cpus:
          description: CPU lists. C(online); C(housekeeping), CPU 0 of each NUMA node; a suggested partition into
            C(latency) (the upper half of the CPUs that are not housekeeping) and C(batch) (the rest, housekeeping
            included, where IRQs and kernel threads stay); and C(irq_serving), the CPUs device IRQs reach now.
            C(partition) is V(supported), or V(unsupported) where housekeeping is every CPU and no latency CPU can be
            carved out, with the reason in C(partition_reason).
          type: dict
          returned: when gathered
          sample: {online: 0-7, housekeeping: '0', latency: 4-7, batch: 0-3, irq_serving: 0-7, partition: supported,
                   partition_reason: null}
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
        neighbours:
          description:
            - The other tuners on this host, read from files only.
            - C(tuned) - C(running) (its pid file C(/run/tuned/tuned.pid) names a live tuned process), C(pid),
              C(profile) (C(/etc/tuned/active_profile)), C(profile_mode) (V(auto) or V(manual)), C(reapply_sysctl)
              (from C(/etc/tuned/tuned-main.conf), on by default), C(plugins) (the active profile's C(tuned.conf)
              sections, includes followed; null when a profile's file cannot be read) and C(subsystems), the
              collection's subsystems those plugins write too (all of them when the plugins are unknown).
            - C(power_profiles_daemon) - C(running), C(pid), C(profile) (from
              C(/var/lib/power-profiles-daemon/state.ini)) and C(subsystems) (V(cpufreq)).
            - C(irqbalance) - C(running) and C(pid); the V(irq) subsystem bans the latency CPUs in its settings.
            - C(cpupower) - C(enabled) and C(units), the enabled C(cpupower.service) or C(cpufrequtils.service),
              oneshots that set the governor at boot.
            - C(pm_qos_in_force_us), as in C(cpuidle).
            - M(aitune.kernel.profile) refuses to write what a running tuned or power-profiles-daemon writes unless
              told C(other_tuners=allow).
          type: dict
          returned: when gathered
          sample:
            tuned: {running: true, pid: 812, profile: latency-performance, profile_mode: manual, reapply_sysctl: true,
                    plugins: [cpu, sysctl], subsystems: [sched, memory, cpufreq, cpuidle]}
            power_profiles_daemon: {running: false, pid: null, profile: null, subsystems: [cpufreq]}
            irqbalance: {running: true, pid: 655}
            cpupower: {enabled: false, units: [], subsystems: [cpufreq]}
            pm_qos_in_force_us: 1
'''

from ansible_collections.aitune.kernel.plugins.module_utils._engine import EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._facts import ARGUMENT_SPEC, read_facts
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module


def main():
    module = build_module(ARGUMENT_SPEC, apply_options=False)
    try:
        facts = read_facts(module)
    except (EngineError, FsError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={'aitune_tuning': facts})


if __name__ == '__main__':
    main()
