#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cpuidle
short_description: Keep CPUs out of slow idle states, or let idle vCPUs poll before they halt
version_added: 0.1.0
description:
  - Waking from a deep idle state costs time; intel_idle lists about 2 us for C1, 10 us for C1E and 130 us for C6. On
    a 2-vCPU KVM guest, holding a PM QoS request of 0 cut the median wake-up of an idle agent loop from 26 us to
    2.8 us.
  - With O(max_exit_latency_us), every idle state whose exit latency (C(/sys/devices/system/cpu/cpuN/cpuidle/stateK/latency))
    is above the limit is disabled on each selected CPU, and every state at or below it is enabled. The polling state
    (C(state0), C(POLL)) is never touched. The states are the driver's own and are read from the host each run.
  - The state switches persist as C(w) lines in C(/etc/tmpfiles.d/aitune.conf). systemd-tmpfiles writes them at boot
    once the cpuidle driver has registered its states (intel_idle, acpi_idle and haltpoll are built in on common
    distribution kernels, so they are there in time). A CPU brought online later starts with the driver's defaults.
  - With O(pm_qos_latency_us), a small service C(aitune-pmqos.service) holds a CPU latency PM QoS request. It opens
    C(/dev/cpu_dma_latency), writes the value and keeps the device open while it runs, because the kernel drops the
    request when the device is closed. It needs only C(/bin/sh), C(printf) and C(sleep), which a Debian minimal system
    has. The module installs it in C(/etc/systemd/system), enables and starts it; M(aitune.kernel.restore) stops,
    disables and removes it.
  - The cpuidle subsystem owns that unit. A run without O(pm_qos_latency_us) removes a holder an earlier run
    installed.
  - A host without a cpuidle driver (C(/sys/devices/system/cpu/cpuidle/current_driver) absent or V(none)) reports
    the settings V(unsupported) and changes nothing. Without systemd as PID 1 the holder is reported V(unsupported),
    because a process started from here would not outlive the run.
  - With O(haltpoll), the poll window of the haltpoll cpuidle governor in a KVM guest. An idle vCPU polls for up to
    that long before it halts, so a wake-up within the window skips the halt, its VM exit and the IPI that would wake
    it. On a 2-vCPU KVM guest whose command line had set the window to 0, the kernel default of 200000 ns cut the idle
    wake-up p50 to x0.11 and the p99 to x0.2. The price is host CPU time, as every polling vCPU keeps a host CPU busy.
    The values are written to C(/sys/module/haltpoll/parameters) and read back.
  - The haltpoll values persist as C(w) lines in C(/etc/tmpfiles.d/aitune.conf). The governor is built in wherever the
    kernel has it (C(CONFIG_CPU_IDLE_GOV_HALTPOLL) is a bool option), so its files exist from the start of boot and
    the lines reach them, with or without systemd. No boot parameter is written. Until systemd-tmpfiles runs early in
    boot, the window is the kernel default, or a C(haltpoll.guest_halt_poll_ns=) on the kernel command line, which the
    line then overrides.
  - The haltpoll values are V(unsupported), with the reason, where the haltpoll governor is not the one in use (a
    host that is not a KVM guest, a guest without the cpuidle-haltpoll driver, C(idle=) on the command line) or the
    kernel lacks it, since they would change nothing there.
  - With O(kvm), the host-side polling of KVM on a hypervisor host (C(/sys/module/kvm/parameters)). KVM polls for a
    halted vCPU's wake-up before it schedules the vCPU's thread out. Where KVM is not loaded the values are
    V(unsupported); where its parameters are read-only (some kernels that build KVM in for nested guests) they are
    V(not_permitted).
  - KVM's values persist as C(options kvm ...) lines in C(/etc/modprobe.d/90-aitune.conf), which modprobe reads each
    time kvm loads. A tmpfiles.d line would race the load of kvm at boot (udev loads it when it finds the CPU's
    virtualization extension). Where kvm is built in (no C(/sys/module/kvm/initstate)) they persist as tmpfiles.d
    lines instead, as modprobe never sees a built-in module.
  - A guest that runs the cpuidle-haltpoll driver asks KVM to stop polling for its vCPUs (C(MSR_KVM_POLL_CONTROL)),
    so the two windows do not stack up on one vCPU.
  - No mode sets either window yet. Both are paid in host CPU time, and a guest's window is paid on a host that its
    owner may share or bill by CPU time.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  cpus:
    description:
      - The CPUs whose idle states O(max_exit_latency_us) sets, as a CPU list such as C(0-3,8). Every CPU must be
        online. Default is every online CPU.
      - Or a set of the host's CPU partition, V(@latency_cpus), V(@batch_cpus) or V(@housekeeping_cpus) (see
        M(aitune.kernel.profile)). Where the host's shape leaves no partition, O(max_exit_latency_us) is
        V(unsupported) with the reason; it never falls back to every CPU.
      - The PM QoS request of O(pm_qos_latency_us) always covers every CPU.
    type: str
  max_exit_latency_us:
    description:
      - Disable the idle states that take longer than this many microseconds to exit, and enable the others.
      - V(0) leaves only polling, which keeps each CPU busy while it waits; on a host billed or cooled by CPU time,
        prefer the latency of C1 or C1E.
      - Omitted, the idle states are left as they are.
    type: int
  pm_qos_latency_us:
    description:
      - The CPU latency, in microseconds, that the PM QoS holder asks for, from V(0) to V(2000000000). The cpuidle
        governor then picks no state that exits slower than this, on any CPU.
      - Omitted or null, no holder runs, and one installed by an earlier run is removed.
      - The unit is enabled, so the request comes back at boot, whatever O(persist) says.
      - Under the haltpoll governor a request of V(0) makes an idle CPU poll for as long as it is idle, whatever
        O(haltpoll) says; the module warns when both are given.
    type: int
  haltpoll:
    description:
      - The haltpoll governor's parameters in a KVM guest, each written to
        C(/sys/module/haltpoll/parameters/guest_halt_poll_<name>). Suboptions left out or null are left as they are.
      - The kernel accepts any 32-bit value; the ranges here leave out what only does harm. A window above 100 ms
        (500 times the default) burns CPU on the chance of a wake-up, and the kernel multiplies the window by
        O(haltpoll.grow) in 32 bits, which 100 ms x 16 cannot overflow. From a O(haltpoll.grow_start) of 0 the
        window never grows, so polling would silently never start.
    type: dict
    suboptions:
      guest_halt_poll_ns:
        description:
          - The longest time, in nanoseconds, an idle vCPU polls before it halts, from V(0) (halt at once, no
            polling) to V(100000000). The kernel default is V(200000).
          - Each vCPU keeps its own window below this, grown and shrunk by the other suboptions.
        type: int
      grow:
        description:
          - C(guest_halt_poll_grow), from V(1) to V(16). The factor by which a vCPU's window grows when a wake-up came
            after the window but within O(haltpoll.guest_halt_poll_ns). V(1) keeps it at O(haltpoll.grow_start). The
            kernel default is V(2).
        type: int
      grow_start:
        description:
          - C(guest_halt_poll_grow_start), in nanoseconds, from V(1) to V(100000000). The window a vCPU grows to first
            from no polling. The kernel default is V(50000).
        type: int
      shrink:
        description:
          - C(guest_halt_poll_shrink), from V(0) to V(16). The divisor of a vCPU's window after an idle period longer
            than O(haltpoll.guest_halt_poll_ns). V(0) drops it to no polling at once. The kernel default is V(2).
        type: int
      allow_shrink:
        description:
          - C(guest_halt_poll_allow_shrink). Whether a vCPU's window shrinks at all. V(false) keeps it at its peak
            once grown, so a vCPU that once polled long goes on polling that long. The kernel default is V(true).
        type: bool
  kvm:
    description:
      - KVM's host-side halt polling on a hypervisor host, each suboption written to
        C(/sys/module/kvm/parameters/halt_poll_ns) or C(halt_poll_ns_<name>). Suboptions left out or null are left as
        they are. A VM whose VMM set its own limit (C(KVM_CAP_HALT_POLL)) keeps it.
      - The ranges are those of O(haltpoll), for the same reasons.
    type: dict
    suboptions:
      halt_poll_ns:
        description:
          - The longest time, in nanoseconds, KVM polls for a halted vCPU's wake-up before it schedules the vCPU's
            thread out, from V(0) (never poll) to V(100000000). The x86 default is V(200000).
        type: int
      grow:
        description:
          - C(halt_poll_ns_grow), from V(1) to V(16). The factor by which a vCPU's host window grows. The kernel
            default is V(2).
        type: int
      grow_start:
        description:
          - C(halt_poll_ns_grow_start), in nanoseconds, from V(1) to V(100000000). The window a vCPU grows to first.
            The kernel default is V(10000).
        type: int
      shrink:
        description:
          - C(halt_poll_ns_shrink), from V(0) to V(16). The divisor of a vCPU's host window after a block longer
            than O(kvm.halt_poll_ns). V(0) drops it to no polling at once. The kernel default is V(2).
        type: int
