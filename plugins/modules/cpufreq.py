#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cpufreq
short_description: Set the CPU frequency governor, energy hints, minimum performance and boost
version_added: 0.1.0
description:
  - Sets cpufreq settings for every online CPU, or for the CPUs in O(cpus), and reads each one back.
  - Frequency settings belong to cpufreq policies, not to single CPUs. CPUs that share a clock share a policy (its
    C(related_cpus)), and C(/sys/devices/system/cpu/cpuN/cpufreq) is only a symlink to C(../cpufreq/policyM). The
    collection never writes through a symlink, so the module writes each policy once, in its real directory
    C(/sys/devices/system/cpu/cpufreq/policyM), and names the knobs after the policy (C(cpufreq.policy0.governor)).
    O(cpus) selects the policies that cover those CPUs, and must list every online CPU of each one, because a setting
    reaches all the CPUs of its policy.
  - Policies whose CPUs are all offline are left alone; the kernel refuses access to their files.
  - A host without cpufreq (no policy directories in C(/sys/devices/system/cpu/cpufreq)), as most VMs, reports each
    requested setting V(unsupported) with the reason and changes nothing. It is never a failure, except with
    O(strict).
  - The values persist as C(w) lines in C(/etc/tmpfiles.d/aitune.conf). systemd-tmpfiles writes them at boot only
    once the cpufreq driver has created its files; a C(w) line for a missing file is skipped. intel_pstate is built
    into the kernel and is always there in time. A driver loaded as a module (acpi-cpufreq, amd-pstate on some
    distributions) may come after C(systemd-tmpfiles-setup.service); run the module again after boot then, or load
    the driver from the initramfs.
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
      - The CPUs to tune, as a CPU list such as C(0-3,8). Every CPU must be online.
      - Or a set of the host's CPU partition, V(@latency_cpus), V(@batch_cpus) or V(@housekeeping_cpus) (see
        M(aitune.kernel.profile)). Where the host's shape leaves no partition, the per-policy and per-CPU settings
        are V(unsupported) with the reason; they never fall back to every CPU.
      - Default is every online CPU.
      - Applies to O(governor), O(energy_performance_preference), O(min_freq) (per policy) and O(energy_perf_bias) (per
        CPU). O(min_perf_pct) and O(boost) are host-wide whatever this says.
    type: str
  governor:
    description:
      - Scaling governor, one of the names in the policy's C(scaling_available_governors), for example V(performance).
        intel_pstate in active mode offers only V(performance) and V(powersave).
    type: str
  energy_performance_preference:
    description:
      - Energy/performance preference (EPP) hint, one of the names in the policy's
        C(energy_performance_available_preferences), for example V(performance) or V(balance_performance).
      - Only intel_pstate and amd-pstate in active mode have it; elsewhere it is reported V(unsupported).
      - Under the V(performance) governor these drivers take no preference but V(performance); asking for another one
        with that governor is refused before anything is written. The governor is written before the preference, so
        leaving V(performance) and setting a preference in one run works.
    type: str
  energy_perf_bias:
    description:
      - Intel energy/performance bias (EPB) per CPU, from V(0) (performance) to V(15) (power saving); the kernel calls
        V(6) normal. Written to C(/sys/devices/system/cpu/cpuN/power/energy_perf_bias).
    type: int
  min_perf_pct:
    description:
      - intel_pstate floor, in percent of the highest performance level, for every CPU
        (C(/sys/devices/system/cpu/intel_pstate/min_perf_pct)). V(unsupported) with other drivers.
      - intel_pstate may hold it at or above its own lowest level; a value it does not keep is reported
        V(not_permitted).
    type: int
  min_freq:
    description:
      - Lowest frequency each selected policy may pick, in kHz (C(scaling_min_freq)), or V(max) for the policy's
        C(cpuinfo_max_freq).
      - Must lie within the policy's C(cpuinfo_min_freq) to C(cpuinfo_max_freq).
      - intel_pstate honours both this and O(min_perf_pct); the higher floor wins.
    type: str
  boost:
    description:
      - Whether CPUs may run above their base clock. Written to C(/sys/devices/system/cpu/cpufreq/boost)
        (acpi-cpufreq, amd-pstate) or, inverted, to C(/sys/devices/system/cpu/intel_pstate/no_turbo), whichever the host
        has; the knob is then C(cpufreq.boost) or C(cpufreq.intel_pstate.no_turbo).
      - Turbo that the firmware turned off cannot be turned on here; that is reported V(not_permitted).
    type: bool
notes:
  - Knob names, for M(aitune.kernel.restore) and drift, are C(cpufreq.policyN.governor), C(cpufreq.policyN.min_freq),
    C(cpufreq.policyN.preference), C(cpufreq.cpuN.epb), C(cpufreq.intel_pstate.min_perf_pct),
    C(cpufreq.intel_pstate.no_turbo) and C(cpufreq.boost).
'''

EXAMPLES = r'''
- name: Latency first, as tuned's latency-performance profile does it
  aitune.kernel.cpufreq:
    governor: performance
    energy_perf_bias: 0
    min_perf_pct: 100
    boost: true

- name: Throughput with an EPP hint, keeping the powersave governor of intel_pstate
  aitune.kernel.cpufreq:
    governor: powersave
    energy_performance_preference: balance_performance

- name: Hold the CPUs that serve the inference engine at their top frequency
  aitune.kernel.cpufreq:
    cpus: 2-7
    governor: performance
    min_freq: max

- name: Fail instead of reporting unsupported where the host has no cpufreq
  aitune.kernel.cpufreq:
    governor: performance
    strict: true
'''

RETURN = r'''
knobs:
  description: Outcome per knob, each with C(state), C(path), C(previous), C(desired), C(value), C(reason) and
    C(changed). A setting that has no knob on this host (no cpufreq policy covers the CPUs) is reported under the
    setting's name, such as C(cpufreq.governor), with state V(unsupported) and the reason.
  returned: always
  type: dict
  sample:
    cpufreq.policy0.governor: {state: applied, path: /sys/devices/system/cpu/cpufreq/policy0/scaling_governor,
                               previous: powersave, desired: performance, value: performance, reason: null,
                               changed: true}
    cpufreq.intel_pstate.no_turbo: {state: applied, path: /sys/devices/system/cpu/intel_pstate/no_turbo,
                                    previous: '1', desired: '0', value: '0', reason: null, changed: true}
applied:
  description: Knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
unsupported:
  description: Requested knobs or settings this host does not have, with the reason.
  returned: always
  type: dict
  sample: {cpufreq.governor: 'no cpufreq driver on this host: /sys/devices/system/cpu/cpufreq has no policy
           directories (...); nothing to set for CPU 0-1'}
not_permitted:
  description: Requested knobs the kernel refused or did not keep, with the reason.
  returned: always
  type: dict
driver:
  description: The cpufreq scaling driver of the selected policies, such as V(intel_pstate); null without cpufreq.
  returned: always
  type: str
  sample: intel_pstate
policies:
  description: The policies the run acted on, with their online CPUs.
  returned: always
  type: dict
  sample: {policy0: '0', policy1: '1'}
files:
  description: Managed persistence files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/tmpfiles.d/aitune.conf]
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('cpufreq')


if __name__ == '__main__':
    main()
