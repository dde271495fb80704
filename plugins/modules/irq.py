#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: irq
short_description: Keep device IRQs and unbound kernel workers on the housekeeping CPUs
version_added: 0.1.0
description:
  - Moves the IRQs of the devices named by O(devices) onto the housekeeping CPUs by writing
    C(/proc/irq/<N>/smp_affinity_list), and reads each one back. The other online CPUs are the latency CPUs, left to
    the latency-critical work.
  - Each IRQ is known by its identity, not by its number, because IRQ numbers move across a reboot whenever drivers
    built as modules load in another order. Its knob is C(irq.<identity>.affinity), where the identity is the IRQ's
    action names as C(/proc/interrupts) shows them (sorted and joined with C(,) for a shared IRQ), such as
    C(irq.nvme0q2.affinity) or C(irq.virtio0-input.0.affinity). Where other IRQs of the host have the same actions,
    C(~) and the PCI device whose MSI vector it is (else its interrupt chip) follow, and C(#) with its hardware IRQ
    number where that is still not enough, as in C(irq.xhci_hcd~0000:00:14.0.affinity) or
    C(irq.i8042~IO-APIC#12.affinity). RV(irqs) shows each IRQ's number in this boot and its knob.
  - Every run (apply, M(aitune.kernel.restore), the drift M(aitune.kernel.tuning_facts) reports) finds the IRQ with
    that identity again. An identity that no IRQ has any more (its device is gone, its driver is not loaded), or that
    several IRQs have, is never written to any IRQ; it is reported V(unsupported) with a reason naming it, and
    restore takes its original out of the baseline. An IRQ whose action names hold other characters (a blank, as in
    C(PCIe PME)) has no identity and is reported V(unsupported) under C(irq.<N>.affinity).
  - Knobs C(irq.<N>.affinity), by number, are what earlier versions recorded. Restore still puts them back within the
    boot that recorded them (the baseline's time against C(btime) in C(/proc/stat)); one recorded in an earlier boot
    is reported V(unsupported), because the number may belong to another device now, and nothing is written.
  - Kernel-managed IRQs (the per-queue IRQs of NVMe and other multi-queue drivers on most kernels), per-CPU IRQs and
    IRQs requested with C(IRQF_NOBALANCING) (the timer on IRQ 0) cannot be moved from user space. The kernel makes
    their affinity file read-only or refuses the write; they are reported V(not_permitted) and the run goes on. The
    reason tells which kind the IRQ is, from the flags in debugfs C(/sys/kernel/debug/irq/irqs/<N>) where it is
    readable, else from what the IRQ is (an MSI vector that refuses is most likely managed). Only for managed IRQs is
    C(isolcpus=managed_irq,<latency CPUs>) on the kernel command line the way to keep them off the latency CPUs.
  - With O(default_affinity), also sets C(/proc/irq/default_smp_affinity), the affinity IRQs requested later start
    with. With O(workqueue), also sets C(/sys/devices/virtual/workqueue/cpumask), so unbound kernel workers stay off
    the latency CPUs. Both persist as C(w) lines in C(/etc/tmpfiles.d/aitune.conf).
  - The IRQ affinity persists by device name, because IRQ numbers change across boots. Where irqbalance is installed
    (C(/usr/sbin/irqbalance), or its settings file exists) the latency CPUs are banned in its settings file,
    C(/etc/default/irqbalance) on Debian and Ubuntu or C(/etc/sysconfig/irqbalance) on RHEL and Fedora, and a running
    irqbalance is restarted; a running irqbalance would otherwise move the IRQs back within seconds. Both
    C(IRQBALANCE_BANNED_CPULIST) and the older hex mask C(IRQBALANCE_BANNED_CPUS) are set, to the same CPUs, so every
    irqbalance version reads them; irqbalance then balances all IRQs, not only those of O(devices), over the
    housekeeping CPUs, and no longer bans isolated and C(nohz_full) CPUs by itself, so those are banned too.
  - Without irqbalance and with systemd as PID 1, a oneshot unit C(aitune-irq-affinity.service) steers the IRQs of
    O(devices) again at every boot. Otherwise nothing re-applies them at boot, and RV(persistent) is V(false).
  - A run describes the whole IRQ setup of the host. A run with fewer O(devices) or none takes the persistence of
    the earlier ones back out; live affinities stay until M(aitune.kernel.restore).
  - Refuses, before anything is written, a housekeeping set with CPUs that are not online, an empty one, and one
    that would leave the latency CPUs holding every CPU 0 of the NUMA nodes, unless O(allow_housekeeping_cpus).
  - Where the housekeeping set is every online CPU (the default on a host with one CPU per NUMA node), there is no
    CPU to steer away from, so each setting the run would make is reported V(unsupported) with the reason, and
    nothing is written. Steering onto every CPU would only rewrite the affinities, and record them for restore, to no
    purpose.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  devices:
    description:
      - Names or globs (C(*), C(?), C([...])) of the IRQ actions to move, as C(/proc/interrupts) lists them in its
        last column, such as V(nvme*), V(mlx5_comp*) or V(virtio3-*). A shared IRQ moves when one of its actions
        matches.
      - Letters, digits, C(_.:@+-) and the glob characters only, 64 characters at most.
    type: list
    elements: str
    default: []
  housekeeping_cpus:
    description:
      - The CPUs that take the IRQs, as a CPU list such as V(0,4) or V(0-1). Every one must be online.
      - Or a set of the host's CPU partition, V(@housekeeping_cpus) or V(@batch_cpus) (see
        M(aitune.kernel.profile)); where the host's shape leaves no partition, the steering is V(unsupported) with the
        reason.
      - An empty value (V('')) is refused; leave the option out for the default.
      - Defaults to CPU 0 of each NUMA node, read before anything changes. The CPUs serving device IRQs today are not
        added, as they are for other housekeeping decisions. On a VM that spreads its IRQs that would be every CPU,
        and steering onto every CPU changes nothing.
    type: str
  default_affinity:
    description:
      - Also set C(/proc/irq/default_smp_affinity) to the housekeeping CPUs.
    type: bool
    default: false
  workqueue:
    description:
      - Also set C(/sys/devices/virtual/workqueue/cpumask) to the housekeeping CPUs.
    type: bool
    default: false
  allow_housekeeping_cpus:
    description:
      - Steer even when the latency CPUs would hold CPU 0 of every NUMA node, the CPUs the kernel favours for its own
        threads and timers. NVIDIA's inference profiles that isolated those cores cut H100 throughput from 148k to 50k
        tokens/s; set this only when this host really has other CPUs for that work.
      - CPUs that are not online and an empty set are refused all the same.
    type: bool
    default: false
notes:
  - In check mode a managed IRQ whose affinity file the kernel keeps writable (older kernels) is reported as changing; the
    kernel only refuses it at the real write.
  - Where irqbalance runs, it owns the exact placement within the housekeeping CPUs, so an C(irq.<identity>.affinity)
    may later differ from what this module wrote while staying on housekeeping CPUs.
  - IRQs that drivers request after boot (some network drivers do on link up) follow O(default_affinity), or
    irqbalance where it runs.
'''

EXAMPLES = r'''
- name: Keep NVMe and mlx5 IRQs on CPU 0 of each NUMA node, and unbound kernel workers with them
  aitune.kernel.irq:
    devices: [nvme*, mlx5*]
    default_affinity: true
    workqueue: true

- name: Preview steering the virtio IRQs of a VM onto CPUs 0-1
  aitune.kernel.irq:
    devices: [virtio*]
    housekeeping_cpus: 0-1
  check_mode: true
  diff: true

- name: Put the IRQ affinities back as they were
  aitune.kernel.restore:
    scope: irq
'''

RETURN = r'''
knobs:
  description: Outcome per knob (C(irq.<identity>.affinity), C(irq.default_affinity), C(workqueue.cpumask)), each
    with C(state), C(path) (the IRQ's file in this boot), C(previous), C(desired), C(value), C(reason) and
    C(changed).
  returned: always
  type: dict
  sample:
    irq.nvme0q0.affinity: {state: applied, path: /proc/irq/24/smp_affinity_list, previous: 0-7, desired: '0,4',
                           value: '0,4', reason: null, changed: true}
applied:
  description: Knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
unsupported:
  description: Requested knobs this kernel does not have, and every knob of a run with no CPU to steer away from,
    with the reason.
  returned: always
  type: dict
not_permitted:
  description: Requested knobs the kernel refused, with the reason; kernel-managed IRQs among them.
  returned: always
  type: dict
  sample: {irq.nvme0q1.affinity: 'kernel-managed IRQ: the kernel spreads the IRQs of multi-queue devices ...',
           irq.timer.affinity: 'the timer IRQ: requested with IRQF_NOBALANCING and IRQF_TIMER ...'}
irqs:
  description: Per matched IRQ number in this boot, its C(devices) (action names), the C(knob) that names it by
    identity, its affinity C(before) and C(after) the run, the knob C(state), and the C(effective) affinity the kernel
    reports (the CPUs it really delivers to).
  returned: always
  type: dict
  sample: {'24': {devices: [nvme0q0], knob: irq.nvme0q0.affinity, before: 0-7, after: '0,4', state: applied,
                  effective: '0'}}
housekeeping_cpus:
  description: The CPUs the IRQs were steered onto.
  returned: always
  type: str
  sample: '0,4'
latency_cpus:
  description: The other online CPUs, kept free of the steered IRQs.
  returned: always
  type: str
  sample: 1-3,5-7
persistence:
  description: How the IRQ affinity comes back at boot, V(irqbalance), V(unit) or V(none).
  returned: always
  type: str
  sample: irqbalance
persistent:
  description: Whether what this run set comes back at boot.
  returned: always
  type: bool
files:
  description: Managed and owned files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/default/irqbalance, /etc/tmpfiles.d/aitune.conf]
actions:
  description: What was done to make changed files act now, such as restarting irqbalance or starting the unit.
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
    run_subsystem_module('irq')


if __name__ == '__main__':
    main()
