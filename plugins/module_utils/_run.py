# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""One subsystem's run: its options, the engine it drives, and its result or its failure. The subsystem rooms
(_block.py, _cgroup.py, ...) build on this; the module helper (_module.py) turns a run's outcome into a module exit."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, HostFS, is_real_root, normalize_root
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import CommandMounter
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._persist import update_bootloader
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import (
    Systemctl, Udevadm, systemd_is_init, udev_is_running)

# What a module catches around the engine: each is a clear message, and nothing was written.
ENGINE_ERRORS = (EngineError, FsError, ValidationError, ValueError)


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

    def __init__(self, module, params, label=None, preview_state=None, held_lock=None):
        self.module = module
        self.params = params
        self.label = label
        # In check mode, the state that several runs of one module call plan on (Engine.preview_state).
        self.preview_state = preview_state
        # The host lock the module call holds around all its subsystems (Engine.held_lock).
        self.held_lock = held_lock

    @property
    def check_mode(self):
        return self.module.check_mode

    def warn(self, message):
        self.module.warn('%s: %s' % (self.label, message) if self.label else message)


def open_engine(module, params=None, fs_class=HostFS, systemctl_class=Systemctl, preview_state=None,
                mount_debugfs=True, held_lock=None, lock_timeout=60.0):
    """An Engine for this run. debugfs is mounted on demand only on the real root (a fake tree cannot mount), and
    only with ``mount_debugfs``. ``params`` are the run's options when they are not the module's own (a subsystem of
    the profile module); ``fs_class`` and ``systemctl_class`` let a subsystem bring its own kind of file access or
    systemctl; ``preview_state`` is the state several check-mode runs of one module call share; ``held_lock`` the
    host lock the module call holds around all its engines; ``lock_timeout`` how long taking the lock waits for
    another run."""
    params = params or module.params
    root = normalize_root(params['root'])
    # Only the real root is the host itself: "//" and "/." are spellings of it, not a fake tree.
    real_root = is_real_root(root)
    fs = fs_class(root)
    systemctl = systemctl_class(module) if real_root and systemd_is_init(fs) else None
    udevadm = module.get_bin_path('udevadm') if real_root else None
    return Engine(root=root, fs=fs, check_mode=module.check_mode, systemctl=systemctl,
                  udevadm=Udevadm(module, udevadm) if udevadm and udev_is_running(fs) else None,
                  mounter=CommandMounter(module) if real_root and mount_debugfs else None,
                  preview_state=preview_state, run_id=params.get('run_id'), held_lock=held_lock, warn=module.warn,
                  lock_timeout=lock_timeout)


def update_stale_bootloader(run, report):
    """Regenerate the boot configuration when the run changed the grub drop-in (never in check mode)."""
    if report.bootloader_stale and not run.check_mode:
        report.bootloader = update_bootloader(run.module, *report.boot_params)


def close_and_report(run, engine, report, boot=False, **extra):
    """Regenerate a stale bootloader, close the engine, and return the report as a module result with ``extra``
    merged in. ``boot``: the subsystem handles boot parameters, so the result says whether a reboot is required and
    what was done to the bootloader; other subsystems' settings all apply live."""
    try:
        update_stale_bootloader(run, report)
    finally:
        engine.close()
    result = report.result()
    if not boot:
        del result['reboot_required'], result['bootloader']
    for name, reason in sorted(result['not_permitted'].items()):
        run.warn('%s not permitted: %s' % (name, reason))
    result.update(extra)
    return result


def run_engine(run, body, boot=False, **engine_options):
    """Open the engine (``engine_options`` as open_engine takes them), let ``body(engine)`` decide and apply, and
    report. ``body`` returns the engine's report and the subsystem's own result keys; the ENGINE_ERRORS it raises
    become the run's failure message, and a RunFailed it raises passes as it is."""
    engine = open_engine(run.module, run.params, preview_state=run.preview_state, held_lock=run.held_lock,
                         **engine_options)
    try:
        report, extra = body(engine)
    except ENGINE_ERRORS as exc:
        engine.close()
        raise RunFailed(str(exc))
    except Exception:
        # A refusal the body raised itself (RunFailed) also leaves nothing mounted.
        engine.close()
        raise
    return close_and_report(run, engine, report, boot=boot, **extra)


def apply_knobs(run, knobs, check=None):
    """Decide, apply behind the check-mode gate and report the registry ``knobs`` that the run's options set.
    ``check(fs, desired)``, where given, refuses before anything is written (a rule of _invariants.RULES)."""
    desired = desired_from_params(run.params, knobs)

    def body(engine):
        if check is not None:
            check(engine.fs, desired)
        return engine.apply(desired, persist=run.params['persist'], strict=run.params['strict']), {}
    return run_engine(run, body)


_SPEC_TYPES = {'int': 'int', 'bool': 'bool', 'choice': 'str'}


def knob_options(knobs):
    """Argument spec entries for registry knobs (or block queue settings), one option each, typed after the
    validator."""
    return {knob.option: dict(type=_SPEC_TYPES[knob.validator.kind]) for knob in knobs}


def desired_from_params(params, knobs):
    """``{abstract knob name: value}`` for the knob options the caller set."""
    return {knob.name: params[knob.option] for knob in knobs if params[knob.option] is not None}
