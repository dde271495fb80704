# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What every aitune module shares: the common options, building the AnsibleModule, and turning a Report into a
module result."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import CommandMounter
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._persist import update_bootloader
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import (
    Systemctl, Udevadm, systemd_is_init, udev_is_running)

# What a module catches around the engine: each is a clear message, and nothing was written.
ENGINE_ERRORS = (EngineError, FsError, ValidationError, ValueError)

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


def open_engine(module):
    """An Engine for this run. debugfs is mounted on demand only on the real root; a fake tree cannot mount."""
    root = module.params['root']
    real_root = root == '/'
    engine = Engine(root=root, check_mode=module.check_mode, mounter=CommandMounter(module) if real_root else None)
    if real_root and systemd_is_init(engine.fs):
        engine.systemctl = Systemctl(module)
    udevadm = module.get_bin_path('udevadm') if real_root else None
    if udevadm and udev_is_running(engine.fs):
        engine.udevadm = Udevadm(module, udevadm)
    return engine


def exit_with_report(module, engine, report, boot=False, **extra):
    """Exit with the report as the result. ``boot``: the module handles boot parameters, so the result says whether
    a reboot is required and what was done to the bootloader; other modules' settings all apply live."""
    if report.bootloader_stale and not module.check_mode:
        report.bootloader = update_bootloader(module, *report.boot_params)
    result = report.result()
    if not boot:
        del result['reboot_required'], result['bootloader']
    if not module._diff:
        result.pop('diff')
    for name, reason in sorted(result['not_permitted'].items()):
        module.warn('%s not permitted: %s' % (name, reason))
    result.update(extra)
    engine.close()
    module.exit_json(**result)


def run_apply(module, desired, engine=None, extra=None, **owned):
    """The whole life of an applying module: decide, apply behind the check-mode gate, report.

    ``owned`` passes on what the subsystem owns besides knobs (``cmdline``, ``units``, ``files``, ``expect``,
    ``dirs``; see Engine.apply). ``extra`` is merged into the result.
    """
    engine = engine or open_engine(module)
    try:
        report = engine.apply(desired, persist=module.params['persist'], strict=module.params['strict'], **owned)
    except ENGINE_ERRORS as exc:
        engine.close()
        module.fail_json(msg=str(exc))
    exit_with_report(module, engine, report, **(extra or {}))


_SPEC_TYPES = {'int': 'int', 'bool': 'bool', 'choice': 'str'}


def knob_options(knobs):
    """Argument spec entries for registry knobs, one option each, typed after the knob's validator."""
    return {knob.option: dict(type=_SPEC_TYPES[knob.validator.kind]) for knob in knobs}


def desired_from_params(module, knobs):
    """``{abstract knob name: value}`` for the knob options the caller set."""
    return {knob.name: module.params[knob.option] for knob in knobs if module.params[knob.option] is not None}
