# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""CPU frequency scaling: the cpufreq knob families and the planning behind aitune.kernel.cpufreq.

Frequency settings belong to a cpufreq *policy*, not to a CPU: CPUs that share a clock share one policy
(``related_cpus``), and ``/sys/devices/system/cpu/cpuN/cpufreq`` is only a symlink to ``../cpufreq/policyM``. The
collection never writes through a symlink, so every per-policy knob lives at the real directory
``/sys/devices/system/cpu/cpufreq/policyM`` and is named after it (``cpufreq.policy0.governor``). That also means one
write per policy, however many of its CPUs were asked for.

Knob names within a policy sort governor < min_freq < preference, and the engine writes in name order: leaving the
``performance`` governor must happen before a new energy_performance_preference is written, because intel_pstate and
amd-pstate-epp refuse any preference but ``performance`` (EBUSY) while that governor is set.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._cpupower import run_plan, select_cpus
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist, online_cpus
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import INVALID, REFUSED, FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError, shown
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cpufreq import (
    CPUFREQ_DIR, KernelWord, NO_TURBO_PATH, epb_knob, policy_knob, policy_path)

# The drivers that refuse an energy_performance_preference other than "performance" under the performance governor.
EPP_LOCKED_BY_PERFORMANCE = ('intel_pstate', 'amd-pstate-epp')


# -- reading the host ------------------------------------------------------------------------------------------------
class Policy(object):
    """One cpufreq policy as the kernel shows it: its number, its CPUs, and the files the module validates against."""

    def __init__(self, fs, number):
        self.fs = fs
        self.number = number
        # related_cpus is a space-separated list of CPU numbers ("0 1"), not the range notation of cpulist files.
        related = (self.read('related_cpus') or str(number)).split()
        if not all(cpu.isdigit() for cpu in related):
            raise FsError(INVALID, policy_path(number, 'related_cpus'),
                          '%s: %r is not a list of CPU numbers' % (policy_path(number, 'related_cpus'), related))
        self.related = {int(cpu) for cpu in related}
        self.driver = self.read('scaling_driver')

    @property
    def name(self):
        return 'policy%d' % self.number

    def read(self, leaf):
        text = self.fs.read_optional(policy_path(self.number, leaf))
        return text.strip() if text is not None else None

    def words(self, leaf):
        text = self.read(leaf)
        return text.split() if text is not None else None

    def khz(self, leaf):
        text = self.read(leaf)
        return int(text) if text is not None and text.isdigit() else None


def host_policies(fs):
    """``{policy number: Policy}`` for every policy directory, active or not; empty without a cpufreq driver."""
    try:
        names = fs.listdir(CPUFREQ_DIR)
    except FsError:
        return {}
    policies = {}
    for name in names:
        match = re.match(r'^policy(\d{1,4})$', name)
        if not match:
            continue
        path = '%s/%s' % (CPUFREQ_DIR, name)
        if fs.is_symlink(path):
            raise FsError(REFUSED, path, 'refused %s: the kernel puts a directory there, not a symlink; the tree has '
                                         'been tampered with' % path)
        policies[int(match.group(1))] = Policy(fs, int(match.group(1)))
    return policies


def select_policies(fs, cpus, explicit):
    """``(policies acting for cpus, cpus no policy covers)``.

    A policy whose CPUs are all offline is inactive (the kernel answers EBUSY on its files) and never selected. An
    explicit ``cpus`` that covers only part of a policy is refused: the setting would reach the other CPUs too.
    """
    online = online_cpus(fs)
    selected = {}
    covered = set()
    partial = []
    for number, policy in sorted(host_policies(fs).items()):
        live = policy.related & online
        if not live or not live & cpus:
            continue
        if explicit and not live <= cpus:
            partial.append('%s covers CPU %s' % (policy.name, format_cpulist(live)))
            continue
        selected[number] = policy
        covered |= live
    if partial:
        raise ValidationError('cpus: frequency settings act on whole cpufreq policies, and CPUs that share a policy '
                              'share its settings (%s); list all the CPUs of each policy' % '; '.join(partial))
    return selected, cpus - covered


