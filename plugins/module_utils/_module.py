# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The module helper: the options every aitune module shares, building the AnsibleModule, and exiting with a run's
result or failure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import root_refusal
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import shown
from ansible_collections.aitune.kernel.plugins.module_utils._lease import check_field
from ansible_collections.aitune.kernel.plugins.module_utils._run import Run, RunFailed

COMMON_ARGUMENT_SPEC = dict(
    root=dict(type='path', default='/'),
)
APPLY_ARGUMENT_SPEC = dict(
    strict=dict(type='bool', default=False),
    persist=dict(type='bool', default=True),
)
# Every module that writes: the run lease its call belongs to (_lease).
LEASE_ARGUMENT_SPEC = dict(
    run_id=dict(type='str'),
)


def build_module(argument_spec, apply_options=True, leased=None, **kwargs):
    """The AnsibleModule with the shared options: ``apply_options`` (strict, persist) for a module that applies
    settings, ``leased`` (run_id; by default with the apply options) for one that writes."""
    spec = dict(COMMON_ARGUMENT_SPEC)
    if apply_options:
        spec.update(APPLY_ARGUMENT_SPEC)
    if apply_options if leased is None else leased:
        spec.update(LEASE_ARGUMENT_SPEC)
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)
    # Before anything is read or written: a root other than / must be a fake tree (_fsio.root_refusal).
    refusal = root_refusal(module.params['root'])
    if refusal:
        module.fail_json(msg=refusal)
    run_id = module.params.get('run_id')
    if run_id is not None and check_field('run_id', run_id):
        module.fail_json(msg='run_id must be %s, got %s' % (check_field('run_id', run_id), shown(run_id)))
    return module


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
