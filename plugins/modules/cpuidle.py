#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cpuidle
short_description: Keep CPUs out of slow idle states, per state or through a held PM QoS request
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
    type: int
notes:
  - Knob names, for M(aitune.kernel.restore) and drift, are C(cpuidle.cpuN.stateK.disable). A setting with no knob on
    this host is reported as C(cpuidle.max_exit_latency_us) or C(cpuidle.pm_qos).
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
'''

RETURN = r'''
knobs:
  description: Outcome per knob, each with C(state), C(path), C(previous), C(desired), C(value), C(reason) and
    C(changed). Settings with no knob on this host appear as C(cpuidle.max_exit_latency_us) or C(cpuidle.pm_qos),
    V(unsupported), with the reason.
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
  returned: always
  type: dict
  sample: {requested: 0, unit: aitune-pmqos.service, active: true, state: applied, reason: null}
files:
  description: Managed files that changed, or would change in check mode (the tmpfiles lines, the holder unit).
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
