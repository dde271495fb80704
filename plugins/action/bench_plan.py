# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_plan runs on the controller only: it checks the benchmark settings and plans the run before any host is
reached. Its documentation is plugins/modules/bench_plan.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError
from ansible_collections.aitune.kernel.plugins.module_utils._bench_plan import ARGUMENT_SPEC, plan_run


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    # Nothing here reaches the host; where the connection is a persistent one, it is not even started for this task.
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, settings = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            plan = plan_run(settings)
        except BenchError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(plan, changed=False)
        return result
