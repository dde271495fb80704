# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The restore module's run: every recorded original put back (Engine.restore), then a running tuned asked to apply
its profile again where the restore put back what tuned writes.

Why tuned needs asking: tuned keeps in memory what it applied and what it found before, and checks the first against
the kernel in ``tuned-adm verify``. A restore changes values and files behind its back: it removes
/etc/sysctl.d/90-aitune.conf, which tuned's reapply_sysctl had applied over its own sysctl values, and it writes back
originals that may be tuned's own values or the ones tuned found before it started. Either way tuned's record and the
kernel differ until tuned applies its profile again, and verify fails until then. Applying it again once the restore
is done makes tuned's record and the host agree, with the collection's files gone.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, HostFS, is_real_root
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import subsystem_of
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import (
    describe_tuned, is_profile_name, processes, tuned_facts)
from ansible_collections.aitune.kernel.plugins.module_utils._persist import MANAGED_FILES, State, file_owners
from ansible_collections.aitune.kernel.plugins.module_utils._run import run_engine
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import TunedAdm

REAPPLIED = 'reapplied'
WOULD_REAPPLY = 'would reapply'
NOT_NEEDED = 'not needed'
FAILED = 'failed'


def open_tuned_adm(module, root):
    """tuned-adm for this run, or None with the reason: only on the host's own root, where tuned-adm is installed."""
    if not is_real_root(root):
        return None, 'the root %s is not this host\'s own, and its tuned is not reachable from here' % root
    binary = module.get_bin_path('tuned-adm')
    if not binary:
        return None, 'tuned-adm is not installed'
    return TunedAdm(module, binary), None


def reapply_args(tuned):
    """tuned-adm's arguments that apply ``tuned``'s profile again without changing tuned's settings, or None where
    its active profile is no name tuned-adm takes. ``tuned-adm profile`` would switch a tuned in auto mode to
    manual: ``auto_profile`` applies the recommended profile again and keeps auto mode."""
    if tuned['profile_mode'] == 'auto':
        return ['auto_profile']
    profiles = (tuned['profile'] or '').split()
    # Anything in active_profile that is not a profile name is never passed on to a command.
    if not profiles or not all(is_profile_name(name) for name in profiles):
        return None
    return ['profile'] + profiles


def file_subsystems(fs):
    """``path -> [subsystems]`` of the files the collection renders, read from the state before the restore drops
    its entries: what a file's restore touched is what its entries were."""
    try:
        state = State(fs)
    except FsError:
        # A state the restore refuses fails the restore itself, with its own message; nothing is to be asked then.
        return {}
    paths = [path for dummy, path in MANAGED_FILES] + list(state.files())
    return {path: file_owners(state, path) for path in paths}


def touched_subsystems(result, owners):
    """The subsystems whose settings or files this restore changed (or, in check mode, would change)."""
    touched = {subsystem_of(name) for name, entry in result['knobs'].items() if entry.get('changed')}
    for path in result.get('file_changes') or {}:
        touched.update(owners.get(path) or ())
    return touched


def tuned_after_restore(run, fs, result, owners):
    """What was asked of a running tuned after the restore, for the result's ``tuned`` key; None where tuned does not
    run. Never fails the restore: a tuned that cannot be asked is a warning."""
    tuned = tuned_facts(fs, processes(fs))
    if not tuned['running']:
        return None
    shared = sorted(touched_subsystems(result, owners) & set(tuned['subsystems']))
    entry = {'profile': tuned['profile'], 'profile_mode': tuned['profile_mode'], 'subsystems': shared,
             'command': None}
    if not shared:
        entry.update(action=NOT_NEEDED, reason='nothing this restore put back is written by tuned\'s profile')
        return entry
    args = reapply_args(tuned)
    failure = None
    if args is None:
        failure = 'its active profile %r is not a profile name tuned-adm takes' % tuned['profile']
    else:
        entry['command'] = ' '.join(['tuned-adm'] + args)
        if run.check_mode:
            entry.update(action=WOULD_REAPPLY, reason='check mode: would run %s, so that tuned holds its profile over '
                                                      'the restored values' % entry['command'])
            return entry
        adm, failure = open_tuned_adm(run.module, run.params['root'])
        if adm is not None:
            try:
                adm.run(args)
            except FsError as exc:
                failure = str(exc)
    if failure is None:
        entry.update(action=REAPPLIED, reason='tuned applied its profile again over the restored values, so '
                                              'tuned-adm verify holds')
        return entry
    entry.update(action=FAILED, reason=failure)
    run.warn('%s writes what this restore put back (%s), and asking it to apply its profile again failed: %s. Until '
             'it does (tuned-adm profile %s, or systemctl restart tuned), tuned-adm verify may report differences'
             % (describe_tuned(tuned), ', '.join(shared), failure, tuned['profile'] or 'NAME'))
    return entry


def run_restore(run):
    """The restore module's result: Engine.restore's, with ``tuned`` added."""
    fs = HostFS(run.params['root'])
    owners = file_subsystems(fs)
    result = run_engine(run, lambda engine: (
        engine.restore(run.params['scope'], keep_calibration=run.params['keep_calibration']), {}), boot=True)
    result['tuned'] = tuned_after_restore(run, fs, result, owners)
    return result
