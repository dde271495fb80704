# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The lease module's controller side: it names the run (a random id when the lease is taken), the controller and
the controller's ansible-playbook process, then runs the module on the host. Its documentation is
plugins/modules/lease.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import uuid

from ansible.plugins.action import ActionBase

from ansible_collections.aitune.kernel.plugins.module_utils._lease import controller_name


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get('state', 'acquired') == 'acquired' and not args.get('run_id'):
            args['run_id'] = uuid.uuid4().hex
        args.setdefault('controller', controller_name())
        # Tasks run in worker processes forked from ansible-playbook: their parent is the run's own process.
        args.setdefault('controller_pid', os.getppid())
        result.update(self._execute_module(module_name='aitune.kernel.lease', module_args=args,
                                           task_vars=task_vars))
        return result
