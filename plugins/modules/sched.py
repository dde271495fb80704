#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: sched
short_description: Set CPU scheduler knobs wherever this kernel keeps them
version_added: 0.1.0
description:
  - Sets scheduler tunables by abstract name and finds each one on the running kernel. Up to 5.12 they are sysctls
    (with C(CONFIG_SCHED_DEBUG)), from 5.13 they live in debugfs under C(/sys/kernel/debug/sched), and from 6.6 (EEVDF)
    the minimum granularity became C(base_slice_ns) while the wakeup and latency knobs were removed.
  - debugfs is mounted only when a requested knob needs it, and unmounted again if it was not mounted before.
  - Sysctl knobs persist in C(/etc/sysctl.d/90-aitune.conf), debugfs knobs as C(w) lines in
    C(/etc/tmpfiles.d/aitune.conf).
  - Measurements behind the collection's modes found that host-wide scheduler knobs move agent wake latency very
    little; placing the latency-critical service (see the cgroup and placement modules) moves it a lot.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  base_slice_ns:
    description:
      - EEVDF base slice in nanoseconds (C(/sys/kernel/debug/sched/base_slice_ns), 6.6 and later). On CFS kernels the
        same option sets C(min_granularity_ns), its predecessor.
      - From 100000 to 1000000000.
    type: int
  wakeup_granularity_ns:
    description:
      - CFS wakeup preemption granularity in nanoseconds. Removed in 6.6, where it is reported V(unsupported).
    type: int
  migration_cost_ns:
    description:
      - Time in nanoseconds for which a task that ran counts as cache-hot and is not migrated.
    type: int
  nr_migrate:
    description:
      - How many tasks one load-balancing pass may move.
    type: int
  autogroup:
    description:
      - C(kernel.sched_autogroup_enabled). Autogroup only affects tasks in the root cpu cgroup.
    type: bool
  numa_balancing:
    description:
      - C(kernel.numa_balancing). V(0) off, V(1) normal, V(2) memory tiering, V(3) both.
    type: int
  timer_migration:
    description:
      - C(kernel.timer_migration), whether timers move away from idle CPUs.
    type: bool
  rt_runtime_us:
    description:
      - C(kernel.sched_rt_runtime_us), the microseconds per C(sched_rt_period_us) that real-time tasks may use.
      - V(-1) disables RT throttling, which lets a runaway real-time thread starve the host; think twice.
      - Refused, before anything is written, while M(aitune.kernel.placement) has placed a service with the V(fifo)
        or V(rr) policy (its drop-in in C(/etc/systemd/system/<unit>.d/)). V(-1), or a value of at least
        C(sched_rt_period_us), would switch off the safety that placement requires.
    type: int
'''

EXAMPLES = r'''
- name: Turn off autogroup and ask for a 3 ms base slice where the kernel allows it
  aitune.kernel.sched:
    autogroup: false
    base_slice_ns: 3000000

- name: Same, but fail (without writing anything) if a knob is missing or locked down
  aitune.kernel.sched:
    autogroup: false
    base_slice_ns: 3000000
    strict: true
'''

RETURN = r'''
knobs:
  description: Outcome per abstract knob name, each with C(state), C(path), C(previous), C(desired), C(value),
    C(reason) and C(changed).
  returned: always
  type: dict
  sample:
    sched.autogroup: {state: applied, path: /proc/sys/kernel/sched_autogroup_enabled, previous: '1', desired: '0',
                      value: '0', reason: null, changed: true}
    sched.base_slice_ns: {state: not_permitted, path: /sys/kernel/debug/sched/base_slice_ns, previous: null,
                          desired: '2000000', value: null, changed: false,
                          reason: 'reading /sys/kernel/debug/sched/base_slice_ns: Operation not permitted'}
applied:
  description: Scheduler knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
  sample: [sched.autogroup]
unsupported:
  description: Requested knobs this kernel does not have, with the reason.
  returned: always
  type: dict
  sample: {sched.wakeup_granularity_ns: 'sched.wakeup_granularity_ns is not on this kernel 6.12.48 (removed with EEVDF in 6.6)'}
not_permitted:
  description: Requested knobs the kernel refused, with the reason.
  returned: always
  type: dict
files:
  description: Managed persistence files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/sysctl.d/90-aitune.conf]
kernel:
  description: The running kernel release.
  returned: always
  type: str
  sample: 6.1.0-31-cloud-amd64
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('sched')


if __name__ == '__main__':
    main()
