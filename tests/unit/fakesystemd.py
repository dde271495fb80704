# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Stand-ins for systemd and tuned-adm, which the fake trees do not run: each records what it was asked. The systemd
one also records whether the unit file already existed when it was asked (units must be written before they are
started)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils import _restore, _run
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import IO_ERROR, FsError, HostFS

UNIT_DIR = '/etc/systemd/system/'


class RecordingSystemctl(object):

    def __init__(self, host):
        self.host = host
        self.calls = []
        # Started and not stopped since: running and enabled, as systemd would report them.
        self.started = set()

    def daemon_reload(self):
        self.calls.append(('daemon-reload',))

    def start(self, unit, restart=False):
        self.calls.append(('restart' if restart else 'start', unit, self.host.exists(UNIT_DIR + unit)))
        self.started.add(unit)

    def stop(self, unit):
        self.calls.append(('stop', unit, self.host.exists(UNIT_DIR + unit)))
        self.started.discard(unit)

    def try_restart(self, unit):
        self.calls.append(('try-restart', unit))

    def is_active(self, unit):
        return unit in self.started

    def is_enabled(self, unit):
        return unit in self.started


def use_systemd(monkeypatch, systemctl):
    """Make every module that drives the engine find ``systemctl`` as systemd on the fake host: open_engine only
    reaches systemd on the real root."""
    def opener(module, params=None, fs_class=HostFS, preview_state=None, held_lock=None, **dummy):
        params = params or module.params
        # The host lock a profile call holds around its subsystems goes with it, as open_engine passes it on.
        return Engine(root=params['root'], fs=fs_class(params['root']), check_mode=module.check_mode,
                      systemctl=systemctl, preview_state=preview_state, run_id=params.get('run_id'),
                      held_lock=held_lock)
    monkeypatch.setattr(_run, 'open_engine', opener)


class RecordingTunedAdm(object):
    """tuned-adm on a fake host: records each command line, with the files it found in place when it was asked (tuned
    applies its profile over what is there then); ``error`` makes every call fail as tuned-adm does when it cannot
    reach the daemon."""

    def __init__(self, host, error=None):
        self.host = host
        self.error = error
        self.calls = []

    def run(self, args):
        self.calls.append((list(args), self.host.exists('/etc/sysctl.d/90-aitune.conf')))
        if self.error:
            raise FsError(IO_ERROR, 'tuned-adm', 'tuned-adm %s failed (rc=1): %s' % (' '.join(args), self.error))
        return 'tuned-adm ' + ' '.join(args)


def use_tuned_adm(monkeypatch, adm):
    """Make the restore module reach ``adm`` as tuned-adm on the fake host: only the real root has its own."""
    monkeypatch.setattr(_restore, 'open_tuned_adm', lambda module, root: (adm, None))