notes:
  - Knob names, for M(aitune.kernel.restore) and drift, are C(cpuidle.cpuN.stateK.disable), the kernel parameter's
    name after C(cpuidle.haltpoll.) (C(cpuidle.haltpoll.guest_halt_poll_ns)) and after C(cpuidle.kvm.)
    (C(cpuidle.kvm.halt_poll_ns)). A setting with no knob on this host is reported as C(cpuidle.max_exit_latency_us)
    or C(cpuidle.pm_qos).
  - The holder writes the value in the kernel's 10-character hex form (C(0x00000064) for 100 us). The kernel reads a
    write of exactly 4 bytes as a binary integer and any other text as hex, so C(echo 100) would ask for
    something else.
'''

EXAMPLES = r'''
- name: No idle state slower than C1E on the CPUs that run the agent loop
  aitune.kernel.cpuidle:
    cpus: 2-7
    max_exit_latency_us: 10

- name: Hold a PM QoS request of 0, as tuned's latency-performance profile does
  aitune.kernel.cpuidle:
    pm_qos_latency_us: 0
  register: idle

- name: Tell whether the holder runs
  ansible.builtin.debug:
    msg: "PM QoS holder active: {{ idle.pm_qos.active }}"

- name: Take the holder away again (idle states untouched)
  aitune.kernel.cpuidle:
    pm_qos_latency_us: null

