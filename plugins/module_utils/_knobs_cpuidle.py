# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``cpuidle.`` knob family: one idle state of one CPU switched off. Part of the knob registry (_registry.py); the
planning behind aitune.kernel.cpuidle is in _cpuidle.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CPU_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import PERSIST_TMPFILES, Family, Knob, Location, Switch


def state_path(cpu, state):
    return '%s/cpu%d/cpuidle/state%d/disable' % (CPU_DIR, cpu, state)


def state_knob(cpu, state):
    """``cpuidle.cpu<N>.state<K>.disable``: whether idle state K is off for CPU N."""
    cpu, state = int(cpu), int(state)
    return Knob('cpuidle.cpu%d.state%d.disable' % (cpu, state), 'max_exit_latency_us', Switch(),
                [Location(state_path(cpu, state))], PERSIST_TMPFILES,
                'Idle state %d disabled on CPU %d.' % (state, cpu),
                absent_note='needs a cpuidle driver with that idle state on this CPU')


FAMILIES = (
    Family(r'cpuidle\.cpu(\d{1,4})\.state(\d{1,2})\.disable', lambda match: state_knob(match.group(1), match.group(2)),
           'cpuidle.cpu0.state2.disable'),
)
