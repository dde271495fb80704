# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Every module_utils that registers a knob family, imported in one place.

The engine imports this, so any module that drives it (restore and tuning_facts above all) can rebuild every knob
that the baseline or the state names, whichever module first applied it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils import _cpufreq, _cpuidle
from ansible_collections.aitune.kernel.plugins.module_utils import _irq
from ansible_collections.aitune.kernel.plugins.module_utils import _block
from ansible_collections.aitune.kernel.plugins.module_utils import _cgroup

FAMILY_MODULES = (_cpufreq, _cpuidle, _irq, _block, _cgroup)
