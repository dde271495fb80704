# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Every knob the collection knows, by its abstract name: the fixed sched, memory and halt-polling knobs and every
family of knobs that come in numbers (hugepage pools, block devices, cpufreq policies, idle states, IRQs, cgroups).

The table is whole when this module is imported, and nothing adds to it later: restore and drift rebuild any knob the
baseline or the state names, whichever module first applied it, from the name alone.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils import (
    _knobs_block, _knobs_cgroup, _knobs_cpufreq, _knobs_cpuidle, _knobs_irq)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    HUGEPAGE_FAMILIES, REGISTRY, ValidationError, valid_knob_name)

# The knobs that exist once per host, by name.
FIXED = dict(REGISTRY)
FIXED.update(_knobs_cpuidle.KNOBS)
FAMILIES = (HUGEPAGE_FAMILIES + _knobs_cpufreq.FAMILIES + _knobs_cpuidle.FAMILIES + _knobs_irq.FAMILIES
            + _knobs_block.FAMILIES + _knobs_cgroup.FAMILIES)


def lookup(name):
    """The knob named ``name``: a fixed one, or one a family makes from the name."""
    if not valid_knob_name(name):
        raise ValidationError('invalid knob name %r' % (name,))
    if name in FIXED:
        return FIXED[name]
    for family in FAMILIES:
        match = family.pattern.match(name)
        if match:
            return family.factory(match)
    raise ValidationError('unknown knob %r; known knobs: %s; and families such as %s'
                          % (name, ', '.join(sorted(FIXED)), ', '.join(f.example for f in FAMILIES)))
