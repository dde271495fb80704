#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: placement
short_description: Place systemd services in a slice, scheduling class, nice level, timer slack, CPUs and NUMA nodes
version_added: 0.1.0
description:
  - Writes one drop-in per service, C(/etc/systemd/system/<unit>.d/90-aitune.conf), with C(Slice=),
    C(CPUSchedulingPolicy=), C(CPUSchedulingPriority=), C(Nice=), C(TimerSlackNSec=), C(CPUAffinity=),
    C(NUMAPolicy=), C(NUMAMask=) and C(IOSchedulingClass=), and reloads systemd.
  - In the collection's measurements, host-wide knobs moved an agent's wake latency very little, and placing the
    latency-critical service moved it a lot. A slice with a high CPU weight (see M(aitune.kernel.cgroup)) protected
    the agent as well as C(SCHED_FIFO) did, with no risk of real-time starvation, and timer slack of 1 ns cut timer
    lateness from 77 to 30 microseconds.
  - O(services) is the complete set. A service placed before and missing now loses its drop-in, and V([]) removes
    them all.
  - A running service takes a changed placement only when it restarts. With O(restart) each changed, active service
    is restarted; otherwise they are listed in RV(restart_required).
  - For every listed service that is active, the placement of its main process is read back from the kernel
    (C(/proc/<pid>/stat), C(status), C(timerslack_ns) and C(cgroup)) and returned in RV(placed), with the settings
    the process does not show yet.
  - Without systemd as PID 1 a service cannot be placed persistently; each is reported V(unsupported) and nothing
    changes.
  - M(aitune.kernel.restore) with scope V(placement) removes the drop-ins and reloads systemd; restart the services
    to leave the placement.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  services:
    description:
      - The services to place, each with at least one setting.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The service's unit name, such as V(vllm.service) or V(worker@1.service).
          - A template itself, such as V(getty@.service), is refused. Its drop-in would place every instance of it,
            those running and those started later. Name each instance to place.
        type: str
        required: true
      slice:
        description: The slice to run in (C(Slice=)), such as V(aitune-latency.slice).
        type: str
      cpu_scheduling_policy:
        description:
          - C(CPUSchedulingPolicy=). V(fifo) and V(rr) are refused while RT throttling is off
            (C(kernel.sched_rt_runtime_us) of V(-1), or not below C(kernel.sched_rt_period_us)), because a spinning
            real-time thread would then starve the host.
        type: str
        choices: [other, batch, idle, fifo, rr]
      cpu_scheduling_priority:
        description: C(CPUSchedulingPriority=), 1 to 99; required with V(fifo) and V(rr), refused with the others.
        type: int
      nice:
        description: C(Nice=), -20 to 19.
        type: int
      timer_slack_ns:
        description: C(TimerSlackNSec=), the timer slack in nanoseconds, from 1.
        type: int
      cpu_affinity:
        description:
          - C(CPUAffinity=), a CPU list such as V(2-7) of online CPUs. It must leave at least one housekeeping CPU
            (CPU 0 of each NUMA node and the CPUs serving device IRQs) out; see O(allow_housekeeping_cpus).
          - Or a set of the host's CPU partition, V(@latency_cpus) (see M(aitune.kernel.profile)). Where the host's
            shape leaves no partition (one CPU per NUMA node), the setting is V(unsupported) with the reason, as
            C(placement.<service>.cpu_affinity), and the service keeps its other settings; one with no other setting
            gets no drop-in.
          - Where the unbound workqueue mask or the default IRQ affinity is steered to some CPUs (by
            M(aitune.kernel.irq)), it must also leave one of those out.
        type: str
      numa_policy:
        description: C(NUMAPolicy=).
        type: str
        choices: [default, preferred, bind, interleave, local]
      numa_mask:
        description: C(NUMAMask=), a list of online NUMA nodes such as V(0) or V(0-1); required with V(preferred),
          V(bind) and V(interleave).
        type: str
      io_scheduling_class:
        description: C(IOSchedulingClass=).
        type: str
        choices: [realtime, best-effort, idle]
  restart:
    description:
      - Restart each active service whose drop-in changed, so the new placement acts now.
    type: bool
    default: false
  allow_housekeeping_cpus:
    description:
      - Let a C(cpu_affinity) take every housekeeping CPU. Isolating the housekeeping cores is the mistake that cut
        H100 inference throughput from 148k to 50k tokens/s in NVIDIA's tuned profiles; set this only where other CPUs
        really do that work, or for batch work that is meant to share them.
    type: bool
    default: false
notes:
  - O(persist) does not apply, because the drop-ins are how systemd is told, so they are always written.
seealso:
  - module: aitune.kernel.cgroup
  - module: aitune.kernel.restore
'''

EXAMPLES = r'''
- name: Run the agent runner in the latency slice with 1 ns timer slack, and the trainer in the batch slice
  aitune.kernel.placement:
    services:
      - name: agent-runner.service
        slice: aitune-latency.slice
        timer_slack_ns: 1
      - name: trainer.service
        slice: aitune-batch.slice
        nice: 10
    restart: true
  register: placement

- name: Show how the kernel runs the agent now
  ansible.builtin.debug:
    var: placement.placed['agent-runner.service']

- name: vLLM on CPUs 2-15 and NUMA node 0, restarted at the next deploy
  aitune.kernel.placement:
    services:
      - name: vllm.service
        slice: aitune-latency.slice
        cpu_affinity: 2-15
        numa_policy: bind
        numa_mask: '0'
'''

RETURN = r'''
services:
  description: Per service, C(state) (V(applied) once the drop-in is in place and systemd reloaded, V(unsupported)
    without systemd, or when none of its settings can be had on this host), its C(dropin) path, whether it
    C(changed), and the C(reason).
  returned: always
  type: dict
  sample:
    vllm.service: {state: applied, dropin: /etc/systemd/system/vllm.service.d/90-aitune.conf, changed: true,
                   reason: null}
restart_required:
  description: Active services whose drop-in changed (or was removed) and that were not restarted.
  returned: always
  type: list
  elements: str
restarted:
  description: Services this run restarted.
  returned: always
  type: list
  elements: str
restart_failed:
  description: Services whose restart failed, with systemctl's message; their drop-ins are in place.
  returned: always
  type: dict
placed:
  description:
    - Per active service, how the kernel runs its main process now, after any restart. C(mismatches) lists the
      settings the process does not show, each with C(desired) and C(live); a service listed in
      RV(restart_required) still runs as before.
  returned: always
  type: dict
  sample:
    vllm.service: {main_pid: 4242, policy: other, priority: 0, nice: 0, timer_slack_ns: 1, cpus_allowed: 2-15,
                   mems_allowed: '0', cgroup: /aitune.slice/aitune-latency.slice/vllm.service, mismatches: {}}
files:
  description: Drop-ins that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
actions:
  description: What was asked of systemd (reload, restarts).
  returned: always
  type: list
  elements: str
knobs:
  description: The settings a service cannot have on this host (C(placement.<service>.cpu_affinity) where the CPU
    partition its CPU word names cannot be carved out), each V(unsupported) with the reason; otherwise empty.
  returned: always
  type: dict
applied:
  description: Unused by this module, always empty.
  returned: always
  type: list
  elements: str
unsupported:
  description: The settings a service cannot have on this host, with the reason (see RV(knobs)); see also
    RV(services).
  returned: always
  type: dict
not_permitted:
  description: Unused by this module, always empty.
  returned: always
  type: dict
dirs:
  description: Unused by this module, always empty.
  returned: always
  type: dict
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('placement')


if __name__ == '__main__':
    main()