# -- planning --------------------------------------------------------------------------------------------------------
def parse_min_freq(value):
    """``None``, the word ``max``, or a frequency in kHz."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == 'max':
        return 'max'
    if isinstance(value, bool) or not text.isdigit():
        raise ValidationError('min_freq: expected a frequency in kHz or the word "max", got %s' % (shown(value),))
    return int(text)


def _check_offered(policies, leaf, option, value):
    problems = []
    for policy in policies:
        offered = policy.words(leaf)
        if offered is not None and value not in offered:
            problems.append('%s offers %s' % (policy.name, ', '.join(offered) or 'nothing'))
    if problems:
        raise ValidationError('%s: %s is not offered by the kernel (%s)' % (option, shown(value), '; '.join(problems)))


def _min_freq_for(policy, wanted):
    low, high = policy.khz('cpuinfo_min_freq'), policy.khz('cpuinfo_max_freq')
    if low is None or high is None:
        raise ValidationError('min_freq: %s shows no cpuinfo_min_freq/cpuinfo_max_freq, so %r cannot be checked '
                              'against what it can run at' % (policy.name, wanted))
    if wanted == 'max':
        return high
    if not low <= wanted <= high:
        raise ValidationError('min_freq: %d kHz is outside what %s can run at, %d to %d kHz'
                              % (wanted, policy.name, low, high))
    return wanted


def _check_preference_under_performance(policies, governor, preference):
    for policy in policies:
        if policy.driver not in EPP_LOCKED_BY_PERFORMANCE or policy.words('energy_performance_available_preferences') \
                is None:
            continue
        resulting = governor or policy.read('scaling_governor')
        if resulting == 'performance' and preference != 'performance':
            raise ValidationError('energy_performance_preference: %s (%s) only takes "performance" while its governor '
                                  'is performance, and %r was asked for; choose another governor or drop the '
                                  'preference' % (policy.name, policy.driver, preference))


class CpufreqPlan(object):
    """What one cpufreq run asks for: ``desired`` knobs for the engine, plus the settings no knob can carry here
    (``unsupported``: setting name -> (reason, requested value)), validated as a whole before anything is written."""

    def __init__(self, fs, params):
        self.fs = fs
        self.desired = {}
        self.unsupported = {}
        self.warnings = []
        self.cpus, no_cpus = select_cpus(fs, params.get('cpus'))
        self.policies, uncovered = select_policies(fs, self.cpus, params.get('cpus') not in (None, ''))
        self.driver = ', '.join(sorted({p.driver for p in self.policies.values() if p.driver})) or None
        policies = [self.policies[n] for n in sorted(self.policies)]

        governor = params.get('governor')
        preference = params.get('energy_performance_preference')
        min_freq = parse_min_freq(params.get('min_freq'))
        for option, value in (('governor', governor), ('energy_performance_preference', preference)):
            if value is not None:
                KernelWord().canonical(option, value)
        if governor is not None:
            _check_offered(policies, 'scaling_available_governors', 'governor', governor)
        if preference is not None:
            _check_offered(policies, 'energy_performance_available_preferences', 'energy_performance_preference',
                           preference)
            _check_preference_under_performance(policies, governor, preference)

        per_policy = (('governor', governor), ('min_freq', min_freq), ('preference', preference))
        for setting, value in per_policy:
            if value is None:
                continue
            for policy in policies:
                resolved = _min_freq_for(policy, value) if setting == 'min_freq' else value
                self.desired[policy_knob(policy.number, setting).name] = resolved
            if uncovered:
                self.unsupported['cpufreq.%s' % setting] = (self._uncovered_reason(uncovered), value)
            elif no_cpus:
                self.unsupported['cpufreq.%s' % setting] = (no_cpus, value)

        if no_cpus and params.get('energy_perf_bias') is not None:
            self.unsupported['cpufreq.energy_perf_bias'] = (no_cpus, params['energy_perf_bias'])
        if params.get('energy_perf_bias') is not None:
            for cpu in sorted(self.cpus):
                self.desired[epb_knob(cpu).name] = params['energy_perf_bias']
        if params.get('min_perf_pct') is not None:
            self.desired['cpufreq.intel_pstate.min_perf_pct'] = params['min_perf_pct']
        if params.get('boost') is not None:
            # intel_pstate says it the other way round: no_turbo=1 means no boost.
            if fs.lexists(NO_TURBO_PATH):
                self.desired['cpufreq.intel_pstate.no_turbo'] = not params['boost']
            else:
                self.desired['cpufreq.boost'] = params['boost']

    def _uncovered_reason(self, uncovered):
        if not self.policies and not host_policies(self.fs):
            return ('no cpufreq driver on this host, as in most VMs: %s has no policy directories, so there is '
                    'nothing to set for CPU %s' % (CPUFREQ_DIR, format_cpulist(uncovered)))
        return 'CPU %s has no active cpufreq policy on this host' % format_cpulist(uncovered)

    def owned(self):
        return {}

    def result(self, engine):
        online = online_cpus(self.fs)
        return {'driver': self.driver,
                'policies': {p.name: format_cpulist(p.related & online) for p in self.policies.values()}}


# -- the module's options and run --------------------------------------------------------------------------------------
ARGUMENT_SPEC = dict(
    cpus=dict(type='str'),
    governor=dict(type='str'),
    energy_performance_preference=dict(type='str'),
    energy_perf_bias=dict(type='int'),
    min_perf_pct=dict(type='int'),
    min_freq=dict(type='str'),
    boost=dict(type='bool'),
)


def run(subsystem_run):
    """aitune.kernel.cpufreq: governor, EPP, EPB, floor and boost, per policy."""
    return run_plan(subsystem_run, lambda engine: CpufreqPlan(engine.fs, subsystem_run.params))
