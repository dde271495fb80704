# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The scheduler and memory knobs of aitune.kernel.sched and aitune.kernel.memory: one option per registry knob,
typed after its validator, applied through the engine as they are. The knobs themselves (where each lives on which
kernel) are in _knobs.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._invariants import check_min_free, check_rt_runtime
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import MEMORY_KNOBS, SCHED_KNOBS
from ansible_collections.aitune.kernel.plugins.module_utils._run import apply_knobs, knob_options

SCHED_SPEC = knob_options(SCHED_KNOBS)
MEMORY_SPEC = knob_options(MEMORY_KNOBS)
# The kernel keeps one half of each pair: writing the bytes form zeroes the ratio, and the other way round.
MEMORY_EXCLUSIVE = (('dirty_ratio', 'dirty_bytes'), ('dirty_background_ratio', 'dirty_background_bytes'))


def run_sched(subsystem_run):
    # Rule rt-placement-needs-rt-throttling (_invariants.RULES); placement checks the other direction.
    return apply_knobs(subsystem_run, SCHED_KNOBS, check=check_rt_runtime)


def run_memory(subsystem_run):
    # Rule hugepages-under-memory-cap (_invariants.RULES); hugepages checks the other direction.
    return apply_knobs(subsystem_run, MEMORY_KNOBS, check=check_min_free)
