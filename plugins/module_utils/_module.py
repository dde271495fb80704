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


class RunFailed(Exception):
    """A subsystem run refused or failed: the message, and what to return beside it. Where it is raised before the
    engine writes, nothing has been written."""

    def __init__(self, msg, **result):
        super(RunFailed, self).__init__(msg)
        self.result = result


class Run(object):
    """One subsystem's share of a module call: its validated options, and the AnsibleModule that runs commands and
    carries check mode and warnings. A subsystem module makes one; the profile module makes one per subsystem, with
    a ``label`` that names the subsystem in its warnings."""

    def __init__(self, module, params, label=None, preview_state=None):
        self.module = module
        self.params = params
        self.label = label
        # In check mode, the state that several runs of one module call plan on (Engine.preview_state).
        self.preview_state = preview_state

    @property
    def check_mode(self):
        return self.module.check_mode

    def warn(self, message):
        self.module.warn('%s: %s' % (self.label, message) if self.label else message)


def open_engine(module, params=None):
    """An Engine for this run. debugfs is mounted on demand only on the real root; a fake tree cannot mount.
    ``params`` are the run's options when they are not the module's own (a subsystem of the profile module)."""
    root = (params or module.params)['root']
    real_root = root == '/'
    engine = Engine(root=root, check_mode=module.check_mode, mounter=CommandMounter(module) if real_root else None)
    if real_root and systemd_is_init(engine.fs):
        engine.systemctl = Systemctl(module)
    udevadm = module.get_bin_path('udevadm') if real_root else None
    if udevadm and udev_is_running(engine.fs):
        engine.udevadm = Udevadm(module, udevadm)
    return engine


def report_result(run, engine, report, boot=False, **extra):
    """The report as a module result, with ``extra`` merged in. ``boot``: the subsystem handles boot parameters, so
    the result says whether a reboot is required and what was done to the bootloader; other subsystems' settings all
    apply live. Closes the engine."""
    try:
        if report.bootloader_stale and not run.check_mode:
            report.bootloader = update_bootloader(run.module, *report.boot_params)
    finally:
        engine.close()
    result = report.result()
    if not boot:
        del result['reboot_required'], result['bootloader']
    for name, reason in sorted(result['not_permitted'].items()):
        run.warn('%s not permitted: %s' % (name, reason))
    result.update(extra)
    return result


def exit_with_result(module, run_subsystem):
    """Run ``run_subsystem(Run)`` with the module's own options and exit with its result or failure."""
    try:
        result = run_subsystem(Run(module, module.params))
    except RunFailed as exc:
        module.fail_json(msg=str(exc), **exc.result)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


def run_engine(run, body, boot=False):
    """Open the engine, let ``body(engine)`` decide and apply, and report. ``body`` returns the engine's report and
    the subsystem's own result keys; the ENGINE_ERRORS it raises become the run's failure message, and a RunFailed
    it raises passes as it is."""
    engine = open_engine(run.module, run.params)
    engine.preview_state = run.preview_state
    try:
        report, extra = body(engine)
    except ENGINE_ERRORS as exc:
        engine.close()
        raise RunFailed(str(exc))
    except Exception:
        # A refusal the body raised itself (RunFailed) also leaves nothing mounted.
        engine.close()
        raise
    return report_result(run, engine, report, boot=boot, **extra)


def apply_knobs(run, knobs):
    """Decide, apply behind the check-mode gate and report the registry ``knobs`` that the run's options set."""
    desired = desired_from_params(run.params, knobs)
    return run_engine(run, lambda engine: (
        engine.apply(desired, persist=run.params['persist'], strict=run.params['strict']), {}))


_SPEC_TYPES = {'int': 'int', 'bool': 'bool', 'choice': 'str'}


def knob_options(knobs):
    """Argument spec entries for registry knobs (or block queue settings), one option each, typed after the
    validator."""
    return {knob.option: dict(type=_SPEC_TYPES[knob.validator.kind]) for knob in knobs}


def desired_from_params(params, knobs):
    """``{abstract knob name: value}`` for the knob options the caller set."""
    return {knob.name: params[knob.option] for knob in knobs if params[knob.option] is not None}
