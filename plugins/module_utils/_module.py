# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The module helper: the options every aitune module shares, building the AnsibleModule, and exiting with a run's
result or failure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aitune.kernel.plugins.module_utils._run import Run, RunFailed

COMMON_ARGUMENT_SPEC = dict(
    root=dict(type='path', default='/'),
)
APPLY_ARGUMENT_SPEC = dict(
    strict=dict(type='bool', default=False),
    persist=dict(type='bool', default=True),
)


def build_module(argument_spec, apply_options=True, **kwargs):
    spec = dict(COMMON_ARGUMENT_SPEC)
    if apply_options:
        spec.update(APPLY_ARGUMENT_SPEC)
    spec.update(argument_spec)
    return AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)


# The longest failure message a module returns. Each refusal shows at most the start of a value it echoes
# (_knobs.shown); this is the net under all of them together, for a message that joins many.
MESSAGE_CHARS = 8000


def capped_message(message, limit=MESSAGE_CHARS):
    if len(message) <= limit:
        return message
    return '%s... (%d characters)' % (message[:limit], len(message))


def exit_with_result(module, run_subsystem):
    """Run ``run_subsystem(Run)`` with the module's own options and exit with its result or failure."""
    try:
        result = run_subsystem(Run(module, module.params))
    except RunFailed as exc:
        module.fail_json(msg=capped_message(str(exc)), **exc.result)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)
