#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: profile
short_description: Apply several subsystems in one call, verify by reading back, and record the run as a local fact
version_added: 0.1.0
description:
  - Runs each subsystem named in O(subsystems) exactly as its own module runs it (M(aitune.kernel.sched),
    M(aitune.kernel.memory), M(aitune.kernel.hugepages), M(aitune.kernel.block), M(aitune.kernel.cpufreq),
    M(aitune.kernel.cpuidle), M(aitune.kernel.cgroup), M(aitune.kernel.placement),
    M(aitune.kernel.irq)), with the same options, the same checks and the same result, in one module call.
    The roles apply a mode through it.
  - Every subsystem's options are checked against its module's options first; a problem in any of them fails the
    call before anything is written. Then every subsystem is planned, in the order above, before the first one
    writes. Each checks its options against the host and the rules between subsystems (RT placement needs RT
    throttling, IRQs keep a housekeeping CPU, hugepage pools stay under the memory cap) on top of what the ones
    before it would apply, as check mode does. A refusal found there fails the call with nothing written,
    RV(failed_subsystem) naming the subsystem. The subsystems then run in the same order, so slices exist before
    services are placed in them. A write the kernel itself refuses still stops the run; the subsystems before it
    have applied, and their originals are in the baseline for M(aitune.kernel.restore).
  - One call instead of one per subsystem saves, for each subsystem, a round trip and the build of a module payload,
    about 0.35 s each on a 2-vCPU host, where a one-task C(ping) playbook takes 0.63 s.
  - With O(record), then reads back from the kernel every value the collection has applied on this host, and every
    persistence file it wrote; any difference is drift, and with O(record.fail_on_drift) the call fails and records
    nothing. Then it records the run in a local fact file, so C(ansible_local.aitune) shows the fleet's mode and
    state. The file is JSON, written through the engine (its absence is in the baseline, so restore removes it); its
    C(applied_at) keeps its time while the settings and outcomes stay the same. M(aitune.kernel.tuning_facts) reads it
    back (C(gather_subset=recorded)).
  - It decides what a run covers itself, so a role needs no logic of its own. O(skip) leaves subsystems out; the tags
    of the play (O(run_tags), O(skip_tags)) select subsystems by name; with O(workloads) the placement entry holds a
    class of settings each for V(latency) and V(batch) services, and the services get their class's settings. Only a
    run of the whole profile is recorded.
  - With O(record), a host that already holds the request is left alone after one read, C(changed=false) and
    RV(in_sync) with the reason. It holds it when its record asks the same (a hash of every subsystem's options, the
    host's CPU partition, the mode and O(persist)) of the same collection on the same kernel, nothing waits for a reboot or restart, and every value and
    file the collection applied reads back unchanged.
  - Without root nothing can be written, so the call previews, as in check mode, and RV(preview) says so.
  - Another tuner that writes what the run sets would undo it, and be undone, again and again. Before anything is
    written (and in check mode too), the call looks for a running tuned whose active profile's plugins write a
    selected subsystem, and a running power-profiles-daemon where V(cpufreq) sets a governor or energy-performance
    preference. By default (O(other_tuners=refuse)) it then fails with nothing changed, naming the tuner, its profile
    and the ways out; RV(other_tuners) holds what was found. See O(other_tuners).
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  subsystems:
    description:
      - Per subsystem, the options of its module, without O(root), O(persist) and O(strict), which this call passes
        to every subsystem.
      - The subsystems are V(sched), V(memory), V(hugepages), V(block), V(cpufreq), V(cpuidle), V(cgroup),
        V(placement) and V(irq), each with the options of its module (M(aitune.kernel.block) and so on). A
        subsystem left out, or whose entry is empty, is not touched.
      - A CPU list may be given as V(@housekeeping_cpus), V(@latency_cpus) or V(@batch_cpus), a set of the host's
        CPU partition (RV(cpu_partition), the C(cpus) that M(aitune.kernel.tuning_facts) reports). They are CPU 0 of
        each NUMA node, the upper half of the other CPUs, and every CPU outside the latency set. Each subsystem
        resolves them on the host.
      - Where CPU 0 of each NUMA node is every CPU (one CPU in all, or one per node), no latency CPU can be carved
        out. RV(cpu_partition) is then V(unsupported) with the reason, every setting that names a set of the partition is
        reported V(unsupported) with that reason and writes nothing, and the rest of the profile applies.
    type: dict
    required: true
  workloads:
    description:
      - The services to place, by class. With it, the V(placement) entry of O(subsystems) holds the settings of each
        class (V(latency) and V(batch), the options of a M(aitune.kernel.placement) service without its name),
        and every service listed here gets its class's settings; a service in both lists is placed as latency.
        Placement is left out when no service is listed.
    type: dict
    suboptions:
      latency:
        description: Latency-critical services (an inference server, agent runners).
        type: list
        elements: str
        default: []
      batch:
        description: Batch services (training, data preparation, builds).
        type: list
        elements: str
        default: []
    version_added: 0.1.0
  skip:
    description: Subsystems to leave alone, whatever O(subsystems) holds for them.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  run_tags:
    description:
      - The play's tags (C(ansible_run_tags)). Unless they hold V(all) or V(tagged), only the subsystems they name
        run, and the run is not a record of the mode.
    type: list
    elements: str
    default: [all]
    version_added: 0.1.0
  skip_tags:
    description:
      - The play's skipped tags (C(ansible_skip_tags)). A subsystem they name does not run, and the run is not a record
        of the mode; skip tags that name no subsystem leave the run whole.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  housekeeping_cpus:
    description:
      - The CPUs kept for device IRQs and kernel threads; overrides the V(irq) entry's own.
      - An empty value (V('')) is refused, not read as the default; leave the option out for that.
    type: str
    version_added: 0.1.0
  restart:
    description: With O(workloads), restart the placed services whose drop-in changed, so the placement applies now.
    type: bool
    default: false
    version_added: 0.1.0
  other_tuners:
    description:
      - What to do when a running tuned or power-profiles-daemon writes what this run sets (the
        C(neighbours) part of M(aitune.kernel.tuning_facts) shows them).
      - V(refuse) fails before anything is written, naming the tuner, its profile and which of its plugins writes
        which subsystem. Stop tuned (C(systemctl disable --now tuned)) or mask power-profiles-daemon
        (C(systemctl mask --now power-profiles-daemon)), leave the contested subsystems out with O(skip), or choose
        V(allow).
      - V(allow) applies anyway and warns which settings both write. They then fight - whichever writes last holds
        a setting - and tuned's C(tuned-adm verify) reports what the collection changed.
      - irqbalance and a cpupower or cpufrequtils service do not count. The V(irq) subsystem writes irqbalance's
        banned CPUs, and the boot services only run once, at boot.
    type: str
    choices: [refuse, allow]
    default: refuse
    version_added: 0.1.0
  wait:
    description:
      - How long, in seconds, the call waits for another aitune run on the host (a module call holding the host lock,
        or a run whose lease holds the host between its calls) before it fails, naming that run, with nothing
        written.
      - The call holds the host lock from its first read to its record, so a run that is this one call needs no
        M(aitune.kernel.lease) around it.
    type: int
    default: 60
    version_added: 0.1.0
  record:
    description:
      - Verify everything applied by reading it back, and record this run in a local fact file. Left out, nothing is
        read back beyond each subsystem's own read-back, and no record is written.
      - Record only a run of the whole profile; a run limited to some subsystems is not a record of the mode.
    type: dict
    suboptions:
      path:
        description:
          - The fact file. It must lie in C(/etc/ansible/facts.d) and end in C(.fact); its name is the key under
            C(ansible_local).
        type: path
        default: /etc/ansible/facts.d/aitune.fact
      mode:
        description: The mode that was applied, such as V(balanced).
        type: str
        required: true
      collection_version:
        description: The version of the collection that applied it.
        type: str
        required: true
      settings_hash:
        description:
          - A hash of everything the run was asked to apply, so a later run can tell whether it asks the same. Left
            out, the module hashes the subsystems' options (after O(workloads) and O(skip) are applied), the host's
            CPU partition that the CPU words name, the mode and O(persist).
        type: str
      fail_on_drift:
        description: Fail, recording nothing, when a value or file read back differs from what was applied.
        type: bool
        default: true
attributes:
  diff_mode:
    description: Returns each subsystem's changes to live values and files, headed by the subsystem's name, and the
      record before and after.
    support: full
'''

EXAMPLES = r'''
- name: Balanced on an inference host, in one call, recorded for ansible_local.aitune
  aitune.kernel.profile:
    subsystems:
      memory:
        swappiness: 10
      cpufreq:
        governor: performance
      cpuidle:
        pm_qos_latency_us: 20
      cgroup:
        slices:
          aitune-latency.slice: {cpu_weight: 10000}
          aitune-batch.slice: {cpu_weight: 1}
      placement:
        services:
          - {name: vllm.service, slice: aitune-latency.slice, timer_slack_ns: 1}
    record:
      mode: balanced
      collection_version: 0.1.0
  register: tuned

- name: A mode's data as the roles pass it, with the services, the skip list and the play's tags
  aitune.kernel.profile:
    subsystems:
      memory: {swappiness: 10}
      cgroup:
        slices:
          aitune-latency.slice: {cpu_weight: 10000, allowed_cpus: "@latency_cpus"}
          aitune-batch.slice: {cpu_weight: 1}
      placement:
        latency: {slice: aitune-latency.slice, timer_slack_ns: 1}
        batch: {slice: aitune-batch.slice}
    workloads:
      latency: [vllm.service]
      batch: [trainer.service]
    skip: [cpufreq]
    run_tags: "{{ ansible_run_tags }}"
    skip_tags: "{{ ansible_skip_tags }}"
    record:
      mode: balanced
      collection_version: 0.1.0

- name: Show what changed and what this host cannot do
  ansible.builtin.debug:
    msg: "changed {{ tuned.changed_knobs }}; unsupported {{ tuned.unsupported }}"
'''

RETURN = r'''
subsystems:
  description: Per subsystem that ran, its result as its own module returns it (without C(diff)).
  returned: always
  type: dict
  sample:
    memory: {changed: true, knobs: {vm.swappiness: {state: applied, previous: '60', value: '10', changed: true}},
             applied: [vm.swappiness], unsupported: {}, not_permitted: {}, files: [/etc/sysctl.d/90-aitune.conf]}
knobs:
  description: Every knob of every subsystem that ran, with its state, V(applied), V(unsupported) or V(not_permitted).
  returned: always
  type: dict
  sample: {vm.swappiness: applied, cpufreq.governor: unsupported}
changed_knobs:
  description: The knobs whose live value changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [vm.swappiness]
unsupported:
  description: The knobs and settings this host does not have, with the reason, over every subsystem.
  returned: always
  type: dict
not_permitted:
  description: The knobs the kernel refused, with the reason, over every subsystem.
  returned: always
  type: dict
reboot_required:
  description: Whether boot parameters (hugepages at boot) wait for a reboot.
  returned: always
  type: bool
restart_required:
  description: Services whose placement takes effect only once they restart.
  returned: always
  type: list
  elements: str
failed_subsystem:
  description: The subsystem that failed. When it refused while the run was being planned, nothing was written
    (C(changed=false)); when the kernel refused a write, the ones in RV(subsystems) ran before it.
  returned: failure
  type: str
cpu_partition:
  description:
    - This host's CPU partition, which the CPU words of O(subsystems) name, as CPU lists, with C(state)
      (V(supported), or V(unsupported) where no latency CPU can be carved out) and the C(reason).
  returned: always
  type: dict
  sample: {housekeeping: 0-1, latency: '', batch: 0-1, state: unsupported,
           reason: 'no CPU left for the latency set: this host has 2 CPUs (0-1), both housekeeping (CPU 0 of each of
             its 2 NUMA nodes); a latency/batch partition needs a CPU besides CPU 0 of each NUMA node'}
drift:
  description: With O(record), what differs from what was applied, by knob name or file path, with C(desired) and C(live).
  returned: when the run is recorded
  type: dict
  sample: {vm.swappiness: {desired: '10', live: '60'}}
fact:
  description: With O(record), the record as written (or, in check mode, as it would be written).
  returned: when the run is recorded
  type: dict
  sample: {mode: balanced, collection_version: 0.1.0, applied_at: '2026-11-23T10:00:00Z',
           settings_hash: 5f1c..., kernel_release: 6.12.48+deb12-cloud-amd64, knobs: {vm.swappiness: applied},
           unsupported: {}, not_permitted: {}, reboot_required: false, restart_required: []}
record_changed:
  description: With O(record), whether the record changed (or would, in check mode).
  returned: when the run is recorded
  type: bool
file_changes:
  description: Per file the run wrote (or would write), from before its first write to after its last, V(created),
    V(updated) or V(removed).
  returned: always
  type: dict
  sample: {/etc/sysctl.d/90-aitune.conf: created, /etc/ansible/facts.d/aitune.fact: created}
selected:
  description: The subsystems this run covers, in run order, after O(skip), the tags and O(workloads).
  returned: always
  type: list
  elements: str
  sample: [sched, memory, cgroup]
in_sync:
  description: The host already held the request, so nothing ran (see the description); RV(reason) says since when.
  returned: always
  type: bool
reason:
  description: Why nothing ran, when RV(in_sync).
  returned: when in_sync
  type: str
  sample: already applied on 2026-12-06T12:43:31Z, and every value and file reads back unchanged
recorded:
  description: The host's record the decision was made on, when RV(in_sync).
  returned: when in_sync
  type: dict
preview:
  description: Nothing was written, because of check mode or because the user is not root.
  returned: always
  type: bool
root:
  description: Whether the module ran as root, so it could apply.
  returned: always
  type: bool
other_tuners:
  description: The running tuners that write what this run sets, each as the C(neighbours) part of
    M(aitune.kernel.tuning_facts) reports it (C(tuned), C(power_profiles_daemon)); empty when there is none.
  returned: always
  type: dict
  sample: {tuned: {running: true, pid: 812, profile: latency-performance, profile_mode: manual, reapply_sysctl: true,
                   plugins: [cpu, sysctl], subsystems: [sched, memory, cpufreq, cpuidle]}}
placement_classes:
  description: With O(workloads), the V(latency) and V(batch) settings the services were placed with.
  returned: always
  type: dict
  sample: {latency: {slice: aitune-latency.slice, timer_slack_ns: 1}, batch: {slice: aitune-batch.slice}}
'''

from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module, exit_with_result
from ansible_collections.aitune.kernel.plugins.module_utils._profile import ARGUMENT_SPEC, run_profile
from ansible_collections.aitune.kernel.plugins.module_utils._run import ENGINE_ERRORS, RunFailed


def run_or_refuse(module):
    """The profile's run; a refusal from outside any one subsystem's run (a state file that may not be used, found
    while previewing) fails the module with its message as a subsystem's would."""
    try:
        return run_profile(module)
    except ENGINE_ERRORS as exc:
        raise RunFailed(str(exc))


def main():
    module = build_module(ARGUMENT_SPEC)
    exit_with_result(module, lambda run: run_or_refuse(run.module))


if __name__ == '__main__':
    main()
