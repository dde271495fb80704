# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The applying subsystems, in the order the profile module runs them: each one's name, module, argument spec and
run, taken from its own room.

A subsystem module (aitune.kernel.sched and the others) validates its options with AnsibleModule and runs its
subsystem. The profile module validates each subsystem's options against the same argument spec and runs several
subsystems in one module call, one after the other, in the order of SUBSYSTEM_RUNS: slices exist before services
are placed in them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import OrderedDict, namedtuple

from ansible_collections.aitune.kernel.plugins.module_utils import (
    _block, _cgroup, _cpufreq, _cpuidle, _hugepages, _irq, _placement, _sched_memory)
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module, exit_with_result

# ``name``: the subsystem, its module (aitune.kernel.<name>), its tag and its restore scope alike; ``argument_spec``
# and ``mutually_exclusive``: its options, without the common ones (root, persist, strict); ``run(Run)``: applies and
# returns the module result, or raises RunFailed.
Subsystem = namedtuple('Subsystem', 'name argument_spec mutually_exclusive run')

SUBSYSTEM_RUNS = OrderedDict((subsystem.name, subsystem) for subsystem in (
    Subsystem('sched', _sched_memory.SCHED_SPEC, (), _sched_memory.run_sched),
    Subsystem('memory', _sched_memory.MEMORY_SPEC, _sched_memory.MEMORY_EXCLUSIVE, _sched_memory.run_memory),
    Subsystem('hugepages', _hugepages.ARGUMENT_SPEC, (), _hugepages.apply_hugepages),
    Subsystem('block', _block.ARGUMENT_SPEC, (), _block.run),
    Subsystem('cpufreq', _cpufreq.ARGUMENT_SPEC, (), _cpufreq.run),
    Subsystem('cpuidle', _cpuidle.ARGUMENT_SPEC, (), _cpuidle.run),
    Subsystem('cgroup', _cgroup.ARGUMENT_SPEC, (), _cgroup.run),
    Subsystem('placement', _placement.ARGUMENT_SPEC, (), _placement.run),
    Subsystem('irq', _irq.ARGUMENT_SPEC, (), _irq.run),
))

# Checks of a subsystem's validated options that need no host, run by the profile module for every subsystem before
# the first one writes: ``check(params)`` raises EngineError or ValidationError with the problem.
OPTION_CHECKS = {
    'hugepages': _hugepages.check_options,
    'cpuidle': _cpuidle.check_options,
}


def run_subsystem_module(name):
    """The whole of a subsystem module's ``main()``."""
    subsystem = SUBSYSTEM_RUNS[name]
    module = build_module(subsystem.argument_spec, mutually_exclusive=list(subsystem.mutually_exclusive) or None)
    exit_with_result(module, subsystem.run)
