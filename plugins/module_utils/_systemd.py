# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""systemd as the owner of units the collection installs (mounts now; slices and holders build on it)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import IO_ERROR, FsError


def systemd_is_init(fs):
    """True when systemd runs as PID 1; containers and minimal VMs often have another init."""
    return (fs.read_optional('/proc/1/comm', follow=True) or '').strip() == 'systemd'


class Systemctl(object):
    """systemctl through AnsibleModule.run_command, with argument lists only."""

    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path('systemctl', required=True)

    def _run(self, *args):
        argv = [self.binary] + list(args)
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise FsError(IO_ERROR, args[-1], '%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return out

    def daemon_reload(self):
        self._run('daemon-reload')

    def start(self, unit, restart=False):
        self._run('enable', unit)
        self._run('restart' if restart else 'start', unit)

    def stop(self, unit):
        self._run('disable', '--now', unit)
