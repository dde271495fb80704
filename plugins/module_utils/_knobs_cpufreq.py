# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``cpufreq.`` knob families: each policy's governor, floor and EPP hint, each CPU's EPB, and the global boost
switches. Part of the knob registry (_registry.py); the planning behind aitune.kernel.cpufreq is in _cpufreq.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CPU_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_TMPFILES, Family, IntRange, Knob, Location, Switch, ValidationError)

CPUFREQ_DIR = CPU_DIR + '/cpufreq'
INTEL_PSTATE_DIR = CPU_DIR + '/intel_pstate'
BOOST_PATH = CPUFREQ_DIR + '/boost'
NO_TURBO_PATH = INTEL_PSTATE_DIR + '/no_turbo'
MIN_PERF_PCT_PATH = INTEL_PSTATE_DIR + '/min_perf_pct'

# Governor and preference names as the kernel spells them; anything else cannot be one.
KERNEL_WORD = re.compile(r'^[a-z][a-z0-9_-]{0,31}$')
FREQ_MAX_KHZ = (1 << 32) - 1
NO_CPUFREQ_NOTE = ('needs a cpufreq driver covering this CPU; most VMs have none, and a driver loaded as a module '
                   'must be loaded first')


class KernelWord(object):
    """A governor or preference name. The names on offer are in a sibling file (``scaling_available_governors``),
    which the module checks before the engine runs; the knob itself can only check that the value is a plain word."""

    kind = 'word'

    def describe(self):
        return 'a name the kernel offers'

    def canonical(self, name, value, raw_current=None):
        text = value.strip() if isinstance(value, str) else None
        if text is None or not KERNEL_WORD.match(text):
            raise ValidationError('%s: expected %s, such as performance, got %r' % (name, self.describe(), value))
        return text

    def current(self, raw):
        return raw.strip()


# -- knob families ---------------------------------------------------------------------------------------------------
# setting: (file in the policy directory, module option, validator, description)
POLICY_SETTINGS = {
    'governor': ('scaling_governor', 'governor', KernelWord(), 'Scaling governor of cpufreq policy %d.'),
    'min_freq': ('scaling_min_freq', 'min_freq', IntRange(0, FREQ_MAX_KHZ),
                 'Lowest frequency in kHz that cpufreq policy %d may pick.'),
    'preference': ('energy_performance_preference', 'energy_performance_preference', KernelWord(),
                   'Energy/performance preference (EPP) hint of cpufreq policy %d.'),
}
POLICY_NOTES = {
    'governor': NO_CPUFREQ_NOTE,
    'min_freq': NO_CPUFREQ_NOTE,
    'preference': 'only intel_pstate and amd-pstate in active mode, with HWP/CPPC, offer an EPP hint',
}


def policy_path(policy, leaf):
    return '%s/policy%d/%s' % (CPUFREQ_DIR, policy, leaf)


def policy_knob(policy, setting):
    """``cpufreq.policy<N>.<setting>``: one setting of one cpufreq policy, at its real directory."""
    policy = int(policy)
    leaf, option, validator, description = POLICY_SETTINGS[setting]
    return Knob('cpufreq.policy%d.%s' % (policy, setting), option, validator,
                [Location(policy_path(policy, leaf))], PERSIST_TMPFILES, description % policy,
                absent_note=POLICY_NOTES[setting])


def epb_knob(cpu):
    """``cpufreq.cpu<N>.epb``: the Intel energy/performance bias of one CPU (0 performance ... 15 power saving)."""
    cpu = int(cpu)
    return Knob('cpufreq.cpu%d.epb' % cpu, 'energy_perf_bias', IntRange(0, 15),
                [Location('%s/cpu%d/power/energy_perf_bias' % (CPU_DIR, cpu))], PERSIST_TMPFILES,
                'Energy/performance bias (EPB) of CPU %d.' % cpu,
                absent_note='needs an Intel CPU with EPB, which VMs rarely expose')


GLOBAL_KNOBS = {
    'cpufreq.boost': Knob(
        'cpufreq.boost', 'boost', Switch(), [Location(BOOST_PATH)], PERSIST_TMPFILES,
        'Frequency boost above the base clock (acpi-cpufreq, amd-pstate).',
        absent_note='only acpi-cpufreq and amd-pstate have the global boost switch; intel_pstate has no_turbo'),
    'cpufreq.intel_pstate.no_turbo': Knob(
        'cpufreq.intel_pstate.no_turbo', 'boost', Switch(), [Location(NO_TURBO_PATH)], PERSIST_TMPFILES,
        'intel_pstate turbo switch, inverted: 1 keeps the CPUs at or below the base clock.',
        absent_note='intel_pstate only'),
    'cpufreq.intel_pstate.min_perf_pct': Knob(
        'cpufreq.intel_pstate.min_perf_pct', 'min_perf_pct', IntRange(0, 100), [Location(MIN_PERF_PCT_PATH)],
        PERSIST_TMPFILES, 'intel_pstate floor, percent of the highest performance level, for every CPU.',
        absent_note='intel_pstate only'),
}

FAMILIES = (
    Family(r'cpufreq\.policy(\d{1,4})\.(governor|min_freq|preference)',
           lambda match: policy_knob(match.group(1), match.group(2)), 'cpufreq.policy0.governor'),
    Family(r'cpufreq\.cpu(\d{1,4})\.epb', lambda match: epb_knob(match.group(1)), 'cpufreq.cpu0.epb'),
    Family(r'cpufreq\.(boost|intel_pstate\.no_turbo|intel_pstate\.min_perf_pct)',
           lambda match: GLOBAL_KNOBS[match.group(0)], 'cpufreq.boost'),
)