- name: In a KVM guest, poll up to 200 us before halting (the kernel default, where the command line set 0)
  aitune.kernel.cpuidle:
    haltpoll:
      guest_halt_poll_ns: 200000

- name: On a KVM host, poll at most 50 us for a halted vCPU
  aitune.kernel.cpuidle:
    kvm:
      halt_poll_ns: 50000
'''

RETURN = r'''
knobs:
  description: Outcome per knob, each with C(state), C(path), C(previous), C(desired), C(value), C(reason) and
    C(changed). Settings with no knob on this host appear as C(cpuidle.max_exit_latency_us) or C(cpuidle.pm_qos),
    V(unsupported), with the reason; the haltpoll and KVM values under their knob names, V(unsupported) with the reason
    where they would change nothing.
  returned: always
  type: dict
  sample:
    cpuidle.cpu0.state3.disable: {state: applied, path: /sys/devices/system/cpu/cpu0/cpuidle/state3/disable,
                                  previous: '0', desired: '1', value: '1', reason: null, changed: true}
applied:
  description: Knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
unsupported:
  description: Requested knobs or settings this host does not have, with the reason.
  returned: always
  type: dict
not_permitted:
  description: Requested knobs the kernel refused or did not keep, with the reason.
  returned: always
  type: dict
driver:
  description: The cpuidle driver, such as V(intel_idle) or V(haltpoll); null without one.
  returned: always
  type: str
  sample: intel_idle
governor:
  description:
    - The cpuidle governor, such as V(menu), V(teo) or V(haltpoll); null without a driver. The haltpoll governor does
      not read the per-state disable files, so O(max_exit_latency_us) changes nothing under it, and the module warns.
  returned: always
  type: str
  sample: menu
pm_qos:
  description:
    - The PM QoS holder. C(requested) is O(pm_qos_latency_us), C(unit) the service name, C(active) whether systemd
      reports the service active (null without systemd).
    - C(state) is V(applied) when it runs, V(unsupported) or V(not_permitted) with C(reason), or null when no holder
      was requested.
    - C(in_force_us) is the limit the kernel holds after the run, the lowest request of every holder of
      C(/dev/cpu_dma_latency) (V(2000000000) where none limits it, null where the device cannot be read). A lower
      value than C(requested) means another holder (tuned's C(force_latency), for one) asks for less; the run then
      warns, naming tuned where it runs.
  returned: always
  type: dict
  sample: {requested: 20, unit: aitune-pmqos.service, active: true, state: applied, reason: null, in_force_us: 20}
files:
  description: Managed files that changed, or would change in check mode (the tmpfiles lines, the modprobe.d lines,
    the holder unit).
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/aitune-pmqos.service, /etc/tmpfiles.d/aitune.conf]
actions:
  description: What was done to make unit changes act now (daemon-reload, started or stopped the holder).
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
    run_subsystem_module('cpuidle')


if __name__ == '__main__':
    main()
